"""The `rag` command as a user runs it, in subprocesses against a real store."""

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import CORPUS, write

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout

WORDS = [
    "council",
    "harbour",
    "budget",
    "minister",
    "river",
    "school",
    "storm",
    "election",
    "court",
    "museum",
    "rail",
    "festival",
    "hospital",
    "bridge",
    "mayor",
    "union",
    "vote",
    "price",
    "market",
    "energy",
]


def run(args, data_dir, **kw):
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_help_explains_commands(tmp_path):
    out = run(["--help"], tmp_path).stdout
    assert "ingest" in out and "status" in out and "RAG_" in out
    out = run(["ingest", "--help"], tmp_path).stdout
    assert "--prune" in out and "--json" in out and ".jsonl" in out


def test_ingest_and_status_json(tmp_path):
    data = tmp_path / "data"
    res = run(["ingest", str(CORPUS), "--json"], data)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["articles"] == {"added": 2, "updated": 0, "unchanged": 0, "removed": 0}
    assert report["chunks"]["added"] > 0 and report["errors"] == []
    st = json.loads(run(["status", "--json"], data).stdout)
    assert st["articles"] == 2 and st["chunks"] == report["chunks"]["added"]
    assert st["embed_model"] == "all-MiniLM-L6-v2-int8" and st["dim"] == 384
    assert st["store"] == str(data / "chroma")
    assert st["last_ingestion"]["finished"]
    again = json.loads(run(["ingest", str(CORPUS), "--json"], data).stdout)
    assert again["articles"]["unchanged"] == 2 and again["chunks"]["added"] == 0


def test_failed_inputs_set_exit_status_and_are_listed(tmp_path):
    write(tmp_path / "in" / "ok.md", "The ferry resumed service on Monday.\n")
    write(tmp_path / "in" / "bad.txt", b"\xff\xfe\xfa not utf8")
    res = run(["ingest", str(tmp_path / "in"), "--json"], tmp_path / "data")
    assert res.returncode == 1
    report = json.loads(res.stdout)
    assert report["articles"]["added"] == 1
    assert (
        report["errors"][0]["path"].endswith("bad.txt") and "UTF-8" in report["errors"][0]["reason"]
    )
    human = run(["ingest", str(tmp_path / "in")], tmp_path / "data2")
    assert human.returncode == 1 and "bad.txt" in human.stderr and "UTF-8" in human.stderr


def test_unreachable_chroma_server_is_a_clear_error(tmp_path):
    from tests.conftest import free_port

    env_extra = {"RAG_CHROMA_MODE": "http", "RAG_CHROMA_PORT": str(free_port())}
    res = subprocess.run(
        [sys.executable, "-m", "rag.cli", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env_extra},
    )
    assert res.returncode == 2
    assert "cannot reach the Chroma server" in res.stderr and "Traceback" not in res.stderr


def _many_articles(path, n=160):
    rng = random.Random(7)
    with open(path, "w") as fh:
        for i in range(n):
            paras = [
                "\n".join(
                    " ".join(rng.choice(WORDS) for _ in range(18)).capitalize() + "."
                    for _ in range(4)
                )
                for _ in range(4)
            ]
            fh.write(
                json.dumps({"id": f"a{i:03d}", "title": f"Story {i}", "text": "\n\n".join(paras)})
                + "\n"
            )


def test_killed_ingestion_resumes_without_duplicates_or_gaps(tmp_path):
    src = tmp_path / "many.jsonl"
    _many_articles(src)
    data = tmp_path / "data"
    env = {**os.environ, "RAG_DATA_DIR": str(data)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "-v", "ingest", str(src), "-q"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if "stored" in line:  # the first group is in the store; kill mid-run
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    partial = json.loads(run(["status", "--json"], data).stdout)
    assert 0 < partial["articles"] < 160  # the store is usable and holds what was finished

    res = run(["ingest", str(src), "--json", "-q"], data)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["articles"]["unchanged"] == partial["articles"]
    assert report["articles"]["added"] == 160 - partial["articles"]

    from rag.config import Settings
    from rag.store import open_store

    store = open_store(Settings(data_dir=data), "all-MiniLM-L6-v2-int8", 384)
    rows = list(store.all_chunks())
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    per_doc = Counter(m["doc_id"] for _, _, m in rows)
    indexed = store.indexed()
    assert len(indexed) == 160
    assert all(per_doc[d] == a.n_chunks for d, a in indexed.items())
    assert sum(per_doc.values()) == len(rows)


def test_stdin_questions_with_the_llm_down_exit_3_and_are_echoed_short(tmp_path, monkeypatch):
    data = tmp_path / "data"
    assert run(["ingest", str(CORPUS), "-q"], data).returncode == 0
    monkeypatch.setenv("RAG_LLM_BACKEND", "openai-compatible")
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("RAG_LLM_MAX_RETRIES", "0")
    long_question = "Who heads the board of peace " + "really " * 200_000 + "?"
    stdin = "Who is the spokesman for the Kremlin?\n" + long_question + "\n"
    res = run(["ask", "--json", "-"], data, input=stdin)
    assert res.returncode == 3, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(lines) == 2 and all("error" in x for x in lines)
    assert "cannot connect" in lines[0]["error"]
    assert len(lines[1]["question"]) <= 301  # the 1.4 MB question is not echoed whole
    assert len(res.stdout) < 10_000
