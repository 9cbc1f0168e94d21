"""Hybrid retrieval latency (query embedding + vector search + BM25 + fusion) at 1k, 10k and
100k chunks. The large stores reuse the RealTime QA corpus's real vectors, copied with small
perturbations, so they take minutes to build instead of hours of embedding.

    python -m bench.retrieval_latency [--sizes 1000 10000 100000] [--queries 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REALTIMEQA, dev_questions, pct, report_path, table

CACHE = Path("/tmp/newsrag-bench")


def source_store():
    """The RealTime QA corpus ingested once (cached between runs)."""
    from rag.config import Settings
    from rag.ingest import ingest

    settings = Settings(data_dir=CACHE / "source")
    report = ingest([REALTIMEQA / "corpus.jsonl"], settings, progress=True)
    from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
    from rag.store import open_store

    store = open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM)
    return store, report


def read_all(store):
    ids, vecs, docs, metas = [], [], [], []
    offset = 0
    while True:
        page = store.collection.get(
            include=["embeddings", "documents", "metadatas"], limit=2000, offset=offset
        )
        if not page["ids"]:
            break
        ids += page["ids"]
        vecs.append(np.asarray(page["embeddings"], dtype=np.float32))
        docs += page["documents"]
        metas += page["metadatas"]
        offset += len(page["ids"])
    return ids, np.vstack(vecs), docs, metas


def build(size: int, rows, seed: int = 0):
    """A store of `size` chunks: the real ones, then perturbed copies."""
    from rag.config import Settings
    from rag.keyword import KeywordIndex
    from rag.store import open_store

    ids, vecs, docs, metas = rows
    rng = np.random.default_rng(seed)
    settings = Settings(data_dir=CACHE / f"size-{size}")
    store = open_store(settings, "bench-minilm", vecs.shape[1])
    # Articles an earlier freshness run added are removed, so the cached store is reused.
    fresh = [d for d in store.indexed() if d.startswith("fresh-")]
    if fresh:
        with store.changing(fresh, op="delete"):
            store.delete_articles(fresh)
    if store.count() != size:
        store.client.delete_collection(store.name)
        store = open_store(settings, "bench-minilm", vecs.shape[1])
        n = len(ids)
        for start in range(0, size, 5000):
            idx = np.arange(start, min(size, start + 5000))
            rep, src = idx // n, idx % n
            v = vecs[src] + (rep[:, None] > 0) * rng.normal(0, 0.02, (len(idx), vecs.shape[1]))
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            store.upsert(
                ids=[f"{ids[s]}~{r}" for s, r in zip(src, rep, strict=True)],
                embeddings=v.astype(np.float32).tolist(),
                documents=[docs[s] for s in src],
                metadatas=[
                    _copy_meta(metas[s], f"{ids[s]}~{r}", r) for s, r in zip(src, rep, strict=True)
                ],
            )
        store.set_info({"finished": f"bench-{size}"})
    # As ingestion does: the newest date lets retrieval skip an as-of bound that drops nothing.
    store.note_dates(max((int(m.get("date_num") or 0) for m in metas), default=0))
    keyword = KeywordIndex(store, settings.keyword_dir)
    t = time.perf_counter()
    keyword.ensure_fresh()
    return store, keyword, time.perf_counter() - t


def _copy_meta(meta: dict, new_id: str, rep: int) -> dict:
    node = json.loads(meta["_node_content"])
    node["id_"] = new_id
    return {**meta, "doc_id": f"{meta['doc_id']}~{rep}", "_node_content": json.dumps(node)}


def time_queries(
    store, keyword, embed, questions: list[str], top_k: int = 6, as_of: str | None = None
) -> dict:
    """Hybrid retrieval as `rag ask` does it: as of today by default, or as of a past date."""
    from llama_index.core.schema import QueryBundle

    from rag.retrieve import HybridRetriever

    def once(q: str) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        bundle = QueryBundle(q, embedding=embed.get_query_embedding(q))
        t1 = time.perf_counter()
        HybridRetriever(store, keyword, embed, top_k=top_k, as_of=as_of).retrieve(bundle)
        t2 = time.perf_counter()
        return t2 - t0, t1 - t0, t2 - t1

    for q in questions[:5]:  # warm caches
        once(q)
    totals, embeds, searches = zip(*(once(q) for q in questions), strict=True)
    kw = []
    for q in questions:
        t = time.perf_counter()
        keyword.search(q, top_k * 2)
        kw.append(time.perf_counter() - t)
    return {
        "p50_ms": round(pct(totals, 50) * 1000, 1),
        "p95_ms": round(pct(totals, 95) * 1000, 1),
        "embed_p50_ms": round(pct(embeds, 50) * 1000, 1),
        "search_p50_ms": round(pct(searches, 50) * 1000, 1),
        "bm25_p50_ms": round(pct(kw, 50) * 1000, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--queries", type=int, default=60)
    args = ap.parse_args()
    if not (REALTIMEQA / "corpus.jsonl").exists():
        print("skipped: RealTime QA data not found", file=sys.stderr)
        return 0
    from rag.embeddings import OnnxMiniLMEmbedding

    src, _ = source_store()
    rows = read_all(src)
    questions = [q["question"] for q in dev_questions()][: args.queries]
    embed = OnnxMiniLMEmbedding()
    results = {}
    for size in args.sizes:
        store, keyword, kw_build = build(size, rows)
        r = time_queries(store, keyword, embed, questions)
        r["keyword_index_load_or_build_s"] = round(kw_build, 2)
        results[str(size)] = r
        print(f"{size} chunks: {r}", flush=True)
    print(
        table(
            ["chunks", "p50 ms", "p95 ms", "embed p50", "search p50", "bm25 p50"],
            [
                [
                    k,
                    v["p50_ms"],
                    v["p95_ms"],
                    v["embed_p50_ms"],
                    v["search_p50_ms"],
                    v["bm25_p50_ms"],
                ]
                for k, v in results.items()
            ],
        )
    )
    print(f"report: {report_path('retrieval', {'queries': len(questions), 'sizes': results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
