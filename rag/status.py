"""What is indexed: the answer to `rag status`."""

from __future__ import annotations

from rag.config import Settings
from rag.embeddings import embedding_id, make_embedding
from rag.store import ArticleStore, open_store


def status(settings: Settings) -> dict:
    model, dim = embedding_id(make_embedding(settings))
    return describe(open_store(settings, model, dim))


def describe(store: ArticleStore) -> dict:
    return {
        "store": store.location,
        "collection": store.name,
        "embed_model": store.model,
        "dim": store.dim,
        "articles": len(store.indexed()),
        "chunks": store.count(),
        "last_ingestion": store.info() or None,
    }
