"""The chat UI's logic without a browser: its handlers against a real store, embeddings and
answer log, with a scripted LLM (tests/test_ui_browser.py drives the same app in Chromium)."""

import html

import pytest

from rag.errors import InvalidInput
from ui.app import build_app, correct, judge, picked_date

pytestmark = pytest.mark.e2e  # the real embedding model and store


@pytest.fixture
def engine(tmp_path, settings):
    from rag.engine import Engine
    from rag.ingest import ingest
    from tests.fakes import FakeLLM
    from tests.news_fixture import write_corpus

    assert ingest([write_corpus(tmp_path / "news")], settings, progress=False).ok
    return Engine.from_settings(settings, llm=FakeLLM("The harbour reopened on Tuesday [1]."))


def handler(app, name: str):
    """The function behind one of the page's events, by its Python name."""
    return next(f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == name)


def ask(app, question: str, chat=None, log_ids=None, **filters):
    args = {"source": "", "since": "", "until": "", "top_k": 4, "as_of": "", **filters}
    *_, last = handler(app, "respond")(
        question,
        chat or [],
        [],
        args["source"],
        args["since"],
        args["until"],
        args["top_k"],
        args["as_of"],
        log_ids or {},
    )
    return last


# ---- corrections


def test_each_answer_in_the_chat_knows_its_answer_log_entry(engine, settings):
    app = build_app(engine, settings)
    chat, _history, _box, ids = ask(app, "When did the Portmere harbour reopen?")
    assert list(ids) == [1]  # the answer, not the question
    entry = engine.answer_log.get(ids[1])
    assert entry["question"] == "When did the Portmere harbour reopen?"
    chat, _history, _box, ids = ask(app, "Who is the harbour master?", chat, ids)
    assert list(ids) == [1, 3] and ids[3] == ids[1] + 1


def test_new_conversation_forgets_the_old_answers_ids(engine, settings):
    app = build_app(engine, settings)
    _chat, _h, _b, ids = ask(app, "When did the Portmere harbour reopen?")
    _chat, _h, _b, ids = ask(app, "Who is the harbour master?", [], ids)  # chat cleared
    assert list(ids) == [1]
    assert engine.answer_log.get(ids[1])["question"] == "Who is the harbour master?"


def test_wrong_with_a_correct_answer_is_recorded_in_the_answer_log(engine, settings):
    app = build_app(engine, settings)
    _chat, _h, _b, ids = ask(app, "When did the Portmere harbour reopen?")
    verdict = judge(engine.answer_log, ids, 1, False)
    assert verdict.awaiting == ids[1] and "wrong" in verdict.note
    assert engine.answer_log.get(ids[1])["feedback"]["verdict"] == "wrong"
    done = correct(engine.answer_log, verdict.awaiting, "  on Wednesday ")
    assert done.awaiting is None and "corrected" in done.note
    fb = engine.answer_log.get(ids[1])["feedback"]
    assert fb["verdict"] == "wrong" and fb["answer"] == "on Wednesday"


def test_right_confirms_and_a_thumb_taken_back_changes_nothing(engine, settings):
    app = build_app(engine, settings)
    _chat, _h, _b, ids = ask(app, "When did the Portmere harbour reopen?")
    verdict = judge(engine.answer_log, ids, 1, True)
    assert verdict.awaiting is None and "right" in verdict.note
    assert judge(engine.answer_log, ids, 1, "").note == ""  # unclicked
    assert engine.answer_log.get(ids[1])["feedback"]["verdict"] == "right"


def test_a_wrong_with_no_answer_says_the_articles_do_not_hold_it(engine, settings):
    app = build_app(engine, settings)
    _chat, _h, _b, ids = ask(app, "When did the Portmere harbour reopen?")
    done = correct(engine.answer_log, judge(engine.answer_log, ids, 1, False).awaiting, "")
    assert "do not hold" in done.note
    assert engine.answer_log.get(ids[1])["feedback"] == {
        "verdict": "wrong",
        "answer": None,
        "time": engine.answer_log.get(ids[1])["feedback"]["time"],
    }


def test_feedback_on_something_that_is_not_a_logged_answer_says_why(engine, settings):
    app = build_app(engine, settings)
    _chat, _h, _b, ids = ask(app, "When did the Portmere harbour reopen?")
    assert "Only answers" in judge(engine.answer_log, ids, 0, True).note  # the question
    assert "not logged" in judge(engine.answer_log, {1: None}, 1, True).note
    too_long = correct(engine.answer_log, ids[1], "x" * 1_000_000)
    assert too_long.awaiting == ids[1] and "too long" in too_long.note
    assert "first" in correct(engine.answer_log, None, "Tuesday").note


# ---- dates


@pytest.mark.parametrize(
    ("value", "day"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05 00:00:00", "2024-03-05"),
    ],
)
def test_a_picked_date_is_a_day_or_nothing(value, day):
    assert picked_date(value, "From date") == day


@pytest.mark.parametrize("value", ["yesterday", "05/03/2024", "2024-02-30", "2024-3-5", "2024"])
def test_a_typed_date_that_is_not_one_says_how_to_pick_it(value):
    with pytest.raises(InvalidInput, match="From date: .* is not a date; pick one"):
        picked_date(value, "From date")


def test_the_chat_filters_by_picked_dates(engine, settings):
    app = build_app(engine, settings)
    chat, *_ = ask(app, "When did the Portmere harbour reopen?", since="2024-06-01 00:00:00")
    assert "harbour reopens" not in chat[-1]["content"]  # dated 2024-03-05: filtered out
    chat, *_ = ask(app, "When did the Portmere harbour reopen?", until="2024-03-05")
    assert "harbour reopens" in chat[-1]["content"]


@pytest.mark.parametrize(
    ("dates", "error"),
    [
        ({"since": "soon"}, "From date: 'soon' is not a date"),
        ({"as_of": "2024-13-01"}, "As of: '2024-13-01' is not a date"),
        ({"since": "2024-06-01", "until": "2024-03-01"}, "is after the To date"),
    ],
)
def test_bad_dates_are_explained_in_the_chat(engine, settings, dates, error):
    app = build_app(engine, settings)
    chat, *_ = ask(app, "When did the Portmere harbour reopen?", **dates)
    assert error in html.unescape(chat[-1]["content"])
