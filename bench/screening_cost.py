"""What screening for planted text costs, at ingestion and at answer time, in one run.

Planted text is found when an article is stored (rag/screen.py); chunks that a store holds no
screening of are screened when a question retrieves them. For each question this times the
sentence-selection step twice on the same retrieved chunks, alternating which goes first,
with every cache emptied before each: with the stored screening, and with it stripped (as a
store from before screening existed). At ingestion it times screening every article against
embedding its chunks. Ratios are within this run, so a busy machine shifts both sides.

    python -m bench.screening_cost [--gold evals/gold.jsonl] [--corpus corpus/] [--limit N]
        [--articles N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from bench.common import ROOT, pct, report_path, table


def _clear_caches(engine) -> None:
    import rag.context as context
    import rag.injection_model as model

    context._article_spans.clear()
    context._chunk_spans.cache_clear()
    with model._lock:
        model._scores.clear()
    with engine.sentence_vectors._lock:
        engine.sentence_vectors._items.clear()


def _unscreened(chunks):
    from llama_index.core.schema import NodeWithScore

    out = []
    for c in chunks:
        node = c.node.model_copy(deep=True)
        drop = ("screen", "planted", "planted_title")
        node.metadata = {k: v for k, v in node.metadata.items() if k not in drop}
        out.append(NodeWithScore(node=node, score=c.score))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gold", type=Path, default=ROOT / "evals" / "gold.jsonl")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--articles", type=int, default=0, help="first N lines of a JSONL corpus")
    args = ap.parse_args()
    import rag.injection_model as model
    from rag.articles import read_sources
    from rag.clean import clean_text
    from rag.config import Settings
    from rag.engine import AnswerState, Engine
    from rag.evaluate import load_gold
    from rag.ingest import ingest
    from rag.retrieve import Filters
    from rag.screen import screen_article

    items = load_gold(args.gold)[: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        if args.articles and args.corpus.suffix == ".jsonl":
            head = Path(tmp) / "corpus.jsonl"
            with open(args.corpus, encoding="utf-8") as src:
                head.write_text("".join(islice(src, args.articles)))
            args.corpus = head
        settings = Settings(data_dir=Path(tmp) / "data", log=False)
        report = ingest([args.corpus], settings, progress=False)
        articles = [a for a in read_sources([args.corpus], 10**8) if not hasattr(a, "reason")]
        with model._lock:  # ingestion just scored these sentences: time them cold
            model._scores.clear()
        started = time.perf_counter()
        for a in articles:
            screen_article(clean_text(a.text), a.title)
        screen_seconds = time.perf_counter() - started

        engine = Engine.from_settings(settings)
        engine.ask(items[0].question)  # load the models before timing
        stored, unscreened = [], []
        for i, item in enumerate(items):
            st = AnswerState(item.question, Filters(), settings.top_k)
            st.standalone = st.question
            engine._retrieve(st)
            chunks = st.chunks
            variants = [("stored", chunks, stored), ("unscreened", _unscreened(chunks), unscreened)]
            for _name, nodes, sink in variants if i % 2 == 0 else variants[::-1]:
                _clear_caches(engine)
                st.chunks = nodes
                t = time.perf_counter()
                engine._select(st)
                sink.append(time.perf_counter() - t)

    rows = [
        ["select, screening stored", pct(stored, 50), pct(stored, 95), len(stored)],
        ["select, screened now", pct(unscreened, 50), pct(unscreened, 95), len(unscreened)],
    ]
    print(table(["answer step (s)", "p50", "p95", "n"], rows))
    ratio = (pct(unscreened, 50) or 0) / max(pct(stored, 50) or 1e-9, 1e-9)
    ingest_ratio = screen_seconds / max(report.seconds, 1e-9)
    print(f"\nselect p50, screened now / stored: {ratio:.2f}")
    print(
        f"ingestion: screening {len(articles)} articles took {screen_seconds:.1f} s, "
        f"{ingest_ratio:.2f} of the whole ingestion ({report.seconds:.1f} s, which includes it)"
    )
    out = {
        "questions": len(items),
        "articles": len(articles),
        "select_stored_p50": pct(stored, 50),
        "select_unscreened_p50": pct(unscreened, 50),
        "select_ratio_unscreened_to_stored": round(ratio, 3),
        "ingest_seconds": round(report.seconds, 2),
        "screen_seconds": round(screen_seconds, 2),
        "screen_share_of_ingest": round(ingest_ratio, 3),
    }
    path = report_path("screening", out)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
