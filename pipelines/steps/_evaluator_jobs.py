"""The business and judge evaluations as NeMo Evaluator 25.8 `custom` jobs, beside the in-step scoring.

The steps score every test example themselves (the gate resamples those per-example values); they also run
the same evaluation as an Evaluator job over the test split in the Data Store, so the results live in the
Evaluator next to the benchmark jobs and reach MLflow with the job id. The jobs carry the custom fields
evaluate_benchmarks uses (workflow uid, model, evaluation), so a retried pod resumes its job instead of
starting another and the cancel-jobs exit handler finds and cancels them.
Configs derived from NVIDIA's data-flywheel blueprint (src/lib/nemo/evaluator.py): a `chat-completion` task
over a chat-schema JSONL, with `f1`/`string-check` metrics, or an `llm-judge` metric whose model is the judge.
https://docs.nvidia.com/nemo/microservices/25.8.0/evaluate/evaluation-custom.html
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nemo_microservices as nemo

from pipelines.steps._benchmarks import GREEDY, target
from pipelines.steps._chat import Example, load_examples
from pipelines.steps._common import StepError, add_output_dir, env
from pipelines.steps._http import Backoff, nemo_client
from pipelines.steps.evaluate_benchmarks import flatten_results, job_fields, job_result, start_job, wait_for_jobs

log = logging.getLogger(__name__)

# The chat-schema test file: the conversation up to the human reference answer, which is the last message.
PROMPT_MESSAGES = "{{ item.messages[:-1] | tojson }}"
QUESTION = "{{ item.messages[-2].content }}"
REFERENCE = "{{ item.messages[-1].content }}"
ANSWER = "{{ sample.output_text }}"
NORMALIZED = "| trim | lower"


def add_evaluator_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the Evaluator job runs; without --evaluator-url and --test-files-url the step scores in-step only."""
    parser.add_argument("--evaluator-url", default=env("EVALUATOR_URL"), help="NeMo Evaluator base URL")
    parser.add_argument(
        "--evaluator-nim-url", default=env("EVALUATOR_NIM_URL"), help="NIM base URL as the Evaluator reaches it"
    )
    parser.add_argument("--test-files-url", default="", help="hf:// URL of the test split file in the Data Store")
    parser.add_argument("--namespace", default="", help="NeMo namespace of the evaluation job")
    parser.add_argument("--workflow-uid", default="", help="marks the job, so a retry or cleanup finds it")
    parser.add_argument("--timeout-seconds", type=float, default=7200)
    parser.add_argument("--poll-initial-seconds", type=float, default=15)
    parser.add_argument("--poll-max-seconds", type=float, default=120)


def parse_with_test_split(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[argparse.Namespace, list[Example]]:
    """Adds the Evaluator and output arguments, parses, and loads the --test-file examples (up to --limit)."""
    add_evaluator_arguments(parser)
    add_output_dir(parser)
    args = parser.parse_args(argv)
    return args, load_examples(args.test_file, args.limit)


@dataclass(frozen=True)
class EvaluatorRun:
    url: str
    nim_url: str
    files_url: str
    namespace: str
    workflow_uid: str
    backoff: Backoff

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvaluatorRun | None:
        if not args.evaluator_url or not args.test_files_url:
            return None
        missing = [name for name in ("namespace", "workflow_uid") if not getattr(args, name)]
        if missing:
            raise StepError(f"an Evaluator job needs --{', --'.join(m.replace('_', '-') for m in missing)}")
        backoff = Backoff(args.timeout_seconds, args.poll_initial_seconds, args.poll_max_seconds)
        nim_url = args.evaluator_nim_url or args.nim_url
        return cls(args.evaluator_url, nim_url, args.test_files_url, args.namespace, args.workflow_uid, backoff)


def chat_task(files_url: str, *, limit: int, max_tokens: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    dataset: dict[str, Any] = {"files_url": files_url}
    if limit > 0:
        dataset["limit"] = limit
    template = {"messages": PROMPT_MESSAGES, "max_tokens": max_tokens, **GREEDY}
    return {"type": "chat-completion", "dataset": dataset, "params": {"template": template}, "metrics": dict(metrics)}


def business_config(files_url: str, *, limit: int, max_tokens: int) -> dict[str, Any]:
    """Token F1 and exact match against the reference: the Evaluator's counterparts of the step's f1 and
    exact_match (its normalization is Jinja's trim/lower, not SQuAD's, so values may differ slightly)."""
    check = [ANSWER.replace(" }}", f" {NORMALIZED} }}}}"), "equals", REFERENCE.replace(" }}", f" {NORMALIZED} }}}}")]
    metrics = {
        "f1": {"type": "f1", "params": {"ground_truth": REFERENCE}},
        "exact_match": {"type": "string-check", "params": {"check": check}},
    }
    return {"type": "custom", "tasks": {"business": chat_task(files_url, limit=limit, max_tokens=max_tokens,
                                                             metrics=metrics)}}  # fmt: skip


def judge_config(
    files_url: str,
    *,
    limit: int,
    max_tokens: int,
    judge_url: str,
    judge_model: str,
    system_prompt: str,
    criteria: Sequence[str],
) -> dict[str, Any]:
    """An `llm-judge` metric: the judge model rates each answer 1-5 per criterion, parsed from its JSON reply."""
    prompt = f"QUESTION:\n{QUESTION}\n\nREFERENCE ANSWER:\n{REFERENCE}\n\nCANDIDATE ANSWER:\n{ANSWER}"
    judge = target(judge_url, judge_model, "chat")["model"]
    scores = {
        name: {"type": "int", "parser": {"type": "regex", "pattern": rf'"?{name}"?\s*:\s*"?([1-5])'}}
        for name in criteria
    }
    metric = {
        "type": "llm-judge",
        "params": {
            "model": judge,
            "template": {
                "messages": [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}]
            },
            "scores": scores,
        },
    }
    task = chat_task(files_url, limit=limit, max_tokens=max_tokens, metrics={"llm-judge": metric})
    return {"type": "custom", "tasks": {"judge": task}}


class EvaluatorJob:
    """One custom job: submitted (or found again) on enter, awaited by `result()`."""

    def __init__(self, run: EvaluatorRun, *, kind: str, model: str, config: Mapping[str, Any]) -> None:
        self.run, self.kind, self.model, self.config = run, kind, model, config
        self.fields = job_fields(run.workflow_uid, model, kind)
        self.client: nemo.NeMoMicroservices | None = None
        self.job_id = ""

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, *, kind: str, config: Callable[[str], Mapping[str, Any]]
    ) -> EvaluatorJob | None:
        """The step's job when its arguments ask for one; `config` builds the job config from the files URL."""
        run = EvaluatorRun.from_args(args)
        if run is None:
            return None
        return cls(run, kind=kind, model=args.model, config=config(run.files_url))

    def submit(self) -> str:
        self.client = nemo_client(self.run.url)
        job = start_job(
            self.client,
            namespace=self.run.namespace,
            fields=self.fields,
            config=dict(self.config),
            target_=target(self.run.nim_url, self.model, "chat"),
        )
        self.job_id = str(job.id)
        log.info("%s evaluation of %s: Evaluator job %s", self.kind, self.model, self.job_id)
        return self.job_id

    def result(self) -> dict[str, float]:
        """Wait for the job; its aggregate scores as {"<kind>.<task>.<metric>.<score>": value}."""
        assert self.client is not None, "submit() first"
        wait_for_jobs(self.client, {self.kind: self.job_id}, self.run.backoff, f"evaluation job {self.job_id}")
        flat = flatten_results(self.kind, job_result(self.client, self.job_id), default_count=None)
        return {key: entry["value"] for key, entry in flat.items()}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def score_beside_evaluator(
    job: EvaluatorJob | None, score: Callable[[], dict[str, Any]], *, submit_first: bool
) -> dict[str, Any]:
    """The step's own scores, plus the Evaluator job's under "evaluator" when there is a job. `submit_first`: the
    Evaluator works while the step scores; otherwise the job goes in after the step's own run has checked what the
    job needs too (the judge answering). The job's client is closed whatever happens."""
    try:
        if job is not None and submit_first:
            job.submit()
        scores = score()
        if job is not None:
            if not submit_first:
                job.submit()
            scores["evaluator"] = job.result()
        return scores
    finally:
        if job is not None:
            job.close()
