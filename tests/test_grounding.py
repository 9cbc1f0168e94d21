"""The grounding check and citation attachment, on hand-made passages (no model needed)."""

from llama_index.core.schema import TextNode

from rag.grounding import Grounder, says_dont_know, split_answer

ARTICLE = (
    "Harbour spokesman Edwin Marsh told reporters that Mayor Quill received the invitation. "
    "Ostrel Mayor Ilse Varga has also reportedly been invited. "
    "The board is due to adopt a 14-step plan for the ferries."
)


def passage(sentence: str, relevance: float = 0.8) -> TextNode:
    start = ARTICLE.index(sentence)
    return TextNode(
        text=sentence,
        start_char_idx=start,
        end_char_idx=start + len(sentence),
        metadata={
            "doc_id": "a1",
            "title": "Ferry board",
            "source": "example.org",
            "url": "",
            "date": "2026-01-19",
            "relevance": relevance,
            "sentences": [[start, start + len(sentence), relevance, sentence]],
        },
    )


P = [
    passage(s)
    for s in (
        "Harbour spokesman Edwin Marsh told reporters that Mayor Quill received the invitation.",
        "Ostrel Mayor Ilse Varga has also reportedly been invited.",
        "The board is due to adopt a 14-step plan for the ferries.",
    )
]


def test_supported_sentence_gets_the_citation_of_its_passage_even_without_a_marker():
    text, cites, replaced = Grounder().ground("The harbour spokesman is Edwin Marsh.", P)
    assert text == "The harbour spokesman is Edwin Marsh. [1]"
    assert replaced == 0
    (c,) = cites
    assert c.n == 1 and ARTICLE[c.start : c.end] == c.text and "Marsh" in c.text


def test_wrong_marker_is_corrected_and_out_of_range_marker_dropped():
    text, cites, _ = Grounder().ground("Varga has also been invited [1] [7].", P)
    assert text == "Varga has also been invited. [1]"  # [1] now points at passage 2
    assert [c.text for c in cites] == [P[1].text]
    assert "[7]" not in text


def test_hallucinated_name_is_replaced_by_a_cited_quote():
    text, cites, replaced = Grounder().ground("Boris Nemtovik was also invited [2].", P)
    assert replaced == 1
    assert "Nemtovik" not in text
    assert text.startswith("“") and text.endswith("[1]")
    assert cites[0].text in text


def test_hallucinated_number_is_not_shown_as_fact():
    text, _, replaced = Grounder().ground("The board will adopt a 9-step plan [3].", P)
    assert replaced == 1 and "9-step" not in text


def test_mixed_answer_keeps_supported_and_replaces_the_rest():
    answer = "Marsh told reporters Quill received the invitation [1]. Quill accepted it gladly [1]."
    text, cites, replaced = Grounder().ground(answer, P)
    assert replaced == 1
    assert "accepted" not in text
    assert text.startswith("Marsh told reporters Quill received the invitation. [1]")
    assert len(cites) == len({c.n for c in cites})


def test_off_topic_but_true_sentence_is_replaced_when_relevance_is_known():
    scores = {"The board is due to adopt a 14-step plan for the ferries.": 0.1}
    g = Grounder(relevance=lambda sents: [scores.get(s, 0.9) for s in sents])
    text, _, replaced = g.ground("The board is due to adopt a 14-step plan for the ferries.", P)
    assert replaced == 1 and text.startswith("“")


def test_markers_are_renumbered_in_order_of_first_use():
    answer = "The board will adopt a 14-step plan [3]. Marsh spoke to reporters [1]."
    text, cites, _ = Grounder().ground(answer, P)
    assert text.index("[1]") < text.index("[2]")
    assert [c.n for c in cites] == [1, 2]
    assert "14-step" in cites[0].text and "Marsh" in cites[1].text


def test_split_answer_drops_lead_ins_repeats_and_keeps_markers():
    parts = split_answer("The answer is: Marsh spoke. [1] Marsh spoke. Varga too [2].")
    assert parts == [("Marsh spoke.", [1]), ("Varga too.", [2])]


def test_dont_know_detection():
    for t in (
        "I don't know.",
        "The passages do not contain this information.",
        "",
        "This is not mentioned in the articles.",
    ):
        assert says_dont_know(t)
    assert not says_dont_know("Marsh is the harbour spokesman.")


def _p(text: str) -> TextNode:
    return TextNode(
        text=text,
        start_char_idx=0,
        end_char_idx=len(text),
        metadata={"doc_id": "x", "relevance": 0.8, "sentences": [[0, len(text), 0.8, text]]},
    )


def test_wrong_name_at_the_start_of_a_sentence_is_caught():
    text, _, replaced = Grounder().ground(
        "Biden met Xi in Geneva on Monday [1].", [_p("Putin met Xi in Geneva on Monday.")]
    )
    assert replaced == 1 and "Biden" not in text


def test_wrong_number_in_words_is_caught():
    text, _, replaced = Grounder().ground(
        "The blast killed four people in the market [1].",
        [_p("The blast killed three people in the market on Friday.")],
    )
    assert replaced == 1 and "four" not in text


def test_flipped_negation_is_caught():
    text, _, replaced = Grounder().ground(
        "The suspect was charged by police [1].",
        [_p("The suspect was released by police without charge.")],
    )
    assert replaced == 1 and text.startswith("“The suspect was released")


def test_footnote_marks_inside_a_quote_do_not_become_citations():
    text, cites, _ = Grounder().ground(
        "Something unrelated entirely.", [_p("The strike injured 12 people, officials said [3].")]
    )
    assert "(3)" in text and "[3]" not in text and [c.n for c in cites] == [1]


def test_answer_that_merely_contains_refusal_words_is_not_a_refusal():
    assert not says_dont_know("The pilot was unable to land because of fog [1].")
    assert says_dont_know("I don't know. The passages do not say.")


def test_a_sentence_cites_the_passage_that_holds_most_of_it():
    # Both passages hold enough of the sentence; the second also holds "ceasefire".
    partial = TextNode(text="The board will implement the plan.", metadata={"doc_id": "b"})
    fuller = TextNode(text="The board will implement the ceasefire plan.", metadata={"doc_id": "c"})
    text, citations, replaced = Grounder(min_support=0.75).ground(
        "The board will implement the plan for the ceasefire.", [partial, fuller]
    )
    assert replaced == 0 and [c.doc_id for c in citations] == ["c"]


# A claim is supported only when one sentence of the passage says it: its names, numbers and
# the words that link them, linked the same way. Word overlap alone is not support.
BRIDGE = (
    "Ilka Brand, the engineer who designed the Velm bridge, said the span would reopen in May. "
    "Mayor Tomas Veld thanked engineer Ilka Brand for the repairs on Friday. "
    "The storm killed 3 people and injured 12 in Orlen. "
    "The railings were repainted red and white by the council's workers. "
    "Ruth Amsel, who chairs the Velmora council, approved the budget."
)


def _grounds(claim: str, passage: str = BRIDGE) -> bool:
    _, _, replaced = Grounder().ground(claim, [_p(passage)])
    return replaced == 0


def test_a_name_given_a_role_the_passage_gives_no_one_is_not_supported():
    assert not _grounds("The mayor of Velmora is Ilka Brand [1].", BRIDGE.replace("Mayor ", ""))
    assert not _grounds("The mayor of Velmora is Ilka Brand [1].")


def test_a_statement_the_passage_does_not_make_is_not_supported():
    assert not _grounds(
        "The railings were repainted red and white by Ruth Amsel, the council's new master [1]."
    )


def test_names_swapped_within_one_sentence_are_not_supported():
    assert not _grounds("Mayor Ilka Brand thanked engineer Tomas Veld for the repairs [1].")
    assert not _grounds("Engineer Tomas Veld thanked mayor Ilka Brand for the repairs [1].")


def test_a_name_taken_from_another_sentence_is_not_supported():
    assert not _grounds("Ruth Amsel designed the Velm bridge [1].")
    assert not _grounds("Tomas Veld approved the budget [1].")


def test_a_number_moved_to_another_relation_is_not_supported():
    assert not _grounds("The storm killed 12 people in Orlen [1].")
    assert not _grounds("The storm injured 3 people in Orlen [1].")


def test_restatements_of_one_sentence_are_still_supported():
    for claim in (
        "Ilka Brand is the engineer who designed the Velm bridge [1].",
        "Ilka Brand said the span would reopen in May [1].",
        "Tomas Veld thanked Ilka Brand for the repairs [1].",
        "The mayor, Tomas Veld, thanked Ilka Brand for the repairs [1].",
        "The storm killed 3 people in Orlen [1].",
        "The storm injured 12 in Orlen [1].",
        "Ruth Amsel chairs the Velmora council [1].",
        "The railings were repainted red and white [1].",
    ):
        assert _grounds(claim), claim


def test_who_said_it_is_part_of_the_claim():
    passage = "Tomas Veld said Ilka Brand will reopen the bridge in May."
    assert _grounds("Tomas Veld said Ilka Brand will reopen the bridge [1].", passage)
    assert not _grounds("Ilka Brand said Tomas Veld will reopen the bridge [1].", passage)


def test_an_aside_does_not_part_a_name_from_its_verb_nor_lend_its_name_to_it():
    passage = "Ilka Brand, the engineer hired by Tomas Veld, closed the bridge on Friday."
    assert _grounds("Ilka Brand closed the bridge on Friday [1].", passage)
    assert not _grounds("Tomas Veld closed the bridge on Friday [1].", passage)


def test_a_pointer_to_the_passages_is_not_part_of_the_claim():
    parts = split_answer("Ilka Brand designed the bridge, as mentioned in the passage [1].")
    assert parts == [("Ilka Brand designed the bridge.", [1])]
    assert _grounds(
        "Ilka Brand designed the Velm bridge, according to the passages [1].",
        "Ilka Brand designed the Velm bridge in 1998.",
    )


def test_a_number_in_words_or_digits_and_percent_signs_are_the_same():
    passage = "The storm killed three people and cut power to 40% of Orlen."
    assert _grounds("The storm killed 3 people [1].", passage)
    assert _grounds("The storm cut power to 40 percent of Orlen [1].", passage)
    assert not _grounds("The storm killed 4 people [1].", passage)
