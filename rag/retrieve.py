"""Hybrid retrieval: vector search in Chroma plus BM25, fused by reciprocal rank, seen from an
as-of date.

News is read as of a day. Articles published after it are never used (`Filters.as_of`), and for
questions about current events a recency prior (`recency_weight`) lifts the articles close to
that day above older ones, which still count as background. How the prior is shaped, and what
it was measured on, is written next to its constants below.

Undated articles are kept under an as-of date: nothing shows them to be after it, and a corpus
of undated notes (the bundled articles, most uploads) would otherwise answer nothing at all. The
prior treats them as background (the floor weight). An explicit `since`/`until` range still
drops them, as before: the user asked for dates they do not have. An article whose date text
could not be read (`date` set but no `date_num`) is dropped by any date bound, on both sides.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from llama_index.core import VectorStoreIndex
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.errors import InvalidInput
from rag.keyword import KeywordHit, KeywordIndex
from rag.store import ArticleStore
from rag.text import PAST_VERB

# The recency prior. A chunk's score in each search (cosine similarity, BM25) is multiplied by
# floor + (1 - floor) * 2 ** (-age / half_life) before the two rankings are fused by rank: an
# article from the as-of day keeps its score, one a half-life old keeps 75 %, old background
# keeps RECENCY_FLOOR of it. On each search's own score, an old chunk that is clearly more
# relevant keeps its place and close calls go to the fresher one; on the flat fused
# reciprocal-rank score the prior would lift fresh chunks that only one search found.
# Measured on RealTime QA dev (98 questions, 11 weekly news quizzes of June-August 2022, whole
# 1,086-article corpus; bench/recency_study.py), hit@6 of the evidence article: 0.82 before,
# 0.84 with the as-of filter alone, 0.93-0.95 with the prior for every half-life in
# {3, 7, 14, 30} and floor in {0.25, 0.5} (0.95 at 3 / 0.5, chosen; MRR is best at 30 days);
# 0.96 when only the week before is searched. A floor of 0.25 also scored 0.95 (at 7 days),
# but in tests/test_retrieve.py it let fresh unrelated chunks pass an undated relevant one:
# cosine similarity has a floor of its own (~0.3 for unrelated text), so a strong prior on it
# reaches past relevance. Differences between these settings are one or two questions.
RECENCY_HALF_LIFE_DAYS = 3.0  # news moves in days: quiz evidence is mostly 0-6 days old
RECENCY_FLOOR = 0.5  # background keeps half its score; at 0.25 a fresh unrelated chunk beat it

# Chunks each search returns before the prior and fusion. Today's 2 x top_k (12) leaves the
# prior little to promote: in a year of news, the week's article on a story is often below
# older ones on the same story. 100 gave 0.95 where 50 gave 0.93, for about 0.1 s more.
CANDIDATE_POOL = 100
# An as-of bound alone is first applied after an unfiltered search for this many times the pool:
# when a full pool passes, it is exactly the filtered search's top (every passing chunk that
# ranks higher is in the list), at HNSW speed. Only when it does not (an as-of date before most
# of the store) does the filtered Chroma query run, which scans: 0.5 s at 100k chunks.
AS_OF_OVERFETCH = 2

PriorScope = Literal["current", "all", "off"]
# Where the prior applies: to each search's own score (cosine, BM25) before rank fusion, or to
# the fused reciprocal-rank score.
PriorShape = Literal["searches", "fused"]
PRIOR_SHAPE: PriorShape = "searches"


def _day(value: str | dt.date | None, name: str) -> int | None:
    """YYYYMMDD as an int (how ingestion stores `date_num`), or None for no date."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{name} must be a date like 2024-05-31, not {value!r}") from None
    if not isinstance(value, dt.date):
        raise InvalidInput(f"{name} must be a date like 2024-05-31, not {value!r}")
    return value.year * 10000 + value.month * 100 + value.day


def _from_num(num: int) -> dt.date | None:
    try:
        return dt.date(num // 10000, num // 100 % 100, num % 100)
    except ValueError:
        return None


@dataclass(frozen=True)
class Filters:
    """Metadata filters: one source, an inclusive date range, and an as-of date (YYYY-MM-DD).

    `as_of` drops articles dated after it but keeps undated ones; `until` drops both. With
    both, the earlier bound applies.
    """

    source: str | None = None
    since: str | dt.date | None = None
    until: str | dt.date | None = None
    as_of: str | dt.date | None = None

    @property
    def since_num(self) -> int | None:
        return _day(self.since, "since")

    @property
    def until_num(self) -> int | None:
        return _day(self.until, "until")

    @property
    def as_of_num(self) -> int | None:
        return _day(self.as_of, "as_of")

    @property
    def upper_num(self) -> int | None:
        """The latest date an article may carry: the earlier of until and as_of."""
        bounds = [b for b in (self.until_num, self.as_of_num) if b]
        return min(bounds) if bounds else None

    @property
    def keep_undated(self) -> bool:
        """Undated articles pass unless the user asked for an explicit date range."""
        return not self.since_num and not self.until_num

    def validate(self) -> Filters:
        since, until, as_of = self.since_num, self.until_num, self.as_of_num
        if since and until and since > until:
            raise InvalidInput("since must not be after until")
        if since and as_of and since > as_of:
            raise InvalidInput("since must not be after the as-of date")
        return self

    def to_metadata_filters(self) -> MetadataFilters | None:
        parts: list[MetadataFilter | MetadataFilters] = []
        if self.source:
            parts.append(MetadataFilter(key="source", value=self.source))
        if self.since_num:
            parts.append(
                MetadataFilter(key="date_num", value=self.since_num, operator=FilterOperator.GTE)
            )
        if upper := self.upper_num:
            dated = MetadataFilter(key="date_num", value=upper, operator=FilterOperator.LTE)
            if self.keep_undated:
                # Chroma cannot test for a missing key, but every chunk carries `date`, "" when
                # the article has none.
                undated = MetadataFilter(key="date", value="")
                parts.append(
                    MetadataFilters(filters=[dated, undated], condition=FilterCondition.OR)
                )
            else:
                parts.append(dated)
        return MetadataFilters(filters=parts) if parts else None


def _dated_by(meta: dict, upper: int) -> bool:
    """What `Filters.to_metadata_filters` keeps under an as-of bound: undated, or not later."""
    if not meta.get("date"):
        return True
    num = meta.get("date_num")
    if not num:
        return False
    return int(num) <= upper


def recency_weight(
    age_days: float | None,
    current: bool,
    half_life: float = RECENCY_HALF_LIFE_DAYS,
    floor: float = RECENCY_FLOOR,
) -> float:
    """The factor a fused score is multiplied by, for an article `age_days` before as-of.

    1 for questions that are not about current events (no prior). Otherwise it decays from 1
    (published on the as-of day) towards `floor` with the given half-life; an undated article
    (None) gets the floor, since nothing shows it is recent.
    """
    if not current:
        return 1.0
    if age_days is None:
        return floor
    return floor + (1.0 - floor) * 0.5 ** (max(age_days, 0.0) / half_life)


def _discount(similarity: float, weight: float) -> float:
    """A similarity scaled by the prior; a negative one (unrelated) is never raised by it."""
    return similarity * weight if similarity > 0 else similarity / max(weight, 1e-9)


# Words that tie a question to the present (or the days around it). A bare weekday ("said on
# Tuesday") is news style for this week. "new" only in lower case, so "New York" does not count.
_CURRENT = re.compile(
    r"\b(?i:(this|last|past|coming|next)(\s+(\d+|few|several|two|three))?\s+"
    r"(days?|weeks?|weekend|months?|years?|season)"
    r"|today|tonight|yesterday|tomorrow|this\s+(morning|afternoon|evening)"
    r"|(mon|tues|wednes|thurs|fri|satur|sun)day"
    r"|recent|recently|latest|newest|now|nowadays|currently|current|ongoing|so\s+far"
    r"|upcoming|soon|still|just|breaking|lately|days?\s+ago|as\s+of)\b"
    r"|\bnew\b"
)
# Words that pin a question to another time: "years ago", history. A year counts only when
# it is not the as-of year ("the 2022 Emmy nominations", asked in 2022, is news).
_PAST = re.compile(
    r"\b(?i:\d+\s+years?\s+ago|decades?\s+ago|centur(y|ies)|history\s+of|historic"
    r"|historical|historically|originally|founded|ancient)\b"
)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
# The first auxiliary verb gives the question's tense: "Who is...", "What has...", "Will..."
# ask about now; "Who was...", "What did..." about a past that may be long gone.
_AUX = re.compile(r"\b(?i:(is|are|am|does|do|has|have|will|was|were|did|had))\b|'s\b|'re\b|'ve\b")
_PRESENT_AUX = {"is", "are", "am", "does", "do", "has", "have", "will", "'s", "'re", "'ve"}
# With no auxiliary, the main verb gives the tense: "Which product remains scarce?" asks about
# now, "Which team won the cup?" or "Who designed the dam?" about the past (rag.text.PAST_VERB).


def is_current_events(question: str, as_of: dt.date | None = None) -> bool:
    """Whether the question asks about the present, judged by general rules of news English:
    explicit words ("this week", "latest", "on Tuesday") say yes; a year other than the
    as-of year (default this year), "years ago" or "history of" say no; otherwise the tense of
    the first auxiliary verb decides (present, present perfect and future yes, past no), or
    with none, the main verb's (a past form says no)."""
    if _CURRENT.search(question):
        return True
    this_year = str((as_of or dt.date.today()).year)
    if _PAST.search(question) or any(y != this_year for y in _YEAR.findall(question)):
        return False
    aux = _AUX.search(question)
    if aux is not None:
        return aux.group(0).lower() in _PRESENT_AUX
    return not PAST_VERB.search(question)


class HybridRetriever(BaseRetriever):
    """Top-k chunks by reciprocal rank fusion of vector and BM25 rankings, as of a date.

    Each returned node's metadata gains `vector_score` (cosine similarity, or None when only
    BM25 found it), `keyword_score` and `recency_weight` (the prior's factor), which later
    steps use to judge confidence. `as_of` (default today, or `filters.as_of`) drops later
    articles and anchors the recency prior; `prior` says which questions get it: "current"
    (those `is_current_events` accepts), "all" or "off".
    """

    def __init__(
        self,
        store: ArticleStore,
        keyword: KeywordIndex,
        embed: BaseEmbedding,
        top_k: int = 6,
        rrf_k: int = 60,
        filters: Filters | None = None,
        as_of: str | dt.date | None = None,
        *,
        prior: PriorScope = "current",
        half_life: float = RECENCY_HALF_LIFE_DAYS,
        floor: float = RECENCY_FLOOR,
        candidates: int | None = None,
        shape: PriorShape = PRIOR_SHAPE,
    ) -> None:
        super().__init__()
        filters = filters or Filters()
        if as_of is not None and filters.as_of and _day(as_of, "as_of") != filters.as_of_num:
            raise InvalidInput("two different as-of dates: pass it once")
        day = _day(as_of, "as_of") or filters.as_of_num
        as_of_day = _from_num(day) if day else dt.date.today()
        assert as_of_day is not None  # `day` was read from a valid date by _day
        self.as_of: dt.date = as_of_day
        # An as-of bound at or after the newest stored date removes nothing, and a filtered
        # Chroma query is 30-50x slower, so it is applied only when it can drop an article.
        newest = store.newest_date()
        needed = not newest or (_day(as_of_day, "as_of") or 0) < newest  # 0: unknown: apply
        self.filters = replace(filters, as_of=as_of_day if needed else None).validate()
        self.store = store
        self.keyword = keyword
        self.embed = embed
        self.top_k = top_k
        self.rrf_k = rrf_k
        self.prior = prior
        self.half_life = half_life
        self.floor = floor
        self.shape = shape
        self.candidates = candidates or max(CANDIDATE_POOL, top_k * 2)
        vector_store = ChromaVectorStore(chroma_collection=store.collection)
        self._index = VectorStoreIndex.from_vector_store(vector_store, embed_model=embed)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        n = self.candidates
        vector = self._vector(query_bundle, n)
        keyword = self._keyword(query_bundle.query_str, n)

        nodes = {h.node.node_id: h.node for h in vector}
        # Chroma's similarity is exp(-distance); with cosine distance that is exp(cos - 1).
        cosine = {h.node.node_id: 1 + math.log(max(h.score or 1e-9, 1e-9)) for h in vector}
        kw = {k.chunk_id: k.score for k in keyword}
        # The prior needs every candidate's date, so BM25-only chunks are loaded before ranking.
        self._fetch([cid for cid in kw if cid not in nodes], query_bundle, nodes, cosine)
        current = self.prior == "all" or (
            self.prior == "current" and is_current_events(query_bundle.query_str, self.as_of)
        )
        weight = {
            cid: recency_weight(self._age(node), current, self.half_life, self.floor)
            for cid, node in nodes.items()
        }
        by_vector = [h.node.node_id for h in vector]
        by_keyword = [k.chunk_id for k in keyword if k.chunk_id in nodes]  # else just deleted
        if self.shape == "searches":
            # Each search's own score carries the prior, so an old chunk that is clearly more
            # relevant keeps its place, while close calls go to the fresher one.
            by_vector.sort(key=lambda c: _discount(cosine[c], weight[c]), reverse=True)
            by_keyword.sort(key=lambda c: kw[c] * weight[c], reverse=True)
        fused: dict[str, float] = {}
        for ranking in (by_vector, by_keyword):
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0) + 1 / (self.rrf_k + rank + 1)
        if self.shape == "fused":
            fused = {cid: f * weight[cid] for cid, f in fused.items()}
        best = sorted(fused, key=fused.__getitem__, reverse=True)[: self.top_k]

        out = []
        for cid in best:
            node = nodes[cid]
            node.metadata["vector_score"] = cosine[cid]
            node.metadata["keyword_score"] = kw.get(cid, 0.0)
            node.metadata["recency_weight"] = weight[cid]
            out.append(NodeWithScore(node=node, score=fused[cid]))
        return out

    def _vector(self, query_bundle: QueryBundle, n: int) -> list[NodeWithScore]:
        f = self.filters
        upper = f.upper_num
        if upper and f.keep_undated and not f.source:  # the as-of bound is the only filter
            wide = n * AS_OF_OVERFETCH
            hits = self._index.as_retriever(similarity_top_k=wide).retrieve(query_bundle)
            kept = [h for h in hits if _dated_by(h.node.metadata, upper)]
            if len(kept) >= n or len(hits) < wide:  # a full pool, or the whole store
                return kept[:n]
        return self._index.as_retriever(
            similarity_top_k=n, filters=f.to_metadata_filters()
        ).retrieve(query_bundle)

    def _keyword(self, query: str, n: int) -> list[KeywordHit]:
        """BM25 hits within the filters; undated chunks are merged in when they may pass."""
        f = self.filters
        hits = self.keyword.search(query, n, source=f.source, since=f.since_num, until=f.upper_num)
        # Only an upper date bound drops undated chunks from the keyword side.
        if not (f.upper_num and f.keep_undated and self.store.has_undated()):
            return hits
        # The keyword index's date bound drops undated chunks, so search once more without it
        # and keep only the undated hits. Both searches score the same index, so scores merge.
        seen = {h.chunk_id for h in hits}
        extra = [
            h for h in self.keyword.search(query, n, source=f.source) if h.chunk_id not in seen
        ]
        if extra:
            got = self.store.collection.get(ids=[h.chunk_id for h in extra], include=["metadatas"])
            undated = {
                cid
                for cid, m in zip(got["ids"], got["metadatas"], strict=True)
                if not m.get("date")
            }
            hits += [h for h in extra if h.chunk_id in undated]
        return sorted(hits, key=lambda h: h.score, reverse=True)[:n]

    def _age(self, node: BaseNode) -> float | None:
        num = node.metadata.get("date_num")
        day = _from_num(int(num)) if num else None
        return float((self.as_of - day).days) if day else None

    def _fetch(
        self,
        ids: list[str],
        query_bundle: QueryBundle,
        nodes: dict[str, BaseNode],
        cosine: dict[str, float],
    ) -> None:
        """Load the chunks only BM25 found, with their cosine similarity to the query."""
        if not ids:
            return
        got = self.store.collection.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        q = query_bundle.embedding
        # Unit vectors: the dot product is the cosine.
        vecs = np.asarray(got["embeddings"], dtype=np.float32)
        sims = vecs @ np.asarray(q, dtype=np.float32) if q else np.zeros(len(got["ids"]))
        for cid, text, meta, sim in zip(
            got["ids"], got["documents"], got["metadatas"], sims.tolist(), strict=True
        ):
            nodes[cid] = metadata_dict_to_node(meta, text=text)
            cosine[cid] = float(sim)
