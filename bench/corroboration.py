"""Corroboration across sources (rag/corroborate.py): its thresholds fitted and checked, and how
often answers have 2+ sources or a conflict that holds the gold answer.

fit: the two thresholds, fitted on RealTime QA 2023 and checked on 2024 (read at run time from
../shared/data/realtimeqa/gcs20XX, never copied). Each question's evidence articles are
several outlets' search results that all hold the quiz answer; the quiz's wrong choices are
values of the same kind.

- SYNDICATED (copies of one story): for pairs of articles from different outlets (a question's
  evidence articles, and any two articles sharing a sentence of 12+ words), the 4-gram
  containment of the text around the sentence, itself left out (what the engine compares),
  against the label "the whole articles are copies" (whole-article 4-gram containment >=
  COPY_LABEL; the distribution is printed). Such copies are rare in RealTime QA, so the
  threshold is the lowest that merges at most 1 % of the pairs that are not copies on 2023.
- SUPPORT_CLAIM (a sentence with the answer states it): pairs of sentences from different
  outlets that both hold the gold answer; the pair is a positive when both say at least half
  the words of the question's asking sentence, a negative when the other says under a quarter.
- SAME_CLAIM (two sentences make the same claim, so a different value disagrees): the
  positives above, against negatives made of such a sentence and another outlet's sentence
  holding a wrong quiz choice (a value of the same kind) in the answer's slot and not the gold
  answer, taken as not the same claim (the quiz's distractors are not what other outlets
  report).

Each threshold is the lowest (most found) whose error on 2023 stays within a cap set by what
the error costs (MAX_FALSE_*), and is then reported on 2024.

    python -m bench.corroboration fit

answers: from an eval's answers.jsonl (`rag eval --json --out DIR`), the share of answered
items with 2+ sources, and among wrong short answers, how often a gold answer is among the
conflicts. Rows written before corroboration was wired into `rag eval` lack the keys; then
the retrieval of each item is replayed (no model) against the eval store of RAG_DATA_DIR
and the row's short answer is corroborated afresh.

    RAG_DATA_DIR=/work/evaldata/gold python -m bench.corroboration answers DIR/answers.jsonl \\
        [--corpus corpus/] [--sample 30 --sample-out FILE]

Skips (exit 0) when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import REALTIMEQA, report_path, table
from rag.answer_span import NAME_KINDS, ShortAnswer, candidate_kind, question_kind
from rag.context import asking_terms
from rag.corroborate import (
    NAME_FAMILY,
    SAME_CLAIM,
    SHINGLE,
    SUPPORT_CLAIM,
    SYNDICATED,
    TEXT_FAMILY,
    alignment,
    claim_overlap,
    containment,
    copied,
    family,
    outlet,
    shingles,
    surroundings,
)
from rag.corroborate import summary as corroboration_summary
from rag.metrics import normalize
from rag.text import sentence_spans, terms

COPY_LABEL = 0.5  # whole articles sharing this share of 4-grams are copies (the label)
MIN_ASKED = 0.5  # a sentence "states the answer" when it has half the asking sentence's words
GRID = [round(0.05 * i, 2) for i in range(1, 20)]


@dataclass
class Hit:
    doc: str
    outlet: str
    sentence: str
    span: tuple[int, int]  # the value in the sentence
    around: str  # the article text around the sentence


def _load(year: str) -> tuple[dict[str, dict], list[dict]]:
    folder = REALTIMEQA / f"gcs{year}"
    docs = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            docs[d["id"]] = d
    qa = [json.loads(x) for x in (folder / "qa.jsonl").read_text().splitlines() if x]
    return docs, qa


_SPANS: dict[str, list[tuple[int, int]]] = {}


def _sentences(doc: dict) -> list[tuple[int, int]]:
    if doc["id"] not in _SPANS:
        _SPANS[doc["id"]] = sentence_spans(doc["text"])
    return _SPANS[doc["id"]]


def _hits(doc: dict, value: str) -> Iterator[Hit]:
    """Sentences of the article holding `value` verbatim (any case), with its span."""
    text = doc["text"]
    low = value.lower()
    for a, b in _sentences(doc):
        s = text[a:b]
        i = s.lower().find(low)
        if i < 0:
            continue
        around = surroundings(text, a, b)
        yield Hit(doc["id"], outlet(doc), s, (i, i + len(value)), around)


def _whole(hit: Hit) -> bool:
    """The hit's value is not part of a longer word or number ("3" in "350,000" or "2.3")."""
    s, (a, b) = hit.sentence, hit.span
    return not (
        re.match(r"\w|[.,]\d", s[b : b + 2]) or re.search(r"\w$|\d[.,]$", s[max(0, a - 2) : a])
    )


def _kind_family(question: str, value: str) -> str:
    wanted = question_kind(question)
    kind = candidate_kind(value)
    if kind == "name":
        kind = wanted if wanted in NAME_KINDS else "name"
    return family(kind)


def _coverage(asked: set[str], sentence: str) -> float:
    return len(asked & terms(sentence)) / len(asked) if asked else 0.0


def fit_year(year: str) -> dict:
    docs, qa = _load(year)
    copy_pairs: list[tuple[float, float]] = []  # (whole-article, window) containment
    support_pos: list[float] = []  # another outlet's sentence with the answer that states it
    support_neg: list[float] = []  # ... that holds it but speaks of something else
    neg: list[float] = []  # wrong choices in the answer's slot (not the same claim)
    whole: dict[str, set] = {}

    def article(doc_id: str) -> set:
        if doc_id not in whole:
            whole[doc_id] = shingles(docs[doc_id]["text"], SHINGLE)
        return whole[doc_id]

    for q in qa:
        gold = q["answers"][0]
        evidence = [docs[d] for d in q["evidence_doc_ids"] if d in docs]
        asked = asking_terms(q["question"])
        fam = _kind_family(q["question"], gold)
        gold_hits = [h for d in evidence for h in _hits(d, gold)]
        first: dict[str, Hit] = {}
        for h in gold_hits:
            first.setdefault(h.doc, h)
        copies: set[frozenset[str]] = set()
        firsts = list(first.values())
        for i, a in enumerate(firsts):
            for b in firsts[:i]:
                if a.outlet == b.outlet:
                    continue
                w = containment(article(a.doc), article(b.doc))
                copy_pairs.append((w, copied(a.around, b.around)))
                if w >= COPY_LABEL:
                    copies.add(frozenset((a.doc, b.doc)))

        def other(a: Hit, b: Hit, copies: set = copies) -> bool:
            return a.outlet != b.outlet and frozenset((a.doc, b.doc)) not in copies

        answering = [h for h in gold_hits if _coverage(asked, h.sentence) >= MIN_ASKED]
        for a in answering:
            for b in gold_hits:
                if b is a or not other(a, b):
                    continue
                cover = _coverage(asked, b.sentence)
                x = claim_overlap(a.sentence, a.span, b.sentence, b.span)
                if cover >= MIN_ASKED:
                    support_pos.append(x)
                elif cover < MIN_ASKED / 2:
                    support_neg.append(x)
        if fam == TEXT_FAMILY:
            continue
        wrong = [c for c in q.get("choices", []) if normalize(c) != normalize(gold)]
        for c in wrong:
            if _kind_family(q["question"], c) != fam:
                continue
            for d in evidence:
                for h in _hits(d, c):
                    if gold.lower() in h.sentence.lower():
                        continue
                    for a in answering:
                        if not other(a, h):
                            continue
                        if fam == NAME_FAMILY and c.lower() in a.sentence.lower():
                            continue  # named beside the answer: no disagreement
                        if alignment(a.sentence, a.span, h.sentence, h.span) == 0:
                            continue
                        neg.append(claim_overlap(a.sentence, a.span, h.sentence, h.span))
    copy_pairs += _corpus_copies(docs, article)
    return {
        "copy_pairs": copy_pairs,
        "support_pos": support_pos,
        "support_neg": support_neg,
        "pos": list(support_pos),
        "neg": neg,
    }


def _corpus_copies(docs: dict[str, dict], article) -> list[tuple[float, float]]:
    """Pairs of articles of different outlets that share a long sentence (copies of one story,
    or stories quoting one line): (whole-article containment, containment of the text around
    the shared sentence)."""
    by_sentence: dict[str, list[tuple[str, int, int]]] = {}
    for d in docs.values():
        text = d["text"]
        for a, b in _sentences(d):
            key = normalize(text[a:b])
            if len(key.split()) >= 12:
                by_sentence.setdefault(key, []).append((d["id"], a, b))
    pairs: dict[frozenset[str], tuple[float, float]] = {}
    for found in by_sentence.values():
        if not 2 <= len(found) <= 20:  # boilerplate ("Sign up for ...") sits in many
            continue
        for i, (da, a0, a1) in enumerate(found):
            for db, b0, b1 in found[:i]:
                key = frozenset((da, db))
                if key in pairs or da == db or outlet(docs[da]) == outlet(docs[db]):
                    continue
                ta, tb = docs[da]["text"], docs[db]["text"]
                pairs[key] = (
                    containment(article(da), article(db)),
                    copied(surroundings(ta, a0, a1), surroundings(tb, b0, b1)),
                )
    return list(pairs.values())


def _rates(data: dict, support: float, same: float, synd: float) -> dict:
    pairs = data["copy_pairs"]
    label = [w >= COPY_LABEL for w, _ in pairs]
    pred = [x >= synd for _, x in pairs]
    tp = sum(a and b for a, b in zip(label, pred, strict=True))
    return {
        "support_claim": support,
        "support_pairs": [len(data["support_pos"]), len(data["support_neg"])],
        "support_recall": _share([x >= support for x in data["support_pos"]]),
        "support_false_rate": _share([x >= support for x in data["support_neg"]]),
        "same_claim": same,
        "same_claim_recall": _share([x >= same for x in data["pos"]]),
        "wrong_choice_pairs": len(data["neg"]),
        "false_conflict_rate": _share([x >= same for x in data["neg"]]),
        "article_pairs": len(pairs),
        "copies_by_label": sum(label),
        "syndicated": synd,
        "copy_precision": round(tp / sum(pred), 4) if sum(pred) else None,
        "copy_recall": round(tp / sum(label), 4) if sum(label) else None,
        "false_merge_rate": _share([p for p, lab in zip(pred, label, strict=True) if not lab]),
    }


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


# The error each threshold may make on the fitting year, by what it costs: a wrong "Sources
# differ" line costs trust (1 in 20), a sentence counted as support that speaks of something
# else inflates "(n sources)" (1 in 10), two outlets merged as copies hide a source (1 in 100).
MAX_FALSE_CONFLICTS = 0.05
MAX_FALSE_SUPPORT = 0.10
MAX_FALSE_COPIES = 0.01


def fit(_args: argparse.Namespace) -> int:
    if not (REALTIMEQA / "gcs2023").exists():
        print(f"skipped: {REALTIMEQA}/gcs2023 is absent")
        return 0
    train, check = fit_year("2023"), fit_year("2024")
    for year, data in (("2023", train), ("2024", check)):
        hist = [0] * 10
        for w, _ in data["copy_pairs"]:
            hist[min(9, int(w * 10))] += 1
        print(f"{year} whole-article 4-gram containment of article pairs, by tenth: {hist}")
    rows = []
    for t in GRID:
        rows.append(
            [t]
            + [
                _share([x >= t for x in d[k]]) or 0.0
                for d in (train, check)
                for k in ("support_pos", "support_neg", "neg")
            ]
        )
    print(
        table(["t", "sup+ 23", "sup- 23", "false c 23", "sup+ 24", "sup- 24", "false c 24"], rows)
    )
    # Each threshold: the lowest (most found) whose error on 2023 stays within its cap.
    support = min((t for t in GRID if rows[GRID.index(t)][2] <= MAX_FALSE_SUPPORT), default=0.5)
    same = min((t for t in GRID if rows[GRID.index(t)][3] <= MAX_FALSE_CONFLICTS), default=0.5)
    for year, data in (("2023", train), ("2024", check)):
        for name, want in (("not copies", False), ("copies", True)):
            hist = [0] * 10
            for w, x in data["copy_pairs"]:
                if (w >= COPY_LABEL) == want:
                    hist[min(9, int(x * 10))] += 1
            print(f"{year} {name}: 4-gram containment around the sentence, by tenth: {hist}")

    def false_merges(s: float) -> float:
        pairs = [x for w, x in train["copy_pairs"] if w < COPY_LABEL]
        return sum(x >= s for x in pairs) / max(1, len(pairs))

    synd = min((s for s in GRID if false_merges(s) <= MAX_FALSE_COPIES), default=0.5)
    result = {
        "fitted": {"support_claim": support, "same_claim": same, "syndicated": synd},
        "in_use": {
            "support_claim": SUPPORT_CLAIM,
            "same_claim": SAME_CLAIM,
            "syndicated": SYNDICATED,
        },
        "2023": _rates(train, support, same, synd),
        "2024": _rates(check, support, same, synd),
    }
    print(json.dumps(result, indent=2))
    print("report:", report_path("corroboration-fit", result))
    return 0


# ---------------------------------------------------------------------------------------------
# Eval answers


def _replay(rows: list[dict], corpus: Path | None) -> list[dict]:
    """Corroborate each row's short answer over its retrieval, replayed without the model."""
    from rag.config import Settings
    from rag.corroborate import number_citations
    from rag.engine import AnswerState, Engine
    from rag.evaluate import eval_settings
    from rag.grounding import Citation
    from rag.retrieve import Filters

    settings = Settings()
    if corpus is not None:
        settings = eval_settings(settings, corpus)
    engine = Engine.from_settings(settings)
    out = []
    for row in rows:
        at = row.get("short_answer_at")
        if row.get("refused") or not at or not row.get("short_answer"):
            out.append(row | {"corroboration": None, "conflicts": []})
            continue
        st = AnswerState(row["question"], Filters(as_of=row.get("as_of") or None).validate(), 0)
        st.top_k = engine.settings.top_k
        st.standalone = row["question"]
        engine._retrieve(st)
        engine._select(st)
        text = row["short_answer"]
        wanted = question_kind(row["question"])
        kind = candidate_kind(text)
        if kind == "name":
            kind = wanted if wanted in NAME_KINDS else "name"
        short = ShortAnswer(text, 1, at["doc_id"], at["start"], at["end"], kind, 0.0, "replay")
        res = engine.corroborate(short, st.passages, st.chunks)
        # The citations the answer would carry: the grounder's, then the ones added.
        cited = [
            Citation(c["n"], c["doc_id"], "", "", "", "", c["text"], c["start"], c["end"], 0.0)
            for c in row.get("citations") or []
        ]
        if res is not None and cited:
            cited = number_citations(res, cited)
        out.append(
            row
            | {
                "citations": [
                    {k: getattr(c, k) for k in ("n", "doc_id", "start", "end", "text")}
                    for c in cited
                ],
                "corroboration": res.corroboration.to_dict() if res and cited else None,
                "conflicts": [c.to_dict() for c in res.conflicts] if res and cited else [],
            }
        )
    return out


def added_citations(rows: list[dict], gold: Path) -> dict:
    """Precision, as `rag eval` scores citations (from an evidence article or holding a gold
    answer), of the citations corroboration adds: those of the sources stating the short
    answer besides [1], and those of the conflicts; and the eval's citation precision with
    the conflicts' citations left out, to tell the two apart."""
    from rag.evaluate import load_gold
    from rag.metrics import citation_scores, contains

    evidence = {g.id: g.evidence for g in load_gold(gold)}
    support, conflict, without = [], [], []
    for r in rows:
        if r.get("refused") or not r.get("answerable", True):
            continue
        ev = evidence.get(r["id"], [])
        corroborated = (r.get("corroboration") or {}).get("citations") or []
        cited = {c["n"]: c for c in r.get("citations") or []}

        def good(n: int, ev: list = ev, cited: dict = cited, r: dict = r) -> bool:
            c = cited[n]
            return c["doc_id"] in ev or bool(contains(c["text"], r["gold"]))

        support += [good(n) for n in corroborated[1:] if n in cited]
        conflict_ns = {c["n"] for c in r.get("conflicts") or []} - set(corroborated)
        conflict += [good(n) for n in conflict_ns if n in cited]
        kept = [c for n, c in cited.items() if n not in conflict_ns]
        p, _ = citation_scores(kept, ev, r["gold"])
        if p is not None:
            without.append(p)
    scored = [
        citation_scores(r.get("citations") or [], evidence.get(r["id"], []), r["gold"])
        for r in rows
        if not r.get("refused") and r.get("answerable", True)
    ]
    precision = [p for p, _ in scored if p is not None]
    recall = [x for _, x in scored if x is not None]
    return {
        # As `rag eval` scores them, over all citations.
        "citation_precision": round(sum(precision) / len(precision), 4) if precision else None,
        "citation_recall": round(sum(recall) / len(recall), 4) if recall else None,
        "support_citations": len(support),
        "support_citation_precision": _share(support),
        "conflict_citations": len(conflict),
        "conflict_citation_precision": _share(conflict),
        "citation_precision_without_conflict_citations": round(sum(without) / len(without), 4)
        if without
        else None,
    }


def answers(args: argparse.Namespace) -> int:
    path = Path(args.answers)
    if path.is_dir():
        path = path / "answers.jsonl"
    if not path.exists():
        print(f"no such file: {path}; run `rag eval --json --out DIR` first")
        return 1
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    replayed = None
    if rows and "corroboration" not in rows[0]:
        print("answers.jsonl has no corroboration keys: replaying retrieval for each item")
        replayed = rows
        rows = _replay(rows, Path(args.corpus) if args.corpus else None)
    summary = {"items": len(rows)} | corroboration_summary(rows)
    if args.gold:
        if replayed is not None:  # the citations as they were, for comparison
            before = added_citations(replayed, Path(args.gold))
            summary |= {f"before_{k}": before[k] for k in ("citation_precision", "citation_recall")}
        summary |= added_citations(rows, Path(args.gold))
    with_conflict = [r for r in rows if not r.get("refused") and r.get("conflicts")]
    print(json.dumps(summary, indent=2))
    if args.sample_out:
        # Conflicts to judge by hand: each with the answer it disagrees with and the gold.
        pool = [(r, c) for r in with_conflict for c in r["conflicts"]]
        random.Random(0).shuffle(pool)
        with open(args.sample_out, "w", encoding="utf-8") as fh:
            for r, c in pool[: args.sample]:
                cited = {x["n"]: x for x in r.get("citations") or []}
                fh.write(
                    json.dumps(
                        {
                            "id": r["id"],
                            "question": r["question"],
                            "short_answer": r["short_answer"],
                            # The two sentences to compare (eval rows written by `rag eval`).
                            "answer_cited": cited.get(1, {}).get("text"),
                            "conflict": c,
                            "conflict_cited": cited.get(c["n"], {}).get("text"),
                            "gold": r["gold"],
                            "real_disagreement": None,  # to fill in by hand
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        print("sample to judge:", args.sample_out)
    print("report:", report_path("corroboration-answers", {"answers": str(path), **summary}))
    return 0


def gcs(args: argparse.Namespace) -> int:
    """Without the engine: each question's quiz answer, at its first place in an evidence
    article, corroborated over all the question's evidence articles (whole texts as chunks).
    How often 2+ sources, how many conflicts, and a sample of conflicts to judge by hand."""
    from llama_index.core.schema import NodeWithScore, TextNode

    from rag.corroborate import corroborate

    if not (REALTIMEQA / f"gcs{args.year}").exists():
        print(f"skipped: {REALTIMEQA}/gcs{args.year} is absent")
        return 0
    docs, qa = _load(args.year)
    found, sampled = [], []
    # Questions asked in a window of dates (YYYY-MM-DD, both ends kept), as a slice.
    qa = [q for q in qa if args.since <= q.get("question_date", "") <= args.until]
    for q in qa[: args.limit or None]:
        gold = q["answers"][0]
        evidence = [docs[d] for d in q["evidence_doc_ids"] if d in docs]
        chunks = [
            NodeWithScore(
                node=TextNode(
                    text=d["text"],
                    start_char_idx=0,
                    end_char_idx=len(d["text"]),
                    metadata={k: d.get(k, "") for k in ("title", "source", "url", "date")}
                    | {"doc_id": d["id"]},
                ),
                score=1.0,
            )
            for d in evidence
        ]
        # At word edges: a quiz answer "3" is not the "3" of "350,000".
        hit = next((h for d in evidence for h in _hits(d, gold) if _whole(h)), None)
        if hit is None:
            continue
        text = docs[hit.doc]["text"]
        start = text.find(hit.sentence) + hit.span[0]
        value = text[start : start + len(gold)]
        kind = candidate_kind(value)
        wanted = question_kind(q["question"])
        kind = (wanted if wanted in NAME_KINDS else "name") if kind == "name" else kind
        short = ShortAnswer(value, 1, hit.doc, start, start + len(value), kind, 0.0, "gold")
        res = corroborate(short, chunks[:1], chunks)
        if res is None:
            continue
        found.append(res)
        for c in res.conflicts:
            sampled.append(
                {
                    "question_id": q["id"],
                    "answer": value,
                    "answer_sentence": hit.sentence,
                    "conflict": c.text,
                    "conflict_sentence": c.where.sentence if c.where else "",
                    "real_disagreement": None,  # to fill in by hand
                }
            )
    summary = {
        "year": args.year,
        "asked": [args.since, args.until],
        "questions": len(found),
        "two_plus_sources": _share([r.corroboration.sources >= 2 for r in found]),
        "with_conflicts": _share([bool(r.conflicts) for r in found]),
        "conflicts": len(sampled),
    }
    print(json.dumps(summary, indent=2))
    random.Random(0).shuffle(sampled)
    if args.sample_out:  # read at run time from third-party data: kept outside the repository
        with open(args.sample_out, "w", encoding="utf-8") as fh:
            for x in sampled[: args.sample]:
                fh.write(json.dumps(x, ensure_ascii=False) + "\n")
    print("report:", report_path("corroboration-gcs", summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("fit", help="fit the thresholds on RealTime QA 2023, check on 2024")
    a = sub.add_parser("answers", help="2+ sources and conflicts in an eval's answers.jsonl")
    a.add_argument("answers", help="answers.jsonl, or the eval's --out folder")
    a.add_argument("--corpus", help="the eval's corpus (to find its store when replaying)")
    a.add_argument("--sample", type=int, default=30)
    a.add_argument("--sample-out", help="write a random sample of conflicts to judge by hand")
    a.add_argument("--gold", help="the eval's gold file: precision of the added citations")
    g = sub.add_parser("gcs", help="the quiz answers of a RealTime QA year, without the engine")
    g.add_argument("--year", default="2024")
    g.add_argument("--limit", type=int, default=0)
    g.add_argument("--since", default="", help="only questions asked on or after this date")
    g.add_argument("--until", default="9999", help="only questions asked on or before it")
    g.add_argument("--sample", type=int, default=30)
    g.add_argument("--sample-out", help="write a sample of conflicts (outside the repository)")
    args = ap.parse_args(argv)
    return {"fit": fit, "answers": answers, "gcs": gcs}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
