"""The eval runner: gold Q&A in, retrieval, answer, citation, refusal and latency metrics out.

Gold files are JSONL, one item a line: `question`, `answers` (acceptable answers; empty when the
articles do not hold one), `evidence_doc_ids`, and optionally `id`, `answerable`, `type`,
`evidence_quotes`. RealTime QA's `qa_dev.jsonl` reads as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rag.config import Settings
from rag.corroborate import summary as corroboration_summary
from rag.corroborate import without_differences
from rag.metrics import (
    citation_scores,
    contains,
    exact_match,
    f1,
    hit_and_rr,
    percentile,
    precision_recall,
)
from rag.text import strip_markers

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLD = ROOT / "evals" / "gold.jsonl"
DEFAULT_CORPUS = ROOT / "corpus"


@dataclass
class GoldItem:
    id: str
    question: str
    answers: list[str]
    evidence: list[str]
    answerable: bool
    type: str = ""
    question_date: str = ""  # YYYY-MM-DD: the question is asked as of this day


def load_gold(path: Path) -> list[GoldItem]:
    items = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                answers = [str(a) for a in row.get("answers", [])]
                items.append(
                    GoldItem(
                        id=str(row.get("id", n)),
                        question=row["question"],
                        answers=answers,
                        evidence=list(row.get("evidence_doc_ids", [])),
                        answerable=bool(row.get("answerable", bool(answers))),
                        type=row.get("type", ""),
                        question_date=str(row.get("question_date") or ""),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a gold item ({e})") from None
    if not items:
        raise ValueError(f"{path} holds no gold items")
    return items


def eval_settings(base: Settings, corpus: Path) -> Settings:
    """Evals get their own store per corpus, never mixed with the user's articles."""
    key = hashlib.sha1(str(corpus.resolve()).encode()).hexdigest()[:10]
    data_dir = base.data_dir / "evals" / f"{corpus.stem}-{key}"
    # Eval questions are not the user's: they stay out of the answer log.
    return base.model_copy(update={"data_dir": data_dir, "llm_temperature": 0.0, "log": False})


def score_item(item: GoldItem, answer: dict, k: int) -> dict:
    """Exact match and F1 are scored on the short answer (the whole answer when there is
    none); containment on the whole answer, short answer and quoted support together."""
    # Another source's value shown under "Sources differ" is not the answer given.
    text = strip_markers(without_differences(answer["answer"]))
    short = (answer.get("short_answer") or {}).get("text") or text
    refused = bool(answer["refused"])
    row = {
        "id": item.id,
        "type": item.type,
        "question": item.question,
        "gold": item.answers,
        "answerable": item.answerable,
        "answer": answer["answer"],
        "short_answer": None if refused else (answer.get("short_answer") or {}).get("text"),
        # Where it was copied from, so a check can find it in the article.
        "short_answer_at": None
        if refused or not answer.get("short_answer")
        else {k: answer["short_answer"][k] for k in ("doc_id", "start", "end")},
        "refused": refused,
        "refusal_reason": answer.get("refusal_reason"),
        "as_of": answer.get("as_of"),
        "signals": answer.get("signals"),
        "seconds": answer["timings"].get("total"),
        "first_token": answer["timings"].get("first_token"),
        "citations": [
            {k2: c[k2] for k2 in ("n", "doc_id", "start", "end", "text")}
            for c in answer["citations"]
        ],
        "corroboration": None if refused else answer.get("corroboration"),
        "conflicts": [] if refused else answer.get("conflicts") or [],
    }
    if item.evidence:
        row["hit"], row["rr"] = hit_and_rr(answer.get("retrieved", []), item.evidence, k)
    if item.answerable:
        row["em"] = exact_match("" if refused else short, item.answers)
        row["f1"] = f1("" if refused else short, item.answers)
        row["contains"] = contains("" if refused else text, item.answers)
        if not refused:
            row["cite_precision"], row["cite_recall"] = citation_scores(
                answer["citations"], item.evidence, item.answers
            )
    return row


def summarize(rows: list[dict]) -> dict:
    def mean(key: str, subset: list[dict] | None = None) -> float | None:
        vals = [r[key] for r in (subset or rows) if r.get(key) is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    answerable = [r for r in rows if r["answerable"]]
    ref_p, ref_r = precision_recall(
        [r["refused"] for r in rows], [not r["answerable"] for r in rows]
    )
    secs = [r["seconds"] for r in rows if r["seconds"] is not None]
    ttft = [r["first_token"] for r in rows if r.get("first_token") is not None]
    return {
        "items": len(rows),
        "answerable": len(answerable),
        "retrieval": {"hit_at_k": mean("hit"), "mrr": mean("rr")},
        "answer": {
            "exact_match": mean("em"),
            "f1": mean("f1"),
            "contains": mean("contains"),
        },
        "citations": {"precision": mean("cite_precision"), "recall": mean("cite_recall")},
        "refusal": {
            "precision": None if ref_p is None else round(ref_p, 4),
            "recall": None if ref_r is None else round(ref_r, 4),
            "false_refusals": sum(r["refused"] for r in answerable),
        },
        # Answers with 2+ sources; among wrong short answers, how often a conflict holds gold.
        "corroboration": corroboration_summary(rows),
        "latency_s": {
            "p50": _round(percentile(secs, 50)),
            "p95": _round(percentile(secs, 95)),
            "first_token_p50": _round(percentile(ttft, 50)),
            "first_token_p95": _round(percentile(ttft, 95)),
        },
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def run_eval(
    settings: Settings,
    gold: Path = DEFAULT_GOLD,
    corpus: Path = DEFAULT_CORPUS,
    top_k: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    llm=None,
) -> dict:
    from tqdm import tqdm

    from rag.engine import Engine
    from rag.ingest import ingest

    random.seed(settings.seed)
    items = load_gold(gold)[: limit or None]
    es = eval_settings(settings, corpus)
    report = ingest([corpus], es, progress=progress)
    if report.errors:
        log.warning("%d corpus inputs failed to ingest", len(report.errors))
    engine = Engine.from_settings(es, llm=llm)
    k = top_k or es.top_k
    judge = make_judge(es)
    rows = []
    for item in tqdm(items, desc="Evaluating", unit="q", disable=not progress):
        try:
            ans = engine.ask(item.question, top_k=k, as_of=item.question_date or None).to_dict()
        except Exception as e:  # one failing item must not end the run
            log.error("item %s failed: %s", item.id, e)
            ans = {"answer": "", "refused": True, "citations": [], "timings": {}, "error": str(e)}
        row = score_item(item, ans, k) | ({"error": ans["error"]} if "error" in ans else {})
        if judge is not None:
            row.update(judge_item(judge, item, ans))
        rows.append(row)
    judged = (
        judge_summary(rows)
        if judge is not None
        else {"status": "not run", "reason": "no judge model configured (RAG_JUDGE_BASE_URL)"}
    )
    return {
        "created": datetime.now().isoformat(timespec="seconds"),
        "gold": str(gold),
        "corpus": str(corpus),
        "top_k": k,
        "llm": f"{es.llm_backend}:{es.llm_model or es.llm_model_path or 'bundled SmolLM2-135M'}",
        "embed": es.embed_backend,
        "summary": summarize(rows),
        "judge": judged,
        "rows": rows,
    }


# LLM judge ------------------------------------------------------------------------------------
def make_judge(settings: Settings):
    """LlamaIndex's correctness and faithfulness evaluators on an OpenAI-compatible judge."""
    if not settings.judge_base_url:
        return None
    from llama_index.core.evaluation import CorrectnessEvaluator, FaithfulnessEvaluator

    from rag.llm import make_llm

    llm = make_llm(
        settings.model_copy(
            update={
                "llm_backend": "openai-compatible",
                "llm_base_url": settings.judge_base_url,
                "llm_model": settings.judge_model or "judge",
                "llm_api_key": settings.judge_api_key,
                "llm_max_tokens": 256,
                "llm_temperature": 0.0,
            }
        )
    )
    return CorrectnessEvaluator(llm=llm), FaithfulnessEvaluator(llm=llm)


def judge_item(judge, item: GoldItem, answer: dict) -> dict:
    """Scores from the judge; None where it gave no usable verdict (never a made-up score)."""
    correctness, faithfulness = judge
    out: dict = {"judge_correctness": None, "judge_faithful": None}
    if answer.get("refused") or not answer.get("answer"):
        return out
    contexts = [c["text"] for c in answer["citations"]]
    reference = "; ".join(item.answers) if item.answers else None
    try:
        r = correctness.evaluate(
            query=item.question, response=strip_markers(answer["answer"]), reference=reference
        )
        out["judge_correctness"] = None if r.score is None else float(r.score) / 5.0
    except Exception as e:  # an unparseable verdict is reported as missing
        log.warning("judge correctness failed on %s: %s", item.id, e)
    try:
        r = faithfulness.evaluate(
            query=item.question, response=strip_markers(answer["answer"]), contexts=contexts
        )
        out["judge_faithful"] = None if r.passing is None else float(r.passing)
    except Exception as e:
        log.warning("judge faithfulness failed on %s: %s", item.id, e)
    return out


def judge_summary(rows: list[dict]) -> dict:
    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    judged = sum(r.get("judge_correctness") is not None for r in rows)
    return {
        "status": "ran",
        "correctness": mean("judge_correctness"),
        "faithfulness": mean("judge_faithful"),
        "items_judged": judged,
    }


# Reports -------------------------------------------------------------------------------------
def flat_metrics(result: dict) -> dict[str, float | None]:
    """`group.metric` -> value, for tables, deltas and thresholds."""
    out: dict[str, float | None] = {}
    for group, values in result["summary"].items():
        if isinstance(values, dict):
            for name, v in values.items():
                out[f"{group}.{name}"] = v
    return out


def write_report(result: dict, out_dir: Path) -> Path:
    folder = Path(out_dir) / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "report.json").write_text(
        json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2, ensure_ascii=False)
    )
    with open(folder / "answers.jsonl", "w", encoding="utf-8") as fh:
        for row in result["rows"]:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (folder / "summary.md").write_text(markdown_table(result) + "\n")
    _chart(result, folder / "chart.png")
    return folder


def load_report(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"no eval report at {path}")
    return json.loads(path.read_text())


def deltas(new: dict, old: dict) -> dict[str, float | None]:
    a, b = flat_metrics(new), flat_metrics(old)
    out: dict[str, float | None] = {}
    for k, x in a.items():
        y = b.get(k)
        out[k] = None if x is None or y is None else round(x - y, 4)
    return out


def markdown_table(result: dict, old: dict | None = None) -> str:
    metrics = flat_metrics(result)
    d = deltas(result, old) if old else {}
    head = "| metric | value |" + (" change |" if old else "")
    rule = "| --- | --- |" + (" --- |" if old else "")
    lines = [
        f"Eval of {result['summary']['items']} questions ({result['summary']['answerable']} "
        f"answerable), top-k {result['top_k']}, LLM {result['llm']}",
        "",
        head,
        rule,
    ]
    for k, v in metrics.items():
        cell = "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
        row = f"| {k} | {cell} |"
        if old:
            dv = d.get(k)
            row += " n/a |" if dv is None else f" {dv:+.3f} |"
        lines.append(row)
    judge = result.get("judge", {})
    pad = " |" if old else ""
    if judge.get("status") != "ran":
        lines.append(
            f"| judge.correctness, judge.faithfulness | not run ({judge.get('reason')}) |" + pad
        )
    else:
        for key in ("correctness", "faithfulness"):
            v = judge.get(key)
            cell = "n/a (no usable verdict)" if v is None else f"{v:.3f}"
            lines.append(f"| judge.{key} | {cell} |" + pad)
    return "\n".join(lines)


def _chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = {
        k: v
        for k, v in flat_metrics(result).items()
        if isinstance(v, float) and not k.startswith("latency")
    }
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(metrics) + 1))
    names = list(metrics)
    ax.barh(names, [metrics[n] for n in names], color="#4a7bd0")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    for i, n in enumerate(names):
        ax.text(min(metrics[n] + 0.01, 0.93), i, f"{metrics[n]:.2f}", va="center")
    ax.set_title(f"{Path(result['gold']).name} — {result['summary']['items']} questions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def check_thresholds(result: dict, path: Path) -> list[str]:
    """Metrics below their minimum (or latency above its maximum) in a TOML file:
    [min] "answer.contains" = 0.7 ... [max] "latency_s.p50" = 3.0"""
    import tomllib

    conf = tomllib.loads(Path(path).read_text())
    metrics = flat_metrics(result)
    failures = []
    for key, floor in conf.get("min", {}).items():
        v = metrics.get(key)
        if v is None or v < floor:
            failures.append(f"{key} = {v} < {floor}")
    for key, ceiling in conf.get("max", {}).items():
        v = metrics.get(key)
        if v is None or v > ceiling:
            failures.append(f"{key} = {v} > {ceiling}")
    return failures
