from __future__ import annotations

import os
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared" / "data" / "realtimeqa"


def _load_netguard():
    """The loopback-only guard (tests/netguard/sitecustomize.py), here and in child processes."""
    import importlib.util
    import tempfile

    folder = Path(__file__).resolve().parent / "netguard"
    spec = importlib.util.spec_from_file_location("rag_test_netguard", folder / "sitecustomize.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not os.environ.get(module.ENV):
        fd, log = tempfile.mkstemp(prefix="rag-netguard-", suffix=".log")
        os.close(fd)
        os.environ[module.ENV] = log
    paths = [str(folder), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    module.install()
    return module


NETGUARD = _load_netguard()


@pytest.fixture(autouse=True)
def loopback_only():
    """Fail any test that tried to reach beyond 127.0.0.0/8 and ::1, itself or in a child."""
    log = Path(os.environ[NETGUARD.ENV])
    seen, logged = len(NETGUARD.violations), log.stat().st_size if log.exists() else 0
    yield
    new = NETGUARD.violations[seen:]
    if log.exists() and log.stat().st_size > logged:
        with open(log, encoding="utf-8") as fh:
            fh.seek(logged)
            new = [*new, *fh.read().splitlines()]
    if new:
        pytest.fail("this test reached beyond loopback:\n" + "\n".join(new), pytrace=False)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from rag.config import Settings

    monkeypatch.delenv("RAG_CONFIG_FILE", raising=False)
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def embed():
    from rag.embeddings import OnnxMiniLMEmbedding

    return OnnxMiniLMEmbedding()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def wait_for_http(url: str, proc, log: Path | None = None, seconds: float = 180) -> None:
    """Wait until `url` answers, failing with the server's log if it dies or never does."""
    import time
    import urllib.request

    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                tail = log.read_text()[-3000:] if log and log.exists() else ""
                raise RuntimeError(f"server at {url} did not start\n{tail}") from None
            time.sleep(0.5)


@contextmanager
def running_server(cmd: list[str], ready_url: str, log_dir: Path, seconds: float = 180, **popen):
    """Start a server process, wait until `ready_url` answers, and stop it afterwards."""
    log = log_dir / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, **popen)
    try:
        wait_for_http(ready_url, proc, log, seconds)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
