"""BM25 keyword index over the chunks in Chroma, kept in step with ingestion.

News questions hinge on names, numbers and dates, which small embedding models blur; BM25
catches them. The index is derived data: it is rebuilt from Chroma's text whenever the
store's stamp (chunk count and last ingestion) differs from the one it was built for.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.store import ArticleStore

log = logging.getLogger(__name__)


@dataclass
class KeywordHit:
    chunk_id: str
    score: float


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


def store_stamp(store: ArticleStore) -> str:
    return f"{store.count()}|{store.info().get('finished', '')}"


class KeywordIndex:
    def __init__(self, store: ArticleStore, folder: Path) -> None:
        self.store = store
        self.folder = folder / store.name
        self._lock = threading.Lock()
        self._bm25 = None
        self._ids: list[str] = []
        self._source = np.array([], dtype=object)
        self._date = np.array([], dtype=np.int64)
        self._stamp = ""

    def ensure_fresh(self) -> None:
        """Load the saved index, or rebuild it when the store has changed since."""
        stamp = store_stamp(self.store)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            if not self._load(stamp):
                self.rebuild(stamp)

    def rebuild(self, stamp: str | None = None) -> None:
        import bm25s

        stamp = stamp or store_stamp(self.store)
        ids, texts, sources, dates = [], [], [], []
        for cid, text, meta in self.store.all_chunks():
            ids.append(cid)
            texts.append(f"{meta.get('title', '')}\n{text}")
            sources.append(meta.get("source", ""))
            dates.append(int(meta.get("date_num", 0)))
        bm25 = None
        if ids:
            bm25 = bm25s.BM25()
            bm25.index(tokenize(texts), show_progress=False)
        self._bm25, self._ids, self._stamp = bm25, ids, stamp
        self._source = np.array(sources, dtype=object)
        self._date = np.array(dates, dtype=np.int64)
        self._save()
        log.info("keyword index rebuilt: %d chunks", len(ids))

    def _save(self) -> None:
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"))
        np.save(tmp / "dates.npy", self._date)
        meta = {"stamp": self._stamp, "ids": self._ids, "sources": self._source.tolist()}
        (tmp / "meta.json").write_text(json.dumps(meta))
        # Swap in whole so a crash never leaves a half-written index behind.
        shutil.rmtree(self.folder, ignore_errors=True)
        tmp.rename(self.folder)

    def _load(self, stamp: str) -> bool:
        import bm25s

        try:
            meta = json.loads((self.folder / "meta.json").read_text())
            if meta["stamp"] != stamp:
                return False
            bm25 = bm25s.BM25.load(str(self.folder / "bm25")) if meta["ids"] else None
            dates = np.load(self.folder / "dates.npy")
        except (OSError, ValueError, KeyError):
            return False
        self._bm25, self._ids, self._stamp = bm25, meta["ids"], stamp
        self._source = np.array(meta["sources"], dtype=object)
        self._date = dates
        return True

    def search(
        self,
        query: str,
        k: int,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[KeywordHit]:
        self.ensure_fresh()
        if self._bm25 is None:
            return []
        tokens = tokenize([query])[0]
        if not tokens:
            return []
        mask = None
        if source or since or until:
            keep = np.ones(len(self._ids), dtype=bool)
            if source:
                keep &= self._source == source
            if since:
                keep &= self._date >= since
            if until:
                keep &= (self._date <= until) & (self._date > 0)
            mask = keep.astype(np.float32)
        scores = self._bm25.get_scores(tokens, weight_mask=mask)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [KeywordHit(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]
