"""Context for small models: the most relevant sentences, not whole chunks, within a budget.

A LlamaIndex node postprocessor: chunks in, numbered passages out. Each passage is one or more
adjacent sentences of one article, with its exact character span in that article, so a
citation points at the words that were read, not at a whole chunk.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
from pydantic import ConfigDict

from rag.answer_span import WH_WORD, last_question_span
from rag.embeddings import OnnxMiniLMEmbedding, VectorCache, token_ids
from rag.injection import planted_spans, planted_title
from rag.injection_model import Vectors
from rag.screen import stored_spans, stored_title_flag, version
from rag.text import sentence_spans, terms

ARTICLE_FIELDS = ("doc_id", "title", "source", "url", "date")


@dataclass
class Sentence:
    doc_id: str
    start: int
    end: int
    text: str
    score: float = 0.0
    # Relevance to all the question's words, before a follow-up ranked already-given sentences
    # lower: what the refusal policy reads (`relevance_scores`, words="whole").
    confidence: float = 0.0
    meta: dict = field(default_factory=dict, repr=False)
    scored_as: str = ""  # the text relevance is judged on (a bullet with its list's intro)
    chunk: str = field(default="", repr=False)  # the chunk it was read from ...
    chunk_start: int = 0  # ... and where that chunk starts in the article


def candidate_sentences(
    nodes: list[NodeWithScore],
    article_text: Callable[[str], str] | None = None,
    vectors: Vectors | None = None,
) -> list[Sentence]:
    """Every sentence of the retrieved chunks, once, with spans in its article.

    Text planted for AI systems (rag/injection.py) is left out, with the sentences it frames,
    so it never reaches the model nor a quote or citation. With `article_text` (doc id ->
    cleaned article), plantings are found in the whole article, so a frame in a chunk that was
    not retrieved still taints the claim at the start of one that was.
    """
    planted = _planted_by_doc(nodes, article_text, vectors)
    seen: set[tuple[str, int]] = set()
    out = []
    for nws in nodes:
        node = nws.node
        meta = node.metadata
        if _title_planted(meta):
            continue  # a headline addressed to an AI: the article under it is a planting
        base = _start(node)
        text = node.get_content()
        spans = planted.get(meta["doc_id"], [])
        intro = ""
        for s, e in sentence_spans(text):
            key = (meta["doc_id"], base + s)
            if key in seen:
                continue
            seen.add(key)
            sentence = text[s:e]
            bullet = sentence[:1] in "•*-–·▪"
            if any(a < base + e and base + s < b for a, b in spans):
                intro = "" if not bullet else intro
                continue  # addressed to a model, not a reader: never put in front of the LLM
            if not bullet:
                intro = sentence if sentence.endswith(":") else ""
            scored_as = f"{intro} {sentence}" if bullet and intro else sentence
            out.append(
                Sentence(
                    meta["doc_id"],
                    base + s,
                    base + e,
                    sentence,
                    meta=meta,
                    scored_as=scored_as,
                    chunk=text,
                    chunk_start=base,
                )
            )
    return out


# Planted spans of whole articles, by (doc id, fingerprint): an article is read once, not once
# per question. Bounded, since a long-running server sees many articles.
_ARTICLE_SPANS_MAX = 4096
_article_spans: OrderedDict[tuple, list[tuple[int, int]]] = OrderedDict()
_article_spans_lock = threading.Lock()


def _title_planted(meta: dict) -> bool:
    stored = stored_title_flag(meta)
    return planted_title(meta.get("title", "")) if stored is None else stored


def _start(node: BaseNode) -> int:
    """Where a retrieved chunk starts in its article (chunks are TextNodes with spans)."""
    return getattr(node, "start_char_idx", None) or 0


@lru_cache(maxsize=_ARTICLE_SPANS_MAX)
def _chunk_spans(text: str, vectors: Vectors | None = None) -> tuple[tuple[int, int], ...]:
    """Planted spans of one chunk: the same chunks come back for many questions."""
    return tuple(planted_spans(text, vectors=vectors))


# How far around a retrieved chunk the learned detector reads its article: a frame before
# it ("Facts for automated summaries:" over a list) or just after it taints what it holds.
SCOPE_BEFORE = 600
SCOPE_AFTER = 200


def _planted_by_doc(
    nodes: list[NodeWithScore],
    article_text: Callable[[str], str] | None,
    vectors: Vectors | None = None,
) -> dict[str, list[tuple[int, int]]]:
    """Planted spans (article offsets) per article: in each retrieved chunk, and in the whole
    article when it can be read (the learned detector there only near the retrieved chunks)."""
    out: dict[str, list[tuple[int, int]]] = {}
    fingerprints: dict[str, str] = {}
    scopes: dict[str, list[tuple[int, int]]] = {}
    for nws in nodes:
        meta = nws.node.metadata
        doc = meta["doc_id"]
        stored = stored_spans(meta)
        if stored is not None:  # screened at ingestion, the whole article: nothing to do now
            out.setdefault(doc, []).extend(stored)
            continue
        fingerprints.setdefault(doc, str(meta.get("fingerprint", "")))
        base = _start(nws.node)
        text = nws.node.get_content()
        out.setdefault(doc, []).extend((base + a, base + b) for a, b in _chunk_spans(text, vectors))
        scopes.setdefault(doc, []).append(
            (max(0, base - SCOPE_BEFORE), base + len(text) + SCOPE_AFTER)
        )
    if article_text is None:
        return out
    for doc, fp in fingerprints.items():
        scope = sorted(scopes[doc])
        key = (doc, fp, tuple(scope))
        with _article_spans_lock:
            cached = _article_spans.get(key)
            if cached is not None:
                _article_spans.move_to_end(key)
        if cached is None:
            try:
                cached = planted_spans(article_text(doc), scope=scope, vectors=vectors)
            except KeyError:  # deleted since retrieval: the chunks' own spans stand
                continue
            with _article_spans_lock:
                _article_spans[key] = cached
                while len(_article_spans) > _ARTICLE_SPANS_MAX:
                    _article_spans.popitem(last=False)
        out[doc].extend(cached)
    return out


# An asking sentence with fewer content words than this ("What is her name?") says too little
# to mark a sentence; the whole question's words count then.
MIN_ASKING_TERMS = 2


def asking_terms(question: str) -> set[str]:
    """The content words of the sentence that asks, or of the whole question when that sentence
    says too little on its own. The sentence that asks is the last one ending in "?" with a
    wh-word ("Who won? Please explain why." asks the first), else the last with a wh-word."""
    spans = [
        (a, b)
        for a, b in sentence_spans(question)
        if question[a:b].rstrip(" \"'”’)]").endswith("?") and WH_WORD.search(question, a, b)
    ]
    a, b = spans[-1] if spans else last_question_span(question)
    asking = terms(question[a:b])
    return asking if len(asking) >= MIN_ASKING_TERMS else terms(question)


def relevance_scores(
    texts: list[str],
    query: str,
    query_vec: list[float] | None,
    embed: BaseEmbedding,
    focus: str | None = None,
    cache: VectorCache | None = None,
    words: Literal["asking", "whole"] = "asking",
) -> list[float]:
    """Relevance = cosine similarity to the question, plus the share of the words of its
    asking sentence present (`asking_terms`). News questions often set the scene first ("A quake
    hit Herat this week. What was its magnitude?"): the scene's words are in every sentence of
    the story, the asking sentence's words mark the one that answers. The embedding still reads
    the whole question.

    That ranks sentences; whether any passage is about the question at all is judged with all
    its words (`words="whole"`): two words of a short asking sentence ("What are officials
    studying?") would otherwise lift an unrelated sentence over the refusal threshold.

    With `focus` (the follow-up itself, when `query` joins it to the previous question), a text
    scores the better of the two, so the follow-up's own point is not drowned. The joined query
    counts all its words: its asking sentence is the previous question's.
    """
    by_asking, by_whole = _relevance(texts, query, query_vec, embed, focus, cache)
    return by_asking if words == "asking" else by_whole


def _relevance(
    texts: list[str],
    query: str,
    query_vec: list[float] | None,
    embed: BaseEmbedding,
    focus: str | None,
    cache: VectorCache | None,
) -> tuple[list[float], list[float]]:
    """Both readings of `relevance_scores` (asking words, all words) from one embedding pass."""
    if not texts:
        return [], []
    vecs = np.array(cache.get_many(texts) if cache else embed.get_text_embedding_batch(texts))
    text_terms = [terms(t) for t in texts]
    weights = [_form_weight(t) for t in texts]
    queries = [(query, query_vec)] + ([(focus, None)] if focus and focus != query else [])
    by_asking = np.full(len(texts), -1.0)
    by_whole = np.full(len(texts), -1.0)
    for q_text, q_vec in queries:
        q = np.array(q_vec if q_vec is not None else embed.get_query_embedding(q_text))
        cosines = vecs @ q
        whole_terms = terms(q_text)
        joined = len(queries) > 1 and q_text == query
        ask_terms = whole_terms if joined else asking_terms(q_text)
        for best, q_terms in ((by_asking, ask_terms), (by_whole, whole_terms)):
            for i, (t, c, w) in enumerate(zip(text_terms, cosines, weights, strict=True)):
                lex = len(q_terms & t) / len(q_terms) if q_terms else 0.0
                best[i] = max(best[i], float(0.6 * c + 0.4 * lex) * w)
    return by_asking.tolist(), by_whole.tolist()


def _form_weight(text: str) -> float:
    """Headings and bylines say little: a line with no closing punctuation that is not a
    list item, or a very short one, counts less."""
    t = text.strip()
    heading = not t.endswith((".", "!", "?", '"', "”", ":", ")")) and t[:1] not in "•*-–·▪"
    return (0.75 if heading else 1.0) * (0.85 if len(t.split()) < 5 else 1.0)


def score_sentences(
    sentences: list[Sentence],
    query: str,
    query_vec: list[float] | None,
    embed: BaseEmbedding,
    focus: str | None = None,
    cache: VectorCache | None = None,
) -> None:
    texts = [s.scored_as or s.text for s in sentences]
    scores, whole = _relevance(texts, query, query_vec, embed, focus, cache)
    for s, score, confidence in zip(sentences, scores, whole, strict=True):
        s.score, s.confidence = score, confidence


class SentenceSelector(BaseNodePostprocessor):
    """Keep the best sentences within `max_sentences` and `max_tokens`; group them into passages."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    embed: BaseEmbedding
    max_sentences: int = 5
    max_tokens: int = 360
    # Sentences an earlier answer in the conversation already gave: ranked lower, so that a
    # follow-up ("who else?") brings something new.
    already_given: set[str] = set()
    focus: str | None = None  # the follow-up question itself, when the query joins two
    cache: VectorCache | None = None
    # doc id -> cleaned article (ArticleStore.article_text): plantings are then found in the
    # whole article, not only in the retrieved chunks.
    article_text: Callable[[str], str] | None = None

    @classmethod
    def class_name(cls) -> str:
        return "SentenceSelector"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = query_bundle.query_str if query_bundle else ""
        # The detector's vectors are all-MiniLM-L6-v2's: when relevance uses the same model,
        # one cache serves both, and each sentence is embedded once.
        shared = self.cache is not None and isinstance(self.embed, OnnxMiniLMEmbedding)
        vectors = self.cache.get_many if shared and self.cache is not None else None
        sentences = candidate_sentences(nodes, self.article_text, vectors)
        score_sentences(
            sentences,
            query,
            query_bundle.embedding if query_bundle else None,
            self.embed,
            self.focus,
            self.cache,
        )
        for s in sentences:
            if " ".join(s.text.split()) in self.already_given:
                s.score *= 0.7
        by_doc: dict[str, list[Sentence]] = {}
        for s in sorted(sentences, key=lambda s: (s.doc_id, s.start)):
            by_doc.setdefault(s.doc_id, []).append(s)

        chosen: list[Sentence] = []
        budget = self.max_tokens
        for s in sorted(sentences, key=lambda s: -s.score):
            if len(chosen) >= self.max_sentences:
                break
            cost = len(token_ids(s.text))
            if cost > budget:
                continue
            chosen.append(s)
            budget -= cost
            # A sentence that introduces a list ("Among those named are:") needs the list.
            if s.text.rstrip().endswith(":"):
                doc = by_doc[s.doc_id]
                for nxt in doc[doc.index(s) + 1 : doc.index(s) + 5]:
                    cost = len(token_ids(nxt.text))
                    if nxt in chosen or cost > budget:
                        break
                    chosen.append(nxt)
                    budget -= cost
        return [NodeWithScore(node=p, score=p.metadata["relevance"]) for p in _passages(chosen)]


def _passages(chosen: list[Sentence]) -> list[TextNode]:
    """Merge adjacent chosen sentences of one article; best passage first."""
    groups: list[list[Sentence]] = []
    for s in sorted(chosen, key=lambda s: (s.doc_id, s.start)):
        prev = groups[-1][-1] if groups else None
        # Neighbours merge when one chunk holds both, so the passage is the article's own text.
        adjacent = (
            prev is not None
            and prev.doc_id == s.doc_id
            and s.start - prev.end <= 2
            and groups[-1][0].chunk_start + len(groups[-1][0].chunk) >= s.end
        )
        if adjacent:
            groups[-1].append(s)
        else:
            groups.append([s])
    groups.sort(key=lambda g: -max(s.score for s in g))
    out = []
    for g in groups:
        first, last = g[0], g[-1]
        meta = {k: first.meta.get(k, "") for k in ARTICLE_FIELDS}
        if _title_planted(first.meta):
            meta["title"] = ""  # never shown to the model (format_context) nor in a citation
        text = first.chunk[first.start - first.chunk_start : last.end - first.chunk_start]
        meta.update(
            relevance=max(s.score for s in g),
            confidence=max(s.confidence for s in g),
            sentences=[[s.start, s.end, round(s.score, 4), s.text] for s in g],
            vector_score=float(first.meta.get("vector_score") or 0.0),
        )
        if first.meta.get("screen") == version():
            # Screened at ingestion; its sentences passed, so a passage holds no planted span.
            meta.update(screen=version(), planted="", planted_title=False)
        out.append(
            TextNode(
                id_=f"{first.doc_id}@{first.start}-{last.end}",
                text=text,
                start_char_idx=first.start,
                end_char_idx=last.end,
                metadata=meta,
            )
        )
    return out
