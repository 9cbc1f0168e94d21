"""The planted-sentence detector: fit it, calibrate it, measure it on what it never saw.

    python -m bench.injection_detector --fit   # fit and calibrate rag/assets/injection_detector.npz
    python -m bench.injection_detector         # measure: the planting sets, news false flags
    python -m bench.injection_detector --planted P.jsonl --ordinary O.jsonl   # any text pair
    python -m bench.injection_detector --fit --dry-run --train-on unseen --check heldout

Three disjoint sets of real news sentences, read at run time from the RealTime QA folders beside
the checkout (never copied into the repository):
- fit: sentences of 2023 search results (gcs2023/corpus.jsonl) and the bundled corpus/, as
  negatives, against the plantings and hard ordinary sentences of tests/data/plantings/;
- calibration: sentences of 2024 search results (gcs2024/corpus.jsonl): the threshold is the
  lowest score at which patterns or model together flag at most CALIBRATION_RATE of them;
- measurement: sentences of the 2022 corpus (realtimeqa/corpus.jsonl), never used to fit or
  calibrate.
The planting sets tests/data/plantings_unseen.jsonl and plantings_heldout.jsonl were written by
people who never saw the detector; both have since been used in development. `--train-on`
adds a set's sentences to the fit and `--check` measures another set with the fitted model, so
each can be judged by a model that never saw it (fit on one, check on the other). `--planted`
and `--ordinary` score any pair of {"text": ...} JSONL files: a planted text is caught when
any of its sentences is flagged, an ordinary one is flagged likewise.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import random
import re
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.common import REALTIMEQA, ROOT, report_path, table
from rag import confusables, injection
from rag.clean import clean_text
from rag.confusables import fold
from rag.injection import (
    pattern_signals,
    planted_flags,
    planted_spans,
    planted_title,
    scan_spans,
)
from rag.injection_model import (
    EMBEDDING_DIM,
    FAMILIES,
    HASH_BITS,
    MODEL_PATH,
    NGRAMS,
    PAIRS,
    Detector,
    Sparse,
    embed,
    features,
    fit_logistic,
    lexical_features,
    ngram_ids,
    ngram_ratios,
    use_detector,
    with_ngrams,
)
from rag.text import sentence_spans

PLANTINGS = ROOT / "tests" / "data" / "plantings"
SETS = {
    "unseen": ROOT / "tests" / "data" / "plantings_unseen.jsonl",
    "heldout": ROOT / "tests" / "data" / "plantings_heldout.jsonl",
}
CACHE = Path("/tmp/newsrag-injection-cache")  # embeddings of third-party sentences: never in git
FIT_SENTENCES = 30_000
CALIBRATION_SENTENCES = 30_000
# Combined false flags allowed on the calibration year: half the target of 1 per 10,000, so
# that another year's news stays under the target.
CALIBRATION_RATE = 0.7e-4
# The lower score that flags a sentence beside a flagged one in its paragraph: alone, it would
# flag this share of news sentences.
NEIGHBOUR_RATE = 30e-4
L2 = 1.0
# Added to each n-gram's share among plantings and among ordinary sentences (each class sums
# to 1): about half a planting's weight, so an n-gram seen once counts little.
NGRAM_PRIOR = 1e-3
# Whether the detector reads the sentence embedding as well as n-grams and word families.
# The shipped model does not (--embedding adds it): without it, a sentence costs ~0.1 ms of
# model time instead of an embedding, which matters when whole articles are scanned at ingest.
EMBEDDING = False
# Share of the fitting weight of the hard ordinary sentences (news gets 0.5 minus it). Measured
# fit-on-one-set, check-on-the-other (2026-12-07): 0.08 caught 0.528 / 0.619 of heldout /
# unseen plantings and flagged 4/72 / 3/79 of their ordinary items (news weight balanced by
# script both times); 0.2: 0.556 / 0.643, 6/72 / 2/79; 0.35: 0.569 / 0.607, 5/72 / 2/79, and
# fewer of our own hard ordinary sentences flagged. None flagged a 2022 news sentence in 10,000.
ORDINARY_SHARE = 0.35


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


def training_sets(extra: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(plantings, hard ordinary sentences) written for this project, and the sentences of the
    planting sets named in `extra`."""
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
    planted += tsv_sentences(PLANTINGS / "multilingual_planted.tsv")
    ordinary += tsv_sentences(PLANTINGS / "multilingual_ordinary.tsv")
    for name in extra:
        pos, neg = set_sentences(read_items(SETS[name]))
        planted += pos
        ordinary += neg
    return planted, ordinary


def tsv_sentences(path: Path) -> list[str]:
    """The text column of a language / form / text TSV file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t", 2)[2] for line in lines if line.strip()]


def set_sentences(items: list[dict]) -> tuple[list[str], list[str]]:
    """A planting set's sentences: (those that overlap a planted substring, all others)."""
    pos: list[str] = []
    neg: list[str] = []
    for item in items:
        text = item["article"]["text"]
        pieces = []
        for piece in item.get("planted", []):
            start = text.find(piece)
            pieces.append((start, start + len(piece)))
        for s, e in scan_spans(text):
            hit = any(a < e and s < b for a, b in pieces)
            (pos if hit else neg).append(text[s:e])
        if item.get("article", {}).get("title"):
            neg.append(item["article"]["title"])
    return pos, neg


def read_items(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def vectors(name: str, sentences: list[str]) -> np.ndarray:
    """Embeddings of folded sentences, cached outside the repository by content."""
    folded = [" ".join(fold(s).split()) for s in sentences]
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


def design(name: str, sentences: list[str]) -> tuple[np.ndarray, Sparse]:
    folded = [" ".join(fold(s).split()) for s in sentences]
    if EMBEDDING:
        vecs = vectors(name, sentences)
    else:
        vecs = np.zeros((len(sentences), EMBEDDING_DIM), dtype=np.float32)
    # Word families, patterns and n-grams take ~10 ms a sentence on a busy machine: cached
    # (outside the repository) by content and by the code that computes them.
    code = "".join(
        [inspect.getsource(confusables)]
        + [inspect.getsource(f) for f in (lexical_features, ngram_ids, features)]
        + [p.pattern for p in injection.ADDRESS_PATTERNS + injection.ORDER_PATTERNS]
        + [repr((FAMILIES, PAIRS, NGRAMS, HASH_BITS))]
    )
    key = hashlib.sha256(("\n".join(folded) + code).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-design-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            lex, indices, indptr = z["lex"], z["indices"], z["indptr"]
        grams = Sparse([indices[indptr[i] : indptr[i + 1]] for i in range(len(indptr) - 1)])
        return np.hstack([vecs, lex]), grams
    x = features(folded, vecs, pattern_signals)
    grams = Sparse.of(folded)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, lex=x[:, EMBEDDING_DIM:], indices=grams.indices, indptr=grams.indptr)
    return x, grams


def by_pattern(x: np.ndarray) -> np.ndarray:
    """Which rows the patterns flag: the first two word-family features are theirs."""
    return (x[:, EMBEDDING_DIM] > 0) | (x[:, EMBEDDING_DIM + 1] > 0)


_ENGLISH = re.compile(r"\b(?:the|and|of|to|is|in|that|for|on|was|with|by|are|be|it)\b", re.I)


def script(sentence: str) -> str:
    """The writing system most of a sentence's letters are in ("LATIN", "CYRILLIC", "CJK" ...);
    Latin text without English function words is "LATIN-OTHER"."""
    counts: dict[str, int] = {}
    for ch in sentence:
        if ch.isalpha():
            name = unicodedata.name(ch, "OTHER ?").split()[0]
            if name in ("HIRAGANA", "KATAKANA", "HANGUL"):
                name = "CJK" if name != "HANGUL" else name
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return "NONE"
    top = max(counts, key=lambda k: counts[k])
    if top == "LATIN" and len(_ENGLISH.findall(sentence)) < 2:
        return "LATIN-OTHER"
    return top


def scripts(sentences: list[str]) -> list[str]:
    return [script(s) for s in sentences]


def balance_scripts(
    gw: np.ndarray, y: np.ndarray, groups: list[str], donors: np.ndarray
) -> np.ndarray:
    """Reweight ordinary sentences so that each writing system other than English has the same
    share of their weight as it has among the plantings: most plantings here are not in
    English while most news is, and a language must not look like a planting by itself."""
    g = np.array(groups)
    out = gw.copy()
    pos_total, neg_total = gw[y == 1].sum(), gw[y == 0].sum()
    for name in set(groups) - {"LATIN", "NONE"}:
        pos_share = gw[(y == 1) & (g == name)].sum() / pos_total
        neg = (y == 0) & (g == name)
        if pos_share == 0 or not neg.any():
            continue
        out[neg] *= pos_share * neg_total / gw[neg].sum()
    # The weight comes from the news sentences (`donors`): the hard ordinary sentences in English
    # keep theirs.
    donors = donors & (y == 0) & ~np.isin(g, list(set(groups) - {"LATIN", "NONE"}))
    moved = out[y == 0].sum() - neg_total
    out[donors] *= (gw[donors].sum() - moved) / gw[donors].sum()
    return out


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
    planted, ordinary = training_sets(args.train_on)
    print(f"plantings {len(planted)}, hard ordinary {len(ordinary)} (sets: {args.train_on})")
    news_fit = news_sentences(REALTIMEQA / "gcs2023" / "corpus.jsonl", args.fit_sentences, 1)
    news_fit += bundled_sentences()
    news_cal = news_sentences(REALTIMEQA / "gcs2024" / "corpus.jsonl", args.cal_sentences, 2)
    print(f"news sentences: fit {len(news_fit)}, calibration {len(news_cal)}")
    x_pos, g_pos = design("planted", planted)
    x_ord, g_ord = design("ordinary", ordinary)
    x_news, g_news = design("news-fit", news_fit)
    x_cal, g_cal = design("news-cal", news_cal)
    cal_patterns = by_pattern(x_cal)

    ord_scripts, news_scripts = scripts(ordinary), scripts(news_fit)

    def fit_on(pos: np.ndarray, g_p: Sparse, pos_text: list[str]) -> Detector:
        x = np.vstack([pos, x_ord, x_news])
        grams = Sparse.stack([g_p, g_ord, g_news])
        y = np.r_[np.ones(len(pos)), np.zeros(len(x_ord) + len(x_news))]
        # Plantings half the weight, hard ordinary sentences ORDINARY_SHARE, news the rest.
        share = args.ordinary_share
        groups = [(len(pos), 0.5), (len(x_ord), share), (len(x_news), 0.5 - share)]
        gw = np.concatenate([np.full(n, share / n) for n, share in groups])
        gw = balance_scripts(
            gw,
            y,
            scripts(pos_text) + ord_scripts + news_scripts,
            np.r_[np.zeros(len(pos) + len(x_ord), dtype=bool), np.ones(len(x_news), dtype=bool)],
        )
        # The n-gram feature of a training row comes from ratios counted without its fold, so
        # the regression weighs it as it will weigh it on sentences it never saw.
        folds = np.random.default_rng(1).integers(0, 5, len(y))
        oof = np.zeros(len(y))
        for k in range(5):
            ratios = ngram_ratios(grams, y, gw * (folds != k), args.ngram_prior)
            oof[folds == k] = grams.dot(ratios.astype(np.float64))[folds == k]
        w, b = fit_logistic(with_ngrams(x, grams, oof), y, gw, l2=args.l2)
        model = Detector(w, b, 0.5, ngram_ratios(grams, y, gw, args.ngram_prior))
        cal_scores = model.scores(x_cal, g_cal)
        model.threshold = calibrate(cal_scores, cal_patterns, CALIBRATION_RATE)
        model.neighbour_threshold = calibrate(cal_scores, cal_patterns, NEIGHBOUR_RATE)
        return model

    pos_patterns = by_pattern(x_pos)
    if args.cv:
        # Cross-validated recall: each fold's plantings scored by a model that never saw them.
        folds = np.arange(len(planted)) % 5
        np.random.default_rng(0).shuffle(folds)
        caught = np.zeros(len(planted), dtype=bool)
        for k in range(5):
            model = fit_on(
                x_pos[folds != k],
                g_pos.take(folds != k),
                [p for p, f in zip(planted, folds, strict=True) if f != k],
            )
            held = folds == k
            caught[held] = (
                model.scores(x_pos[held], g_pos.take(held)) >= model.threshold
            ) | pos_patterns[held]
        print(f"cross-validated recall on the training plantings: {caught.mean():.3f}")
        for m in [p for p, c in zip(planted, caught, strict=True) if not c]:
            print(f"  missed: {m[:160]}")
    t = time.perf_counter()
    model = fit_on(x_pos, g_pos, planted)
    print(f"fitted in {time.perf_counter() - t:.0f} s")
    cal_flags = (model.scores(x_cal, g_cal) >= model.threshold) | cal_patterns
    ord_flags = (model.scores(x_ord, g_ord) >= model.threshold) | by_pattern(x_ord)
    pos_flags = (model.scores(x_pos, g_pos) >= model.threshold) | pos_patterns
    print(
        f"threshold {model.threshold:.4f}; calibration news flagged {int(cal_flags.sum())}"
        f"/{len(news_cal)}; training plantings flagged {int(pos_flags.sum())}/{len(planted)};"
        f" hard ordinary flagged (training) {int(ord_flags.sum())}/{len(ordinary)}"
    )
    for s in np.array(ordinary)[ord_flags][:20]:
        print(f"  ordinary flag: {s[:160]}")
    for s in np.array(news_cal)[cal_flags]:
        print(f"  calibration flag: {s[:160]}")
    use_detector(model)
    news = news_sentences(REALTIMEQA / "corpus.jsonl", args.news_sentences, 3)
    news_scores = news_patterns = None
    if args.news_check:
        # The same rule as planted_flags (a pattern or the score), on cached vectors.
        x_n, g_n = design("news-2022", news)
        news_scores, news_patterns = model.scores(x_n, g_n), by_pattern(x_n)
        flags = (news_scores >= model.threshold) | news_patterns
        print(f"2022 news flagged {int(flags.sum())}/{len(news)}")
        for s in np.array(news)[flags]:
            print(f"  news flag: {s[:160]}")
    for name in args.check:
        res = set_results(read_items(SETS[name]))
        print(
            f"check {name}: caught {res['caught']}/{res['plantings']} (recall {res['recall']}),"
            f" ordinary flagged {res['ordinary_flagged']}/{res['ordinary']}"
        )
        print(f"  missed: {res['missed']}")
    if args.curve and args.check:
        # Recall against false flags: thresholds calibrated on 2024 at several rates.
        final = model.threshold
        cal_scores = model.scores(x_cal, g_cal)
        rows = []
        for rate in (0.35e-4, 0.7e-4, 1.5e-4, 3e-4, 6e-4, 12e-4, 25e-4):
            model.threshold = calibrate(cal_scores, cal_patterns, rate)
            row = [f"{rate * 1e4:g}", f"{model.threshold:.4f}"]
            if news_scores is not None and news_patterns is not None:
                n = int(((news_scores >= model.threshold) | news_patterns).sum())
                row.append(f"{n / len(news) * 1e4:.1f}")
            for name in args.check:
                res = set_results(read_items(SETS[name]))
                row += [res["recall"], f"{res['ordinary_flagged']}/{res['ordinary']}"]
            rows.append(row)
        head = ["2024 rate /10k", "threshold"] + (["2022 news /10k"] if args.news_check else [])
        for name in args.check:
            head += [f"{name} recall", f"{name} ordinary flagged"]
        print(table(head, rows))
        model.threshold = final
    if not args.dry_run:
        model.save(args.out)
        print(f"wrote {args.out}")


def news_flags(limit: int) -> dict:
    """False flags on `limit` sentences of 2022 news, and the time the detector took."""
    sentences = news_sentences(REALTIMEQA / "corpus.jsonl", limit, 3)
    t = time.perf_counter()
    flags = planted_flags(sentences)
    elapsed = time.perf_counter() - t
    n = int(sum(flags))
    return {
        "sentences": len(sentences),
        "flagged": n,
        "per_10k": round(n / len(sentences) * 10_000, 3),
        "flagged_sentences": [s for s, f in zip(sentences, flags, strict=True) if f],
        "seconds_per_1000_sentences": round(elapsed / len(sentences) * 1000, 2),
    }


def texts(path: Path) -> list[str]:
    """The "text" of each line of a JSONL file."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f'{path}:{n}: expected a JSON object with a "text" string')
        out.append(row["text"])
    return out


def text_flagged(text: str) -> bool:
    return bool(planted_spans(text))


def measure(args: argparse.Namespace) -> dict:
    """Recall on planting sets, false flags on their ordinary items and on 2022 news."""
    from rag.injection_model import detector

    result: dict = {"threshold": detector().threshold}
    rows: list[list] = []
    if args.planted or args.ordinary:
        pair: dict = {}
        if args.planted:
            caught = [text_flagged(t) for t in texts(args.planted)]
            pair["planted"] = len(caught)
            pair["caught"] = int(sum(caught))
            pair["recall"] = round(sum(caught) / max(len(caught), 1), 4)
            pair["missed"] = [i for i, c in enumerate(caught, 1) if not c]
            rows.append([f"{args.planted.name}: planted caught", f"{sum(caught)}/{len(caught)}"])
            rows.append([f"{args.planted.name}: recall", pair["recall"]])
        if args.ordinary:
            flagged = [text_flagged(t) for t in texts(args.ordinary)]
            pair["ordinary"] = len(flagged)
            pair["ordinary_flagged"] = int(sum(flagged))
            pair["flagged_lines"] = [i for i, f in enumerate(flagged, 1) if f]
            rows.append(
                [f"{args.ordinary.name}: ordinary flagged", f"{sum(flagged)}/{len(flagged)}"]
            )
        result["pair"] = pair
    for name in args.sets:
        path = SETS.get(name, Path(name))
        if not path.exists():
            print(f"{path} is absent: not measured")
            continue
        res = set_results(read_items(path))
        result[name] = res
        rows.append([f"{name}: plantings caught", f"{res['caught']}/{res['plantings']}"])
        rows.append([f"{name}: recall", res["recall"]])
        rows.append([f"{name}: ordinary flagged", f"{res['ordinary_flagged']}/{res['ordinary']}"])
    if (REALTIMEQA / "corpus.jsonl").exists() and args.news_sentences:
        news = news_flags(args.news_sentences)
        result["news"] = news
        rows.append(["news sentences (RTQA 2022)", news["sentences"]])
        rows.append(["news flagged", news["flagged"]])
        rows.append(["news false flags per 10,000", news["per_10k"]])
        rows.append(["seconds per 1,000 sentences (uncached)", news["seconds_per_1000_sentences"]])
    else:
        print("the 2022 news corpus is absent (or --news-sentences 0): news flags not measured")
    print(table(["measure", "value"], rows))
    if not args.dry_run:
        print(f"report: {report_path('injection_detector', result)}")
    return result


def set_results(items: list[dict]) -> dict:
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
    ap.add_argument("--ordinary-share", type=float, default=ORDINARY_SHARE)
    ap.add_argument("--ngram-prior", type=float, default=NGRAM_PRIOR)
    ap.add_argument("--cv", action="store_true", help="5-fold cross-validated recall (slow)")
    ap.add_argument(
        "--train-on",
        nargs="*",
        default=list(SETS),
        choices=list(SETS),
        help="planting sets whose sentences join the fit (default: both)",
    )
    ap.add_argument(
        "--check",
        nargs="*",
        default=[],
        choices=list(SETS),
        help="after fitting, measure these planting sets with the fitted model",
    )
    ap.add_argument("--news-check", action="store_true", help="after fitting, 2022 news flags")
    ap.add_argument("--curve", action="store_true", help="after fitting, recall vs false flags")
    ap.add_argument(
        "--sets",
        nargs="*",
        default=list(SETS),
        help="planting sets to measure (names or paths of item JSONL files)",
    )
    ap.add_argument("--planted", type=Path, help='JSONL of {"text": ...}: plantings to catch')
    ap.add_argument("--ordinary", type=Path, help='JSONL of {"text": ...}: texts not to flag')
    ap.add_argument(
        "--news-sentences", type=int, default=10_000, help="2022 news sentences to measure on"
    )
    ap.add_argument("--out", type=Path, default=MODEL_PATH, help="where --fit writes the model")
    ap.add_argument("--embedding", action="store_true", help="fit with the sentence embedding")
    args = ap.parse_args(argv)
    global EMBEDDING
    EMBEDDING = args.embedding
    for path in (args.planted, args.ordinary):
        if path is not None and not path.is_file():
            print(
                f'{path} is not a file: give a JSONL file of {{"text": ...}} lines', file=sys.stderr
            )
            return 1
    if args.planted or args.ordinary:
        args.sets = [] if "--sets" not in (argv or sys.argv) else args.sets
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
