"""Ingestion throughput: the raw embedding model vs `rag ingest`, in one run.

    python bench/ingest_throughput.py [CORPUS.jsonl] [--limit N]

Prints a table and writes bench/reports/ingest-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "realtimeqa" / "corpus.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--limit", type=int, default=0, help="only the first N articles")
    args = ap.parse_args()
    src = Path(args.corpus)
    if not src.exists():
        print(f"skipped: {src} not found", file=sys.stderr)
        return 0

    from rag.articles import Article, read_sources
    from rag.chunk import Chunker
    from rag.clean import clean_text
    from rag.config import Settings
    from rag.embeddings import OnnxMiniLMEmbedding
    from rag.ingest import Ingestor, _Pending, chunk_nodes
    from rag.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        if args.limit:
            lines = src.read_text().splitlines()[: args.limit]
            src = Path(tmp) / "subset.jsonl"
            src.write_text("\n".join(lines) + "\n")
        settings = Settings(data_dir=Path(tmp) / "data")
        embed = OnnxMiniLMEmbedding(infer_batch_size=settings.embed_batch_size)

        # The texts `rag ingest` embeds, prepared outside any timing.
        chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
        t = time.perf_counter()
        texts = []
        for a in read_sources([src], 10**8):
            assert isinstance(a, Article)
            a.text = clean_text(a.text)
            p = _Pending(a, a.fingerprint(), a.text, chunker.split(a.text), False)
            texts += [n.get_content(metadata_mode="embed") for n in chunk_nodes(p)]
        prep_s = time.perf_counter() - t

        t = time.perf_counter()
        embed.embed(texts)
        raw_s = time.perf_counter() - t

        store = open_store(settings, embed.model_name, 384)
        ing = Ingestor(settings, store, embed)
        t = time.perf_counter()
        report = ing.run([src], progress=False)
        ingest_s = time.perf_counter() - t
        assert report.chunks.added == len(texts), (report.chunks.added, len(texts))

        t = time.perf_counter()
        again = ing.run([src], progress=False)
        reingest_s = time.perf_counter() - t
        assert again.articles.unchanged == report.articles.added

    n = len(texts)
    result = {
        "corpus": str(args.corpus),
        "articles": report.articles.added,
        "chunks": n,
        "read_clean_chunk_s": round(prep_s, 2),
        "raw_model": {"seconds": round(raw_s, 2), "chunks_per_s": round(n / raw_s, 1)},
        "rag_ingest": {"seconds": round(ingest_s, 2), "chunks_per_s": round(n / ingest_s, 1)},
        "ratio_ingest_to_raw": round(raw_s / ingest_s, 3),
        "reingest_unchanged": {
            "seconds": round(reingest_s, 2),
            "fraction_of_first": round(reingest_s / ingest_s, 4),
        },
    }
    print(f"{'':28}{'seconds':>10}{'chunks/s':>10}")
    print(f"{'raw embedding model':28}{raw_s:10.1f}{n / raw_s:10.1f}")
    print(f"{'rag ingest':28}{ingest_s:10.1f}{n / ingest_s:10.1f}")
    print(f"{'re-ingest, unchanged':28}{reingest_s:10.2f}")
    print(
        f"{n} chunks from {report.articles.added} articles; ingest/raw = "
        f"{result['ratio_ingest_to_raw']:.2f}; read+clean+chunk alone {prep_s:.1f} s"
    )
    out = ROOT / "bench" / "reports"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ingest-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
