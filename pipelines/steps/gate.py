"""Decide whether the candidate may replace the base model, and say why in one line.

Every check compares one score of base and candidate and states the difference with its confidence
interval (default 95%):
  business metric    paired bootstrap over the test examples (both models answered the same questions);
                     the gain must reach --min-business-gain and, when that is positive, its interval must
                     lie above zero: a gain the test set cannot tell from noise is no gain
  judge criteria     paired bootstrap over the judged examples; may drop at most --judge-tolerance
  benchmarks         from each side's score, sample count and standard error (normal interval), or, for a
                     proportion without a standard error, Newcombe's interval from two Wilson intervals;
                     may drop at most --tolerance
A check on fewer examples than --min-examples (business, judge) or --min-benchmark-samples (benchmarks)
does not pass: the gate refuses to accept on evidence that thin. The decision JSON is written before the
step exits, non-zero on reject.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean
from typing import Any

from pipelines.steps._common import add_output_dir, dumps, json_object, parser_for, write_outputs

log = logging.getLogger(__name__)

JUDGE_CRITERIA = ("correctness", "relevance", "fluency")
EPSILON = 1e-12


@dataclass(frozen=True)
class Check:
    name: str
    base: float | None
    candidate: float | None
    # The lowest acceptable candidate - base.
    min_delta: float
    ci: tuple[float, float] | None
    n: int | None
    min_n: int

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.candidate is None else self.candidate - self.base

    def problem(self) -> str | None:
        """Why the check fails, or None when it passes."""
        if self.base is None or self.candidate is None:
            return f"{self.name}: no {'base' if self.base is None else 'candidate'} score"
        if self.n is None:
            return f"{self.name}: no sample count, cannot judge the difference"
        if self.n < self.min_n:
            return f"{self.name}: only {self.n} examples, at least {self.min_n} needed to decide"
        delta = self.candidate - self.base
        if delta < self.min_delta - EPSILON:
            return f"{self.summary()} is below the allowed {self.min_delta:+.3f}"
        if self.min_delta > 0 and (self.ci is None or self.ci[0] <= 0):
            return f"{self.summary()}: the gain is not distinguishable from noise"
        return None

    def summary(self) -> str:
        if self.base is None or self.candidate is None:
            return f"{self.name}: incomplete"
        interval = f", CI [{self.ci[0]:+.3f}, {self.ci[1]:+.3f}]" if self.ci else ""
        change = f"{self.base:.3f} -> {self.candidate:.3f} ({self.candidate - self.base:+.3f}{interval}, n={self.n})"
        return f"{self.name} {change}"

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "candidate": self.candidate,
            "delta": self.delta,
            "ci_low": self.ci[0] if self.ci else None,
            "ci_high": self.ci[1] if self.ci else None,
            "n": self.n,
            "min_delta": self.min_delta,
            "passed": self.problem() is None,
        }


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def paired_bootstrap(
    base: Sequence[float], candidate: Sequence[float], *, confidence: float, resamples: int, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of mean(candidate - base), resampling examples (pairs) with replacement."""
    differences = [c - b for b, c in zip(base, candidate, strict=True)]
    rng = random.Random(seed)
    n = len(differences)
    means = sorted(fmean(rng.choices(differences, k=n)) for _ in range(resamples))
    tail = (1 - confidence) / 2
    return means[int(tail * (resamples - 1))], means[math.ceil((1 - tail) * (resamples - 1))]


def wilson(p: float, n: int, z: float) -> tuple[float, float]:
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return center - half, center + half


def newcombe(p_base: float, n_base: int, p_candidate: float, n_candidate: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_candidate - p_base (independent samples)."""
    low_b, high_b = wilson(p_base, n_base, z)
    low_c, high_c = wilson(p_candidate, n_candidate, z)
    delta = p_candidate - p_base
    return (
        delta - math.sqrt((p_candidate - low_c) ** 2 + (high_b - p_base) ** 2),
        delta + math.sqrt((high_c - p_candidate) ** 2 + (p_base - low_b) ** 2),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _score(entry: Any) -> tuple[float | None, int | None, float | None]:
    """(value, count, stderr) of a benchmark score: {"value", "count", "stderr"} or a bare number."""
    if isinstance(entry, Mapping):
        count = _number(entry.get("count"))
        return _number(entry.get("value")), None if count is None else int(count), _number(entry.get("stderr"))
    return _number(entry), None, None


def benchmark_check(key: str, base: Any, candidate: Any, *, tolerance: float, z: float, min_n: int) -> Check:
    (b, n_b, se_b), (c, n_c, se_c) = _score(base), _score(candidate)
    ci = None
    if b is not None and c is not None:
        if se_b is not None and se_c is not None:
            half = z * math.hypot(se_b, se_c)
            ci = (c - b - half, c - b + half)
        elif n_b and n_c and 0 <= b <= 1 and 0 <= c <= 1:
            ci = newcombe(b, n_b, c, n_c, z)
    n = min(n_b, n_c) if n_b is not None and n_c is not None else None
    return Check(f"benchmark {key}", b, c, -tolerance, ci, n, min_n)


def paired_check(
    name: str,
    base: Mapping[str, Any],
    candidate: Mapping[str, Any],
    metric: str,
    *,
    min_delta: float,
    confidence: float,
    resamples: int,
    min_n: int,
) -> Check:
    """A check over per-example scores of both models on the same examples."""
    b_values = (base.get("per_example") or {}).get(metric) or []
    c_values = (candidate.get("per_example") or {}).get(metric) or []
    pairs = [(b, c) for b, c in zip(b_values, c_values, strict=False) if b is not None and c is not None]
    if len(b_values) != len(c_values):
        pairs = []
    ci = (
        paired_bootstrap([b for b, _ in pairs], [c for _, c in pairs], confidence=confidence, resamples=resamples)
        if len(pairs) > 1
        else None
    )
    return Check(
        name, _number(base.get(metric)), _number(candidate.get(metric)), min_delta, ci, len(pairs) or None, min_n
    )


@dataclass(frozen=True)
class Thresholds:
    tolerance: float
    judge_tolerance: float
    business_metric: str
    min_business_gain: float
    min_examples: int
    min_benchmark_samples: int
    confidence: float
    resamples: int


def checks(
    base_benchmarks: Mapping[str, Any],
    candidate_benchmarks: Mapping[str, Any],
    base_business: Mapping[str, Any],
    candidate_business: Mapping[str, Any],
    base_judge: Mapping[str, Any],
    candidate_judge: Mapping[str, Any],
    thresholds: Thresholds,
) -> list[Check]:
    t = thresholds
    z = z_value(t.confidence)
    paired = {"confidence": t.confidence, "resamples": t.resamples, "min_n": t.min_examples}
    result = [
        paired_check(
            f"business {t.business_metric}",
            base_business,
            candidate_business,
            t.business_metric,
            min_delta=t.min_business_gain,
            **paired,  # type: ignore[arg-type]
        )
    ]
    if base_judge or candidate_judge:
        result += [
            paired_check(f"judge {name}", base_judge, candidate_judge, name, min_delta=-t.judge_tolerance, **paired)  # type: ignore[arg-type]
            for name in JUDGE_CRITERIA
        ]
    result += [
        benchmark_check(
            key,
            base_benchmarks.get(key),
            candidate_benchmarks.get(key),
            tolerance=t.tolerance,
            z=z,
            min_n=t.min_benchmark_samples,
        )
        for key in sorted(base_benchmarks.keys() | candidate_benchmarks.keys())
    ]
    return result


def decide(all_checks: Sequence[Check], confidence: float) -> dict[str, Any]:
    problems = [problem for check in all_checks if (problem := check.problem()) is not None]
    level = f"{confidence:.0%} CI"
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        reason = f"reject ({level}): {shown}"
    else:
        reason = (
            f"accept ({level}): {all_checks[0].summary()}; no judge or benchmark score fell beyond its "
            f"tolerance ({len(all_checks) - 1} checks)"
        )
    return {
        "decision": "reject" if problems else "accept",
        "reason": reason,
        "confidence": confidence,
        "checks": [check.record() for check in all_checks],
    }


def main(argv: Sequence[str]) -> int:
    parser = parser_for("gate", "Accept or reject the candidate against the base model.")
    parser.add_argument("--base-benchmarks", type=json_object, required=True)
    parser.add_argument("--candidate-benchmarks", type=json_object, required=True)
    parser.add_argument("--base-business", type=json_object, required=True)
    parser.add_argument("--candidate-business", type=json_object, required=True)
    parser.add_argument("--base-judge", type=json_object, default={})
    parser.add_argument("--candidate-judge", type=json_object, default={})
    parser.add_argument("--tolerance", type=float, default=0.02, help="largest allowed benchmark drop")
    parser.add_argument("--judge-tolerance", type=float, default=0.25, help="largest allowed judge-score drop")
    parser.add_argument("--business-metric", default="f1")
    parser.add_argument("--min-business-gain", type=float, default=0.05)
    parser.add_argument("--min-examples", type=int, default=30, help="fewest test examples to decide on")
    parser.add_argument("--min-benchmark-samples", type=int, default=100, help="fewest samples per benchmark")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--bootstrap-resamples", type=int, default=2000)
    add_output_dir(parser)
    args = parser.parse_args(argv)
    if not 0.5 <= args.confidence < 1:
        parser.error("--confidence must be in [0.5, 1)")

    thresholds = Thresholds(
        tolerance=args.tolerance,
        judge_tolerance=args.judge_tolerance,
        business_metric=args.business_metric,
        min_business_gain=args.min_business_gain,
        min_examples=args.min_examples,
        min_benchmark_samples=args.min_benchmark_samples,
        confidence=args.confidence,
        resamples=args.bootstrap_resamples,
    )
    all_checks = checks(
        args.base_benchmarks,
        args.candidate_benchmarks,
        args.base_business,
        args.candidate_business,
        args.base_judge,
        args.candidate_judge,
        thresholds,
    )
    decision = decide(all_checks, args.confidence)
    write_outputs(args.output_dir, {"decision": decision, "reason": decision["reason"]})
    for check in all_checks:
        log.info("%s: %s", check.summary(), check.problem() or "ok")
    # Last line on purpose: the pod's termination message (FallbackToLogsOnError) carries it
    # into the workflow's failure list.
    print(dumps({"decision": decision["decision"], "reason": decision["reason"]}), flush=True)
    return 0 if decision["decision"] == "accept" else 1
