"""BM25 keyword index over the chunks in Chroma, updated article by article.

News questions hinge on names, numbers and dates, which small embedding models blur; BM25
catches them. The index is derived data in a SQLite FTS5 table (`bm25()` ranking, incremental,
in the standard library) under `<keyword_dir>/<collection>/fts.sqlite3`. Text is tokenized,
stemmed and stripped of stopwords in Python (bm25s' tokenizer with PyStemmer's English stemmer),
so FTS5 only stores and ranks the terms.

The index follows the store's change log (see rag/store.py): it keeps the sequence number of the
last change it applied, and on a search (at most every store.CHECK_SECONDS) re-reads only the
articles changed since. Processes sharing a data dir share the file; SQLite serialises their
updates, and the first one to apply a change does it for all. A missing index, one built for
another store, or one of an older format is built once from the whole store.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.store import ArticleStore

log = logging.getLogger(__name__)

FORMAT = "fts5-1"  # bump when the schema or tokenization changes: the index is rebuilt
# A term in more than this share of the chunks adds next to nothing to a BM25 score (FTS5's idf
# is clamped near 0 beyond half), yet makes the query score every one of those chunks.
# Small indexes are cheap to score in full, and there every term counts.
MAX_DF_SHARE = 0.5
DF_CUTOFF_FROM = 10_000  # chunks
BUILD_BATCH = 2000  # chunks tokenized and inserted together in a full build

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    rowid INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS docs(doc_id TEXT PRIMARY KEY, fingerprint TEXT, n_chunks INTEGER);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    body, source UNINDEXED, date_num UNINDEXED,
    tokenize = "unicode61 remove_diacritics 0 tokenchars '_'");
CREATE VIRTUAL TABLE IF NOT EXISTS vocab USING fts5vocab(fts, 'row');
"""


@dataclass
class KeywordHit:
    chunk_id: str
    score: float


_stemmer_local = threading.local()


def _stemmer():
    # PyStemmer objects are not thread-safe; one per thread.
    st = getattr(_stemmer_local, "stemmer", None)
    if st is None:
        import Stemmer

        st = _stemmer_local.stemmer = Stemmer.Stemmer("english")
    return st


def tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


def _doc_text(text: str, meta: dict) -> str:
    return f"{meta.get('title', '')}\n{text}"


class KeywordIndex:
    def __init__(self, store: ArticleStore, folder: Path) -> None:
        self.store = store
        self.folder = folder / store.name
        self.path = self.folder / "fts.sqlite3"
        self._local = threading.local()
        self._sync_lock = threading.Lock()
        self._in_step_with = -2  # the store head this process last found the index in step with
        self._total: int | None = None  # chunks in the index, for the query-term cutoff

    # Connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must stay in their thread)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Autocommit mode; transactions are explicit. WAL lets searches read while
            # another thread or process applies changes. A long wait beats a failed search.
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._local.conn = conn
        return conn

    def _state(self, conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT key, value FROM state").fetchall())

    # Keeping in step ----------------------------------------------------------------------
    def ensure_fresh(self) -> int:
        """Apply the store's changes since the last update; returns how many articles changed."""
        head = self.store.refresh()
        if head == self._in_step_with:
            return 0
        with self._sync_lock:
            if head == self._in_step_with:
                return 0
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")  # one updater at a time, across processes too
            self._total = None
            try:
                n, in_step = self._update(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if in_step:
                self._in_step_with = head
            return n

    def _update(self, conn: sqlite3.Connection) -> tuple[int, bool]:
        state = self._state(conn)
        log_id = self.store.log_id()
        if state.get("format") != FORMAT or state.get("log_id") != log_id:
            return self._rebuild(conn, log_id), True
        cursor = int(state.get("cursor", "0"))
        changed: list[str] = []
        in_step = True
        for change in self.store.changes_since(cursor):
            if not change.done and not change.stale():
                in_step = False  # a write in progress: apply it once it is done
                break
            changed += change.doc_ids
            cursor = change.seq
        if changed:
            self._replace_articles(conn, changed)
            log.info("keyword index: %d articles updated", len(set(changed)))
        conn.execute("REPLACE INTO state VALUES ('cursor', ?)", (str(cursor),))
        return len(set(changed)), in_step

    def _rebuild(self, conn: sqlite3.Connection, log_id: str) -> int:
        # Changes done before we read are in the build; later ones are replayed (idempotent).
        cursor = self.store.log_done()
        for table in ("fts", "chunks", "docs", "state"):
            conn.execute(f"DELETE FROM {table}")
        batch: list[tuple[str, str, dict]] = []
        for cid, text, meta in self.store.all_chunks():
            batch.append((cid, text, meta))
            if len(batch) >= BUILD_BATCH:
                self._insert(conn, batch)
                batch = []
        self._insert(conn, batch)
        self._drop_incomplete(conn)
        for key, value in (("format", FORMAT), ("log_id", log_id), ("cursor", str(cursor))):
            conn.execute("REPLACE INTO state VALUES (?, ?)", (key, value))
        n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        log.info("keyword index built: %d chunks", n)
        return n

    def _replace_articles(self, conn: sqlite3.Connection, doc_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(doc_ids))
        self._delete(conn, ids)
        rows = [(cid, text, meta) for cid, text, meta, _ in self.store.article_chunks(ids)]
        self._insert(conn, rows)
        self._drop_incomplete(conn, ids)

    def _delete(self, conn: sqlite3.Connection, doc_ids: list[str]) -> None:
        for i in range(0, len(doc_ids), 500):
            part = doc_ids[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = f"SELECT rowid FROM chunks WHERE doc_id IN ({marks})"
            conn.execute(f"DELETE FROM fts WHERE rowid IN ({rows})", part)
            conn.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", part)
            conn.execute(f"DELETE FROM docs WHERE doc_id IN ({marks})", part)

    def _insert(self, conn: sqlite3.Connection, rows: list[tuple[str, str, dict]]) -> None:
        if not rows:
            return
        tokens = tokenize([_doc_text(text, meta) for _, text, meta in rows])
        for (cid, _, meta), toks in zip(rows, tokens, strict=True):
            cur = conn.execute(
                "INSERT OR REPLACE INTO chunks(chunk_id, doc_id) VALUES (?, ?)",
                (cid, meta["doc_id"]),
            )
            conn.execute(
                "INSERT INTO fts(rowid, body, source, date_num) VALUES (?, ?, ?, ?)",
                (cur.lastrowid, " ".join(toks), meta.get("source", ""), meta.get("date_num", 0)),
            )
            if meta.get("chunk_index") == 0:
                conn.execute(
                    "INSERT OR REPLACE INTO docs VALUES (?, ?, ?)",
                    (meta["doc_id"], meta.get("fingerprint", ""), int(meta.get("n_chunks", 0))),
                )

    def _drop_incomplete(self, conn: sqlite3.Connection, doc_ids: list[str] | None = None) -> None:
        """Chunks of articles without their marker are not indexed: they are not complete yet."""
        where = "doc_id NOT IN (SELECT doc_id FROM docs)"
        args: list[str] = []
        if doc_ids is not None:
            if not doc_ids:
                return
            where += f" AND doc_id IN ({','.join('?' * len(doc_ids))})"
            args = doc_ids
        conn.execute(
            f"DELETE FROM fts WHERE rowid IN (SELECT rowid FROM chunks WHERE {where})", args
        )
        conn.execute(f"DELETE FROM chunks WHERE {where}", args)

    def rebuild(self) -> int:
        """Build the whole index again from the store (repair); returns the chunk count."""
        with self._sync_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = self._rebuild(conn, self.store.log_id())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._in_step_with = -2
            self._total = None
            return n

    def repair(self, doc_ids: list[str]) -> int:
        """Re-read these articles from the store (integrity repair); returns how many."""
        if not doc_ids:
            return 0
        with self._sync_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._replace_articles(conn, doc_ids)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._total = None
        return len(doc_ids)

    # Introspection (integrity checks) -------------------------------------------------------
    def articles(self) -> dict[str, str]:
        """Article id -> fingerprint of every article the index holds."""
        self.ensure_fresh()
        return dict(self._conn().execute("SELECT doc_id, fingerprint FROM docs").fetchall())

    def chunk_count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def cursor(self) -> int:
        return int(self._state(self._conn()).get("cursor", "-1"))

    # Searching ----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[KeywordHit]:
        self.ensure_fresh()
        terms = list(dict.fromkeys(tokenize([query])[0]))
        if not terms or k <= 0:
            return []
        conn = self._conn()
        terms = self._useful(conn, terms)
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        sql = "SELECT rowid, bm25(fts) AS s FROM fts WHERE fts MATCH ?"
        args: list[object] = [match]
        if source:
            sql += " AND source = ?"
            args.append(source)
        if since:
            sql += " AND date_num >= ?"
            args.append(since)
        if until:
            sql += " AND date_num <= ? AND date_num > 0"
            args.append(until)
        sql += " ORDER BY s LIMIT ?"
        args.append(k)
        # One read transaction: the hits and their ids come from the same version.
        conn.execute("BEGIN")
        try:
            rows = conn.execute(sql, args).fetchall()
            ids = dict(
                conn.execute(
                    f"SELECT rowid, chunk_id FROM chunks WHERE rowid IN "
                    f"({','.join('?' * len(rows))})",
                    [r[0] for r in rows],
                ).fetchall()
            )
        finally:
            conn.execute("COMMIT")
        # FTS5's bm25() is negative, lower is better.
        return [KeywordHit(ids[r], -s) for r, s in rows if r in ids and s < 0]

    def _useful(self, conn: sqlite3.Connection, terms: list[str]) -> list[str]:
        """The query terms present in the index and not in most chunks."""
        marks = ",".join("?" * len(terms))
        df = dict(conn.execute(f"SELECT term, doc FROM vocab WHERE term IN ({marks})", terms))
        if self._total is None:
            self._total = self.chunk_count()
        present = [t for t in terms if df.get(t, 0) > 0]
        if self._total < DF_CUTOFF_FROM:
            return present
        rare = [t for t in present if df[t] <= MAX_DF_SHARE * self._total]
        return rare or present
