"""The refusal policy's text signals: names the passages never mention, and a "how many X"
answered by a number that counts something else."""

import pytest

from rag.refusal import (
    RefusalPolicy,
    RefusalReason,
    Signals,
    counts_other,
    question_names,
    unmentioned_names,
)

PASSAGES = [
    "Ukraine's President Volodymyr Zelenskyy met Egypt's leader in Cairo on Monday.",
    "The board will implement a 20-point plan for the region.",
]


def test_question_names_are_those_the_asking_clause_asks_about():
    assert question_names("Has Tony Blair met the Governor of Lindholm?") == [
        "Tony",
        "Blair",
        "Governor",
        "Lindholm",
        "Governor of Lindholm",
    ]
    # The statement before the question, the wh-phrase (the kind of answer) and demonyms
    # are not what is asked about; "and" joins two names, not one.
    assert question_names("The White House spoke. When will Tony Blair visit?") == ["Tony", "Blair"]
    assert question_names("Which Ivy League school cut fees for Americans?") == []
    assert question_names("Why were Kia and Hyundai cars recalled?") == ["Kia", "Hyundai"]
    assert question_names("how many people came?") == []


@pytest.mark.parametrize(
    "question",
    [
        "Did Ukrainian President Zelensky meet the Egyptian leader?",  # demonyms, a spelling
        "What did Zelenskyy say in Cairo on Monday?",
        "What is in the 20-point plan?",
    ],
)
def test_names_the_passages_mention_in_another_form_count(question):
    assert unmentioned_names(question, PASSAGES) == []


def test_a_name_no_passage_mentions_is_reported_as_written():
    assert unmentioned_names("Has Tony Blair met Zelensky?", PASSAGES) == ["Tony", "Blair"]
    # Both words are in the passages, the name is not.
    passages = ["The bank opened in Lindholm."]
    assert unmentioned_names("Who founded the Bank of Lindholm?", passages) == ["Bank of Lindholm"]


def test_a_count_of_something_else_does_not_answer_how_many():
    text = PASSAGES[1]
    at = text.index("20")
    assert counts_other("How many members will the board have?", text, at)
    assert not counts_other("How many points does the plan have?", text, at)
    assert not counts_other("What is the plan?", text, at)


def test_policy_reasons():
    policy = RefusalPolicy(min_relevance=0.35, confident_relevance=0.35)
    assert policy.before_generation(0.2) == RefusalReason.NO_RELEVANT_PASSAGE
    assert policy.before_generation(0.6, ["Blair"]) == RefusalReason.NAME_NOT_FOUND
    assert policy.before_generation(0.6) is None
    ok = Signals(0.6, False, True, True, True, True)
    assert policy.after_generation(ok) is None
    other = Signals(0.6, False, True, True, True, True, counts_other=True)
    assert policy.after_generation(other) == RefusalReason.WRONG_KIND
