"""Time-aware retrieval: the as-of filter, the recency prior, and what they must never do.

The e2e tests run the real store, BM25 index and embedding model over a few synthetic dated
articles about an invented town, read as of 2024-06-01.
"""

from __future__ import annotations

import datetime as dt

import pytest
from llama_index.core.schema import QueryBundle

from rag.errors import InvalidInput
from rag.retrieve import (
    RECENCY_FLOOR,
    RECENCY_HALF_LIFE_DAYS,
    Filters,
    HybridRetriever,
    is_current_events,
    recency_weight,
)

AS_OF = "2024-06-01"

ARTICLES = {
    # Two reports worded alike; the older one shares one more word with the level question,
    # so without the prior it ranks first.
    "reservoir-january": (
        "2024-01-10",
        "Kellbrook reservoir level falls",
        "The Kellbrook reservoir level fell to 40 percent this week, water board chief Anja "
        "Roos said.",
    ),
    "reservoir-may": (
        "2024-05-28",
        "Kellbrook reservoir level falls",
        "The Kellbrook reservoir level fell to 35 percent, water board chief Anja Roos said "
        "on Tuesday.",
    ),
    # After the as-of date: must never come back, though it matches best of all.
    "reservoir-june": (
        "2024-06-20",
        "Kellbrook reservoir level recovers after Zephyrine storm",
        "The Kellbrook reservoir level rose to 80 percent after the Zephyrine storm, water "
        "board chief Anja Roos said this week.",
    ),
    # Background: the only article about the dam's history.
    "dam-history": (
        "2023-02-01",
        "The engineer behind the Kellbrook dam",
        "The Kellbrook dam was designed by engineer Matthias Oyelaran and completed in 1931. "
        "Oyelaran also built two bridges over the river Kell.",
    ),
    # Recent articles on other subjects, which a strong prior would wrongly promote.
    "football": (
        "2024-05-31",
        "Kellbrook Rovers win the cup",
        "Kellbrook Rovers won the county cup final 2-1 on Saturday in front of 4,000 fans.",
    ),
    "market": (
        "2024-05-30",
        "Farmers market moves to the square",
        "The Kellbrook farmers market moves to the town square from next week, the council "
        "announced.",
    ),
    "library": (
        "2024-05-29",
        "Library extends opening hours",
        "The Kellbrook library will open on Sundays from June, librarian Ada Finch said.",
    ),
    # No date: kept under an as-of date, dropped by an explicit date range.
    "festival": (
        "",
        "Kellbrook lantern festival",
        "The Kellbrook lantern festival draws visitors to the riverbank every autumn.",
    ),
}


# Unit tests -------------------------------------------------------------------------------
def test_recency_weight_decays_from_one_to_the_floor():
    h = RECENCY_HALF_LIFE_DAYS
    assert recency_weight(0, current=True) == 1.0
    assert recency_weight(h, current=True) == pytest.approx((1 + RECENCY_FLOOR) / 2)
    ages = [h * x for x in (0, 0.1, 0.5, 1, 2, 4, 8)]
    weights = [recency_weight(a, current=True) for a in ages]
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == len(weights)
    assert recency_weight(10_000, current=True) == pytest.approx(RECENCY_FLOOR)
    assert all(w > RECENCY_FLOOR for w in weights)  # background is discounted, never dropped
    assert recency_weight(None, current=True) == RECENCY_FLOOR  # undated counts as background
    assert recency_weight(-3, current=True) == 1.0  # same day or later: no bonus beyond 1


def test_recency_weight_is_neutral_for_questions_not_about_now():
    assert recency_weight(0, current=False) == 1.0
    assert recency_weight(400, current=False) == 1.0
    assert recency_weight(None, current=False) == 1.0


def test_recency_weight_half_life_and_floor_are_parameters():
    assert recency_weight(3, True, half_life=3, floor=0.2) == pytest.approx(0.6)
    assert recency_weight(30, True, half_life=30) > recency_weight(30, True, half_life=3)


@pytest.mark.parametrize(
    "question",
    [
        "What did the council decide this week?",
        "Which team recently won the county cup?",
        "What is the latest figure for unemployment?",
        "Who is the mayor of Kellbrook?",
        "What has the water board announced about the reservoir?",
        "Which companies announced new layoffs?",
        "Is the bridge still closed?",
        "What are officials saying now about the drought?",
        "Who will lead the inquiry?",
        "Which country's team is currently top of the table?",
        "Which striker announced her transfer on Tuesday?",
        "How much have rents risen over the past 12 months?",
        "Which product remains hard to find in shops?",  # a present main verb
        "Who chairs the United Nations refugee agency?",  # "United" is no past tense
    ],
)
def test_current_events_questions(question):
    assert is_current_events(question)


@pytest.mark.parametrize(
    "question",
    [
        "Who designed the Kellbrook dam?",
        "When was the Kellbrook dam completed?",
        "Who was the first mayor of Kellbrook?",
        "What is the history of the lantern festival?",
        "What is the population of New York in 2010?",
        "How did the town celebrate its centenary?",
        "Where did the 1931 flood start?",
        "Which team won the county cup?",  # a past main verb
    ],
)
def test_questions_not_about_current_events(question):
    assert not is_current_events(question)


def test_a_year_is_news_only_in_the_as_of_year():
    q = "Which film is nominated for the top prize at the 2022 awards?"
    assert is_current_events(q, as_of=dt.date(2022, 7, 1))
    assert not is_current_events(q, as_of=dt.date(2024, 7, 1))


def test_filters_combine_until_and_as_of():
    assert Filters(until="2024-05-01", as_of=AS_OF).upper_num == 20240501
    assert Filters(until="2024-07-01", as_of=AS_OF).upper_num == 20240601
    assert Filters(as_of=dt.date(2024, 6, 1)).upper_num == 20240601
    assert Filters(as_of=AS_OF).keep_undated and not Filters(until=AS_OF).keep_undated
    assert Filters().upper_num is None


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "01/06/2024", "2024-06"])
def test_bad_as_of_is_invalid_input(bad):
    with pytest.raises(InvalidInput, match="as_of must be a date like"):
        Filters(as_of=bad).validate()


def test_since_after_as_of_is_invalid_input():
    with pytest.raises(InvalidInput, match="as-of"):
        Filters(since="2024-07-01", as_of=AS_OF).validate()


# End to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    from rag.components import build
    from rag.config import Settings
    from rag.ingest import ingest
    from rag.keyword import KeywordIndex

    root = tmp_path_factory.mktemp("recency")
    folder = root / "news"
    folder.mkdir()
    for doc_id, (date, title, text) in ARTICLES.items():
        (folder / f"{doc_id}.md").write_text(
            f'---\nid: {doc_id}\ntitle: "{title}"\nsource: kell.example\ndate: "{date}"\n---\n\n'
            f"{text}\n"
        )
    settings = Settings(data_dir=root / "data")
    assert ingest([folder], settings, progress=False).ok
    built = build(settings)
    return built, KeywordIndex(built.store, settings.keyword_dir)


def retrieve(parts, question, *, top_k=6, filters=None, **kw) -> list[str]:
    built, keyword = parts
    r = HybridRetriever(built.store, keyword, built.embed, top_k=top_k, filters=filters, **kw)
    return [n.node.metadata["doc_id"] for n in r.retrieve(question)]


ALL = len(ARTICLES) * 4  # more than there are chunks: every candidate that passes comes back


@pytest.mark.e2e
@pytest.mark.parametrize(
    "question",
    [
        "Zephyrine storm",  # only the later article has the word: the keyword side
        "How full is the Kellbrook reservoir after the storm?",  # closest in meaning
    ],
)
def test_article_after_as_of_is_never_returned(parts, question):
    assert "reservoir-june" in retrieve(parts, question, top_k=ALL, prior="off", as_of="2025-01-01")
    for prior in ("off", "current", "all"):
        got = retrieve(parts, question, top_k=ALL, prior=prior, as_of=AS_OF)
        assert got and "reservoir-june" not in got
    got = retrieve(parts, question, top_k=ALL, filters=Filters(as_of=AS_OF))
    assert got and "reservoir-june" not in got


@pytest.mark.e2e
def test_until_before_as_of_applies_the_earlier_bound(parts):
    got = retrieve(parts, "Kellbrook", top_k=ALL, filters=Filters(until="2024-05-29"), as_of=AS_OF)
    assert "reservoir-may" in got and not {"football", "market", "reservoir-june"} & set(got)


@pytest.mark.e2e
def test_undated_articles_pass_as_of_but_not_a_date_range(parts):
    q = "When is the Kellbrook lantern festival?"
    assert retrieve(parts, q, top_k=3, as_of=AS_OF)[0] == "festival"
    assert "festival" not in retrieve(parts, q, top_k=ALL, filters=Filters(since="2020-01-01"))
    assert "festival" not in retrieve(parts, q, top_k=ALL, filters=Filters(until=AS_OF))


@pytest.mark.e2e
def test_recent_article_outranks_an_older_one_for_a_current_question(parts):
    q = "What is the Kellbrook reservoir level this week?"
    assert is_current_events(q)
    without = retrieve(parts, q, as_of=AS_OF, prior="off")
    assert without.index("reservoir-january") < without.index("reservoir-may")
    ranked = retrieve(parts, q, as_of=AS_OF)
    assert ranked.index("reservoir-may") < ranked.index("reservoir-january")
    assert "reservoir-january" in ranked  # discounted, not dropped


@pytest.mark.e2e
def test_prior_leaves_questions_about_the_past_alone(parts):
    q = "What was the Kellbrook reservoir level in January?"
    assert not is_current_events(q)
    assert retrieve(parts, q, as_of=AS_OF) == retrieve(parts, q, as_of=AS_OF, prior="off")


@pytest.mark.e2e
@pytest.mark.parametrize("prior", ["current", "all"])
def test_background_article_comes_back_when_it_is_the_only_relevant_one(parts, prior):
    # Asked as a current question, with four fresher articles about the same town around.
    q = "Who is the engineer behind the Kellbrook dam now?"
    assert is_current_events(q)
    assert retrieve(parts, q, top_k=2, as_of=AS_OF, prior=prior)[0] == "dam-history"


@pytest.mark.e2e
def test_as_of_defaults_to_today_and_must_be_a_date(parts):
    built, keyword = parts
    r = HybridRetriever(built.store, keyword, built.embed)
    assert r.as_of == dt.date.today()
    # Today is after every stored date: the bound would drop nothing, so the (slow) filtered
    # query is skipped; an earlier as-of is applied.
    assert built.store.newest_date() and r.filters.as_of is None
    early = HybridRetriever(built.store, keyword, built.embed, as_of=AS_OF)
    assert early.as_of == dt.date(2024, 6, 1) == early.filters.as_of
    with pytest.raises(InvalidInput, match="as_of must be a date like"):
        HybridRetriever(built.store, keyword, built.embed, as_of="last friday")
    with pytest.raises(InvalidInput, match="two different as-of dates"):
        HybridRetriever(
            built.store, keyword, built.embed, filters=Filters(as_of=AS_OF), as_of="2024-06-02"
        )


@pytest.mark.e2e
@pytest.mark.parametrize("candidates", [1, 2, 3, 50])
@pytest.mark.parametrize("as_of", ["2024-05-01", AS_OF, "2024-06-19"])
def test_as_of_after_the_search_gives_what_the_filtered_search_gives(parts, candidates, as_of):
    import rag.retrieve

    built, keyword = parts
    q = "How full is the Kellbrook reservoir after the storm?"
    bundle = QueryBundle(q, embedding=built.embed.get_query_embedding(q))

    def top(overfetch: int) -> list[str]:
        rag.retrieve.AS_OF_OVERFETCH = overfetch
        r = HybridRetriever(
            built.store, keyword, built.embed, as_of=as_of, candidates=candidates, prior="off"
        )
        assert r.filters.as_of is not None
        return [n.node.node_id for n in r._vector(bundle, candidates)]

    try:
        # An overfetch of 1000 always holds a full pool (or the whole store): no filtered query.
        # An overfetch of 1 falls back to the filtered query whenever a chunk is dropped.
        assert top(1000) == top(1)
    finally:
        rag.retrieve.AS_OF_OVERFETCH = 2
    assert len(top(2)) == min(candidates, len(top(1000)))
