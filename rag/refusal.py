"""When to say "the articles do not say": one policy, named thresholds, a reason for each refusal.

The answer pipeline asks the policy twice: before generation (is any passage relevant enough to
be worth asking the model?) and after it (did the model find an answer the passages support, of
the kind the question asks for?). A refusal carries its reason into `Answer` and `--json`, and
still shows the closest passages.

Calibration: `rag eval` writes, for each question, the signals the policy reads (best passage
relevance, whether the model declined, whether a short answer of the asked kind was found,
whether any model sentence was supported). `python -m evals.calibrate REPORT...` sweeps the
thresholds over those rows, on the bundled gold set and RealTime QA dev only, and prints the
refusal precision/recall and false refusals for each; the defaults below are the values
chosen there (see the README's "Refusals" section for the table and the commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rag.config import Settings


class RefusalReason(StrEnum):
    NO_RELEVANT_PASSAGE = "no passage is relevant"
    MODEL_FOUND_NO_ANSWER = "the model found no answer"
    WRONG_KIND = "the answer lacks the kind asked for"
    UNSUPPORTED = "no passage supports the model's answer"


@dataclass(frozen=True)
class Signals:
    """What the policy reads about one question, after generation."""

    best_relevance: float  # best selected sentence's relevance (before follow-up demotion)
    model_declined: bool  # every sentence of the draft says it does not know
    cited: bool  # the grounded answer cites at least one passage
    kind_asked: bool  # the question asks for a kind (who, when, how many, where...)
    kind_found: bool  # a short answer of that kind was found in the passages
    draft_supported: bool  # at least one sentence of the model's draft was supported


@dataclass(frozen=True)
class RefusalPolicy:
    # Below this best-sentence relevance no passage is about the question: the model is not
    # asked at all. Cosine-scale relevance of the sentence selector (rag/context.py).
    min_relevance: float = 0.35
    # Between min_relevance and this, retrieval is unsure, so the answer must stand on its own:
    # a model draft that no passage supports is a refusal rather than a quoted stand-in.
    # Calibrated equal to min_relevance (rule off): on the data we hold it refused more
    # answerable questions (RealTime QA's long questions score lower) than unanswerable ones.
    confident_relevance: float = 0.35

    @classmethod
    def from_settings(cls, settings: Settings) -> RefusalPolicy:
        return cls(settings.min_relevance, settings.confident_relevance)

    def before_generation(self, best_relevance: float) -> RefusalReason | None:
        if best_relevance < self.min_relevance:
            return RefusalReason.NO_RELEVANT_PASSAGE
        return None

    def after_generation(self, s: Signals) -> RefusalReason | None:
        if s.model_declined:
            return RefusalReason.MODEL_FOUND_NO_ANSWER
        if not s.cited:
            return RefusalReason.UNSUPPORTED
        # A question that asks for a name, number or date is answered only by one; a quote
        # without it does not answer, however well it is cited.
        if s.kind_asked and not s.kind_found:
            return RefusalReason.WRONG_KIND
        if not s.draft_supported and s.best_relevance < self.confident_relevance:
            return RefusalReason.UNSUPPORTED
        return None
