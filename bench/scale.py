"""Scale figures at 10k, 100k and 1M chunks, from one run:

- hybrid retrieval p50/p95 (query embedding + vector search + keyword search + fusion), as of
  today (`rag ask`'s default) and as of the corpus's median date (later articles dropped);
- freshness: the time from another process's ingestion of one new article finishing to a
  query in this (long-lived, `rag serve`-like) process finding it, by keyword and by hybrid
  retrieval; against the full rebuild of the previous keyword engine (bm25s over every chunk,
  read back from Chroma) at the same size, as a ratio;
- the keyword engine (Tantivy, per article) full build time, for a new or lost index;
- memory (RSS) of this process holding store, keyword index and embedding model, and the
  store's size on disk (Chroma and keyword index).

Stores are the RealTime QA corpus's real chunks and vectors, then perturbed copies (cached in
/tmp/newsrag-bench between runs). Skips when the corpus is absent.

    python -m bench.scale [--sizes 10000,100000,1000000] [--queries 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REALTIMEQA, ROOT, dev_questions, report_path, table
from bench.keyword_quality import Bm25sFullRebuild
from bench.retrieval_latency import CACHE, build, read_all, source_store, time_queries

FIND_TIMEOUT_S = 30.0

_WRITER = """
import sys
from rag.config import Settings
from rag.embeddings import OnnxMiniLMEmbedding
from rag.ingest import Ingestor
from rag.store import open_store
s = Settings(data_dir=sys.argv[1])
store = open_store(s, "bench-minilm", 384)
r = Ingestor(s, store, OnnxMiniLMEmbedding()).run([sys.argv[2]], progress=False)
assert r.articles.added == 1, r.to_dict()
"""


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def freshness(size: int, store, keyword, embed, run: int) -> dict:
    """Another process ingests one article; how long until this process's queries find it."""
    from llama_index.core.schema import QueryBundle

    from rag.retrieve import HybridRetriever

    word = f"zorblax{size}r{run}q"
    art = CACHE / f"new-{size}-{run}.md"
    art.write_text(
        f"---\nid: fresh-{word}\ntitle: Council names {word} as harbour pilot\n---\n"
        f"The council named {word} harbour pilot on Tuesday, ending a long search.\n"
    )
    question = f"Who did the council name as harbour pilot, {word}?"
    vec = embed.get_query_embedding(question)
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    subprocess.run(
        [sys.executable, "-c", _WRITER, str(CACHE / f"size-{size}"), str(art)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    done = time.perf_counter()  # ingestion finished
    kw_found = hybrid_found = None
    while time.perf_counter() - done < FIND_TIMEOUT_S:
        now = time.perf_counter() - done
        if kw_found is None and any(
            h.chunk_id.startswith("fresh-") for h in keyword.search(question, 12)
        ):
            kw_found = time.perf_counter() - done
        if hybrid_found is None:
            nodes = HybridRetriever(store, keyword, embed, top_k=6).retrieve(
                QueryBundle(question, embedding=vec)
            )
            if any(n.node.node_id.startswith(f"fresh-{word}") for n in nodes):
                hybrid_found = time.perf_counter() - done
        if kw_found is not None and hybrid_found is not None:
            break
        if now < 0.05:
            time.sleep(0.01)
    return {"keyword_found_s": kw_found, "hybrid_found_s": hybrid_found}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument(
        "--source",
        type=Path,
        help="data dir of a store already holding the RealTime QA corpus (default: ingest it "
        "into the benchmark cache)",
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not (REALTIMEQA / "corpus.jsonl").exists():
        print("skipped: RealTime QA data not found", file=sys.stderr)
        return 0
    from rag.embeddings import OnnxMiniLMEmbedding

    if args.source:
        from rag.config import Settings
        from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
        from rag.store import open_store

        src = open_store(Settings(data_dir=args.source), LOCAL_MODEL_NAME, LOCAL_DIM)
    else:
        src, _ = source_store()
    rows = read_all(src)
    questions = [q["question"] for q in dev_questions()][: args.queries]
    embed = OnnxMiniLMEmbedding()
    dates = sorted(int(m["date_num"]) for m in rows[3] if m.get("date_num"))
    mid = dates[len(dates) // 2]
    mid_date = f"{mid // 10000}-{mid // 100 % 100:02d}-{mid % 100:02d}"
    results: dict[str, dict] = {}
    for size in sizes:
        t = time.perf_counter()
        store, keyword, kw_first = build(size, rows)
        r: dict = {"store_build_s": round(time.perf_counter() - t, 1)}
        r["keyword_first_sync_s"] = round(kw_first, 2)
        t = time.perf_counter()
        keyword.rebuild()
        r["tantivy_full_build_s"] = round(time.perf_counter() - t, 2)
        r.update(time_queries(store, keyword, embed, questions))
        # As of a day inside the corpus (RealTime QA's questions are): later articles dropped.
        past = time_queries(store, keyword, embed, questions, as_of=mid_date)
        r["as_of_past_p50_ms"], r["as_of_past_p95_ms"] = past["p50_ms"], past["p95_ms"]
        fresh = [freshness(size, store, keyword, embed, run) for run in range(3)]
        r["keyword_found_s"] = [f["keyword_found_s"] for f in fresh]
        r["hybrid_found_s"] = [f["hybrid_found_s"] for f in fresh]
        old = Bm25sFullRebuild(store)
        r["bm25s_full_rebuild_s"] = round(old.build_s, 2)
        r["bm25s_read_s"] = round(old.read_s, 2)
        found = [x for x in r["hybrid_found_s"] if x is not None]
        r["rebuild_over_found"] = round(old.build_s / max(found), 1) if found else None
        del old
        r["rss_mb"] = round(rss_mb())
        data_dir = CACHE / f"size-{size}"
        r["disk_mb"] = {
            "chroma": round(disk_mb(data_dir / "chroma")),
            "keyword": round(disk_mb(data_dir / "keyword")),
        }
        results[str(size)] = r
        print(f"{size} chunks: {json.dumps(r)}", flush=True)
    print(
        table(
            [
                "chunks",
                "p50 ms",
                "p95 ms",
                "past as-of p50 ms",
                "found s (max)",
                "bm25s rebuild s",
                "ratio",
                "tantivy build s",
                "RSS MB",
                "disk MB",
            ],
            [
                [
                    k,
                    v["p50_ms"],
                    v["p95_ms"],
                    v["as_of_past_p50_ms"],
                    max((x for x in v["hybrid_found_s"] if x is not None), default=-1.0),
                    v["bm25s_full_rebuild_s"],
                    v["rebuild_over_found"],
                    v["tantivy_full_build_s"],
                    v["rss_mb"],
                    v["disk_mb"]["chroma"] + v["disk_mb"]["keyword"],
                ]
                for k, v in results.items()
            ],
        )
    )
    print(f"report: {report_path('scale', {'queries': len(questions), 'sizes': results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
