"""Several processes on one data dir, with real `rag ingest` subprocesses and the real model.

- Two ingestions at once must not corrupt the store (issue 10, item 2): they take turns.
- A long-lived process (a `rag serve`) must see what another process ingested, in its vector
  search, its `get`s and its keyword index, without a restart (issue 10, item 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
from tests.conftest import ROOT, write

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout

N_ARTICLES = 300
WORDS = "harbour ferry council bridge tram festival library river market station".split()


def _articles(folder: Path, n: int, tag: str = "") -> Path:
    lines = []
    for i in range(n):
        # Distinct, short articles: one chunk each, each with a word no other article has.
        text = f"Report {tag}{i}: the {WORDS[i % 10]} at site {tag}zq{i}x reopened on day {i}."
        lines.append(json.dumps({"id": f"{tag}a{i}", "title": f"Item {tag}{i}", "text": text}))
    return write(folder / f"news{tag}.jsonl", "\n".join(lines) + "\n")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**env, "RAG_DATA_DIR": str(data_dir), "ANONYMIZED_TELEMETRY": "False"}


def _ingest(data_dir: Path, path: Path, log: Path) -> subprocess.Popen:
    """`rag ingest --json PATH`: the JSON report to `log`.json, everything else to `log`."""
    cmd = [sys.executable, "-m", "rag.cli", "ingest", "-q", "--json", str(path)]
    with open(log, "w") as err, open(log.with_suffix(".json"), "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=_env(data_dir), stdout=out, stderr=err)


def _open(data_dir: Path):
    from rag.config import Settings
    from rag.store import open_store

    return open_store(Settings(data_dir=data_dir), LOCAL_MODEL_NAME, LOCAL_DIM)


def test_two_ingestions_at_once_take_turns_and_leave_a_sound_store(tmp_path):
    import time

    from rag.lock import ingest_lock

    data = tmp_path / "data"
    half = N_ARTICLES // 2
    sources = [_articles(tmp_path / "src", half, tag=tag) for tag in ("p", "q")]
    logs = [tmp_path / "p.log", tmp_path / "q.log"]
    # The test holds the lock until both have started and said they wait, so both are surely
    # running at once (on a busy machine one could otherwise finish before the other starts).
    with ingest_lock(data):
        procs = [_ingest(data, src, log) for src, log in zip(sources, logs, strict=True)]
        deadline = time.monotonic() + 600
        while not all("another ingestion is running (pid" in log.read_text() for log in logs):
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            assert time.monotonic() < deadline, "the ingestions never said they were waiting"
            time.sleep(0.2)
    for p in procs:
        assert p.wait(timeout=900) == 0
    outs = [log.read_text() for log in logs]
    assert not any("Error getting embedding" in o or "Traceback" in o for o in outs), outs
    reports = [json.loads(log.with_suffix(".json").read_text()) for log in logs]
    assert [r["articles"]["added"] for r in reports] == [half, half]

    store = _open(data)
    got = store.collection.get(include=["embeddings"], limit=N_ARTICLES + 10)
    assert len(got["ids"]) == N_ARTICLES
    # Every chunk is found by its own vector: two unserialised writers each persist their own
    # copy of the vector index, and one loses the other's chunks.
    res = store.collection.query(query_embeddings=list(got["embeddings"]), n_results=1)
    lost = [cid for cid, hit in zip(got["ids"], res["ids"], strict=True) if hit != [cid]]
    assert lost == []
    assert store.count() == N_ARTICLES and len(store.indexed()) == N_ARTICLES
    # Released together, they took turns: one of them waited for the other a second time,
    # or got the lock at once; either way each said it waited while the test held it.
    assert all("another ingestion is running (pid" in o for o in outs), outs


def test_a_running_process_sees_another_process_ingest(tmp_path):
    from rag.embeddings import OnnxMiniLMEmbedding
    from rag.keyword import KeywordIndex
    from rag.retrieve import HybridRetriever

    data = tmp_path / "data"
    first = _articles(tmp_path / "src", 40, tag="old")
    assert _ingest(data, first, tmp_path / "1.log").wait(timeout=600) == 0
    # The long-lived process: its store, keyword index and a first search, as `rag serve` has.
    store = _open(data)
    keyword = KeywordIndex(store, data / "keyword")
    embed = OnnxMiniLMEmbedding()
    assert keyword.search("oldzq7x", 3)[0].chunk_id == "olda7#0"
    assert store.collection.get(ids=["olda3#0"])["ids"] == ["olda3#0"]

    second = _articles(tmp_path / "src2", 200, tag="new")
    assert _ingest(data, second, tmp_path / "2.log").wait(timeout=600) == 0
    time.sleep(0.5)  # beyond store.CHECK_SECONDS: the next read looks at the log again

    got = store.collection.get(ids=["newa150#0", "olda3#0"])
    assert sorted(got["ids"]) == ["newa150#0", "olda3#0"]
    assert store.count() == 240 and len(store.indexed()) == 240
    hits = keyword.search("newzq150x", 3)
    assert hits and hits[0].chunk_id == "newa150#0"
    # Only the new articles were read into the keyword index, not the whole store again.
    assert keyword.chunk_count() == 240
    from llama_index.core.schema import QueryBundle

    q = "Report new150: the ferry at site newzq150x reopened on day 150."
    retriever = HybridRetriever(store, keyword, embed, top_k=3)
    found = retriever.retrieve(QueryBundle(q, embedding=embed.get_query_embedding(q)))
    assert found[0].node.node_id == "newa150#0"


@pytest.mark.parametrize("op", ["change", "remove"])
def test_changes_from_another_process_reach_a_running_keyword_index(tmp_path, op):
    from rag.keyword import KeywordIndex

    data = tmp_path / "data"
    src = tmp_path / "src"
    write(src / "a.md", "---\nid: a\n---\nThe mayor opened the bridge.\n")
    write(src / "b.md", "---\nid: b\n---\nThe ferry left at noon.\n")
    assert _ingest(data, src, tmp_path / "1.log").wait(timeout=600) == 0
    store = _open(data)
    keyword = KeywordIndex(store, data / "keyword")
    assert [h.chunk_id for h in keyword.search("mayor", 3)] == ["a#0"]
    if op == "change":
        write(src / "a.md", "---\nid: a\n---\nThe zebra opened the bridge.\n")
        cmd = ["ingest", str(src)]
    else:
        (src / "a.md").unlink()
        cmd = ["ingest", "--prune", str(src)]
    run = subprocess.run(
        [sys.executable, "-m", "rag.cli", *cmd], cwd=ROOT, env=_env(data), capture_output=True
    )
    assert run.returncode == 0, run.stderr
    time.sleep(0.5)
    assert keyword.search("mayor", 3) == []
    assert [h.chunk_id for h in keyword.search("zebra", 3)] == (["a#0"] if op == "change" else [])
    assert [h.chunk_id for h in keyword.search("ferry", 3)] == ["b#0"]
