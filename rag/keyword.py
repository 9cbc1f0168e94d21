"""BM25 keyword index over the chunks in Chroma, updated article by article.

News questions hinge on names, numbers and dates, which small embedding models blur; BM25
catches them. The index is derived data under `<keyword_dir>/<collection>/`: a Tantivy index
(BM25, block-max top-k search, deletes and adds per article) for the terms, and a small SQLite
database for its bookkeeping (change-log cursor, articles held), which also serialises updates
across processes. Text is tokenized, stemmed and stripped of stopwords in Python (bm25s'
tokenizer with PyStemmer's English stemmer, as before), so Tantivy only stores and ranks terms.

Why Tantivy (bench/keyword_quality.py, bench/scale.py): SQLite FTS5 scores every chunk that
holds any query term, 0.3-1.6 s a question at 100k chunks; Tantivy takes about 1 ms there and
builds 100k chunks in 10 s where FTS5 takes 140 s.

The index follows the store's change log (see rag/store.py): it keeps the sequence number of the
last change it applied, and on a search (at most every store.CHECK_SECONDS) re-reads only the
articles changed since. Processes sharing a data dir share the file; SQLite serialises their
updates, and the first one to apply a change does it for all. A missing index, one built for
another store, or one of an older format is built once from the whole store.

The index is derived data, so damage to it is never fatal: files that cannot be opened or read,
that lost documents (deleted segment files, a deleted folder), or whose footer CRC32 does not
match (flipped bytes that still open and silently find nothing), a bookkeeping database that
cannot be read (moved aside), and a cursor ahead of the store's change log (a store restored
from a backup) are found when a process opens the index or an update or search fails, logged
as a warning, and the index is built again from the store.
`check()` reports such damage without repairing it (`rag status --verify`); `rebuild()` starts
from empty files (`rag status --repair`).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.store import ArticleStore

log = logging.getLogger(__name__)

FORMAT = "tantivy-1"  # bump when the schema or tokenization changes: the index is rebuilt
BUILD_BATCH = 2000  # chunks tokenized and inserted together in a full build
WRITER_HEAP = 64_000_000  # bytes Tantivy buffers before flushing a segment
# Tantivy reports unreadable files as ValueError, and some corrupt ones as a Rust panic, which
# pyo3 raises as a BaseException; these are the only BaseExceptions that are not damage.
_NOT_DAMAGE = (KeyboardInterrupt, SystemExit, GeneratorExit)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    rowid INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS docs(doc_id TEXT PRIMARY KEY, fingerprint TEXT, n_chunks INTEGER);
"""


class StateDamaged(Exception):
    """The bookkeeping database cannot be read (derived data: it is moved aside and rebuilt)."""


def _footer_damage(terms_dir: Path) -> list[str]:
    """Segment files whose footer CRC32 does not match their body: flipped bytes open and
    search without error but find nothing, so only the checksum Tantivy writes shows them."""
    try:
        meta = json.loads((terms_dir / "meta.json").read_text())
        segments = {s["segment_id"].replace("-", "") for s in meta["segments"]}
    except (OSError, ValueError, KeyError, TypeError):
        return []  # opening the index reports an unreadable meta.json
    bad = []
    for f in sorted(terms_dir.iterdir()):
        if f.name.split(".")[0] not in segments:
            continue  # meta.json, lock files, leftovers of an uncommitted write
        try:
            body = f.read_bytes()
            n, _magic = struct.unpack("<II", body[-8:])
            crc = json.loads(body[-8 - n : -8])["crc"]
            ok = n + 8 <= len(body) and zlib.crc32(body[: -8 - n]) == crc
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            ok = False
        if not ok:
            bad.append(f.name)
    return bad


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    # Terms arrive stemmed and space-separated; frequencies without positions are all BM25 needs.
    sb.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    sb.add_text_field("doc_id", stored=False, tokenizer_name="raw")
    sb.add_text_field("source", stored=False, tokenizer_name="raw")
    sb.add_integer_field("date_num", stored=False, indexed=True, fast=True)
    return sb.build()


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
        self.path = self.folder / "state.sqlite3"
        self.terms_dir = self.folder / "tantivy"
        self._local = threading.local()
        self._sync_lock = threading.RLock()
        self._schema = _schema()
        self._index: Any = None  # opened on first use
        self._open_lock = threading.Lock()
        self._in_step_with = -2  # the store head this process last found the index in step with

    # Connections --------------------------------------------------------------------------
    def _conn(self, heal: bool = True) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must stay in their thread). A database
        that cannot be read is moved aside and started afresh (`heal`), else StateDamaged."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as e:
                if not heal:
                    raise StateDamaged(str(e)) from e
                self._discard_state(f"its bookkeeping {self.path} cannot be read ({e})")
                conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode; transactions are explicit. WAL lets searches read while
        # another thread or process applies changes. A long wait beats a failed search.
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            for table in ("state", "chunks", "docs"):  # a truncated file fails here
                conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _discard_state(self, reason: str) -> None:
        """Move an unreadable bookkeeping database aside (kept for a post-mortem); with no
        bookkeeping the index counts as never built, so the next update builds it."""
        self._warn_rebuild(reason)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        aside = f".damaged-{int(time.time())}"
        for f in self.folder.glob("state.sqlite3*"):
            f.rename(f.with_name(f.name + aside))
        self._in_step_with = -2

    def _tantivy(self):
        import tantivy

        with self._open_lock:
            if self._index is None:
                self.terms_dir.mkdir(parents=True, exist_ok=True)
                self._index = tantivy.Index(self._schema, path=str(self.terms_dir), reuse=True)
            return self._index

    def _open_checked(self, conn: sqlite3.Connection) -> None:
        """Open the Tantivy files (caller holds the SQLite write lock); files that cannot be
        read, or that lost documents, are replaced by empty ones and rebuilt by `_update`."""
        built = self._state(conn).get("format") == FORMAT
        problem = None
        try:
            bad = _footer_damage(self.terms_dir) if built else []
            if built and not (self.terms_dir / "meta.json").exists():
                problem = "its files are missing"
            elif bad:  # checked before opening: some damage makes Tantivy panic noisily
                problem = f"its checksums do not match in {', '.join(bad)}"
            else:
                n, held = self._tantivy().searcher().num_docs, self._held(conn)
                if built and n != held:
                    problem = f"it holds {n} chunks where its bookkeeping holds {held}"
        except BaseException as e:
            if isinstance(e, _NOT_DAMAGE):
                raise
            problem = f"it cannot be read ({e})"
        if problem:
            self._warn_rebuild(problem)
            self._empty_files()
            conn.execute("DELETE FROM state WHERE key = 'format'")  # `_update` rebuilds

    def _warn_rebuild(self, reason: str) -> None:
        log.warning("keyword index at %s: %s; rebuilding it from the store", self.folder, reason)

    def _empty_files(self) -> None:
        """Replace the Tantivy files with an empty index (caller holds the SQLite write lock)."""
        with self._open_lock:
            self._index = None
            shutil.rmtree(self.terms_dir, ignore_errors=True)
        self._tantivy()

    def _held(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    @contextmanager
    def _updating(self, check: bool = True) -> Iterator[sqlite3.Connection]:
        """The SQLite write lock (one updater at a time, across processes too), with the Tantivy
        files opened and checked under it; afterwards, a reload shows what was committed."""
        with self._sync_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if check and self._index is None:
                    self._open_checked(conn)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._tantivy().reload()  # see what this or another process committed

    @contextmanager
    def _writer(self):
        """Tantivy's one writer; callers hold the SQLite write lock, so one process at a time."""
        writer = self._tantivy().writer(heap_size=WRITER_HEAP, num_threads=1)
        try:
            yield writer
            writer.commit()
            writer.wait_merging_threads()  # also releases Tantivy's writer lock file
        except BaseException:
            writer.rollback()
            raise

    def _state(self, conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT key, value FROM state").fetchall())

    # Keeping in step ----------------------------------------------------------------------
    def ensure_fresh(self) -> int:
        """Apply the store's changes since the last update; returns how many articles changed."""
        head = self.store.refresh()
        if head == self._in_step_with and self._index is not None:
            return 0
        with self._sync_lock:
            if head == self._in_step_with and self._index is not None:
                return 0
            try:
                with self._updating() as conn:
                    n, in_step = self._update(conn)
            except BaseException as e:
                # Files deleted under a running process, a damaged bookkeeping database: one
                # rebuild, not a failure on every later search until a restart.
                if isinstance(e, _NOT_DAMAGE):
                    raise
                return self.rebuild(reason=f"an update failed ({e})")
            if in_step:
                self._in_step_with = head
            return n

    def _update(self, conn: sqlite3.Connection) -> tuple[int, bool]:
        state = self._state(conn)
        log_id = self.store.log_id()
        if state.get("format") != FORMAT or state.get("log_id") != log_id:
            return self._rebuild(conn, log_id), True
        cursor = int(state.get("cursor", "0"))
        head = self.store.refresh(max_age=0)  # read under the write lock: the cursor is fixed
        if cursor > head:  # a store restored from a backup, a folder copied from another
            self._warn_rebuild(f"its change-log cursor {cursor} is ahead of the store's {head}")
            return self._rebuild(conn, log_id), True
        changes = self.store.changes_since(cursor)
        # Read after the log: the floor moves before entries are dropped, so a trim that raced
        # with the read above shows here.
        if cursor < self.store.log_floor():  # entries we never read were trimmed
            log.info("keyword index: behind the trimmed change log; rebuilding")
            return self._rebuild(conn, log_id), True
        changed: list[str] = []
        in_step = True
        for change in changes:
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
        # A crashed writer's entry, closed later, may sit above log_done; the floor covers it.
        cursor = max(self.store.log_done(), self.store.log_floor())
        for table in ("chunks", "docs", "state"):
            conn.execute(f"DELETE FROM {table}")
        with self._writer() as writer:
            writer.delete_all_documents()
            batch: list[tuple[str, str, dict]] = []
            for cid, text, meta in self.store.all_chunks():
                batch.append((cid, text, meta))
                if len(batch) >= BUILD_BATCH:
                    self._insert(conn, writer, batch)
                    batch = []
            self._insert(conn, writer, batch)
            self._drop_incomplete(conn, writer)
        for key, value in (("format", FORMAT), ("log_id", log_id), ("cursor", str(cursor))):
            conn.execute("REPLACE INTO state VALUES (?, ?)", (key, value))
        n = self._held(conn)
        log.info("keyword index built: %d chunks", n)
        return n

    def _replace_articles(self, conn: sqlite3.Connection, doc_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(doc_ids))
        rows = [(cid, text, meta) for cid, text, meta, _ in self.store.article_chunks(ids)]
        with self._writer() as writer:
            self._delete(conn, writer, ids)
            self._insert(conn, writer, rows)
            self._drop_incomplete(conn, writer, ids)

    def _delete(self, conn: sqlite3.Connection, writer, doc_ids: list[str]) -> None:
        for doc_id in doc_ids:
            writer.delete_documents_by_term("doc_id", doc_id)
        for i in range(0, len(doc_ids), 500):
            part = doc_ids[i : i + 500]
            marks = ",".join("?" * len(part))
            conn.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", part)
            conn.execute(f"DELETE FROM docs WHERE doc_id IN ({marks})", part)

    def _insert(self, conn: sqlite3.Connection, writer, rows: list[tuple[str, str, dict]]) -> None:
        import tantivy

        if not rows:
            return
        tokens = tokenize([_doc_text(text, meta) for _, text, meta in rows])
        for (cid, _, meta), toks in zip(rows, tokens, strict=True):
            conn.execute(
                "INSERT OR REPLACE INTO chunks(chunk_id, doc_id) VALUES (?, ?)",
                (cid, meta["doc_id"]),
            )
            writer.add_document(
                tantivy.Document(
                    body=" ".join(toks),
                    chunk_id=cid,
                    doc_id=meta["doc_id"],
                    source=meta.get("source", ""),
                    date_num=int(meta.get("date_num", 0)),
                )
            )
            if meta.get("chunk_index") == 0:
                conn.execute(
                    "INSERT OR REPLACE INTO docs VALUES (?, ?, ?)",
                    (meta["doc_id"], meta.get("fingerprint", ""), int(meta.get("n_chunks", 0))),
                )

    def _drop_incomplete(
        self, conn: sqlite3.Connection, writer, doc_ids: list[str] | None = None
    ) -> None:
        """Chunks of articles without their marker are not indexed: they are not complete yet."""
        where = "doc_id NOT IN (SELECT doc_id FROM docs)"
        args: list[str] = []
        if doc_ids is not None:
            if not doc_ids:
                return
            where += f" AND doc_id IN ({','.join('?' * len(doc_ids))})"
            args = doc_ids
        partial = [
            r[0] for r in conn.execute(f"SELECT DISTINCT doc_id FROM chunks WHERE {where}", args)
        ]
        for doc_id in partial:
            writer.delete_documents_by_term("doc_id", doc_id)
        conn.execute(f"DELETE FROM chunks WHERE {where}", args)

    def rebuild(self, reason: str = "") -> int:
        """Build the whole index again from the store, from empty files (repair, or `reason`
        found at run time, which is logged); returns the chunk count."""
        if reason:
            self._warn_rebuild(reason)
        try:
            n = self._rebuild_from_empty()
        except sqlite3.DatabaseError as e:  # the bookkeeping broke under an open connection
            self._discard_state(f"its bookkeeping cannot be read ({e})")
            n = self._rebuild_from_empty()
        self._in_step_with = -2
        return n

    def _rebuild_from_empty(self) -> int:
        with self._updating(check=False) as conn:
            self._empty_files()
            return self._rebuild(conn, self.store.log_id())

    def repair(self, doc_ids: list[str]) -> int:
        """Re-read these articles from the store (integrity repair); returns how many."""
        if not doc_ids:
            return 0
        with self._updating() as conn:
            self._replace_articles(conn, doc_ids)
        return len(doc_ids)

    # Introspection (integrity checks) -------------------------------------------------------
    def articles(self) -> dict[str, str]:
        """Article id -> fingerprint of every article the index holds."""
        self.ensure_fresh()
        return dict(self._conn().execute("SELECT doc_id, fingerprint FROM docs").fetchall())

    def chunk_count(self) -> int:
        return self._held(self._conn())

    def cursor(self) -> int:
        return int(self._state(self._conn()).get("cursor", "-1"))

    def chunk_ids(self) -> dict[str, set[str]]:
        """Article id -> ids of the chunks the index holds for it."""
        self.ensure_fresh()
        out: dict[str, set[str]] = {}
        for cid, doc_id in self._conn().execute("SELECT chunk_id, doc_id FROM chunks"):
            out.setdefault(doc_id, set()).add(cid)
        return out

    def check(self) -> list[str]:
        """What is wrong with the Tantivy files, found without changing anything: [] when they
        are sound, or not built yet (the first search builds them). Reads every document's id
        and one term's postings, with the SQLite write lock held so no update is half-done."""
        with self._sync_lock:
            try:
                conn = self._conn(heal=False)
                conn.execute("BEGIN IMMEDIATE")
            except (StateDamaged, sqlite3.DatabaseError) as e:
                return [f"its bookkeeping {self.path} cannot be read ({e})"]
            try:
                return self._check_files(conn)
            except sqlite3.DatabaseError as e:
                return [f"its bookkeeping {self.path} cannot be read ({e})"]
            finally:
                with suppress(sqlite3.DatabaseError):  # already reported
                    conn.execute("ROLLBACK")

    def _check_files(self, conn: sqlite3.Connection) -> list[str]:
        import tantivy

        state = self._state(conn)
        if state.get("format") != FORMAT:
            return []
        cursor, head = int(state.get("cursor", "0")), self.store.refresh(max_age=0)
        if cursor > head:
            return [f"its change-log cursor {cursor} is ahead of the store's head {head}"]
        held = {r[0] for r in conn.execute("SELECT chunk_id FROM chunks")}
        if not (self.terms_dir / "meta.json").exists():
            return [f"the Tantivy files are missing from {self.terms_dir}"]
        bad = _footer_damage(self.terms_dir)
        if bad:
            return [f"the Tantivy files {', '.join(bad)} fail their checksum"]
        try:
            searcher = tantivy.Index.open(str(self.terms_dir)).searcher()
            n = searcher.num_docs
            every = searcher.search(tantivy.Query.all_query(), max(n, 1))
            addrs = [a for _, a in every.hits]
            ids = [searcher.doc(a)["chunk_id"][0] for a in addrs]
            searcher.fast_field_values("date_num", addrs)
            body = tantivy.Query.term_query(self._schema, "body", "news")
            searcher.search(body, 1)
        except BaseException as e:
            if isinstance(e, _NOT_DAMAGE):
                raise
            return [f"the Tantivy index in {self.terms_dir} cannot be read ({e})"]
        if n != len(held) or set(ids) != held:
            lost, extra = len(held - set(ids)), len(set(ids) - held)
            return [
                f"the Tantivy index holds {n} chunks where its bookkeeping holds {len(held)} "
                f"({lost} missing, {extra} unknown)"
            ]
        return []

    # Searching ----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[KeywordHit]:
        import tantivy

        self.ensure_fresh()
        terms = list(dict.fromkeys(tokenize([query])[0]))
        if not terms or k <= 0:
            return []
        schema = self._schema
        should = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms]
        )
        must = [(tantivy.Occur.Must, should)]
        if source:
            must.append((tantivy.Occur.Must, tantivy.Query.term_query(schema, "source", source)))
        if since or until:
            # An article without a date (0) never falls in a range that has an end.
            low = since or 1
            rng = tantivy.Query.range_query(
                schema, "date_num", tantivy.FieldType.Integer, low, until
            )
            must.append((tantivy.Occur.Must, rng))
        q = tantivy.Query.boolean_query(must) if len(must) > 1 else should
        try:
            return self._search(q, k)
        except BaseException as e:
            if isinstance(e, _NOT_DAMAGE):
                raise
            self.rebuild(reason=f"a search failed ({e})")
        return self._search(q, k)

    def _search(self, q, k: int) -> list[KeywordHit]:
        searcher = self._tantivy().searcher()
        hits = searcher.search(q, k).hits
        return [
            KeywordHit(searcher.doc(addr)["chunk_id"][0], float(score))
            for score, addr in hits
            if score > 0
        ]
