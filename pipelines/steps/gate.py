"""Decide whether the candidate may replace the base model.

Accept only when no regression benchmark drops by more than --tolerance, no judge criterion drops
by more than --judge-tolerance, and the business metric gains at least --min-business-gain (all
absolute differences). The decision JSON is written before the step exits, non-zero on reject.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.steps._common import add_output_dir, dumps, json_object, parser_for, write_outputs

log = logging.getLogger(__name__)

JUDGE_CRITERIA = ("correctness", "relevance", "fluency")


@dataclass(frozen=True)
class Check:
    name: str
    base: float | None
    candidate: float | None
    # The lowest acceptable candidate - base.
    min_delta: float

    @property
    def passed(self) -> bool:
        return (
            self.base is not None
            and self.candidate is not None
            and self.candidate - self.base >= self.min_delta - 1e-12
        )

    def reason(self) -> str:
        if self.base is None or self.candidate is None:
            side = "base" if self.base is None else "candidate"
            return f"{self.name}: no {side} score"
        delta = self.candidate - self.base
        verdict = "ok" if self.passed else "FAILED"
        change = f"{self.base:.4f} -> {self.candidate:.4f} ({delta:+.4f})"
        return f"{self.name}: {change}, needs {self.min_delta:+.4f} or more: {verdict}"


def _number(scores: Mapping[str, Any], key: str) -> float | None:
    value = scores.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def checks(
    base_benchmarks: Mapping[str, Any],
    candidate_benchmarks: Mapping[str, Any],
    base_business: Mapping[str, Any],
    candidate_business: Mapping[str, Any],
    base_judge: Mapping[str, Any],
    candidate_judge: Mapping[str, Any],
    *,
    tolerance: float,
    judge_tolerance: float,
    business_metric: str,
    min_business_gain: float,
) -> list[Check]:
    result = [
        Check(f"benchmark {key}", _number(base_benchmarks, key), _number(candidate_benchmarks, key), -tolerance)
        for key in sorted(base_benchmarks.keys() | candidate_benchmarks.keys())
    ]
    if base_judge or candidate_judge:
        result += [
            Check(f"judge {name}", _number(base_judge, name), _number(candidate_judge, name), -judge_tolerance)
            for name in JUDGE_CRITERIA
        ]
    result.append(
        Check(
            f"business {business_metric}",
            _number(base_business, business_metric),
            _number(candidate_business, business_metric),
            min_business_gain,
        )
    )
    return result


def decide(all_checks: Sequence[Check]) -> dict[str, Any]:
    failed = [check for check in all_checks if not check.passed]
    return {
        "decision": "reject" if failed else "accept",
        "reasons": [check.reason() for check in failed] or ["every check passed"],
        "checks": [{**asdict(check), "passed": check.passed} for check in all_checks],
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
    parser.add_argument("--business-metric", default="json_field_accuracy")
    parser.add_argument("--min-business-gain", type=float, default=0.05)
    add_output_dir(parser)
    args = parser.parse_args(argv)

    decision = decide(
        checks(
            args.base_benchmarks,
            args.candidate_benchmarks,
            args.base_business,
            args.candidate_business,
            args.base_judge,
            args.candidate_judge,
            tolerance=args.tolerance,
            judge_tolerance=args.judge_tolerance,
            business_metric=args.business_metric,
            min_business_gain=args.min_business_gain,
        )
    )
    write_outputs(args.output_dir, {"decision": decision})
    for check_line in decision["reasons"]:
        log.info("%s", check_line)
    # Last line on purpose: the pod's termination message (FallbackToLogsOnError) carries it
    # into the workflow's failure list.
    print(dumps({"decision": decision["decision"], "reasons": decision["reasons"]}), flush=True)
    return 0 if decision["decision"] == "accept" else 1
