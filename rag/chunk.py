"""Split a cleaned article into sentence-aware, overlapping chunks with exact character spans."""

from __future__ import annotations

from dataclasses import dataclass

from llama_index.core.node_parser import SentenceSplitter

from rag.embeddings import token_ids


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # offsets into the cleaned article: article[start:end] == text
    end: int


class Chunker:
    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        # Sizes are counted in the embedding model's own tokens, so no chunk is truncated.
        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=min(chunk_overlap, chunk_size // 2),
            paragraph_separator="\n\n",
            tokenizer=token_ids,
        )

    def split(self, text: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        cursor = 0
        for piece in self._splitter.split_text(text):
            piece = piece.strip()
            if not piece:
                continue
            start = text.find(piece, cursor)
            if start < 0:  # the splitter re-joined whitespace; fall back to a search from 0
                start = text.find(piece)
            if start < 0:
                raise ValueError(f"chunk not found in its article: {piece[:60]!r}")
            chunks.append(Chunk(len(chunks), piece, start, start + len(piece)))
            # Overlap means the next chunk starts after this one's start, not after its end.
            cursor = start + 1
        return chunks
