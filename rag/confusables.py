"""Fold look-alike characters before any check reads text: "Note to АI assistants" (a Cyrillic
А) and "chatb\u200bots" (a zero-width space) are read as the Latin words they show.

Three steps, for checks only (the stored and shown text is never changed):
- NFKC: fullwidth and mathematical letters (ｆｕｌｌ, 𝐛𝐨𝐥𝐝), ligatures, superscripts;
- invisible characters removed: every format character (Unicode category Cf: zero-width
  spaces and joiners, soft hyphens, bidirectional controls, tags), variation selectors and the
  combining grapheme joiner;
- letters and digits of other scripts that Unicode's confusables table (UTS #39, shipped in
  the `confusable-homoglyphs` package as confusables.json) maps to ASCII letters or digits.
  Accented Latin letters are not in that table and stay ("é" is still "é");
- letter-spaced words ("S U M M A R I E S") joined, and a sentence written in leetspeak
  ("4ss1st4nts mu5t s4y") read as letters.

Folding is per character, so it keeps a sentence's words, not its offsets: callers fold each
sentence they check and keep their own spans.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

from rag.embeddings import package_file

# Invisible in most fonts but not category Cf: variation selectors, the combining grapheme
# joiner, Hangul fillers, the braille blank.
_INVISIBLE = frozenset(
    [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0xE0100, 0xE01F0)]
    + ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"]
)


def _ascii_alnum(s: str) -> bool:
    return bool(s) and s.isascii() and s.isalnum()


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    """Non-ASCII letter or digit -> the ASCII letters or digits it is confusable with.

    confusables.json lists each character's confusables in both directions (a source and its
    prototype, a prototype and all its sources); a non-ASCII key whose entry is ASCII is a
    source with an ASCII prototype."""
    data = json.loads(
        package_file("confusable_homoglyphs", "confusables.json").read_text(encoding="utf-8")
    )
    table: dict[int, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or char.isascii() or unicodedata.category(char)[0] not in "LN":
            continue
        targets = [e["c"].strip("\u200e\u200f") for e in entries]
        ascii_targets = [t for t in targets if _ascii_alnum(t)]
        if not ascii_targets:
            continue
        target = ascii_targets[0]
        # UTS #39 folds capital I to "l" (its prototype): a capital stays a capital, so a
        # Greek or Cyrillic capital I in "АI" reads as "AI", not "Al".
        if char.isupper() and target == "l":
            target = "I"
        table[ord(char)] = target
    for char in _INVISIBLE:
        table[ord(char)] = ""
    return table


def _is_format(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


# Letter-spaced text ("A L L   S U M M A R I E S"): four or more single characters, each
# followed by one to three spaces; a wider gap than one space marks the end of a word.
_SPACED = re.compile(r"(?<!\S)(?:\w {1,3}){3,}\w(?!\S)")
_WORD_GAP = re.compile(r" {2,}")
# Leetspeak: a digit between two letters ("s4y", "br1dg3"). Two such words make a sentence
# leetspeak; one is a code or a name ("H1N1").
_LEET_WORD = re.compile(r"[A-Za-z0-9@$]*[A-Za-z][0-9@$][A-Za-z][A-Za-z0-9@$]*")
_MIXED = re.compile(r"(?=[A-Za-z0-9@$]*[A-Za-z])[A-Za-z0-9@$]*[0-9@$][A-Za-z0-9@$]*")
_LEET = str.maketrans("013457@$", "oieastas")


def _unspace(m: re.Match) -> str:
    text = m.group(0)
    if sum(c.isalpha() for c in text) < 3:
        return text
    return " ".join(w.replace(" ", "") for w in _WORD_GAP.split(text))


def _unleet(text: str) -> str:
    if len(_LEET_WORD.findall(text)) < 2:
        return text
    return _MIXED.sub(lambda m: m.group(0).translate(_LEET), text)


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """`text` as a reader sees it: NFKC, no invisible characters, look-alikes as ASCII,
    letter-spaced words and leetspeak as words. Fold before collapsing whitespace: the gaps
    between letter-spaced words are wider than those between their letters."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = "".join(c for c in text if not _is_format(c))
        text = text.translate(_table())
    text = _SPACED.sub(_unspace, text)
    return _unleet(text)
