"""The answer log: every answer kept in the data dir, corrections exported as gold questions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import textwrap
import time

import pytest

from rag.answer_log import LOG_FILE, MAX_TEXT_CHARS, AnswerLog
from rag.answer_span import ShortAnswer
from rag.engine import Answer
from rag.errors import InvalidInput
from rag.evaluate import load_gold
from rag.grounding import Citation
from rag.logs_cli import add_parsers
from rag.retrieve import Filters
from tests.conftest import ROOT

PASSAGE = "Mayor Ilse Varga opened the Skarholt bridge on Tuesday. It cost 12 million kroner."
OTHER = "The Skarholt ferry will keep running on weekends until the spring."


def citation(n: int, doc_id: str, text: str, start: int = 100) -> Citation:
    return Citation(
        n,
        doc_id,
        f"Story {doc_id}",
        "fjord.example",
        "",
        "2025-04-02",
        text,
        start,
        start + len(text),
        0.8,
    )


def answer(
    question: str = "Who opened the Skarholt bridge?",
    short: str | None = "Ilse Varga",
    refused: bool = False,
    as_of: str = "2025-04-03",
) -> Answer:
    cites = [citation(1, "fjord/bridge", PASSAGE), citation(2, "fjord/ferry", OTHER, 40)]
    if refused:
        return Answer(
            question,
            "The articles do not say.",
            cites,
            True,
            {"retrieve": 0.01, "total": 0.2},
            question,
            0,
            ["fjord/bridge"],
            refusal_reason="no passage is relevant enough",
            as_of=as_of,
            signals={"best_relevance": 0.12},
        )
    sa = None
    if short is not None:
        at = PASSAGE.index(short) if short in PASSAGE else 0
        sa = ShortAnswer(
            short, 1, "fjord/bridge", 100 + at, 100 + at + len(short), "person", 0.9, "test"
        )
    return Answer(
        question,
        f"{short} [1]\n\n{PASSAGE} [1]",
        cites,
        False,
        {"retrieve": 0.01, "generate": 0.5, "total": 0.7},
        question,
        0,
        ["fjord/bridge", "fjord/ferry"],
        short_answer=sa,
        as_of=as_of,
        signals={"best_relevance": 0.71},
    )


@pytest.fixture
def book(settings) -> AnswerLog:
    return AnswerLog.from_settings(settings)


def rag_cli(settings, *argv: str) -> int:
    """Parse and run a `rag logs`/`rag feedback` command line as rag.cli would."""
    parser = argparse.ArgumentParser(prog="rag")
    parser.add_argument("--data-dir")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--data-dir", str(settings.data_dir), *argv])
    return args.func(args)


# Recording ------------------------------------------------------------------------------------
def test_an_answer_is_kept_with_everything_needed_to_find_and_judge_it(book, settings):
    filters = Filters(source="fjord.example", since="2025-01-01", as_of="2025-04-03")
    entry_id = book.record(answer(), filters=filters, settings=settings, store="news_minilm_384")
    assert entry_id == 1
    e = book.get(entry_id)
    assert e is not None and e["id"] == 1 and e["time"].endswith("Z")
    assert e["question"] == "Who opened the Skarholt bridge?" and e["as_of"] == "2025-04-03"
    assert e["filters"] == {"source": "fjord.example", "since": "2025-01-01"}
    assert e["short_answer"] == "Ilse Varga" and not e["refused"]
    assert e["short_answer_at"] == {"doc_id": "fjord/bridge", "start": 106, "end": 116}
    assert e["answer"].startswith("Ilse Varga [1]")
    first = e["citations"][0]
    assert (first["doc_id"], first["start"], first["end"]) == (
        "fjord/bridge",
        100,
        100 + len(PASSAGE),
    )
    assert first["text"] == PASSAGE
    assert e["signals"] == {"best_relevance": 0.71} and e["timings"]["total"] == 0.7
    assert e["model"].startswith("local:") and e["model"].endswith(".gguf")
    assert e["store"] == str(settings.chroma_dir) and e["collection"] == "news_minilm_384"
    assert e["feedback"] is None and e["truncated"] == {}
    # Personal questions: only the user may read the file.
    assert (settings.data_dir / LOG_FILE).stat().st_mode & 0o077 == 0


def test_a_refusal_is_kept_with_its_reason(book, settings):
    e = book.get(book.record(answer(refused=True), settings=settings) or 0)
    assert e is not None and e["refused"] and e["short_answer"] is None
    assert e["refusal_reason"] == "no passage is relevant enough"


def test_fields_an_answer_gains_later_are_kept_too(book):
    class Later(Answer):
        def to_dict(self) -> dict:
            return {**super().to_dict(), "corroboration": {"sources": 2, "citations": [1, 2]}}

    a = answer()
    later = Later(**{f.name: getattr(a, f.name) for f in dataclasses.fields(a)})
    e = book.get(book.record(later) or 0)
    assert e is not None and e["extra"]["corroboration"] == {"sources": 2, "citations": [1, 2]}
    assert "question" not in e["extra"] and "citations" not in e["extra"]


def test_logging_off_writes_nothing(settings):
    off = AnswerLog.from_settings(settings, enabled=False)
    assert off.record(answer(), settings=settings) is None
    # RAG_LOG=false, once Settings has its `log` field.
    unset = settings.model_copy(update={"log": False})
    assert AnswerLog.from_settings(unset).record(answer(), settings=unset) is None
    assert not (settings.data_dir / LOG_FILE).exists()
    assert AnswerLog.from_settings(settings).enabled  # on by default


def test_a_1mb_question_is_logged_cut_not_refused(book, settings, capsys):
    huge = ("Why did the Skarholt council vote on the bridge toll " * 20_000)[:1_000_000]
    entry_id = book.record(answer(), question=huge, settings=settings)
    assert entry_id is not None
    e = book.get(entry_id)
    assert e is not None
    assert len(e["question"]) == MAX_TEXT_CHARS and e["question"].endswith("…")
    assert huge.startswith(e["question"][:-1])
    assert e["truncated"] == {"question": 1_000_000}
    assert rag_cli(settings, "logs", "show", str(entry_id)) == 0
    assert "question was 1,000,000 characters" in capsys.readouterr().out
    # A cut question is not the question asked: it never becomes a gold item.
    book.feedback(entry_id, right=True)
    with pytest.raises(InvalidInput, match="rag feedback"):
        book.export_gold(settings.data_dir / "gold.jsonl")


# Concurrency ----------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from rag.answer_log import AnswerLog
    from tests.test_answer_log import answer
    path, tag, n, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    log = AnswerLog(path)
    made = [answer(question=f"{tag} question {i}?") for i in range(n)]
    go.with_name(f"ready-{tag}").touch()
    while not go.exists():
        time.sleep(0.001)
    began = time.time()
    ids = [log.record(a) for a in made]
    print(json.dumps({"lost": sum(i is None for i in ids), "began": began, "ended": time.time()}))
    """
)


def test_two_processes_logging_at_once_lose_nothing(tmp_path):
    path, go, n = tmp_path / "data" / LOG_FILE, tmp_path / "go", 400
    tags = ("north", "south")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), tag, str(n), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in tags
    ]
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"ready-{t}").exists() for t in tags):
        assert all(p.poll() is None for p in procs), "a writer died before it began"
        assert time.monotonic() < deadline, "the writers never got ready"
        time.sleep(0.01)
    go.touch()  # both begin writing together
    runs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        runs.append(json.loads(out))
    assert [r["lost"] for r in runs] == [0, 0], runs
    # They did write at the same time (otherwise this test proves nothing).
    assert max(r["began"] for r in runs) < min(r["ended"] for r in runs), runs
    entries = AnswerLog(path).recent(10 * n)
    assert len(entries) == 2 * n
    assert len({e["id"] for e in entries}) == 2 * n
    asked = {e["question"] for e in entries}
    assert asked == {f"{t} question {i}?" for t in tags for i in range(n)}


def test_threads_of_one_server_logging_at_once_lose_nothing(book):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda i: book.record(answer(question=f"Thread {i}?")), range(200)))
    assert None not in ids and len(set(ids)) == 200
    assert len(book.recent(500)) == 200


# A log that cannot be written -----------------------------------------------------------------
def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "rag.answer_log" and r.levelno >= logging.WARNING
    ]


def test_a_log_in_an_unusable_folder_never_fails_the_answer_and_says_so_once(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data dir should be")
    book = AnswerLog(blocker / "data" / LOG_FILE)
    with caplog.at_level(logging.WARNING, logger="rag.answer_log"):
        assert [book.record(answer()) for _ in range(5)] == [None] * 5
    said = _warnings(caplog)
    assert len(said) == 1 and "not being logged" in said[0] and "RAG_LOG=false" in said[0]


def test_a_damaged_log_file_never_fails_the_answer_and_says_so_once(tmp_path, caplog):
    path = tmp_path / LOG_FILE
    path.write_bytes(b"this is not a database, it was overwritten by something else " * 100)
    book = AnswerLog(path)
    with caplog.at_level(logging.WARNING, logger="rag.answer_log"):
        assert [book.record(answer()) for _ in range(3)] == [None] * 3
    assert len(_warnings(caplog)) == 1


FULL_DISK = textwrap.dedent(
    """
    import json, logging, resource, signal, sys
    from pathlib import Path
    from rag.answer_log import AnswerLog
    from tests.test_answer_log import answer
    warnings = []
    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())
    logging.getLogger("rag.answer_log").addHandler(Keep(logging.WARNING))
    log = AnswerLog(Path(sys.argv[1]))
    first = log.record(answer())
    # From here on no file may grow: what a full disk does to a writer.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = max(p.stat().st_size for p in Path(sys.argv[1]).parent.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    full = [log.record(answer(question=f"Storm {i}?" + " gale" * 1900)) for i in range(5)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    after = log.record(answer(question="After the storm?"))
    print(json.dumps({"first": first, "full": full, "after": after, "warnings": warnings}))
    """
)


def test_a_full_disk_never_fails_the_answer_and_says_so_once(tmp_path):
    path = tmp_path / "data" / LOG_FILE
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["first"] == 1 and got["full"] == [None] * 5
    assert got["after"] == 2  # logging resumes once there is room again
    warned = got["warnings"]
    assert len(warned) == 2, warned  # the outage, once; then that it works again
    assert "not being logged" in warned[0] and "written again" in warned[1]


# Reading --------------------------------------------------------------------------------------
def test_recent_is_newest_first_and_search_ignores_case(book):
    book.record(answer(question="Who opened the Skarholt bridge?"))
    book.record(answer(question="Quand l'ÉCOLE de Vesnaby ouvre-t-elle ?", short=None))
    book.record(answer(question="Who paid for the Skarholt bridge?", short="the Vesnaby council"))
    assert [e["id"] for e in book.recent(2)] == [3, 2]
    assert [e["id"] for e in book.recent(10, search="who OPENED")] == [1]
    assert [e["id"] for e in book.recent(10, search="école")] == [2]  # beyond ASCII too
    assert [e["id"] for e in book.recent(10, search="VESNABY COUNCIL")] == [3]  # the answer
    book.feedback(2, right=False, answer="in the autumn of 2026")
    assert [e["id"] for e in book.recent(10, search="autumn")] == [2]  # the correction
    assert book.recent(10, search="Lindqvist") == []
    assert book.get(99) is None


def test_reading_before_anything_was_logged_says_what_to_do(book):
    with pytest.raises(InvalidInput, match="ask a question first"):
        book.recent(5)


# Corrections and gold -------------------------------------------------------------------------
def test_feedback_and_export_gold_round_trip_through_the_gold_loader(book, tmp_path):
    confirmed = book.record(
        answer(as_of="2025-04-03"), filters={"source": "fjord.example", "top_k": 3}
    )
    corrected = book.record(answer(question="Who paid for the Skarholt bridge?", short="Tuesday"))
    unanswerable = book.record(
        answer(question="How long is the Skarholt bridge?", short="Ilse Varga")
    )
    refusal_right = book.record(answer(question="Who designed the bridge lamps?", refused=True))
    refusal_wrong = book.record(answer(question="When was the bridge first planned?", refused=True))
    book.record(answer(question="Never judged?"))  # no feedback: not exported
    book.feedback(confirmed or 0, right=True)
    book.feedback(corrected or 0, right=True)  # the later verdict replaces this one
    book.feedback(corrected or 0, right=False, answer="12 million kroner")
    book.feedback(unanswerable or 0, right=False)
    book.feedback(refusal_right or 0, right=True)
    book.feedback(refusal_wrong or 0, right=False)
    with pytest.raises(InvalidInput, match="--wrong"):
        book.feedback(confirmed or 0, right=True, answer="Someone else")
    with pytest.raises(InvalidInput, match="rag logs"):
        book.feedback(99, right=True)

    report = book.export_gold(tmp_path / "mine.jsonl")
    assert (report.written, report.unanswerable) == (4, 2)
    assert report.skipped == {"refusal marked wrong without the right answer (use --answer)": 1}
    items = {i.question: i for i in load_gold(tmp_path / "mine.jsonl")}
    assert set(items) == {
        "Who opened the Skarholt bridge?",
        "Who paid for the Skarholt bridge?",
        "How long is the Skarholt bridge?",
        "Who designed the bridge lamps?",
    }
    a = items["Who opened the Skarholt bridge?"]
    assert a.answers == ["Ilse Varga"] and a.answerable and a.question_date == "2025-04-03"
    assert a.evidence == ["fjord/bridge"]  # the cited article holding it; not the ferry story
    rows = [json.loads(line) for line in (tmp_path / "mine.jsonl").read_text().splitlines()]
    assert [r.get("filters") for r in rows] == [{"source": "fjord.example"}, None, None, None]
    b = items["Who paid for the Skarholt bridge?"]
    assert b.answers == ["12 million kroner"] and b.evidence == ["fjord/bridge"]
    for q in ("How long is the Skarholt bridge?", "Who designed the bridge lamps?"):
        assert items[q].answers == [] and not items[q].answerable and items[q].evidence == []


def test_evidence_is_a_cited_article_holding_the_whole_answer_not_part_of_a_word(book, tmp_path):
    book.feedback(book.record(answer()) or 0, right=False, answer="Skar")  # in "Skarholt" only
    book.export_gold(tmp_path / "g.jsonl")
    [item] = load_gold(tmp_path / "g.jsonl")
    assert item.answers == ["Skar"] and item.evidence == []


def test_a_follow_up_becomes_gold_as_its_standalone_question(book, tmp_path):
    a = answer(question="And who opened it?")
    a.standalone_question = "Who opened the Skarholt bridge?"
    book.feedback(book.record(a) or 0, right=True)
    book.export_gold(tmp_path / "g.jsonl")
    assert [i.question for i in load_gold(tmp_path / "g.jsonl")] == [
        "Who opened the Skarholt bridge?"
    ]


# The command line -----------------------------------------------------------------------------
def test_rag_logs_lists_and_json_gives_one_object_per_answer_with_its_id(book, settings, capsys):
    for town in ("Skarholt", "Vesnaby", "Orrefjord"):
        book.record(answer(question=f"Who opened the {town} bridge?"), settings=settings)
    assert rag_cli(settings, "logs", "-n", "2") == 0
    out = capsys.readouterr().out
    assert "#3" in out and "Orrefjord" in out and "#2" in out and "Skarholt" not in out
    assert "→ Ilse Varga" in out

    assert rag_cli(settings, "logs", "--json", "--search", "vesnaby") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["id"] == 2 and obj["question"] == "Who opened the Vesnaby bridge?"
    assert obj["citations"][0]["doc_id"] == "fjord/bridge" and obj["feedback"] is None

    assert rag_cli(settings, "logs", "--json") == 0
    ids = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert ids == [3, 2, 1]

    assert rag_cli(settings, "logs", "--search", "Lindqvist") == 0
    assert "No logged answer matches" in capsys.readouterr().out


def test_rag_logs_show_and_feedback(book, settings, capsys):
    book.record(answer(), filters={"source": "fjord.example", "top_k": 4}, settings=settings)
    assert rag_cli(settings, "logs", "show", "1") == 0
    out = capsys.readouterr().out
    assert "Who opened the Skarholt bridge?" in out and "As of:      2025-04-03" in out
    assert "source=fjord.example, top_k=4" in out and "(fjord/bridge, chars 100-" in out
    assert "Model:      local:" in out

    assert rag_cli(settings, "feedback", "1", "--wrong", "--answer", "Tomas Lund") == 0
    assert "marked wrong: Tomas Lund" in capsys.readouterr().out
    assert rag_cli(settings, "logs", "show", "1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["feedback"]["verdict"] == "wrong" and shown["feedback"]["answer"] == "Tomas Lund"
    assert rag_cli(settings, "logs") == 0
    assert "[wrong: Tomas Lund]" in capsys.readouterr().out

    with pytest.raises(InvalidInput, match="no logged answer has id 7"):
        rag_cli(settings, "logs", "show", "7")
    with pytest.raises(InvalidInput, match="--answer goes with --wrong"):
        rag_cli(settings, "feedback", "1", "--right", "--answer", "x")
    for bad in (
        ["feedback", "1"],
        ["feedback", "1", "--right", "--wrong"],
        ["logs", "-n", "0"],
        ["feedback", "abc", "--right"],
    ):
        with pytest.raises(SystemExit) as exit_:
            rag_cli(settings, *bad)
        assert exit_.value.code == 2  # argparse's usage error, as for every rag command


def test_rag_logs_export_gold(book, settings, tmp_path, capsys):
    book.record(answer(), settings=settings)
    with pytest.raises(InvalidInput, match="rag feedback ID --right"):
        rag_cli(settings, "logs", "export-gold", str(tmp_path / "none.jsonl"))
    assert not (tmp_path / "none.jsonl").exists()
    assert rag_cli(settings, "feedback", "#1", "--right") == 0
    capsys.readouterr()
    target = tmp_path / "out" / "gold.jsonl"
    assert rag_cli(settings, "logs", "export-gold", str(target)) == 0
    assert f"rag eval --gold {target}" in capsys.readouterr().out
    assert [i.answers for i in load_gold(target)] == [["Ilse Varga"]]


# With the real engine -------------------------------------------------------------------------
@pytest.mark.e2e
def test_a_real_answer_confirmed_right_scores_as_gold(tmp_path, settings):
    from rag.engine import Engine
    from rag.evaluate import score_item
    from rag.ingest import ingest
    from tests.fakes import FakeLLM
    from tests.news_fixture import write_corpus

    assert ingest([write_corpus(tmp_path / "news")], settings, progress=False).ok
    engine = Engine.from_settings(settings, llm=FakeLLM("The harbour reopened on Tuesday [1]."))
    first = engine.ask("When did the Portmere harbour reopen?", as_of="2024-12-31")
    book = AnswerLog.from_settings(settings)
    # The engine logs every answer itself, unless asked not to.
    entry_id = first.log_id
    assert entry_id is not None and book.get(entry_id)["short_answer"] == "Tuesday"  # type: ignore[index]
    unlogged = engine.ask("When did the Portmere harbour reopen?", log=False)
    assert unlogged.log_id is None and len(book.recent(10)) == 1
    assert book.get(entry_id)["collection"] == engine.store.name  # type: ignore[index]
    book.feedback(entry_id, right=True)
    book.export_gold(tmp_path / "gold.jsonl")
    [item] = load_gold(tmp_path / "gold.jsonl")
    assert item.question_date == "2024-12-31" and item.evidence == ["news/harbour"]
    again = engine.ask(item.question, as_of=item.question_date).to_dict()
    assert score_item(item, again, settings.top_k)["em"] == 1.0
