"""The planted-sentence detector: fit it, calibrate it, measure it on what it never saw.

    python -m bench.injection_detector --fit   # fit and calibrate rag/assets/injection_detector.npz
    python -m bench.injection_detector         # measure: unseen plantings, news false flags

Three disjoint sets of real news sentences, read at run time from the RealTime QA folders beside
the checkout (never copied into the repository):
- fit: sentences of 2023 search results (gcs2023/corpus.jsonl) and the bundled corpus/, as
  negatives, against the plantings and hard ordinary sentences of tests/data/plantings/;
- calibration: sentences of 2024 search results (gcs2024/corpus.jsonl): the threshold is the
  lowest score at which patterns or model together flag at most CALIBRATION_RATE of them;
- measurement: sentences of the 2022 corpus (realtimeqa/corpus.jsonl), never used to fit or
  calibrate, and tests/data/plantings_unseen.jsonl, written by someone who never saw the
  detector.
Recall on the training plantings is estimated by 5-fold cross-validation, each fold's
threshold calibrated as the final one is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REALTIMEQA, ROOT, report_path, table
from rag.clean import clean_text
from rag.confusables import fold
from rag.injection import pattern_signals, planted_flags, planted_spans, planted_title
from rag.injection_model import (
    MODEL_PATH,
    Detector,
    embed,
    features,
    fit_logistic,
)
from rag.text import sentence_spans

PLANTINGS = ROOT / "tests" / "data" / "plantings"
UNSEEN = ROOT / "tests" / "data" / "plantings_unseen.jsonl"
CACHE = Path("/tmp/newsrag-injection-cache")  # embeddings of third-party sentences: never in git
FIT_SENTENCES = 40_000
CALIBRATION_SENTENCES = 40_000
# Combined false flags allowed on the calibration year: half the target of 1 per 10,000, so
# that another year's news stays under the target.
CALIBRATION_RATE = 0.7e-4
L2 = 1.0
# Share of the fitting weight of the hard ordinary sentences (news gets 0.5 minus it): more
# spares news about AI, less catches more plantings (0.25: 0 of them flagged in-sample but
# cross-validated recall 0.84; about 0.01, their share by count: 12 flagged, recall 0.92).
ORDINARY_SHARE = 0.08


def news_sentences(path: Path, limit: int | None, seed: int = 0) -> list[str]:
    """Distinct sentences of a JSONL corpus's cleaned articles (a seeded sample of `limit`),
    cached outside the repository."""
    key = hashlib.sha256(f"{path}:{path.stat().st_size}:{limit}:{seed}".encode()).hexdigest()
    cached = CACHE / f"sentences-{key[:16]}.json"
    if cached.exists():
        return json.loads(cached.read_text(encoding="utf-8"))
    out: dict[str, None] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            text = clean_text(json.loads(line).get("text", ""))
            for s, e in sentence_spans(text):
                sentence = " ".join(text[s:e].split())
                if len(sentence) >= 3:
                    out[sentence] = None
    sentences = list(out)
    if limit and len(sentences) > limit:
        sentences = random.Random(seed).sample(sentences, limit)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(sentences), encoding="utf-8")
    return sentences


def bundled_sentences() -> list[str]:
    from rag.articles import read_sources

    out: dict[str, None] = {}
    for a in read_sources([ROOT / "corpus"], max_bytes=10_000_000):
        text = clean_text(getattr(a, "text", ""))
        for s, e in sentence_spans(text):
            out[" ".join(text[s:e].split())] = None
    return list(out)


def training_sets() -> tuple[list[str], list[str]]:
    """(plantings, hard ordinary sentences) written for this project."""
    cases = json.loads((PLANTINGS / "cases.json").read_text(encoding="utf-8"))
    own = json.loads((PLANTINGS / "detector_training.json").read_text(encoding="utf-8"))
    planted = []
    for case in cases["plantings"]:
        if case["where"] == "title":
            planted.append(case["title"])
        elif case["where"] == "split":
            planted.append(case["planted"][0])  # the frame; the claim it frames is plain prose
        else:
            planted += case["planted"]
    planted += cases["planted_sentences"] + own["planted"]
    ordinary = [c["sentence"] for c in cases["ordinary"]] + cases["mentions"] + own["ordinary"]
    return planted, ordinary


def vectors(name: str, sentences: list[str]) -> np.ndarray:
    """Embeddings of folded sentences, cached outside the repository by content."""
    folded = [fold(s) for s in sentences]
    key = hashlib.sha256("\n".join(folded).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    t = time.perf_counter()
    out = np.vstack([embed(folded[i : i + 512]) for i in range(0, len(folded), 512)])
    print(f"  embedded {len(folded)} {name} sentences in {time.perf_counter() - t:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def design(name: str, sentences: list[str]) -> np.ndarray:
    folded = [fold(s) for s in sentences]
    return features(folded, vectors(name, sentences), pattern_signals)


def by_pattern(sentences: list[str]) -> np.ndarray:
    return np.array([any(pattern_signals(fold(s))) for s in sentences])


def calibrate(scores: np.ndarray, patterns: np.ndarray, rate: float) -> float:
    """The lowest threshold at which patterns or model flag at most `rate` of the sentences."""
    allowed = int(rate * len(scores)) - int(patterns.sum())
    free = np.sort(scores[~patterns])[::-1]
    if allowed < 0:
        print(f"  the patterns alone flag {int(patterns.sum())} calibration sentences")
        allowed = 0
    # Just above the (allowed+1)-th highest score of the sentences the patterns let through.
    return float(np.nextafter(np.float32(free[allowed]), np.float32(1.0)))


def fit(args: argparse.Namespace) -> None:
    planted, ordinary = training_sets()
    print(f"plantings {len(planted)}, hard ordinary {len(ordinary)}")
    news_fit = news_sentences(REALTIMEQA / "gcs2023" / "corpus.jsonl", args.fit_sentences, 1)
    news_fit += bundled_sentences()
    news_cal = news_sentences(REALTIMEQA / "gcs2024" / "corpus.jsonl", args.cal_sentences, 2)
    print(f"news sentences: fit {len(news_fit)}, calibration {len(news_cal)}")
    x_pos = design("planted", planted)
    x_ord = design("ordinary", ordinary)
    x_news = design("news-fit", news_fit)
    x_cal = design("news-cal", news_cal)
    cal_patterns = by_pattern(news_cal)

    def fit_on(pos: np.ndarray) -> Detector:
        x = np.vstack([pos, x_ord, x_news])
        y = np.r_[np.ones(len(pos)), np.zeros(len(x_ord) + len(x_news))]
        # Plantings half the weight, hard ordinary sentences ORDINARY_SHARE, news the rest.
        share = ORDINARY_SHARE
        groups = [(len(pos), 0.5), (len(x_ord), share), (len(x_news), 0.5 - share)]
        gw = np.concatenate([np.full(n, share / n) for n, share in groups])
        w, b = fit_logistic(x, y, gw, l2=args.l2)
        model = Detector(w, b, 0.5)
        model.threshold = calibrate(model.scores(x_cal), cal_patterns, CALIBRATION_RATE)
        return model

    # Cross-validated recall: each fold's plantings are scored by a model that never saw them.
    folds = np.arange(len(planted)) % 5
    np.random.default_rng(0).shuffle(folds)
    caught = np.zeros(len(planted), dtype=bool)
    pos_patterns = by_pattern(planted)
    for k in range(5):
        model = fit_on(x_pos[folds != k])
        held = folds == k
        caught[held] = (model.scores(x_pos[held]) >= model.threshold) | pos_patterns[held]
    missed = [p for p, c in zip(planted, caught, strict=True) if not c]
    print(f"cross-validated recall on the training plantings: {caught.mean():.3f}")
    for m in missed:
        print(f"  missed: {m}")
    model = fit_on(x_pos)
    cal_flags = (model.scores(x_cal) >= model.threshold) | cal_patterns
    ord_flags = (model.scores(x_ord) >= model.threshold) | by_pattern(ordinary)
    print(
        f"threshold {model.threshold:.4f}; calibration news flagged {int(cal_flags.sum())}"
        f"/{len(news_cal)}; hard ordinary flagged (training) {int(ord_flags.sum())}"
        f"/{len(ordinary)}"
    )
    for s in np.array(ordinary)[ord_flags]:
        print(f"  ordinary flag: {s[:160]}")
    for s in np.array(news_cal)[cal_flags]:
        print(f"  calibration flag: {s[:160]}")
    if not args.dry_run:
        model.save(MODEL_PATH)
        print(f"wrote {MODEL_PATH.relative_to(ROOT)}")


def unseen_items() -> list[dict]:
    return [json.loads(x) for x in UNSEEN.read_text(encoding="utf-8").splitlines() if x.strip()]


def measure(args: argparse.Namespace) -> dict:
    """Recall on the unseen plantings, false flags on its ordinary items and on 2022 news."""
    from rag.injection_model import detector

    result: dict = {"threshold": detector().threshold}
    rows = []
    if UNSEEN.exists():
        res = unseen_results(unseen_items())
        result["unseen"] = res
        rows.append(["unseen plantings caught", f"{res['caught']}/{res['plantings']}"])
        rows.append(["unseen recall", res["recall"]])
        rows.append(["unseen ordinary flagged", f"{res['ordinary_flagged']}/{res['ordinary']}"])
    else:
        print(f"{UNSEEN.relative_to(ROOT)} is absent: unseen recall not measured")
    corpus = REALTIMEQA / "corpus.jsonl"
    if corpus.exists():
        sentences = news_sentences(corpus, args.news_sentences, 3)
        t = time.perf_counter()
        flags = planted_flags(sentences)
        elapsed = time.perf_counter() - t
        n = int(sum(flags))
        result["news"] = {
            "sentences": len(sentences),
            "flagged": n,
            "per_10k": round(n / len(sentences) * 10_000, 3),
            "flagged_sentences": [s for s, f in zip(sentences, flags, strict=True) if f],
            "ms_per_sentence": round(elapsed / len(sentences) * 1000, 3),
        }
        rows.append(["news sentences (RTQA 2022)", len(sentences)])
        rows.append(["news flagged", n])
        rows.append(["news false flags per 10,000", result["news"]["per_10k"]])
        rows.append(["ms per sentence (uncached)", result["news"]["ms_per_sentence"]])
    else:
        print(f"{corpus} is absent: news false flags not measured")
    print(table(["measure", "value"], rows))
    if not args.dry_run:
        print(f"report: {report_path('injection_detector', result)}")
    return result


def unseen_results(items: list[dict]) -> dict:
    """A planted item is caught when every planted substring of its article is inside flagged
    spans (the article's title flagged drops it whole); an ordinary item is flagged when any
    span of its article, or its title, is."""
    plantings = [i for i in items if i["kind"] == "planted"]
    ordinary = [i for i in items if i["kind"] == "ordinary"]
    missed = [i["id"] for i in plantings if not item_caught(i)]
    flagged = [
        i["id"]
        for i in ordinary
        if planted_spans(i["article"]["text"]) or planted_title(i["article"].get("title", ""))
    ]
    n = len(plantings)
    return {
        "plantings": n,
        "caught": n - len(missed),
        "recall": round((n - len(missed)) / n, 4) if n else None,
        "missed": missed,
        "ordinary": len(ordinary),
        "ordinary_flagged": len(flagged),
        "flagged": flagged,
    }


def item_caught(item: dict) -> bool:
    article = item["article"]
    if planted_title(article.get("title", "")):
        return True
    text = article["text"]
    spans = planted_spans(text)
    for piece in item["planted"]:
        start = text.find(piece)
        if start < 0:
            raise ValueError(f"{item['id']}: a planted string is not in its article")
        if not all(
            any(a <= i < b for a, b in spans)
            for i in range(start, start + len(piece))
            if not text[i].isspace()
        ):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="fit and calibrate the detector")
    ap.add_argument("--dry-run", action="store_true", help="write no model and no report")
    ap.add_argument("--fit-sentences", type=int, default=FIT_SENTENCES)
    ap.add_argument("--cal-sentences", type=int, default=CALIBRATION_SENTENCES)
    ap.add_argument("--l2", type=float, default=L2)
    ap.add_argument(
        "--news-sentences", type=int, default=10_000, help="2022 news sentences to measure on"
    )
    args = ap.parse_args(argv)
    if not (REALTIMEQA / "gcs2023" / "corpus.jsonl").exists() and args.fit:
        print(f"the news corpora are not at {REALTIMEQA}: cannot fit", file=sys.stderr)
        return 1
    if args.fit:
        fit(args)
    else:
        measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
