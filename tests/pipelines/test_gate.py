"""gate: accept and reject decisions, and the decision file written before a failing exit."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.steps.gate import main

BASE_BENCHMARKS = {"gsm8k.gsm8k.exact_match.strict-match": 0.70, "boolq.boolq.acc.acc": 0.85}
BASE_BUSINESS = {"examples": 100, "exact_match": 0.2, "json_field_accuracy": 0.60}
BASE_JUDGE = {"correctness": 3.5, "relevance": 4.0, "fluency": 4.5, "judged": 100, "parse_failures": 0}


def _gate(
    tmp_path: Path, candidate_benchmarks: dict, candidate_business: dict, candidate_judge: dict
) -> tuple[int, dict]:
    argv = [
        "--base-benchmarks", json.dumps(BASE_BENCHMARKS),
        "--candidate-benchmarks", json.dumps(candidate_benchmarks),
        "--base-business", json.dumps(BASE_BUSINESS),
        "--candidate-business", json.dumps(candidate_business),
        "--base-judge", json.dumps(BASE_JUDGE),
        "--candidate-judge", json.dumps(candidate_judge),
        "--tolerance", "0.02", "--judge-tolerance", "0.25",
        "--business-metric", "json_field_accuracy", "--min-business-gain", "0.05",
        "--output-dir", str(tmp_path),
    ]  # fmt: skip
    code = main(argv)
    return code, json.loads((tmp_path / "decision").read_text())


def test_accepts_a_candidate_that_gains_without_regressing(tmp_path: Path) -> None:
    code, decision = _gate(
        tmp_path,
        {"gsm8k.gsm8k.exact_match.strict-match": 0.69, "boolq.boolq.acc.acc": 0.86},
        {**BASE_BUSINESS, "json_field_accuracy": 0.65},
        {**BASE_JUDGE, "correctness": 3.3},
    )
    assert code == 0
    assert decision["decision"] == "accept"
    assert decision["reasons"] == ["every check passed"]
    assert all(check["passed"] for check in decision["checks"])
    assert len(decision["checks"]) == 2 + 3 + 1


def test_rejects_a_benchmark_regression_and_writes_the_decision_first(tmp_path: Path) -> None:
    code, decision = _gate(
        tmp_path,
        {"gsm8k.gsm8k.exact_match.strict-match": 0.60, "boolq.boolq.acc.acc": 0.86},
        {**BASE_BUSINESS, "json_field_accuracy": 0.90},
        BASE_JUDGE,
    )
    assert code == 1
    assert decision["decision"] == "reject"
    [reason] = decision["reasons"]
    assert reason.startswith("benchmark gsm8k.gsm8k.exact_match.strict-match: 0.7000 -> 0.6000 (-0.1000)")


def test_rejects_too_small_a_business_gain_and_judge_drops(tmp_path: Path) -> None:
    code, decision = _gate(
        tmp_path,
        BASE_BENCHMARKS,
        {**BASE_BUSINESS, "json_field_accuracy": 0.62},
        {**BASE_JUDGE, "fluency": 3.0},
    )
    assert code == 1
    failed = {check["name"] for check in decision["checks"] if not check["passed"]}
    assert failed == {"business json_field_accuracy", "judge fluency"}


def test_a_benchmark_missing_from_the_candidate_rejects(tmp_path: Path) -> None:
    code, decision = _gate(
        tmp_path,
        {"gsm8k.gsm8k.exact_match.strict-match": 0.75},
        {**BASE_BUSINESS, "json_field_accuracy": 0.9},
        BASE_JUDGE,
    )
    assert code == 1
    assert decision["reasons"] == ["benchmark boolq.boolq.acc.acc: no candidate score"]
