"""The quality gate: the eval on the bundled corpus with the bundled model must stay above the
thresholds in evals/thresholds.toml. A change that makes answers worse fails here."""

import json

import pytest

from rag.evaluate import DEFAULT_CORPUS, DEFAULT_GOLD, check_thresholds, run_eval, write_report
from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.e2e


def test_bundled_gold_set_meets_the_thresholds(settings):
    result = run_eval(settings, gold=DEFAULT_GOLD, corpus=DEFAULT_CORPUS, progress=False)
    folder = write_report(result, ROOT / "test-artifacts" / "eval")
    failures = check_thresholds(result, ROOT / "evals" / "thresholds.toml")
    assert not failures, f"{failures}; report in {folder}\n" + json.dumps(result["summary"])


@pytest.mark.skipif(
    not (SHARED / "qa_dev.jsonl").exists(), reason="RealTime QA data not beside the checkout"
)
def test_realtimeqa_dev_meets_its_thresholds(settings):
    # Minutes: the 1,086-article corpus is ingested into a fresh store, then 98 questions.
    result = run_eval(
        settings, gold=SHARED / "qa_dev.jsonl", corpus=SHARED / "corpus.jsonl", progress=False
    )
    folder = write_report(result, ROOT / "test-artifacts" / "eval-realtimeqa")
    failures = check_thresholds(result, ROOT / "evals" / "thresholds-realtimeqa.toml")
    assert not failures, f"{failures}; report in {folder}\n" + json.dumps(result["summary"])
