"""The watched feeds and pages, kept in the data dir (feeds.sqlite3) so they outlive the server:
added and removed in the UI's Feeds panel, run by `rag serve` with the same Watcher as `--watch`,
each with when it last ran and what that run added."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rag.errors import InvalidInput
from rag.ingest import IngestReport

FEEDS_FILE = "feeds.sqlite3"
MAX_URL_CHARS = 2000
MAX_FEEDS = 500  # each is fetched every run; more belongs in a crawler, not this list
WAIT_SECONDS = 10.0  # for another writer (the watcher's thread, a second server)


@dataclass(frozen=True)
class Feed:
    url: str
    added: str  # UTC, YYYY-MM-DD HH:MM
    last_run: str = ""  # "" until it first ran
    last_result: str = ""  # e.g. "2 added, 0 updated, 5 unchanged"
    last_error: str = ""  # why the last run read nothing, when it failed
    total_added: int = 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_url(text: str) -> str:
    """The URL to watch, trimmed; a clear error for anything that cannot be one."""
    url = (text or "").strip()
    if not url:
        raise InvalidInput("give the address of a feed or page, like https://example.org/feed.xml")
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"that address is {len(url)} characters long; the limit is 2000")
    parts = urlsplit(url if "://" in url else "")
    if parts.scheme.lower() not in ("http", "https"):
        shown = url if len(url) <= 80 else url[:80] + "…"
        raise InvalidInput(
            f"{shown!r} is not a web address; give one starting with https:// or http://"
        )
    if any(c.isspace() for c in url):
        raise InvalidInput("a web address has no spaces; paste just one address")
    try:
        host, _port = parts.hostname, parts.port  # a bad port raises here
    except ValueError as e:
        raise InvalidInput(f"{url!r} is not a valid web address ({e})") from None
    if not host:
        raise InvalidInput(f"{url!r} has no site name after {parts.scheme}://")
    if parts.username or parts.password:
        raise InvalidInput("leave the user name and password out of the address")
    return url


class FeedList:
    """The watched URLs in `data_dir/feeds.sqlite3`; safe to use from several threads and
    processes at once."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FEEDS_FILE

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=WAIT_SECONDS)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS feeds (url TEXT PRIMARY KEY, added TEXT NOT NULL, "
                "last_run TEXT NOT NULL DEFAULT '', last_result TEXT NOT NULL DEFAULT '', "
                "last_error TEXT NOT NULL DEFAULT '', total_added INTEGER NOT NULL DEFAULT 0)"
            )
            with conn:  # one transaction, committed on success
                yield conn
        finally:
            conn.close()

    def all(self) -> list[Feed]:
        """Every watched URL, in the order they were added."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT url, added, last_run, last_result, last_error, total_added "
                "FROM feeds ORDER BY rowid"
            ).fetchall()
        return [Feed(*row) for row in rows]

    def urls(self) -> list[str]:
        return [f.url for f in self.all()]

    def get(self, url: str) -> Feed | None:
        return next((f for f in self.all() if f.url == url), None)

    def add(self, text: str) -> Feed:
        url = check_url(text)
        with self._connect() as conn:
            known = conn.execute("SELECT added FROM feeds WHERE url = ?", (url,)).fetchone()
            if known:
                raise InvalidInput(f"{url} is already watched (since {known[0]})")
            (n,) = conn.execute("SELECT COUNT(*) FROM feeds").fetchone()
            if n >= MAX_FEEDS:
                raise InvalidInput(f"{MAX_FEEDS} feeds are watched already; remove one first")
            conn.execute("INSERT INTO feeds (url, added) VALUES (?, ?)", (url, _now()))
        feed = self.get(url)
        assert feed is not None
        return feed

    def remove(self, url: str) -> None:
        """Stop watching `url` (what it added stays indexed)."""
        with self._connect() as conn:
            gone = conn.execute("DELETE FROM feeds WHERE url = ?", (url,)).rowcount
        if not gone:
            raise InvalidInput(f"{url} is not watched; pick one from the list")

    def record(self, url: str, report: IngestReport | None, error: str = "") -> None:
        """Note a run of `url`: its report, or the error that stopped it. A feed removed while
        it ran is not brought back."""
        if report is not None:
            a = report.articles
            result = f"{a.added} added, {a.updated} updated, {a.unchanged} unchanged"
            failed = [e.reason for e in report.errors]
            added = a.added
            if failed and not (a.added or a.updated or a.unchanged):
                error = error or failed[0]
            elif failed:
                result += f", {len(failed)} failed"
        else:
            result, added = "", 0
        with self._connect() as conn:
            conn.execute(
                "UPDATE feeds SET last_run = ?, last_result = ?, last_error = ?, "
                "total_added = total_added + ? WHERE url = ?",
                (_now(), result, error, added, url),
            )
