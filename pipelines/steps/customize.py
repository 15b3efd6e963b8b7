"""Run a NeMo Customizer LoRA SFT job and wait for it, logging progress.

Request and status fields follow the 25.x API:
https://docs.nvidia.com/nemo/microservices/25.8.0/fine-tune/manage-customization-jobs/create-job.html
https://docs.nvidia.com/nemo/microservices/latest/fine-tune/manage-customization-jobs/get-job-status.html
https://docs.nvidia.com/nemo/microservices/latest/fine-tune/manage-customization-jobs/cancel-job.html
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.steps._common import StepError, add_output_dir, add_service_url, parser_for, write_outputs
from pipelines.steps._http import Backoff, PollTimeout, ServiceClient, poll

log = logging.getLogger(__name__)

JOBS = "/v1/customization/jobs"
FAILED = frozenset({"failed", "cancelled"})


@dataclass(frozen=True)
class Hyperparameters:
    epochs: int
    batch_size: int
    learning_rate: float
    adapter_dim: int

    def payload(self) -> dict[str, Any]:
        return {
            "training_type": "sft",
            "finetuning_type": "lora",
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "lora": {"adapter_dim": self.adapter_dim},
        }


def create_job(
    customizer: ServiceClient,
    *,
    config: str,
    dataset: str,
    namespace: str,
    output_model: str,
    hyperparameters: Hyperparameters,
) -> dict[str, Any]:
    body = {
        "config": config,
        "dataset": {"name": dataset, "namespace": namespace},
        "hyperparameters": hyperparameters.payload(),
        "output_model": f"{namespace}/{output_model}",
    }
    job: dict[str, Any] = customizer.json("POST", JOBS, json=body)
    if "id" not in job:
        raise StepError(f"customization job response has no id: {job}")
    log.info("created customization job %s for %s", job["id"], body["output_model"])
    return job


def failure_detail(status: dict[str, Any]) -> str:
    """The most specific reason the job reported: the last status log with a detail or message."""
    for entry in reversed(status.get("status_logs") or []):
        if entry.get("detail") or entry.get("message"):
            return str(entry.get("detail") or entry.get("message"))
    return "no detail reported"


def job_finished(job_id: str, status: dict[str, Any]) -> bool:
    state = status.get("status")
    log.info(
        "job %s: %s, %.1f%% done, %s epochs and %s steps completed",
        job_id,
        state,
        float(status.get("percentage_done") or 0.0),
        status.get("epochs_completed", 0),
        status.get("steps_completed", 0),
    )
    if state in FAILED:
        raise StepError(f"customization job {job_id} {state}: {failure_detail(status)}")
    return state == "completed"


def wait_for_job(customizer: ServiceClient, job_id: str, backoff: Backoff) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        status: dict[str, Any] = customizer.json("GET", f"{JOBS}/{job_id}/status")
        return status

    try:
        return poll(fetch, lambda status: job_finished(job_id, status), backoff, f"customization job {job_id}")
    except PollTimeout:
        # A job left running would keep holding the GPUs the semaphore is about to release.
        log.warning("cancelling customization job %s", job_id)
        try:
            customizer.request("POST", f"{JOBS}/{job_id}/cancel")
        except StepError as exc:
            log.error("could not cancel customization job %s: %s", job_id, exc)
        raise


def training_metrics(status: dict[str, Any]) -> dict[str, float]:
    """Last value of each loss curve the job reports (metrics.metrics.<name> = [{value, step}])."""
    curves = (status.get("metrics") or {}).get("metrics") or {}
    return {name: float(points[-1]["value"]) for name, points in curves.items() if points}


def main(argv: Sequence[str]) -> int:
    parser = parser_for("customize", "Fine-tune a LoRA adapter with NeMo Customizer.")
    parser.add_argument("--config", required=True, help="customization target, e.g. meta/llama-3.1-8b-instruct@2.0")
    parser.add_argument("--dataset", required=True, help="dataset name in the Entity Store")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--output-model", required=True, help="adapter name; the namespace is prepended")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--adapter-dim", type=int, default=16)
    parser.add_argument("--timeout-seconds", type=float, default=36000)
    parser.add_argument("--poll-initial-seconds", type=float, default=15)
    parser.add_argument("--poll-max-seconds", type=float, default=300)
    add_service_url(parser, "--customizer-url", "CUSTOMIZER_URL", "NeMo Customizer")
    add_output_dir(parser)
    args = parser.parse_args(argv)

    hyperparameters = Hyperparameters(args.epochs, args.batch_size, args.learning_rate, args.adapter_dim)
    backoff = Backoff(args.timeout_seconds, args.poll_initial_seconds, args.poll_max_seconds)
    with ServiceClient(args.customizer_url) as customizer:
        job = create_job(
            customizer,
            config=args.config,
            dataset=args.dataset,
            namespace=args.namespace,
            output_model=args.output_model,
            hyperparameters=hyperparameters,
        )
        # Written before waiting so a failed run still says which job to look at.
        write_outputs(args.output_dir, {"job-id": job["id"]})
        status = wait_for_job(customizer, job["id"], backoff)
    write_outputs(
        args.output_dir,
        {
            "output-model": job.get("output_model") or f"{args.namespace}/{args.output_model}",
            "training-metrics": training_metrics(status),
        },
    )
    return 0
