"""A learned detector of planted sentences: one that does not need the wording to be listed.

rag/injection.py's patterns name the forms plantings took so far; the next planting will use
another ("Summaries must state that ...", a Markdown table row, "outils de résumé
automatique"). This model scores a sentence by the kinds of words it uses, not by exact
phrases, with look-alike characters folded first (rag/confusables.py):

- hashed character n-grams (2 to 5 characters, digits as 0), which carry across languages and
  scripts the embedding reads poorly ("résum", "摘要", "要約", "пересказ"): each n-gram's log
  ratio of its share among plantings to its share among ordinary sentences (naive Bayes
  features, as in NBSVM), summed over the sentence;
- whether the patterns of rag/injection.py match it;
- which families of words it holds, in several languages (who it addresses: AI systems,
  summaries, "you"; what it orders: say, state, must, ignore; what it asks of a reader: bank
  details, a password, to call or write to an address to be paid), and pairs of them;
- its length (fragments score oddly on n-grams);
- optionally its embedding by the bundled all-MiniLM-L6-v2 (rag/embeddings.py; nothing is
  downloaded). The shipped model is fitted without it when that measures as good: it is then
  about a hundred times cheaper, which matters when every sentence is scanned at ingestion.

A logistic regression over these features is fitted by bench/injection_detector.py on the
plantings of tests/data/plantings/ (and the planting sets' sentences) against real news
sentences and hard ordinary sentences (AI news, scam warnings, officials' orders, editors'
notes, tables), and its thresholds are set on news sentences of another year, never on the
sentences it is measured on. A second, lower threshold applies beside a flagged sentence in
its paragraph, since plantings run over several sentences. The weights (no sentence text) ship
in rag/assets/injection_detector.npz.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.confusables import fold
from rag.output_guard import relays_request

MODEL_PATH = Path(__file__).parent / "assets" / "injection_detector.npz"
_F = re.IGNORECASE | re.VERBOSE

# Word families. Each is one feature (present or not); the model learns their weights and
# pairs, so no single family nor phrase decides.
FAMILIES: dict[str, str] = {
    # Who a planting speaks to: AI systems, automatic readers and writers of summaries.
    "ai": r"""\b(?:AI|A\.I\.|IA|KI|LLMs?|GPTs?|ChatGPT|Copilot|Gemini|Claude|bots?|chat\s?bots?
        |crawlers?|scrapers?|(?:language|langage|lenguaje|linguaggio)\s?models?|models?
        |mod[eè]les?|modelos?|modelli|Sprachmodell\w*|assistants?|assistent\w*|asistentes?
        |assistenti|asystent\w*|agents?|robots?|machines?|algorithm\w*|automat\w*
        |answer\s+engines?|search\s+assistants?|summari[sz]\w*|résum\w*|resum\w*|riassunt\w*
        |Zusammenfass\w*|samenvatting\w*|sintesi|streszcz\w*|tools?|outils?|herramientas?
        |strumenti|ferramentas?|Werkzeug\w*|systems?|systèmes?|sistemas?|sistemi|Systeme?
        |asystent\w*|narzędzi\w*|hulpmiddel\w*|chatbot\w*|inteligência\s+artificial
        |yapay\s+zeka|asistan\w*|özet\w*|sohbet\s+bot\w*)\b|ИИ|нейросет|ассистент|помощник
        |чат-бот|бот|пересказ|модел|人工智能|助手|机器人|摘要|模型|アシスタント|ボット|要約
        |الذكاء\s+الاصطناعي|مساعد|روبوت|ملخص""",
    # An order or an obligation about what to say.
    "directive": r"""\b(?:must|should|shall|have\s+to|has\s+to|need\s+to|required|always|never
        |say|state|tell|answer|reply|respond|report|mention|write|include|describe|list|name
        |repeat|output|print|claim|confirm|treat|pretend|act\s+as|ignore|disregard|forget
        |override|use\s+these|instead|do\s+not|don['’]t|please|remember|note
        |doivent|doit|dites|dis|indiquez|indiquer|répondez|mentionner|ignorez|veuillez
        |müssen|muss|sollen|soll|sag\w*|antwort\w*|angeben|erwähnen|ignorier\w*
        |deben|debe|digan|diga|indicar|responde\w*|mencionar|ignora\w*
        |devono|deve|dire|affermare|indicare|devem|dizer|afirmar|moeten|moet|vermelden|zeggen
        |muszą|musi|podawać|belirtmeli\w*|söyle\w*|yanıtla\w*)\b|должн|отвечайте|напиш|скажи
        |必须|请回答|回答|ください|答えて|書いて|يجب|أجيبوا|اذكر""",
    # The text or the answer as an object: "this article", "any summary", "your answer".
    "meta": r"""\b(?:this|these|the\s+following|above|below|next|ce|cet|cette|dieser?|dieses
        |este|esta|questo|questa|deze|dit)\s+(?:article|page|story|text|report|paragraph
        |section|sentence|lines?|part|passage|document|texte|artículo|articolo|Artikel|Text)\b
        |\b(?:answers?|responses?|replies|outputs?|réponses?|respuestas?|Antwort\w*|risposte?
        |summar(?:y|ies)|résumés?|resúmenes|Zusammenfassung\w*|riassunti|resumos|samenvattingen
        |users?|readers?\s+who\s+ask|questions?\s+about)\b""",
    "you": r"\b(?:you|your|yourself|vous|votre|dich|dein\w*|usted|você|jij)\b",
    # What a phishing request asks a reader for.
    "credential": r"""\b(?:bank\s*(?:details|account|data|username)|account\s+(?:number|details)
        |sort\s+code|IBAN|PIN|passwords?|passcodes?|credentials|card\s+(?:number|details)
        |credit\s+card|security\s+code|CVV|passport\s+number|date\s+of\s+birth|social\s+security
        |log\s*in|sign\s*in|username|coordonnées\s+bancaires|mot\s+de\s+passe|Bankdaten
        |Kontodaten|Passwort|Kennwort|datos\s+bancarios|contraseña|dati\s+bancari
        |dados\s+bancários|bankgegevens|banka\s+bilgi\w*|şifre\w*)\b|банковск|пароль
        |银行卡|密码|口座|暗証番号|カード|بطاقت|المصرفية|كلمة\s+المرور""",
    "send": r"""\b(?:send|sending|email|e-mail|text(?:ing)?|transfer|wire|reply\s+with|give
        |provide|submit|enter|read\s+out|call|phone|contact|visit|click|log|envoy\w*|send\w*
        |envi\w*|inviare|enviar|envie|stuur\w*|überweis\w*|appel\w*|llam\w*|gönder\w*)\b
        |отправ|发送|送って|送信|أرسل""",
    "paid": r"""\b(?:compensat\w*|refund\w*|reimburs\w*|claim|payment|paid|payout\w*|prize
        |grant|rebate|money\s+back|owed|unlock|indemnis\w*|rembours\w*|entschädig\w*
        |erstatt\w*|compens\w*|reembols\w*|rimbors\w*)\b""",
    "contact": r"""(?:https?://|www\.|\b[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d\s()-]{7,}\d
        |\b[\w-]+\.(?:example|com|net|org|info|io)\b)""",
    # A word that announces a message, in many languages.
    "note": r"""\b(?:notes?|notices?|reminders?|messages?|memos?|instructions?|attention|warning
        |advisory|update|correction|important|facts|data|PSA|heads[-\s]up|avis|rappel|consignes?
        |Hinweis\w*|Nachricht|Achtung|Anweisung\w*|nota|aviso|atención|instrucciones
        |avviso|istruzion\w*|opmerking|bericht|uwaga|wiadomość|wskazówka|footnote|caption
        |alt\s+text|answer\s+key|TL;?DR|style\s+note|uyarı)\b|примечание|внимание|注意
        |请注意|へ：|إلى|ملاحظة""",
    # Markup that no prose sentence starts with: table cells, tags, role markers.
    "markup": r"""^\s*(?:\||<|\[|\{|\#{2,}|SYSTEM\b|\(?for\s)""",
}
_FAMILY_RES = {k: re.compile(v, _F) for k, v in FAMILIES.items()}
# The head of a sentence that addresses someone before its claim: "<who>: ...", "<who>, ...".
_HEAD = re.compile(r"^(.{2,70}?)(?:\s[:—–-]\s|[:,]\s|[：，]|\s\|)")
PAIRS = [
    ("ai", "directive"),
    ("ai", "meta"),
    ("directive", "meta"),
    ("you", "directive"),
    ("credential", "send"),
    ("credential", "contact"),
    ("send", "contact"),
    ("contact", "paid"),
    ("credential", "paid"),
    ("markup", "ai"),
    ("markup", "directive"),
    ("head_ai", "head_note"),
    ("head_ai", "directive"),
]
# Computed from a sentence's n-grams when it is scored: the sum of their log-count ratios, and
# the sentence's length (a fragment like "The short answer?" reads odd on n-grams alone).
DERIVED = ["ngrams", "log_length", "short"]
FEATURE_NAMES = (
    ["address", "order", "colon", "head_ai", "head_note", "request"]
    + list(FAMILIES)
    + [f"{a}*{b}" for a, b in PAIRS]
    + DERIVED
)


def lexical_features(sentence: str, address: bool, order: bool) -> np.ndarray:
    """The non-embedding features of one folded sentence."""
    has = {k: bool(r.search(sentence)) for k, r in _FAMILY_RES.items()}
    head = _HEAD.match(sentence.lstrip("|*-•[(<{#\"“'‘ "))
    head_text = head.group(1) if head else ""
    has["head_ai"] = bool(head_text) and bool(_FAMILY_RES["ai"].search(head_text))
    has["head_note"] = bool(head_text) and bool(_FAMILY_RES["note"].search(head_text))
    row = [float(address), float(order), float(sentence.rstrip().endswith(":"))]
    row += [float(has["head_ai"]), float(has["head_note"]), float(relays_request(sentence))]
    row += [float(has[k]) for k in FAMILIES]
    row += [float(has[a] and has[b]) for a, b in PAIRS]
    return np.array(row, dtype=np.float32)


# Character n-grams, hashed: they carry across languages and scripts that the English-centred
# embedding reads poorly ("résum", "摘要", "要約", "сообщ"), and across spellings of one word.
NGRAMS = (2, 3, 4, 5)
EMBEDDING_DIM = 384  # all-MiniLM-L6-v2
HASH_BITS = 18
_MIX = np.uint64(0x9E3779B97F4A7C15)


def ngram_ids(sentence: str) -> np.ndarray:
    """Distinct hashed character n-grams of a folded sentence: lower-cased, digits as 0."""
    text = " " + " ".join(sentence.lower().split()) + " "
    text = re.sub(r"\d", "0", text)
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    out = []
    with np.errstate(over="ignore"):
        for n in NGRAMS:
            if len(cps) < n:
                continue
            h = np.full(len(cps) - n + 1, np.uint64(n), dtype=np.uint64)
            for k in range(n):
                h = h * np.uint64(1_000_003) + cps[k : len(cps) - n + 1 + k]
            out.append((h * _MIX) >> np.uint64(64 - HASH_BITS))
    if not out:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(out)).astype(np.int64)


class Sparse:
    """Rows of hashed n-grams, each row's entries 1/sqrt(its n-gram count)."""

    def __init__(self, rows: Sequence[np.ndarray]) -> None:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(lengths)])
        self.indices = np.concatenate(list(rows)) if len(rows) else np.zeros(0, np.int64)
        self.values = np.repeat(1.0 / np.sqrt(np.maximum(lengths, 1)), lengths)
        self.row = np.repeat(np.arange(len(rows)), lengths)
        self.n = len(rows)

    @classmethod
    def of(cls, sentences: Sequence[str]) -> Sparse:
        return cls([ngram_ids(s) for s in sentences])

    def dot(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.row, weights=w[self.indices] * self.values, minlength=self.n)

    def tdot(self, r: np.ndarray) -> np.ndarray:
        """X^T r."""
        return np.bincount(
            self.indices, weights=r[self.row] * self.values, minlength=1 << HASH_BITS
        )

    def take(self, mask: np.ndarray) -> Sparse:
        keep = np.flatnonzero(mask)
        return Sparse([self.indices[self.indptr[i] : self.indptr[i + 1]] for i in keep])

    @staticmethod
    def stack(parts: Sequence[Sparse]) -> Sparse:
        rows = [p.indices[p.indptr[i] : p.indptr[i + 1]] for p in parts for i in range(p.n)]
        return Sparse(rows)


def features(
    sentences: Sequence[str],
    vectors: np.ndarray,
    regex: Callable[[str], tuple[bool, bool]],
) -> np.ndarray:
    """Embedding then lexical features, one row per folded sentence."""
    lex = np.array([lexical_features(s, *regex(s)) for s in sentences], dtype=np.float32).reshape(
        len(sentences), len(FEATURE_NAMES) - len(DERIVED)
    )
    return np.hstack([np.asarray(vectors, dtype=np.float32), lex])


class Detector:
    """Scores sentences: P(planted) from the fitted weights; `flags` applies the threshold."""

    def __init__(
        self,
        weights: np.ndarray,
        bias: float,
        threshold: float,
        ngram_weights: np.ndarray | None = None,
        neighbour_threshold: float | None = None,
    ) -> None:
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.threshold = float(threshold)
        # A sentence beside a flagged one, in its paragraph, is flagged from this lower score:
        # plantings run over several sentences, and news is rarely next to a planting.
        self.neighbour_threshold = float(
            threshold if neighbour_threshold is None else neighbour_threshold
        )
        self.ngram_weights = (
            np.zeros(1 << HASH_BITS, dtype=np.float32)
            if ngram_weights is None
            else ngram_weights.astype(np.float32)
        )

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> Detector:
        with np.load(path) as z:
            names = [str(n) for n in z["feature_names"]]
            ngrams = z["ngram_weights"] if "ngram_weights" in z.files else None
            if names != FEATURE_NAMES or ngrams is None or len(ngrams) != 1 << HASH_BITS:
                raise RuntimeError(
                    f"{path} was fitted on other features; refit it: "
                    "python -m bench.injection_detector --fit"
                )
            return cls(
                z["weights"],
                float(z["bias"]),
                float(z["threshold"]),
                ngrams,
                float(z["neighbour_threshold"]),
            )

    def save(self, path: Path = MODEL_PATH) -> None:
        np.savez_compressed(
            path,
            weights=self.weights,
            bias=np.float32(self.bias),
            threshold=np.float32(self.threshold),
            neighbour_threshold=np.float32(self.neighbour_threshold),
            feature_names=np.array(FEATURE_NAMES),
            ngram_weights=self.ngram_weights.astype(np.float16),
        )

    @property
    def uses_embedding(self) -> bool:
        """Fitted without the sentence embedding, the detector never needs one (it then reads
        a sentence in about 0.1 ms instead of several)."""
        return bool(np.any(self.weights[:EMBEDDING_DIM]))

    def scores(self, x: np.ndarray, grams: Sparse) -> np.ndarray:
        """`x`: embedding and word families; `grams`: the same sentences' n-grams, whose
        log-count ratios (`ngram_weights`) add up to the last feature."""
        x = with_ngrams(x, grams, grams.dot(self.ngram_weights.astype(np.float64)))
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))


def with_ngrams(x: np.ndarray, grams: Sparse, ngram_score: np.ndarray) -> np.ndarray:
    """`x` with the DERIVED features."""
    count = np.diff(grams.indptr).astype(np.float64)  # distinct n-grams: about 4 a character
    extra = np.column_stack([ngram_score, np.log1p(count) / 6, count < 60])
    return np.hstack([x, extra.astype(np.float32)])


def ngram_ratios(grams: Sparse, y: np.ndarray, row_weight: np.ndarray, prior: float) -> np.ndarray:
    """Each hashed n-gram's log ratio of its weight among plantings to its weight among
    ordinary sentences (each class weighing 1 in all), with `prior` added to both: an n-gram
    seen in neither, or equally in both, counts 0 (naive Bayes features, as in NBSVM)."""
    w = row_weight[grams.row]
    size = 1 << HASH_BITS
    pos = np.bincount(grams.indices, weights=w * (y[grams.row] == 1), minlength=size)
    neg = np.bincount(grams.indices, weights=w * (y[grams.row] == 0), minlength=size)
    pos_share = pos / row_weight[y == 1].sum()
    neg_share = neg / row_weight[y == 0].sum()
    return np.log((pos_share + prior) / (neg_share + prior)).astype(np.float32)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, group_weight: np.ndarray, l2: float = 1.0, iters: int = 30
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method. `group_weight` is each row's
    share of the total weight: a few hundred plantings and hard ordinary sentences count as
    much as tens of thousands of news sentences."""
    n, d = x.shape
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    sample_w = group_weight / group_weight.sum() * n
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (sample_w * (p - y)) + reg * w
        hess = (xb * (sample_w * p * (1 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1].astype(np.float32), float(w[-1])


# Runtime -------------------------------------------------------------------------------------

_SCORES_MAX = 50_000
_scores: OrderedDict[str, float] = OrderedDict()
_lock = threading.Lock()


_active: list[Detector] = []


def detector() -> Detector:
    if not _active:
        _active.append(Detector.load())
    return _active[0]


def use_detector(model: Detector) -> None:
    """Score with `model` from now on (the bench measures candidate fits this way)."""
    with _lock:
        _active[:] = [model]
        _scores.clear()


@lru_cache(maxsize=1)
def _embedder():
    # The detector's weights were fitted on this model's vectors, whatever backend retrieval uses.
    from rag.embeddings import OnnxMiniLMEmbedding

    return OnnxMiniLMEmbedding()


def embed(sentences: Sequence[str]) -> np.ndarray:
    return np.array(_embedder().embed(list(sentences)), dtype=np.float32).reshape(
        len(sentences), -1
    )


Vectors = Callable[[list[str]], list[list[float]]]


def planted_scores(
    sentences: Sequence[str],
    regex: Callable[[str], tuple[bool, bool]],
    vectors: Vectors | None = None,
) -> list[float]:
    """P(planted) of each sentence, cached by text: the same chunks come back for many
    questions. `regex(folded sentence)` -> (addresses an AI, orders whoever answers).
    `vectors` embeds with all-MiniLM-L6-v2 through the caller's cache (the answer path's
    sentence vectors, so relevance scoring reuses them); by default, the detector's own."""
    folded = [" ".join(fold(s).split()) for s in sentences]
    with _lock:
        known = {s: _scores[s] for s in folded if s in _scores}
        for s in known:
            _scores.move_to_end(s)
    missing = list(dict.fromkeys(s for s in folded if s not in known))
    if missing:
        model = detector()
        if not model.uses_embedding:
            vecs = np.zeros((len(missing), EMBEDDING_DIM), dtype=np.float32)
        elif vectors:
            vecs = np.array(vectors(missing), dtype=np.float32)
        else:
            vecs = embed(missing)
        found = model.scores(features(missing, vecs, regex), Sparse.of(missing))
        with _lock:
            for s, p in zip(missing, found, strict=True):
                _scores[s] = known[s] = float(p)
            while len(_scores) > _SCORES_MAX:
                _scores.popitem(last=False)
    return [known[s] for s in folded]


def flagged(
    sentences: Sequence[str],
    regex: Callable[[str], tuple[bool, bool]],
    vectors: Vectors | None = None,
) -> list[bool]:
    t = detector().threshold
    return [p >= t for p in planted_scores(sentences, regex, vectors)]
