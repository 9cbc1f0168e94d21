"""A short answer copied from the passages: a name, number, date or phrase, with its span.

A 135M model cannot be trusted to write a short answer: asked for "a phrase copied from the
passages" it mostly restates a sentence or writes "The answer is:". So code proposes and code
decides. Candidate spans are cut from the passages with regular patterns (capitalised names,
numbers with their units, dates, quoted titles, noun phrases); the question's wh-phrase says
which kinds can answer it ("who" wants a person, "how many" a number); and the survivors are
ranked by

- the model's own log-likelihood of the span as its whole reply, given the question and the
  passages (the prompt is evaluated once; each candidate costs a few tokens),
- whether the model's free-text draft mentions the span,
- where the span sits: in a relevant sentence, near the question's words, repeated across
  passages.

The text shown is always `article[start:end]` of a passage, so it is verbatim by construction.
`bench/short_answer_study.py` measures each option on RealTime QA dev.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import cast

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.schema import NodeWithScore, TextNode

from rag import lexicon
from rag.lexicon import DEMONYMS
from rag.metrics import normalize
from rag.text import PAST_VERB, sentence_spans, terms

# ---------------------------------------------------------------------------------------------
# What the question asks for

PERSON, PLACE, ORG, TITLE, NUMBER, DATE, THING, REASON, PHRASE, YESNO = (
    "person",
    "place",
    "org",
    "title",
    "number",
    "date",
    "thing",
    "reason",
    "phrase",
    "yes/no",
)
NAME_KINDS = frozenset({PERSON, PLACE, ORG, TITLE})

# Head nouns of "which X" / "what X" questions, by the kind of answer they ask for.
_HEADS = {
    PLACE: """country countries nation nations state states city cities continent region area
        island county province park town capital location territory place places neighborhood
        district border sea river ocean""",
    ORG: """team teams company companies airline airlines school university college group
        organization chain retailer network party agency brand club firm bank automaker store
        stores league carrier manufacturer restaurant restaurants publication newspaper""",
    PERSON: """person people celebrity star player singer actor actress official leader
        president politician athlete head senator ceo rapper lawmaker coach judge member
        executive musician artist author candidate governor minister justice driver""",
    TITLE: """show movie film series book song album mission role title character program""",
    NUMBER: """magnitude percentage percent number amount price cost age figure total rate
        temperature score sum fine salary budget fee revenue wage""",
    DATE: """date day year month time week""",
}
_HEAD_KIND = {w: kind for kind, words in _HEADS.items() for w in words.split()}

_NUMBER_Q = re.compile(
    r"\bhow\s+(many|much|old|long|far|big|high|tall|fast)\b|\bwhat\s+(percentage|percent)\b",
    re.I,
)
_PHRASE_ENDS = lexicon.AUXILIARIES | frozenset(
    "of in on for to from at by with that who which whose it its he she they this these".split()
)
_WHAT_BE_THE = re.compile(
    r"\bwhat\s+(?:is|was|are|were)\s+(?:the|its|his|her|their)\s+([\w’'-]+)", re.I
)


def question_kind(question: str) -> str:
    """person, place, org, title, number, date, thing, reason, phrase or yes/no: what can
    answer `question`.

    Judged from the wh-phrase of the question's last clause (news-quiz questions often start
    with a statement and end with the question)."""
    if _yes_no(question):
        return YESNO
    # The last wh-word asks; an earlier one is usually a relative ("a man, who ...").
    clause = _wh_clause(question)
    if _NUMBER_Q.search(clause):
        return NUMBER
    if re.search(r"\bwhen\b|\bhow\s+soon\b|\b(what|which)\s+(year|date|month|day)\b", clause, re.I):
        return DATE
    if re.match(r"why\b", clause, re.I):
        return REASON
    if re.search(r"\b(who|whom|whose)\b", clause, re.I):
        return PERSON
    if re.search(r"\bwhere\b", clause, re.I):
        return PLACE
    phrase = _wh_phrase(clause)
    for w in reversed(phrase):
        kind = _HEAD_KIND.get(w) or _HEAD_KIND.get(w.removesuffix("s"))
        if kind:
            return kind
    if phrase:
        return THING
    m = _WHAT_BE_THE.search(clause)
    if m:
        return _HEAD_KIND.get(m.group(1).lower(), PHRASE)
    return PHRASE


def _wh_clause(question: str) -> str:
    """The question's last clause from its last wh-word, without time phrases."""
    clause = _TIME_PHRASE.sub(" ", _last_question_clause(question))
    whs = list(re.finditer(r"\b(who|whom|whose|what|which|when|where|how)\b", clause, re.I))
    return clause[whs[-1].start() :] if whs else clause


def _wh_phrase(clause: str) -> list[str]:
    """The words after "which"/"what", up to four, ending before an auxiliary, a preposition,
    a past tense or a comma: "country" in "What country elected", "virus outbreak" in "which
    virus outbreak did ...", "team" in "Which team won", "spice" in "which spice, angering
    cooks"."""
    m = re.match(r"(which|what)\s+(of\s+the\s+following\s+)?", clause, re.I)
    phrase: list[str] = []
    if not m:
        return phrase
    aside = re.sub(r"\([^)]*\)", " ", clause[m.end() :])  # "Which (European) country"
    head = re.split(r"[,;:!?]", aside, maxsplit=1)[0]
    for w in re.findall(r"[\w’'-]+", head)[:4]:
        low = w.lower()
        if low in _PHRASE_ENDS or (phrase and (low.endswith("ed") or PAST_VERB.fullmatch(low))):
            break
        phrase.append(low)
    return phrase


def asked_type(question: str) -> str:
    """What the question's wh-phrase names as the kind of thing asked for: "virus outbreak" in
    "which virus outbreak ...", "" when it names none."""
    return " ".join(_wh_phrase(_wh_clause(question)))


# "Has X accepted ...?" is answered yes or no, which no span of a passage is. Not a request
# ("Can you name the CEO?") nor a choice ("Is Apple or Microsoft bigger?"): those want a span.
_YES_NO = re.compile(
    r"\s*(?:is|are|was|were|has|have|had|did|does|do|will|would|can|could|should)\b", re.I
)
_REQUEST = re.compile(r"\s*(?:can|could|would|will)\s+(?:you|we)\b", re.I)
_CHOICE = re.compile(r"\bor\b", re.I)


def _yes_no(question: str) -> bool:
    return bool(
        _YES_NO.match(question)
        and not WH_WORD.search(question)
        and not _REQUEST.match(question)
        and not _CHOICE.search(question)
    )


# "How much did the council spend", "what is the budget": an amount of money, or a percentage
# ("how much did spending rise": 0.4%), not any number.
_MONEY_HEADS = frozenset("price cost budget salary fee fine revenue wage".split())
_HOW_MUCH_MONEY = re.compile(
    r"\bhow\s+much\b(?:\s+[\w’'-]+){0,8}?\s+(?:costs?|pay|paid|spend|spent|charged?|charges|earn"
    r"|earned|worth|sold|sell|bid|fetch|fetched)\b",
    re.I,
)
_CURRENCY = lexicon.CURRENCY_PATTERN
_CURRENCY_WORD = re.compile(_CURRENCY, re.I)
_CURRENCY_END = re.compile(rf"\b{_CURRENCY}$", re.I)
_MONEY_BEFORE = re.compile(
    rf"(?:[{lexicon.CURRENCY_SYMBOLS}]"
    rf"|\b(?:{lexicon.alternation(lexicon.CURRENCY_CODES)}|Rs\.?|R\$|US\$|A\$|C\$)\s?)$"
)
_MONEY_AFTER = re.compile(
    rf"\s*(?:(?:million|billion|trillion|thousand|crore|lakh|bn|m)\s+)?(?:[A-Z][\w.]*\s+){{0,2}}"
    rf"{_CURRENCY}\b",
    re.I,
)
_PERCENT_AFTER = re.compile(r"\s*(?:percent|per\s+cent|percentage\s+points?)\b", re.I)


def asks_money(question: str) -> bool:
    """Does the question ask for an amount of money ("how much did it cost")?"""
    if question_kind(question) != NUMBER:
        return False
    clause = _last_question_clause(question)
    if _HOW_MUCH_MONEY.search(clause):
        return True
    m = _WHAT_BE_THE.search(clause) or re.search(r"\b(?:what|which)\s+([\w-]+)", clause, re.I)
    return m is not None and m.group(1).lower().removesuffix("s") in _MONEY_HEADS


# The words `text.has_answer_type` looks for in an answer, by the kind of span asked for.
_WORDS_OF_KIND = {
    NUMBER: "number",
    DATE: "date",
    PERSON: "name",
    PLACE: "name",
    ORG: "name",
    TITLE: "name",
}


def answer_type(question: str) -> str:
    """ "money", "number", "date", "name" or "any": what kind of words an answer to `question`
    must hold, judged by the same reading of the question that picks short-answer spans."""
    if asks_money(question):
        return "money"
    return _WORDS_OF_KIND.get(question_kind(question), "any")


def is_money(text: str, start: int, end: int) -> bool:
    """Is text[start:end] an amount of money ("$5", "€3.5bn", "20 million US dollars", "95p")
    or a percentage, which answers "how much did the price rise"?"""
    if not 0 <= start < end <= len(text):
        return False
    span = text[start:end]
    return bool(
        span[:1] in lexicon.CURRENCY_SYMBOLS
        or _MONEY_BEFORE.search(text, max(0, start - 4), start)
        or _MONEY_AFTER.match(text, end)
        or re.fullmatch(r"\d[\d.,]*p", span)
        or _CURRENCY_END.search(span)
        or span.endswith("%")
        or _PERCENT_AFTER.match(text, end)
    )


# "When will X decide", "where will it be held": a future event. A date or place in a sentence
# that tells only of the past ("confirmed on Monday") is when or where something else was.
_FUTURE_Q = re.compile(
    r"\b(?:will|going\s+to|set\s+to|expected\s+to|scheduled\s+to|plans?\s+to|planning\s+to|"
    r"about\s+to)\b",
    re.I,
)
_FUTURE = re.compile(
    r"\b(?:will|would|shall|going\s+to|set|expected|scheduled|slated|due|plans?|planned|"
    r"planning|upcoming|next|later|coming|soon|is\s+to|are\s+to|to\s+be)\b|\w[’']ll\b",
    re.I,
)
_PAST = re.compile(r"\b(?:was|were|had|did|ago|yesterday)\b", re.I)
# "the proposed summit": a participle after a determiner describes; it is no past tense.
_DETERMINER_BEFORE = re.compile(r"\b(?:the|a|an|its|his|her|their|this|that|[’']s)\s*$", re.I)


def asks_future(question: str) -> bool:
    """Does a "when" or "where" question ask about something still to happen?"""
    clause = _last_question_clause(question)
    # "When did the city unveil plans to build it?" asks about the unveiling, in the past.
    return (
        question_kind(question) in (DATE, PLACE)
        and bool(_FUTURE_Q.search(clause))
        and not re.search(r"\b(?:did|was|were|had)\b", clause, re.I)
    )


def tells_only_past(sentence: str) -> bool:
    """Does the sentence speak only of the past: a past tense and nothing of the future or of
    a schedule? Present tense ("The summit takes place on June 4") is not past."""
    if _FUTURE.search(sentence):
        return False
    if _PAST.search(sentence):
        return True
    return any(
        not _DETERMINER_BEFORE.search(sentence, max(0, m.start() - 8), m.start())
        for m in PAST_VERB.finditer(sentence)
    )


# A name after a person's title ("spokeswoman Ilse Varga", "Governor Dahl", "foreign minister
# Lars Holm") is a person; the title in either case, as house styles differ.
_PERSON_TITLE = re.compile(
    rf"(?:\b{lexicon.alternation(lexicon.TITLE_ABBREVIATIONS, capitalised=True)}\."
    rf"|\b{lexicon.alternation(lexicon.PERSON_TITLES)}|\b"
    rf"{lexicon.alternation(lexicon.PERSON_TITLES, capitalised=True)})"
    r"\s+([A-Z][\w-]+(?:\s+[A-Z][\w-]+)?)"
)


def _people(texts: Sequence[str], surnames: bool) -> set[str]:
    """Names the passages give a person's title; with `surnames`, also by the last word."""
    out: set[str] = set()
    for text in texts:
        for m in _PERSON_TITLE.finditer(text):
            name = normalize(m.group(1))
            if name:
                out |= {name, name.split()[-1]} if surnames else {name}
    return out


_HOW_MANY = re.compile(r"\bhow\s+many\s+((?:[\w’'-]+\s*){1,3})", re.I)


def count_unit(question: str) -> set[str]:
    """What "how many X" counts: the terms of X ("confirmed flu cases"), up to the verb."""
    m = _HOW_MANY.search(question)
    if not m:
        return set()
    words: list[str] = []
    for w in m.group(1).split():
        if w.lower() in _PHRASE_ENDS or _stopword(w):
            break
        words.append(w)
    return terms(" ".join(words).replace("-", " "))  # "e-bikes" as mentions_unit reads text


def mentions_unit(unit: set[str], text: str) -> bool:
    """Does `text` speak of what "how many" counts (`count_unit`)? Hyphens split words, so
    "12-lane" speaks of lanes."""
    return bool(unit & terms(text.replace("-", " ")))


# "this week", "on Tuesday": when the question is set, not what it asks for.
_TIME_PHRASE = re.compile(
    r"\b(this|last|next|that|earlier\s+this|later\s+this)\s+(week|weekend|month|year|summer|"
    rf"fall|spring|winter)\b|\bon\s+{lexicon.WEEKDAY_PATTERN}\b"
    r"|\b(recently|now|today|so\s+far)\b",
    re.I,
)


def _last_question_clause(question: str) -> str:
    a, b = last_question_span(question)
    return question[a:b]


WH_WORD = re.compile(r"\b(who|whom|whose|what|which|when|where|how|why)\b", re.I)


def last_question_span(question: str) -> tuple[int, int]:
    """(start, end) of the last sentence that asks (holds a wh-word); the whole question when
    none does."""
    for s, e in reversed(sentence_spans(question)):
        if WH_WORD.search(question, s, e):
            return s, e
    return 0, len(question)


_MONTH = lexicon.MONTH_PATTERN
_WEEKDAY = lexicon.WEEKDAY_PATTERN
_DATE = re.compile(
    # Day first ("12 December 2019", "the 11th of September"), as much of the press writes it.
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b\.?(?:,?\s+\d{{4}})?\b"
    r"|\b(?:19|20)\d\d-\d\d-\d\d\b|\b\d{1,2}/\d{1,2}/(?:19|20)?\d\d\b"
    rf"|\b(?:(?:early|mid|late)[- ])?{_MONTH}\.?(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?"
    r"(?:,?\s+\d{4})?\b"
    rf"|\b{_WEEKDAY}\b"
    r"|\b(?i:next|last|this|later\s+this|early\s+next)\s+(?i:week|month|year|fall|spring|"
    r"summer|winter|weekend)\b"
    r"|\b(?:19|20)\d\d\b"
)
_NUMBER_WORDS = lexicon.NUMBER_WORDS | {"half"}
_HAS_NUMBER = re.compile(r"\d")

# "Which day" wants a day ("Monday", "June 4"); "on what date" a calendar date ("June 4"). A
# month or a year alone ("March 2021") is neither.
_CALENDAR_DAY = (
    rf"\b{_MONTH}\.?\s+\d{{1,2}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b"
    r"|\d\d-\d\d-\d\d|\d/\d"
)
_CALENDAR_DATE = re.compile(_CALENDAR_DAY, re.I)
_ANY_DAY = re.compile(
    rf"{_CALENDAR_DAY}|\b{_WEEKDAY}\b|\b(?:today|tomorrow|yesterday|tonight)\b", re.I
)


def asks_day(question: str) -> str:
    """ "date" when a date question names a calendar date as what it wants ("on what date"),
    "day" when it names a day ("which day"), "" otherwise ("when", "which month")."""
    if question_kind(question) != DATE:
        return ""
    phrase = _wh_phrase(_wh_clause(question))
    return "date" if "date" in phrase else "day" if "day" in phrase else ""


def names_day(span: str, wanted: str) -> bool:
    """Does a date span name the day `asks_day` wants: "June 4" a date, "Monday" a day?"""
    if not wanted:
        return True
    return bool((_CALENDAR_DATE if wanted == "date" else _ANY_DAY).search(span))


def candidate_kind(text: str) -> str:
    """The kind of a candidate span, from its form alone: number, date, name or phrase."""
    t = text.strip()
    if _DATE.fullmatch(t):
        return DATE
    words = t.lower().replace("-", " ").split()
    if words and all(w in _NUMBER_WORDS or w in _SCALE for w in words):
        return NUMBER  # "Seventeen", "Twelve million": a count that opens a sentence is no name
    if t[:1].isupper() or t[:1] in '“"‘':
        return "name"  # "Apollo 11", "XB.7" are names that hold a number
    if any(w[:1].isupper() for w in t.split()[1:]):
        return "name"  # "12 Monkeys", "2022 World Cup": a name that opens with a number
    if _HAS_NUMBER.search(t) or any(w in _NUMBER_WORDS for w in words):
        return NUMBER
    return PHRASE


def fits_question(question: str, candidate: str | ShortAnswer) -> bool:
    """Could `candidate` answer `question`, by its kind? "who" needs a name, "how many" a
    number, "when" a date; and an answer cannot be made only of the question's own words."""
    text = candidate.text if isinstance(candidate, ShortAnswer) else candidate
    if not text.strip() or _only_question_words(text, question):
        return False
    return _kind_fits(question_kind(question), candidate_kind(text))


def _kind_fits(wanted: str, have: str) -> bool:
    if wanted in NAME_KINDS:
        return have == "name"
    if wanted == NUMBER:
        return have == NUMBER
    if wanted == DATE:
        return have == DATE
    if wanted == REASON:  # "why": a cause is a phrase ("brake faults"), not a name or a count
        return have == PHRASE
    if wanted == THING:  # "which holiday", "which change": not a bare number or date
        return have not in (NUMBER, DATE)
    # "yes" or "no" is not in the passages (the quotes answer it); a phrase can be any span.
    return wanted != YESNO


# Words that introduce a cause right before a phrase: "withdrawn over brake faults", "closed due
# to flooding". Not "as" or "after", which far more often tell when, nor a bare "because",
# whose clause's subject ("because engineers found cracks") is not the cause.
_CAUSE_BEFORE = re.compile(
    r"\b(?:because\s+of|due\s+to|owing\s+to|thanks\s+to|over|amid|citing|caused\s+by"
    r"|as\s+a\s+result\s+of|blamed\s+on|fears?\s+of|concerns?\s+(?:about|over))"
    r"\s+(?:(?:the|a|an|its|their|his|her)\s+)?$",
    re.I,
)


_TIME_HEADS = frozenset(
    _HEADS[DATE].split()
    + """weekend weekends days weeks months years decade decades summer winter spring autumn
    fall season night nights period past holiday holidays next last coming first recent
    following previous same term quarter half course""".split()
)


def _only_question_words(text: str, question: str) -> bool:
    return _echo(text, _asked(question)) == 1.0


def _asked(question: str) -> set[str]:
    """The question's words, as written and stemmed."""
    return set(normalize(question).split()) | terms(question)


def _echo(text: str, asked: set[str]) -> float:
    """The share of the span's words that the question (its `_asked` words) already says."""
    words = normalize(text).split()
    if not words:
        return 1.0
    return sum(w in asked or next(iter(terms(w)), w) in asked for w in words) / len(words)


# ---------------------------------------------------------------------------------------------
# Candidate spans

_TITLES = r"(?:Mr|Mrs|Ms|Dr|Rep|Sen|Gov|Lt|Gen|Col|St|Jr|Sr|Prof|Rev|Sgt|Capt|Mt|Ft|No)\."
_TOKEN = re.compile(
    rf"(?:[A-Z]\.){{2,}}"  # U.S., U.K.
    rf"|{_TITLES}"  # abbreviations keep their period
    r"|[$€£¥₹]?\d+(?:[.,]\d+)*(?:%|-[a-z]+|(?:bn|tn|m|k|p)\b)?"  # $5.02, 10,000, 60%, €3bn
    r"|[^\W\d_][\w’'&-]*(?:\.\d+)?",  # words, with hyphens and apostrophes; XB.7
    re.UNICODE,
)
_CONNECTORS = frozenset({"of", "and", "&", "de", "del", "la", "von", "van", "for"})
_SCALE = frozenset(lexicon.SCALES) | {"percent"}
_QUOTED = re.compile(r"[“\"]([^”\"\n]{2,80})[”\"]")
# A possessive ending is not part of the name: "New Zealand's" -> "New Zealand".
_POSSESSIVE = re.compile(r"[’']s?$")
MAX_NAME_WORDS = 6  # longer capitalised runs are headlines, not names
MAX_PHRASE_WORDS = 4  # noun phrases longer than this are rarely a quiz answer
MAX_QUOTE_WORDS = 8  # a longer quotation is speech, not a title


@dataclass
class Candidate:
    text: str
    passage: int  # 0-based index into the passages
    start: int  # offsets in the passage text
    end: int
    kind: str
    sentence: int  # index of its sentence in the passage
    relevance: float = 0.0  # its sentence's relevance to the question
    proximity: float = 0.0  # 1 next to a question word, falling with distance
    count: int = 1  # occurrences across the passages
    draft: float = 0.0  # share of its words in the model's draft
    whole: bool = True  # a whole name, not a piece of a longer one
    echo: float = 0.0  # share of its words the question already says
    counts: bool = True  # a number whose sentence names what "how many" counts
    cover: float = 0.0  # share of the question's terms in its sentence
    near: float = 0.0  # share of the question's terms close around it
    fits: bool = True
    refined: bool = False  # of the kind asked, but not the money, tense or place it wants
    type_fit: float = 0.0  # closeness in meaning to what the wh-phrase names
    prior: float = 0.0
    loglik: float | None = None
    score: float = 0.0


@dataclass(frozen=True)
class _Tok:
    text: str
    start: int
    end: int


def _tokens(text: str, base: int) -> list[_Tok]:
    return [_Tok(m.group(), base + m.start(), base + m.end()) for m in _TOKEN.finditer(text)]


def _capitalised(tok: _Tok) -> bool:
    c = tok.text[:1]
    return c.isupper() or (c.isdigit() and not tok.text.startswith("$"))


def _stopword(word: str) -> bool:
    from rag.text import _stopwords

    # "No." is an abbreviation token, and still the stopword "no" when it stands alone.
    return word.lower().rstrip(".") in _stopwords()


def _glued(text: str, tok: _Tok) -> bool:
    """A number glued to letters is part of a word ("4moms", "3M"), not a count."""
    return tok.text[-1:].isdigit() and text[tok.end : tok.end + 1].isalpha()


def _joined(text: str, a: _Tok, b: _Tok) -> bool:
    """Are two tokens adjacent words of one phrase (only a space or hyphen between)?"""
    gap = text[a.end : b.start]
    return gap in {" ", "-", " & "} or (gap == "" and b.text[:1] in "-")


def _bridges(text: str, toks: list[_Tok], j: int) -> bool:
    """Does the connector at toks[j] join two parts of one name ("Lord of the Flies")?"""
    low = toks[j].text.lower()
    if low not in _CONNECTORS and not (low == "the" and toks[j - 1].text.lower() in _CONNECTORS):
        return False
    nxt = toks[j + 1] if j + 1 < len(toks) else None
    if nxt is None or not _joined(text, toks[j], nxt):
        return False
    return _capitalised(nxt) or (nxt.text == "the" and _bridges(text, toks, j + 1))


def _spans_in_sentence(
    text: str,
    s0: int,
    s1: int,
    lower_words: frozenset[str] = frozenset(),
    inner_caps: frozenset[str] = frozenset(),
) -> list[tuple[int, int, str]]:
    """(start, end, form) of candidate spans in text[s0:s1]; form is name/number/date/quote/np."""
    out: list[tuple[int, int, str]] = []
    toks = _tokens(text[s0:s1], s0)
    # Capitalised runs, joined by connectors ("Bank of Lindholm", "Marks & Spencer"); a
    # sentence-initial stopword ("The", "In") is not part of a name.
    i = 0
    while i < len(toks):
        if (
            not _capitalised(toks[i])
            or (_stopword(toks[i].text) and toks[i].text != "US")
            or _glued(text, toks[i])
        ):
            i += 1
            continue
        run = [toks[i]]
        j = i + 1
        while (
            j < len(toks)
            and _joined(text, run[-1], toks[j])
            or (j < len(toks) and text[run[-1].end : toks[j].start] == " " and toks[j].text == "&")
        ):
            t = toks[j]
            if _capitalised(t) and not _stopword(t.text) or _bridges(text, toks, j):
                run.append(t)
            else:
                break
            j += 1
        # A capitalised first word of a sentence that the passages also use in lower case
        # ("Prices rose") is an ordinary word, not a name.
        if run[0].start == s0 and (
            run[0].text.lower() in lower_words or (len(run) == 1 and run[0].text not in inner_caps)
        ):
            # Nor is a lone capitalised first word ("Everyone agreed") unless the passages
            # also capitalise it mid-sentence.
            run = run[1:]
            if not run:
                i = j
                continue
        run = run[:MAX_NAME_WORDS]
        # The whole run and its ends: "Harbour Master Ilse Varga" is also "Ilse
        # Varga", "Kellbrook National Park" also "Kellbrook"; "Norway and Chile" is also
        # "Norway" and "Chile". Inner pieces ("Master Ilse") are not names.
        pieces: list[list[_Tok]] = [[]]
        for t in run:
            if t.text.lower() in {"and"}:  # a list of names, not one name ("&" is in one)
                pieces.append([])
            else:
                pieces[-1].append(t)
        spans = {(run[0], run[-1])} if run else set()
        for piece in [run, *pieces] if len(pieces) > 1 else [run]:
            for k in range(len(piece)):
                spans.add((piece[k], piece[-1]))
                spans.add((piece[0], piece[k]))
        # In text order: a set of tokens iterates in hash order, which changes from run to run.
        for first, last in sorted(spans, key=lambda fl: (fl[0].start, fl[1].end)):
            if {first.text.lower(), last.text.lower()} & (_CONNECTORS | {"the"}):
                continue
            whole = first is run[0] and last is run[-1]
            out.append((first.start, last.end, "name" if whole else "part"))
        i = j
    # Numbers with their currency and scale: "$4 million", "3 billion", "45%", "7.2".
    for k, t in enumerate(toks):
        word = t.text.lower()
        # "one of the biggest" picks something out; it counts nothing ("only one of" does).
        one_of = (
            word == "one"
            and k + 1 < len(toks)
            and toks[k + 1].text.lower() == "of"
            and not (k > 0 and toks[k - 1].text.lower() in {"only", "just", "exactly"})
        )
        if (_HAS_NUMBER.search(t.text[:2]) and not _glued(text, t)) or (
            word in (_NUMBER_WORDS - _SCALE) and not one_of
        ):
            out.append((t.start, t.end, "number"))
            end = k
            if k + 1 < len(toks) and toks[k + 1].text.lower() in _SCALE:
                end = k + 1
                out.append((t.start, toks[end].end, "number"))
            # "73 cents", "4 million euros": the amount with its currency.
            if end + 1 < len(toks) and _CURRENCY_WORD.fullmatch(toks[end + 1].text):
                out.append((t.start, toks[end + 1].end, "number"))
    for m in _DATE.finditer(text, s0, s1):
        out.append((m.start(), m.end(), "date"))
    for m in _QUOTED.finditer(text, s0, s1):
        inner = m.group(1).strip(" ,.!?")
        words = inner.split()
        # A quoted title has a content word; “No,” or “We will” is speech, not an answer.
        if 0 < len(words) <= MAX_QUOTE_WORDS and not all(_stopword(w) for w in words):
            a = m.start(1) + m.group(1).find(inner)
            out.append((a, a + len(inner), "quote"))
    # Noun phrases, roughly: runs of lower-case content words ("storm repairs", "fishing boats").
    phrase: list[_Tok] = []
    for tok in [*toks, None]:
        if (
            tok is not None
            and _np_word(tok.text)
            and (not phrase or _joined(text, phrase[-1], tok))
        ):
            phrase.append(tok)
            continue
        for a in range(len(phrase)):
            for b in range(a, min(len(phrase), a + MAX_PHRASE_WORDS)):
                if not _VERBISH.search(phrase[b].text):
                    out.append((phrase[a].start, phrase[b].end, "np"))
        phrase = [tok] if tok is not None and _np_word(tok.text) else []
    return out


# Past tenses and adverbs end a noun phrase badly ("prices rose", "quickly"): without a
# tagger, the suffix is the best cheap signal.
_VERBISH = re.compile(r"\w{3,}(ed|ly)$")


def _np_word(word: str) -> bool:
    return (
        word[:1].islower()
        and len(word) > 2
        and not _stopword(word)
        and word not in _NUMBER_WORDS
        and not word.startswith(("http", "www"))
    )


def _sentences_of(p: TextNode) -> list[tuple[int, int, float]]:
    """(start, end, relevance) of each sentence of the passage, in passage offsets."""
    base = p.start_char_idx or 0
    text = p.get_content()
    meta = p.metadata.get("sentences") or []
    spans = []
    for s in meta:
        a, b = int(s[0]) - base, int(s[1]) - base
        if 0 <= a < b <= len(text):
            spans.append((a, b, float(s[2])))
    if spans:
        return spans
    rel = float(p.metadata.get("relevance", 0.0))
    return [(a, b, rel) for a, b in sentence_spans(text)]


def candidates(question: str, passages: Sequence[NodeWithScore | TextNode]) -> list[Candidate]:
    """Every candidate span of the passages once (by normalised text), at its best occurrence,
    with the features the rankers use."""
    wanted = question_kind(question)
    q_terms = terms(question)
    asked = _asked(question)
    unit = count_unit(question) if wanted == NUMBER else set()
    money = asks_money(question)
    future = asks_future(question)
    day = asks_day(question)
    found: dict[str, Candidate] = {}
    given_as_cause: set[str] = set()  # "why": spans a passage gives as a cause somewhere
    nodes = _nodes(passages)
    # "CEO Michael Dell": a person, though "Dell" may be the company asked for.
    people = (
        _people([p.get_content() for p in nodes], surnames=wanted == PLACE)
        if wanted in (PLACE, ORG)
        else set()
    )
    lower_words = frozenset(
        w for p in nodes for w in re.findall(r"\b[a-z][\w’'-]*", p.get_content())
    )
    inner_caps = frozenset(
        m.group(1)
        for p in nodes
        for m in re.finditer(r"[\w,;]\s+([A-Z][\w’'&.-]*)", p.get_content())
    )
    for pi, p in enumerate(nodes):
        text = p.get_content()
        for si, (s0, s1, relevance) in enumerate(_sentences_of(p)):
            # Where the question's words are in this sentence, for proximity.
            anchors = [t.start for t in _tokens(text[s0:s1], s0) if terms(t.text) & q_terms]
            # "How many bridges": a number in a sentence without bridges may count something else.
            counts_unit = not unit or mentions_unit(unit, text[s0:s1])
            tense_fits = not future or not tells_only_past(text[s0:s1])
            cover = len(q_terms & terms(text[s0:s1])) / max(1, len(q_terms))
            for a, b, form in _spans_in_sentence(text, s0, s1, lower_words, inner_caps):
                span = _POSSESSIVE.sub("", text[a:b]) if form in {"name", "part"} else text[a:b]
                span = span.rstrip(".,;:")
                b = a + len(span)
                key = normalize(span)
                echo = _echo(span, asked)
                if not key or echo == 1.0:  # only the question's own words
                    continue
                kind = candidate_kind(span) if form != "quote" else "name"
                near = min((abs(x - a) for x in anchors), default=None)
                proximity = 0.0 if near is None else 1.0 / (1.0 + near / 40.0)
                c = Candidate(span, pi, a, b, kind, si, relevance, proximity)
                c.whole = form != "part"
                c.echo = echo
                c.cover = cover
                around = text[max(s0, a - NEAR_CHARS) : a] + " " + text[b : min(s1, b + NEAR_CHARS)]
                c.near = len(q_terms & terms(around)) / max(1, len(q_terms))
                # Of the kind asked, but not what the question narrows it to.
                c.refined = _kind_fits(wanted, kind) and not (
                    tense_fits
                    and (not money or is_money(text, a, b))
                    and (kind != DATE or names_day(span, day))
                    and not (wanted == PLACE and key in DEMONYMS)
                    and key not in people
                )
                c.fits = _kind_fits(wanted, kind) and not c.refined
                c.counts = kind != NUMBER or counts_unit
                # A phrase, not a name ("over the Danube" is a place), nor a time ("over the
                # weekend", "over the next three months"), next to the question's words: "took
                # over the ministry" in a sentence about something else gives no cause.
                if (
                    wanted == REASON
                    and c.fits
                    and c.near > 0
                    and not _TIME_HEADS.intersection(key.split())
                    and _CAUSE_BEFORE.search(text, max(s0, a - NEAR_CHARS), a)
                ):
                    given_as_cause.add(key)
                old = found.get(key)
                if old is None:
                    found[key] = c
                    continue
                old.count += 1
                if (relevance, proximity) > (old.relevance, old.proximity):
                    c.count = old.count
                    found[key] = c
    # "Why were the trams withdrawn?": when a passage gives a cause ("withdrawn over brake faults"),
    # only a cause answers; other phrases ("operators") merely sit near the question's words.
    # Not `refined`: passages that give no cause are not a wrong kind, so nothing is refused.
    if given_as_cause:
        for key, c in found.items():
            c.fits = c.fits and key in given_as_cause
    return list(found.values())


def _nodes(passages: Sequence[NodeWithScore | TextNode]) -> list[TextNode]:
    # A NodeWithScore holds a BaseNode; the passages given here are always text chunks.
    return [cast(TextNode, p.node) if isinstance(p, NodeWithScore) else p for p in passages]


# ---------------------------------------------------------------------------------------------
# Ranking

# Weights of the ranking features, set on RealTime QA dev (bench/short_answer_study.py); they
# are general preferences (type fit, relevance, draft agreement), not fitted to any item.
W_RELEVANCE = 1.0
W_PROXIMITY = 0.5
W_COUNT = 0.15
W_DRAFT = 1.0
W_FITS = 1.0
W_LOGLIK = 0.5
W_WHOLE = 0.3
# An answer rarely repeats the question ("Game 3 of the county cup" for "which team won the
# county cup"); a span is marked down by the share of its words the question says. Set by
# re-ranking the stored candidates of both eval sets (weights 1, 1.5, 2, 3, 4): 2 gave the best
# mean short-answer F1 (gold 0.35 -> 0.39, RealTime QA dev 0.41 -> 0.45).
W_ECHO = 2.0
# The answer sits in a sentence that says much of what the question says, and close to those
# words: "Norvik Foods is accused of dumping waste" for "which company is accused of dumping
# waste". NEAR_CHARS is about ten words either side. Weights from the same
# re-ranking (cover 0/0.5/1/2 x near 0/0.5/1/2/3/4): short-answer F1 rose on both sets across
# cover 1-2 and near 2-3 (gold 0.39 -> 0.55, RealTime QA dev 0.45 -> 0.50); the plateau's
# lower corner is taken.
W_COVER = 1.0
# "How many bridges": a number in a sentence about bridges is preferred, as strongly as a span
# of the asked kind; a preference, since "the death toll rose to 2,000" counts people too.
W_UNIT = 1.0
W_NEAR = 2.0
NEAR_CHARS = 60
# Closeness in meaning to what "which X" names: the wh-word's kinds are coarse (a condiment, a
# virus and a menu item are all "things"), the embedding model knows mustard is a condiment.
# Set on both eval sets' stored rankings (the weight shifted no gold answer from 1 to 1.5 and
# RealTime QA's best from 1.5 to 3); the full evals are the measure.
W_TYPE = 1.5
MAX_SCORED = 20  # candidates the model scores: each costs a forward pass of a few tokens


def can_score(llm) -> bool:
    """Can `llm` give log-likelihoods of replies (the bundled llama.cpp model can)?"""
    return callable(getattr(llm, "score_continuations", None))


def _draft_overlap(c: Candidate, draft_words: set[str]) -> float:
    words = normalize(c.text).split()
    return sum(w in draft_words for w in words) / len(words) if words else 0.0


def _prior(c: Candidate) -> float:
    return (
        W_RELEVANCE * c.relevance
        + W_PROXIMITY * c.proximity
        + W_COUNT * math.log(c.count)
        + W_FITS * (1.0 if c.fits else 0.0)
        + W_WHOLE * (1.0 if c.whole else 0.0)
        - W_ECHO * c.echo
        + W_UNIT * (1.0 if c.counts else 0.0)
        + W_COVER * c.cover
        + W_NEAR * c.near
    )


SHORT_SYSTEM = (
    "Answer the question with a short phrase copied from the passages: a name, number, date "
    "or a few words. No sentence."
)
SHORT_USER = "Passages:\n{context}\n\nQuestion: {question}"


def scoring_messages(
    question: str, passages: Sequence[NodeWithScore | TextNode]
) -> list[ChatMessage]:
    """The prompt the candidates are scored against: the passages, the question, and the reply
    slot where a short answer goes."""
    blocks = [f"[{n}] {p.get_content()}" for n, p in enumerate(_nodes(passages), start=1)]
    return [
        ChatMessage(role=MessageRole.SYSTEM, content=SHORT_SYSTEM),
        ChatMessage(
            role=MessageRole.USER,
            content=SHORT_USER.format(context="\n\n".join(blocks), question=question),
        ),
    ]


# How a span is scored as the model's reply. "bare": the span is the whole reply; "eot": and
# then the turn ends; "lead": after "The answer is:" and followed by "." - the form this model
# itself uses for short answers, so a span is judged in the words it would write it in.
STYLES = {
    "bare": {"lead": "", "end": "", "end_turn": False},
    "eot": {"lead": "", "end": "", "end_turn": True},
    "lead": {"lead": "The answer is:", "end": ".", "end_turn": False},
}
CALIBRATION_MESSAGES = [ChatMessage(role=MessageRole.USER, content="Answer:")]


def _loglik(llm, messages: list[ChatMessage], texts: list[str], style: str) -> list[float]:
    """Mean log-likelihood per token of each text as the model's reply."""
    kw = STYLES[style]
    replies = [f" {t}" if kw["lead"] else t for t in texts]
    return [s.mean for s in llm.score_continuations(messages, replies, **kw)]


@dataclass
class ShortAnswer:
    text: str
    passage: int  # 1-based passage number
    doc_id: str
    start: int  # character span in the cleaned article
    end: int
    kind: str
    score: float
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def rank(
    question: str,
    passages: Sequence[NodeWithScore | TextNode],
    draft: str = "",
    llm=None,
    *,
    method: str = "combined",
    messages: list[ChatMessage] | None = None,
    max_scored: int = MAX_SCORED,
    style: str = "lead",
    calibrate: bool = False,
    embed: BaseEmbedding | None = None,
) -> list[Candidate]:
    """Candidates, best first, by `method`:

    - "draft": spans the model's draft mentions, earliest in the draft first (aligning the
      draft to the passages).
    - "prior": type fit, sentence relevance, nearness to the question's words, repetition.
    - "loglik": the model's log-likelihood of each span as its reply (no type filter).
    - "typed-loglik": the same over the spans that fit the question's kind.
    - "combined": prior + draft agreement + log-likelihood, over spans that fit.

    With `embed`, "prior" and "combined" also weigh how close each span is in meaning to the
    thing the wh-phrase names ("which condiment": "mustard", not "shelves").
    """
    cands = candidates(question, passages)
    draft_norm = f" {normalize(draft)} "
    draft_words = set(draft_norm.split())
    for c in cands:
        c.draft = _draft_overlap(c, draft_words)
        c.prior = _prior(c)
    if method == "draft":
        hits = [c for c in cands if f" {normalize(c.text)} " in draft_norm]
        for c in hits:
            c.score = -draft_norm.find(f" {normalize(c.text)} ") + 0.01 * len(c.text)
        return sorted(hits, key=lambda c: -c.score)
    if method in {"typed-loglik", "combined"}:
        cands = [c for c in cands if c.fits]
    pool = sorted(cands, key=lambda c: -(c.prior + W_DRAFT * c.draft))
    if method == "prior" or not can_score(llm):
        # A remote model gives no log-likelihoods: rank by the prior and the draft alone.
        for c in pool:
            c.score = c.prior + (W_DRAFT * c.draft if draft else 0.0)
        _add_type_fit(question, pool[:max_scored], embed)
        return sorted(pool, key=lambda c: -c.score)
    pool = pool[:max_scored]
    if not pool:
        return []
    msgs = messages or scoring_messages(question, passages)
    texts = [c.text for c in pool]
    scores = _loglik(llm, msgs, texts, style)
    if calibrate:
        # Subtract how likely the span is with no passages and no question: a common word
        # is likely anywhere, the answer only here.
        base = _loglik(llm, CALIBRATION_MESSAGES, texts, style)
        scores = [s - b for s, b in zip(scores, base, strict=True)]
    for c, s in zip(pool, scores, strict=True):
        c.loglik = s
        c.score = (
            c.loglik if method != "combined" else c.prior + W_DRAFT * c.draft + W_LOGLIK * c.loglik
        )
    if method == "combined":
        _add_type_fit(question, pool, embed)
    return sorted(pool, key=lambda c: -c.score)


def _add_type_fit(question: str, pool: Sequence[Candidate], embed: BaseEmbedding | None) -> None:
    """Add W_TYPE x the cosine similarity between each span and what the wh-phrase names."""
    asked = asked_type(question)
    if embed is None or not asked or not pool:
        return
    vecs = np.array(embed.get_text_embedding_batch([asked] + [c.text for c in pool]))
    for c, sim in zip(pool, vecs[1:] @ vecs[0], strict=True):
        c.type_fit = float(sim)
        c.score += W_TYPE * c.type_fit


def short_answer(
    question: str,
    passages: Sequence[NodeWithScore | TextNode],
    draft: str,
    llm,
    *,
    method: str = "combined",
    messages: list[ChatMessage] | None = None,
    **kw,
) -> ShortAnswer | None:
    """The best short answer copied from the passages, or None when no span fits the question.

    The model only ranks; the text returned is always the passage's own text at the span."""
    nodes = _nodes(passages)
    ranked = rank(question, nodes, draft, llm, method=method, messages=messages, **kw)
    if not ranked:
        return None
    return to_short_answer(ranked[0], nodes, method, question)


def to_short_answer(
    c: Candidate, nodes: Sequence[TextNode], method: str, question: str = ""
) -> ShortAnswer:
    """The candidate as the answer shown: the passage's own text at the span."""
    p = nodes[c.passage]
    base = p.start_char_idx or 0
    text = p.get_content()[c.start : c.end]
    wanted = question_kind(question) if question else PHRASE
    # A name answering "who" is a person, "which team" an org: the question says which.
    kind = (wanted if wanted in NAME_KINDS else "name") if c.kind == "name" else c.kind
    return ShortAnswer(
        text=text,
        passage=c.passage + 1,
        doc_id=p.metadata.get("doc_id", ""),
        start=base + c.start,
        end=base + c.end,
        kind=kind,
        score=round(float(c.score), 4),
        method=method,
    )


def kind_ruled_out(question: str, passages: Sequence[NodeWithScore | TextNode]) -> bool:
    """Do the passages hold spans of the kind asked, but none of the money, tense or place the
    question narrows it to? ("When will she decide" over "confirmed on Monday".)"""
    cands = candidates(question, passages)
    return any(c.refined for c in cands) and not any(c.fits for c in cands)
