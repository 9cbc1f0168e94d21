"""The Chroma store: an in-process PersistentClient by default, an HttpClient by configuration.

The collection is the single source of truth for what is indexed. Each chunk's metadata holds
its article's content hash; chunk 0 of an article is written last and so marks the article
complete. An ingestion killed half-way leaves articles without their marker, which the next run
rewrites from scratch.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.config import Settings
from rag.errors import StoreUnavailable

log = logging.getLogger(__name__)

PAGE = 1000  # rows per request when reading the whole collection


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
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


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


class ArticleStore:
    """Article-level operations on one Chroma collection."""

    def __init__(self, client: Any, name: str, model: str, dim: int, location: str) -> None:
        self.client = client
        self.name = name
        self.model = model
        self.dim = dim
        self.location = location
        self.collection = client.get_or_create_collection(
            name=name,
            metadata={"embed_model": model, "dim": dim},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    # Reading ------------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def _pages(self, where: dict | None, include: list[str]) -> Iterator[dict]:
        offset = 0
        while True:
            page = self.collection.get(where=where, include=include, limit=PAGE, offset=offset)
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
                )
        return out

    def all_chunks(self) -> Iterator[tuple[str, str, dict]]:
        """(id, text, metadata) of every chunk: what the keyword index is built from."""
        for page in self._pages(None, ["documents", "metadatas"]):
            yield from zip(page["ids"], page["documents"], page["metadatas"], strict=True)

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
        for i in range(0, len(doc_ids), 500):
            self.collection.delete(where={"doc_id": {"$in": list(doc_ids[i : i + 500])}})

    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict],
    ) -> None:
        step = self._max_batch()
        for i in range(0, len(ids), step):
            self.collection.upsert(
                ids=ids[i : i + step],
                embeddings=embeddings[i : i + step],
                documents=documents[i : i + step],
                metadatas=metadatas[i : i + step],
            )

    def _max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # older servers do not say
            return 1000

    # Ingestion bookkeeping, kept in the collection's metadata so it travels with the store -----
    def _metadata(self) -> dict:
        # Re-read: another process, or another machine on a Chroma server, may have written.
        return dict(self.client.get_collection(self.name, embedding_function=None).metadata or {})

    def _update_metadata(self, **values: str) -> None:
        meta = {**self._metadata(), "embed_model": self.model, "dim": self.dim, **values}
        self.collection.modify(metadata=meta)

    def info(self) -> dict:
        raw = self._metadata().get("last_ingestion")
        return json.loads(raw) if raw else {}

    def set_info(self, info: dict) -> None:
        self._update_metadata(last_ingestion=json.dumps(info))

    def write_stamp(self) -> str:
        """Changes whenever an ingestion starts or ends: derived indexes compare it."""
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
    client = make_chroma_client(settings)
    name = name or collection_name(settings.collection_prefix, model, dim)
    return ArticleStore(client, name, model, dim, settings.store_location)
