"""Corroboration and disagreement across sources, for a short answer.

News is reported by many outlets. Given the short answer (rag/answer_span.py) and the chunks
the engine retrieved, this finds

- the other sentences that state the same answer, in the same words or an equivalent form
  ("$12.6 million" = "$12,600,000" = "12.6 million dollars"; "June 4, 2023" = "4 June 2023";
  "the UK" = "Britain"; "Brand" = "Ilka Brand" where the article names her in full), counted
  by distinct source: one outlet (domain) counts once, and so do syndicated copies of one
  story (near-identical text around the sentence);
- the sentences from other sources that say the same thing with a different value of the
  same kind (another number, date or name): "Sources differ".

A sentence "says the same thing" when the content words around the two values overlap
(`SAME_CLAIM`); copies are syndicated above `SYNDICATED`. Both thresholds are fitted on
RealTime QA 2023 and checked on 2024 by `python -m bench.corroboration fit` (figures there).

Everything returned is a verbatim span of an article: each value and sentence is
`article[start:end]` of a retrieved chunk, so the engine can cite it as it cites passages.

    result = corroborate(answer.short_answer, st.passages, st.chunks)
    citations = number_citations(result, citations)   # adds new Citations, fills the numbers
    headline(short.text, result)   # "Ilka Brand [1][2] (2 sources)\nSources differ: ..."
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llama_index.core.schema import NodeWithScore, TextNode

from rag.answer_span import (
    DATE,
    NAME_KINDS,
    NUMBER,
    PHRASE,
    ShortAnswer,
    _spans_in_sentence,
    candidate_kind,
)
from rag.context import Sentence, candidate_sentences
from rag.grounding import Citation
from rag.injection_model import Vectors
from rag.metrics import contains, normalize
from rag.text import terms

# Thresholds, each the lowest whose error on RealTime QA 2023 stays within a cap set by what
# the error costs, then checked on 2024 (`python -m bench.corroboration fit`; pairs of sentences
# from different outlets' articles on one question, labelled by the question and quiz answers).
#
# Share of the content words of the smaller sentence, values left out, that the other also has:
# - for a sentence with the same value to state the answer (cap: 1 in 10 counted sentences
#   speaks of something else). 2023: 39 % of the sentences that state it found, 6.5 % of those
#   that do not counted; 2024: 63 % and 5.8 %.
SUPPORT_CLAIM = 0.25
# - for a sentence with another value in the answer's slot to make the same claim, so a
#   disagreement (cap: 1 in 20). 2023: 4.3 % of 231 sentences holding a quiz distractor
#   flagged, 12 % of same-claim pairs reach it; 2024: 3.3 % of 61, 22 %. Strict on purpose:
#   a wrong "Sources differ" costs more than a missed one.
SAME_CLAIM = 0.45
# Share of word 4-grams of the text around a sentence (itself left out) two articles share for
# one to be a copy of the other (cap: 1 in 100 pairs of different stories merged). Such copies
# are rare in RealTime QA: 2023 has none among 1,246 pairs of different outlets' articles and
# merges 0.6 % of them; 2024 merges 0.6 % of 810 and finds both of its 2 copies.
SYNDICATED = 0.25
WINDOW_CHARS = 300  # text either side of a sentence compared for syndication
MIN_SHINGLES = 8  # less text around a sentence than this tells nothing of copying


def surroundings(text: str, start: int, end: int) -> str:
    """The text either side of text[start:end], without it: copies of one story share it,
    two stories quoting one sentence (or writing one fact alike) do not."""
    return f"{text[max(0, start - WINDOW_CHARS) : start]} \n {text[end : end + WINDOW_CHARS]}"


def copied(around_a: str, around_b: str) -> float:
    """4-gram containment of two sentences' surroundings; 0 when either is too short to say."""
    a, b = shingles(around_a), shingles(around_b)
    return containment(a, b) if min(len(a), len(b)) >= MIN_SHINGLES else 0.0


SHINGLE = 4

NUMBER_FAMILY, DATE_FAMILY, NAME_FAMILY, TEXT_FAMILY = "number", "date", "name", "text"


def family(kind: str) -> str:
    """The family of values a short answer's kind is compared in."""
    if kind == NUMBER:
        return NUMBER_FAMILY
    if kind == DATE:
        return DATE_FAMILY
    if kind in NAME_KINDS or kind == "name":
        return NAME_FAMILY
    return TEXT_FAMILY


# ---------------------------------------------------------------------------------------------
# Sources


def outlet(meta: dict) -> str:
    """The outlet a chunk comes from: its source domain without "www." and subdomains
    ("edition.example.com" is "example.com"), else the URL's host, else the article id."""
    host = str(meta.get("source") or "").strip().lower()
    if not host:
        m = re.match(r"\w+://([^/:?#]+)", str(meta.get("url") or ""))
        host = m.group(1).lower() if m else ""
    if not host:
        return f"doc:{meta.get('doc_id', '')}"
    labels = [x for x in host.removeprefix("www.").split(".") if x]
    # "example.co.uk": the second-level label is the registry's, the outlet is one further in.
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _REGISTRY else 2
    return ".".join(labels[-keep:])


_REGISTRY = frozenset("co com org net gov ac edu ne or go".split())


def shingles(text: str, n: int = SHINGLE) -> set[tuple[str, ...]]:
    words = normalize(text).split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set()


def containment(a: set, b: set) -> float:
    """Share of the smaller set found in the other."""
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


# ---------------------------------------------------------------------------------------------
# Equivalent forms

_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
    "hundred": 1e2,
}
_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        """zero one two three four five six seven eight nine ten eleven twelve thirteen
        fourteen fifteen sixteen seventeen eighteen nineteen twenty""".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
     "ninety": 90, "dozen": 12}  # fmt: skip
# Currency marks and words, by the unit they name; "$" is any dollar, as "dollars" is.
_UNITS = [
    (r"US\$|A\$|C\$|NZ\$|HK\$|\$|\bUSD\b|\bdollars?\b", "dollar", 1.0),
    (r"\bcents?\b|¢", "dollar", 0.01),
    (r"€|\bEUR\b|\beuros?\b", "euro", 1.0),
    (r"£|\bGBP\b|\bpounds?\b|\bsterling\b", "pound", 1.0),
    (r"\bpence\b|(?<=\d)p\b", "pound", 0.01),
    (r"¥|\bJPY\b|\byen\b", "yen", 1.0),
    (r"₹|\bINR\b|\bRs\.?|\brupees?\b", "rupee", 1.0),
    (r"%|\bper\s*cent\b|\bpercent\b|\bpercentage\s+points?\b", "%", 1.0),
]


@dataclass(frozen=True)
class Amount:
    value: float
    unit: str  # "dollar", "%", ... or "" when none is written


def parse_amount(text: str) -> Amount | None:
    """ "$12.6 million", "$12,600,000", "12.6 million dollars", "€3bn", "45%", "three": the
    number it writes, with its unit; None when it writes none."""
    t = text.strip()
    unit, factor = "", 1.0
    for pattern, name, f in _UNITS:
        if re.search(pattern, t, re.I):
            unit, factor = name, f
            break
    m = re.search(r"\d[\d,]*(?:\.\d+)?", t)
    if m:
        digits = m.group().replace(",", "")
        try:
            value = float(digits)
        except ValueError:
            return None
        rest = t[m.end() :]
    else:
        words = normalize(t).replace("-", " ").split()
        found = [w for w in words if w in _WORD_NUMBERS]
        if not found:
            return None
        value = float(_WORD_NUMBERS[found[0]])
        rest = t[t.lower().find(found[0]) + len(found[0]) :]
    scale = re.match(r"\s*-?\s*([a-z]+)\b", rest, re.I)
    if scale and scale.group(1).lower() in _SCALES:
        value *= _SCALES[scale.group(1).lower()]
    return Amount(round(value * factor, 6), unit)


def same_amount(a: Amount, b: Amount) -> bool:
    return abs(a.value - b.value) <= 1e-9 * max(1.0, abs(a.value)) and (
        a.unit == b.unit or not a.unit or not b.unit
    )


_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            "january jan",
            "february feb",
            "march mar",
            "april apr",
            "may",
            "june jun",
            "july jul",
            "august aug",
            "september sep sept",
            "october oct",
            "november nov",
            "december dec",
        ],
        start=1,
    )
    for m in names.split()
}


@dataclass(frozen=True)
class Day:
    year: int | None
    month: int | None
    day: int | None


def parse_date(text: str) -> Day | None:
    """ "June 4, 2023", "4 June 2023", "2023-06-04", "6/4/2023" (month first), "June 2023",
    "2023": the calendar fields written; None for weekdays and relative dates."""
    t = text.strip().lower()
    m = re.fullmatch(r"((?:19|20)\d\d)-(\d\d)-(\d\d)", t)
    if m:
        return Day(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/((?:19|20)?\d\d)", t)
    if m:
        yy = int(m.group(3))
        return Day(yy + 2000 if yy < 100 else yy, int(m.group(1)), int(m.group(2)))
    words = re.findall(r"[a-z]+|\d+", t)
    month = next((_MONTHS[w] for w in words if w in _MONTHS), None)
    year = next((int(w) for w in words if re.fullmatch(r"(?:19|20)\d\d", w)), None)
    day = next((int(w) for w in words if re.fullmatch(r"\d{1,2}", w) and 1 <= int(w) <= 31), None)
    if month is None and year is None:
        return None
    return Day(year, month, day if month is not None else None)


def same_day(a: Day, b: Day) -> bool:
    """The same calendar date, written to the same precision; a year may be left out."""
    return (
        a.month == b.month
        and a.day == b.day
        and (a.year == b.year or a.year is None or b.year is None)
        and (a.month is not None or a.year == b.year)
    )


# A small table of general equivalents for names of countries and bodies the press writes in
# several ways. Acronyms an article itself defines ("Norrland Rail Authority (NRA)") are added
# per answer from the passages.
_ALIASES = [
    "united kingdom|uk|britain|great britain",
    "united states|us|usa|united states of america|america",
    "united arab emirates|uae",
    "european union|eu",
    "united nations|un",
    "russia|russian federation",
    "south korea|republic of korea",
    "netherlands|holland",
    "czech republic|czechia",
    "turkey|turkiye|türkiye",
    "myanmar|burma",
    "ivory coast|côte d ivoire|cote d ivoire",
]
_ALIAS = {form: i for i, line in enumerate(_ALIASES) for form in line.split("|")}
_HONORIFIC = frozenset(
    """mr mrs ms dr sir dame lord lady president prime minister chancellor senator sen gov
    governor rep representative secretary general gen judge justice king queen prince princess
    pope ceo coach chief mayor""".split()
)


def name_key(text: str) -> str:
    """A name compared: lower case, no punctuation or "the", letters of an acronym joined
    ("U.K." is "uk"), titles before it left out ("President Ilka Brand" is "ilka brand")."""
    joined: list[str] = []
    single = False  # the last word was built from single letters
    for w in normalize(text).split():
        if len(w) == 1 and w.isalpha() and single:
            joined[-1] += w
        else:
            joined.append(w)
            single = len(w) == 1 and w.isalpha()
    while len(joined) > 1 and joined[0] in _HONORIFIC:
        joined = joined[1:]
    return " ".join(joined)


def defined_acronyms(texts: Sequence[str]) -> dict[str, str]:
    """Acronyms the texts define, as written: "Norrland Rail Authority (NRA)" -> {"nra":
    "norrland rail authority"}, when the letters are the initials of the capitalised words."""
    out: dict[str, str] = {}
    for text in texts:
        for m in re.finditer(
            r"((?:[A-Z][\w’'-]*\s+(?:(?:of|and|for|the)\s+)?){2,8})\(([A-Z]{2,8})\)", text
        ):
            words = [w for w in m.group(1).split() if w[:1].isupper()]
            initials = "".join(w[0] for w in words).lower()
            if initials.endswith(m.group(2).lower()):
                full = words[len(initials) - len(m.group(2)) :]
                out[m.group(2).lower()] = name_key(" ".join(full))
    return out


def same_name(a: str, b: str, acronyms: dict[str, str] | None = None) -> bool:
    """Two names for one thing: the same words, a known alias, or an acronym defined in the
    passages. (A surname alone is matched by `Corroborator`, which checks the article.)"""
    ka, kb = name_key(a), name_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    acronyms = acronyms or {}
    ka, kb = acronyms.get(ka, ka), acronyms.get(kb, kb)
    return ka == kb or (ka in _ALIAS and _ALIAS[ka] == _ALIAS.get(kb))


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Support:
    """A sentence of a retrieved article that states the answer (or a different value)."""

    doc_id: str
    source: str  # outlet (domain)
    title: str
    url: str
    date: str
    sentence: str  # article[start:end]
    start: int
    end: int
    value: str  # the answer's form in it: article[value_start:value_end]
    value_start: int
    value_end: int
    overlap: float  # share of the claim's other words it shares
    group: int = 0  # stories that are copies of one another share a group
    n: int = 0  # citation number, once numbered
    around: str = field(default="", repr=False)  # the text around it, to spot copies


@dataclass
class Corroboration:
    sources: int  # distinct outlets stating the answer, its own included; copies count once
    citations: list[int] = field(default_factory=list)
    support: list[Support] = field(default_factory=list)  # other sentences stating it
    own_group: int = -1  # the group (source) of the answer's own sentence

    def to_dict(self) -> dict:
        return {"sources": self.sources, "citations": self.citations}


@dataclass
class Conflict:
    text: str  # the other value, verbatim
    n: int  # its citation number (0 until numbered)
    source: str
    where: Support | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "n": self.n, "source": self.source}


@dataclass
class Result:
    corroboration: Corroboration
    conflicts: list[Conflict]
    answer: str = ""  # the value compared, as its sentence writes it (the short answer or more)


# ---------------------------------------------------------------------------------------------
# Finding them

Retrieved = NodeWithScore | TextNode


def _as_scored(items: Sequence[Retrieved]) -> list[NodeWithScore]:
    return [i if isinstance(i, NodeWithScore) else NodeWithScore(node=i, score=0.0) for i in items]


def _without(text: str, spans: Sequence[tuple[int, int]]) -> str:
    for a, b in sorted(spans, reverse=True):
        text = text[:a] + " " + text[b:]
    return text


def claim_overlap(a: str, a_span: tuple[int, int], b: str, b_span: tuple[int, int]) -> float:
    """How much of a claim two sentences share once their values are left out: the share of
    the smaller sentence's content words the other also has."""
    ta = terms(_without(a, [a_span])) - terms(a[a_span[0] : a_span[1]])
    tb = terms(_without(b, [b_span])) - terms(b[b_span[0] : b_span[1]])
    return containment(ta, tb)


@dataclass(frozen=True)
class _Words:
    """What the chunks write in lower case, and capitalised: a capitalised first word is a
    name unless the chunks also write it in lower case ("Prices rose")."""

    lower: frozenset[str] = frozenset()
    caps: frozenset[str] = frozenset()

    @classmethod
    def of(cls, texts: Sequence[str]) -> _Words:
        joined = "\n".join(texts)
        return cls(
            frozenset(re.findall(r"\b[a-z][\w’'-]*", joined)),
            frozenset(re.findall(r"\b[A-Z][\w’'&.-]*", joined)),
        )


NEIGHBOURS = 3  # content words either side of a value that place it in its claim


def _content_words(text: str) -> list[tuple[int, str]]:
    """(start, stem) of each content word of the text, in order."""
    out = []
    for m in re.finditer(r"[\w’'-]+", text):
        stem = next(iter(terms(m.group())), "")
        if stem:
            out.append((m.start(), stem))
    return out


def neighbours(text: str, span: tuple[int, int], n: int = NEIGHBOURS) -> tuple[list, list]:
    """The stems of the `n` content words before (nearest first) and after text[span]."""
    words = _content_words(text)
    before = [w for a, w in words if a < span[0]][-n:][::-1]
    after = [w for a, w in words if a >= span[1]][:n]
    return before, after


def alignment(a: str, a_span: tuple[int, int], b: str, b_span: tuple[int, int]) -> float:
    """How well two values sit in one slot: neighbours shared on the same side, a whole point
    at the same distance and half at another. "will host" right after both "the UK" and
    "Norway" puts them in one slot; "Organisers said Norway will host" puts "Organisers"
    further from it."""
    score = 0.0
    for x, y in zip(neighbours(a, a_span), neighbours(b, b_span), strict=True):
        for i, w in enumerate(x):
            score += 1.0 if i < len(y) and y[i] == w else 0.5 if w in y else 0.0
    return score


def _values(s: Sentence, fam: str, words: _Words = _Words()) -> list[tuple[int, int]]:
    """(start, end) in the sentence of the values of `fam` it holds, longest at each place
    ("$4.96 million", not also "$4.96"); whole names only."""
    text = s.chunk
    a0 = s.start - s.chunk_start
    b0 = s.end - s.chunk_start
    spans = []
    for a, b, form in _spans_in_sentence(text, a0, b0, words.lower, words.caps):
        span = text[a:b].rstrip(".,;:")
        b = a + len(span)
        kind = candidate_kind(span) if form != "quote" else "name"
        if fam == NAME_FAMILY and (kind != "name" or form == "part" or _contraction(span)):
            continue
        if fam == NUMBER_FAMILY and kind != NUMBER:
            continue
        if fam == DATE_FAMILY and kind != DATE:
            continue
        spans.append((a - a0, b - a0))
    spans = sorted(set(spans), key=lambda x: (x[0], -x[1]))
    return [x for x in spans if not any(y != x and y[0] <= x[0] and x[1] <= y[1] for y in spans)]


# A pronoun or "there", "let" with a verb run in ("It's", "They're") opens many sentences with
# a capital; it names nothing.
_CONTRACTION = re.compile(
    r"(?:it|that|there|here|what|who|he|she|let|i|we|they|you)['’](?:s|re|ll|ve|d|m)", re.I
)


def _contraction(span: str) -> bool:
    return _CONTRACTION.fullmatch(span.strip("“”\"'‘")) is not None


class Corroborator:
    """Compares a short answer with every sentence of the retrieved chunks."""

    def __init__(
        self,
        same_claim: float = SAME_CLAIM,
        syndicated: float = SYNDICATED,
        support_claim: float = SUPPORT_CLAIM,
    ) -> None:
        self.same_claim = same_claim
        self.support_claim = support_claim
        self.syndicated = syndicated

    def find(
        self,
        short: ShortAnswer,
        passages: Sequence[Retrieved],
        chunks: Sequence[Retrieved],
        article_text: Callable[[str], str] | None = None,
        vectors: Vectors | None = None,
        skip: Callable[[str], bool] | None = None,
    ) -> Result:
        """`vectors`: the planting detector's, as the sentence selector used them (its spans
        are cached by them). `skip`: sentences never cited, as support or as a conflict."""
        sentences = candidate_sentences(
            _as_scored(list(chunks) + list(passages)), article_text, vectors
        )
        own = self._own_sentence(short, sentences)
        if own is None:  # the answer's sentence is not among the chunks: nothing to compare
            return Result(Corroboration(sources=1), [])
        # A phrase ("review every clause") has no slot of a kind, even asked as a name.
        fam = TEXT_FAMILY if candidate_kind(short.text) == PHRASE else family(short.kind)
        own_span = (short.start - own.start, short.end - own.start)
        texts = list({s.chunk for s in sentences})
        acronyms = defined_acronyms(texts)
        words = _Words.of(texts)
        if fam in (NUMBER_FAMILY, DATE_FAMILY):
            # A short answer cut from a longer value ("$12.6" of "$12.6 million") is compared
            # whole: "$12,600,000" states it, and is no other value.
            own_span = next(
                (x for x in _values(own, fam, words) if x[0] <= own_span[0] < own_span[1] <= x[1]),
                own_span,
            )
        answer = own.text[own_span[0] : own_span[1]]
        equal = self._matcher(answer, fam, acronyms, sentences)
        # A value the answer's own sentence also names is no disagreement ("beat X").
        named_with = {name_key(own.text[a:b]) for a, b in _values(own, fam, words)}
        support: list[Support] = []
        others: list[Support] = []
        seen: set[tuple[str, int]] = {(own.doc_id, own.start)}
        for s in sentences:
            if (s.doc_id, s.start) in seen or (skip is not None and skip(s.text)):
                continue
            seen.add((s.doc_id, s.start))
            spans = _values(s, fam, words) if fam != TEXT_FAMILY else []
            hits = [x for x in spans if equal(s.text[x[0] : x[1]], s)]
            # Words a name's patterns may miss; never for numbers ("3" is inside "3.5").
            if fam in (TEXT_FAMILY, NAME_FAMILY) and not hits:
                hits += _verbatim(answer, s.text)
            if hits:
                best = max(hits, key=lambda x: claim_overlap(own.text, own_span, s.text, x))
                overlap = claim_overlap(own.text, own_span, s.text, best)
                if overlap >= self.support_claim:
                    support.append(_support(s, best, overlap))
                continue
            if fam == TEXT_FAMILY or not _sentence_like(s.text):
                continue
            # The value in the answer's slot: the one whose neighbours are the answer's.
            slots = [
                (alignment(own.text, own_span, s.text, x), x)
                for x in spans
                if not _named_in(s.text[x[0] : x[1]], named_with, fam)
                and not (
                    fam == NAME_FAMILY
                    and (_part_of(s.text[x[0] : x[1]], answer) or _speaker(s.text, x))
                )
            ]
            aligned, x = max(slots, default=(0, (0, 0)), key=lambda t: t[0])
            if aligned == 0:
                continue
            overlap = claim_overlap(own.text, own_span, s.text, x)
            if overlap >= self.same_claim:
                others.append(_support(s, x, overlap))
        own_support = _support(own, own_span, 1.0)
        groups = self._group([own_support, *support, *others])
        for f in [own_support, *support, *others]:
            f.group = groups[id(f)]
        agreeing = {f.group for f in [own_support, *support]}
        # Other sources only: a story does not disagree with itself or with its copies.
        conflicts: dict[str, Conflict] = {}
        for f in sorted(others, key=lambda f: -f.overlap):
            if f.group in agreeing:
                continue
            key = normalize(f.value)
            if key not in conflicts and not any(
                _equivalent(f.value, c.text, fam, acronyms) for c in conflicts.values()
            ):
                conflicts[key] = Conflict(f.value, 0, f.source, f)
        return Result(
            Corroboration(len(agreeing), support=support, own_group=own_support.group),
            list(conflicts.values()),
            answer,
        )

    @staticmethod
    def _own_sentence(short: ShortAnswer, sentences: Sequence[Sentence]) -> Sentence | None:
        return next(
            (
                s
                for s in sentences
                if s.doc_id == short.doc_id and s.start <= short.start and short.end <= s.end
            ),
            None,
        )

    @staticmethod
    def _matcher(
        answer: str, fam: str, acronyms: dict[str, str], sentences: Sequence[Sentence]
    ) -> Callable[[str, Sentence], bool]:
        """Is a value in a sentence the answer, in the same or an equivalent form?"""
        full: dict[str, str] = {}
        if fam == NAME_FAMILY:
            # "Brand" for "Ilka Brand" (or the other way) where the article names her in full.
            for s in sentences:
                if s.chunk not in full.get(s.doc_id, ""):
                    full[s.doc_id] = full.get(s.doc_id, "") + "\n" + s.chunk

        def equal(value: str, s: Sentence) -> bool:
            if _equivalent(value, answer, fam, acronyms):
                return True
            if fam != NAME_FAMILY:
                return False
            short_form, long_form = sorted((name_key(value), name_key(answer)), key=len)
            if not short_form or short_form == long_form:
                return False
            tail = long_form.endswith(" " + short_form)
            article = " " + name_key(full.get(s.doc_id, s.chunk)) + " "
            return tail and f" {long_form} " in article

        return equal

    def _group(self, found: Sequence[Support]) -> dict[int, int]:
        """Groups of one source: the same outlet, or copies of one story."""
        parent = list(range(len(found)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(len(found)):
            for j in range(i):
                same = found[i].source == found[j].source or found[i].doc_id == found[j].doc_id
                if same or copied(found[i].around, found[j].around) >= self.syndicated:
                    parent[root(i)] = root(j)
        return {id(x): root(i) for i, x in enumerate(found)}


def _support(s: Sentence, span: tuple[int, int], overlap: float) -> Support:
    meta = s.meta
    a = s.start - s.chunk_start
    return Support(
        doc_id=s.doc_id,
        source=outlet(meta),
        title=str(meta.get("title", "")),
        url=str(meta.get("url", "")),
        date=str(meta.get("date", "")),
        sentence=s.text,
        start=s.start,
        end=s.end,
        value=s.text[span[0] : span[1]],
        value_start=s.start + span[0],
        value_end=s.start + span[1],
        overlap=round(overlap, 4),
        around=surroundings(s.chunk, a, s.end - s.chunk_start),
    )


def _equivalent(a: str, b: str, fam: str, acronyms: dict[str, str]) -> bool:
    if normalize(a) == normalize(b):
        return True
    if fam == NUMBER_FAMILY:
        x, y = parse_amount(a), parse_amount(b)
        return x is not None and y is not None and same_amount(x, y)
    if fam == DATE_FAMILY:
        d, e = parse_date(a), parse_date(b)
        return d is not None and e is not None and same_day(d, e)
    if fam == NAME_FAMILY:
        return same_name(a, b, acronyms)
    return False


# Who said something is no slot sources disagree on: several officials say the same thing.
_SPEAKS_AFTER = re.compile(
    r"\W*(?:\w+\s+)?(?:said|says|told|tells|added|wrote|noted|stated|announced)\b", re.I
)
_SPEAKS_BEFORE = re.compile(
    r"\b(?:said|says|told|according\s+to|wrote|added)\s+(?:[\w,]+\s+){0,3}$", re.I
)


def _speaker(text: str, span: tuple[int, int]) -> bool:
    """Is text[span] the one said to speak ("Ilka Brand said", "said spokesman Ola Berg")?"""
    before = text[max(0, span[0] - 40) : span[0]]
    # "..., said Ola Berg." names who spoke; "said Norway will host" says what was said.
    ends_clause = re.match(r"\s*(?:[,.;:!?)”\"]|$)", text[span[1] :]) is not None
    return bool(
        _SPEAKS_AFTER.match(text, span[1])
        or (ends_clause and _SPEAKS_BEFORE.search(before))
        or re.search(r"\baccording\s+to\s+(?:[\w,]+\s+){0,3}$", before, re.I)
    )


def _sentence_like(text: str) -> bool:
    """A sentence, not a headline or a caption: it ends as sentences end."""
    return text.rstrip().endswith((".", "!", "?", '"', "”", "’", ")"))


def _named_in(value: str, named: set[str], fam: str) -> bool:
    """Does the answer's sentence name this value, in any form ("Brand" there, "Velmora
    Mayor Ilka Brand" here: the same person, last names alike)?"""
    key = name_key(value)
    if key in named:
        return True
    return fam == NAME_FAMILY and any(key.split()[-1:] == n.split()[-1:] for n in named if n)


def _part_of(value: str, answer: str) -> bool:
    """One name inside the other ("Brand" and "Ilka Brand"): a shorter form, not another name."""
    a, b = f" {name_key(value)} ", f" {name_key(answer)} "
    return a.strip() != "" and (a in b or b in a)


def _verbatim(answer: str, text: str) -> list[tuple[int, int]]:
    """Where the answer's words occur in the text, whatever the case and spacing."""
    words = answer.split()
    if not words:
        return []
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    return [m.span() for m in re.finditer(pattern, text, re.I)]


def corroborate(
    short: ShortAnswer | None,
    passages: Sequence[Retrieved],
    chunks: Sequence[Retrieved],
    article_text: Callable[[str], str] | None = None,
    vectors: Vectors | None = None,
    skip: Callable[[str], bool] | None = None,
) -> Result | None:
    """Sentences of the retrieved chunks that state the short answer, and those of other
    sources that give another value in the same claim; None with no short answer."""
    if short is None:
        return None
    return Corroborator().find(short, passages, chunks, article_text, vectors, skip)


# ---------------------------------------------------------------------------------------------
# Citing them


def number_citations(result: Result, citations: list[Citation], first: int = 1) -> list[Citation]:
    """Give each other source's best supporting sentence (most words shared with the answer's
    sentence: one citation a source, as "(3 sources)" counts them) and each conflict a
    citation number: an existing citation that holds its sentence, else a new one (the
    sentence itself, verbatim), appended. `first` is the short answer's own citation."""
    out = list(citations)

    def number(x: Support) -> int:
        for c in out:
            if c.doc_id == x.doc_id and c.start <= x.start and x.end <= c.end:
                return c.n
        n = max((c.n for c in out), default=0) + 1
        out.append(
            Citation(n, x.doc_id, x.title, x.source, x.url, x.date, x.sentence, x.start, x.end, 0.0)
        )
        return n

    best: dict[int, Support] = {}
    for x in result.corroboration.support:
        if x.group != result.corroboration.own_group and (
            x.group not in best or x.overlap > best[x.group].overlap
        ):
            best[x.group] = x
    numbers = [first]
    for x in best.values():
        x.n = number(x)
        if x.n not in numbers:
            numbers.append(x.n)
    result.corroboration.citations = numbers
    for c in result.conflicts:
        if c.where is not None:
            c.n = c.where.n = number(c.where)
    return out


DIFFER = "Sources differ: "  # starts the line that lists other sources' values


_COUNT = re.compile(r" \(\d+ sources\)$")


def without_differences(text: str) -> str:
    """What the answer itself says: its text without the "Sources differ" line and the
    "(3 sources)" count (a gold "3" is not found in it)."""
    first, sep, rest = text.partition("\n\n")
    lines = [_COUNT.sub("", x) for x in first.split("\n") if not x.startswith(DIFFER)]
    return "\n".join(lines) + sep + rest


def headline(short_text: str, result: Result | None, first: int = 1) -> str:
    """ "Ilka Brand [1][2][3] (3 sources)", and a line "Sources differ: $4.96 [1], $5 [2]" when
    another source gives another value. Call after `number_citations`."""
    if result is None:
        return f"{short_text} [{first}]"
    cites = result.corroboration.citations or [first]
    marks = "".join(f"[{n}]" for n in cites)
    n = result.corroboration.sources
    line = f"{short_text} {marks}" + (f" ({n} sources)" if n > 1 else "")
    shown = [c for c in result.conflicts if c.n]
    if shown:
        parts = [f"{result.answer or short_text} [{first}]"] + [f"{c.text} [{c.n}]" for c in shown]
        line += f"\n{DIFFER}" + ", ".join(parts)
    return line


def to_json(result: Result | None) -> dict:
    """The `rag ask --json` keys."""
    if result is None:
        return {"corroboration": None, "conflicts": []}
    return {
        "corroboration": result.corroboration.to_dict(),
        "conflicts": [c.to_dict() for c in result.conflicts],
    }


def summary(rows: Sequence[dict]) -> dict:
    """For `rag eval` rows (each with "refused", "answerable", "em", "gold", "corroboration",
    "conflicts"): how often an answer has 2+ sources, and how often, when the short answer is
    wrong, a gold answer is among the conflicts."""
    answered = [r for r in rows if not r.get("refused") and r.get("corroboration")]
    multi = [r for r in answered if r["corroboration"]["sources"] >= 2]
    wrong = [r for r in answered if r.get("answerable", True) and not r.get("em")]
    found = [
        r for r in wrong if any(contains(c["text"], r["gold"]) for c in r.get("conflicts") or [])
    ]

    def share(part: list, whole: list) -> float | None:
        return round(len(part) / len(whole), 4) if whole else None

    return {
        "with_short_answer": len(answered),
        "two_plus_sources": share(multi, answered),
        "with_conflicts": share([r for r in answered if r.get("conflicts")], answered),
        "wrong_short_answers": len(wrong),
        "gold_in_conflicts_when_wrong": share(found, wrong),
    }


__all__ = [
    "Conflict",
    "Corroboration",
    "Corroborator",
    "Result",
    "Support",
    "corroborate",
    "headline",
    "number_citations",
    "summary",
    "to_json",
]
