"""Run a NeMo Customizer LoRA SFT job and wait for it, logging progress.

A job names a customization config (`<namespace>/<name>`), not a target: the step looks up, or creates,
a config for the target with the training options asked for, as NVIDIA's data-flywheel blueprint does
(src/lib/nemo/customizer.py). The job is marked with the workflow uid and looked up before it is
created, so a retried pod resumes the job it started instead of starting a second one. The mark is the
job's description: the SDK's CustomizationJob (what the API returns) has no `name`, though a create
takes one. All calls go
through the official NeMo microservices SDK (25.8 release: nemo-microservices 1.1.0):
https://docs.nvidia.com/nemo/microservices/25.8.0/fine-tune/manage-customization-jobs/create-job.html
https://docs.nvidia.com/nemo/microservices/25.8.0/fine-tune/manage-customization-configs/create-config.html
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import nemo_microservices as nemo
from nemo_microservices.types.customization import CustomizationJob, CustomizationStatusDetails

from pipelines.steps._common import StepError, add_output_dir, add_service_url, dumps, parser_for, write_outputs
from pipelines.steps._http import (
    JOB_FAILED,
    Backoff,
    Conflict,
    NotFound,
    nemo_client,
    nemo_errors,
    poll_jobs,
    resume_or_create,
)

log = logging.getLogger(__name__)

# Jobs are listed newest first; ours, if it exists, was created by this workflow run, so a few pages suffice.
LOOKUP_PAGES = 10
PAGE_SIZE = 100


def job_name(workflow_uid: str) -> str:
    return f"llmops-{workflow_uid}"


def job_marker(workflow_uid: str) -> str:
    """The description that identifies the workflow run's job in a listing."""
    return f"LoRA SFT for llmops workflow {workflow_uid}"


@dataclass(frozen=True)
class TrainingOptions:
    """How the config trains: GPUs, micro batch size, sequence length, precision (part of the config's name)."""

    target: str
    num_gpus: int
    micro_batch_size: int
    max_seq_length: int
    training_precision: str

    def config_name(self) -> str:
        model = self.target.split("/")[-1].split("@")[0]
        digest = hashlib.sha256(dumps(asdict(self)).encode()).hexdigest()[:8]
        return f"{model}@v1.0.0+llmops-{digest}"


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


def ensure_config(customizer: nemo.NeMoMicroservices, namespace: str, options: TrainingOptions) -> str:
    """The customization config for these options, created once; returns `<namespace>/<name>`."""
    name = options.config_name()
    reference = f"{namespace}/{name}"
    try:
        with nemo_errors(f"customization config {reference}"):
            customizer.customization.configs.retrieve(name, namespace=namespace)
        return reference
    except NotFound:
        pass
    try:
        with nemo_errors(f"creating customization config {reference}"):
            customizer.with_options(max_retries=0).customization.configs.create(
                name=name,
                namespace=namespace,
                target=options.target,
                training_options=[
                    {
                        "training_type": "sft",
                        "finetuning_type": "lora",
                        "num_gpus": options.num_gpus,
                        "micro_batch_size": options.micro_batch_size,
                    }
                ],
                max_seq_length=options.max_seq_length,
                training_precision=options.training_precision,  # type: ignore[arg-type]
                description=f"LoRA SFT of {options.target}, created by the llmops pipelines",
            )
        log.info("created customization config %s for target %s", reference, options.target)
    except Conflict:
        # Another run created it in the meantime: the config is the same, because its name is its options.
        pass
    return reference


def find_job(customizer: nemo.NeMoMicroservices, workflow_uid: str) -> CustomizationJob | None:
    with nemo_errors("listing customization jobs"):
        page = customizer.customization.jobs.list(sort="-created_at", page_size=PAGE_SIZE)
        for _ in range(LOOKUP_PAGES):
            for job in page.data:
                if job.description == job_marker(workflow_uid):
                    return job
            if not page.has_next_page():
                return None
            page = page.get_next_page()
    return None


def start_job(
    customizer: nemo.NeMoMicroservices,
    *,
    workflow_uid: str,
    config: str,
    dataset: str,
    namespace: str,
    output_model: str,
    hyperparameters: Hyperparameters,
) -> CustomizationJob:
    """The workflow run's job: the one a previous attempt started, or a new one."""
    job, resumed = resume_or_create(
        lambda: find_job(customizer, workflow_uid),
        lambda: customizer.with_options(max_retries=0).customization.jobs.create(
            name=job_name(workflow_uid),
            description=job_marker(workflow_uid),
            config=config,
            dataset={"name": dataset, "namespace": namespace},
            hyperparameters=hyperparameters.payload(),  # type: ignore[arg-type]
            output_model=f"{namespace}/{output_model}",
        ),
        what="creating the customization job",
    )
    if resumed:
        log.info("resuming customization job %s, started by an earlier attempt", job.id)
        return job
    if not job.id:
        raise StepError(f"customization job response has no id: {job}")
    log.info("created customization job %s for %s/%s", job.id, namespace, output_model)
    return job


def failure_detail(status: CustomizationStatusDetails) -> str:
    """The most specific reason the job reported: the last status log with a detail or message."""
    for entry in reversed(status.status_logs or []):
        if entry.detail or entry.message:
            return str(entry.detail or entry.message)
    return "no detail reported"


def job_finished(job_id: str, status: CustomizationStatusDetails) -> bool:
    log.info(
        "job %s: %s, %.1f%% done, %s epochs and %s steps completed",
        job_id,
        status.status,
        status.percentage_done or 0.0,
        status.epochs_completed or 0,
        status.steps_completed or 0,
    )
    if status.status in JOB_FAILED:
        raise StepError(f"customization job {job_id} {status.status}: {failure_detail(status)}")
    return status.status == "completed"


def wait_for_job(customizer: nemo.NeMoMicroservices, job_id: str, backoff: Backoff) -> CustomizationStatusDetails:
    def fetch() -> CustomizationStatusDetails:
        with nemo_errors(f"status of customization job {job_id}"):
            return customizer.customization.jobs.status(job_id)

    # On the timeout the job is cancelled: left running, it would keep the GPUs the semaphore is about to release.
    return poll_jobs(
        fetch,
        lambda status: job_finished(job_id, status),
        backoff,
        f"customization job {job_id}",
        kind="customization",
        job_ids=[job_id],
        cancel=customizer.customization.jobs.cancel,
    )


def training_metrics(status: CustomizationStatusDetails) -> dict[str, float]:
    """Last reported value of each loss curve; points without a value are skipped."""
    curves = status.metrics.metrics if status.metrics and status.metrics.metrics else None
    result: dict[str, float] = {}
    for name in ("train_loss", "val_loss"):
        values = [point.value for point in (getattr(curves, name, None) or []) if point.value is not None]
        if values:
            result[name] = float(values[-1])
    return result


def main(argv: Sequence[str]) -> int:
    parser = parser_for("customize", "Fine-tune a LoRA adapter with NeMo Customizer.")
    parser.add_argument("--target", required=True, help="customization target, e.g. meta/llama-3.1-8b-instruct@2.0")
    parser.add_argument("--num-gpus", type=int, default=1)
    parser.add_argument("--micro-batch-size", type=int, default=1)
    parser.add_argument("--max-seq-length", type=int, default=4096)
    parser.add_argument("--training-precision", default="bf16-mixed")
    parser.add_argument("--dataset", required=True, help="dataset name in the Entity Store")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--output-model", required=True, help="adapter name; the namespace is prepended")
    parser.add_argument("--workflow-uid", required=True, help="names the job, so a retry finds it")
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

    options = TrainingOptions(
        args.target, args.num_gpus, args.micro_batch_size, args.max_seq_length, args.training_precision
    )
    hyperparameters = Hyperparameters(args.epochs, args.batch_size, args.learning_rate, args.adapter_dim)
    backoff = Backoff(args.timeout_seconds, args.poll_initial_seconds, args.poll_max_seconds)
    with nemo_client(args.customizer_url) as customizer:
        config = ensure_config(customizer, args.namespace, options)
        job = start_job(
            customizer,
            workflow_uid=args.workflow_uid,
            config=config,
            dataset=args.dataset,
            namespace=args.namespace,
            output_model=args.output_model,
            hyperparameters=hyperparameters,
        )
        job_id = str(job.id)
        # Written before waiting so a failed run still says which job to look at.
        write_outputs(args.output_dir, {"job-id": job_id, "config": config})
        status = wait_for_job(customizer, job_id, backoff)
    write_outputs(
        args.output_dir,
        {
            "output-model": job.output_model or f"{args.namespace}/{args.output_model}",
            "training-metrics": training_metrics(status),
        },
    )
    return 0
