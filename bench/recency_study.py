"""How retrieval fares when questions are read as of their date: the as-of filter and the shape
of the recency prior, on RealTime QA dev (98 questions with a `question_date`, whole corpus).

For each setting: hit@6 (the evidence article is among the articles of the 6 retrieved chunks,
as `rag eval` counts it) and MRR over those, for all questions and split by whether
`is_current_events` calls the question current. Settings are a handful of round values; all
are reported, so the choice can be checked rather than taken on trust.

    RAG_DATA_DIR=/tmp/recency python -m bench.recency_study

The corpus is ingested into RAG_DATA_DIR first (incremental: about 4 minutes the first time).
Skips with a message when ../shared/data/realtimeqa is absent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from dataclasses import dataclass

from bench.common import REALTIMEQA, dev_questions, report_path, table

TOP_K = 6  # what the engine retrieves by default, and what the hit@6 counts
BEFORE_POOL = 12  # the candidate pool before this change: 2 x top_k
WEEK = 7  # the reference: only the week before the question's date
OLD = 14  # evidence older than this is background: the prior must not lose it


@dataclass(frozen=True)
class Setting:
    name: str
    as_of: bool = True  # filter on the question's date (else no as-of at all)
    prior: str = "off"  # "off", "current" or "all"
    half_life: float = 7.0
    floor: float = 0.5
    pool: int = 100
    shape: str = "searches"  # the prior on each search's score, or on the fused score
    week_only: bool = False  # reference: since = question date - 7 days


def settings() -> list[Setting]:
    rows = [
        Setting("(a) before: no as-of, no prior, pool 12", as_of=False, pool=BEFORE_POOL),
        Setting("(b) as-of filter, pool 12", pool=BEFORE_POOL),
        Setting("(b) as-of filter, pool 100"),
    ]
    for floor in (0.5, 0.25):
        for half_life in (3, 7, 14, 30):
            rows.append(
                Setting(
                    f"(c) prior current, half-life {half_life}, floor {floor}",
                    prior="current",
                    half_life=half_life,
                    floor=floor,
                )
            )
    for floor in (0.5, 0.25):
        rows.append(Setting(f"(d) prior all, half-life 7, floor {floor}", prior="all", floor=floor))
        rows.append(
            Setting(
                f"(e) prior current on the fused score, half-life 7, floor {floor}",
                prior="current",
                floor=floor,
                shape="fused",
            )
        )
    rows.append(Setting("(d) prior all, half-life 3, floor 0.5", prior="all", half_life=3))
    rows.append(
        Setting(
            "(f) prior current, half-life 3, floor 0.5, pool 50",
            prior="current",
            half_life=3,
            pool=50,
        )
    )
    rows.append(Setting("(ref) only the week before (since = as-of - 7)", week_only=True))
    return rows


def run(setting: Setting, questions, vectors, dates, store, keyword, embed) -> dict:
    from llama_index.core.schema import QueryBundle

    from rag.metrics import hit_and_rr
    from rag.retrieve import Filters, HybridRetriever, is_current_events

    hits: dict[str, list[float]] = {"all": [], "current": [], "other": [], "old": []}
    rrs: list[float] = []
    seconds: list[float] = []
    for q, vec in zip(questions, vectors, strict=True):
        day = dt.date.fromisoformat(q["question_date"])
        # With no as-of, a date no article reaches: the filter then passes everything.
        as_of = day if setting.as_of else dt.date.max
        since = day - dt.timedelta(days=WEEK) if setting.week_only else None
        retriever = HybridRetriever(
            store,
            keyword,
            embed,
            top_k=TOP_K,
            filters=Filters(since=since),
            as_of=as_of,
            prior=setting.prior,
            half_life=setting.half_life,
            floor=setting.floor,
            candidates=setting.pool,
            shape=setting.shape,
        )
        t = time.perf_counter()
        chunks = retriever.retrieve(QueryBundle(q["question"], embedding=vec))
        seconds.append(time.perf_counter() - t)
        docs = [c.node.metadata.get("doc_id", "") for c in chunks]
        hit, rr = hit_and_rr(docs, q["evidence_doc_ids"], TOP_K)
        hits["all"].append(hit)
        hits["current" if is_current_events(q["question"], day) else "other"].append(hit)
        rrs.append(rr)
        if min((day - dates[e]).days for e in q["evidence_doc_ids"] if e in dates) > OLD:
            hits["old"].append(hit)
    return {
        "setting": setting.name,
        "as_of": setting.as_of,
        "prior": setting.prior,
        "half_life": setting.half_life,
        "floor": setting.floor,
        "pool": setting.pool,
        "shape": setting.shape,
        "hit@6": round(statistics.mean(hits["all"]), 4),
        "mrr": round(statistics.mean(rrs), 4),
        "hit@6_current": round(statistics.mean(hits["current"]), 4) if hits["current"] else None,
        "hit@6_other": round(statistics.mean(hits["other"]), 4) if hits["other"] else None,
        f"hits_old_evidence(>{OLD}d)": f"{int(sum(hits['old']))}/{len(hits['old'])}",
        "retrieve_ms_p50": round(1000 * statistics.median(seconds), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-ingest", action="store_true", help="use the store as it is")
    args = parser.parse_args()
    if not (REALTIMEQA / "qa_dev.jsonl").exists():
        print(f"skipped: {REALTIMEQA} is absent")
        return 0

    from rag.components import build
    from rag.config import Settings
    from rag.ingest import ingest
    from rag.keyword import KeywordIndex
    from rag.retrieve import RECENCY_FLOOR, RECENCY_HALF_LIFE_DAYS, is_current_events

    cfg = Settings()
    if not args.no_ingest:
        ingest([REALTIMEQA / "corpus.jsonl"], cfg, progress=False)
    parts = build(cfg)
    store, embed = parts.store, parts.embed
    keyword = KeywordIndex(store, cfg.keyword_dir)
    keyword.ensure_fresh()
    questions = dev_questions()
    questions = [q for q in questions if q.get("question_date") and q.get("evidence_doc_ids")]
    dates = {}
    for line in (REALTIMEQA / "corpus.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("date"):
            dates[row["id"]] = dt.date.fromisoformat(row["date"][:10])
    vectors = [embed.get_query_embedding(q["question"]) for q in questions]
    current = sum(
        is_current_events(q["question"], dt.date.fromisoformat(q["question_date"]))
        for q in questions
    )

    results = []
    for s in settings():
        results.append(run(s, questions, vectors, dates, store, keyword, embed))
        print(f"  {s.name}: hit@6 {results[-1]['hit@6']:.3f}", file=sys.stderr)
    cols = [
        "hit@6",
        "mrr",
        "hit@6_current",
        "hit@6_other",
        f"hits_old_evidence(>{OLD}d)",
        "retrieve_ms_p50",
    ]
    print(
        f"RealTime QA dev: {len(questions)} questions ({current} current-events by "
        f"is_current_events), {store.count()} chunks, top {TOP_K}"
    )
    print(table(["setting", *cols], [[r["setting"], *(r[c] for c in cols)] for r in results]))
    data = {
        "dataset": "RealTime QA dev (qa_dev.jsonl, whole corpus.jsonl)",
        "questions": len(questions),
        "current_events_questions": current,
        "chunks": store.count(),
        "chosen": {"half_life": RECENCY_HALF_LIFE_DAYS, "floor": RECENCY_FLOOR},
        "results": results,
    }
    print(f"report: {report_path('recency', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
