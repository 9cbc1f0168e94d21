"""Continuous ingestion: re-ingest paths and feeds on a schedule (`rag watch`, `rag serve --watch`).

Each run is an ordinary incremental ingestion, so only new and changed articles cost work; feeds
and pages are fetched conditionally (rag/web.py). One log line per run says what happened.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.errors import InvalidInput
from rag.feeds import FeedList
from rag.ingest import Ingestor, IngestReport

log = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 10.0  # faster polling only hammers feeds and the store


def parse_interval(text: str) -> float:
    """'90s', '10m', '2h', '1d' or plain seconds, as seconds."""
    m = _INTERVAL.match(text or "")
    if not m:
        raise InvalidInput(f"--every takes a duration like 30s, 10m or 2h, not {text!r}")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()]
    if seconds < MIN_INTERVAL_S:
        raise InvalidInput(f"--every must be at least {MIN_INTERVAL_S:g} seconds")
    return seconds


def summary(report: IngestReport) -> str:
    a = report.articles
    return (
        f"{a.added} added, {a.updated} updated, {a.unchanged} unchanged, {a.removed} removed, "
        f"{len(report.errors)} failed in {report.seconds:.1f} s"
    )


class Watcher:
    """Runs `ingestor` over `sources` every `every` seconds until stopped, and over each URL of
    `feeds` (the list kept in the data dir, re-read every run), noting each one's result."""

    def __init__(
        self,
        ingestor: Ingestor,
        sources: Sequence[str | Path],
        every: float,
        on_report: Callable[[IngestReport], None] | None = None,
        feeds: FeedList | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.sources = list(sources)
        self.every = every
        self.on_report = on_report
        self.feeds = feeds
        self.runs = 0
        self._stop = threading.Event()

    def run_once(self) -> IngestReport | None:
        """One run: the sources together, then each watched feed on its own (so each one's
        result can be shown). The sources' report, or None."""
        report = self._run(self.sources) if self.sources else None
        if self.feeds is not None:
            for url in self.feeds.urls():
                if self._stop.is_set():
                    break
                self.run_feed(url)
        if report is not None or not self.sources:  # a failed run is tried again, not counted
            self.runs += 1
        return report

    def run_feed(self, url: str) -> IngestReport | None:
        """Ingest one watched feed or page now, and note the result in the feed list."""
        assert self.feeds is not None
        try:
            report = self._run([url], raise_errors=True)
        except Exception as e:
            self.feeds.record(url, None, error=str(e))
            return None
        self.feeds.record(url, report)
        return report

    def _run(
        self, sources: Sequence[str | Path], raise_errors: bool = False
    ) -> IngestReport | None:
        try:
            report = self.ingestor.run(sources, progress=False)
        except Exception as e:  # one failed run (store busy, network down) must not end the watch
            log.error("watch run failed: %s; trying again in %.0f s", e, self.every)
            if raise_errors:
                raise
            return None
        what = "watch run" if sources == self.sources else f"watch {sources[0]}"
        log.info("%s %d: %s", what, self.runs + 1, summary(report))
        for err in report.errors:
            log.warning("  %s", err)
        for note in report.warnings:  # e.g. a feed that suddenly lists far fewer entries
            log.warning("  warning: %s", note)
        if self.on_report is not None:
            self.on_report(report)
        return report

    def run_forever(self, max_runs: int | None = None) -> None:
        while not self._stop.is_set():
            self.run_once()
            if max_runs is not None and self.runs >= max_runs:
                return
            self._stop.wait(self.every)

    def start(self) -> threading.Thread:
        """Watch in a background thread (for `rag serve --watch`)."""
        thread = threading.Thread(target=self.run_forever, name="rag-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
