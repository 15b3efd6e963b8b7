"""customize: job request, progress logging, failure and timeout against a fake Customizer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps._common import StepError
from pipelines.steps.customize import main

JOB = "cust-123"
OUTPUT_MODEL = f"llmops/care-lora@{JOB}"


def _argv(httpserver, output_dir: Path, timeout: str = "5") -> list[str]:
    return [
        "--config", "meta/llama-3.1-8b-instruct@2.0", "--dataset", "care-abc", "--namespace", "llmops",
        "--output-model", "care-lora", "--epochs", "3", "--batch-size", "8", "--learning-rate", "0.0002",
        "--adapter-dim", "32", "--timeout-seconds", timeout, "--poll-initial-seconds", "0.01",
        "--poll-max-seconds", "0.02", "--customizer-url", httpserver.url_for("/"), "--output-dir", str(output_dir),
    ]  # fmt: skip


def _serve_statuses(httpserver, statuses: list[dict]) -> None:
    httpserver.expect_request("/v1/customization/jobs", method="POST").respond_with_json(
        {"id": JOB, "output_model": OUTPUT_MODEL, "status": "created"}
    )
    remaining = iter(statuses)
    last = statuses[-1]

    def status(request: Request) -> Response:
        return Response(json.dumps(next(remaining, last)), content_type="application/json")

    httpserver.expect_request(f"/v1/customization/jobs/{JOB}/status", method="GET").respond_with_handler(status)


def test_success_logs_progress_and_emits_the_output_model(
    httpserver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _serve_statuses(
        httpserver,
        [
            {"status": "pending"},
            {"status": "running", "percentage_done": 33.3, "epochs_completed": 1, "steps_completed": 10},
            {"status": "running", "percentage_done": 66.7, "epochs_completed": 2, "steps_completed": 20},
            {
                "status": "completed",
                "percentage_done": 100.0,
                "epochs_completed": 3,
                "steps_completed": 30,
                "metrics": {
                    "keys": ["train_loss", "val_loss"],
                    "metrics": {
                        "train_loss": [{"value": 2.0, "step": 10}, {"value": 1.25, "step": 30}],
                        "val_loss": [{"value": 1.5, "step": 30}],
                    },
                },
            },
        ],
    )
    with caplog.at_level(logging.INFO):
        assert main(_argv(httpserver, tmp_path)) == 0

    [(create, _)] = [entry for entry in httpserver.log if entry[0].method == "POST"]
    assert create.get_json() == {
        "config": "meta/llama-3.1-8b-instruct@2.0",
        "dataset": {"name": "care-abc", "namespace": "llmops"},
        "hyperparameters": {
            "training_type": "sft",
            "finetuning_type": "lora",
            "epochs": 3,
            "batch_size": 8,
            "learning_rate": 0.0002,
            "lora": {"adapter_dim": 32},
        },
        "output_model": "llmops/care-lora",
    }
    assert "33.3% done, 1 epochs and 10 steps completed" in caplog.text
    assert "66.7% done, 2 epochs" in caplog.text
    assert (tmp_path / "job-id").read_text() == JOB
    assert (tmp_path / "output-model").read_text() == OUTPUT_MODEL
    assert json.loads((tmp_path / "training-metrics").read_text()) == {"train_loss": 1.25, "val_loss": 1.5}


def test_failed_job_fails_with_the_reported_detail(httpserver, tmp_path: Path) -> None:
    _serve_statuses(
        httpserver,
        [
            {"status": "running", "percentage_done": 10},
            {
                "status": "failed",
                "status_logs": [{"message": "Running"}, {"message": "Failed", "detail": "CUDA out of memory"}],
            },
        ],
    )
    with pytest.raises(StepError, match=f"{JOB} failed: CUDA out of memory"):
        main(_argv(httpserver, tmp_path))
    assert (tmp_path / "job-id").read_text() == JOB


def test_cancelled_job_fails(httpserver, tmp_path: Path) -> None:
    _serve_statuses(httpserver, [{"status": "cancelled", "status_logs": [{"message": "cancelled by user"}]}])
    with pytest.raises(StepError, match="cancelled: cancelled by user"):
        main(_argv(httpserver, tmp_path))


def test_timeout_cancels_the_job(httpserver, tmp_path: Path) -> None:
    _serve_statuses(httpserver, [{"status": "running", "percentage_done": 1}])
    httpserver.expect_request(f"/v1/customization/jobs/{JOB}/cancel", method="POST").respond_with_json(
        {"id": JOB, "status": "cancelling"}
    )
    with pytest.raises(StepError, match=r"timed out after 0\.2s"):
        main(_argv(httpserver, tmp_path, timeout="0.2"))
    assert any(request.path.endswith("/cancel") for request, _ in httpserver.log)
