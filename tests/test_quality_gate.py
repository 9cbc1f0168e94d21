"""The quality gate: the eval on the bundled corpus with the bundled model must stay above the
thresholds in evals/thresholds.toml. A change that makes answers worse fails here."""

import json

import pytest

from rag.evaluate import DEFAULT_CORPUS, DEFAULT_GOLD, check_thresholds, run_eval, write_report
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_bundled_gold_set_meets_the_thresholds(settings):
    result = run_eval(settings, gold=DEFAULT_GOLD, corpus=DEFAULT_CORPUS, progress=False)
    folder = write_report(result, ROOT / "test-artifacts" / "eval")
    failures = check_thresholds(result, ROOT / "evals" / "thresholds.toml")
    assert not failures, f"{failures}; report in {folder}\n" + json.dumps(result["summary"])
