"""Answer latency while ingestion runs, against idle, in one run (`rag serve --watch`'s case).

The same questions are asked through one Engine: first with nothing else running, then while an
Ingestor writes articles into the same store from a background thread, as the server's watcher
does: once embedding straight through (the old way), once pausing for questions in progress
(rag/foreground.py, what `rag serve --watch` does). Prints p50/p95 of each phase, the articles
ingested meanwhile, and the ratios to idle (target: p50 during ingestion <= 2x idle).

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
        lines: list[str] = []
        if source.exists():
            with open(source, encoding="utf-8") as src:
                lines = [line for _, line in zip(range(2 * args.articles), src, strict=False)]
        if len(lines) < 2 * args.articles:
            lines = synthetic_articles(Path(tmp), 2 * args.articles).read_text().splitlines(True)

        def during(part: list[str], name: str, paused: bool) -> dict:
            """Ask the questions while `part` is ingested in a background thread."""
            path = Path(tmp) / f"{name}.jsonl"
            path.write_text("".join(part), encoding="utf-8")
            fg = engine.foreground if paused else None
            ingestor = Ingestor(settings, engine.store, engine.embed, foreground=fg)
            engine.foreground.waited = 0.0
            done = threading.Event()
            report: dict = {}

            def run_ingest() -> None:
                report["r"] = ingestor.run([path], progress=False)
                done.set()

            worker = threading.Thread(target=run_ingest)
            worker.start()
            time.sleep(2)  # ingestion under way before the first question
            times: list[float] = []
            asked_while_ingesting = 0
            while not done.is_set() and len(times) < 3 * len(questions):
                times += ask_all()
                asked_while_ingesting += 1
            t = time.perf_counter()
            worker.join()
            r = report["r"]
            return {
                "times": times,
                "rounds": asked_while_ingesting,
                "articles": r.articles.added,
                "ingest_s": r.seconds,
                "left_after_questions_s": time.perf_counter() - t,
                "waited_s": engine.foreground.waited if paused else 0.0,
            }

        # Before: ingestion embeds without looking at the questions. After: it pauses for them.
        unpaused = during(lines[: args.articles], "unpaused", paused=False)
        paused = during(lines[args.articles : 2 * args.articles], "paused", paused=True)

    def ratio(run: dict) -> float | None:
        return pct(run["times"], 50) / pct(idle, 50) if run["times"] else None

    rows = [["idle", pct(idle, 50), pct(idle, 95), len(idle), "", ""]]
    for name, run in [("ingesting, no pause (before)", unpaused), ("ingesting, paused", paused)]:
        rows.append(
            [
                name,
                pct(run["times"], 50),
                pct(run["times"], 95),
                len(run["times"]),
                f"{run['articles']} in {run['ingest_s']:.0f} s",
                round(ratio(run) or 0, 2),
            ]
        )
    print(table(["phase", "p50 s", "p95 s", "n", "ingested", "p50 / idle"], rows))
    r_after = ratio(paused)
    print(f"p50 ratio during/idle: {r_after:.2f} (target <= 2)" if r_after else "no busy samples")
    result = {
        "idle_p50_s": pct(idle, 50),
        "idle_p95_s": pct(idle, 95),
        "busy_p50_s": pct(paused["times"], 50),
        "busy_p95_s": pct(paused["times"], 95),
        "ratio_p50": r_after,
        "unpaused_p50_s": pct(unpaused["times"], 50),
        "unpaused_ratio_p50": ratio(unpaused),
        "paused": {k: v for k, v in paused.items() if k != "times"},
        "unpaused": {k: v for k, v in unpaused.items() if k != "times"},
    }
    print(f"report: {report_path('answer_during_ingest', result)}")
    return 0 if r_after is not None and r_after <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
