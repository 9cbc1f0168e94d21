"""What is indexed: the answer to `rag status`, and its integrity check (`--verify`, `--repair`)."""

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
        "changes": store.refresh(),  # writes recorded in the change log
        "last_ingestion": store.info() or None,
    }


def verify_store(settings: Settings, repair: bool = False, check_vectors: bool = True) -> dict:
    """`rag status --verify` (and `--repair`): the integrity report as a dict.

    `ok` says whether the store is sound (after the repair, when repairing); `repair` lists the
    articles rewritten from their stored text and those removed for `rag ingest` to add again.
    """
    from rag.components import build
    from rag.integrity import repair as repair_store
    from rag.integrity import verify
    from rag.keyword import KeywordIndex

    parts = build(settings)
    keyword = KeywordIndex(parts.store, settings.keyword_dir)
    report = verify(parts.store, keyword, check_vectors=check_vectors)
    out = {"store": parts.store.location, "collection": parts.store.name, **report.to_dict()}
    if repair and not report.ok:
        fixed = repair_store(parts.store, parts.embed, settings.data_dir, keyword, report)
        out["repair"] = fixed.to_dict()
        out["ok"] = fixed.after.ok if fixed.after else False
    return out
