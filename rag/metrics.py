"""Answer, retrieval, citation and refusal metrics (SQuAD-style answer normalisation)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("“”‘’—–…")


def normalize(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (SQuAD's rules, plus
    typographic quotes and dashes, which news text is full of)."""
    text = "".join(" " if ch in _PUNCT else ch for ch in text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    p = normalize(prediction)
    return float(any(p == normalize(g) for g in golds))


def f1(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize(prediction).split()
    best = 0.0
    for g in golds:
        gold = normalize(g).split()
        common = Counter(pred) & Counter(gold)
        same = sum(common.values())
        if not same:
            continue
        precision, recall = same / len(pred), same / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains(prediction: str, golds: Sequence[str]) -> float:
    p = f" {normalize(prediction)} "
    return float(any(normalize(g) and f" {normalize(g)} " in p for g in golds))


def hit_and_rr(
    ranked_doc_ids: Sequence[str], evidence: Sequence[str], k: int
) -> tuple[float, float]:
    """hit@k and reciprocal rank of the first evidence article among ranked (deduplicated) ids."""
    seen: list[str] = []
    for d in ranked_doc_ids:
        if d not in seen:
            seen.append(d)
    for rank, d in enumerate(seen, start=1):
        if d in evidence:
            return float(rank <= k), 1.0 / rank
    return 0.0, 0.0


def citation_scores(
    citations: Sequence[dict], evidence: Sequence[str], golds: Sequence[str]
) -> tuple[float | None, float | None]:
    """Precision: cited passages from an evidence article or holding a gold answer.
    Recall: evidence articles cited at least once."""
    if not citations:
        return None, (0.0 if evidence else None)
    good = [c for c in citations if c["doc_id"] in evidence or contains(c["text"], golds)]
    precision = len(good) / len(citations)
    cited = {c["doc_id"] for c in citations}
    recall = len(cited & set(evidence)) / len(evidence) if evidence else None
    return precision, recall


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def precision_recall(
    predicted: Sequence[bool], actual: Sequence[bool]
) -> tuple[float | None, float | None]:
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    n_pred, n_act = sum(predicted), sum(actual)
    return (tp / n_pred if n_pred else None), (tp / n_act if n_act else None)
