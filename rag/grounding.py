"""Answers that cannot lie about their sources.

Citations are attached here, in code: every sentence of the model's answer is tested against the
passages, and gets the marker of the passage that supports it. The model's own markers are only
hints. Support means one sentence of the passage says it: the claim's names and numbers, its
content words, and each word beside the name or number it is said of ("Mayor Veld", not
"Veld ... engineer Brand"). Word overlap is not enough. A sentence no passage supports is
replaced by a quote of the best supporting sentence, so even a tiny model never shows an
unsupported claim as a cited fact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache

from llama_index.core.schema import TextNode

from rag import lexicon
from rag.text import (
    _NUMBER,
    _NUMBER_WORDS,
    _WORD,
    PAST_VERB,
    _stem,
    _stopwords,
    key_tokens,
    negated,
    sentence_spans,
    split_markers,
    strip_markers,
    terms,
)

_SOURCE = r"(passages?|articles?|context|text|sources?|information (given|provided))"
# The model saying it cannot answer from the passages, not an answer that happens to contain
# "unable" or "not mentioned".
_DONT_KNOW = re.compile(
    r"\bi\s*(do\s*n[o'’]?t|cannot|can[’']?t|am\s+unable\s+to|[’']m\s+unable\s+to|am\s+not\s+sure)"
    r"\s*(know|find|answer|say|tell|determine|provide|sure)?"
    rf"|\b{_SOURCE}\b.{{0,60}}\b(do(es)?\s*n[o'’]?t|don[’']t|doesn[’']t)\s+"
    r"(contain|mention|say|provide|include|state|specify|give)"
    rf"|\b(no|not enough)\s+(information|mention|answer|details?)\b.{{0,60}}\b{_SOURCE}"
    rf"|\bnot\s+(mentioned|provided|stated|specified|given)\s+in\s+the\s+{_SOURCE}"
    r"|^\s*(unknown|no information)\b",
    re.IGNORECASE,
)


@dataclass
class Citation:
    n: int
    doc_id: str
    title: str
    source: str
    url: str
    date: str
    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def citation_for(n: int, p: TextNode) -> Citation:
    m = p.metadata
    return Citation(
        n=n,
        doc_id=m.get("doc_id", ""),
        title=m.get("title", ""),
        source=m.get("source", ""),
        url=m.get("url", ""),
        date=m.get("date", ""),
        text=p.get_content(),
        start=p.start_char_idx or 0,
        end=p.end_char_idx or 0,
        score=round(float(m.get("relevance", 0.0)), 4),
    )


def says_dont_know(text: str) -> bool:
    """The model declined: every sentence of its answer says it does not know. A sentence that
    merely contains such words ("the pilot was unable to land") is an answer."""
    sentences = [s for s, _ in split_answer(text)]
    return not sentences or all(_DONT_KNOW.search(s) for s in sentences)


# Stop words that link a name to a word across them either way round: "X is the mayor" says
# what "Mayor X" says, "arrested by police" what "police arrested".
_LINKS = frozenset("is are was were be been being am by".split())
# Other small words a name and the word said of it may have between them ("the mayor of X",
# "X, its chief"); any other stop word ("that", "has", "would") ends the search.
_SKIP = _LINKS | frozenset(
    """a an the of its his her their in on at to for from with into over after before during
    about against between""".split()
)
# Stop words for retrieval, but the verbs of attribution: "Fauci said" is a claim about Fauci.
_SPEECH = frozenset("said say says told tell tells".split())


@dataclass(frozen=True)
class _Token:
    word: str  # lower-case, possessive removed
    key: str  # how a name or number is matched: the word without a plural "s"
    stem: str
    kind: str  # "name", "number", "word" (a content word) or "stop"
    run: int  # index of the name or number run it belongs to, -1 for words
    aside: bool = False  # inside a comma-delimited aside after a name ("X, the engineer, said")


# "Ilka Brand, the engineer who designed it, said": what lies between the commas describes
# the name before it and does not part the name from its verb.
_ASIDE = re.compile(r"\b[A-Z][\w’'-]*\s*,\s+([a-z0-9“\"][^,;:!?()]{0,120}?),")


# A number is the same number in digits or words, a percentage with "%" or "percent".
_DIGITS = {w: str(n) for w, n in lexicon.NUMBER_VALUES.items() if w != "dozen"}  # not exact
_PERCENT = re.compile(r"(?<=\d)\s?%")


def _tokens(text: str, first_is_word: bool = False) -> list[_Token]:
    """The words of one sentence, each with its kind; consecutive names ("Ilka Brand") or
    numbers ("5 million") form one run. `first_is_word`: a capitalised first word is a common
    word ("Engineer Ilka Brand said"), not part of a name."""
    stem, stop = _stem(), _stopwords()
    out: list[_Token] = []
    runs = 0
    text = _PERCENT.sub(" percent", text)
    asides = [m.span(1) for m in _ASIDE.finditer(text)]
    end = 0
    for n, m in enumerate(_WORD.finditer(text)):
        parted = bool(text[end : m.start()].strip())  # punctuation ends a name: "Velm, Ostrel"
        end = m.end()
        raw = m.group().strip("’'-").replace("’", "'").removesuffix("'s")
        if not raw:
            continue
        low = raw.lower()
        if _NUMBER.search(raw) or any(part in _NUMBER_WORDS for part in low.split("-")):
            kind = "number"
        elif raw[0].isupper() and low not in stop and not (n == 0 and first_is_word):
            kind = "name"
        elif low in stop and low not in _SPEECH:
            kind = "stop"
        else:
            kind = "word"
        run = -1
        if kind in ("name", "number"):
            same = out and out[-1].kind == kind and out[-1].run >= 0 and not parted
            if not same:
                runs += 1
            run = runs - 1
        aside = any(a <= m.start() < b for a, b in asides)
        key = _DIGITS.get(low) or (low[:-1] if low.endswith("s") and len(low) > 3 else low)
        out.append(_Token(low, key, stem(low), kind, run, aside))
    return out


@dataclass(frozen=True)
class _Pair:
    """A content word of the claim and the name or number it is said of."""

    stem: str
    words: frozenset[str]  # the unit's words (their keys)
    kind: str
    before: bool  # the content word comes before the unit in the claim
    ordered: bool  # a verb without a link ("Smith defeated Jones"): the side matters
    passed: frozenset[str]  # keys of units the claim puts between them ("the mayor of X is Y")


@dataclass
class _Claim:
    units: list[tuple[frozenset[str], str]]  # each run's words and kind
    stems: set[str]  # the content words' stems
    pairs: list[_Pair]
    negated: bool
    first: str  # its first word when capitalised and not a stopword, else ""
    # The claim read with that first word as a common word, for a passage that has it so.
    as_word: _Claim | None = None

    def reading(self, w: _Window) -> _Claim:
        if self.as_word is not None and any(
            t.word == self.first and t.kind == "word" for t in w.toks
        ):
            return self.as_word
        return self


@lru_cache(maxsize=512)
def _claim(sentence: str, first_is_word: bool = False) -> _Claim:
    toks = _tokens(sentence, first_is_word)
    runs: dict[int, list[int]] = {}
    for i, t in enumerate(toks):
        if t.run >= 0:
            runs.setdefault(t.run, []).append(i)
    units, pairs = [], []
    for idx in runs.values():
        words = frozenset(toks[i].key for i in idx)
        kind = toks[idx[0]].kind
        units.append((words, kind))
        for step, start in ((-1, idx[0] - 1), (1, idx[-1] + 1)):
            near = _neighbour(toks, start, step)
            # As in the passage, a name in an aside is not said of the words outside it.
            if near is not None and not (toks[idx[0]].aside and not toks[near[0]].aside):
                j, linked = near
                verb = bool(PAST_VERB.fullmatch(toks[j].word))
                lo, hi = sorted((start, j))
                passed = frozenset(t.key for t in toks[lo : hi + 1] if t.run >= 0)
                pairs.append(
                    _Pair(toks[j].stem, words, kind, step < 0, verb and not linked, passed)
                )
    stems = {t.stem for t in toks if t.kind == "word"}
    first = toks[0].word if toks and toks[0].kind == "name" else ""
    claim = _Claim(units, stems, pairs, negated(sentence), first)
    if first and not first_is_word:
        claim.as_word = _claim(sentence, first_is_word=True)
    return claim


def _neighbour(toks: list[_Token], i: int, step: int) -> tuple[int, bool] | None:
    """The content word next to a unit, looking one way, across small words only: (its index,
    whether a link word lies between). Across a link, other units are passed over ("the mayor
    of Velmora is Ilka Brand" says Ilka Brand is the mayor); otherwise a unit in between owns
    the word."""
    linked = False
    while 0 <= i < len(toks):
        t = toks[i]
        if t.kind == "word":
            return i, linked
        if t.kind == "stop":
            if t.word not in _SKIP:
                return None
            linked = linked or t.word in _LINKS
        elif not linked:
            return None
        i += step
    return None


@dataclass
class _Window:
    """One sentence of a passage (or a sentence and the next), ready for the claim check."""

    toks: list[_Token]
    keys: set[str]
    stems: set[str]
    negated: bool


def _window(text: str) -> _Window:
    toks = _tokens(text)
    return _Window(toks, {t.key for t in toks}, {t.stem for t in toks}, negated(text))


@dataclass
class ClaimCheck:
    """What a passage sentence must hold to support a claim.

    `max_gap`: how many content words may separate, in the passage, a word of the claim from
    the name or number it is said of. `min_words`: the share of the claim's other content words
    the sentence must hold. `neighbours`: a sentence joined with the next one counts as one.
    Fitted and checked by `bench/claim_swaps.py`.
    """

    max_gap: int = 6
    min_words: float = 1.0
    neighbours: bool = False

    def supports(self, claim: _Claim, w: _Window) -> bool:
        claim = claim.reading(w)
        if claim.negated != w.negated:
            return False
        if not all(words <= w.keys for words, _kind in claim.units):
            return False
        if claim.stems and len(claim.stems & w.stems) / len(claim.stems) < self.min_words:
            return False
        return all(self._paired(p, claim, w.toks) for p in claim.pairs)

    def _paired(self, p: _Pair, claim: _Claim, toks: list[_Token]) -> bool:
        """Somewhere in the sentence the word is said of that unit: near it, on the same side
        when the side matters, with no other name (number) between them or nearer on the
        word's other side. Units the claim itself puts between them may lie between ("the
        mayor of Velmora, Ilka Brand")."""
        named = p.passed
        at = [i for i, t in enumerate(toks) if t.key in p.words]
        for j in (i for i, t in enumerate(toks) if t.stem == p.stem):
            for i in at:
                if i == j or (p.ordered and (j < i) != p.before):
                    continue
                if toks[i].aside and not toks[j].aside:  # a name in an aside is not the subject
                    continue
                step = 1 if i > j else -1
                run = toks[i].run
                # Other words of the name the claim shortened ("Ilka" of "Ilka Brand"),
                # units the claim itself puts between them and asides are no obstacle.
                between = [
                    t
                    for t in toks[j + step : i : step]
                    if (run < 0 or t.run != run) and t.key not in named and not t.aside
                ]
                gap = 1 + sum(1 for t in between if t.kind != "stop")
                if gap > self.max_gap or any(t.kind == p.kind for t in between):
                    continue
                if _nearer_other(toks, j, -step, gap, p, claim):
                    continue
                return True
        return False


def _nearer_other(toks: list[_Token], j: int, step: int, gap: int, p: _Pair, claim: _Claim) -> bool:
    """Is another unit of the pair's kind closer to the word j on its other side, one the
    claim does not also say the word of ("Veld thanked Brand": both are)?"""
    i, dist = j + step, 0
    while 0 <= i < len(toks) and dist < gap - 1:
        t = toks[i]
        if t.kind != "stop":
            dist += 1
            if (
                t.kind == p.kind
                and t.key not in p.words
                and not any(q.stem == p.stem and t.key in q.words for q in claim.pairs)
            ):
                return True
        i += step
    return False


CLAIM_CHECK = ClaimCheck()


@dataclass
class _Evidence:
    terms: set[str]
    words: set[str]
    windows: list[_Window]


def _evidence(text: str, check: ClaimCheck = CLAIM_CHECK) -> _Evidence:
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    windows = [_window(s) for s in sentences]
    if check.neighbours:
        windows += [_window(f"{a} {b}") for a, b in zip(sentences, sentences[1:], strict=False)]
    return _Evidence(terms(text), {w.lower() for w in _WORD.findall(text)}, windows)


def supported_by(
    sentence: str, passage: _Evidence, check: ClaimCheck = CLAIM_CHECK, min_support: float = 0.0
) -> bool:
    """True when one sentence of the passage says what `sentence` says: it holds the sentence's
    names and numbers, its content words, each word next to the name or number it is said of,
    and agrees with it on negation ("charged" vs "not charged"). `min_support`: the share of
    the sentence's words the passage must hold as a whole (the check before this one)."""
    if min_support and not _covers(sentence, passage, min_support):
        return False
    claim = _claim(sentence)
    if not claim.units and not claim.stems:
        return False
    return any(check.supports(claim, w) for w in passage.windows)


def _covers(sentence: str, passage: _Evidence, min_support: float) -> bool:
    s_terms = terms(sentence)
    if not s_terms:
        return False
    have = passage.words.union(*(w.keys for w in passage.windows))
    novel = {k for k in key_tokens(sentence) if not {k, k.rstrip("s"), _DIGITS.get(k, k)} & have}
    return not novel and len(s_terms & passage.terms) / len(s_terms) >= min_support


def covers_words(sentence: str, passage_text: str, min_support: float = 0.75) -> bool:
    """The check this module made before `supported_by`, as it was: the passage holds
    `min_support` of the sentence's words and all its names and numbers, anywhere (a possessive
    in the passage hid its name). Kept to measure against."""
    s_terms = terms(sentence)
    have = {w.lower() for w in _WORD.findall(passage_text)}
    novel = {k for k in key_tokens(sentence) if k not in have and k.rstrip("s") not in have}
    return (
        bool(s_terms)
        and not novel
        and len(s_terms & terms(passage_text)) / len(s_terms) >= min_support
    )


# How far the model's own words pull the quote that replaces an unsupported sentence away from
# the passage most relevant to the question (relevance is cosine-scale, overlap a share). 0.3
# was tried: one more bundled answer lost its gold text, and RealTime QA gained one, lost one.
QUOTE_DRAFT_WEIGHT = 0.1

_LEAD_IN = re.compile(
    r"^\s*(the\s+)?(answer|response)(\s+is)?\s*:\s*|^\s*(based on|according to) the "
    r"(passages?|articles?|context)[^,]*,\s*",
    re.IGNORECASE,
)
# The model pointing at its sources inside a sentence ("..., as mentioned in the passage."): not
# part of the claim, and no passage sentence says it.
_SOURCE_ASIDE = re.compile(
    rf",?\s*\b(?:as\s+(?:mentioned|stated|noted|described|reported|said)\s+in|according\s+to)"
    rf"\s+the\s+{_SOURCE}\b(?=\s*[,.!?]|\s*$)",
    re.IGNORECASE,
)
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")


def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the passage numbers the model put on it; filler
    lead-ins ("The answer is:"), pointers to the passages ("as mentioned in the passage") and
    repeated sentences are dropped."""
    out: list[tuple[str, list[int]]] = []
    seen: set[str] = set()
    # "spoke. [1]" -> "spoke [1]." so a marker stays with the sentence it follows.
    text = _TRAILING_MARKERS.sub(r"\2\1", text)
    for s, e in sentence_spans(text):
        plain, nums = split_markers(text[s:e])
        plain = _SOURCE_ASIDE.sub("", _LEAD_IN.sub("", plain)).strip()
        if plain and plain[0].islower():
            plain = plain[0].upper() + plain[1:]
        if plain.lower() in seen:
            continue
        seen.add(plain.lower())
        if plain:
            out.append((plain, nums))
        elif out:  # a marker the tokenizer split off belongs to the sentence before
            out[-1][1].extend(nums)
    return out


class Grounder:
    """Checks each answer sentence against the passages.

    A sentence is supported when one sentence of one passage says it (`ClaimCheck`), and that
    passage holds `min_support` of its words. `relevance`, when given, scores a sentence
    against the question on the same scale as the passages' sentences: a supported sentence
    that answers something else (a tiny model often copies a neighbouring sentence) is
    replaced like an unsupported one.
    """

    def __init__(
        self,
        min_support: float = 0.75,
        max_quotes: int = 2,
        relevance: Callable[[list[str]], list[float]] | None = None,
        min_relative_relevance: float = 0.6,
        check: ClaimCheck = CLAIM_CHECK,
    ) -> None:
        self.min_support = min_support
        self.check = check
        self.max_quotes = max_quotes
        self.relevance = relevance
        self.min_relative_relevance = min_relative_relevance

    def ground(
        self,
        answer: str,
        passages: list[TextNode],
        cite_first: int | None = None,
        must_quote: str | None = None,
    ) -> tuple[str, list[Citation], int]:
        """Return (text with [n] markers, citations, number of sentences replaced).

        `cite_first` (a passage index) becomes citation [1], and when `must_quote` (a short
        answer taken from that passage) is not in the text, its sentence is quoted first, so
        the short answer shown above the text is always backed by a quote below it."""
        sentences = split_answer(answer)
        on_topic = self._on_topic([s for s, _ in sentences], passages)
        evidence = [_evidence(p.get_content(), self.check) for p in passages]
        used: dict[int, int] = {}  # passage index -> citation number
        if cite_first is not None and 0 <= cite_first < len(passages):
            used[cite_first] = 1
        else:
            cite_first = None
        quoted: set[tuple[str, int]] = set()
        parts: list[str] = []
        replaced = 0

        def mark(idx: list[int]) -> str:
            for i in idx:
                used.setdefault(i, len(used) + 1)
            return "".join(f" [{used[i]}]" for i in sorted(set(idx), key=used.__getitem__))

        best_relevance = max(
            (float(p.metadata.get("relevance", 0.0)) for p in passages), default=0.0
        )
        covered: set[str] = set()
        for (sentence, hinted), relevant in zip(sentences, on_topic, strict=True):
            support = self._support(sentence, hinted, evidence) if relevant else None
            if support is not None:
                parts.append(sentence + mark(support))
                covered |= terms(sentence)
                continue
            replaced += 1
            if len(quoted) >= self.max_quotes:
                continue
            found = self._best_quote(sentence, passages, quoted)
            if found is None:
                continue
            i, text, relevance = found
            # A second quote must be nearly as relevant as the best passage, and say something
            # the answer does not already say.
            if len(quoted) > 1 and relevance < 0.85 * best_relevance:
                continue
            t = terms(text)
            if t and len(t & covered) / len(t) >= 0.8:
                continue
            parts.append(quote(text) + mark([i]))
            covered |= t
        if (
            cite_first is not None
            and must_quote
            and must_quote not in strip_markers(" ".join(parts))
        ):
            sentence = self._sentence_holding(passages[cite_first], must_quote)
            parts.insert(0, quote(sentence) + mark([cite_first]))
        if not parts:
            found = self._best_quote("", passages, quoted)
            if found is not None:
                parts.append(quote(found[1]) + mark([found[0]]))
        order = sorted(used.items(), key=lambda x: x[1])
        citations = [citation_for(n, passages[i]) for i, n in order]
        return " ".join(parts), citations, replaced

    def _on_topic(self, sentences: list[str], passages: list[TextNode]) -> list[bool]:
        if self.relevance is None or not sentences:
            return [True] * len(sentences)
        best = max((float(p.metadata.get("relevance", 0.0)) for p in passages), default=0.0)
        scores = self.relevance(sentences)
        return [r >= self.min_relative_relevance * best for r in scores]

    def _support(
        self, sentence: str, hinted: list[int], evidence: list[_Evidence]
    ) -> list[int] | None:
        """The passage that supports the sentence: one the model named if it does, else the
        one that holds most of the sentence's words. One passage must say it all; two
        passages that each hold part of a claim do not make it."""
        n = len(evidence)
        hints = sorted({h - 1 for h in hinted if 0 < h <= n})
        for i in hints:
            if supported_by(sentence, evidence[i], self.check, self.min_support):
                return [i]
        # The passage that holds most of the sentence, not merely the first that holds
        # enough: "...closed the bridge over cracks in its piers" cites the passage that says piers.
        s_terms = terms(sentence)
        alone = [
            i for i in range(n) if supported_by(sentence, evidence[i], self.check, self.min_support)
        ]
        if alone:
            return [max(alone, key=lambda i: (len(s_terms & evidence[i].terms), -i))]
        return None

    @staticmethod
    def _sentence_holding(passage: TextNode, text: str) -> str:
        for _start, _end, _relevance, sentence in passage.metadata.get("sentences", []):
            if text in sentence:
                return sentence
        return passage.get_content()

    def _best_quote(
        self, sentence: str, passages: list[TextNode], quoted: set[tuple[str, int]]
    ) -> tuple[int, str, float] | None:
        """The passage sentence most relevant to the question, nudged towards `sentence`."""
        s_terms = terms(sentence)
        best, best_score = None, -1.0
        for i, p in enumerate(passages):
            for start, _end, relevance, text in p.metadata.get("sentences", []):
                key = (p.metadata.get("doc_id", ""), start)
                if key in quoted:
                    continue
                overlap = len(s_terms & terms(text)) / len(s_terms) if s_terms else 0.0
                score = relevance + QUOTE_DRAFT_WEIGHT * overlap
                if score > best_score:
                    best, best_score = (i, text, key, relevance), score
        if best is None:
            return None
        quoted.add(best[2])
        return best[0], best[1], best[3]


def quote(text: str) -> str:
    """A verbatim sentence as a quotation, on one line."""
    text = " ".join(text.split())
    # A footnote mark inside the article ("said [3]") must not read as one of our citations.
    text = re.sub(r"\[(\d+(?:\s*,\s*\d+)*)\]", r"(\1)", text)
    return text if text[:1] in "“\"‘'" else f"“{text}”"
