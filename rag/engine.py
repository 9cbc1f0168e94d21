"""The question-answering engine: the Python API behind the CLI, the UI and the evals.

    from rag import Engine
    engine = Engine.from_settings()
    answer = engine.ask("Who is the Kremlin spokesman?", source="cnn.com", since="2022-06-01")
    print(answer.text, [c.title for c in answer.citations])

Flow: question → (condense, in a chat) → hybrid retrieval → sentence selection → refusal check
→ LLM → grounding check → Answer with citations.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.config import Settings
from rag.context import SentenceSelector, relevance_scores
from rag.embeddings import VectorCache
from rag.errors import EmptyStore, InvalidInput, LLMUnavailable
from rag.grounding import Citation, Grounder, citation_for, says_dont_know, split_answer
from rag.keyword import KeywordIndex
from rag.llm import describe_llm_error, make_llm
from rag.prompts import DEFAULT_PROMPTS, REFUSAL
from rag.retrieve import Filters, HybridRetriever
from rag.store import ArticleStore
from rag.text import expected_answer_type, has_answer_type, strip_markers, terms

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    refused: bool
    timings: dict[str, float] = field(default_factory=dict)
    standalone_question: str = ""
    replaced_sentences: int = 0  # model sentences swapped for quotes by the grounding check
    retrieved: list[str] = field(default_factory=list)  # article ids of the chunks, best first

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "standalone_question": self.standalone_question,
            "replaced_sentences": self.replaced_sentences,
            "retrieved": self.retrieved,
        }


Turn = tuple[str, str]  # (user question, assistant answer)


def clean_question(question: object) -> str:
    if not isinstance(question, str):
        raise InvalidInput("the question must be text")
    q = _CONTROL.sub(" ", question).strip()
    if not q:
        raise InvalidInput("the question is empty; ask something about the articles")
    if len(q) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"the question is {len(q)} characters long; keep it under {MAX_QUESTION_CHARS}"
        )
    return q


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: ArticleStore,
        embed,
        llm=None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embed = embed
        self.keyword = KeywordIndex(store, settings.keyword_dir)
        self.sentence_vectors = VectorCache(embed)
        self._llm = llm
        self._llm_lock = threading.Lock()
        self.prompts: dict[str, BasePromptTemplate] = dict(DEFAULT_PROMPTS)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, llm=None) -> Engine:
        """Build the engine the settings describe; the LLM loads on first use."""
        from rag.components import build

        parts = build(settings or Settings())
        return cls(parts.settings, parts.store, parts.embed, llm=llm)

    @property
    def llm(self):
        if self._llm is None:
            with self._llm_lock:  # two first questions at once must not load the model twice
                if self._llm is None:
                    self._llm = make_llm(self.settings)
        return self._llm

    # Prompts follow LlamaIndex's naming: get_prompts() / update_prompts({"qa": ...}).
    def get_prompts(self) -> dict[str, BasePromptTemplate]:
        return dict(self.prompts)

    def update_prompts(self, prompts: dict[str, BasePromptTemplate]) -> None:
        unknown = set(prompts) - set(self.prompts)
        if unknown:
            raise KeyError(f"unknown prompt(s) {sorted(unknown)}; known: {sorted(self.prompts)}")
        self.prompts.update(prompts)

    # Public API ---------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Answer:
        """Answer one question from the articles, with citations."""
        return self._final(
            self.stream(question, top_k=top_k, source=source, since=since, until=until)
        )

    def chat(self, history: Sequence[Turn], question: str, **filters) -> Answer:
        """Answer a follow-up: `history` is [(question, answer), ...], oldest first."""
        return self._final(self.stream(question, history=history, **filters))

    def stream(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the model's text as it is generated, then the checked Answer with citations.

        The streamed tokens are the model's draft; the final Answer is what was verified
        against the passages, and is what to show once it arrives.
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        q = clean_question(question)
        filters = Filters(source=source or None, since=since or None, until=until or None)
        filters.validate()
        if self.store.count() == 0:
            raise EmptyStore("nothing is indexed yet; run `rag ingest corpus/` first")

        standalone = q
        if history:
            standalone = self.condense(history, q)
            timings["condense"] = time.perf_counter() - t0

        bundle_vec = self.embed.get_query_embedding(standalone)
        given = {line for _, a in history for line in _quoted_sentences(a)}
        focus = q if standalone.startswith(q) and standalone != q else None
        chunks, passages = self._retrieve(
            standalone, filters, top_k, timings, bundle_vec, given, focus
        )
        retrieved = [c.node.metadata.get("doc_id", "") for c in chunks]
        # Confidence is judged before follow-up demotion: a passage already given still counts.
        best = max(
            (p.node.metadata.get("undemoted", p.score) or 0.0 for p in passages), default=0.0
        )
        if best < self.settings.min_relevance:
            log.info("refused: best relevance %.3f < %.3f", best, self.settings.min_relevance)
            yield self._refusal(q, standalone, passages, timings, t0, retrieved)
            return

        nodes = [p.node for p in passages]
        messages = self.prompts["qa"].format_messages(
            context=self.format_context(nodes), question=standalone
        )
        t = time.perf_counter()
        draft = ""
        try:
            for part in self.llm.stream_chat(messages):
                delta = part.delta or ""
                if delta:
                    if not draft:
                        timings["first_token"] = time.perf_counter() - t0
                    draft += delta
                    yield delta
        except LLMUnavailable:
            raise
        except Exception as e:  # server down, slow or refusing: say so, never crash
            raise describe_llm_error(e, self.settings) from e
        timings["generate"] = time.perf_counter() - t

        if says_dont_know(draft):
            yield self._refusal(q, standalone, passages, timings, t0, retrieved)
            return
        t = time.perf_counter()
        grounder = Grounder(
            self.settings.min_support,
            relevance=lambda sents: relevance_scores(
                sents, standalone, bundle_vec, self.embed, cache=self.sentence_vectors
            ),
        )
        text, citations, replaced = grounder.ground(draft, nodes)
        timings["ground"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        # An answer that lacks the kind of word the question asks for (a number for "how
        # many", a date for "when") does not answer it, however well it is cited. Nor does a
        # quote standing in for a model answer that was wholly unsupported, unless retrieval
        # was confident: the model found nothing it could say from these passages.
        kind = expected_answer_type(standalone)
        unsupported = replaced > 0 and replaced >= len(split_answer(draft))
        if (
            not citations
            or not has_answer_type(strip_markers(text), kind, standalone)
            or (unsupported and best < self.settings.confident_relevance)
        ):
            yield self._refusal(q, standalone, passages, timings, t0, retrieved)
            return
        yield Answer(q, text, citations, False, timings, standalone, replaced, retrieved)

    def passage_in_context(self, citation: Citation, chars: int = 400) -> tuple[str, str, str]:
        """(text before, the cited passage, text after) from the cleaned article, for display."""
        article = self.store.article_text(citation.doc_id)
        start, end = citation.start, citation.end
        before = article[max(0, start - chars) : start]
        after = article[end : end + chars]
        return (
            ("…" if start > chars else "") + before,
            article[start:end],
            after + ("…" if end + chars < len(article) else ""),
        )

    def status(self) -> dict:
        from rag.status import describe

        return describe(self.store)

    # Steps --------------------------------------------------------------------------------
    def retrieve(
        self,
        question: str,
        *,
        filters: Filters | None = None,
        top_k: int | None = None,
    ) -> list[NodeWithScore]:
        """Passages (selected sentences) for `question`, best first."""
        q = clean_question(question)
        return self._retrieve(q, filters or Filters(), top_k, {}, None, set())[1]

    def _retrieve(
        self,
        question: str,
        filters: Filters,
        top_k: int | None,
        timings: dict[str, float],
        query_vec: list[float] | None,
        already_given: set[str],
        focus: str | None = None,
    ) -> tuple[list[NodeWithScore], list[NodeWithScore]]:
        t = time.perf_counter()
        if query_vec is None:
            query_vec = self.embed.get_query_embedding(question)
        bundle = QueryBundle(question, embedding=query_vec)
        retriever = HybridRetriever(
            self.store,
            self.keyword,
            self.embed,
            top_k=top_k or self.settings.top_k,
            rrf_k=self.settings.rrf_k,
            filters=filters,
        )
        chunks = retriever.retrieve(bundle)
        timings["retrieve"] = time.perf_counter() - t
        t = time.perf_counter()
        selector = SentenceSelector(
            embed=self.embed,
            max_sentences=self.settings.context_sentences,
            max_tokens=self.settings.context_tokens,
            already_given=already_given,
            focus=focus,
            cache=self.sentence_vectors,
        )
        passages = selector.postprocess_nodes(chunks, query_bundle=bundle)
        timings["select"] = time.perf_counter() - t
        return chunks, passages

    def condense(self, history: Sequence[Turn], question: str) -> str:
        """Rewrite a follow-up as a standalone question, using the recent conversation."""
        recent = list(history)[-3:]
        lines = []
        for user, assistant in recent:
            lines.append(f"User: {user}")
            lines.append(f"Assistant: {strip_markers(assistant)[:300]}")
        messages = self.prompts["condense"].format_messages(
            history="\n".join(lines), question=question
        )
        try:
            out = self.llm.chat(messages).message.content or ""
        except Exception as e:
            raise describe_llm_error(e, self.settings) from e
        out = out.strip().splitlines()[0].strip() if out.strip() else ""
        # A tiny model often answers instead of rewriting, or drops the follow-up's point; then
        # the new question is searched together with the previous one.
        plausible = (
            out.endswith("?")
            and 3 <= len(out.split()) <= 40
            and not re.match(r"(the )?answer", out, re.IGNORECASE)
            and terms(question) - terms(out) <= {"els", "too", "also"}
        )
        if plausible:
            return out
        return f"{question} {recent[-1][0]}" if recent else question

    @staticmethod
    def format_context(nodes: list[TextNode]) -> str:
        blocks = []
        for n, node in enumerate(nodes, start=1):
            m = node.metadata
            head = " — ".join(x for x in (m.get("title", ""), m.get("date", "")) if x)
            blocks.append(
                f"[{n}] ({head})\n{node.get_content()}" if head else f"[{n}] {node.get_content()}"
            )
        return "\n\n".join(blocks)

    def _refusal(self, q, standalone, passages, timings, t0, retrieved) -> Answer:
        timings["total"] = time.perf_counter() - t0
        closest = [citation_for(i, p.node) for i, p in enumerate(passages[:3], start=1)]
        return Answer(q, REFUSAL, closest, True, timings, standalone, 0, retrieved)

    @staticmethod
    def _final(events: Iterator[str | Answer]) -> Answer:
        answer = None
        for ev in events:
            if isinstance(ev, Answer):
                answer = ev
        assert answer is not None
        return answer


def _quoted_sentences(answer: str) -> list[str]:
    """Sentences an earlier answer gave, so "who else?" prefers new ones."""
    plain = strip_markers(answer)
    return [" ".join(q.split()) for q in re.findall(r"“([^”]+)”", plain)] + [
        " ".join(x.split()) for x in re.split(r"(?<=[.!?])\s+", plain) if x
    ]
