"""Checking the store for damage, and repairing it at a cost proportional to the damage.

What can go wrong: writers that were not serialised (two PersistentClients writing at once),
a crash between an article's chunks, or a derived index that missed a change. `verify` finds

- chunks whose embedding cannot be read ("Error getting embedding"),
- chunks that no search can find by their own vector (a damaged vector index),
- articles that are incomplete: body chunks without their marker, or a marker whose article
  lacks some of its chunks,
- a keyword index whose files are missing, unreadable, fail their checksum or hold other chunks
  than its bookkeeping, whose bookkeeping cannot be read, or whose change-log cursor is ahead of
  the store's (a store restored from a backup),
- articles the keyword index holds differently from the store (fingerprint or chunk ids),

and `repair` rewrites only the articles concerned: re-embedded from their stored text when it
is all there, removed (so the next `rag ingest` adds them again) when it is not; a damaged
keyword index is built again.

Exactness. Chroma's vector search is approximate (HNSW, ef 100), and identical texts share a
vector, so a chunk's own vector may return other chunks first: a miss of the first, top-5 query
is confirmed by a query allowed only the chunk's own id, which hnswlib answers by walking every
node reachable in the graph. Only a chunk that walk cannot reach (or that is not in the vector
index at all) is reported. Verify must also not run beside a writer: a half-done write looks like
damage. `rag status --verify` holds the ingestion lock for that (rag/status.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import MetadataMode
from llama_index.core.vector_stores.utils import metadata_dict_to_node

from rag.keyword import KeywordIndex
from rag.lock import ingest_lock
from rag.store import ArticleStore

log = logging.getLogger(__name__)

BATCH = 500  # chunks read or queried per request
NEIGHBOURS = 5  # identical texts share a vector, so a chunk may tie with a few others
WIDER = 100  # a second, cheaper look for the misses before the exact one
SAME = 1e-4  # cosine distance under which two vectors are the same one


@dataclass
class IntegrityReport:
    chunks: int = 0
    articles: int = 0
    missing_embeddings: list[str] = field(default_factory=list)  # chunk ids
    unfindable: list[str] = field(default_factory=list)  # chunk ids
    incomplete: dict[str, str] = field(default_factory=dict)  # article id -> what is wrong
    keyword_out_of_step: list[str] = field(default_factory=list)  # article ids
    keyword_damage: list[str] = field(default_factory=list)  # what is wrong with its files
    vectors_checked: bool = True

    @property
    def ok(self) -> bool:
        return not (
            self.missing_embeddings
            or self.unfindable
            or self.incomplete
            or self.keyword_out_of_step
            or self.keyword_damage
        )

    def damaged_articles(self) -> set[str]:
        """Articles whose chunks in the store need rewriting (not just the keyword index)."""
        docs = {cid.rsplit("#", 1)[0] for cid in self.missing_embeddings + self.unfindable}
        return docs | set(self.incomplete)

    def to_dict(self) -> dict:
        return {"ok": self.ok, **asdict(self)}


@dataclass
class RepairReport:
    rewritten: list[str] = field(default_factory=list)  # re-embedded from their stored text
    removed: list[str] = field(default_factory=list)  # text incomplete: `rag ingest` re-adds
    keyword_fixed: int = 0  # articles re-read into the keyword index
    keyword_rebuilt: bool = False  # the keyword index was damaged and built again
    after: IntegrityReport | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["after"] = self.after.to_dict() if self.after else None
        return d


def verify(
    store: ArticleStore, keyword: KeywordIndex | None = None, check_vectors: bool = True
) -> IntegrityReport:
    """Read the whole store once (and query it once per chunk when `check_vectors`)."""
    report = IntegrityReport(vectors_checked=check_vectors)
    per_doc: dict[str, list[int]] = defaultdict(list)
    chunks: dict[str, set[str]] = defaultdict(set)
    markers: dict[str, int] = {}
    ids: list[str] = []
    for page in store._pages(None, ["metadatas"]):
        for cid, meta in zip(page["ids"], page["metadatas"], strict=True):
            ids.append(cid)
            per_doc[meta["doc_id"]].append(int(meta.get("chunk_index", -1)))
            chunks[meta["doc_id"]].add(cid)
            if meta.get("chunk_index") == 0:
                markers[meta["doc_id"]] = int(meta.get("n_chunks", 0))
    report.chunks = len(ids)
    report.articles = len(markers)
    for doc_id, indexes in per_doc.items():
        if doc_id not in markers:
            report.incomplete[doc_id] = "chunks without the article's marker (chunk 0)"
        elif sorted(indexes) != list(range(markers[doc_id])):
            report.incomplete[doc_id] = (
                f"{len(indexes)} of its {markers[doc_id]} chunks are in the store"
            )
    if check_vectors:
        for i in range(0, len(ids), BATCH):
            _check_vectors(store, ids[i : i + BATCH], report)
    if keyword is not None:
        _check_keyword(store, keyword, chunks, report)
    return report


def _check_keyword(
    store: ArticleStore,
    keyword: KeywordIndex,
    chunks: dict[str, set[str]],
    report: IntegrityReport,
) -> None:
    """The keyword index against the store: its files first, then article by article."""
    report.keyword_damage = keyword.check()
    if report.keyword_damage:
        return  # reading it now would rebuild it; repair does
    indexed = {d: a.fingerprint for d, a in store.indexed().items()}
    held, held_chunks = keyword.articles(), keyword.chunk_ids()
    report.keyword_out_of_step = sorted(
        d
        for d in set(indexed) | set(held)
        if indexed.get(d) != held.get(d) or (d in indexed and chunks[d] != held_chunks.get(d))
    )


def _embeddings(store: ArticleStore, ids: list[str], report: IntegrityReport) -> dict[str, list]:
    """Embeddings by chunk id; an unreadable one is narrowed down to its chunk by halving."""
    try:
        got = store._collection.get(ids=ids, include=["embeddings"])
    except Exception:
        if len(ids) == 1:
            report.missing_embeddings.append(ids[0])
            return {}
        mid = len(ids) // 2
        return _embeddings(store, ids[:mid], report) | _embeddings(store, ids[mid:], report)
    out = {}
    for cid, vec in zip(got["ids"], got["embeddings"], strict=True):
        if vec is None or len(vec) != store.dim:
            report.missing_embeddings.append(cid)
        else:
            out[cid] = vec
    report.missing_embeddings += [c for c in ids if c not in got["ids"]]
    return out


def _check_vectors(store: ArticleStore, ids: list[str], report: IntegrityReport) -> None:
    vecs = _embeddings(store, ids, report)
    if not vecs:
        return
    missed = _misses(store, vecs, min(NEIGHBOURS, max(1, report.chunks)))
    missed = _misses(store, {c: vecs[c] for c in missed}, min(WIDER, max(1, report.chunks)))
    report.unfindable += [c for c in missed if not _reachable(store, c, vecs[c])]


def _misses(store: ArticleStore, vecs: dict[str, list], n: int) -> list[str]:
    """The chunks a top-n query with their own vector does not return."""
    if not vecs:
        return []
    try:
        hits = store._collection.query(
            query_embeddings=list(vecs.values()), n_results=n, include=[]
        )["ids"]
    except Exception as e:
        log.warning("vector search failed for %d chunks: %s", len(vecs), e)
        hits = [[] for _ in vecs]
    return [cid for cid, found in zip(vecs, hits, strict=True) if cid not in found]


def _reachable(store: ArticleStore, cid: str, vec: list) -> bool:
    """Exact: a query allowed only this id makes hnswlib visit every node it can reach."""
    try:
        got = store._collection.query(
            query_embeddings=[vec], ids=[cid], n_results=1, include=["distances"]
        )
    except Exception as e:  # not in the vector index at all ("Error finding id")
        log.warning("chunk %s: exact vector search failed: %s", cid, e)
        return False
    ids, dists = got["ids"][0], (got["distances"] or [[]])[0]
    return ids == [cid] and bool(dists) and dists[0] <= SAME


def repair(
    store: ArticleStore,
    embed: BaseEmbedding,
    data_dir: Path,
    keyword: KeywordIndex | None = None,
    report: IntegrityReport | None = None,
) -> RepairReport:
    """Rewrite the damaged articles (holding the ingestion lock), then verify again."""
    from rag.ingest import write_articles

    report = report or verify(store, keyword)
    out = RepairReport()
    damaged = sorted(report.damaged_articles())
    with ingest_lock(data_dir):
        store.refresh(max_age=0)
        for i in range(0, len(damaged), 50):  # bounded memory per step
            part = damaged[i : i + 50]
            by_doc: dict[str, list] = defaultdict(list)
            for cid, text, meta, _ in store.article_chunks(part):
                by_doc[meta["doc_id"]].append((cid, text, meta))
            nodes, gone = [], []
            for doc_id in part:
                chunks = by_doc.get(doc_id, [])
                n = next(
                    (int(m.get("n_chunks", 0)) for _, _, m in chunks if m.get("chunk_index") == 0),
                    0,
                )
                have = sorted(int(m.get("chunk_index", -1)) for _, _, m in chunks)
                if n and have == list(range(n)) and all(t for _, t, _ in chunks):
                    nodes += [metadata_dict_to_node(m, text=t) for _, t, m in chunks]
                    out.rewritten.append(doc_id)
                else:
                    gone.append(doc_id)
            with store.changing(part):
                if gone:
                    store.delete_articles(gone)
                    out.removed += gone
                if nodes:
                    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
                    vectors = embed.get_text_embedding_batch(texts)
                    write_articles(store, nodes, vectors)
    if keyword is not None and report.keyword_damage:
        keyword.rebuild()  # rewritten articles included: it reads the store as it is now
        out.keyword_rebuilt = True
    elif keyword is not None:
        stale = set(report.keyword_out_of_step) - set(damaged)
        out.keyword_fixed = keyword.repair(sorted(stale))
    out.after = verify(store, keyword, check_vectors=report.vectors_checked)
    return out
