"""Run a regression suite of academic benchmarks with NeMo Evaluator against a model served by NIM.

One evaluation job per benchmark, each with an inline target and config (25.x v1 API):
target {"type": "model", "model": {"api_endpoint": {"url", "model_id"}}}
(https://docs.nvidia.com/nemo/microservices/latest/evaluate/evaluation-types/lm-harness.html),
config {"type": <LM Harness task such as gsm8k>, "params": {"limit_samples", ...}}
(https://docs.nvidia.com/nemo/microservices/25.8.0/pysdk/types/common_types/evaluation_params_param.html).
Status is polled on the job itself and results read from /results
(https://docs.nvidia.com/nemo/microservices/25.8.0/evaluate/evaluation-jobs/get-job-status.html,
https://docs.nvidia.com/nemo/microservices/25.7.0/evaluate/evaluation-jobs/get-results.html).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.steps._common import StepError, add_output_dir, add_service_url, parser_for, write_outputs
from pipelines.steps._http import Backoff, ServiceClient, poll

log = logging.getLogger(__name__)

JOBS = "/v1/evaluation/jobs"
FAILED = frozenset({"failed", "cancelled"})
ENDPOINT_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


@dataclass(frozen=True)
class Target:
    """The model under evaluation, as the Evaluator reaches it through NIM."""

    nim_url: str
    model: str
    endpoint: str = "completions"

    def payload(self) -> dict[str, Any]:
        url = self.nim_url.rstrip("/") + ENDPOINT_PATHS[self.endpoint]
        return {"type": "model", "model": {"api_endpoint": {"url": url, "model_id": self.model}}}


def job_request(benchmark: str, target: Target, *, namespace: str, limit_samples: int) -> dict[str, Any]:
    # Near-zero rather than zero: the Evaluator rejects temperature 0.0.
    params: dict[str, Any] = {"temperature": 0.00001, "top_p": 0.00001}
    if limit_samples > 0:
        params["limit_samples"] = limit_samples
    return {"namespace": namespace, "target": target.payload(), "config": {"type": benchmark, "params": params}}


def flatten_results(benchmark: str, results: dict[str, Any]) -> dict[str, float]:
    """{tasks|groups: {name: {metrics: {metric: {scores: {score: {value}}}}}}} -> "bench.name.metric.score".

    Standard errors are dropped: they describe the estimate, they are not scores to gate on.
    """
    flat: dict[str, float] = {}
    for section in ("tasks", "groups"):
        for name, entry in (results.get(section) or {}).items():
            for metric, metric_data in (entry.get("metrics") or {}).items():
                for score, score_data in (metric_data.get("scores") or {}).items():
                    key = f"{benchmark}.{name}.{metric}.{score}"
                    if "stderr" in key or not isinstance(score_data.get("value"), int | float):
                        continue
                    flat[key] = float(score_data["value"])
    if not flat:
        raise StepError(f"evaluation results for {benchmark} hold no scores: {results}")
    return flat


def run_suite(
    evaluator: ServiceClient,
    benchmarks: Sequence[str],
    target: Target,
    *,
    namespace: str,
    limit_samples: int,
    backoff: Backoff,
) -> dict[str, float]:
    jobs = {}
    for benchmark in benchmarks:
        request = job_request(benchmark, target, namespace=namespace, limit_samples=limit_samples)
        job = evaluator.json("POST", JOBS, json=request)
        log.info("benchmark %s: evaluation job %s", benchmark, job["id"])
        jobs[benchmark] = job["id"]

    pending = dict(jobs)

    def fetch() -> dict[str, dict[str, Any]]:
        return {benchmark: evaluator.json("GET", f"{JOBS}/{job_id}") for benchmark, job_id in pending.items()}

    def all_done(states: dict[str, dict[str, Any]]) -> bool:
        for benchmark, job in states.items():
            status = job.get("status")
            progress = (job.get("status_details") or {}).get("progress")
            log.info("benchmark %s (%s): %s, progress %s", benchmark, jobs[benchmark], status, progress)
            if status in FAILED:
                details = job.get("status_details") or {}
                raise StepError(f"evaluation job {jobs[benchmark]} ({benchmark}) {status}: {details}")
            if status == "completed":
                del pending[benchmark]
        return not pending

    poll(fetch, all_done, backoff, f"evaluation jobs {sorted(jobs.values())}")
    scores: dict[str, float] = {}
    for benchmark, job_id in jobs.items():
        scores.update(flatten_results(benchmark, evaluator.json("GET", f"{JOBS}/{job_id}/results")))
    return scores


def main(argv: Sequence[str]) -> int:
    parser = parser_for("evaluate-benchmarks", "Run regression benchmarks with NeMo Evaluator.")
    parser.add_argument("--model", required=True, help="model id as NIM serves it (base model or adapter)")
    parser.add_argument(
        "--benchmarks",
        required=True,
        help="comma-separated Evaluator config types (LM Harness tasks), e.g. gsm8k,triviaqa,boolq",
    )
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--endpoint", choices=sorted(ENDPOINT_PATHS), default="completions")
    parser.add_argument("--limit-samples", type=int, default=0, help="0 evaluates every sample")
    parser.add_argument("--timeout-seconds", type=float, default=18000)
    parser.add_argument("--poll-initial-seconds", type=float, default=15)
    parser.add_argument("--poll-max-seconds", type=float, default=120)
    add_service_url(parser, "--evaluator-url", "EVALUATOR_URL", "NeMo Evaluator")
    add_service_url(parser, "--nim-url", "NIM_URL", "NIM (as the Evaluator reaches it)")
    add_output_dir(parser)
    args = parser.parse_args(argv)

    benchmarks = [name.strip() for name in args.benchmarks.split(",") if name.strip()]
    if not benchmarks:
        parser.error("--benchmarks names no benchmark")
    backoff = Backoff(args.timeout_seconds, args.poll_initial_seconds, args.poll_max_seconds)
    with ServiceClient(args.evaluator_url) as evaluator:
        scores = run_suite(
            evaluator,
            benchmarks,
            Target(args.nim_url, args.model, args.endpoint),
            namespace=args.namespace,
            limit_samples=args.limit_samples,
            backoff=backoff,
        )
    log.info("scores: %s", scores)
    write_outputs(args.output_dir, {"scores": scores})
    return 0
