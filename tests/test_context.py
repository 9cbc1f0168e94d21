"""Which sentences the model reads: relevance to the sentence that asks."""

import pytest

from rag.context import asking_terms, relevance_scores
from rag.text import terms

SCENE = (
    "An earthquake in the mountains near Herat killed more than 1,000 people this week and "
    "injured many others. What was the magnitude of the quake?"
)


def test_a_question_that_sets_the_scene_is_judged_by_the_sentence_that_asks():
    assert asking_terms(SCENE) == terms("What was the magnitude of the quake?")


def test_an_asking_sentence_that_says_too_little_falls_back_to_the_whole_question():
    question = "Ilse Varga lost her seat in the harbour council this week. What is her name?"
    assert asking_terms(question) == terms(question)
    assert asking_terms("Who chairs the harbour council?") == terms(
        "Who chairs the harbour council?"
    )


@pytest.mark.e2e
def test_the_sentence_that_answers_outranks_the_ones_that_repeat_the_scene(embed):
    scene_again = (
        "The earthquake near Herat killed more than 1,000 people this week, officials said, "
        "and injured many others."
    )
    answer = "The quake had a magnitude of 5.9, according to the geological survey."
    scores = relevance_scores([scene_again, answer], SCENE, None, embed)
    assert scores[1] > scores[0]
