"""Small text helpers shared by context selection and the grounding check."""

from __future__ import annotations

import re
from functools import lru_cache

from rag import lexicon

_WORD = re.compile(r"[\w’'-]+", re.UNICODE)
_NUMBER = re.compile(r"\d")
_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")


@lru_cache(maxsize=1)
def _stem():
    import Stemmer

    return Stemmer.Stemmer("english").stemWord


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    # NLTK's English list, shipped inside llama-index-core (nothing is downloaded).
    from llama_index.core.utils import globals_helper

    extra = {"said", "say", "says", "also", "would", "could", "us", "according", "told"}
    return frozenset(globals_helper.stopwords) | extra


def terms(text: str) -> set[str]:
    """Stemmed content words: what two texts must share to talk about the same thing."""
    stem, stop = _stem(), _stopwords()
    out = set()
    for w in _WORD.findall(text.lower()):
        w = w.strip("’'-").replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        if w and w not in stop:
            out.add(stem(w))
    return out


def key_tokens(text: str) -> set[str]:
    """Names and numbers, in digits or words: what a hallucination gets wrong. Lower-cased,
    not stemmed. A capitalised first word counts too, unless it is a stopword ("The", "He")."""
    out = set()
    for w in _WORD.findall(text):
        w = w.strip("’'-").replace("’", "'").removesuffix("'s")
        if not w:
            continue
        low = w.lower()
        number_word = any(part in _NUMBER_WORDS for part in low.split("-"))
        if _NUMBER.search(w) or number_word or (w[0].isupper() and low not in _stopwords()):
            out.add(low)
    return out


_NEGATION = re.compile(
    r"\b(not|no|never|none|nobody|nothing|without|neither|nor)\b|n[’']t\b", re.IGNORECASE
)


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


@lru_cache(maxsize=1)
def _punkt():
    # The trained English model knows "U.S." and "Mr." are not sentence ends; llama-index-core
    # ships it and puts it on NLTK's data path.
    from llama_index.core.utils import globals_helper
    from nltk.tokenize import PunktTokenizer

    globals_helper.punkt_tokenizer  # noqa: B018 - sets NLTK's data path
    return PunktTokenizer("english")


_TERMINAL = tuple('.!?;"”’)')
_BULLET = tuple("•*-–·▪")


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`.

    Punkt runs over the text with line breaks read as spaces, so a sentence wrapped across lines
    ("... U.S.\nPresident Trump ...") stays whole; a line that ends without punctuation
    (a headline, a bullet) still ends its sentence.
    """
    flat = text.replace("\n", " ")
    cuts = {e for _, e in _punkt().span_tokenize(flat)}
    for i, ch in enumerate(text):
        if ch != "\n":
            continue
        if not text[:i].rstrip(" ").endswith(_TERMINAL) or text[i + 1 :].lstrip().startswith(
            _BULLET
        ):
            cuts.add(i)
    spans = []
    start = 0
    for cut in sorted(cuts | {len(text)}):
        piece = text[start:cut]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((offset + start + lead, offset + start + lead + len(stripped)))
        start = cut
    return spans


def strip_markers(text: str) -> str:
    """`text` without its [n] / [n, m] citation markers."""
    return _MARKER.sub("", text).strip()


def split_markers(text: str) -> tuple[str, list[int]]:
    """Remove [n] / [n, m] markers from `text`, returning the plain text and the numbers."""
    nums: list[int] = []
    for m in _MARKER.finditer(text):
        nums.extend(int(n) for n in m.group(1).split(","))
    return strip_markers(text), nums


# Words that say when: a date answer holds one.
_DATE_WORDS = (
    lexicon.CALENDAR_WORDS
    | frozenset(lexicon.MONTH_ABBREVIATIONS)
    | frozenset(
        """today yesterday tomorrow week weeks month months year years decade decades day days
        hour hours ago since spring summer autumn fall winter weekend""".split()
    )
)
# Words that count: a number answer or a wrong number in a claim may be written with one.
_NUMBER_WORDS = (
    lexicon.NUMBER_WORDS
    | lexicon.FRACTIONS
    | frozenset("single double triple first second third".split())
)

_MONEY = re.compile(
    rf"[{lexicon.CURRENCY_SYMBOLS}]\s?\d|\d\s*(?:%|percent|{lexicon.CURRENCY_PATTERN}\b)", re.I
)


def has_answer_type(text: str, kind: str, question: str) -> bool:
    """Does `text` hold a word of `kind` that the question itself does not already hold?"""
    if kind == "any":
        return True
    asked = {w.lower() for w in _WORD.findall(question)}
    words = [w for w in _WORD.findall(text) if w.lower() not in asked]
    lower = [w.lower() for w in words]
    if kind == "number":
        return any(
            _NUMBER.search(w) or any(p in _NUMBER_WORDS for p in w.split("-")) for w in lower
        )
    if kind == "date":
        return any(re.fullmatch(r"(1[89]|20)\d\d", w) or w in _DATE_WORDS for w in lower)
    if kind == "money":  # an amount, or the percentage a price rose by
        return bool(_MONEY.search(text))
    return any(w[:1].isupper() for w in words[1:]) or any(w[:1].isupper() for w in words[:1])


# Past tenses: lower-case "-ed" words (not "hundred", "sacred") and the common irregular ones.
PAST_VERB = re.compile(
    r"\b(?!(?i:hundred|kindred|hatred|sacred|naked|wicked|rugged|ragged|beloved)\b)"
    r"(?:[a-z]\w{2,}ed|(?:won|lost|began|became|came|went|saw|made|took|gave|got|held|led|left|met"
    r"|ran|said|sold|told|found|fell|rose|wrote|spoke|chose|drew|flew|grew|knew|shook|stole"
    r"|swept|threw|brought|bought|caught|fought|taught|thought|paid|sent|spent|built|struck"
    r"|broke|froze|woke|wore|tore|sang|rang|sank|swam|sat|stood|understood|dealt|felt|kept"
    r"|slept|meant|heard|fled|slid|hid))\b"
)
