"""The Chroma store: an in-process PersistentClient by default, an HttpClient by configuration.

The collection is the single source of truth for what is indexed. Each chunk's metadata holds
its article's content hash; chunk 0 of an article is written last and so marks the article
complete. An ingestion killed half-way leaves articles without their marker, which the next run
rewrites from scratch.

Beside it, a small companion collection `<name>__log` records which articles each write
touched, in order (a change log). It travels with the store, so every process, on this machine
or on another one sharing a Chroma server, can bring its derived indexes (the keyword index) up
to date by reading only the articles that changed. The log's head sequence number lives in the
main collection's metadata, where one cheap read tells whether anything changed.

A PersistentClient caches the store's vector index in memory, and another process's writes make
that copy stale: queries miss new articles and `get` fails with "Error finding id". So each
store watches the head (at most every `CHECK_SECONDS`) and reopens the client when a write came
from another process. Errors from Chroma never leave this module raw: they become
`StoreUnavailable` with a message that says what to do.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from rag.config import Settings
from rag.errors import StoreUnavailable

log = logging.getLogger(__name__)

PAGE = 1000  # rows per request when reading the whole collection
LOG_SUFFIX = "__log"
OPEN_RETRY_SECONDS = 30.0  # how long opening waits for another process setting up the store
# Log entries older than this are dropped after an ingestion; a process that has not looked
# for longer (a server stopped for a week) sees the gap and rebuilds its keyword index instead.
LOG_KEEP_SECONDS = 7 * 86400
CHECK_SECONDS = 0.25  # how stale a process's view of the log head may be; a check costs ~1 ms
# A change still marked in progress after this long, by a writer we cannot see alive, was left by
# a crash; readers then take the store as it is (integrity verify reports what the crash left).
STALE_PENDING_SECONDS = 600.0
RETRY_HINT = (
    "If another process is ingesting, retry in a moment; if it persists, run "
    "`rag status --verify` (and `--repair`)."
)

# Identifies this process's writes in the log, so it reopens only for others' writes.
PROCESS_TOKEN = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _caller_error(e: Exception) -> bool:
    """Errors that mean a bad request from our code, not a broken or stale store."""
    from chromadb.errors import (
        DuplicateIDError,
        InvalidArgumentError,
        InvalidDimensionException,
    )

    return isinstance(
        e, DuplicateIDError | InvalidArgumentError | InvalidDimensionException | TypeError
    ) or (type(e) is ValueError)


T = TypeVar("T")


def _setup_race(e: Exception) -> bool:
    return "locked" in str(e) or "already exists" in str(e)


def _waiting_out_setup(open_: Callable[[], T]) -> T:
    """`open_()`, tried again for up to OPEN_RETRY_SECONDS while another process is creating
    the same store: it fails meanwhile with "database is locked" or "table ... already exists"."""
    deadline = time.monotonic() + OPEN_RETRY_SECONDS
    while True:
        try:
            return open_()
        except Exception as e:
            if not (_setup_race(e) and time.monotonic() < deadline):
                raise
            time.sleep(0.2)


def make_chroma_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_mode == "http":
        try:
            client = chromadb.HttpClient(
                host=settings.chroma_host,
                port=settings.chroma_port,
                ssl=settings.chroma_ssl,
                headers=settings.chroma_headers or None,
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as e:  # chromadb raises several kinds for a refused connection
            raise StoreUnavailable(
                f"cannot reach the Chroma server at {settings.store_location} ({e}). Start it "
                "with `chroma run --path DIR --port PORT`, or unset RAG_CHROMA_MODE to use the "
                "local store."
            ) from e
        return client
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)

    def open_locked():
        # Processes open the store one at a time: two creating a new store at once race in
        # Chroma's setup (a half-built binding). The lock is held only while opening.
        with open(settings.chroma_dir / ".open.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return chromadb.PersistentClient(
                path=str(settings.chroma_dir), settings=chroma_settings
            )

    try:
        return _waiting_out_setup(open_locked)
    except Exception as e:
        raise StoreUnavailable(f"cannot open the store at {settings.chroma_dir} ({e})") from e


class _Clients:
    """One PersistentClient per path in this process, replaced whole when it goes stale.

    Chroma itself shares one System per path, so a reopen must drop that System for every
    store object of the path; they notice the new generation and fetch their collection again.
    """

    _lock = threading.Lock()
    _by_path: dict[str, tuple[int, Any]] = {}

    @classmethod
    def get(cls, path: str, factory) -> tuple[int, Any]:
        with cls._lock:
            if path not in cls._by_path:
                cls._by_path[path] = (0, factory())
            return cls._by_path[path]

    @classmethod
    def reopen(cls, path: str, factory, seen_generation: int) -> tuple[int, Any]:
        from chromadb.api.shared_system_client import SharedSystemClient

        with cls._lock:
            gen, client = cls._by_path.get(path, (-1, None))
            if gen != seen_generation and client is not None:
                return gen, client  # another store object of this path already reopened
            if client is not None:
                ident = str(getattr(client, "_identifier", ""))
                system = SharedSystemClient._identifier_to_system.pop(ident, None)
                SharedSystemClient._identifier_to_refcount.pop(ident, None)
                if system is not None:
                    try:
                        system.stop()
                    except Exception as e:  # the old System is dropped either way
                        log.debug("stopping a stale Chroma system: %s", e)
            cls._by_path[path] = (gen + 1, factory())
            log.info("reopened the store at %s after another process wrote to it", path)
            return cls._by_path[path]


def collection_name(prefix: str, model: str, dim: int) -> str:
    """One collection per embedding model and dimension, so vectors of two models never mix."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"{prefix}_{slug}_{dim}"[:500]


@dataclass
class IndexedArticle:
    doc_id: str
    fingerprint: str
    path: str
    title: str
    n_chunks: int
    screen: str = ""  # the planted-text detector that screened it (rag/screen.py)


@dataclass
class Change:
    """One write to the store: the articles it touched (added, replaced or removed)."""

    seq: int
    doc_ids: list[str]
    op: str  # "write" or "delete"
    done: bool
    time: float
    writer: str

    def stale(self, now: float | None = None) -> bool:
        """A pending change whose writer is gone: it will never be marked done."""
        if self.done:
            return False
        host, _, rest = self.writer.partition(":")
        pid = int(rest.partition(":")[0] or 0)
        if host == socket.gethostname() and pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return (now or time.time()) - self.time > STALE_PENDING_SECONDS


class _Guarded:
    """A Chroma collection whose errors become StoreUnavailable, after one reopen and retry."""

    def __init__(self, store: ArticleStore, collection: Any) -> None:
        self._store = store
        self._collection = collection

    def __bool__(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except Exception as e:
                if _caller_error(e):
                    raise
                first = e
            # A stale or broken client: reopen once, then give up with a clear message.
            try:
                fresh = self._store._reopen()
                return getattr(fresh, name)(*args, **kwargs)
            except StoreUnavailable:
                raise
            except Exception as e:
                if _caller_error(e):
                    raise
                raise StoreUnavailable(
                    f"the store at {self._store.location} failed ({first}). {RETRY_HINT}"
                ) from e

        return call


class ArticleStore:
    """Article-level operations on one Chroma collection, and its change log."""

    def __init__(
        self,
        client: Any,
        name: str,
        model: str,
        dim: int,
        location: str,
        reopen_key: str | None = None,
        factory=None,
        generation: int = 0,
    ) -> None:
        self.name = name
        self.log_name = name + LOG_SUFFIX
        self.model = model
        self.dim = dim
        self.location = location
        # Only a local (persistent) store can go stale; a server owns its index.
        self._key = reopen_key
        self._factory = factory
        self._generation = generation
        self._lock = threading.RLock()
        self._checked = 0.0
        self._undated: tuple[tuple[int, int], bool] | None = None  # (store signature, answer)
        self._attach(client)
        self._sig = self._signature(self._metadata())
        self._head = self._sig[0]

    def _attach(self, client: Any) -> None:
        self.client = client

        def collections() -> tuple[Any, Any]:
            return client.get_or_create_collection(
                name=self.name,
                metadata={"embed_model": self.model, "dim": self.dim},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            ), client.get_or_create_collection(
                name=self.log_name, metadata={"kind": "change log"}, embedding_function=None
            )

        try:
            self._collection, self._log = _waiting_out_setup(collections)
        except Exception as e:
            raise StoreUnavailable(
                f"cannot open collection {self.name} at {self.location} ({e}). {RETRY_HINT}"
            ) from e

    def _reopen(self) -> Any:
        """A fresh client for this store's path (no-op for a server); returns the collection."""
        with self._lock:
            if self._key is None:
                return self._collection
            gen, client = _Clients.reopen(self._key, self._factory, self._generation)
            self._generation = gen
            self._attach(client)
            return self._collection

    def _sync_client(self) -> None:
        if self._key is None:
            return
        gen, client = _Clients.get(self._key, self._factory)
        if gen != self._generation:
            with self._lock:
                self._generation = gen
                self._attach(client)

    @property
    def collection(self) -> _Guarded:
        """The chunk collection, fresh: reopened if another process wrote since we looked."""
        self.refresh()
        return _Guarded(self, self._collection)

    def refresh(self, max_age: float = CHECK_SECONDS) -> int:
        """The log head, re-read at most every `max_age` seconds; reopens after outside writes."""
        now = time.monotonic()
        if now - self._checked < max_age:
            return self._head
        self._sync_client()
        meta = self._metadata()
        sig = self._signature(meta)
        with self._lock:
            self._checked = now
            if sig != self._sig:
                if meta.get("log_writer") != PROCESS_TOKEN:
                    self._reopen()
                self._sig = sig
                self._head = sig[0]
        return self._head

    @staticmethod
    def _signature(meta: dict) -> tuple[int, int]:
        # Both numbers move on every write (head when it starts, done when it ends).
        return int(meta.get("log_head", 0)), int(meta.get("log_done", 0))

    # Reading ------------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def _pages(self, where: dict | None, include: list[str]) -> Iterator[dict]:
        coll = self.collection
        offset = 0
        while True:
            page = coll.get(where=where, include=include, limit=PAGE, offset=offset)
            if not page["ids"]:
                return
            yield page
            offset += len(page["ids"])

    def indexed(self) -> dict[str, IndexedArticle]:
        """Complete articles (those whose marker chunk exists), by article id."""
        out: dict[str, IndexedArticle] = {}
        for page in self._pages({"chunk_index": 0}, ["metadatas"]):
            for meta in page["metadatas"]:
                out[meta["doc_id"]] = IndexedArticle(
                    doc_id=meta["doc_id"],
                    fingerprint=meta.get("fingerprint", ""),
                    path=meta.get("path", ""),
                    title=meta.get("title", ""),
                    n_chunks=int(meta.get("n_chunks", 0)),
                    screen=str(meta.get("screen", "")),
                )
        return out

    def all_chunks(self) -> Iterator[tuple[str, str, dict]]:
        """(id, text, metadata) of every chunk: what the keyword index is built from."""
        for page in self._pages(None, ["documents", "metadatas"]):
            yield from zip(page["ids"], page["documents"], page["metadatas"], strict=True)

    def article_chunks(
        self, doc_ids: Sequence[str], embeddings: bool = False
    ) -> Iterator[tuple[str, str, dict, Any]]:
        """(id, text, metadata, embedding or None) of every chunk of these articles."""
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        coll = self.collection
        ids = list(dict.fromkeys(doc_ids))
        for i in range(0, len(ids), 100):  # keeps each `$in` filter small
            got = coll.get(where={"doc_id": {"$in": ids[i : i + 100]}}, include=include)
            vecs = got.get("embeddings") if embeddings else None
            for j, cid in enumerate(got["ids"]):
                vec = vecs[j] if vecs is not None else None
                yield cid, got["documents"][j], got["metadatas"][j], vec

    def article_text(self, doc_id: str) -> str:
        """The cleaned article, rebuilt from its chunks' spans (chunks tile the article)."""
        got = self.collection.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        if not got["ids"]:
            raise KeyError(f"no article '{doc_id}' in the store")
        length = int(got["metadatas"][0].get("article_chars", 0))
        buf = ["\n"] * length  # gaps between chunks are the line breaks they were cut at
        for text, meta in zip(got["documents"], got["metadatas"], strict=True):
            start = json.loads(meta["_node_content"]).get("start_char_idx") or 0
            buf[start : start + len(text)] = text
        return "".join(buf[:length]) if length else "".join(buf)

    def has_undated(self) -> bool:
        """Does any chunk lack a date? Asked once per change of the store: Chroma answers by
        scanning every chunk's metadata when none does (17 ms at 100k chunks)."""
        self.refresh()
        sig = self._sig
        if self._undated is None or self._undated[0] != sig:
            found = self.collection.get(where={"date": ""}, limit=1, include=[])["ids"]
            self._undated = (sig, bool(found))
        return self._undated[1]

    def sources(self) -> list[str]:
        return sorted(
            {
                m.get("source", "")
                for p in self._pages({"chunk_index": 0}, ["metadatas"])
                for m in p["metadatas"]
            }
            - {""}
        )

    # Writing ------------------------------------------------------------------------------
    def delete_articles(self, doc_ids: Sequence[str]) -> None:
        coll = self.collection
        for i in range(0, len(doc_ids), 500):
            coll.delete(where={"doc_id": {"$in": list(doc_ids[i : i + 500])}})

    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict],
    ) -> None:
        step = self._max_batch()
        coll = self.collection
        for i in range(0, len(ids), step):
            coll.upsert(
                ids=ids[i : i + step],
                embeddings=embeddings[i : i + step],
                documents=documents[i : i + step],
                metadatas=metadatas[i : i + step],
            )

    def update_metadata(self, ids: list[str], metadatas: list[dict]) -> None:
        """Replace the metadata of stored chunks, keeping their text and vectors."""
        step = self._max_batch()
        coll = self.collection
        for i in range(0, len(ids), step):
            coll.update(ids=ids[i : i + step], metadatas=metadatas[i : i + step])

    def _max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # older servers do not say
            return 1000

    # Change log ---------------------------------------------------------------------------
    def _read_head(self) -> int:
        return int(self._metadata().get("log_head", 0))

    @contextmanager
    def changing(self, doc_ids: Sequence[str], op: str = "write") -> Iterator[int]:
        """Record a write to these articles: pending before it starts, done when it ends.

        Readers apply changes in order and stop at a pending one, so they never index an
        article half-written. The entry is marked done even when the write fails, so a live
        writer never blocks readers; what a failure left is whatever the store now holds.
        Callers hold the ingestion lock, which keeps sequence numbers unique per data dir.
        """
        seq = self._read_head() + 1
        meta = {"seq": seq, "op": op, "done": False, "time": time.time(), "writer": PROCESS_TOKEN}
        entry_id = f"{seq:012d}"
        doc = json.dumps(list(doc_ids))
        self._log_upsert(entry_id, doc, meta)
        # The head moves first so other processes start watching, then again when done.
        self._bump(log_head=seq)
        try:
            yield seq
        finally:
            self._log_upsert(entry_id, doc, {**meta, "done": True})
            self._bump(log_done=seq)

    def _bump(self, **values: int) -> None:
        with self._lock:
            self._update_metadata(log_writer=PROCESS_TOKEN, **values)
            # Our own write: this process's client is not stale, so no reopen for it.
            self._sig = self._signature(self._metadata())
            self._head = self._sig[0]

    def _log_upsert(self, entry_id: str, doc: str, meta: dict) -> None:
        # Chroma stores an embedding with every record; the log's is a constant placeholder.
        _Guarded(self, self._log).upsert(
            ids=[entry_id], embeddings=[[1.0]], documents=[doc], metadatas=[meta]
        )

    def changes_since(self, seq: int) -> list[Change]:
        """Log entries after `seq`, oldest first."""
        got = _Guarded(self, self._log).get(
            where={"seq": {"$gt": seq}}, include=["documents", "metadatas"]
        )
        out = [
            Change(
                seq=int(m["seq"]),
                doc_ids=json.loads(d),
                op=str(m.get("op", "write")),
                done=bool(m.get("done", True)),
                time=float(m.get("time", 0)),
                writer=str(m.get("writer", "")),
            )
            for d, m in zip(got["documents"], got["metadatas"], strict=True)
        ]
        return sorted(out, key=lambda c: c.seq)

    def log_done(self) -> int:
        """The last change whose write has ended."""
        return int(self._metadata().get("log_done", 0))

    def log_floor(self) -> int:
        """Entries up to this sequence number were trimmed: a reader behind it must rebuild."""
        return int(self._metadata().get("log_floor", 0))

    def trim_log(self, keep_seconds: float = LOG_KEEP_SECONDS, now: float | None = None) -> int:
        """Drop finished entries older than `keep_seconds` (call with the ingestion lock), so
        the log stays small however long the store lives. Returns how many were dropped."""
        cutoff = (time.time() if now is None else now) - keep_seconds
        got = _Guarded(self, self._log).get(
            where={"$and": [{"time": {"$lt": cutoff}}, {"done": True}]}, include=["metadatas"]
        )
        if not got["ids"]:
            return 0
        floor = max(int(m["seq"]) for m in got["metadatas"])
        # The floor moves before the entries go, so no reader can miss them unawares.
        self._bump(log_floor=max(floor, self.log_floor()))
        for i in range(0, len(got["ids"]), 500):
            _Guarded(self, self._log).delete(ids=got["ids"][i : i + 500])
        log.info(
            "change log: dropped %d entries older than %.0f days",
            len(got["ids"]),
            keep_seconds / 86400,
        )
        return len(got["ids"])

    def log_id(self) -> str:
        """Identifies this log: a recreated store gets a new one, so derived indexes rebuild."""
        return f"{self._collection.id}:{self._log.id}"

    def finish_stale_changes(self) -> int:
        """Mark changes a crashed writer left pending as done (call with the ingestion lock)."""
        n = 0
        for c in self.changes_since(int(self._metadata().get("log_done", 0))):
            if not c.done:
                meta = {"seq": c.seq, "op": c.op, "done": True, "time": c.time, "writer": c.writer}
                self._log_upsert(f"{c.seq:012d}", json.dumps(c.doc_ids), meta)
                n += 1
        return n

    # Ingestion bookkeeping, kept in the collection's metadata so it travels with the store -----
    def _metadata(self) -> dict:
        # Re-read: another process, or another machine on a Chroma server, may have written.
        try:
            got = self.client.get_collection(self.name, embedding_function=None)
        except Exception as e:
            raise StoreUnavailable(
                f"cannot read collection {self.name} at {self.location} ({e}). {RETRY_HINT}"
            ) from e
        return dict(got.metadata or {})

    def _update_metadata(self, **values: str | int) -> None:
        meta = {**self._metadata(), "embed_model": self.model, "dim": self.dim, **values}
        _Guarded(self, self._collection).modify(metadata=meta)

    def info(self) -> dict:
        raw = self._metadata().get("last_ingestion")
        return json.loads(raw) if raw else {}

    def set_info(self, info: dict) -> None:
        self._update_metadata(last_ingestion=json.dumps(info))

    def newest_date(self) -> int:
        """The latest date_num (YYYYMMDD) any ingestion stored, 0 when unknown (older stores).

        An as-of filter at or after it removes nothing, so a retriever can skip it: a filtered
        Chroma query is 30-50x slower than an unfiltered one (160-300 ms vs 6 ms at 10k chunks).
        """
        return int(self._metadata().get("max_date_num", 0))

    def note_dates(self, newest: int) -> None:
        if newest > self.newest_date():
            self._update_metadata(max_date_num=newest)

    def write_stamp(self) -> str:
        """Changes whenever an ingestion starts or ends."""
        return str(self._metadata().get("write_stamp", ""))

    def mark_changed(self) -> None:
        self._update_metadata(write_stamp=uuid.uuid4().hex)

    def chunk_articles(self) -> dict[str, str]:
        """Article id -> source path for every chunk, complete or not (for --prune)."""
        out: dict[str, str] = {}
        for page in self._pages(None, ["metadatas"]):
            for meta in page["metadatas"]:
                out.setdefault(meta["doc_id"], meta.get("path", ""))
        return out


def open_store(settings: Settings, model: str, dim: int, name: str | None = None) -> ArticleStore:
    name = name or collection_name(settings.collection_prefix, model, dim)
    if settings.chroma_mode == "http":
        client = make_chroma_client(settings)
        return ArticleStore(client, name, model, dim, settings.store_location)
    key = str(settings.chroma_dir.resolve())

    def factory():
        return make_chroma_client(settings)

    gen, client = _Clients.get(key, factory)
    return ArticleStore(client, name, model, dim, settings.store_location, key, factory, gen)
