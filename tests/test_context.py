"""Which sentences the model reads: relevance to the sentence that asks."""

import pytest

from rag.context import asking_terms, relevance_scores
from rag.text import terms

SCENE = (
    "A storm surge along the coast near Velm flooded more than 400 homes this week and "
    "damaged many boats. What was the height of the surge?"
)


def test_a_question_that_sets_the_scene_is_judged_by_the_sentence_that_asks():
    assert asking_terms(SCENE) == terms("What was the height of the surge?")


def test_an_asking_sentence_that_says_too_little_falls_back_to_the_whole_question():
    question = "Ilse Varga lost her seat in the harbour council this week. What is her name?"
    assert asking_terms(question) == terms(question)
    assert asking_terms("Who chairs the harbour council?") == terms(
        "Who chairs the harbour council?"
    )


@pytest.mark.e2e
def test_the_sentence_that_answers_outranks_the_ones_that_repeat_the_scene(embed):
    scene_again = (
        "The storm surge near Velm flooded more than 400 homes this week, officials said, "
        "and damaged many boats."
    )
    answer = "The surge reached a height of 3.2 metres, according to the harbour office."
    scores = relevance_scores([scene_again, answer], SCENE, None, embed)
    assert scores[1] > scores[0]


def test_a_request_after_the_question_is_not_the_sentence_that_asks():
    question = "Who won the Lindholm mayoral election? Please explain why."
    assert asking_terms(question) == terms("Who won the Lindholm mayoral election?")
    quoted = 'Who directed the film? It is called "What We Do in the Shadows".'
    assert asking_terms(quoted) == terms("Who directed the film?")


@pytest.mark.e2e
def test_whether_any_passage_is_relevant_is_judged_on_all_the_question_words(embed):
    # Both words of the short asking sentence are in an unrelated sentence: enough to rank it
    # among the story's sentences, not to let an off-topic question past the refusal gate.
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rag.context import SentenceSelector

    question = (
        "A ferry strike entered its third week on Tuesday, stranding thousands of commuters. "
        "What are officials studying?"
    )
    unrelated = "Ostrel officials said the town council is studying the tram proposal."
    asking = relevance_scores([unrelated], question, None, embed)[0]
    whole = relevance_scores([unrelated], question, None, embed, words="whole")[0]
    assert whole < 0.35 < asking
    node = TextNode(text=unrelated, start_char_idx=0, metadata={"doc_id": "ostrel"})
    kept = SentenceSelector(embed=embed).postprocess_nodes(
        [NodeWithScore(node=node, score=1.0)], query_bundle=QueryBundle(question)
    )
    assert kept[0].node.metadata["confidence"] == pytest.approx(whole)
