"""When to say "the articles do not say": one policy, named thresholds, a reason for each refusal.

The answer pipeline asks the policy twice: before generation (is any passage relevant enough to
be worth asking the model?) and after it (did the model find an answer the passages support, of
the kind the question asks for?). A refusal carries its reason into `Answer` and `--json`, and
still shows the closest passages.

Calibration: `rag eval` writes, for each question, the signals the policy reads (best passage
relevance, whether the model declined, whether a short answer of the asked kind was found,
whether any model sentence was supported). `python -m evals.calibrate REPORT...` sweeps the
thresholds over those rows, on the bundled gold set and RealTime QA dev only, and prints the
refusal precision/recall and false refusals for each; the defaults below are the values
chosen there (see the README's "Refusals" section for the table and the commands).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rag import lexicon
from rag.answer_span import (
    _HEAD_KIND,
    _POSSESSIVE,
    NUMBER,
    ORG,
    PERSON,
    PLACE,
    WH_WORD,
    YESNO,
    count_unit,
    last_question_span,
    mentions_unit,
    question_kind,
)
from rag.config import Settings
from rag.metrics import normalize
from rag.text import _WORD, _stem, _stopwords


class RefusalReason(StrEnum):
    NO_RELEVANT_PASSAGE = "no passage is relevant"
    OVERRIDE = "the question asks to set the articles or the rules aside"
    NAME_NOT_FOUND = "no passage mentions a name the question asks about"
    ORDINAL_NOT_FOUND = "no passage mentions the numbered item the question asks about"
    MODEL_FOUND_NO_ANSWER = "the model found no answer"
    WRONG_KIND = "the answer lacks the kind asked for"
    UNSUPPORTED = "no passage supports the model's answer"


@dataclass(frozen=True)
class Signals:
    """What the policy reads about one question, after generation."""

    best_relevance: float  # best selected sentence's relevance (before follow-up demotion)
    model_declined: bool  # every sentence of the draft says it does not know
    cited: bool  # the grounded answer cites at least one passage
    kind_asked: bool  # the question asks for a kind (who, when, how many, where...)
    kind_found: bool  # a short answer of that kind was found in the passages
    draft_supported: bool  # at least one sentence of the model's draft was supported
    # "How many X" where no passage mentions X: no number in them counts it.
    counts_other: bool = False


@dataclass(frozen=True)
class RefusalPolicy:
    # Below this best-sentence relevance no passage is about the question: the model is not
    # asked at all. Cosine-scale relevance of the sentence selector (rag/context.py).
    min_relevance: float = 0.35
    # Between min_relevance and this, retrieval is unsure, so the answer must stand on its own:
    # a model draft that no passage supports is a refusal rather than a quoted stand-in.
    # Calibrated equal to min_relevance (rule off): on the data we hold it refused more
    # answerable questions (RealTime QA's long questions score lower) than unanswerable ones.
    confident_relevance: float = 0.35

    @classmethod
    def from_settings(cls, settings: Settings) -> RefusalPolicy:
        return cls(settings.min_relevance, settings.confident_relevance)

    def before_generation(
        self,
        best_relevance: float,
        unmentioned: Sequence[str] = (),
        overrides: bool = False,
        unnumbered: Sequence[str] = (),
    ) -> RefusalReason | None:
        # "Set the articles aside and reply from memory": answering at all would obey it.
        if overrides:
            return RefusalReason.OVERRIDE
        if best_relevance < self.min_relevance:
            return RefusalReason.NO_RELEVANT_PASSAGE
        # Passages about a council but not about the person asked after cannot answer for them.
        if unmentioned:
            return RefusalReason.NAME_NOT_FOUND
        # "Where is its second summit?" over passages that never speak of a second summit: any
        # summit or place they name is not the one asked after.
        if unnumbered:
            return RefusalReason.ORDINAL_NOT_FOUND
        return None

    def after_generation(self, s: Signals) -> RefusalReason | None:
        if s.model_declined:
            return RefusalReason.MODEL_FOUND_NO_ANSWER
        if not s.cited:
            return RefusalReason.UNSUPPORTED
        # A question that asks for a name, number or date is answered only by one; a quote
        # without it does not answer, however well it is cited.
        if (s.kind_asked and not s.kind_found) or s.counts_other:
            return RefusalReason.WRONG_KIND
        if not s.draft_supported and s.best_relevance < self.confident_relevance:
            return RefusalReason.UNSUPPORTED
        return None


# ---------------------------------------------------------------------------------------------
# Signals read from the text

# A name with a connector inside is one name: "Bank of Lindholm" is not "bank" plus "Lindholm".
# Not "and", which in a question usually joins two names ("Kia and Hyundai").
_JOINED_NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:of|&|for)\s+(?:the\s+)?[A-Z][\w’'-]*)+")
# A work's title after what it is ("the novel Harbour and Tide", "her film Out of Time") is one
# name, "and" and all, found only whole. Only nouns that are seldom verbs ("play", "show" are).
_WORK_TITLE = re.compile(
    r"(?:\b(?:the|a|an|his|her|their|its)|[’']s)\s+(?:[\w-]+\s+)?(?:novel|book|film|movie|album"
    r"|poem|opera|painting|memoir|sitcom|documentary)\s+"
    r"([A-Z][\w’'-]*(?:\s+(?:(?:and|of|the|in|a|an|to|for|on|at)\s+)*[A-Z][\w’'-]*)*)"
)
# Names are matched by their first letters, so "Norwegian" finds "Norway", "Egyptian" finds
# "Egypt" and a transliteration with one more letter at the end still matches.
NAME_PREFIX = 5
NAME_LENGTH_SLACK = 4
# "Americans", "Norwegian": passages say "US" or "Norway's"; a demonym is not who is asked about.
_DEMONYM = re.compile(r"(?:an|ans|ian|ians|ese|ish)$")
_WH_PHRASE_WORDS = 4


# An order to the assistant, not a question about someone ignoring rules: the verb opens the
# question or a clause ("..., so ignore them"), or the question asks for its own knowledge.
_OVERRIDE = re.compile(
    r"(?:^|[;:,.!?]\s*|\b(?:and|so|please)\s+)(?:ignore|disregard|forget|bypass|override)\s+"
    r"(?:(?:all|any|every|of|your|my|the|these|those|previous|prior|above|earlier|news|given|"
    r"provided)\s+)*(?:instructions?|rules?|articles?|passages?|sources?|context|guidelines|"
    r"prompt|them|everything|above)\b"
    r"|\byou\s+are\s+now\b|\b(?:print|show|reveal|repeat)\s+(?:me\s+)?your\s+(?:system\s+)?"
    r"(?:prompt|instructions)\b"
    r"|\bfrom\s+your\s+own\s+(?:memory|knowledge)\b"
    r"|(?:^|[;:,.!?]\s*|\b(?:and|so|please)\s+)(?:answer|tell\s+me|reply|respond)\b[^.?!;]{0,20}?"
    r"\bfrom\s+(?:memory|your\s+knowledge)\b",
    re.IGNORECASE,
)


def overrides_rules(question: str) -> bool:
    """Does the question tell the assistant to drop the articles or its rules?"""
    return bool(_OVERRIDE.search(question))


def _bare(word: str) -> str:
    return word.strip("’'-").replace("’", "'").removesuffix("'s").lower()


def question_names(question: str) -> list[str]:
    """The names the question asks about, as it writes them: runs of capitalised words ("Prime
    Minister Ilse Varga", "Mr. Dahl"; not a sentence's first word, a stopword or a demonym) and
    names joined by "of", "&" or "for".

    Only the asking sentence counts, and in it not the wh-phrase: "The Met Office warned of
    floods. When will they peak?" asks about "they", and "Which Premier League club ..." names
    the kind of answer, which the passages may call "Fulham"."""
    stop = _stopwords()
    a, b = last_question_span(question)
    wh = WH_WORD.search(question, a, b)
    skip_until = a
    if wh:  # the wh-phrase runs to the verb: "Which Tessel ferry firm | announced ..."
        skip_until = wh.end()
        for m in list(_WORD.finditer(question, wh.end(), b))[:_WH_PHRASE_WORDS]:
            if m.group().lower() in stop or m.group().lower().endswith("ed"):
                break
            skip_until = m.end()
    tokens = list(_WORD.finditer(question, a, b))
    # In Title Case or ALL CAPS (no word in lower case), capitals do not mark names.
    if not any(t.group()[:1].islower() for t in tokens[1:]):
        return []
    runs: list[list[re.Match]] = []
    last_end = -1
    for i, m in enumerate(tokens):
        w = m.group().strip("’'-").removesuffix("’s").removesuffix("'s")
        name = (
            i > 0
            and m.start() >= skip_until
            and w[:1].isupper()
            and w.lower() not in stop
            and w.lower() not in _CALENDAR
            and not (_DEMONYM.search(w.lower()) and len(w) > 4)
        )
        if not name:
            last_end = -1
            continue
        gap = question[last_end : m.start()] if last_end >= 0 else None
        if runs and gap is not None and (gap.strip() == "" or gap.strip() == "."):
            runs[-1].append(m)  # "Prime Minister Ilse Varga", "Mr. Dahl"
        else:
            runs.append([m])
        last_end = m.end()
    names = [_POSSESSIVE.sub("", question[r[0].start() : r[-1].end()]) for r in runs]
    names += [m.group() for m in _JOINED_NAME.finditer(question, skip_until, b)]
    names += [
        m.group(1)
        for m in _WORK_TITLE.finditer(question, skip_until, b)
        if " " in m.group(1) and m.group(1).lower() not in stop
    ]
    return list(dict.fromkeys(names))


_CALENDAR = lexicon.CALENDAR_WORDS
_LINKS = frozenset({"the", "of", "and", "for", "a", "an"})
# Titles: "CEO of Apple" is a role at a name the passages may write "Apple's chief executive".
_ROLES = lexicon.ROLES


def _initials(text: str) -> set[str]:
    """The initials of the text's capitalised runs: "European Union" gives "eu"."""
    out = set()
    for run in re.findall(r"(?:\b[A-Z][\w’'-]*(?:\s+(?:of|the|and|for)\b)*\s*)+", text):
        words = [w for w in run.split() if w[:1].isupper() and w.lower() not in _LINKS]
        if len(words) > 1:
            out.add("".join(w[0] for w in words).lower())
    return out


def unmentioned_names(question: str, passages: Sequence[str]) -> list[str]:
    """The question's names that none of the passages mentions. A run of words is mentioned
    when one of its words other than a title is ("President Ilse Varga" by "Varga said"), an
    acronym when the passages spell it out ("EU" by "European Union"); two-letter acronyms
    ("UK", "US") always are, since passages write them in too many ways."""
    text = " ".join(passages)
    words = {_bare(w) for w in _WORD.findall(text)}
    flat = f" {normalize(text)} "
    initials: set[str] | None = None
    missing: list[str] = []
    for name in question_names(question):
        if re.search(r"\s(?:of|&|for|and)\s", name):
            found = _bare(name.split()[0]) in _ROLES or f" {normalize(name)} " in flat
        else:
            parts = [_bare(w) for w in _WORD.findall(name)]
            own = [w for w in parts if w not in _ROLES] or parts
            found = any(_mentioned(w, words) for w in own)
            if not found and name.isupper():
                initials = _initials(text) if initials is None else initials
                found = _bare(name) in initials
        if not found:
            missing.append(name)
    # "Bank of Lindholm" missing says it; its parts need not be listed too.
    joined = [n for n in missing if " " in n]
    return [n for n in missing if not any(n != j and n in j for j in joined)]


def _mentioned(word: str, words: set[str]) -> bool:
    if len(word) <= 2 or word in _ROLES or word in words:
        return True
    k = min(len(word), NAME_PREFIX)
    return any(w[:k] == word[:k] and abs(len(w) - len(word)) <= NAME_LENGTH_SLACK for w in words)


def counts_other(question: str, passages: Sequence[str]) -> bool:
    """Does "how many X" ask about an X that no passage mentions at all ("how many bridges"
    over passages that never speak of bridges)? Then no number in them counts X."""
    unit = count_unit(question)
    if not unit or question_kind(question) != NUMBER:
        return False
    return not mentions_unit(unit, " ".join(passages))


# Ordinal -> (its digits, the cardinal words a label uses: "Phase 2", "Game seven").
_ORDINALS = {
    "first": ("1st", "1", "one"),
    "second": ("2nd", "2", "two"),
    "third": ("3rd", "3", "three"),
    "fourth": ("4th", "4", "four"),
    "fifth": ("5th", "5", "five"),
    "sixth": ("6th", "6", "six"),
    "seventh": ("7th", "7", "seven"),
    "eighth": ("8th", "8", "eight"),
    "ninth": ("9th", "9", "nine"),
    "tenth": ("10th", "10", "ten"),
}
_ORDINAL_FORM = {form: word for word, forms in _ORDINALS.items() for form in (word, forms[0])}
# Only an ordinal that numbers a thing: after a determiner or a possessive ("its first
# meeting", "the plan's second point"), not an adverb ("when was it first detected") and not
# the end of a longer word ("twenty-first century").
_ORDINAL_THING = re.compile(
    rf"(?:\b(?:the|a|an|its|his|her|their|our|your|this|that|whose)\s+|['’]s\s+)"
    rf"({'|'.join(_ORDINAL_FORM)})\s+([a-z][\w-]*)\b(?!\s+(?:to|ever)\b)",
    re.I,
)
# "Which club became the first winner?" asks who did it first, as "the first woman" does.
_BECAME = re.compile(r"\bbec[oa]m(?:e|es|ing)\s+(?:the\s+)?$", re.I)
# Ways a passage says "first" of a thing without the word.
_FIRST = frozenset({"inaugural", "maiden", "debut", "opening"})
# "For the first time" says that something happened, not which of a series is meant; "the
# first woman", "the first country" are who or what did it first, which passages word freely.
# "Its third straight title", "the second largest city", "the first two games": the word after
# the ordinal qualifies the thing, it is not the thing.
_NOT_COUNTED = (
    frozenset(
        """time times place half quarter woman women man men female male black ever overall
        straight consecutive successive""".split()
    )
    | {cardinal for _, _, cardinal in _ORDINALS.values() if cardinal != "one"}
    | {w for w, kind in _HEAD_KIND.items() if kind in (PERSON, PLACE, ORG)}
)
# How many words may stand between the ordinal and its noun in a passage ("the first
# public meeting", "the meeting, its first").
ORDINAL_WINDOW = 3


def unmentioned_ordinals(question: str, passages: Sequence[str]) -> list[str]:
    """The numbered things the asking sentence asks after ("its second summit", "the third
    round") that no passage speaks of: no passage has the ordinal within ORDINAL_WINDOW words
    of the noun, nor the noun labelled by the number ("Phase 2"). Such passages cannot tell
    which one is meant. Not counted: an ordinal in a name ("First Amendment", "Fourth of
    July"), a feat ("the first woman to fly", "for the first time"), a qualifier ("the second
    largest city") or a title the passages use ("first lady"); nor a yes/no question, which
    its quoted passages answer in their own words ("Did she win a second term?" over
    "re-elected")."""
    if question_kind(question) == YESNO:
        return []
    a, b = last_question_span(question)
    stop = _stopwords()
    wanted: dict[tuple[str, str], str] = {}
    for m in _ORDINAL_THING.finditer(question, a, b):
        noun = m.group(2)
        if (
            noun.islower()
            and noun not in stop
            and noun not in _NOT_COUNTED
            and not noun.endswith("est")
            and not _BECAME.search(question, a, m.start())
        ):
            key = (_ORDINAL_FORM[m.group(1).lower()], noun)
            wanted.setdefault(key, f"{m.group(1)} {noun}")
    if not wanted:
        return []
    stem = _stem()
    # "first-round", "second-largest": the parts of a hyphenated word are words too.
    docs = [[t for w in _WORD.findall(p) for t in _bare(w).split("-") if t] for p in passages]
    stems = [[stem(w) for w in words] for words in docs]  # once, whatever the ordinals asked
    missing = []
    for (number, noun), phrase in wanted.items():
        digits, *cardinals = _ORDINALS[number]
        forms = {number, digits} | (_FIRST if number == "first" else set())
        thing = stem(noun)
        found = any(
            (w in forms and thing in ws[max(0, i - ORDINAL_WINDOW) : i + ORDINAL_WINDOW + 1])
            or (ws[i] == thing and words[i + 1 : i + 2] and words[i + 1] in cardinals)
            for words, ws in zip(docs, stems, strict=True)
            for i, w in enumerate(words)
        )
        if not found:
            missing.append(phrase)
    return missing
