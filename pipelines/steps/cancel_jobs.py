"""Cancel the Customizer and Evaluator jobs a workflow run left running (its exit handler, on failure,
timeout or stop).

Argo stops a workflow by killing its pods; the NeMo jobs they started keep their GPUs until someone
cancels them. The exit handler cannot read task outputs (the tasks may never have finished), so the jobs
are found by what the steps marked them with: the customization job's description names the workflow
run (customize.job_marker) and every evaluation job carries it in its custom fields.
https://docs.nvidia.com/nemo/microservices/25.8.0/fine-tune/manage-customization-jobs/cancel-job.html
https://docs.nvidia.com/nemo/microservices/25.8.0/evaluate/evaluation-jobs/cancel-job.html
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from nemo_microservices.types.shared.job_status import JobStatus

from pipelines.steps._common import (
    TransientError,
    add_output_dir,
    add_service_url,
    parser_for,
    write_outputs,
)
from pipelines.steps._http import cancel_jobs_quietly, nemo_client, nemo_errors
from pipelines.steps.customize import job_marker
from pipelines.steps.evaluate_benchmarks import WORKFLOW_FIELD

log = logging.getLogger(__name__)

ACTIVE: tuple[JobStatus, ...] = ("created", "pending", "running")


def _cancel_each(kind: str, job_ids: Sequence[str], cancel: Callable[[str], object]) -> list[str]:
    if failed := cancel_jobs_quietly(kind, job_ids, cancel):
        raise TransientError(f"could not cancel {kind} jobs {failed}")
    return list(job_ids)


def main(argv: Sequence[str]) -> int:
    parser = parser_for("cancel-jobs", "Cancel the NeMo jobs a workflow run left running.")
    parser.add_argument("--workflow-uid", required=True)
    parser.add_argument("--namespace", required=True, help="NeMo namespace of the evaluation jobs")
    add_service_url(parser, "--customizer-url", "CUSTOMIZER_URL", "NeMo Customizer")
    add_service_url(parser, "--evaluator-url", "EVALUATOR_URL", "NeMo Evaluator")
    add_output_dir(parser)
    args = parser.parse_args(argv)

    marker = job_marker(args.workflow_uid)
    with nemo_client(args.customizer_url) as customizer, nemo_client(args.evaluator_url) as evaluator:
        with nemo_errors("listing customization jobs"):
            customization = [
                str(job.id)
                for status in ACTIVE
                for job in customizer.customization.jobs.list(filter={"status": status})
                if job.description == marker
            ]
        with nemo_errors("listing evaluation jobs"):
            evaluation = [
                str(job.id)
                for job in evaluator.evaluation.jobs.list(
                    filter={"namespace": args.namespace, "custom_fields": {WORKFLOW_FIELD: args.workflow_uid}}
                )
                if job.status in ACTIVE and (job.custom_fields or {}).get(WORKFLOW_FIELD) == args.workflow_uid
            ]
        cancelled = {
            "customization": _cancel_each("customization", customization, customizer.customization.jobs.cancel),
            "evaluation": _cancel_each("evaluation", evaluation, evaluator.evaluation.jobs.cancel),
        }
    log.info("cancelled for workflow %s: %s", args.workflow_uid, cancelled)
    write_outputs(args.output_dir, {"cancelled": cancelled})
    return 0
