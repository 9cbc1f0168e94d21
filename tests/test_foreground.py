"""Background ingestion pauses while a question is answered (rag serve --watch)."""

import threading
import time

import pytest

from rag.engine import Engine
from rag.foreground import Foreground
from rag.ingest import SLICE_CHUNKS, Ingestor, ingest
from tests.fakes import FakeLLM
from tests.news_fixture import write_corpus


def _waiter(fg: Foreground) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        fg.wait_idle()
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


def test_background_work_waits_while_a_question_is_answered():
    fg = Foreground(max_wait=30)
    with fg.busy():
        t, done = _waiter(fg)
        assert not done.wait(0.5)  # still answering: the slice waits
    assert done.wait(5)  # the answer is done: it goes on at once
    t.join()
    assert fg.active == 0 and fg.waited >= 0.4


def test_idle_foreground_does_not_delay_and_a_long_answer_cannot_starve_ingestion():
    fg = Foreground(max_wait=0.3)
    t0 = time.perf_counter()
    fg.wait_idle()
    assert time.perf_counter() - t0 < 0.1
    with fg.busy(), fg.busy():  # two questions at once: both must end before the gate opens
        t, done = _waiter(fg)
        assert done.wait(5)  # max_wait passed: one slice goes ahead anyway
    t.join()


@pytest.mark.e2e
def test_engine_holds_the_foreground_for_the_whole_answer(tmp_path, settings):
    assert ingest([write_corpus(tmp_path / "news")], settings, progress=False).ok
    seen: list[int] = []
    eng = Engine.from_settings(settings, llm=FakeLLM("The harbour reopened on Tuesday [1]."))
    llm = eng.llm
    original = llm.stream_chat

    def spy(messages, **kw):
        seen.append(eng.foreground.active)
        return original(messages, **kw)

    object.__setattr__(llm, "stream_chat", spy)
    stream = eng.stream("When did the Portmere harbour reopen?")
    next(iter(stream))  # mid-answer
    assert eng.foreground.active == 1
    assert not stream.answer.refused
    assert seen == [1] and eng.foreground.active == 0


@pytest.mark.e2e
def test_ingestor_embeds_nothing_while_a_question_is_in_progress(tmp_path, settings, embed):
    from rag.components import build

    folder = write_corpus(tmp_path / "news")
    parts = build(settings)
    fg = Foreground(max_wait=60)
    sizes: list[int] = []
    original = embed.get_text_embedding_batch

    def spy(texts, **kw):
        sizes.append(len(texts))
        return original(texts, **kw)

    object.__setattr__(embed, "get_text_embedding_batch", spy)
    try:
        ingestor = Ingestor(settings, parts.store, embed, foreground=fg)
        report: dict = {}
        with fg.busy():
            worker = threading.Thread(target=lambda: report.update(r=ingestor.run([folder])))
            worker.start()
            time.sleep(1.5)
            assert sizes == [] and parts.store.count() == 0  # paused for the question
        worker.join(60)
    finally:
        object.__delattr__(embed, "get_text_embedding_batch")
    assert report["r"].ok and report["r"].articles.added > 0
    assert parts.store.count() == report["r"].chunks.added
    assert sizes and max(sizes) <= SLICE_CHUNKS


def _steps(fail: bool):
    yield "draft "
    if fail:
        raise ValueError("model went away")
    return "the answer"


def test_a_failed_stream_says_why_every_time_it_is_read():
    from rag.engine import AnswerStream

    stream = AnswerStream(_steps(fail=True))
    assert next(stream) == "draft "
    for _ in range(2):
        with pytest.raises(ValueError, match="model went away"):
            _ = stream.answer


def test_a_closed_stream_says_it_was_closed():
    from rag.engine import AnswerStream

    stream = AnswerStream(_steps(fail=False))
    assert next(stream) == "draft "
    stream.close()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        _ = stream.answer
    whole = AnswerStream(_steps(fail=False))
    assert list(whole) == ["draft "] and whole.answer == "the answer"
