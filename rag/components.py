"""The composition root: the one place that turns Settings into the parts the library runs on.

Every entry point (engine, ingestion, status, evals, UI) builds its embedding model and store
here, so a backend choice is made once and the same objects are shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.config import Settings
from rag.store import ArticleStore


@dataclass
class Components:
    settings: Settings
    embed: BaseEmbedding
    store: ArticleStore


def build(settings: Settings) -> Components:
    """The embedding model the settings name, and the store of its collection."""
    from rag.embeddings import embedding_id, make_embedding
    from rag.store import open_store

    embed = make_embedding(settings)
    model, dim = embedding_id(embed)
    return Components(settings, embed, open_store(settings, model, dim))
