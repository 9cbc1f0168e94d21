"""The OpenAI-compatible backends against real servers started on 127.0.0.1 by the tests:
llama-cpp-python's own server for chat, and a small embeddings server."""

import socket
import sys
import threading
import time

import pytest

from rag.config import Settings
from rag.embeddings import package_file
from rag.engine import Engine
from rag.ingest import ingest
from rag.llm import BUNDLED_GGUF, LLMUnavailable
from rag.metrics import contains
from tests.conftest import CORPUS, ROOT, free_port, running_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(package_file(*BUNDLED_GGUF)),
           "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with running_server(cmd, f"{url}/models", tmp_path_factory.mktemp("llama")):
        yield url


@pytest.fixture(scope="module")
def embed_server(tmp_path_factory):
    port = free_port()
    cmd = [sys.executable, str(ROOT / "tests" / "embed_server.py"), str(port)]
    url = f"http://127.0.0.1:{port}"
    with running_server(cmd, f"{url}/docs", tmp_path_factory.mktemp("embed"), cwd=ROOT):
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def remote_settings(tmp_path_factory, llama_server):
    s = Settings(
        data_dir=tmp_path_factory.mktemp("remote") / "data",
        llm_backend="openai-compatible",
        llm_base_url=llama_server,
        llm_model="smollm2",
        llm_timeout=120,
    )
    assert ingest([CORPUS], s, progress=False).ok
    return s


def test_answers_through_an_openai_compatible_server(remote_settings):
    eng = Engine.from_settings(remote_settings)
    a = eng.ask("Name the spokesman for the Kremlin who spoke to reporters about the invitation.")
    assert not a.refused and contains(a.text, ["Peskov"]), a.text
    assert a.citations and a.citations[0].doc_id in {p.stem for p in CORPUS.glob("*.md")}


def test_streams_through_an_openai_compatible_server(remote_settings):
    stream = Engine.from_settings(remote_settings).stream("Who heads the board of peace?")
    assert sum(isinstance(t, str) for t in stream) >= 2
    assert stream.answer.citations or stream.answer.refused


def test_unknown_model_name_is_accepted_by_openai_like(remote_settings):
    # OpenAILike takes any model name; the server answers for its alias.
    s = remote_settings.model_copy(update={"llm_model": "smollm2"})
    assert Engine.from_settings(s).llm.metadata.model_name == "smollm2"


def _silent_server() -> tuple[int, threading.Event]:
    """Accepts connections and never answers: a server that is up but stuck."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()
    held = []

    def loop():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue
        for c in held:
            c.close()
        sock.close()

    threading.Thread(target=loop, daemon=True).start()
    return sock.getsockname()[1], stop


def test_slow_server_times_out_with_a_clear_message(remote_settings):
    port, stop = _silent_server()
    try:
        s = remote_settings.model_copy(
            update={
                "llm_base_url": f"http://127.0.0.1:{port}/v1",
                "llm_timeout": 2,
                "llm_max_retries": 1,
            }
        )
        started = time.time()
        with pytest.raises(LLMUnavailable, match="did not answer within 2 s"):
            Engine.from_settings(s).ask("Who is the spokesman for the Kremlin?")
        assert time.time() - started < 30  # bounded retries, no endless wait
    finally:
        stop.set()


def test_ingest_and_ask_with_openai_compatible_embeddings(tmp_path, embed_server):
    s = Settings(
        data_dir=tmp_path / "data",
        embed_backend="openai-compatible",
        embed_base_url=embed_server,
        embed_model="minilm-served",
    )
    report = ingest([CORPUS], s, progress=False)
    assert report.ok and report.collection == "news_minilm-served_384"
    eng = Engine.from_settings(s)
    passages = eng.retrieve("Who is the spokesman for the Kremlin?")
    assert any("Peskov" in p.node.get_content() for p in passages)


def test_eval_with_an_llm_judge_reports_judged_scores(tmp_path, llama_server):
    from rag.evaluate import DEFAULT_CORPUS, DEFAULT_GOLD, markdown_table, run_eval

    s = Settings(data_dir=tmp_path / "data", judge_base_url=llama_server, judge_model="smollm2")
    result = run_eval(s, gold=DEFAULT_GOLD, corpus=DEFAULT_CORPUS, limit=3, progress=False)
    judge = result["judge"]
    assert judge["status"] == "ran"
    for row in result["rows"]:
        for key in ("judge_correctness", "judge_faithful"):
            # A verdict the judge model could not give is missing, never a made-up score.
            assert row[key] is None or 0.0 <= row[key] <= 1.0
    assert "judge.correctness" in markdown_table(result)
