"""Answers that cannot lie about their sources.

Citations are attached here, in code: every sentence of the model's answer is tested against the
passages, and gets the markers of the passages that support it. The model's own markers are only
hints. A sentence no passage supports is replaced by a quote of the best supporting sentence, so
even a tiny model never shows an unsupported claim as a cited fact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import combinations

from llama_index.core.schema import TextNode

from rag.text import key_tokens, negated, sentence_spans, split_markers, strip_markers, terms

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


@dataclass
class _Evidence:
    terms: set[str]
    words: set[str]
    sentences: list[tuple[set[str], bool]]  # each sentence's terms, and whether it is negated


def _evidence(text: str) -> _Evidence:
    sentences = [(terms(text[a:b]), negated(text[a:b])) for a, b in sentence_spans(text)]
    return _Evidence(terms(text), {w.lower() for w in re.findall(r"[\w’'-]+", text)}, sentences)


def supported_by(sentence: str, passages: list[_Evidence], min_support: float) -> bool:
    """True when the passages hold the sentence's words and every name and number in it, and
    the passage sentence it restates agrees with it on negation ("charged" vs "not charged")."""
    s_terms = terms(sentence)
    if not s_terms:
        return False
    have_terms = set().union(*(p.terms for p in passages))
    have_words = set().union(*(p.words for p in passages))
    coverage = len(s_terms & have_terms) / len(s_terms)
    novel = {
        k for k in key_tokens(sentence) if k not in have_words and k.rstrip("s") not in have_words
    }
    if coverage < min_support or novel:
        return False
    closest = max(
        (sent for p in passages for sent in p.sentences),
        key=lambda sent: len(s_terms & sent[0]),
        default=None,
    )
    return closest is None or closest[1] == negated(sentence)


# How far the model's own words pull the quote that replaces an unsupported sentence away from
# the passage most relevant to the question (relevance is cosine-scale, overlap a share). 0.3
# was tried: one more bundled answer lost its gold text, and RealTime QA gained one, lost one.
QUOTE_DRAFT_WEIGHT = 0.1

_LEAD_IN = re.compile(
    r"^\s*(the\s+)?(answer|response)(\s+is)?\s*:\s*|^\s*(based on|according to) the "
    r"(passages?|articles?|context)[^,]*,\s*",
    re.IGNORECASE,
)
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")


def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the passage numbers the model put on it; filler
    lead-ins ("The answer is:") and repeated sentences are dropped."""
    out: list[tuple[str, list[int]]] = []
    seen: set[str] = set()
    # "spoke. [1]" -> "spoke [1]." so a marker stays with the sentence it follows.
    text = _TRAILING_MARKERS.sub(r"\2\1", text)
    for s, e in sentence_spans(text):
        plain, nums = split_markers(text[s:e])
        plain = _LEAD_IN.sub("", plain).strip()
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

    `relevance`, when given, scores a sentence against the question on the same scale as the
    passages' sentences: a supported sentence that answers something else (a tiny model often
    copies a neighbouring sentence) is replaced like an unsupported one.
    """

    def __init__(
        self,
        min_support: float = 0.75,
        max_quotes: int = 2,
        relevance: Callable[[list[str]], list[float]] | None = None,
        min_relative_relevance: float = 0.6,
    ) -> None:
        self.min_support = min_support
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
        evidence = [_evidence(p.get_content()) for p in passages]
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
        """Passage indexes that support the sentence: the model's own hints first, then any
        single passage, then any pair (a sentence may join two facts)."""
        n = len(evidence)
        hints = sorted({h - 1 for h in hinted if 0 < h <= n})
        if hints and supported_by(sentence, [evidence[i] for i in hints], self.min_support):
            return [i for i in hints if terms(sentence) & evidence[i].terms] or hints
        # The passage that holds most of the sentence, not merely the first that holds
        # enough: "...closed the bridge over cracks in its piers" cites the passage that says piers.
        s_terms = terms(sentence)
        alone = [i for i in range(n) if supported_by(sentence, [evidence[i]], self.min_support)]
        if alone:
            return [max(alone, key=lambda i: (len(s_terms & evidence[i].terms), -i))]
        # Two passages together make more words available, so the bar is higher.
        pair_bar = max(self.min_support, 0.9)
        for i, j in combinations(range(n), 2):
            if supported_by(sentence, [evidence[i], evidence[j]], pair_bar):
                return [i, j]
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
