"""Answer latency with the bundled model over the gold questions: time to first token and total
time, p50 and p95, with a breakdown of where the time goes.

    python -m bench.answer_latency [--gold evals/gold.jsonl]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, pct, report_path, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gold", type=Path, default=ROOT / "evals" / "gold.jsonl")
    args = ap.parse_args()
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate import load_gold
    from rag.ingest import ingest

    items = load_gold(args.gold)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        ingest([ROOT / "corpus"], settings, progress=False)
        engine = Engine.from_settings(settings)
        engine.ask(items[0].question)  # load the model before timing
        steps: dict[str, list[float]] = {}
        answered = 0
        for item in items:
            answer = engine.ask(item.question)
            answered += not answer.refused
            for k, v in answer.timings.items():
                steps.setdefault(k, []).append(v)
    rows = [[k, pct(v, 50), pct(v, 95), len(v)] for k, v in steps.items()]
    print(table(["step (s)", "p50", "p95", "n"], rows))
    result = {
        "questions": len(items),
        "answered_by_model": answered,
        "first_token_p50_s": pct(steps.get("first_token", []), 50),
        "first_token_p95_s": pct(steps.get("first_token", []), 95),
        "total_p50_s": pct(steps["total"], 50),
        "total_p95_s": pct(steps["total"], 95),
        "steps": {k: {"p50": pct(v, 50), "p95": pct(v, 95), "n": len(v)} for k, v in steps.items()},
    }
    print(f"report: {report_path('answer', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
