"""The same ingestion against a real Chroma server started on 127.0.0.1."""

import shutil
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
from rag.ingest import Ingestor
from rag.store import open_store
from tests.conftest import CORPUS, free_port, running_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    cmd = [str(exe), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)]
    with running_server(cmd, f"http://127.0.0.1:{port}/api/v2/heartbeat", path, seconds=60):
        yield port


def test_ingest_into_chroma_server(tmp_path, chroma_server, embed):
    settings = Settings(data_dir=tmp_path / "data", chroma_mode="http", chroma_port=chroma_server)
    store = open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM)
    assert store.location == f"http://127.0.0.1:{chroma_server}"
    ing = Ingestor(settings, store, embed)
    first = ing.run([CORPUS], progress=False)
    assert first.ok and first.articles.added == 2
    assert store.count() == first.chunks.added
    again = ing.run([CORPUS], progress=False)
    assert again.articles.unchanged == 2 and again.chunks.added == 0
    assert store.info()["articles"]["unchanged"] == 2
    assert not (tmp_path / "data" / "chroma").exists()  # nothing written locally
