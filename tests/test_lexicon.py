"""The one lexicon: its patterns say what its lists say, and its readers agree on it."""

import re

import pytest

from rag import lexicon
from rag.answer_span import candidate_kind, fits_question
from rag.grounding import Grounder
from rag.refusal import question_names
from rag.text import has_answer_type, key_tokens


def test_the_month_pattern_takes_every_month_and_abbreviation_and_nothing_longer():
    pattern = re.compile(rf"{lexicon.MONTH_PATTERN}\b")
    for word in lexicon.MONTHS + lexicon.MONTH_ABBREVIATIONS:
        assert pattern.fullmatch(word.capitalize()), word
    # Longest first: "Sept" is not read as "Sep" and a stray "t".
    assert pattern.match("Sept. 4").group() == "Sept"
    assert not pattern.match("Mayor")
    assert not pattern.fullmatch("Marc")


def test_the_weekday_and_currency_patterns_follow_their_lists():
    for day in lexicon.WEEKDAYS:
        assert re.fullmatch(lexicon.WEEKDAY_PATTERN, day.capitalize())
    for word in lexicon.CURRENCY_WORDS:
        assert re.fullmatch(lexicon.CURRENCY_PATTERN, word)
    assert not re.fullmatch(lexicon.CURRENCY_PATTERN, "grand")


def test_number_words_have_values_and_include_the_teens_and_tens():
    assert lexicon.NUMBER_VALUES["fourteen"] == 14 and lexicon.NUMBER_VALUES["ninety"] == 90
    assert {"fourteen", "sixty", "dozen", "million"} <= lexicon.NUMBER_WORDS
    assert lexicon.ROLES >= lexicon.PERSON_TITLES | lexicon.TITLE_ABBREVIATIONS


# Each of these failed in one of the five copies the lexicon replaced.
@pytest.mark.parametrize("count", ["fourteen", "seventeen", "Seventeen", "Twelve million"])
def test_a_teen_is_a_count_to_the_span_picker(count):
    assert candidate_kind(count) == "number"
    assert fits_question("How many ferries sailed?", count)


def test_sixty_is_a_number_and_rupees_are_money_to_the_refusal_check():
    q = "How many lanterns were lit?"
    assert has_answer_type("Sixty lanterns were lit.", "number", q)
    assert has_answer_type("The ticket cost 40 rupees.", "money", "How much did it cost?")
    assert "sixty" in key_tokens("Sixty lanterns were lit.")


def test_a_number_in_words_past_twelve_grounds_its_digits():
    passage = "The storm cut power to fourteen villages near Orlen."
    node_text = passage
    from llama_index.core.schema import TextNode

    node = TextNode(
        text=node_text,
        start_char_idx=0,
        end_char_idx=len(node_text),
        metadata={"doc_id": "x", "relevance": 0.8, "sentences": [[0, len(passage), 0.8, passage]]},
    )
    _, _, replaced = Grounder().ground("The storm cut power to 14 villages [1].", [node])
    assert replaced == 0
    _, _, replaced = Grounder().ground("The storm cut power to 15 villages [1].", [node])
    assert replaced == 1


def test_a_lower_case_office_before_a_name_marks_a_person():
    from llama_index.core.schema import TextNode

    from rag.answer_span import candidates

    node = TextNode(text="Foreign minister Lars Holm met the envoy in Velm on Friday.")
    place = {c.text for c in candidates("Where did the envoy meet?", [node]) if c.fits}
    assert "Velm" in place and "Lars Holm" not in place


def test_calendar_words_are_not_names_to_the_refusal_check():
    assert question_names("Who won the regatta on Sunday in September?") == []
