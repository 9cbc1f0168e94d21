"""What is indexed: the answer to `rag status`, and its integrity check (`--verify`, `--repair`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.store import ArticleStore

if TYPE_CHECKING:
    from rag.integrity import IntegrityReport, RepairReport


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


def verify_store(
    settings: Settings,
    repair: bool = False,
    check_vectors: bool = True,
    notify: Callable[[str], None] | None = None,
) -> tuple[IntegrityReport, RepairReport | None]:
    """`rag status --verify` (and `--repair`): the integrity report, and the repair's.

    It holds the ingestion lock throughout (waiting for a running ingestion, and telling
    `notify`): read beside a writer, a half-done write looks like damage. The store is looked
    at afresh once the lock is held, so writes made before are all seen.
    """
    from rag.components import build
    from rag.integrity import repair as repair_store
    from rag.integrity import verify
    from rag.keyword import KeywordIndex
    from rag.lock import ingest_lock

    parts = build(settings)
    keyword = KeywordIndex(parts.store, settings.keyword_dir)
    with ingest_lock(settings.data_dir, notify=notify):
        parts.store.refresh(max_age=0)  # reopens the store if another process wrote to it
        report = verify(parts.store, keyword, check_vectors=check_vectors)
        fixed = None
        if repair and not report.ok:
            fixed = repair_store(parts.store, parts.embed, settings.data_dir, keyword, report)
    return report, fixed
