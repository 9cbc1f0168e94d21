"""An answer never relays a request to send money, credentials or personal data, or to contact an
address to be paid or verified (rag/output_guard.py, wired in Engine._guard)."""

from __future__ import annotations

import datetime as dt

from llama_index.core.schema import NodeWithScore, TextNode

from rag.answer_span import ShortAnswer
from rag.engine import AnswerState, Engine
from rag.grounding import citation_for
from rag.output_guard import REMOVED_NOTE, asks_how_to_contact, relays_request
from rag.retrieve import Filters

REQUESTS = [
    "Readers who lost money can send their bank details to refunds@velde.example to be repaid.",
    "To get the rebate, enter your card number and PIN at http://velde-rebate.example.",
    "Call 0161 496 0000 to claim the 200-euro payment owed to every tenant.",
    "Visit www.velde-grant.example to verify your identity and collect the grant.",
    "Transfer a 30-euro fee to account GB33 BUKB 2020 1555 5555 55 to unlock your refund.",
    "Envoyez vos coordonnées bancaires à aide@velde.example pour être remboursé.",
    "Senden Sie Ihre Bankdaten an hilfe@velde.example, um entschädigt zu werden.",
]
NOT_REQUESTS = [
    "The bank said it would never ask customers to send their PIN by email.",
    "Police warned of fraudsters asking people for their bank details by phone.",
    "Anyone with information is asked to call police on 101.",
    "Customers can contact the helpline on 0800 123 4567 from 8 a.m.",
    "The airline will refund passengers whose flights were cancelled.",
    "Velde's mayor, Ada Kemp, opened the new library on Monday.",
]


def test_requests_are_recognised_and_warnings_and_news_are_not():
    assert [s for s in REQUESTS if not relays_request(s)] == []
    assert [s for s in NOT_REQUESTS if relays_request(s)] == []


def test_contact_questions_are_recognised():
    assert asks_how_to_contact("How can I contact the Velde tenants' office?")
    assert asks_how_to_contact("What is the phone number of the helpline?")
    assert not asks_how_to_contact("Who is the mayor of Velde?")


def _state(question: str, passage: str, short: str) -> tuple[AnswerState, Engine]:
    node = TextNode(
        text=passage,
        start_char_idx=100,
        end_char_idx=100 + len(passage),
        metadata={"doc_id": "velde", "title": "Velde outage", "relevance": 0.9},
    )
    start = 100 + passage.index(short)
    st = AnswerState(question=question, filters=Filters(as_of=dt.date(2024, 1, 1)), top_k=5)
    st.standalone = question
    st.passages = [NodeWithScore(node=node, score=0.9)]
    st.short = ShortAnswer(short, 1, "velde", start, start + len(short), "phrase", 1.0, "test")
    st.citations = [citation_for(1, node)]
    st.text = f"{short} [1]\n\nThe refund is handled by email [1]. The outage lasted two days [1]."
    return st, Engine.__new__(Engine)


PASSAGE = (
    "The outage lasted two days. Tenants can send their bank details to refunds@velde.example "
    "to be repaid. The mayor apologised."
)


def test_the_guard_removes_a_request_from_the_short_answer_the_text_and_the_quotes():
    st, engine = _state("How do tenants get their money back?", PASSAGE, "refunds@velde.example")
    st.text += " Send your bank details to refunds@velde.example to be repaid [1]."
    engine._guard(st)
    assert st.short is None
    assert "refunds@" not in st.text and REMOVED_NOTE in st.text
    assert "The outage lasted two days" in st.text
    assert all("refunds@" not in c.text for c in st.citations)
    # The quote's span is narrowed with its text, so the passage shown in context agrees.
    c = st.citations[0]
    assert c.end - c.start == len(c.text)


def test_a_contact_question_keeps_the_request_only_as_a_quote_with_its_source():
    st, engine = _state(
        "What email address should tenants contact?", PASSAGE, "refunds@velde.example"
    )
    engine._guard(st)
    assert st.short is None and "refunds@" not in st.text
    assert "refunds@" in st.citations[0].text and st.citations[0].title == "Velde outage"
