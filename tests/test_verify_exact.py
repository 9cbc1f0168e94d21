"""`rag status --verify` reports only real damage (issue 21, item 4): not identical texts that
tie on their vector, not a write another process has half done. See /work/notes/item4.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
from rag.ingest import Ingestor
from rag.integrity import verify
from rag.store import open_store
from tests.conftest import ROOT, write

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout


@pytest.fixture
def ingestor(settings, embed):
    return Ingestor(settings, open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM), embed)


def test_copies_of_one_story_are_not_reported_unfindable(tmp_path, ingestor):
    """A wire story carried under eight URLs: eight chunks with one vector. A top-5 query with
    that vector returns five of them; the other three were reported "not found by their own
    vector", and which three changed from one process to the next."""
    lines = [
        json.dumps({"id": f"wire{i}", "title": "Dunmore ferry strike ends", "text": body})
        for i, body in enumerate(["The Dunmore ferry strike ended on Friday after talks."] * 8)
    ]
    write(tmp_path / "wire.jsonl", "\n".join(lines) + "\n")
    assert ingestor.run([tmp_path / "wire.jsonl"], progress=False).ok
    report = verify(ingestor.store)
    assert report.unfindable == [] and report.ok, report


def test_a_chunk_is_only_found_by_its_own_vector(ingestor, tmp_path):
    from rag.integrity import _reachable

    write(tmp_path / "a" / "a.md", "---\nid: quay\n---\nThe quay at Lisvane was rebuilt.\n")
    write(tmp_path / "a" / "b.md", "---\nid: mill\n---\nA paper mill in Orrin shut down.\n")
    assert ingestor.run([tmp_path / "a"], progress=False).ok
    got = ingestor.store.collection.get(ids=["quay#0", "mill#0"], include=["embeddings"])
    vec = dict(zip(got["ids"], got["embeddings"], strict=True))
    assert _reachable(ingestor.store, "quay#0", vec["quay#0"])
    assert not _reachable(ingestor.store, "quay#0", vec["mill#0"])  # another chunk's vector
    assert not _reachable(ingestor.store, "nowhere#0", vec["mill#0"])  # not in the index


WRITER = """
import sys, time
from pathlib import Path
from rag.config import Settings
from rag.lock import ingest_lock
from rag.store import open_store

data = Path(sys.argv[1])
store = open_store(Settings(data_dir=data), sys.argv[2], int(sys.argv[3]))
vec = [1.0] + [0.0] * (int(sys.argv[3]) - 1)
meta = {"doc_id": "late", "title": "Late", "fingerprint": "f", "n_chunks": 2}
with ingest_lock(data), store.changing(["late"]):
    store.upsert(["late#1"], [vec], ["second half"], [{**meta, "chunk_index": 1}])
    print("half", flush=True)
    while not (data / "go").exists():
        time.sleep(0.05)
    store.upsert(["late#0"], [vec[::-1]], ["first half"], [{**meta, "chunk_index": 0}])
"""


def test_verify_waits_for_a_writer_half_way_through_an_article(tmp_path, ingestor, settings):
    """Read beside a writer, an article it is writing looked incomplete (and chunks it had just
    written looked lost); verify now waits for the ingestion lock and reads afresh."""
    from rag.status import verify_store

    write(tmp_path / "a" / "a.md", "---\nid: quay\n---\nThe quay at Lisvane was rebuilt.\n")
    assert ingestor.run([tmp_path / "a"], progress=False).ok
    data = settings.data_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    cmd = [sys.executable, "-c", WRITER, str(data), LOCAL_MODEL_NAME, str(LOCAL_DIM)]
    writer = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "half"
        said: list[str] = []
        out: dict = {}
        checking = threading.Thread(
            target=lambda: out.update(result=verify_store(settings, notify=said.append))
        )
        checking.start()
        time.sleep(3)
        assert checking.is_alive() and "another ingestion is running" in said[0]
        (data / "go").touch()
        checking.join(timeout=300)
        assert writer.wait(timeout=60) == 0
    finally:
        (data / "go").touch()
        writer.kill()
    report, fixed = out["result"]
    assert fixed is None and report.ok, report
    assert report.articles == 2 and report.chunks == 3
