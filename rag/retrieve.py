"""Hybrid retrieval: vector search in Chroma plus BM25, fused by reciprocal rank."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from llama_index.core import VectorStoreIndex
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.keyword import KeywordIndex
from rag.store import ArticleStore


def _day(value: str | dt.date | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be a date like 2024-05-31, not {value!r}") from None
    return value.year * 10000 + value.month * 100 + value.day


@dataclass(frozen=True)
class Filters:
    """Metadata filters: one source, and an inclusive date range (YYYY-MM-DD)."""

    source: str | None = None
    since: str | dt.date | None = None
    until: str | dt.date | None = None

    @property
    def since_num(self) -> int | None:
        return _day(self.since, "since")

    @property
    def until_num(self) -> int | None:
        return _day(self.until, "until")

    def validate(self) -> Filters:
        if self.since_num and self.until_num and self.since_num > self.until_num:
            raise ValueError("since must not be after until")
        return self

    def to_metadata_filters(self) -> MetadataFilters | None:
        parts = []
        if self.source:
            parts.append(MetadataFilter(key="source", value=self.source))
        if self.since_num:
            parts.append(
                MetadataFilter(key="date_num", value=self.since_num, operator=FilterOperator.GTE)
            )
        if self.until_num:
            parts.append(
                MetadataFilter(key="date_num", value=self.until_num, operator=FilterOperator.LTE)
            )
        return MetadataFilters(filters=parts) if parts else None


class HybridRetriever(BaseRetriever):
    """Top-k chunks by reciprocal rank fusion of vector and BM25 rankings.

    Each returned node's metadata gains `vector_score` (cosine similarity, or None when only
    BM25 found it) and `keyword_score`, which later steps use to judge confidence.
    """

    def __init__(
        self,
        store: ArticleStore,
        keyword: KeywordIndex,
        embed: BaseEmbedding,
        top_k: int = 6,
        rrf_k: int = 60,
        filters: Filters | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.keyword = keyword
        self.embed = embed
        self.top_k = top_k
        self.rrf_k = rrf_k
        self.filters = filters or Filters()
        vector_store = ChromaVectorStore(chroma_collection=store.collection)
        self._index = VectorStoreIndex.from_vector_store(vector_store, embed_model=embed)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        candidates = self.top_k * 2
        vector = self._index.as_retriever(
            similarity_top_k=candidates, filters=self.filters.to_metadata_filters()
        ).retrieve(query_bundle)
        keyword = self.keyword.search(
            query_bundle.query_str,
            candidates,
            source=self.filters.source,
            since=self.filters.since_num,
            until=self.filters.until_num,
        )
        fused: dict[str, float] = {}
        for rank, hit in enumerate(vector):
            fused[hit.node.node_id] = fused.get(hit.node.node_id, 0) + 1 / (self.rrf_k + rank + 1)
        for rank, kh in enumerate(keyword):
            fused[kh.chunk_id] = fused.get(kh.chunk_id, 0) + 1 / (self.rrf_k + rank + 1)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[: self.top_k]

        nodes = {h.node.node_id: h.node for h in vector}
        # Chroma's similarity is exp(-distance); with cosine distance that is exp(cos - 1).
        cosine = {h.node.node_id: 1 + math.log(max(h.score or 1e-9, 1e-9)) for h in vector}
        self._fetch([cid for cid in best if cid not in nodes], query_bundle, nodes, cosine)
        kw = {k.chunk_id: k.score for k in keyword}
        out = []
        for cid in best:
            if cid not in nodes:
                continue  # deleted between the two lookups
            node = nodes[cid]
            node.metadata["vector_score"] = cosine[cid]
            node.metadata["keyword_score"] = kw.get(cid, 0.0)
            out.append(NodeWithScore(node=node, score=fused[cid]))
        return out

    def _fetch(
        self,
        ids: list[str],
        query_bundle: QueryBundle,
        nodes: dict[str, TextNode],
        cosine: dict[str, float],
    ) -> None:
        """Load the chunks only BM25 found, with their cosine similarity to the query."""
        if not ids:
            return
        got = self.store.collection.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        q = query_bundle.embedding
        for cid, text, meta, vec in zip(
            got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
        ):
            nodes[cid] = metadata_dict_to_node(meta, text=text)
            cosine[cid] = float(sum(a * b for a, b in zip(q, vec, strict=True))) if q else 0.0
