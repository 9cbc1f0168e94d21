"""Eval metrics and the runner (a scripted LLM here; the real model runs in the quality gate)."""

import json

import pytest

from rag.evaluate import (
    check_thresholds,
    deltas,
    load_gold,
    load_report,
    markdown_table,
    run_eval,
    write_report,
)
from rag.metrics import (
    citation_scores,
    contains,
    exact_match,
    f1,
    hit_and_rr,
    normalize,
    precision_recall,
)
from tests.conftest import SHARED, write
from tests.fakes import FakeLLM
from tests.news_fixture import write_corpus


def test_squad_normalisation_and_answer_metrics():
    assert normalize("The “Harbour Lights”!") == "harbour lights"
    assert exact_match("the Harbour Lights.", ["“Harbour Lights”"]) == 1.0
    assert exact_match("Harbour Light", ["Harbour Lights"]) == 0.0
    assert f1("the quick brown fox", ["quick fox"]) == pytest.approx(0.8)  # P 2/3, R 1
    assert f1("nothing shared", ["other words"]) == 0.0
    assert contains("It was Ilka Brandt, they said.", ["Brandt"]) == 1.0
    assert contains("Brandtner", ["Brandt"]) == 0.0  # whole words only


def test_retrieval_citation_and_refusal_metrics():
    assert hit_and_rr(["b", "b", "a", "c"], ["a"], k=2) == (1.0, 0.5)  # duplicates collapse
    assert hit_and_rr(["b", "c", "a"], ["a"], k=2) == (0.0, pytest.approx(1 / 3))
    assert hit_and_rr(["b"], ["a"], k=5) == (0.0, 0.0)
    cites = [
        {"doc_id": "a", "text": "x"},
        {"doc_id": "z", "text": "it was Peskov"},
        {"doc_id": "z", "text": "nothing"},
    ]
    p, r = citation_scores(cites, ["a", "b"], ["Peskov"])
    assert p == pytest.approx(2 / 3) and r == pytest.approx(0.5)
    assert precision_recall([True, True, False], [True, False, False]) == (0.5, 1.0)
    assert precision_recall([False], [False]) == (None, None)


@pytest.mark.skipif(not SHARED.exists(), reason="RealTime QA data not beside the checkout")
def test_reads_realtimeqa_questions_as_they_are():
    items = load_gold(SHARED / "qa_dev.jsonl")
    assert len(items) == 98 and all(i.answerable and i.evidence for i in items)


def test_malformed_gold_file_is_a_clear_error(tmp_path):
    f = write(tmp_path / "g.jsonl", '{"question": "ok?", "answers": ["a"]}\n{"answers": []}\n')
    with pytest.raises(ValueError, match="g.jsonl:2"):
        load_gold(f)


def test_runner_report_compare_and_thresholds(tmp_path, settings):
    corpus = write_corpus(tmp_path / "news")
    gold = write(
        tmp_path / "gold.jsonl",
        "\n".join(
            json.dumps(x)
            for x in [
                {
                    "id": "g1",
                    "question": "How much did the Portmere harbour repairs cost?",
                    "answers": ["4 million euros"],
                    "evidence_doc_ids": ["news/harbour"],
                },
                {
                    "id": "g2",
                    "question": "Which union leader said Lindholm trains would run normally?",
                    "answers": ["Tomas Berg"],
                    "evidence_doc_ids": ["news/rail"],
                },
                {
                    "id": "g3",
                    "question": "What is the boiling point of mercury?",
                    "answers": [],
                    "evidence_doc_ids": [],
                },
            ]
        )
        + "\n",
    )

    def reply(messages):
        q = messages[-1].content
        if "harbour" in q:
            return "The repairs cost 4 million euros [1]."
        return "Union leader Tomas Berg [1]." if "union" in q.lower() else "I don't know."

    result = run_eval(settings, gold=gold, corpus=corpus, progress=False, llm=FakeLLM(reply))
    s = result["summary"]
    assert s["items"] == 3 and s["answerable"] == 2
    assert s["retrieval"]["hit_at_k"] == 1.0 and s["answer"]["contains"] == 1.0
    assert s["refusal"] == {"precision": 1.0, "recall": 1.0, "false_refusals": 0}
    assert s["citations"]["precision"] == 1.0
    assert s["latency_s"]["p50"] > 0
    assert result["judge"]["status"] == "not run"  # no judge: reported as not run, not a score
    assert "judge_correctness" not in result["rows"][0]
    # Evals use their own store, never the user's.
    assert not (settings.data_dir / "chroma").exists()

    folder = write_report(result, tmp_path / "reports")
    assert {p.name for p in folder.iterdir()} == {
        "report.json",
        "summary.md",
        "answers.jsonl",
        "chart.png",
    }
    assert len((folder / "answers.jsonl").read_text().splitlines()) == 3
    old = load_report(folder)
    worse = json.loads(json.dumps(old))
    worse["summary"]["answer"]["contains"] = 0.5
    assert deltas(result, worse)["answer.contains"] == 0.5
    assert "+0.500" in markdown_table(result, worse)
    limits = write(
        tmp_path / "t.toml",
        '[min]\n"answer.contains" = 0.9\n"refusal.recall" = 1.1\n[max]\n"latency_s.p50" = 600\n',
    )
    assert check_thresholds(result, limits) == ["refusal.recall = 1.0 < 1.1"]


def test_rows_and_summary_carry_corroboration_and_conflicts_do_not_count_as_contained():
    from rag.evaluate import GoldItem, score_item, summarize

    item = GoldItem("v1", "How much did Velmar approve?", ["$13.1 million"], ["velmar/a"], True)
    cite = {"n": 1, "doc_id": "velmar/a", "start": 0, "end": 10, "text": "a $12.6 million budget"}
    other = {"n": 2, "doc_id": "velmar/b", "start": 0, "end": 10, "text": "$13.1 million"}
    answer = {
        "answer": "$12.6 million [1]\nSources differ: $12.6 million [1], $13.1 million [2]\n\n"
        "Velmar approved a $12.6 million budget. [1]",
        "short_answer": {"text": "$12.6 million", "doc_id": "velmar/a", "start": 2, "end": 15},
        "refused": False,
        "timings": {"total": 1.0},
        "citations": [cite, other],
        "corroboration": {"sources": 1, "citations": [1]},
        "conflicts": [{"text": "$13.1 million", "n": 2, "source": "kessel.example"}],
    }
    row = score_item(item, answer, 5)
    assert row["corroboration"] == {"sources": 1, "citations": [1]}
    assert row["conflicts"] == answer["conflicts"]
    # A value shown as another source's is not the answer given.
    assert row["contains"] == 0.0 and row["em"] == 0.0
    s = summarize([row])["corroboration"]
    assert s["wrong_short_answers"] == 1 and s["gold_in_conflicts_when_wrong"] == 1.0
    assert s["two_plus_sources"] == 0.0
    # Nor is the count of sources: a gold "2" is not in "(2 sources)".
    two = GoldItem("v2", "How many bridges?", ["2"], ["velmar/a"], True)
    counted = answer | {"answer": "four [1][2] (2 sources)\n\nFour bridges cross it. [1]"}
    assert score_item(two, counted, 5)["contains"] == 0.0
