"""Ingestion throughput, three ways in one run: the raw embedding model alone on the chunks
`rag ingest` makes (the practical limit), `rag ingest` itself, and a plain LlamaIndex baseline
(`VectorStoreIndex.from_documents` into Chroma, same embedding model, default settings).
Then re-ingestion of the unchanged corpus.

    python bench/ingest_throughput.py [CORPUS.jsonl] [--limit N] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REALTIMEQA, report_path, table


def measure(src: Path, limit: int = 0, baseline: bool = True) -> dict:
    from rag.articles import Article, read_sources
    from rag.chunk import Chunker
    from rag.clean import clean_text
    from rag.config import Settings
    from rag.embeddings import OnnxMiniLMEmbedding
    from rag.ingest import Ingestor, _Pending, chunk_nodes
    from rag.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        if limit:
            lines = src.read_text().splitlines()[:limit]
            src = Path(tmp) / "subset.jsonl"
            src.write_text("\n".join(lines) + "\n")
        settings = Settings(data_dir=Path(tmp) / "data")
        embed = OnnxMiniLMEmbedding(infer_batch_size=settings.embed_batch_size)

        # The exact texts `rag ingest` embeds, prepared outside any timing.
        chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
        texts, articles = [], []
        for a in read_sources([src], 10**8):
            assert isinstance(a, Article)
            articles.append(a)
            a.text = clean_text(a.text)
            p = _Pending(a, a.fingerprint(), chunker.split(a.text), False)
            texts += [n.get_content(metadata_mode="embed") for n in chunk_nodes(p)]
        n = len(texts)

        t = time.perf_counter()
        embed.embed(texts)
        raw_s = time.perf_counter() - t

        store = open_store(settings, embed.model_name, 384)
        ing = Ingestor(settings, store, embed)
        t = time.perf_counter()
        report = ing.run([src], progress=False)
        ingest_s = time.perf_counter() - t
        assert report.chunks.added == n, (report.chunks.added, n)

        t = time.perf_counter()
        again = ing.run([src], progress=False)
        reingest_s = time.perf_counter() - t
        assert again.articles.unchanged == report.articles.added

        result = {
            "corpus": str(src if not limit else f"first {limit} articles"),
            "articles": len(articles),
            "chunks": n,
            "raw_model": {"seconds": round(raw_s, 2), "chunks_per_s": round(n / raw_s, 1)},
            "rag_ingest": {
                "seconds": round(ingest_s, 2),
                "chunks_per_s": round(n / ingest_s, 1),
                "articles_per_s": round(len(articles) / ingest_s, 2),
            },
            "ratio_ingest_to_raw": round(raw_s / ingest_s, 3),
            "reingest_unchanged": {
                "seconds": round(reingest_s, 3),
                "fraction_of_first": round(reingest_s / ingest_s, 4),
            },
        }
        if baseline:
            result["llamaindex_baseline"] = _baseline(articles, Path(tmp) / "baseline")
            b = result["llamaindex_baseline"]
            result["speedup_vs_baseline"] = {
                "articles_per_s": round(b["seconds"] / ingest_s, 2),
                "chunks_per_s": round((n / ingest_s) / b["chunks_per_s"], 2),
            }
    return result


def _baseline(articles, folder: Path) -> dict:
    """What a plain LlamaIndex user writes: default splitter, default batching, same model."""
    import chromadb
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.embeddings import OnnxMiniLMEmbedding

    docs = [Document(text=a.text, metadata={"title": a.title, "date": a.date}) for a in articles]
    client = chromadb.PersistentClient(path=str(folder))
    collection = client.get_or_create_collection("baseline", embedding_function=None)
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)
    )
    embed = OnnxMiniLMEmbedding(embed_batch_size=10)  # LlamaIndex's default batch size
    t = time.perf_counter()
    VectorStoreIndex.from_documents(docs, storage_context=storage, embed_model=embed)
    seconds = time.perf_counter() - t
    chunks = collection.count()
    return {
        "seconds": round(seconds, 2),
        "chunks": chunks,
        "chunks_per_s": round(chunks / seconds, 1),
        "articles_per_s": round(len(articles) / seconds, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(REALTIMEQA / "corpus.jsonl"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N articles")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    src = Path(args.corpus)
    if not src.exists():
        print(f"skipped: {src} not found", file=sys.stderr)
        return 0
    r = measure(src, args.limit, baseline=not args.skip_baseline)
    rows = [
        ["raw embedding model", r["raw_model"]["seconds"], r["raw_model"]["chunks_per_s"]],
        ["rag ingest", r["rag_ingest"]["seconds"], r["rag_ingest"]["chunks_per_s"]],
        ["re-ingest, unchanged", r["reingest_unchanged"]["seconds"], ""],
    ]
    if "llamaindex_baseline" in r:
        b = r["llamaindex_baseline"]
        rows.append(
            [f"LlamaIndex baseline ({b['chunks']} chunks)", b["seconds"], b["chunks_per_s"]]
        )
    print(table(["", "seconds", "chunks/s"], rows))
    print(json.dumps({k: v for k, v in r.items() if k.startswith(("ratio", "speedup"))}))
    print(f"report: {report_path('ingest', r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
