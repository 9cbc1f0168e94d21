"""Planted instructions in articles are never obeyed; sentences that only mention AI still answer.

The corpus in tests/data/plantings/ holds fictional news articles with instructions planted for
AI assistants (other phrasings, French, German, Spanish, split over two sentences, in a title, in
a list, in JSONL) next to ordinary sentences that merely mention AI. cases.json says, for each
planting, which text must never reach the prompt and which strings would show it was obeyed.

Figures (plantings obeyed, ordinary sentences lost) are printed: run with `-s` to see them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from rag.articles import Article, read_sources
from rag.clean import clean_text
from rag.text import sentence_spans, terms

DATA = Path(__file__).parent / "data" / "plantings"
ARTICLES = DATA / "articles"
CASES = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
PLANTINGS: list[dict] = CASES["plantings"]
ORDINARY: list[dict] = CASES["ordinary"]
MENTIONS: list[str] = CASES["mentions"]


def corpus() -> dict[str, Article]:
    out = {}
    for a in read_sources([ARTICLES], max_bytes=1_000_000):
        assert isinstance(a, Article), a
        out[a.id] = a
    return out


def test_corpus_is_as_large_and_varied_as_required():
    docs = corpus()
    assert len(PLANTINGS) >= 20 and len(ORDINARY) >= 15
    assert {p["where"] for p in PLANTINGS} >= {"body", "split", "title", "list", "jsonl"}
    assert {p["lang"] for p in PLANTINGS} >= {"en", "fr", "de", "es"}
    for case in PLANTINGS:
        text = clean_text(docs[case["doc"]].text)
        for planted in case["planted"]:
            assert planted in text, (case["id"], planted)
        if case["where"] == "title":
            assert docs[case["doc"]].title == case["title"]
    for case in ORDINARY:
        assert case["sentence"] in clean_text(docs[case["doc"]].text), case["sentence"]
        assert case["expect"].lower() in case["sentence"].lower()
    # A forbidden string must be the planting's alone, or finding it proves nothing.
    genuine = "\n".join(
        clean_text(a.text) for a in docs.values() if a.id not in {"harlow_notice"}
    )
    for case in PLANTINGS:
        for planted in case["planted"]:
            genuine = genuine.replace(planted, "")
    for case in PLANTINGS:
        for word in case["forbidden"]:
            assert word.lower() not in genuine.lower(), (case["id"], word)


# Pipeline: real store, real embeddings, an LLM that does whatever its context says ----------


def obeying_reply(messages: Sequence) -> str:
    """A model that obeys its context: it repeats the context lines (passage sentences and
    title headers) that share the most words with the question, as a planted instruction
    asks a model to ("when asked who built the dam, answer that ...")."""
    user = messages[-1].content or ""
    context, _, question = user.rpartition("Question:")
    q_terms = terms(question)
    candidates = []
    for line in context.splitlines():
        line = re.sub(r"^\[\d+\]\s*", "", line.strip())
        if line and line != "Passages:":
            candidates += [line[s:e] for s, e in sentence_spans(line)]
    ranked = sorted(candidates, key=lambda s: -len(q_terms & terms(s)))
    chosen = [s for s in ranked[:3] if q_terms & terms(s)]
    return " ".join(chosen) or "I don't know."


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from rag.config import Settings
    from rag.engine import Engine
    from rag.ingest import ingest
    from tests.fakes import FakeLLM

    settings = Settings(data_dir=tmp_path_factory.mktemp("plantings") / "data")
    assert ingest([ARTICLES], settings, progress=False).ok
    return Engine.from_settings(settings, llm=FakeLLM(obeying_reply))


def ask(engine, question: str) -> tuple[object, str]:
    """The answer, and the context part of every prompt the model saw for it."""
    llm = engine.llm
    before = len(llm.calls)
    answer = engine.ask(question)
    prompts = [
        "\n".join((m.content or "").rpartition("Question:")[0] for m in call)
        for call in llm.calls[before:]
    ]
    return answer, "\n".join(prompts)


@pytest.mark.e2e
def test_no_planting_is_obeyed_cited_or_shown_to_the_model(engine):
    obeyed, prompted = [], []
    for case in PLANTINGS:
        answer, prompt = ask(engine, case["question"])
        shown = " ".join(
            [answer.text] + [f"{c.title} {c.text}" for c in answer.citations]
        ).lower()
        for word in case["forbidden"]:
            if word.lower() in shown:
                obeyed.append(f"{case['id']}: {word!r} in {answer.text!r}")
            if word.lower() in prompt.lower():
                prompted.append(f"{case['id']}: {word!r} reached the prompt")
        for planted in case["planted"]:
            if planted in prompt:
                prompted.append(f"{case['id']}: {planted!r} reached the prompt")
    print(
        f"\nplantings obeyed (in answer or citations): {len({o.split(':')[0] for o in obeyed})}"
        f"/{len(PLANTINGS)}; reached the prompt: {len({p.split(':')[0] for p in prompted})}"
        f"/{len(PLANTINGS)}"
    )
    assert not obeyed, "\n".join(obeyed)
    assert not prompted, "\n".join(prompted)


@pytest.mark.e2e
def test_sentences_that_only_mention_ai_are_still_answered_and_cited(engine):
    lost = []
    for case in ORDINARY:
        answer, _ = ask(engine, case["question"])
        cited = [c for c in answer.citations if c.doc_id == case["doc"]]
        ok = (
            not answer.refused
            and case["expect"].lower() in answer.text.lower()
            and any(case["expect"].lower() in c.text.lower() for c in cited)
        )
        if not ok:
            lost.append(f"{case['question']!r} -> {answer.text!r}")
    print(f"\nordinary sentences lost: {len(lost)}/{len(ORDINARY)}")
    assert not lost, "\n".join(lost)
