"""Closed word classes of English news the answer path reads: months, weekdays, number words,
person titles and roles, demonyms, currencies and auxiliary verbs. One copy, so question
parsing, span ranking, refusal and grounding agree on what a month or a number word is.

Word lists are lower-case; the regex fragments are built from them (no groups, no flags), to be
set inside a caller's pattern.
"""

from __future__ import annotations

import re

MONTHS = (
    "january february march april may june july august september october november december"
).split()
# Abbreviations as the press writes them ("Sept. 4", "Jan 2021"); "may" has none.
MONTH_ABBREVIATIONS = "jan feb mar apr jun jul aug sep sept oct nov dec".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
CALENDAR_WORDS = frozenset(MONTHS + WEEKDAYS)

# Cardinal number words and their values; "dozen" counts, "half" and "quarter" are fractions.
NUMBER_VALUES = {
    w: n
    for n, w in enumerate(
        """zero one two three four five six seven eight nine ten eleven twelve thirteen
        fourteen fifteen sixteen seventeen eighteen nineteen""".split()
    )
} | {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "dozen": 12,
}
SCALES = {"hundred": 100, "thousand": 1_000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# "zero" has a value but is no count word: mostly an idiom ("net zero", "zero tolerance").
NUMBER_WORDS = frozenset(w for w, n in NUMBER_VALUES.items() if n) | frozenset(SCALES) | {"dozens"}
FRACTIONS = frozenset({"half", "quarter"})

# Titles written before a person's name ("Governor Dahl", "spokeswoman Ilse Varga", "Dr. Lund").
PERSON_TITLES = frozenset(
    """president minister spokesman spokeswoman spokesperson senator governor secretary
    chancellor pope coach actor actress singer rapper""".split()
)
TITLE_ABBREVIATIONS = frozenset("mr mrs ms dr sen rep gov prof".split())
# Every word that names a role or an office, before a name or not ("CEO of Norvik Foods").
ROLES = (
    PERSON_TITLES
    | TITLE_ABBREVIATIONS
    | frozenset(
        """ceo cfo coo cto mp mep mayor head chief director chair chairman chairwoman king queen
        prince princess leader speaker member premier representative attorney general gen judge
        justice sir dame lord lady""".split()
    )
)

# Nationality adjectives: "Chinese police" says where, but "Chinese" is not a place.
DEMONYMS = frozenset(
    """american british chinese russian ukrainian french german italian spanish japanese korean
    indian pakistani iranian iraqi israeli palestinian syrian turkish egyptian saudi mexican
    canadian brazilian argentine argentinian australian european african asian polish dutch
    swedish norwegian danish finnish greek irish scottish welsh english portuguese belgian swiss
    austrian hungarian czech romanian bulgarian serbian croatian afghan vietnamese thai filipino
    indonesian malaysian nigerian kenyan ethiopian venezuelan colombian chilean peruvian cuban
    taiwanese lebanese jordanian yemeni qatari emirati kurdish belarusian lithuanian latvian
    estonian slovak slovenian icelandic sudanese somali libyan moroccan algerian tunisian
    ghanaian haitian jamaican bangladeshi nepali lankan mongolian kazakh uzbek armenian
    azerbaijani moldovan albanian bosnian cypriot maltese latin arab western eastern""".split()
)

# Currency words, singular and plural, and the units below them.
CURRENCY_WORDS = frozenset(
    """dollar dollars euro euros pound pounds yen yuan renminbi rupee rupees crore lakh franc
    francs peso pesos ruble rubles rouble roubles shekel shekels lira liras won baht ringgit
    rand naira kronor krona kroner zloty cent cents pence""".split()
)
CURRENCY_SYMBOLS = "$€£¥₹"
CURRENCY_CODES = frozenset("USD EUR GBP CHF INR JPY CNY AUD CAD HKD".split())

# Forms of be, do and have, and the modals: they end a wh-phrase ("which team | won") and set a
# question's tense.
AUXILIARIES = frozenset(
    """is are am was were be been being do does did has have had will would shall should can
    could may might must""".split()
)


def alternation(words: frozenset[str] | list[str], capitalised: bool = False) -> str:
    """A non-capturing regex alternation of the words, longest first, so "Sept" is tried before
    "Sep" and "March" before "Mar"; `capitalised` writes them as in running text."""
    forms = sorted(
        {w.capitalize() if capitalised else w for w in words}, key=lambda w: (-len(w), w)
    )
    return "(?:" + "|".join(re.escape(w) for w in forms) + ")"


MONTH_PATTERN = alternation(MONTHS + MONTH_ABBREVIATIONS, capitalised=True)
WEEKDAY_PATTERN = alternation(WEEKDAYS, capitalised=True)
CURRENCY_PATTERN = alternation(CURRENCY_WORDS)
