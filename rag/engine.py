"""The question-answering engine: the Python API behind the CLI, the UI and the evals.

    from rag import Engine
    engine = Engine.from_settings()
    answer = engine.ask("Who designed the Velmora bridge?", source="cnn.com", since="2022-06-01")
    print(answer.text, [c.title for c in answer.citations])

Flow, as named steps over one typed `AnswerState`: condense (in a chat) → retrieve (hybrid, as of
a date) → select sentences → refusal check → generate (streamed) → short answer → ground →
refusal check → Answer with citations. `Engine.stream` returns an `AnswerStream`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.answer_log import AnswerLog
from rag.answer_span import (
    YESNO,
    Candidate,
    ShortAnswer,
    answer_type,
    kind_ruled_out,
    question_kind,
    rank,
    to_short_answer,
)
from rag.clean import strip_bidi_controls
from rag.config import Settings, check_top_k
from rag.context import SentenceSelector, relevance_scores
from rag.corroborate import Conflict, Corroboration, Result, corroborate, headline, number_citations
from rag.embeddings import OnnxMiniLMEmbedding, VectorCache
from rag.errors import EmptyStore, InvalidInput, LLMUnavailable
from rag.foreground import Foreground
from rag.grounding import Citation, Grounder, citation_for, says_dont_know, split_answer
from rag.keyword import KeywordIndex
from rag.llm import describe_llm_error, make_llm
from rag.output_guard import (
    QUOTED_NOTE,
    REMOVED_NOTE,
    asks_how_to_contact,
    relays_request,
    request_spans,
)
from rag.prompts import DEFAULT_PROMPTS, REFUSAL
from rag.refusal import (
    RefusalPolicy,
    RefusalReason,
    Signals,
    counts_other,
    overrides_rules,
    unmentioned_names,
    unmentioned_ordinals,
)
from rag.retrieve import Filters, HybridRetriever
from rag.store import ArticleStore
from rag.text import has_answer_type, sentence_spans, strip_markers, terms

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class Answer:
    question: str
    text: str  # the short answer first ("Ilse Varga [1]"), then the cited support
    citations: list[Citation]
    refused: bool
    timings: dict[str, float] = field(default_factory=dict)
    standalone_question: str = ""
    replaced_sentences: int = 0  # model sentences swapped for quotes by the grounding check
    retrieved: list[str] = field(default_factory=list)  # article ids of the chunks, best first
    short_answer: ShortAnswer | None = None  # verbatim from a cited passage, with its span
    refusal_reason: str = ""  # a RefusalReason's text when refused
    as_of: str = ""  # YYYY-MM-DD: articles published after it were not used
    signals: dict = field(default_factory=dict)  # what the refusal policy read (for calibration)
    log_id: int | None = None  # its id in the answer log (`rag feedback ID`), when logged
    # Outlets stating the short answer and their citation numbers (rag/corroborate.py), and
    # other sources' different values in the same claim; None and [] with no short answer.
    corroboration: Corroboration | None = None
    conflicts: list[Conflict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "short_answer": self.short_answer.to_dict() if self.short_answer else None,
            "refused": self.refused,
            "refusal_reason": self.refusal_reason or None,
            "as_of": self.as_of,
            "citations": [c.to_dict() for c in self.citations],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "standalone_question": self.standalone_question,
            "replaced_sentences": self.replaced_sentences,
            "retrieved": self.retrieved,
            "signals": self.signals,
            "log_id": self.log_id,
            "corroboration": self.corroboration.to_dict() if self.corroboration else None,
            "conflicts": [c.to_dict() for c in self.conflicts],
        }


Turn = tuple[str, str]  # (user question, assistant answer)


def clean_question(question: object) -> str:
    if not isinstance(question, str):
        raise InvalidInput("the question must be text")
    q = strip_bidi_controls(_CONTROL.sub(" ", question)).strip()
    if not q:
        raise InvalidInput("the question is empty; ask something about the articles")
    if len(q) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"the question is {len(q)} characters long; keep it under {MAX_QUESTION_CHARS}"
        )
    return q


@dataclass
class AnswerState:
    """Everything one question's answer is made of, filled in step by step."""

    question: str
    filters: Filters
    top_k: int
    history: Sequence[Turn] = ()
    started: float = field(default_factory=time.perf_counter)
    standalone: str = ""
    focus: str | None = None  # the follow-up itself, when it was searched with the last question
    query_vec: list[float] = field(default_factory=list)
    chunks: list[NodeWithScore] = field(default_factory=list)
    passages: list[NodeWithScore] = field(default_factory=list)
    best_relevance: float = 0.0
    unmentioned: list[str] = field(default_factory=list)  # question names no passage has
    unnumbered: list[str] = field(default_factory=list)  # "its second summit" no passage has
    overrides: bool = False  # the question orders the assistant to drop its rules
    prompt: list[ChatMessage] = field(default_factory=list)
    draft: str = ""
    ranked: list[Candidate] = field(default_factory=list)  # short-answer spans, best first
    short: ShortAnswer | None = None
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    replaced: int = 0
    corroborated: Result | None = None
    refusal: RefusalReason | None = None
    signals: Signals | None = None
    timings: dict[str, float] = field(default_factory=dict)
    log: bool = True  # keep the answer in the answer log

    @property
    def nodes(self) -> list[TextNode]:
        return [p.node for p in self.passages]  # type: ignore[misc]

    def timed(self, step: str, since: float) -> None:
        self.timings[step] = time.perf_counter() - since


class AnswerStream:
    """The model's draft, token by token, and then the checked answer.

        stream = engine.stream("Who runs the Orsby ferry line?")
        for token in stream:          # the draft as it is generated (may be nothing)
            print(token, end="")
        stream.answer                 # the verified Answer, with citations

    Reading `answer` first finishes the work without showing the draft.
    """

    def __init__(self, steps: Generator[str, None, Answer]) -> None:
        self._steps = steps
        self._answer: Answer | None = None
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        # One iterator over the steps, so a reader may stop part-way and read `answer` later.
        if self._error is not None:
            raise self._error
        if self._answer is not None:
            raise StopIteration
        try:
            return next(self._steps)
        except StopIteration as done:
            self._answer = done.value
            raise
        except Exception as e:  # a second read says the same, not "no answer"
            self._error = e
            raise

    @property
    def answer(self) -> Answer:
        for _ in self:
            pass
        if self._answer is None:
            raise RuntimeError("the answer stream was closed before it finished")
        return self._answer

    def close(self) -> None:
        """Stop answering (a reader that gives up): frees the model for the next question."""
        self._steps.close()


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
        self.policy = RefusalPolicy.from_settings(settings)
        self._llm = llm
        self._llm_lock = threading.Lock()
        self.prompts: dict[str, BasePromptTemplate] = dict(DEFAULT_PROMPTS)
        # Background ingestion in this process (rag serve --watch) pauses while we answer.
        self.foreground = Foreground()
        self.answer_log = AnswerLog.from_settings(settings)  # off with RAG_LOG=false

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
    def ask(self, question: str, **options) -> Answer:
        """Answer one question from the articles, with citations.

        Options: top_k, source, since, until (YYYY-MM-DD filters) and as_of (the day the
        question is asked, default today: later articles are never used)."""
        return self.stream(question, **options).answer

    def chat(self, history: Sequence[Turn], question: str, **options) -> Answer:
        """Answer a follow-up: `history` is [(question, answer), ...], oldest first."""
        return self.stream(question, history=history, **options).answer

    def stream(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        as_of: str | dt.date | None = None,
        log: bool = True,
    ) -> AnswerStream:
        """Start answering: iterate the result for the model's draft, then read `.answer`.

        Bad input (an empty question, a malformed date) and an empty store raise here, before
        any work; the draft is the model's and unchecked, the final Answer is verified. The
        answer is kept in the answer log unless `log=False` (or RAG_LOG=false).
        """
        state = AnswerState(
            question=clean_question(question),
            filters=Filters(
                source=source or None,
                since=since or None,
                until=until or None,
                as_of=as_of or dt.date.today(),
            ).validate(),
            top_k=self.settings.top_k if top_k is None else check_top_k(top_k),
            history=tuple(history),
            log=log,
        )
        if self.store.count() == 0:
            raise EmptyStore("nothing is indexed yet; run `rag ingest corpus/` first")
        return AnswerStream(self._answer(state))

    # The answer pipeline: each step reads and fills the state ------------------------------
    def _answer(self, st: AnswerState) -> Generator[str, None, Answer]:
        with self.foreground.busy():
            answer = yield from self._steps(st)
        if st.log:  # never raises: a log that cannot be written says so once and is skipped
            answer.log_id = self.answer_log.record(
                answer,
                filters={**asdict(st.filters), "top_k": st.top_k},
                settings=self.settings,
                store=self.store.name,
            )
        return answer

    def _steps(self, st: AnswerState) -> Generator[str, None, Answer]:
        self._condense(st)
        self._retrieve(st)
        self._select(st)
        if question_kind(st.standalone) == YESNO:
            # A yes/no question gets no short answer: the quoted passages are the answer, so
            # they (with the lines just before them, where "she" is named) must speak of whom
            # it asks about.
            read = [(_with_lead_in(n, st.chunks), n.metadata) for n in st.nodes]
        else:
            # The whole retrieved chunks, not only the selected sentences: a sentence may say
            # "she" of someone its chunk names.
            read = [(c.node.get_content(), c.node.metadata) for c in st.chunks]
        seen = [text for text, _ in read] + [str(meta.get("title", "")) for _, meta in read]
        # A follow-up searched joined to the last question asks what the follow-up asks: the
        # joined text's asking sentence would be the last question's.
        asked = st.focus or st.standalone
        st.unmentioned = unmentioned_names(asked, seen)
        st.unnumbered = unmentioned_ordinals(asked, seen)
        st.overrides = overrides_rules(st.question)
        st.refusal = self.policy.before_generation(
            st.best_relevance, st.unmentioned, st.overrides, st.unnumbered
        )
        if st.refusal is None:
            yield from self._generate(st)
            self._extract_short_answer(st)
            self._ground(st)
            self._guard(st)
            self._corroborate(st)
            st.signals = self._signals(st)
            st.refusal = self.policy.after_generation(st.signals)
        return self._finish(st)

    def _condense(self, st: AnswerState) -> None:
        t = time.perf_counter()
        st.standalone = self.condense(st.history, st.question) if st.history else st.question
        if st.standalone != st.question and st.standalone.startswith(st.question):
            st.focus = st.question
        if st.history:
            st.timed("condense", t)

    def _retrieve(self, st: AnswerState) -> None:
        t = time.perf_counter()
        st.query_vec = self.embed.get_query_embedding(st.standalone)
        retriever = HybridRetriever(
            self.store,
            self.keyword,
            self.embed,
            top_k=st.top_k,
            rrf_k=self.settings.rrf_k,
            filters=st.filters,
        )
        st.chunks = retriever.retrieve(QueryBundle(st.standalone, embedding=st.query_vec))
        st.timed("retrieve", t)

    def _select(self, st: AnswerState) -> None:
        t = time.perf_counter()
        given = {line for _, a in st.history for line in _quoted_sentences(a)}
        selector = SentenceSelector(
            embed=self.embed,
            max_sentences=self.settings.context_sentences,
            max_tokens=self.settings.context_tokens,
            already_given=given,
            focus=st.focus,
            cache=self.sentence_vectors,
            article_text=self._article_text_or_empty,
        )
        bundle = QueryBundle(st.standalone, embedding=st.query_vec)
        st.passages = selector.postprocess_nodes(st.chunks, query_bundle=bundle)
        # Judged on all the question's words, before follow-up demotion: a passage already
        # given still counts (rag/context.py, Sentence.confidence).
        st.best_relevance = max(
            (float(p.node.metadata.get("confidence", p.score or 0.0)) for p in st.passages),
            default=0.0,
        )
        st.timed("select", t)

    def _generate(self, st: AnswerState) -> Iterator[str]:
        st.prompt = self.prompts["qa"].format_messages(
            context=self.format_context(st.nodes), question=st.standalone
        )
        t = time.perf_counter()
        try:
            for part in self.llm.stream_chat(st.prompt):
                delta = part.delta or ""
                if delta:
                    if not st.draft:
                        st.timed("first_token", st.started)
                    st.draft += delta
                    yield delta
        except LLMUnavailable:
            raise
        except Exception as e:  # server down, slow or refusing: say so, never crash
            raise describe_llm_error(e, self.settings) from e
        st.timed("generate", t)

    def _extract_short_answer(self, st: AnswerState) -> None:
        t = time.perf_counter()
        try:
            # Scored on the draft's own prompt, which the local model still holds in its cache.
            st.ranked = rank(
                st.standalone, st.nodes, st.draft, self.llm, messages=st.prompt, embed=self.embed
            )
        except Exception as e:  # a scoring failure must not lose the answer
            log.warning("short answer failed: %s", e)
            st.ranked = []
        st.timed("short_answer", t)

    def _ground(self, st: AnswerState) -> None:
        t = time.perf_counter()
        grounder = Grounder(
            self.settings.min_support,
            # As the selector judged them: a follow-up searched with the last question counts
            # with its own words, which that question's asking sentence does not hold.
            relevance=lambda sents: relevance_scores(
                sents,
                st.standalone,
                st.query_vec,
                self.embed,
                focus=st.focus,
                cache=self.sentence_vectors,
            ),
        )
        text, citations, replaced = grounder.ground(st.draft, st.nodes)
        # The short answer comes from a passage the answer cites on its own merits when one
        # holds a span that fits; only otherwise from the best span anywhere, quoted for it.
        # A span from a passage nothing else supports is the usual wrong short answer.
        cited = {_passage_index(c, st.nodes) for c in citations}
        pick = next((c for c in st.ranked if c.passage in cited), None) or next(
            iter(st.ranked), None
        )
        st.short = to_short_answer(pick, st.nodes, "combined", st.standalone) if pick else None
        if st.short is not None:
            text, citations, replaced = grounder.ground(
                st.draft, st.nodes, cite_first=st.short.passage - 1, must_quote=st.short.text
            )
        st.text, st.citations, st.replaced = text, citations, replaced
        if st.short and st.citations:
            st.text = f"{st.short.text} [1]\n\n{st.text}"
        st.timed("ground", t)

    def _guard(self, st: AnswerState) -> None:
        """No request to send money, credentials or personal data, or to contact an address to
        be paid or verified, is relayed (rag/output_guard.py): not as the short answer, not in
        the text, and in the quotes only when the question asks how to contact someone."""
        contact = asks_how_to_contact(st.standalone)
        removed = 0
        if st.short is not None and _short_in_request(st.short, st.nodes):
            prefix = f"{st.short.text} [1]\n\n"
            st.text = st.text[len(prefix) :] if st.text.startswith(prefix) else st.text
            st.short = None
            removed += 1
        spans = request_spans(st.text)
        for a, b in reversed(spans):
            st.text = st.text[:a] + st.text[b:]
        removed += len(spans)
        if not contact:
            for i, c in enumerate(st.citations):
                kept = _without_requests(c)
                if kept is not c:
                    st.citations[i] = kept
                    removed += 1
        if removed:
            st.text = "\n\n".join(
                p for p in (st.text.strip(), QUOTED_NOTE if contact else REMOVED_NOTE) if p
            )

    def _corroborate(self, st: AnswerState) -> None:
        """Cite the other sources that state the short answer, and show where others give a
        different value: "$12.6 million [1][2] (2 sources)" (rag/corroborate.py). After the
        guard, so only a short answer it kept is corroborated, and never by a request."""
        prefix = f"{st.short.text} [1]\n\n" if st.short else ""
        if st.short is None or not st.citations or not st.text.startswith(prefix):
            return
        t = time.perf_counter()
        result = self.corroborate(st.short, st.passages, st.chunks)
        if result is None:
            return
        st.citations = number_citations(result, st.citations)
        st.text = f"{headline(st.short.text, result)}\n\n{st.text[len(prefix) :]}"
        st.corroborated = result
        st.timed("corroborate", t)

    def corroborate(
        self, short: ShortAnswer | None, passages: list[NodeWithScore], chunks: list[NodeWithScore]
    ) -> Result | None:
        """The sources stating a short answer and other sources' values (rag/corroborate.py),
        as an answer finds them; a sentence that relays a request is never cited."""
        # The detector's vectors as the selector used them, so its cached spans are reused.
        shared = isinstance(self.embed, OnnxMiniLMEmbedding)
        return corroborate(
            short,
            passages,
            chunks,
            self._article_text_or_empty,
            vectors=self.sentence_vectors.get_many if shared else None,
            skip=lambda sentence: bool(request_spans(sentence)),
        )

    def _signals(self, st: AnswerState) -> Signals:
        kind = answer_type(st.standalone)
        other = counts_other(st.standalone, [n.get_content() for n in st.nodes])
        # A span of the kind asked, or failing that a word of it in the answer (a span the
        # patterns miss, "two weeks ago") - unless the passages' spans of that kind are all
        # ruled out (a past date for "when will", no amount for "how much did it cost").
        found = st.short is not None or (
            not kind_ruled_out(st.standalone, st.nodes)
            and has_answer_type(strip_markers(st.text), kind, st.standalone)
        )
        return Signals(
            best_relevance=st.best_relevance,
            model_declined=says_dont_know(st.draft),
            cited=bool(st.citations),
            kind_asked=kind != "any",
            kind_found=found,
            draft_supported=st.replaced < len(split_answer(st.draft)),
            counts_other=other,
        )

    def _finish(self, st: AnswerState) -> Answer:
        retrieved = [c.node.metadata.get("doc_id", "") for c in st.chunks]
        as_of = st.filters.as_of
        as_of_text = as_of.isoformat() if isinstance(as_of, dt.date) else str(as_of or "")
        st.timings["total"] = time.perf_counter() - st.started
        signals: dict[str, object] = (
            asdict(st.signals) if st.signals else {"best_relevance": st.best_relevance}
        )
        # What the policy read before generation, so `evals.calibrate` can replay it.
        signals["unmentioned"] = st.unmentioned
        signals["overrides"] = st.overrides
        signals["unnumbered"] = st.unnumbered
        if st.refusal is not None:
            log.info("refused (%s): best relevance %.3f", st.refusal, st.best_relevance)
            closest = [citation_for(i, n) for i, n in enumerate(st.nodes[:3], start=1)]
            return Answer(
                st.question,
                REFUSAL,
                closest,
                True,
                st.timings,
                st.standalone,
                0,
                retrieved,
                refusal_reason=_reason_text(st),
                as_of=as_of_text,
                signals=signals,
            )
        return Answer(
            st.question,
            st.text,
            st.citations,
            False,
            st.timings,
            st.standalone,
            st.replaced,
            retrieved,
            short_answer=st.short,
            as_of=as_of_text,
            signals=signals,
            corroboration=st.corroborated.corroboration if st.corroborated else None,
            conflicts=st.corroborated.conflicts if st.corroborated else [],
        )

    def _article_text_or_empty(self, doc_id: str) -> str:
        try:
            return self.store.article_text(doc_id)
        except KeyError:
            return ""

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

    def retrieve(
        self,
        question: str,
        *,
        filters: Filters | None = None,
        top_k: int | None = None,
    ) -> list[NodeWithScore]:
        """Passages (selected sentences) for `question`, best first: the retrieval steps of
        the answer pipeline alone, with no model."""
        st = AnswerState(
            clean_question(question),
            filters or Filters(),
            self.settings.top_k if top_k is None else check_top_k(top_k),
        )
        st.standalone = st.question
        self._retrieve(st)
        self._select(st)
        return st.passages

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
        """Numbered passages; an article's title and date head its first passage only. Titles
        were 40 % of the prompt's passage tokens, and prompt length is the time to first token."""
        blocks = []
        headed: set[str] = set()
        for n, node in enumerate(nodes, start=1):
            m = node.metadata
            head = " — ".join(x for x in (m.get("title", ""), m.get("date", "")) if x)
            doc = m.get("doc_id", "")
            if doc and doc in headed:
                head = ""
            headed.add(doc)
            blocks.append(
                f"[{n}] ({head})\n{node.get_content()}" if head else f"[{n}] {node.get_content()}"
            )
        return "\n\n".join(blocks)


# How far before a passage its subject may be named ("Ilse Varga ... She vetoed ...").
LEAD_IN_CHARS = 300


def _with_lead_in(passage: TextNode, chunks: Sequence[NodeWithScore]) -> str:
    """The passage with up to LEAD_IN_CHARS of its article before it, from a retrieved chunk."""
    doc, start = passage.metadata.get("doc_id", ""), passage.start_char_idx or 0
    for c in chunks:
        base = c.node.start_char_idx or 0  # type: ignore[attr-defined]
        text = c.node.get_content()
        if c.node.metadata.get("doc_id") == doc and base <= start <= base + len(text):
            return text[max(0, start - base - LEAD_IN_CHARS) : start - base] + passage.get_content()
    return passage.get_content()


def _short_in_request(short: ShortAnswer, nodes: Sequence[TextNode]) -> bool:
    """The short answer relays a request, or is a piece of a sentence that does (an address
    cut out of "send your bank details to ...")."""
    if relays_request(short.text):
        return True
    if not 1 <= short.passage <= len(nodes):
        return False
    passage = nodes[short.passage - 1]
    text, base = passage.get_content(), passage.start_char_idx or 0
    return any(base + a <= short.start and short.end <= base + b for a, b in request_spans(text))


def _without_requests(c: Citation) -> Citation:
    """The citation narrowed to its longest run of sentences that relay no request (its span
    too, so the passage shown in context is the same); itself when it holds none."""
    bad = request_spans(c.text)
    if not bad:
        return c
    runs: list[list[tuple[int, int]]] = [[]]
    for a, b in sentence_spans(c.text):
        if (a, b) in bad:
            runs.append([])
        else:
            runs[-1].append((a, b))
    best = max(runs, key=lambda r: r[-1][1] - r[0][0] if r else -1)
    if not best:
        return replace(c, text="", end=c.start)
    a, b = best[0][0], best[-1][1]
    return replace(c, text=c.text[a:b], start=c.start + a, end=c.start + b)


def _reason_text(st: AnswerState) -> str:
    if st.refusal == RefusalReason.NAME_NOT_FOUND:
        return f"no passage mentions {', '.join(st.unmentioned)}"
    if st.refusal == RefusalReason.ORDINAL_NOT_FOUND:
        return f"no passage mentions {', '.join(st.unnumbered)}"
    return str(st.refusal)


def _passage_index(c: Citation, nodes: Sequence[TextNode]) -> int:
    return next(
        (
            i
            for i, n in enumerate(nodes)
            if n.metadata.get("doc_id", "") == c.doc_id and (n.start_char_idx or 0) == c.start
        ),
        -1,
    )


def _quoted_sentences(answer: str) -> list[str]:
    """Sentences an earlier answer gave, so "who else?" prefers new ones."""
    plain = strip_markers(answer)
    return [" ".join(q.split()) for q in re.findall(r"“([^”]+)”", plain)] + [
        " ".join(x.split()) for x in re.split(r"(?<=[.!?])\s+", plain) if x
    ]
