"""Corroboration across sources: the other retrieved sentences that state the short answer (in
an equivalent form too), counted by outlet with syndicated copies once, and the sentences of
other sources that give a different value. Everything returned is verbatim. Invented news."""

from __future__ import annotations

from llama_index.core.schema import NodeWithScore, TextNode

from rag.answer_span import ShortAnswer
from rag.corroborate import (
    Corroborator,
    corroborate,
    headline,
    name_key,
    number_citations,
    outlet,
    parse_amount,
    parse_date,
    same_amount,
    same_day,
    same_name,
    to_json,
)
from rag.grounding import citation_for

ARTICLES: dict[str, str] = {}
# Each outlet's own opening, so that stories are told apart from copies by their text.
LEADS = [
    "Ferry queues at Orlen grew all winter as repairs dragged on. ",
    "Traders on the quay have waited two years for a fixed crossing to the island. ",
    "Commuters from Dunmore face another season of detours round the estuary. ",
]


def chunk(doc_id: str, source: str, text: str, lead: str = "") -> NodeWithScore:
    """A retrieved chunk: the whole invented article, `lead` before the text."""
    article = lead + text
    ARTICLES[doc_id] = article
    meta = {
        "doc_id": doc_id,
        "source": source,
        "url": f"https://{source}/{doc_id}",
        "title": f"Story {doc_id}",
        "date": "2031-03-02",
    }
    return NodeWithScore(
        node=TextNode(text=article, start_char_idx=0, end_char_idx=len(article), metadata=meta),
        score=1.0,
    )


def short(doc_id: str, value: str, kind: str, occurrence: int = 0) -> ShortAnswer:
    text = ARTICLES[doc_id]
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(value, start + 1)
    return ShortAnswer(value, 1, doc_id, start, start + len(value), kind, 1.0, "combined")


def find(answer: ShortAnswer, chunks: list[NodeWithScore]):
    result = corroborate(answer, chunks[:1], chunks)
    assert result is not None
    return result


def assert_verbatim(result) -> None:
    for x in result.corroboration.support + [c.where for c in result.conflicts if c.where]:
        article = ARTICLES[x.doc_id]
        assert article[x.start : x.end] == x.sentence
        assert article[x.value_start : x.value_end] == x.value
    for c in result.conflicts:
        assert c.where is not None and c.text == c.where.value


BUDGET = [
    chunk(
        "a1",
        "www.velmar-post.example",
        "Velmar approved a budget of $12.6 million for the Kessel bridge on Monday. "
        "Work starts in spring.",
    ),
    chunk(
        "b1",
        "news.harbour-times.example",
        "Ferry traffic was light. The Velmar council approved a $12,600,000 budget for the "
        "Kessel bridge.",
    ),
    chunk(
        "c1",
        "orlen-herald.example",
        "Velmar approved 12.6 million dollars as the budget for the Kessel bridge on Monday.",
    ),
    # Mentions the amount, but says something else: no support.
    chunk(
        "d1",
        "dunmore-daily.example",
        "Rents in Dunmore rose after investors spent $12.6 million buying flats near the lake.",
    ),
]


def test_equivalent_money_forms_count_as_sources() -> None:
    result = find(short("a1", "$12.6 million", "number"), BUDGET)
    values = {x.value for x in result.corroboration.support}
    assert values == {"$12,600,000", "12.6 million dollars"}
    assert result.corroboration.sources == 3
    assert result.conflicts == []  # equivalent forms are no disagreement
    assert_verbatim(result)


def test_syndicated_copies_count_once() -> None:
    story = (
        "Velmar approved a budget of $12.6 million for the Kessel bridge on Monday. Mayor "
        "Tove Arnskog said the crossing would open within two years. Engineers from Orlen "
        "will inspect the piers first, and the old ferry keeps running until then."
    )
    copies = [
        chunk("s1", "velmar-post.example", story),
        chunk("s2", "wire-mirror.example", story, lead="Posted by the regional desk.\n\n"),
        chunk("s3", "another-mirror.example", story),
        BUDGET[1],
    ]
    result = find(short("s1", "$12.6 million", "number"), copies)
    # Three outlets hold one story; one more wrote its own: two sources.
    assert len(result.corroboration.support) == 3
    assert result.corroboration.sources == 2


def test_same_outlet_counts_once() -> None:
    same = [BUDGET[0], chunk("a2", "velmar-post.example", BUDGET[2].node.get_content())]
    assert find(short("a1", "$12.6 million", "number"), same).corroboration.sources == 1


def test_a_different_value_from_another_source_is_a_conflict() -> None:
    other = chunk(
        "e1",
        "kessel-courier.example",
        "Velmar approved a budget of $13.1 million for the Kessel bridge on Monday, "
        "officials said.",
    )
    result = find(short("a1", "$12.6 million", "number"), [*BUDGET, other])
    assert [(c.text, c.source) for c in result.conflicts] == [
        ("$13.1 million", "kessel-courier.example")
    ]
    assert result.corroboration.sources == 3
    assert_verbatim(result)


def test_a_value_in_an_unrelated_sentence_is_no_conflict() -> None:
    other = chunk(
        "e2",
        "kessel-courier.example",
        "A lottery winner in Orlen collected $3 million after a long wait at the kiosk.",
    )
    assert find(short("a1", "$12.6 million", "number"), [*BUDGET, other]).conflicts == []


def test_dates_in_other_formats_agree_and_another_day_differs() -> None:
    said = "the city said."
    chunks = [
        chunk("t1", "velmar-post.example", f"The Kessel bridge will open on June 4, 2031, {said}"),
        chunk("t2", "harbour-times.example", f"The Kessel bridge opens on 4 June 2031, {said}"),
        chunk("t3", "orlen-herald.example", f"The Kessel bridge will open on 2031-06-04, {said}"),
        chunk(
            "t4", "kessel-courier.example", f"The Kessel bridge will open on June 9, 2031, {said}"
        ),
    ]
    result = find(short("t1", "June 4, 2031", "date"), chunks)
    assert {x.value for x in result.corroboration.support} == {"4 June 2031", "2031-06-04"}
    assert result.corroboration.sources == 3
    assert [c.text for c in result.conflicts] == ["June 9, 2031"]
    assert_verbatim(result)


def test_a_surname_counts_where_the_article_names_the_same_person() -> None:
    chunks = [
        chunk(
            "n1",
            "velmar-post.example",
            "President Ilka Brand signed the Kessel bridge treaty on Friday.",
        ),
        chunk(
            "n2",
            "harbour-times.example",
            "Ilka Brand flew in from Orlen. On Friday, Brand signed the Kessel bridge treaty.",
        ),
        # Another Brand: the surname alone does not make it the same person.
        chunk(
            "n3",
            "orlen-herald.example",
            "Oskar Brand runs the ferry line. On Friday, Brand signed the Kessel bridge treaty.",
        ),
    ]  # fmt: skip
    result = find(short("n1", "Ilka Brand", "person"), chunks)
    assert [(x.doc_id, x.value) for x in result.corroboration.support] == [("n2", "Brand")]
    assert result.corroboration.sources == 2
    assert_verbatim(result)


def test_country_aliases_agree_and_another_country_differs() -> None:
    chunks = [
        chunk("u1", "velmar-post.example", "The UK will host the Kessel rowing final next year."),
        chunk(
            "u2", "harbour-times.example", "Next year Britain will host the Kessel rowing final."
        ),
        chunk("u3", "orlen-herald.example", "Organisers said Norway will host the Kessel final."),
    ]
    result = find(short("u1", "UK", "place"), chunks)
    assert [x.value for x in result.corroboration.support] == ["Britain"]
    assert [c.text for c in result.conflicts] == ["Norway"]


def test_a_name_the_answer_sentence_also_names_is_no_conflict() -> None:
    chunks = [
        chunk("v1", "velmar-post.example", "Tove Arnskog beat Per Lindqvist in the mayoral race."),
        chunk(
            "v2", "harbour-times.example", "Per Lindqvist lost the Velmar mayoral race on Sunday."
        ),
        # The man her sentence names, here with his title and full name: no other answer.
        chunk(
            "v3",
            "orlen-herald.example",
            "Velmar Mayor Per Lindqvist beat the other candidates in the race.",
            LEADS[2],
        ),
    ]
    assert find(short("v1", "Tove Arnskog", "person"), chunks).conflicts == []


def test_who_said_it_and_headlines_are_no_conflict() -> None:
    opens = "the Kessel bridge opens in May"
    chunks = [
        chunk("w1", "velmar-post.example", f"Tove Arnskog said {opens}.", lead=LEADS[0]),
        chunk("w2", "harbour-times.example", f"Per Lindqvist said {opens}.", lead=LEADS[1]),
        chunk("w3", "orlen-herald.example", f"After a delay, {opens}, said Ola Berg.", LEADS[2]),
        chunk("w4", "dunmore-daily.example", "Kessel Bridge Opens In May Says Ola Berg"),
    ]
    assert find(short("w1", "Tove Arnskog", "person"), chunks).conflicts == []


def test_numbered_citations_and_the_answer_line() -> None:
    other = chunk(
        "e1",
        "kessel-courier.example",
        "Velmar approved a budget of $13.1 million for the Kessel bridge on Monday, "
        "officials said.",
    )
    chunks = [*BUDGET, other]
    answer = short("a1", "$12.6 million", "number")
    result = find(answer, chunks)
    cited = [citation_for(1, chunks[0].node)]  # type: ignore[arg-type]
    citations = number_citations(result, cited)
    assert result.corroboration.citations == [1, 2, 3]
    assert [c.n for c in citations] == [1, 2, 3, 4]
    for c in citations:  # every new citation is the article's own text at its span
        assert ARTICLES[c.doc_id][c.start : c.end] == c.text
    assert headline(answer.text, result) == (
        "$12.6 million [1][2][3] (3 sources)\nSources differ: $12.6 million [1], $13.1 million [4]"
    )
    assert to_json(result) == {
        "corroboration": {"sources": 3, "citations": [1, 2, 3]},
        "conflicts": [{"text": "$13.1 million", "n": 4, "source": "kessel-courier.example"}],
    }


def test_no_short_answer_no_corroboration() -> None:
    assert corroborate(None, [], BUDGET) is None
    assert headline("x", None) == "x [1]"


def test_answer_outside_the_chunks_is_its_own_single_source() -> None:
    lone = ShortAnswer("$9", 1, "missing", 0, 2, "number", 1.0, "combined")
    result = Corroborator().find(lone, [], BUDGET)
    assert result.corroboration.sources == 1 and result.conflicts == []


def test_forms() -> None:
    amounts = ["$12.6 million", "$12,600,000", "12.6 million dollars", "US$12.6m"]
    parsed = [parse_amount(a) for a in amounts]
    assert all(p is not None and same_amount(p, parsed[0]) for p in parsed)  # type: ignore[arg-type]
    assert not same_amount(parse_amount("$4.96"), parse_amount("$5"))  # type: ignore[arg-type]
    assert not same_amount(parse_amount("€5"), parse_amount("$5"))  # type: ignore[arg-type]
    assert same_amount(parse_amount("45%"), parse_amount("45 percent"))  # type: ignore[arg-type]
    assert same_amount(parse_amount("three"), parse_amount("3"))  # type: ignore[arg-type]
    days = [
        parse_date(d) for d in ["June 4, 2031", "4 June 2031", "2031-06-04", "6/4/2031", "June 4"]
    ]
    assert all(d is not None and same_day(d, days[0]) for d in days)  # type: ignore[arg-type]
    assert not same_day(parse_date("June 2031"), parse_date("June 4, 2031"))  # type: ignore[arg-type]
    assert not same_day(parse_date("2030"), parse_date("2031"))  # type: ignore[arg-type]
    assert same_name("the U.K.", "United Kingdom") and same_name("UK", "Britain")
    assert not same_name("UK", "Norway")
    assert name_key("President Ilka Brand") == "ilka brand"
    assert same_name("NRA", "Norrland Rail Authority", {"nra": "norrland rail authority"})
    assert outlet({"source": "edition.velmar-post.example"}) == "velmar-post.example"
    assert outlet({"source": "www.kessel.co.uk"}) == "kessel.co.uk"
    assert outlet({"url": "https://news.orlen.example/x"}) == "orlen.example"


def test_eval_summary_counts_two_sources_and_gold_among_conflicts() -> None:
    from rag.corroborate import summary

    def row(sources: int, em: float, conflicts: list[str], gold: str) -> dict:
        return {
            "refused": False,
            "answerable": True,
            "em": em,
            "gold": [gold],
            "corroboration": {"sources": sources, "citations": [1]},
            "conflicts": [{"text": t, "n": 2, "source": "x.example"} for t in conflicts],
        }

    rows = [
        row(3, 1.0, [], "Ilka Brand"),
        row(1, 0.0, ["$13.1 million"], "$13.1 million"),  # wrong, the gold is a conflict
        row(2, 0.0, ["$9"], "$12"),  # wrong, the gold is not
        {"refused": True, "answerable": True, "corroboration": None, "conflicts": []},
    ]
    s = summary(rows)
    assert s["with_short_answer"] == 3
    assert s["two_plus_sources"] == round(2 / 3, 4)
    assert s["wrong_short_answers"] == 2
    assert s["gold_in_conflicts_when_wrong"] == 0.5


def test_a_number_inside_another_is_not_the_answer() -> None:
    trips = "The Velmar ferry makes {} crossings a day."
    chunks = [
        chunk("r1", "velmar-post.example", trips.format("3"), LEADS[0]),
        chunk("r2", "harbour-times.example", trips.format("3.5"), LEADS[1]),
    ]
    result = find(short("r1", "3", "number"), chunks)
    assert result.corroboration.support == []  # not the "3" of "3.5"
    assert [c.text for c in result.conflicts] == ["3.5"]
    assert_verbatim(result)


def test_a_short_answer_cut_from_a_longer_value_is_compared_whole() -> None:
    # The short answer "$12.6" of "$12.6 million": "$12,600,000" states it, and is no conflict.
    other = chunk(
        "e3",
        "kessel-courier.example",
        "Velmar approved a budget of $13.1 million for the Kessel bridge on Monday, "
        "officials said.",
    )
    cut = short("a1", "$12.6", "number")
    result = find(cut, [*BUDGET, other])
    assert {x.value for x in result.corroboration.support} == {
        "$12,600,000",
        "12.6 million dollars",
    }
    assert [c.text for c in result.conflicts] == ["$13.1 million"]
    number_citations(result, [citation_for(1, BUDGET[0].node)])  # type: ignore[arg-type]
    # The line compares the values as the articles write them, each verbatim.
    assert headline(cut.text, result).endswith(
        "\nSources differ: $12.6 million [1], $13.1 million [4]"
    )


def test_a_skipped_sentence_is_neither_support_nor_a_source() -> None:
    # The engine skips sentences that relay a request (rag/output_guard.py): never cited.
    kept = corroborate(
        short("a1", "$12.6 million", "number"),
        BUDGET[:1],
        BUDGET,
        skip=lambda sentence: "dollars" in sentence,
    )
    assert kept is not None
    assert {x.value for x in kept.corroboration.support} == {"$12,600,000"}
    assert kept.corroboration.sources == 2


def test_the_bench_scores_the_citations_corroboration_adds(tmp_path) -> None:
    import json

    from bench.corroboration import added_citations

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"id": "v1", "question": "Q?", "answers": ["$12.6 million"],
                    "evidence_doc_ids": ["a1"]}) + "\n"
    )  # fmt: skip
    cite = [
        {"n": 1, "doc_id": "a1", "text": "a $12.6 million budget"},
        {"n": 2, "doc_id": "b1", "text": "a $12.6 million budget"},  # holds the answer
        {"n": 3, "doc_id": "c1", "text": "a $13.1 million budget"},  # the conflict
    ]
    row = {
        "id": "v1",
        "refused": False,
        "answerable": True,
        "gold": ["$12.6 million"],
        "citations": cite,
        "corroboration": {"sources": 2, "citations": [1, 2]},
        "conflicts": [{"text": "$13.1 million", "n": 3, "source": "c.example"}],
    }
    s = added_citations([row], gold)
    assert s["support_citation_precision"] == 1.0 and s["support_citations"] == 1
    assert s["conflict_citation_precision"] == 0.0 and s["conflict_citations"] == 1
    assert s["citation_precision_without_conflict_citations"] == 1.0


def test_one_citation_a_source() -> None:
    # A second outlet states the answer twice, the answer's own outlet once more: one
    # citation for the second outlet (its sentence closest to the answer's), none for the own.
    again = chunk(
        "b2",
        "harbour-times.example",
        "The Velmar council approved a $12,600,000 budget for the Kessel bridge on Monday. "
        "Kessel residents welcomed the $12.6 million plan.",
        LEADS[2],
    )
    own_again = chunk(
        "a3", "velmar-post.example", "The $12.6 million Kessel bridge budget passed on Monday."
    )
    chunks = [BUDGET[0], again, own_again]
    result = find(short("a1", "$12.6 million", "number"), chunks)
    assert len(result.corroboration.support) == 3 and result.corroboration.sources == 2
    citations = number_citations(result, [citation_for(1, BUDGET[0].node)])  # type: ignore[arg-type]
    assert result.corroboration.citations == [1, 2]
    assert "approved a $12,600,000 budget" in citations[1].text and len(citations) == 2


def test_a_contraction_opening_a_quote_is_no_name() -> None:
    said = "Mayor Tove Arnskog visited the Velmar border in the Orlen valley on Friday."
    quote = "Police said the road stays open. “It’s not being fenced off at the border."
    chunks = [
        chunk("q1", "velmar-post.example", said, LEADS[0]),
        chunk("q2", "harbour-times.example", quote, LEADS[1]),
    ]
    assert find(short("q1", "Velmar", "place"), chunks).conflicts == []


def test_the_bench_anchors_a_quiz_answer_at_word_edges() -> None:
    from bench.corroboration import Hit, _whole

    def hit(sentence: str, value: str) -> bool:
        i = sentence.find(value)
        return _whole(Hit("d", "o", sentence, (i, i + len(value)), ""))

    assert hit("Velmar won 3 games.", "3") and hit("a 3-2 win", "3")
    assert not hit("nearly 350,000 people", "3") and not hit("in 2.3 hours", "3")
    assert not hit("the Velmarians", "Velmar")


def test_a_phrase_asked_as_a_name_has_no_conflicting_names() -> None:
    own = "He added that Velmar was seeking to “review every clause” of the proposal with Orlen."
    other = "Velmar was seeking to back Ola Berg’s proposal with Orlen, officials said."
    chunks = [
        chunk("p1", "velmar-post.example", own, LEADS[0]),
        chunk("p2", "harbour-times.example", other, LEADS[1]),
    ]
    assert find(short("p1", "review every clause", "title"), chunks).conflicts == []
