"""Answer latency while ingestion runs, against idle, in one run (`rag serve --watch`'s case).

The same questions are asked twice through one Engine: first with nothing else running, then
while an Ingestor writes articles into the same store from a background thread, as the server's
watcher does. Prints p50/p95 of both and their ratio (target: p50 during ingestion <= 2x idle).

    python -m bench.answer_during_ingest [--articles N] [--questions N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import REALTIMEQA, ROOT, pct, report_path, table


def synthetic_articles(folder: Path, n: int) -> Path:
    """n news-like articles, for when the RealTime QA corpus is absent."""
    import json

    words = "council harbour budget minister river school storm election court museum rail"
    out = folder / "articles.jsonl"
    with open(out, "w", encoding="utf-8") as fh:
        for i in range(n):
            w = words.split()
            text = " ".join(
                f"The {w[(i + k) % len(w)]} report number {i}-{k} was published on Monday."
                for k in range(40)
            )
            fh.write(json.dumps({"id": f"syn-{i}", "title": f"Report {i}", "text": text}) + "\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--articles", type=int, default=300, help="articles ingested meanwhile")
    ap.add_argument("--questions", type=int, default=12, help="questions per phase")
    args = ap.parse_args()
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate import load_gold
    from rag.ingest import Ingestor, ingest

    questions = [i.question for i in load_gold(ROOT / "evals" / "gold.jsonl")][: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        ingest([ROOT / "corpus"], settings, progress=False)
        engine = Engine.from_settings(settings)
        engine.ask(questions[0])  # load the model before timing

        def ask_all() -> list[float]:
            times = []
            for q in questions:
                t = time.perf_counter()
                engine.ask(q)
                times.append(time.perf_counter() - t)
            return times

        idle = ask_all()
        source = REALTIMEQA / "corpus.jsonl"
        if source.exists():
            part = Path(tmp) / "part.jsonl"
            with open(source, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
                for _, line in zip(range(args.articles), src, strict=False):
                    dst.write(line)
            source = part
        else:
            source = synthetic_articles(Path(tmp), args.articles)
        ingestor = Ingestor(settings, engine.store, engine.embed)
        done = threading.Event()
        report: dict = {}

        def run_ingest() -> None:
            report["r"] = ingestor.run([source], progress=False)
            done.set()

        worker = threading.Thread(target=run_ingest)
        worker.start()
        time.sleep(2)  # ingestion under way before the first question
        busy, rounds = [], 0
        while not done.is_set() and rounds < 3:
            busy += ask_all()
            rounds += 1
        ingesting_while_measured = not done.is_set() or rounds > 0
        worker.join()
    ratio = pct(busy, 50) / pct(idle, 50) if busy else None
    print(
        table(
            ["phase", "p50 s", "p95 s", "n"],
            [
                ["idle", pct(idle, 50), pct(idle, 95), len(idle)],
                ["during ingestion", pct(busy, 50), pct(busy, 95), len(busy)],
            ],
        )
    )
    print(f"p50 ratio during/idle: {ratio:.2f} (target <= 2)" if ratio else "no busy samples")
    result = {
        "idle_p50_s": pct(idle, 50),
        "idle_p95_s": pct(idle, 95),
        "busy_p50_s": pct(busy, 50),
        "busy_p95_s": pct(busy, 95),
        "ratio_p50": ratio,
        "articles_ingested": report["r"].articles.added if "r" in report else None,
        "ingest_seconds": report["r"].seconds if "r" in report else None,
        "measured_during_ingestion": ingesting_while_measured,
    }
    print(f"report: {report_path('answer_during_ingest', result)}")
    return 0 if ratio is not None and ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
