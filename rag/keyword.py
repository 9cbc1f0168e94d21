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
    return f"{store.count()}|{store.write_stamp()}"


@dataclass(frozen=True)
class _State:
    """One built index; replaced whole, so a reader never sees half of two versions."""

    bm25: object | None
    ids: list[str]
    source: np.ndarray
    date: np.ndarray
    stamp: str


_EMPTY = _State(None, [], np.array([], dtype=object), np.array([], dtype=np.int64), "")


class KeywordIndex:
    def __init__(self, store: ArticleStore, folder: Path) -> None:
        self.store = store
        self.folder = folder / store.name
        self._lock = threading.Lock()
        self._state = _EMPTY

    def ensure_fresh(self) -> _State:
        """The current index: loaded from disk, or rebuilt when the store has changed since."""
        stamp = store_stamp(self.store)
        state = self._state
        if stamp == state.stamp:
            return state
        with self._lock:
            if stamp != self._state.stamp:
                self._state = self._load(stamp) or self._build(stamp)
            return self._state

    def _build(self, stamp: str) -> _State:
        import bm25s

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
        state = _State(
            bm25, ids, np.array(sources, dtype=object), np.array(dates, dtype=np.int64), stamp
        )
        self._save(state)
        log.info("keyword index rebuilt: %d chunks", len(ids))
        return state

    def _save(self, state: _State) -> None:
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if state.bm25 is not None:
            state.bm25.save(str(tmp / "bm25"))
        np.save(tmp / "dates.npy", state.date)
        meta = {"stamp": state.stamp, "ids": state.ids, "sources": state.source.tolist()}
        (tmp / "meta.json").write_text(json.dumps(meta))
        # Swap in whole so a crash never leaves a half-written index behind.
        shutil.rmtree(self.folder, ignore_errors=True)
        tmp.rename(self.folder)

    def _load(self, stamp: str) -> _State | None:
        import bm25s

        try:
            meta = json.loads((self.folder / "meta.json").read_text())
            if meta["stamp"] != stamp:
                return None
            bm25 = bm25s.BM25.load(str(self.folder / "bm25")) if meta["ids"] else None
            dates = np.load(self.folder / "dates.npy")
        except (OSError, ValueError, KeyError):
            return None
        return _State(bm25, meta["ids"], np.array(meta["sources"], dtype=object), dates, stamp)

    def search(
        self,
        query: str,
        k: int,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[KeywordHit]:
        st = self.ensure_fresh()  # one consistent snapshot for the whole search
        if st.bm25 is None:
            return []
        tokens = tokenize([query])[0]
        if not tokens:
            return []
        mask = None
        if source or since or until:
            keep = np.ones(len(st.ids), dtype=bool)
            if source:
                keep &= st.source == source
            if since:
                keep &= st.date >= since
            if until:
                keep &= (st.date <= until) & (st.date > 0)
            mask = keep.astype(np.float32)
        scores = st.bm25.get_scores(tokens, weight_mask=mask)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [KeywordHit(st.ids[i], float(scores[i])) for i in top if scores[i] > 0]
