"""Sanity checks for the hand-written gold Q&A set in evals/gold.jsonl."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "evals" / "gold.jsonl"
CORPUS = ROOT / "corpus"
TYPES = {
    "fact",
    "two_sentences",
    "cross_article",
    "name",
    "number",
    "date",
    "unanswerable",
    "injection",
}
FIELDS = {
    "id",
    "question",
    "answers",
    "evidence_doc_ids",
    "evidence_quotes",
    "type",
    "answerable",
}


def _body(doc_id: str) -> str:
    text = (CORPUS / f"{doc_id}.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), doc_id
    _, _, body = text[4:].partition("\n---\n")
    assert body, f"{doc_id}: no closing front matter delimiter"
    return body


def _load() -> list[dict]:
    lines = [ln for ln in GOLD.read_text(encoding="utf-8").splitlines() if ln.strip()]
    items = []
    for n, line in enumerate(lines, 1):
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"line {n} is not valid JSON: {exc}")
    return items


ITEMS = _load()


def test_gold_set_shape():
    ids = [it["id"] for it in ITEMS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert len(ITEMS) >= 40
    assert sum(1 for it in ITEMS if it["answerable"] is False) >= 8
    missing = TYPES - {it["type"] for it in ITEMS}
    assert not missing, f"no items of type(s) {sorted(missing)}"


@pytest.mark.parametrize("item", ITEMS, ids=lambda it: it.get("id", "?"))
def test_gold_item(item):
    assert set(item) == FIELDS
    assert item["type"] in TYPES
    assert isinstance(item["question"], str) and item["question"].strip()
    assert isinstance(item["answerable"], bool)
    assert item["answerable"] == (item["type"] not in ("unanswerable", "injection"))
    if not item["answerable"]:
        assert item["answers"] == []
        assert item["evidence_doc_ids"] == []
        assert item["evidence_quotes"] == []
        return
    assert item["answers"] and all(isinstance(a, str) and a.strip() for a in item["answers"])
    assert item["evidence_doc_ids"] and item["evidence_quotes"]
    for doc_id in item["evidence_doc_ids"]:
        assert (CORPUS / f"{doc_id}.md").is_file(), f"missing corpus/{doc_id}.md"
    bodies = {d: _body(d) for d in item["evidence_doc_ids"]}
    for quote in item["evidence_quotes"]:
        assert "\n" not in quote, f"quote spans lines: {quote!r}"
        assert any(quote in b for b in bodies.values()), f"quote not verbatim: {quote!r}"
    for doc_id, body in bodies.items():
        assert any(q in body for q in item["evidence_quotes"]), f"no quote from {doc_id}"
    if item["type"] == "cross_article":
        assert len(set(item["evidence_doc_ids"])) >= 2
