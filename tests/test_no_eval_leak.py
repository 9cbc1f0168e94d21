"""No eval text in the repository: no question, answer or article id of an eval file, anywhere.

Examples in code, comments, docstrings, tests and docs must be invented (invented towns, people,
numbers): an eval item quoted in the repository is an item the code may have been tuned to.

What counts as a copy, after folding case, accents, apostrophes and punctuation:
- any run of 4 words of an eval question that holds at least 2 content words (not function words,
  numbers or calendar words) and is found in fewer than QUESTION_COMMON questions (quiz phrasing
  such as "which team won the" identifies no item);
- any answer of 2 or more content words, as a whole phrase, unless ANSWER_COMMON or more items
  mention it (then it is news vocabulary: a big city, a large country). An answer of one content
  word ("the harbour", "on Monday", "24 hours") is a one-word answer, too common to scan for: keep
  those out of examples by hand;
- an article id of an eval corpus ("rtqa-" and hex).

Eval files: evals/gold.jsonl (ours; it may be quoted inside evals/ only) and, when the shared data
folder is there, every RealTime QA question file and corpus under it (third-party; CI has no such
folder, and those cases skip).
"""

from __future__ import annotations

import bisect
import json
import mmap
import re
import subprocess
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

GOLD = ROOT / "evals" / "gold.jsonl"
SHARED_QUESTIONS = {
    "qa_dev": SHARED / "qa_dev.jsonl",
    "gcs2023": SHARED / "gcs2023" / "qa.jsonl",
    "gcs2024": SHARED / "gcs2024" / "qa.jsonl",
}
SHARED_CORPORA = [SHARED / "corpus.jsonl", SHARED / "gcs2023" / "corpus.jsonl"]
SHARED_CORPORA.append(SHARED / "gcs2024" / "corpus.jsonl")

# Not text we write: the bundled articles and the gold set written from them (an eval file, which
# names the same people as the news of other years), vendored model files, hashes.
NOT_SCANNED = ("corpus/", "evals/gold.jsonl", "rag/assets/", "requirements.lock")
QUESTION_COMMON = 3  # a 4-word run found in this many questions is quiz phrasing
ANSWER_COMMON = 5  # a phrase this many items mention is news vocabulary

# Files of other owners that still quote eval text, by eval file: their case is a strict xfail, so
# the owner removes the entry when the file is clean (an xpass fails). Every other file is checked.
PENDING: dict[str, tuple[str, ...]] = {
    "tests/data/plantings/articles/news.jsonl": ("gcs2024",),
    "tests/data/plantings/cases.json": ("gcs2024",),
    "tests/data/plantings/detector_training.json": ("gold",),
    "tests/data/plantings_heldout.jsonl": ("gcs2023",),
    "tests/data/plantings_unseen.jsonl": ("gold", "gcs2023", "gcs2024"),
}

_GENERAL = set(
    """
    a an the this that these those it its it's he him his she her hers they them their theirs we
    us our you your i me my who whom whose which what when where why how whether there here is
    are was were be been being am do does did done has have had having will would shall should
    can could may might must not no nor and or but if then than so as of in on at by for from to
    into onto over under about after before during since until up down out off with without
    within between among against per via also just only more most less least very too much many
    some any all each every both either neither other another such same own one two three four
    five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand
    million billion trillion tens dozens hundreds thousands millions billions first second third
    fourth fifth last next new old few several once twice again ago now today yesterday tomorrow
    week weeks month months year years day days hour hours minute minutes time times monday
    tuesday wednesday thursday friday saturday sunday january february march april may june july
    august september october november december m mr mrs ms dr s
    """.split()
)
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+")
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_MARKS = re.compile(r"[\u0300-\u036f]")
_RTQA_ID = re.compile(r"rtqa-[0-9a-f]{6,}")


def fold(text: str) -> str:
    """Case, accents and apostrophes folded; line breaks kept, so offsets still give lines."""
    text = unicodedata.normalize("NFKD", text).lower()
    return _MARKS.sub("", _APOSTROPHES.sub("", text))


def _word(m: re.Match) -> str:
    return m.group().replace(",", "")  # "10,000" is one number


def words(text: str) -> list[str]:
    return [_word(m) for m in _TOKEN.finditer(fold(text))]


def _all_text(item: dict) -> str:
    choices = [str(c) for c in item.get("choices") or []]
    return " ".join([item["question"], *item.get("answers", []), *choices])


def _content(phrase: Iterable[str]) -> int:
    # single letters are initials and abbreviations ("U.K.", "a.m.")
    return sum(1 for w in phrase if w not in _GENERAL and not w[0].isdigit() and len(w) > 1)


@dataclass
class Text:
    """One scanned file: its words and the line each word starts on."""

    words: list[str]
    lines: list[int]

    @cached_property
    def runs(self) -> dict[tuple[str, ...], list[int]]:
        """Each 4-word run, with the lines it starts on."""
        out = defaultdict(list)
        for i, run in enumerate(zip(*(self.words[k:] for k in range(4)), strict=False)):
            out[run].append(self.lines[i])
        return out

    @cached_property
    def pairs(self) -> dict[tuple[str, ...], list[int]]:
        """Each 2-word run, with the word positions it starts at."""
        out = defaultdict(list)
        for i, pair in enumerate(zip(self.words, self.words[1:], strict=False)):
            out[pair].append(i)
        return out

    @classmethod
    def of(cls, text: str) -> Text:
        folded = fold(text)
        breaks = [i for i, c in enumerate(folded) if c == "\n"]
        found = list(_TOKEN.finditer(folded))
        return cls(
            [_word(m) for m in found],
            [bisect.bisect(breaks, m.start()) + 1 for m in found],
        )


@dataclass
class Needles:
    """The phrases of one eval file that must not be copied, each with the items it comes from."""

    runs: dict[tuple[str, ...], set[str]] = field(default_factory=lambda: defaultdict(set))
    answers: dict[tuple[str, ...], set[str]] = field(default_factory=lambda: defaultdict(set))
    mentions: list[str] = field(default_factory=list)  # each item's words, to judge commonness

    @classmethod
    def of(cls, items: list[dict], pool: list[dict]) -> Needles:
        needles = cls()
        for item in items:
            q = words(item["question"])
            for i in range(len(q) - 3):
                needles.runs[tuple(q[i : i + 4])].add(item["id"])
            for answer in item.get("answers", []):
                phrase = tuple(words(answer))
                if _content(phrase) >= 2:
                    needles.answers[phrase].add(item["id"])
        asked: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for item in pool:
            q = words(item["question"])
            for i in range(len(q) - 3):
                asked[tuple(q[i : i + 4])].add(item["id"])
        needles.runs = {
            run: ids
            for run, ids in needles.runs.items()
            if _content(run) >= 2 and len(asked[run]) < QUESTION_COMMON
        }
        needles.mentions = [f" {' '.join(words(_all_text(item)))} " for item in pool]
        return needles

    def common(self, phrase: tuple[str, ...]) -> bool:
        needle = " " + " ".join(phrase) + " "
        return sum(needle in m for m in self.mentions) >= ANSWER_COMMON

    def find(self, text: Text) -> list[tuple[int, str, tuple[str, ...], set[str]]]:
        """(line, kind, phrase, item ids) of every copied question run or answer in text."""
        starts: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        for phrase in self.answers:
            starts[phrase[:2]].append(phrase)
        # Set intersections first: most files share no phrase, and are done in one step.
        runs, pairs = text.runs.keys() & self.runs.keys(), text.pairs.keys() & starts.keys()
        hits = [(line, "question", run, self.runs[run]) for run in runs for line in text.runs[run]]
        w = text.words
        for pair in pairs:
            for i in text.pairs[pair]:
                for phrase in starts[pair]:
                    if tuple(w[i : i + len(phrase)]) == phrase and not self.common(phrase):
                        hits.append((text.lines[i], "answer", phrase, self.answers[phrase]))
        return sorted(hits)


def _items(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if "question" in r]


@cache
def _pool() -> list[dict]:
    paths = [GOLD, *(p for p in SHARED_QUESTIONS.values() if p.exists())]
    return [item for path in paths for item in _items(path)]


def _listed() -> list[str]:
    """The repository's files; outside a git checkout (an unpacked archive), every file below
    the root but hidden folders, virtual environments and caches."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return sorted(set(filter(None, listed.split("\0"))))
    except (OSError, subprocess.CalledProcessError):
        skip = {"__pycache__", "node_modules", "venv", "build", "dist"}
        return sorted(
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file()
            and not any(
                part.startswith(".") or part in skip or part.endswith(".egg-info")
                for part in p.relative_to(ROOT).parts[:-1]
            )
        )


@cache
def _repo() -> dict[str, Text]:
    """Every text file git knows of (tracked, or new and not ignored), but NOT_SCANNED."""
    texts = {}
    for name in _listed():
        path = ROOT / name
        if name.startswith(NOT_SCANNED) or not path.is_file():
            continue
        try:
            texts[name] = Text.of(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue  # binary
    return texts


def _eval_files() -> dict[str, Path]:
    return {"gold": GOLD, **SHARED_QUESTIONS}


@cache
def _needles(source: str) -> Needles:
    return Needles.of(_items(_eval_files()[source]), _pool())


def _hits(source: str, files: Iterable[str]) -> list[str]:
    path = _eval_files()[source]
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is not on this machine)")
    needles, repo = _needles(source), _repo()
    found = []
    for name in files:
        if source == "gold" and name.startswith("evals/"):
            continue  # our own set may be quoted beside it, where it is calibrated
        for line, kind, phrase, ids in needles.find(repo[name]):
            found.append(
                f"{name}:{line}: {kind} of {source} {sorted(ids)[0]}: {' '.join(phrase)!r}"
            )
    return found


@pytest.mark.parametrize("source", list(_eval_files()))
def test_repository_holds_no_eval_text(source):
    pending = {name for name, sources in PENDING.items() if source in sources}
    found = _hits(source, [name for name in _repo() if name not in pending])
    assert not found, "invent examples instead of:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "name"),
    [(source, name) for name, sources in PENDING.items() for source in sources],
)
@pytest.mark.xfail(
    strict=True, reason="eval text still quoted; remove the PENDING entry when clean"
)
def test_pending_file_still_holds_eval_text(source, name):
    assert not _hits(source, [name])


def copied_ids(texts: dict[str, str], evidence: set[str], corpora: list[Path]) -> list[str]:
    """ "path:line: id" of every eval article id in texts: an evidence id, or an id in a corpus
    (searched in the file's bytes for the few ids the texts hold, not parsed: 160 MB of JSON)."""
    where = defaultdict(list)
    for name, text in texts.items():
        for m in _RTQA_ID.finditer(text.lower()):
            where[m.group()].append(f"{name}:{text.count(chr(10), 0, m.start()) + 1}")
    found = {i for i in where if i in evidence}
    for corpus in corpora:
        with corpus.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found |= {i for i in where if data.find(f'"{i}"'.encode()) >= 0}
    return [f"{place}: {i}" for i in sorted(found) for place in where[i]]


def test_repository_holds_no_eval_article_id():
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is absent (the shared data folder is not on this machine)")
    evidence = {i for item in _pool() for i in item.get("evidence_doc_ids", [])}
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in _repo()}
    found = copied_ids(texts, evidence, [p for p in SHARED_CORPORA if p.exists()])
    assert not found, found


def test_an_id_is_found_in_the_evidence_or_in_a_corpus_only(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "rtqa-00c0ffee11", "text": "x"}\n')
    texts = {"a.py": "x = 1\n# see RTQA-00c0ffee11\n", "b.md": "rtqa-0badc0de22 rtqa-5eed5eed33"}
    found = copied_ids(texts, {"rtqa-0badc0de22"}, [corpus])
    assert found == ["a.py:2: rtqa-00c0ffee11", "b.md:1: rtqa-0badc0de22"]


def test_gold_article_ids_stay_out_of_rag():
    ids = {i for item in _items(GOLD) for i in item.get("evidence_doc_ids", [])}
    found = [
        f"{p.relative_to(ROOT)}: {i}"
        for p in sorted((ROOT / "rag").rglob("*.py"))
        for i in ids
        if i in p.read_text(encoding="utf-8")
    ]
    assert not found, found


# The matcher itself, on invented items, so a broken matcher cannot pass the checks above silently.
_INVENTED = [
    {
        "id": "x1",
        "question": "Which ferry did the Quorran harbour board retire after the winter gales?",
        "answers": ["the Morwen Star", "Morwen Star"],
    },
    {
        "id": "x2",
        "question": "How many lanterns lit the Tessel bridge in 2031?",
        "answers": ["4,210"],
    },
    {"id": "x3", "question": "When did the Ostrel council vote?", "answers": ["on Tuesday"]},
]


def test_matcher_finds_copied_runs_and_answers_across_lines_and_punctuation():
    needles = Needles.of(_INVENTED, _INVENTED)
    text = Text.of(
        "x = 1\n# Example: which FERRY did the\n#   quorran Harbour-Board retire?\n"
        "answer = 'MORWEN star'\n"
    )
    found = {(line, kind, " ".join(p)) for line, kind, p, _ in needles.find(text)}
    assert (2, "question", "ferry did the quorran") in found
    assert (3, "question", "quorran harbour board retire") in found
    assert (4, "answer", "morwen star") in found


def test_matcher_leaves_one_word_general_and_function_word_phrases_alone():
    needles = Needles.of(_INVENTED, _INVENTED)
    text = Text.of("It lit 4,210 lanterns on Tuesday. Which ferry did the town sell?")
    assert needles.find(text) == []


def test_matcher_treats_a_phrase_many_items_mention_as_vocabulary():
    pool = _INVENTED + [
        {"id": f"y{i}", "question": f"Did the Morwen Star sail on day {i}?", "answers": []}
        for i in range(ANSWER_COMMON)
    ]
    needles = Needles.of(_INVENTED, pool)
    assert not [h for h in needles.find(Text.of("the Morwen Star")) if h[1] == "answer"]
    assert Needles.of(_INVENTED, _INVENTED).find(Text.of("the Morwen Star"))
