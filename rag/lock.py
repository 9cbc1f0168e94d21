"""One writer at a time per data dir: an inter-process file lock around every ingestion.

Chroma's PersistentClient is not safe for two writing processes: both runs report success and
the store is left with chunks missing embeddings or not findable by their own vector. Every
ingestion (CLI, UI upload, watch) holds this lock for its whole run; a second one waits.

The lock is a `flock` on `<data_dir>/ingest.lock`, so the kernel releases it when the holder
dies, even by kill -9: no stale lock files. It serialises writers that share a data dir. Writers
on other machines that share a Chroma server are not covered: run those one at a time.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "ingest.lock"
POLL_SECONDS = 0.2  # how often a waiting writer retries; short next to any ingestion

_held = threading.local()  # data dirs this thread holds, so a nested ingestion does not deadlock


def holder(path: Path) -> int | None:
    """The pid recorded by the process that holds (or last held) the lock."""
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def is_locked(data_dir: Path) -> bool:
    """Whether some process is ingesting into `data_dir` right now."""
    path = data_dir / LOCK_NAME
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


@contextmanager
def ingest_lock(
    data_dir: Path,
    notify: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Iterator[None]:
    """Hold the data dir's ingestion lock; wait, saying who holds it, while another has it.

    `notify` receives the one waiting message (the CLI prints it; default: log a warning).
    `timeout` (seconds) raises TimeoutError instead of waiting forever.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    key = str(path.resolve())
    held: set[str] = _held.__dict__.setdefault("paths", set())
    if key in held:
        yield
        return
    # "a+" never truncates: the holder's pid stays readable while we wait.
    fh = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder(path)
            msg = f"another ingestion is running (pid {pid or 'unknown'}); waiting"
            (notify or log.warning)(msg)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(
                            f"another ingestion (pid {holder(path) or 'unknown'}) still holds "
                            f"{path} after {timeout:.0f} s"
                        ) from None
                    time.sleep(POLL_SECONDS)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        fh.close()  # closing releases the flock
