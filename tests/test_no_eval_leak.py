"""No tuning to items: no question, answer or article id of an eval file appears in rag/."""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

# Single words and short phrases are vocabulary ("May", "advertisements", "24 hours") that code
# may name for general reasons; a longer phrase (a full name) in the code would be an answer.
MIN_ANSWER_CHARS = 10


def _specific(answer: str) -> bool:
    return len(answer) >= MIN_ANSWER_CHARS and len(answer.split()) >= 2


def _gold_files() -> list[Path]:
    files = [ROOT / "evals" / "gold.jsonl"]
    return files + sorted(SHARED.glob("*.jsonl")) if SHARED.exists() else files


def _items(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if "question" in r]  # a corpus file holds articles, not questions


@pytest.mark.parametrize("gold", _gold_files(), ids=lambda p: p.name)
def test_rag_holds_nothing_of_an_eval_item(gold):
    code = {
        p.relative_to(ROOT): p.read_text(encoding="utf-8").lower()
        for p in sorted((ROOT / "rag").rglob("*.py"))
    }
    items = _items(gold)
    if not items:
        pytest.skip(f"{gold.name} holds no questions")
    found = []
    for item in items:
        needles = [item["question"]] + list(item.get("evidence_doc_ids", []))
        needles += [a for a in item.get("answers", []) if _specific(a)]
        for needle in needles:
            for path, text in code.items():
                if needle.strip().lower() in text:
                    found.append(f"{path}: {needle!r}")
    assert not found, found
