"""Calibrate the refusal policy's thresholds on eval reports the project holds.

Run the evals with every question reaching the model, so that each row carries the signals the
policy reads, then sweep the thresholds over those rows without running the model again:

    RAG_MIN_RELEVANCE=0 RAG_CONFIDENT_RELEVANCE=0 rag eval --out /tmp/cal/gold
    RAG_MIN_RELEVANCE=0 RAG_CONFIDENT_RELEVANCE=0 rag eval \
        --gold ../shared/data/realtimeqa/qa_dev.jsonl \
        --corpus ../shared/data/realtimeqa/corpus.jsonl --out /tmp/cal/rtqa
    python -m evals.calibrate --gold-report /tmp/cal/gold/<run> --rtqa-report /tmp/cal/rtqa/<run>

Refusal precision and recall come from the bundled gold set (the only data we hold with
unanswerable questions); false refusals and containment from both. The chosen point maximises
refusal F1 on the gold set with at most MAX_FALSE_REFUSALS on RealTime QA dev; among ties, the
one that keeps the most RealTime QA answers, then the highest `min_relevance` (off-topic questions
over corpora we do not hold are better refused), then the lowest `confident_relevance`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.refusal import RefusalPolicy, Signals

MAX_FALSE_REFUSALS = 5  # on RealTime QA dev's 98 answerable questions (the bound)
GRID = [round(0.30 + 0.025 * i, 3) for i in range(13)]  # 0.30 .. 0.60


def load_rows(report: Path) -> list[dict]:
    path = report / "answers.jsonl" if report.is_dir() else report
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def refused(policy: RefusalPolicy, row: dict) -> bool:
    sig = dict(row.get("signals") or {})
    unmentioned = sig.pop("unmentioned", [])
    overrides = sig.pop("overrides", False)
    unnumbered = sig.pop("unnumbered", [])
    if (
        policy.before_generation(sig["best_relevance"], unmentioned, overrides, unnumbered)
        is not None
    ):
        return True
    if "model_declined" not in sig:
        raise SystemExit(
            "a row has no post-generation signals: run the eval with RAG_MIN_RELEVANCE=0 "
            "RAG_CONFIDENT_RELEVANCE=0 so that every question reaches the model"
        )
    return policy.after_generation(Signals(**sig)) is not None


def score(policy: RefusalPolicy, rows: list[dict]) -> dict:
    pred = [refused(policy, r) for r in rows]
    gold = [not r["answerable"] for r in rows]
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    precision = tp / sum(pred) if sum(pred) else 1.0
    recall = tp / sum(gold) if sum(gold) else 1.0
    answered = [r for r, p in zip(rows, pred, strict=True) if r["answerable"] and not p]
    answerable = [r for r in rows if r["answerable"]]
    return {
        "refusal_p": round(precision, 3),
        "refusal_r": round(recall, 3),
        "false_refusals": sum(p for r, p in zip(rows, pred, strict=True) if r["answerable"]),
        "contains": round(sum(r.get("contains", 0) for r in answered) / len(answerable), 3)
        if answerable
        else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gold-report", type=Path, required=True)
    ap.add_argument("--rtqa-report", type=Path, required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gold, rtqa = load_rows(args.gold_report), load_rows(args.rtqa_report)
    table = []
    for lo in GRID:
        for hi in [x for x in GRID if x >= lo]:
            policy = RefusalPolicy(min_relevance=lo, confident_relevance=hi)
            g, r = score(policy, gold), score(policy, rtqa)
            p, rc = g["refusal_p"], g["refusal_r"]
            f = 2 * p * rc / (p + rc) if p + rc else 0.0
            table.append(
                {
                    "min_relevance": lo,
                    "confident_relevance": hi,
                    "gold": g,
                    "rtqa": r,
                    "gold_refusal_f1": round(f, 3),
                }
            )
    ok = [t for t in table if t["rtqa"]["false_refusals"] <= MAX_FALSE_REFUSALS] or table
    best = max(
        ok,
        key=lambda t: (
            t["gold_refusal_f1"],
            t["rtqa"]["contains"] or 0,
            t["min_relevance"],
            -t["confident_relevance"],
        ),
    )
    if args.json:
        print(json.dumps({"best": best, "table": table}, indent=2))
        return
    print(
        "| min_rel | confident | gold ref P | gold ref R | gold false | gold contains | "
        "RTQA false | RTQA contains |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for t in table:
        if t["confident_relevance"] in (t["min_relevance"], best["confident_relevance"]) or (
            t["min_relevance"] == best["min_relevance"]
        ):
            g, r = t["gold"], t["rtqa"]
            mark = " **chosen**" if t is best else ""
            print(
                f"| {t['min_relevance']} | {t['confident_relevance']}{mark} | {g['refusal_p']} | "
                f"{g['refusal_r']} | {g['false_refusals']} | {g['contains']} | "
                f"{r['false_refusals']} | {r['contains']} |"
            )


if __name__ == "__main__":
    main()
