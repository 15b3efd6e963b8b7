"""gate: decisions with confidence intervals, refusals on thin evidence, the one-line reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipelines.steps.gate import main, newcombe, paired_bootstrap, wilson


def _bench(value: float, count: int = 400, stderr: float | None = None) -> dict:
    entry = {"value": value, "count": count}
    if stderr is not None:
        entry["stderr"] = stderr
    return entry


def _business(correct: int, n: int = 100) -> dict:
    per_example = [1.0] * correct + [0.0] * (n - correct)
    return {"examples": n, "f1": correct / n, "exact_match": correct / n, "per_example": {"f1": per_example}}


def _judge(good: int, n: int = 100) -> dict:
    scores = [5.0] * good + [3.0] * (n - good)
    mean = sum(scores) / n
    return {
        "correctness": mean,
        "relevance": mean,
        "fluency": 4.0,
        "judged": n,
        "per_example": {"correctness": scores, "relevance": scores, "fluency": [4.0] * n},
    }


BASE_BENCHMARKS = {"gsm8k.gsm8k.exact_match.strict-match": _bench(0.55, 200, 0.035)}


def _gate(
    tmp_path: Path, candidate_benchmarks: dict, candidate_business: dict, *extra: str, base_business: dict | None = None
) -> tuple[int, dict]:
    argv = [
        "--base-benchmarks", json.dumps({**BASE_BENCHMARKS, "triviaqa.triviaqa.em.string-check": _bench(0.60)}),
        "--candidate-benchmarks", json.dumps(candidate_benchmarks),
        "--base-business", json.dumps(base_business or _business(74)),
        "--candidate-business", json.dumps(candidate_business),
        "--base-judge", json.dumps(_judge(70)),
        "--candidate-judge", json.dumps(_judge(80)),
        "--tolerance", "0.02", "--judge-tolerance", "0.25",
        "--business-metric", "f1", "--min-business-gain", "0.05",
        "--output-dir", str(tmp_path), *extra,
    ]  # fmt: skip
    code = main(argv)
    assert (tmp_path / "reason").read_text() == json.loads((tmp_path / "decision").read_text())["reason"]
    return code, json.loads((tmp_path / "decision").read_text())


CANDIDATE = {**BASE_BENCHMARKS, "triviaqa.triviaqa.em.string-check": _bench(0.60)}


def test_the_case_is_accepted_with_an_interval_for_every_delta(tmp_path: Path) -> None:
    code, decision = _gate(tmp_path, CANDIDATE, _business(83))
    assert code == 0
    assert decision["decision"] == "accept"
    reason = decision["reason"]
    assert reason.startswith("accept (95% CI): business f1 0.740 -> 0.830 (+0.090, CI [+0.0")
    assert "\n" not in reason
    business = decision["checks"][0]
    assert 0 < business["ci_low"] < 0.09 < business["ci_high"]
    assert all(check["ci_low"] is not None and check["passed"] for check in decision["checks"])
    assert [check["n"] for check in decision["checks"]] == [100, 100, 100, 100, 200, 400]


def test_a_regression_beyond_the_tolerance_is_rejected_in_one_line(tmp_path: Path) -> None:
    candidate = {**CANDIDATE, "triviaqa.triviaqa.em.string-check": _bench(0.50)}
    code, decision = _gate(tmp_path, candidate, _business(90))
    assert code == 1
    assert decision["reason"].startswith(
        "reject (95% CI): benchmark triviaqa.triviaqa.em.string-check 0.600 -> 0.500 (-0.100, CI [-0.16"
    )
    assert decision["reason"].endswith("is below the allowed -0.020")


def test_a_gain_the_test_set_cannot_tell_from_noise_is_no_gain(tmp_path: Path) -> None:
    # +0.10 on 20 examples: above the threshold, but its interval reaches down to zero.
    code, decision = _gate(
        tmp_path, CANDIDATE, _business(16, 20), "--min-examples", "10", base_business=_business(14, 20)
    )
    assert code == 1
    assert decision["reason"].startswith("reject (95% CI): business f1 0.700 -> 0.800 (+0.100, CI [+0.000")
    assert decision["reason"].endswith("the gain is not distinguishable from noise")


def test_too_few_examples_refuses_to_accept(tmp_path: Path) -> None:
    code, decision = _gate(tmp_path, CANDIDATE, _business(83), "--min-examples", "150")
    assert code == 1
    assert "business f1: only 100 examples, at least 150 needed to decide" in decision["reason"]
    code, decision = _gate(tmp_path, CANDIDATE, _business(83), "--min-benchmark-samples", "500")
    assert code == 1
    assert "only 200 examples, at least 500 needed" in decision["reason"]


def test_a_benchmark_missing_from_the_candidate_rejects(tmp_path: Path) -> None:
    code, decision = _gate(tmp_path, BASE_BENCHMARKS, _business(83))
    assert code == 1
    assert decision["reason"] == "reject (95% CI): benchmark triviaqa.triviaqa.em.string-check: no candidate score"


def test_a_score_without_a_sample_count_cannot_decide(tmp_path: Path) -> None:
    candidate = {**CANDIDATE, "gsm8k.gsm8k.exact_match.strict-match": 0.55}
    code, decision = _gate(tmp_path, candidate, _business(83))
    assert code == 1
    assert "gsm8k.gsm8k.exact_match.strict-match: no sample count" in decision["reason"]


def test_wilson_and_newcombe_match_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80.
    low, high = newcombe(48 / 80, 80, 56 / 70, 70, 1.959964)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    low, high = wilson(0.5, 10, 1.959964)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)


def test_paired_bootstrap_is_reproducible_and_covers_the_mean() -> None:
    base = [0.0] * 50 + [1.0] * 50
    candidate = [1.0] * 60 + [0.0] * 40
    first = paired_bootstrap(base, candidate, confidence=0.95, resamples=1000)
    assert first == paired_bootstrap(base, candidate, confidence=0.95, resamples=1000)
    assert first[0] < 0.1 < first[1]
    assert math.isclose(sum(candidate) / 100 - sum(base) / 100, 0.1)


@pytest.mark.parametrize("confidence", ["0.3", "1"])
def test_confidence_must_be_a_sensible_level(tmp_path: Path, confidence: str) -> None:
    with pytest.raises(SystemExit):
        _gate(tmp_path, CANDIDATE, _business(83), "--confidence", confidence)
