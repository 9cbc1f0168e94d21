from rag.chunk import Chunker
from rag.clean import clean_text
from rag.embeddings import token_ids
from tests.conftest import CORPUS


def test_chunks_are_exact_spans_within_token_budget():
    text = clean_text((CORPUS / "003_ed5bf04dcd149c8e.md").read_text().split("---", 2)[2])
    chunks = Chunker(chunk_size=96, chunk_overlap=16).split(text)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert len(token_ids(c.text)) <= 96
    # Neighbours overlap, and together they cover the article.
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_chunks_end_on_sentence_boundaries_when_possible():
    text = " ".join(f"Sentence number {i} talks about the harbour." for i in range(60))
    chunks = Chunker(chunk_size=64, chunk_overlap=8).split(text)
    assert all(c.text.endswith(".") for c in chunks)
