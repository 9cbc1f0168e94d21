"""The OpenAI-compatible backend keeps one overall deadline and says what really happened,
against a small chat server on 127.0.0.1 that can be slow, refuse the key or lack the model."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from rag.config import Settings
from rag.llm import describe_llm_error, make_llm
from tests.conftest import free_port

SLOW_S = 6.0  # how long the "slow" model takes: far beyond the deadlines below


class _Handler(BaseHTTPRequestHandler):
    """/v1/chat/completions; the requested model name picks the behaviour."""

    requests = 0

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).requests += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body.get("model")
        if model == "slow":
            time.sleep(SLOW_S)
        if model == "locked":
            return self._json(401, {"error": {"message": "bad key", "type": "auth"}})
        if model == "missing":
            return self._json(404, {"error": {"message": "no such model", "type": "nf"}})
        self._json(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Paris."},
                        "finish_reason": "stop",
                    }
                ],
            },
        )

    def _json(self, status: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except OSError:
            pass  # the client gave up on a slow answer


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _settings(tmp_path, url: str, model: str, timeout: float, retries: int = 2) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        llm_backend="openai-compatible",
        llm_base_url=url,
        llm_model=model,
        llm_timeout=timeout,
        llm_max_retries=retries,
    )


MESSAGES = [ChatMessage(role=MessageRole.USER, content="What is the capital of France?")]


@pytest.mark.parametrize("streaming", [False, True])
def test_a_slow_server_fails_within_one_overall_deadline(tmp_path, server, streaming):
    s = _settings(tmp_path, server, "slow", timeout=1, retries=2)
    llm = make_llm(s)
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        if streaming:
            list(llm.stream_chat(MESSAGES))
        else:
            llm.chat(MESSAGES)
    took = time.monotonic() - started
    # Two retries of a 1 s timeout used to take three timeouts plus back-off.
    assert took < 2.0, f"took {took:.1f} s for a 1 s deadline"
    msg = str(describe_llm_error(info.value, s))
    assert "did not answer within 1 s" in msg, msg
    shown = float(msg.split("gave up after ")[1].split(" s")[0])
    assert abs(shown - took) < 0.5, msg  # the message tells the time it really took


def test_a_refused_connection_is_retried_within_the_deadline(tmp_path):
    port = free_port()  # nothing listens here
    s = _settings(tmp_path, f"http://127.0.0.1:{port}/v1", "any", timeout=3, retries=3)
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        make_llm(s).chat(MESSAGES)
    took = time.monotonic() - started
    msg = str(describe_llm_error(info.value, s))
    assert took < 3.0, f"took {took:.1f} s for a 3 s deadline"
    assert msg.startswith("cannot connect to the language model"), msg
    attempts = int(msg.split(" s, ")[1].split(" attempt")[0])
    assert attempts >= 2, msg  # fast failures do get retried while the deadline allows


def test_client_errors_are_named_by_their_type(tmp_path, server):
    locked = _settings(tmp_path, server, "locked", timeout=5)
    with pytest.raises(Exception) as info:
        make_llm(locked).chat(MESSAGES)
    assert "refused the API key" in str(describe_llm_error(info.value, locked))
    missing = _settings(tmp_path, server, "missing", timeout=5)
    with pytest.raises(Exception) as info:
        make_llm(missing).chat(MESSAGES)
    assert "does not serve the model 'missing'" in str(describe_llm_error(info.value, missing))


def test_a_client_error_is_not_retried(tmp_path, server):
    s = _settings(tmp_path, server, "locked", timeout=5, retries=3)
    before = _Handler.requests
    with pytest.raises(Exception):  # noqa: B017, PT011 - the type is the client's
        make_llm(s).chat(MESSAGES)
    assert _Handler.requests - before == 1


def test_a_healthy_server_still_answers(tmp_path, server):
    llm = make_llm(_settings(tmp_path, server, "ok", timeout=5))
    assert llm.chat(MESSAGES).message.content == "Paris."
