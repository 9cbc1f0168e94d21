"""How to get a short answer out of a 135M model: each option of rag/answer_span.py, measured.

For every RealTime QA dev question: retrieve passages as of the question's date (the real
Engine, whole corpus), let the bundled model write its usual draft, then pick a short answer by
each option and score it against the gold answers (SQuAD EM and F1, and whether a gold answer
is inside it). Also reports how often the gold answer is among the candidate spans at all (the
ceiling for any ranker) and the milliseconds each option adds per question.

    RAG_DATA_DIR=/tmp/span/data rag ingest ../shared/data/realtimeqa/corpus.jsonl -q
    RAG_DATA_DIR=/tmp/span/data python -m bench.short_answer_study [--limit N]

Skips (exit 0) when ../shared/data/realtimeqa is absent. Writes bench/reports/short_answer-*.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.common import REALTIMEQA, report_path, table
from rag.answer_span import candidates, question_kind, rank, short_answer, to_short_answer
from rag.config import Settings
from rag.engine import Engine
from rag.metrics import contains, exact_match, f1, normalize
from rag.retrieve import Filters

# (name, method, keyword arguments of rank()). The option scored against the QA prompt runs
# first, right after the draft, whose prompt is then still in the model's cache.
OPTIONS: list[tuple[str, str, dict]] = [
    ("d. combined, QA prompt cached", "combined", {"qa_prompt": True}),
    ("a. align draft", "draft", {}),
    ("c. type filter + prior, no model", "prior", {}),
    ("b. loglik, bare reply", "loglik", {"style": "bare"}),
    ("b. loglik, reply + end of turn", "loglik", {"style": "eot"}),
    ("b. loglik, 'The answer is: X.'", "loglik", {"style": "lead"}),
    ("b+c. typed loglik", "typed-loglik", {"style": "lead"}),
    ("d. combined", "combined", {"style": "lead"}),
    ("b+c. typed loglik, calibrated", "typed-loglik", {"style": "lead", "calibrate": True}),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--options", default="", help="comma-separated option numbers (0-based)")
    ap.add_argument("--dump", default="", help="write per-question candidates to this JSON")
    args = ap.parse_args(argv)
    gold_path = REALTIMEQA / "qa_dev.jsonl"
    if not gold_path.exists():
        print(f"skipped: {gold_path} is absent")
        return 0
    items = [json.loads(line) for line in gold_path.open()]
    if args.limit:
        items = items[: args.limit]
    options = OPTIONS
    if args.options:
        options = [OPTIONS[int(i)] for i in args.options.split(",")]

    engine = Engine.from_settings(Settings())
    if engine.store.count() == 0:
        print("the store is empty: ingest the RealTime QA corpus first (see the docstring)")
        return 2
    llm = engine.llm
    rows: dict[str, dict[str, list[float]]] = {name: {} for name, _, _ in options}
    in_candidates, in_passages, draft_ms, kinds = [], [], [], {}
    dump = []
    for n, item in enumerate(items, start=1):
        q, golds = item["question"], item["answers"]
        passages = engine.retrieve(q, filters=Filters(until=item["question_date"]))
        nodes = [p.node for p in passages]
        messages = engine.prompts["qa"].format_messages(
            context=engine.format_context(nodes), question=q
        )
        t = time.perf_counter()
        draft = llm.chat(messages).message.content or ""
        draft_ms.append(1000 * (time.perf_counter() - t))
        cands = candidates(q, nodes)
        in_passages.append(contains(" ".join(p.get_content() for p in nodes), golds))
        in_candidates.append(float(any(exact_match(c.text, golds) for c in cands)))
        kinds[question_kind(q)] = kinds.get(question_kind(q), 0) + 1
        record = {"question": q, "golds": golds, "draft": draft, "kind": question_kind(q)}
        for name, method, kw in options:
            t = time.perf_counter()
            if kw.get("qa_prompt"):
                # Scored against the QA prompt the draft was generated from: its state is
                # still in the model's cache, so only the candidates cost anything.
                ranked = rank(q, nodes, draft, llm, method=method, messages=messages)
                got = to_short_answer(ranked[0], nodes, method, q) if ranked else None
            else:
                got = short_answer(q, nodes, draft, llm, method=method, **kw)
            ms = 1000 * (time.perf_counter() - t)
            text = got.text if got else ""
            r = rows[name]
            r.setdefault("em", []).append(exact_match(text, golds))
            r.setdefault("f1", []).append(f1(text, golds))
            r.setdefault("contains", []).append(contains(text, golds))
            r.setdefault("answered", []).append(float(got is not None))
            r.setdefault("ms", []).append(ms)
            if got is not None:  # the code-side guarantee, checked on every answer
                article = engine.store.article_text(got.doc_id)
                assert article[got.start : got.end] == got.text, (got, q)
            record[name] = text
        if args.dump:
            ranked = rank(q, nodes, draft, llm, method="loglik", max_scored=40)
            record["candidates"] = [
                {
                    "text": c.text,
                    "gold": exact_match(c.text, golds),
                    "kind": c.kind,
                    "fits": c.fits,
                    "relevance": round(c.relevance, 4),
                    "proximity": round(c.proximity, 4),
                    "count": c.count,
                    "whole": c.whole,
                    "draft": round(c.draft, 4),
                    "passage": c.passage,
                    "loglik": c.loglik,
                    "prior": round(c.prior, 4),
                }
                for c in ranked
            ]
            record["gold_in_candidates"] = in_candidates[-1]
        dump.append(record)
        line = " | ".join(f"{name.split('.')[0]}:{record[name]!r}" for name, _, _ in options)
        print(f"{n:3d} {golds[0]!r:30.30} {line}", file=sys.stderr)

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    header = ["option", "EM", "F1", "contains", "answered", "ms/question"]
    out_rows = []
    summary = {}
    for name, _, _ in options:
        r = rows[name]
        ms = sorted(r["ms"])
        summary[name] = {k: round(mean(v), 4) for k, v in r.items()}
        summary[name]["ms_p50"] = round(ms[len(ms) // 2], 1)
        out_rows.append(
            [
                name,
                mean(r["em"]),
                mean(r["f1"]),
                mean(r["contains"]),
                mean(r["answered"]),
                f"{mean(r['ms']):.0f} (p50 {ms[len(ms) // 2]:.0f})",
            ]  # fmt: skip
        )
    print(f"RealTime QA dev, {len(items)} questions, passages as of each question's date")
    print(f"gold answer in the passages: {mean(in_passages):.3f}; among the candidate spans "
          f"(EM): {mean(in_candidates):.3f}; draft {mean(draft_ms):.0f} ms/question")  # fmt: skip
    print(f"question kinds: {kinds}")
    print(table(header, out_rows))
    path = report_path(
        "short_answer",
        {
            "questions": len(items),
            "gold_in_passages": mean(in_passages),
            "gold_in_candidates": mean(in_candidates),
            "draft_ms": mean(draft_ms),
            "kinds": kinds,
            "options": summary,
        },
    )
    print(f"report: {path}")
    if args.dump:
        with open(args.dump, "w") as fh:
            json.dump(dump, fh, indent=1)
    _ = normalize  # the metrics' normalisation is the one the answers are scored with
    return 0


if __name__ == "__main__":
    sys.exit(main())
