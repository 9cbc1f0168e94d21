"""Bad input to the CLI, the API and the UI (issue 21, item 4): a stdin line that is not UTF-8,
and a top-k outside the one documented range."""

from __future__ import annotations

import io
import json
import sys

import pytest

from rag import cli
from rag.config import TOP_K_MAX, TOP_K_MIN, Settings, check_top_k
from rag.errors import InvalidInput


@pytest.mark.parametrize("bad", [-5, 0, TOP_K_MAX + 1, 100_000, "abc", "", 2.5, None, True])
def test_a_top_k_outside_the_range_is_refused_with_the_range(bad):
    with pytest.raises(InvalidInput, match=f"from {TOP_K_MIN} to {TOP_K_MAX}"):
        check_top_k(bad)


def test_a_top_k_inside_the_range_is_a_count():
    assert [check_top_k(v) for v in (TOP_K_MIN, TOP_K_MAX, "7", " 8 ", 9.0)] == [1, 100, 7, 8, 9]


def test_rag_top_k_is_held_to_the_same_range(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("RAG_TOP_K", str(TOP_K_MAX + 1))
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("flag", ["-5", "100000", "six"])
@pytest.mark.parametrize("command", [["ask", "Who won?"], ["chat"], ["eval"]])
def test_the_cli_refuses_a_bad_top_k_before_any_work(flag, command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as stop:
        cli.main([*command[:1], "--top-k", flag, *command[1:]])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"from {TOP_K_MIN} to {TOP_K_MAX}" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()  # refused before the store was opened


@pytest.fixture
def engine(tmp_path, settings):
    from rag.engine import Engine
    from rag.ingest import ingest
    from tests.fakes import FakeLLM
    from tests.news_fixture import write_corpus

    assert ingest([write_corpus(tmp_path / "news")], settings, progress=False).ok
    return Engine.from_settings(settings, llm=FakeLLM("The harbour reopened on Tuesday [1]."))


@pytest.mark.e2e
def test_a_stdin_line_that_is_not_utf8_gets_an_error_and_the_rest_are_answered(
    engine, monkeypatch, capsys
):
    lines = [
        b"On which day did the harbour in Portmere reopen?",
        b"Was the pier in Portm\xe9re damaged?",  # Latin-1, not UTF-8
        b"On which day did the harbour in Portmere reopen again?",
    ]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n")))
    monkeypatch.setattr(cli, "_engine", lambda args: engine)
    code = cli.main(["ask", "--json", "-"])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert len(out) == 3
    assert "error" not in out[0] and "error" not in out[2]
    assert out[0]["answer"] and out[2]["answer"]
    assert out[1]["line"] == 2 and "not UTF-8" in out[1]["error"] and "0xe9" in out[1]["error"]
    assert out[1]["question"].startswith("Was the pier in Portm")


@pytest.mark.e2e
def test_the_ui_refuses_a_bad_top_k_in_the_chat(engine, settings):
    from ui.app import build_app

    app = build_app(engine, settings)
    ask = next(f for f in app.fns.values() if f.api_name == "ask")
    *_, (chat, _history, _box) = ask.fn("Who reopened the harbour?", [], [], "", "", "", 500)
    assert f"from {TOP_K_MIN} to {TOP_K_MAX}" in chat[-1]["content"]


@pytest.mark.e2e
@pytest.mark.parametrize("bad", [-5, 100_000])
def test_the_api_refuses_a_bad_top_k(engine, bad):
    with pytest.raises(InvalidInput, match=f"from {TOP_K_MIN} to {TOP_K_MAX}"):
        engine.ask("On which day did the harbour in Portmere reopen?", top_k=bad)


@pytest.mark.e2e
def test_a_question_argument_that_is_not_utf8_is_a_clear_error(engine, monkeypatch, capsys):
    """A Latin-1 terminal: Python decodes the byte into a lone surrogate, which the tokenizer
    refused with a TypeError traceback."""
    monkeypatch.setattr(cli, "_engine", lambda args: engine)
    latin1 = b"Was the pier in Portm\xe9re damaged?".decode("utf-8", "surrogateescape")
    assert cli.main(["ask", latin1]) == 2
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_chat_line_that_is_not_utf8_does_not_end_the_chat(engine, monkeypatch, capsys):
    lines = [b"Was the pier in Portm\xe9re damaged?", b"On which day did the harbour reopen?"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n")))
    monkeypatch.setattr(cli, "_engine", lambda args: engine)
    assert cli.main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "not UTF-8" in out and "Tuesday" in out


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """`rag status | head -0`: the reader is gone before rag writes; no traceback."""
    import os
    import subprocess

    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "status", "--json"],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
    )
    os.close(write)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
