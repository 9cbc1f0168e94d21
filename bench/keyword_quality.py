"""Keyword engines compared on RealTime QA dev: hit@k of the evidence article, with hybrid
retrieval (vector + keyword, RRF) and keyword search alone, plus build and query time.

- tantivy: rag.keyword.KeywordIndex (Tantivy, updated per article)
- bm25s: the previous index, bm25s rebuilt in full from Chroma's text (kept here for comparison)

Same tokenizer (PyStemmer English + stopwords) for both. Uses the store that `rag ingest` built
from the corpus in $RAG_DATA_DIR (ingests it first when empty).

    RAG_DATA_DIR=/tmp/store/rtqa python -m bench.keyword_quality [--top-k 6]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REALTIMEQA, dev_questions, pct, report_path, table


class Bm25sFullRebuild:
    """Today's engine before this change: bm25s over every chunk, built from the whole store."""

    def __init__(self, store) -> None:
        import bm25s

        from rag.keyword import tokenize

        t = time.perf_counter()
        ids, texts, sources, dates = [], [], [], []
        for cid, text, meta in store.all_chunks():
            ids.append(cid)
            texts.append(f"{meta.get('title', '')}\n{text}")
            sources.append(meta.get("source", ""))
            dates.append(int(meta.get("date_num", 0)))
        self.read_s = time.perf_counter() - t
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokenize(texts), show_progress=False)
        self.build_s = time.perf_counter() - t
        self.ids = ids
        self.source = np.array(sources, dtype=object)
        self.date = np.array(dates, dtype=np.int64)

    def search(self, query, k, source=None, since=None, until=None):
        from rag.keyword import KeywordHit, tokenize

        tokens = tokenize([query])[0]
        if not tokens:
            return []
        mask = None
        if source or since or until:
            keep = np.ones(len(self.ids), dtype=bool)
            if source:
                keep &= self.source == source
            if since:
                keep &= self.date >= since
            if until:
                keep &= (self.date <= until) & (self.date > 0)
            mask = keep.astype(np.float32)
        scores = self.bm25.get_scores(tokens, weight_mask=mask)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [KeywordHit(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


def evaluate(store, keyword, embed, questions, vectors, top_k: int) -> dict:
    from llama_index.core.schema import QueryBundle

    from rag.retrieve import HybridRetriever

    hybrid = kw_hits = 0
    kw_times = []
    for q, vec in zip(questions, vectors, strict=True):
        gold = set(q["evidence_doc_ids"])
        t = time.perf_counter()
        hits = keyword.search(q["question"], top_k * 2)
        kw_times.append(time.perf_counter() - t)
        kw_hits += any(h.chunk_id.rsplit("#", 1)[0] in gold for h in hits[:top_k])
        nodes = HybridRetriever(store, keyword, embed, top_k=top_k).retrieve(
            QueryBundle(q["question"], embedding=vec)
        )
        hybrid += any(n.node.metadata["doc_id"] in gold for n in nodes)
    n = len(questions)
    return {
        "hybrid_hit": round(hybrid / n, 3),
        "keyword_hit": round(kw_hits / n, 3),
        "keyword_p50_ms": round(pct(kw_times, 50) * 1000, 2),
        "keyword_p95_ms": round(pct(kw_times, 95) * 1000, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--top-k", type=int, default=6)
    args = ap.parse_args()
    if not (REALTIMEQA / "qa_dev.jsonl").exists():
        print("skipped: RealTime QA data not found", file=sys.stderr)
        return 0
    from rag.components import build
    from rag.config import Settings
    from rag.ingest import Ingestor
    from rag.keyword import KeywordIndex

    parts = build(Settings())
    store, embed = parts.store, parts.embed
    if store.count() == 0:
        Ingestor(parts.settings, store, embed).run([REALTIMEQA / "corpus.jsonl"])
    questions = dev_questions()
    vectors = [embed.get_query_embedding(q["question"]) for q in questions]

    results = {}
    tmp = Path(tempfile.mkdtemp(prefix="kwq-"))
    try:
        t = time.perf_counter()
        fts = KeywordIndex(store, tmp)
        fts.ensure_fresh()
        fts_build = time.perf_counter() - t
        results["tantivy"] = {
            "build_s": round(fts_build, 2),
            **evaluate(store, fts, embed, questions, vectors, args.top_k),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    old = Bm25sFullRebuild(store)
    results["bm25s"] = {
        "build_s": round(old.build_s, 2),
        "read_s": round(old.read_s, 2),
        **evaluate(store, old, embed, questions, vectors, args.top_k),
    }
    k = args.top_k
    print(
        table(
            ["engine", f"hybrid hit@{k}", f"keyword hit@{k}", "kw p50 ms", "kw p95 ms", "build s"],
            [
                [
                    name,
                    r["hybrid_hit"],
                    r["keyword_hit"],
                    r["keyword_p50_ms"],
                    r["keyword_p95_ms"],
                    r["build_s"],
                ]
                for name, r in results.items()
            ],
        )
    )
    data = {"questions": len(questions), "chunks": store.count(), "top_k": k, "engines": results}
    print(f"report: {report_path('keyword-quality', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
