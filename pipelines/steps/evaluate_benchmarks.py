"""Run the regression suite with NeMo Evaluator 25.8 against a model served by NIM.

One evaluation job per benchmark (see _benchmarks: LM Harness types such as gsm8k, and `custom` jobs for
SQuAD, TriviaQA, GLUE and SuperGLUE over the datasets prepare-benchmarks uploaded), each with an inline
target at NIM. Jobs carry custom fields naming the workflow run, model and benchmark; a retried pod finds
the jobs it started instead of starting more, and the exit handler finds them to cancel them. Results
keep each score's sample count and standard error, which the gate needs for its confidence intervals.
https://docs.nvidia.com/nemo/microservices/25.8.0/evaluate/evaluation-jobs/create-job.html
https://docs.nvidia.com/nemo/microservices/25.8.0/evaluate/evaluation-jobs/get-results.html
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import nemo_microservices as nemo
from nemo_microservices.types.evaluation import EvaluationJob
from nemo_microservices.types.evaluation_result import EvaluationResult

from pipelines.steps._benchmarks import (
    CUSTOM_SUITES,
    ENDPOINT_PATHS,
    UnknownBenchmark,
    custom_config,
    lm_harness_config,
    parse_benchmarks,
    target,
)
from pipelines.steps._common import StepError, add_output_dir, add_service_url, json_object, parser_for, write_outputs
from pipelines.steps._http import JOB_FAILED, Backoff, nemo_client, nemo_errors, poll_jobs, resume_or_create

log = logging.getLogger(__name__)

WORKFLOW_FIELD = "llmops_workflow_uid"


def job_fields(workflow_uid: str, model: str, benchmark: str) -> dict[str, str]:
    return {WORKFLOW_FIELD: workflow_uid, "llmops_model": model, "llmops_benchmark": benchmark}


def job_config(
    benchmark: str, datasets: Mapping[str, Mapping[str, str]], *, endpoint: str, limit_samples: int
) -> dict[str, Any]:
    if benchmark in CUSTOM_SUITES:
        if benchmark not in datasets:
            raise UnknownBenchmark(f"{benchmark} is a custom suite but prepare-benchmarks prepared no data for it")
        return custom_config(benchmark, datasets[benchmark], endpoint=endpoint)
    return lm_harness_config(benchmark, endpoint=endpoint, limit_samples=limit_samples)


def find_job(evaluator: nemo.NeMoMicroservices, namespace: str, fields: Mapping[str, str]) -> EvaluationJob | None:
    with nemo_errors("listing evaluation jobs"):
        page = evaluator.evaluation.jobs.list(filter={"namespace": namespace, "custom_fields": dict(fields)})
    matching = [job for job in page.data if (job.custom_fields or {}).items() >= fields.items()]
    return matching[0] if matching else None


def start_job(
    evaluator: nemo.NeMoMicroservices,
    *,
    namespace: str,
    fields: Mapping[str, str],
    config: Any,
    target_: Any,
) -> EvaluationJob:
    """The evaluation job marked with `fields`: the one a previous attempt started, or a new one."""
    job, resumed = resume_or_create(
        lambda: find_job(evaluator, namespace, fields),
        lambda: evaluator.with_options(max_retries=0).evaluation.jobs.create(
            namespace=namespace, config=config, target=target_, custom_fields=dict(fields)
        ),
        what="creating an evaluation job",
    )
    if resumed:
        log.info("resuming evaluation job %s (%s), started by an earlier attempt", job.id, dict(fields))
    return job


def wait_for_jobs(evaluator: nemo.NeMoMicroservices, jobs: Mapping[str, str], backoff: Backoff, what: str) -> None:
    """Wait until every job of `jobs` (the benchmark each is marked with -> job id) has completed, logging their
    progress; `what` names them in a PollTimeout. A failed or cancelled job raises StepError naming it; on
    PollTimeout the jobs not yet completed are cancelled (quietly: the timeout is the error) and it is re-raised."""
    pending = dict(jobs)

    def fetch() -> dict[str, EvaluationJob]:
        with nemo_errors("evaluation job status"):
            return {benchmark: evaluator.evaluation.jobs.retrieve(job_id) for benchmark, job_id in pending.items()}

    def all_done(states: dict[str, EvaluationJob]) -> bool:
        for benchmark, job in states.items():
            details = job.status_details
            log.info("benchmark %s (%s): %s, progress %s", benchmark, jobs[benchmark], job.status,
                     details.progress if details else None)  # fmt: skip
            if job.status in JOB_FAILED:
                message = details.message if details else ""
                raise StepError(f"evaluation job {jobs[benchmark]} ({benchmark}) {job.status}: {message}")
            if job.status == "completed":
                del pending[benchmark]
        return not pending

    poll_jobs(
        fetch,
        all_done,
        backoff,
        what,
        kind="evaluation",
        job_ids=pending.values(),
        cancel=evaluator.evaluation.jobs.cancel,
    )


def job_result(evaluator: nemo.NeMoMicroservices, job_id: str) -> EvaluationResult:
    """The results of a completed evaluation job."""
    with nemo_errors(f"results of evaluation job {job_id}"):
        return evaluator.evaluation.jobs.results(job_id)


def flatten_results(benchmark: str, result: EvaluationResult, *, default_count: int | None) -> dict[str, Any]:
    """{tasks|groups: {name: {metrics: {metric: {scores: {score: {value, stats}}}}}}} ->
    "bench.name.metric.score": {value, count, stderr}. A score named like another plus "stderr" is that
    score's standard error, not a score of its own."""
    flat: dict[str, dict[str, Any]] = {}
    stderrs: dict[str, float] = {}
    sections: list[tuple[str, Any]] = [*(result.tasks or {}).items(), *(result.groups or {}).items()]
    for name, entry in sections:
        for metric, metric_result in (entry.metrics or {}).items():
            for score_name, score in (metric_result.scores or {}).items():
                key = f"{benchmark}.{name}.{metric}.{score_name}"
                if "stderr" in score_name:
                    stderrs[key.replace("_stderr", "").replace("stderr", "")] = score.value
                    continue
                stats = score.stats
                flat[key] = {
                    "value": score.value,
                    "count": stats.count if stats and stats.count is not None else default_count,
                    "stderr": stats.stderr if stats else None,
                }
    for key, stderr in stderrs.items():
        if key in flat and flat[key]["stderr"] is None:
            flat[key]["stderr"] = stderr
    if not flat:
        raise StepError(f"evaluation results for {benchmark} hold no scores: {result}")
    return {key: {k: v for k, v in entry.items() if v is not None} for key, entry in flat.items()}


def run_suite(
    evaluator: nemo.NeMoMicroservices,
    benchmarks: Sequence[str],
    *,
    model: str,
    nim_url: str,
    endpoint: str,
    datasets: Mapping[str, Mapping[str, str]],
    namespace: str,
    workflow_uid: str,
    limit_samples: int,
    backoff: Backoff,
) -> tuple[dict[str, Any], dict[str, str]]:
    jobs: dict[str, str] = {}
    for benchmark in benchmarks:
        try:
            config = job_config(benchmark, datasets, endpoint=endpoint, limit_samples=limit_samples)
        except UnknownBenchmark as exc:
            raise StepError(str(exc)) from exc
        job = start_job(
            evaluator,
            namespace=namespace,
            fields=job_fields(workflow_uid, model, benchmark),
            config=config,
            target_=target(nim_url, model, endpoint),
        )
        log.info("benchmark %s: evaluation job %s", benchmark, job.id)
        jobs[benchmark] = str(job.id)

    wait_for_jobs(evaluator, jobs, backoff, f"evaluation jobs {sorted(jobs.values())}")
    scores: dict[str, Any] = {}
    for benchmark, job_id in jobs.items():
        default_count = limit_samples if limit_samples > 0 and benchmark not in CUSTOM_SUITES else None
        scores.update(flatten_results(benchmark, job_result(evaluator, job_id), default_count=default_count))
    return scores, jobs


def main(argv: Sequence[str]) -> int:
    parser = parser_for("evaluate-benchmarks", "Run regression benchmarks with NeMo Evaluator.")
    parser.add_argument("--model", required=True, help="model id as NIM serves it (base model or adapter)")
    parser.add_argument("--benchmarks", required=True, help="comma-separated LM Harness types and custom suites")
    parser.add_argument(
        "--benchmark-datasets", type=json_object, default={}, help="prepare-benchmarks' datasets output"
    )
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--workflow-uid", required=True, help="marks the jobs, so a retry or cleanup finds them")
    parser.add_argument("--endpoint", choices=sorted(ENDPOINT_PATHS), default="completions")
    parser.add_argument("--limit-samples", type=int, default=0, help="LM Harness samples per benchmark (0: all)")
    parser.add_argument("--timeout-seconds", type=float, default=18000)
    parser.add_argument("--poll-initial-seconds", type=float, default=15)
    parser.add_argument("--poll-max-seconds", type=float, default=120)
    add_service_url(parser, "--evaluator-url", "EVALUATOR_URL", "NeMo Evaluator")
    add_service_url(parser, "--nim-url", "NIM_URL", "NIM (as the Evaluator reaches it)")
    add_output_dir(parser)
    args = parser.parse_args(argv)
    try:
        benchmarks = parse_benchmarks(args.benchmarks)
    except UnknownBenchmark as exc:
        raise StepError(str(exc)) from exc

    backoff = Backoff(args.timeout_seconds, args.poll_initial_seconds, args.poll_max_seconds)
    with nemo_client(args.evaluator_url) as evaluator:
        scores, jobs = run_suite(
            evaluator,
            benchmarks,
            model=args.model,
            nim_url=args.nim_url,
            endpoint=args.endpoint,
            datasets=args.benchmark_datasets,
            namespace=args.namespace,
            workflow_uid=args.workflow_uid,
            limit_samples=args.limit_samples,
            backoff=backoff,
        )
    log.info("scores: %s", scores)
    write_outputs(args.output_dir, {"scores": scores, "job-ids": jobs})
    return 0
