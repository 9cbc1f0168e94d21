"""What is indexed: the answer to `rag status`."""

from __future__ import annotations

from rag.config import Settings
from rag.store import ArticleStore


def status(settings: Settings) -> dict:
    from rag.components import build

    return describe(build(settings).store)


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
