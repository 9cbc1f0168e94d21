"""How to get a short answer out of a 135M model: each option of rag/answer_span.py, measured.

For every RealTime QA dev question: retrieve passages as of the question's date (the real
Engine, whole corpus), let the bundled model write its usual draft, then pick a short answer by
each option and score it against the gold answers (SQuAD EM and F1, and whether a gold answer
is inside it). Also reports how often the gold answer is among the candidate spans at all (the
ceiling for any ranker).

To keep the run short on a small machine, the model scores each question's candidates once per
scoring style, and every option ranks from those scores. An option's milliseconds are measured
parts: making and ranking candidates, evaluating its prompt (nothing when the prompt is the
draft's, still in the model's cache) and scoring its own candidates. The default option is
then run end to end through `short_answer`, and every answer it gives is checked to be the
article's own text at the span given.

    RAG_DATA_DIR=/tmp/span/data rag ingest ../shared/data/realtimeqa/corpus.jsonl -q
    RAG_DATA_DIR=/tmp/span/data python -m bench.short_answer_study [--limit N] [--dump F]

Skips (exit 0) when ../shared/data/realtimeqa is absent. Writes bench/reports/short_answer-*.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import REALTIMEQA, report_path, table
from rag import answer_span as span
from rag.config import Settings
from rag.engine import Engine
from rag.metrics import contains, exact_match, f1, normalize
from rag.retrieve import Filters


def _timed(fn: Callable, *args, **kw) -> tuple:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, 1000 * (time.perf_counter() - t)


COMBINED = "d. combined (typed, prior, draft, loglik)"


@dataclass
class _Scored:
    """One question's candidate pools and the model's scores of them, per prompt and style."""

    pools: dict[str, list[span.Candidate]]
    ll: dict[str, dict[str, float]]
    cand_ms: float
    prompt_ms: dict[str, float]
    per_cand_ms: dict[str, float]

    def pick(
        self, pool: str, key: str, combined: bool, calibrate: bool = False
    ) -> tuple[str, float]:
        """(best text, milliseconds the option costs) for ranking `pool` by scores `key`."""
        cands = self.pools[pool]
        best, best_score = None, float("-inf")
        for c in cands:
            s = self.ll[key][c.text] - (self.ll["calibration"][c.text] if calibrate else 0.0)
            if combined:
                s = c.prior + span.W_DRAFT * c.draft + span.W_LOGLIK * s
            if s > best_score:
                best, best_score = c, s
        ms = self.cand_ms + self.prompt_ms[key] + self.per_cand_ms[key] * len(cands)
        if calibrate:
            ms += self.prompt_ms["calibration"] + self.per_cand_ms["calibration"] * len(cands)
        return (best.text if best else ""), ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--every", type=int, default=1, help="every Nth question (a spread sample)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="only the 'The answer is: X.' style and no end-to-end rerun (a busy machine)",
    )
    ap.add_argument("--dump", default="", help="write per-question candidates to this JSON")
    args = ap.parse_args(argv)
    gold_path = REALTIMEQA / "qa_dev.jsonl"
    if not gold_path.exists():
        print(f"skipped: {gold_path} is absent")
        return 0
    items = [json.loads(line) for line in gold_path.open()]
    items = items[:: args.every]
    if args.limit:
        items = items[: args.limit]

    engine = Engine.from_settings(Settings())
    if engine.store.count() == 0:
        print("the store is empty: ingest the RealTime QA corpus first (see the docstring)")
        return 2
    llm = engine.llm
    results: dict[str, dict[str, list[float]]] = {}
    in_candidates, in_passages, draft_ms, kinds, dump = [], [], [], {}, []

    def record(name: str, text: str, ms: float, golds: list[str]) -> None:
        r = results.setdefault(name, {})
        r.setdefault("em", []).append(exact_match(text, golds))
        r.setdefault("f1", []).append(f1(text, golds))
        r.setdefault("contains", []).append(contains(text, golds))
        r.setdefault("answered", []).append(float(bool(text)))
        r.setdefault("ms", []).append(ms)

    for n, item in enumerate(items, start=1):
        q, golds = item["question"], item["answers"]
        passages = engine.retrieve(q, filters=Filters(until=item["question_date"]))
        nodes = [p.node for p in passages]
        qa_messages = engine.prompts["qa"].format_messages(
            context=engine.format_context(nodes), question=q
        )
        t = time.perf_counter()
        draft = llm.chat(qa_messages).message.content or ""
        draft_ms.append(1000 * (time.perf_counter() - t))
        kind = span.question_kind(q)
        kinds[kind] = kinds.get(kind, 0) + 1

        # Candidates with their prior, once; the pools the model-scored options rank.
        ranked, cand_ms = _timed(span.rank, q, nodes, draft, None, method="prior")
        every = span.candidates(q, nodes)
        in_passages.append(contains(" ".join(p.get_content() for p in nodes), golds))
        in_candidates.append(float(any(exact_match(c.text, golds) for c in every)))
        by_key = {c.text: c for c in ranked}
        for c in every:  # the untyped pool needs every candidate's prior and draft overlap
            if c.text not in by_key:
                c.draft = span._draft_overlap(c, set(normalize(draft).split()))
                c.prior = span._prior(c)
                by_key[c.text] = c
        pool_key = lambda c: -(c.prior + span.W_DRAFT * c.draft)  # noqa: E731
        pools = {
            "all": sorted(by_key.values(), key=pool_key)[: span.MAX_SCORED],
            "typed": sorted([c for c in by_key.values() if c.fits], key=pool_key)[
                : span.MAX_SCORED
            ],
        }
        union = list({c.text: c for p in pools.values() for c in p}.values())
        texts = [c.text for c in union]

        # The model's scores, per prompt and style. The draft's own prompt goes first: it is
        # still in the model's cache.
        scoring = span.scoring_messages(q, nodes)
        ll: dict[str, dict[str, float]] = {}
        prompt_ms: dict[str, float] = {}
        per_cand_ms: dict[str, float] = {}
        prompts = [
            ("qa-lead", qa_messages, "lead"),
            ("bare", scoring, "bare"),
            ("eot", scoring, "eot"),
            ("lead", scoring, "lead"),
            ("calibration", span.CALIBRATION_MESSAGES, "lead"),
        ]
        if args.quick:
            prompts = [p for p in prompts if p[0] in {"qa-lead", "lead"}]
        for name, messages, style in prompts:
            # The prompt alone (no replies), then the replies against the cached prompt.
            lead = span.STYLES[style]["lead"]
            _, prompt_ms[name] = _timed(llm.score_continuations, messages, [], lead=lead)
            scores, ms = _timed(span._loglik, llm, messages, texts, style) if texts else ([], 0)
            ll[name] = dict(zip(texts, scores, strict=True))
            per_cand_ms[name] = ms / len(texts) if texts else 0.0

        scored = _Scored(pools, ll, cand_ms, prompt_ms, per_cand_ms)
        model_option = scored.pick
        draft_hits = span.rank(q, nodes, draft, None, method="draft")
        typed_prior = [c for c in ranked if c.fits]
        options = {
            "a. align draft to passages": (
                draft_hits[0].text if draft_hits else "",
                cand_ms,
            ),
            "c. type filter + prior + draft, no model": (
                typed_prior[0].text if typed_prior else "",
                cand_ms,
            ),
        }
        for name, pool, key, combined, calibrate in [
            ("b. loglik, bare reply", "all", "bare", False, False),
            ("b. loglik, reply + end of turn", "all", "eot", False, False),
            ("b. loglik, 'The answer is: X.'", "all", "lead", False, False),
            ("b+c. typed loglik", "typed", "lead", False, False),
            ("b+c. typed loglik, calibrated", "typed", "lead", False, True),
            (COMBINED, "typed", "lead", True, False),
            ("d. combined, QA prompt (cached)", "typed", "qa-lead", True, False),
        ]:
            if key in ll and (not calibrate or "calibration" in ll):
                options[name] = model_option(pool, key, combined, calibrate)
        for name, (text, ms) in options.items():
            record(name, text, ms, golds)

        # The default, end to end, with the verbatim check on every answer.
        got = None
        if not args.quick:
            got, ms = _timed(span.short_answer, q, nodes, draft, llm)
            record("short_answer() default, end to end", got.text if got else "", ms, golds)
        for c in [got] if got else []:
            article = engine.store.article_text(c.doc_id)
            assert article[c.start : c.end] == c.text, (c, q)

        rec = {"question": q, "golds": golds, "draft": draft, "kind": kind}
        rec.update({name: text for name, (text, _) in options.items()})
        if args.dump:
            rec["candidates"] = [
                {
                    "text": c.text,
                    "gold": exact_match(c.text, golds),
                    "kind": c.kind,
                    "fits": c.fits,
                    "whole": c.whole,
                    "relevance": round(c.relevance, 4),
                    "proximity": round(c.proximity, 4),
                    "count": c.count,
                    "draft": round(c.draft, 4),
                    "prior": round(c.prior, 4),
                    **{f"ll_{k}": round(v[c.text], 4) for k, v in ll.items()},
                }
                for c in union
            ]
        dump.append(rec)
        best = options.get(COMBINED, ("",))[0]
        print(
            f"{n:3d} {golds[0]!r:28.28} {kind:7} combined={best!r:30.30} draft={draft[:60]!r}",
            file=sys.stderr,
        )

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    header = ["option", "EM", "F1", "contains", "answered", "ms mean", "ms p50"]
    rows, summary = [], {}
    for name, r in results.items():
        ms = sorted(r["ms"])
        summary[name] = {k: round(mean(v), 4) for k, v in r.items()}
        summary[name]["ms_p50"] = round(ms[len(ms) // 2], 1)
        rows.append(
            [
                name,
                mean(r["em"]),
                mean(r["f1"]),
                mean(r["contains"]),
                mean(r["answered"]),
                f"{mean(r['ms']):.0f}",
                f"{ms[len(ms) // 2]:.0f}",
            ]  # fmt: skip
        )
    print(f"RealTime QA dev, {len(items)} questions, passages as of each question's date")
    print(
        f"gold answer in the passages {mean(in_passages):.3f}, among the candidate spans "
        f"{mean(in_candidates):.3f}; draft {mean(draft_ms):.0f} ms/question (not included)"
    )
    print(f"question kinds: {kinds}")
    print(table(header, rows))
    path = report_path(
        "short_answer",
        {
            "questions": len(items),
            "gold_in_passages": mean(in_passages),
            "gold_in_candidates": mean(in_candidates),
            "draft_ms": mean(draft_ms),
            "kinds": kinds,
            "weights": {
                k: getattr(span, k) for k in dir(span) if k.startswith("W_") or k == "MAX_SCORED"
            },
            "options": summary,
        },
    )
    print(f"report: {path}")
    if args.dump:
        with open(args.dump, "w") as fh:
            json.dump(dump, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
