"""Questions first: background ingestion pauses while a question is being answered.

On a laptop the answer (llama.cpp) and a watcher's ingestion (onnxruntime embeddings) share the
same few cores, and thread priorities cannot help: both do their work in native thread pools.
So the server's watcher embeds in small slices and, before each slice, waits while any question
is in progress. An answer is then delayed by at most one slice; ingestion uses the gaps between
questions, and never waits longer than `max_wait` for one slice, so a steady stream of questions
slows it down without stopping it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT_S = 30.0  # a slice waits at most this long for the questions to finish


class Foreground:
    def __init__(self, max_wait: float = MAX_WAIT_S) -> None:
        self.max_wait = max_wait
        self._active = 0
        self._idle = threading.Condition()
        self.waited = 0.0  # seconds background work spent waiting (for logs and benchmarks)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Hold while answering a question."""
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                if self._active == 0:
                    self._idle.notify_all()

    @property
    def active(self) -> int:
        return self._active

    def wait_idle(self) -> None:
        """Called by background work between slices: returns when no question is in progress,
        or after `max_wait` seconds."""
        started = time.perf_counter()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=self.max_wait)
        self.waited += time.perf_counter() - started
