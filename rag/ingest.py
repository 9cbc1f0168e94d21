"""Ingestion: read → clean → chunk → embed → store, incrementally and safely resumable."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.utils import node_to_metadata_dict

from rag.articles import Article, ReadError, estimate_count, read_sources
from rag.chunk import Chunk, Chunker
from rag.clean import clean_text
from rag.config import Settings
from rag.foreground import Foreground
from rag.lock import ingest_lock
from rag.screen import Screening, screen_article, version
from rag.store import ArticleStore
from rag.web import WebReader, is_url

log = logging.getLogger(__name__)

GROUP_CHUNKS = 256  # chunks embedded and written together
# Chunks embedded between two looks at the foreground: about a quarter second on two cores,
# the most a question waits for a background ingestion.
SLICE_CHUNKS = 16


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass
class IngestReport:
    articles: Counts = field(default_factory=Counts)
    chunks: Counts = field(default_factory=Counts)
    errors: list[ReadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    collection: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "articles": asdict(self.articles),
            "chunks": asdict(self.chunks),
            "errors": [{"path": e.path, "line": e.line, "reason": e.reason} for e in self.errors],
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "collection": self.collection,
        }


@dataclass
class _Pending:
    article: Article
    fingerprint: str  # of the article with its cleaned text
    chunks: list[Chunk]
    is_update: bool
    screening: Screening | None = None  # planted text, found once per article when stored


def under_failed(path: str, failed: set[str]) -> bool:
    """Is `path` one that failed to read, or inside a folder that did? Its articles are kept."""
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in failed)


def date_number(date: str) -> int | None:
    """YYYYMMDD as an int: Chroma compares numbers, not strings, in range filters."""
    if len(date) == 10 and date[4] == "-" and date[7] == "-" and date.replace("-", "").isdigit():
        return int(date.replace("-", ""))
    return None


def chunk_nodes(p: _Pending) -> list[TextNode]:
    a = p.article
    meta = {
        "doc_id": a.id,
        "title": a.title,
        "source": a.source,
        "url": a.url,
        "date": a.date,
        "authors": ", ".join(a.authors),
        "path": a.path,
        "fingerprint": p.fingerprint,
        "n_chunks": len(p.chunks),
        "article_chars": len(a.text),
    }
    if (num := date_number(a.date)) is not None:
        meta["date_num"] = num
    nodes = []
    for c in p.chunks:
        own: dict[str, str | int | bool] = {"chunk_index": c.index}
        if p.screening is not None:
            own.update(p.screening.chunk_fields(c.start, c.end))
        node = TextNode(
            id_=f"{a.id}#{c.index}",
            text=c.text,
            start_char_idx=c.start,
            end_char_idx=c.end,
            metadata={**meta, **own},
            # Only the title joins the text in the embedding; the rest is for filters and display.
            excluded_embed_metadata_keys=[k for k in meta if k != "title"] + list(own),
            excluded_llm_metadata_keys=list(meta) + list(own),
            metadata_template="{value}",
            text_template="{metadata_str}\n\n{content}",
        )
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=a.id)
        nodes.append(node)
    return nodes


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        store: ArticleStore,
        embed: BaseEmbedding,
        foreground: Foreground | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embed = embed
        # Set when ingesting in the background of a server: questions in progress go first.
        self.foreground = foreground
        self.chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
        self.on_stored: Callable[[int, int], None] | None = None
        # Receives "another ingestion is running (pid N); waiting" (default: a log warning).
        self.on_wait: Callable[[str], None] | None = None

    def run(
        self, paths: Sequence[str | Path], prune: bool = False, progress: bool = True
    ) -> IngestReport:
        """Ingest `paths`, holding the data dir's ingestion lock (one writer at a time)."""
        with ingest_lock(self.settings.data_dir, notify=self.on_wait):
            # Another process may have written while we waited: see its writes before ours,
            # and close what a crashed writer left pending in the change log.
            self.store.refresh(max_age=0)
            self.store.finish_stale_changes()
            report = self._run(paths, prune, progress)
            try:
                self.store.trim_log()
            except Exception as e:  # housekeeping: the ingestion itself succeeded
                log.warning("could not trim the change log (%s); will try after the next run", e)
            return report

    def _run(self, paths: Sequence[str | Path], prune: bool, progress: bool) -> IngestReport:
        from tqdm import tqdm

        started = time.perf_counter()
        self._changed = False
        self._newest = 0  # latest article date written, for store.newest_date()
        report = IngestReport(collection=self.store.name)
        self._rescreen: list[Article] = []  # unchanged, but screened by another detector
        existing = self.store.indexed()
        seen: set[str] = set()
        failed_files: set[str] = set()
        group: list[_Pending] = []
        max_bytes = int(self.settings.max_article_mb * 1_000_000)

        urls = [str(p) for p in paths if is_url(str(p))]
        files = [p for p in paths if not is_url(str(p))]

        def sources() -> Iterator[Article | ReadError]:
            yield from read_sources(files, max_bytes)
            if urls:
                web = WebReader(self.settings, self.settings.data_dir / "web")
                yield from web.read(urls)
                report.warnings += web.warnings
                failed_files.update(web.kept)  # a shrunken feed: prune keeps its stories

        bar = tqdm(
            total=estimate_count(files) + len(urls),
            unit="article",
            desc="Ingesting",
            disable=not progress,
            dynamic_ncols=True,
        )
        with bar:
            for item in sources():
                bar.update(1)
                if isinstance(item, ReadError):
                    log.warning("skipped %s", item)
                    report.errors.append(item)
                    failed_files.add(item.path)
                    continue
                pending = self._prepare(item, existing, seen, report)
                if pending is None:
                    continue
                group.append(pending)
                if sum(len(p.chunks) for p in group) >= GROUP_CHUNKS:
                    self._store_group(group, report)
                    group = []
                    bar.set_postfix(chunks=report.chunks.added + report.chunks.updated)
            if group:
                self._store_group(group, report)
            bar.total = bar.n
            bar.refresh()
        if self._rescreen:
            self._screen_again(self._rescreen, progress)

        if prune:
            self._prune(paths, seen, failed_files, report)

        report.seconds = time.perf_counter() - started
        if self._changed:
            self.store.mark_changed()
            self.store.note_dates(self._newest)
        self.store.set_info(
            {
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "sources": [p if is_url(p) else str(Path(p).resolve()) for p in map(str, paths)],
                **report.to_dict(),
            }
        )
        return report

    def _prune(
        self, paths: Sequence[str | Path], seen: set[str], failed: set[str], report: IngestReport
    ) -> None:
        """Remove articles that are not in `paths`, including chunks a crashed run left."""
        missing = [str(p) for p in paths if not is_url(str(p)) and not Path(p).exists()]
        if missing:
            report.warnings.append(
                f"--prune skipped: {', '.join(missing)} does not exist, so nothing was removed"
            )
            return
        existing = self.store.indexed()
        gone = [
            doc_id
            for doc_id, path in self.store.chunk_articles().items()
            if doc_id not in seen and not under_failed(path, failed)
        ]
        if not gone:
            return
        self._write_started()
        with self.store.changing(gone, op="delete"):
            self.store.delete_articles(gone)
        report.articles.removed = sum(d in existing for d in gone)
        report.chunks.removed = sum(existing[d].n_chunks for d in gone if d in existing)
        log.info("pruned %d articles no longer in the sources", len(gone))

    def _write_started(self) -> None:
        # Derived indexes (BM25) see the store as changed from the first write on.
        if not self._changed:
            self._changed = True
            self.store.mark_changed()

    def _prepare(
        self,
        article: Article,
        existing: dict,
        seen: set[str],
        report: IngestReport,
    ) -> _Pending | None:
        if article.id in seen:
            report.errors.append(
                ReadError(article.path, f"duplicate article id '{article.id}'; kept the first")
            )
            return None
        seen.add(article.id)
        text = clean_text(article.text)
        if not text:
            report.errors.append(
                ReadError(article.path, f"article '{article.id}' has no text left after cleaning")
            )
            seen.discard(article.id)
            return None
        article.text = text
        fingerprint = article.fingerprint()
        old = existing.get(article.id)
        if old is not None and old.fingerprint != fingerprint and self._collides(article, old):
            report.errors.append(
                ReadError(
                    article.path,
                    f"duplicate article id '{article.id}': {old.path} has it in the store and "
                    "keeps it; give one of them its own id (front matter `id:`), or remove "
                    f"{old.path} if this file replaces it",
                    line=article.line,
                )
            )
            return None  # the id stays in `seen`, so --prune keeps the stored article
        if old is not None and old.fingerprint == fingerprint:
            report.articles.unchanged += 1
            report.chunks.unchanged += old.n_chunks
            if old.screen != version():
                self._rescreen.append(article)
            return None
        return _Pending(article, fingerprint, self.chunker.split(text), old is not None)

    @staticmethod
    def _collides(article: Article, old) -> bool:
        """Another file, still there, holds this id: a real collision. A stored path that is
        gone means the article moved, and the new place takes over."""
        if not old.path or old.path == article.path or is_url(old.path):
            return False
        return Path(old.path).exists()

    def _store_group(self, group: list[_Pending], report: IngestReport) -> None:
        self._write_started()
        for p in group:
            if self.foreground is not None:
                self.foreground.wait_idle()
            p.screening = screen_article(p.article.text, p.article.title)
        nodes = [n for p in group for n in chunk_nodes(p)]
        self._newest = max([self._newest] + [n.metadata.get("date_num", 0) for n in nodes])
        texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        vectors = self._embed(texts)
        doc_ids = [p.article.id for p in group]
        # The change log tells other processes' keyword indexes which articles to re-read.
        with self.store.changing(doc_ids):
            write_articles(self.store, nodes, vectors)
        for p in group:
            counts = "updated" if p.is_update else "added"
            setattr(report.articles, counts, getattr(report.articles, counts) + 1)
            setattr(report.chunks, counts, getattr(report.chunks, counts) + len(p.chunks))
        log.info("stored %d articles (%d chunks)", len(group), len(nodes))

    def _screen_again(self, articles: list[Article], progress: bool) -> None:
        """Screen unchanged articles with this detector and update their chunks' metadata
        only (no new vectors): stored by an older release, they would otherwise be screened
        again at every question that retrieves them."""
        from tqdm import tqdm

        for article in tqdm(
            articles, desc="Screening for planted text", unit="article", disable=not progress
        ):
            if self.foreground is not None:
                self.foreground.wait_idle()
            screening = screen_article(article.text, article.title)
            ids, metas = [], []
            for cid, _text, meta, _vec in self.store.article_chunks([article.id]):
                node = json.loads(meta.get("_node_content") or "{}")
                start = int(node.get("start_char_idx") or 0)
                end = int(node.get("end_char_idx") or start)
                fields = screening.chunk_fields(start, end)
                # Retrieval rebuilds nodes from `_node_content`: its copy must say the same.
                node["metadata"] = {**node.get("metadata", {}), **fields}
                for key in ("excluded_embed_metadata_keys", "excluded_llm_metadata_keys"):
                    node[key] = list(dict.fromkeys([*node.get(key, []), *fields]))
                ids.append(cid)
                metas.append({**meta, **fields, "_node_content": json.dumps(node)})
            self.store.update_metadata(ids, metas)
        log.info("screened %d unchanged articles with a newer planted-text detector", len(articles))

    def _embed(self, texts: list[str]) -> list:
        if self.foreground is None:
            return self.embed.get_text_embedding_batch(texts)
        vectors: list = []
        for start in range(0, len(texts), SLICE_CHUNKS):
            self.foreground.wait_idle()
            vectors += self.embed.get_text_embedding_batch(texts[start : start + SLICE_CHUNKS])
        return vectors


def write_articles(store: ArticleStore, nodes: Sequence[BaseNode], vectors: list) -> None:
    """Replace the chunks of the nodes' articles: what an earlier version, or a run killed
    half-way, left of them goes first; each article's marker (chunk 0) is written last."""
    store.delete_articles(list(dict.fromkeys(n.metadata["doc_id"] for n in nodes)))
    body = [i for i, n in enumerate(nodes) if n.metadata["chunk_index"] != 0]
    markers = [i for i, n in enumerate(nodes) if n.metadata["chunk_index"] == 0]
    for idx in (body, markers):  # markers last: an article counts only once complete
        store.upsert(
            ids=[nodes[i].node_id for i in idx],
            embeddings=[vectors[i] for i in idx],
            documents=[nodes[i].get_content(MetadataMode.NONE) for i in idx],
            metadatas=[
                node_to_metadata_dict(nodes[i], remove_text=True, flat_metadata=True) for i in idx
            ],
        )


def ingest(
    paths: Iterable[str | Path],
    settings: Settings,
    prune: bool = False,
    progress: bool = True,
) -> IngestReport:
    from rag.components import build

    parts = build(settings)
    return Ingestor(settings, parts.store, parts.embed).run(
        list(paths), prune=prune, progress=progress
    )
