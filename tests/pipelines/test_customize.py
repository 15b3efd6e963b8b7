"""customize: customization config looked up or created, one job per workflow run, progress, failure and timeout,
against the contract-checking fake Customizer."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("nemo_microservices")

from fakes import FakePlatform, Gateway

from pipelines.steps._common import StepError
from pipelines.steps.customize import job_marker, job_name, main

KEY = "gateway-key"
UID = "0f9e8d7c-1111-2222-3333-444455556666"
TARGET = "meta/llama-3.1-8b-instruct@2.0"


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("GATEWAY_API_KEY", KEY)
    fake = FakePlatform(Gateway(api_key=KEY), lambda *_: 0.5)
    fake.namespaces.add("llmops")
    fake.datasets["llmops/care-abc"] = {"name": "care-abc", "namespace": "llmops", "files_url": "hf://datasets/x"}
    yield fake
    fake.stop()


def _argv(platform: FakePlatform, output_dir: Path, timeout: str = "5") -> list[str]:
    return [
        "--target", TARGET, "--dataset", "care-abc", "--namespace", "llmops", "--workflow-uid", UID,
        "--output-model", "care-lora", "--epochs", "3", "--batch-size", "8", "--learning-rate", "0.0002",
        "--adapter-dim", "32", "--timeout-seconds", timeout, "--poll-initial-seconds", "0.01",
        "--poll-max-seconds", "0.02", "--customizer-url", platform.url, "--output-dir", str(output_dir),
    ]  # fmt: skip


def test_creates_a_config_then_the_job_and_emits_the_output_model(
    platform: FakePlatform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pipelines.steps.customize"):
        assert main(_argv(platform, tmp_path)) == 0
    assert platform.violations == []
    [(config_name, config)] = platform.configs.items()
    assert config_name.startswith("llmops/llama-3.1-8b-instruct@v1.0.0+llmops-")
    assert config["target"] == TARGET
    [job] = [job.record for job in platform.customization_jobs.values()]
    assert job["config"] == config_name
    assert job["description"] == job_marker(UID)
    assert platform.customization_job_names == {job_name(UID)}
    assert job["hyperparameters"] == {
        "training_type": "sft",
        "finetuning_type": "lora",
        "epochs": 3,
        "batch_size": 8,
        "learning_rate": 0.0002,
        "lora": {"adapter_dim": 32},
    }
    assert "50.0% done, 1 epochs" in caplog.text
    assert (tmp_path / "job-id").read_text() == job["id"]
    assert (tmp_path / "config").read_text() == config_name
    assert (tmp_path / "output-model").read_text() == f"llmops/care-lora@{job['id']}"
    # The last point of the train_loss curve has no value: the one before it is the last loss.
    assert json.loads((tmp_path / "training-metrics").read_text()) == {"train_loss": 1.2, "val_loss": 1.4}


def test_a_retried_pod_resumes_its_job_instead_of_starting_another(platform: FakePlatform, tmp_path: Path) -> None:
    assert main(_argv(platform, tmp_path / "first")) == 0
    assert main(_argv(platform, tmp_path / "retry")) == 0
    assert len(platform.customization_jobs) == 1 and len(platform.configs) == 1
    assert (tmp_path / "first/job-id").read_text() == (tmp_path / "retry/job-id").read_text()
    creates = [path for method, path in platform.requests if method == "POST" and path.endswith("/jobs")]
    assert creates == ["/v1/customization/jobs"]


def test_a_cancelled_job_fails_with_the_reported_detail(platform: FakePlatform, tmp_path: Path) -> None:
    platform.hold_jobs = True

    def cancel_on_first_status(job_id: str) -> None:
        platform.customization_jobs[job_id].record["status"] = "cancelled"

    original = platform.customization_status

    def status(request, job_id):  # type: ignore[no-untyped-def]
        cancel_on_first_status(job_id)
        return original(request, job_id)

    platform.customization_status = status  # type: ignore[method-assign]
    with pytest.raises(StepError, match=r"cust-\d+ cancelled: cancelled by user"):
        main(_argv(platform, tmp_path))
    assert (tmp_path / "job-id").is_file()


def test_timeout_cancels_the_job(platform: FakePlatform, tmp_path: Path) -> None:
    platform.hold_jobs = True
    with pytest.raises(StepError, match=r"timed out after 0\.2s"):
        main(_argv(platform, tmp_path, timeout="0.2"))
    [job_id] = platform.customization_jobs
    assert platform.cancelled == [job_id]
    assert platform.violations == []


def test_a_target_is_not_a_config(platform: FakePlatform) -> None:
    # What the pipelines used to send: the fake Customizer, like the real one, has no config of that name.
    from nemo_microservices import NeMoMicroservices, UnprocessableEntityError

    client = NeMoMicroservices(base_url=platform.url, default_headers={"x-api-key": KEY}, max_retries=0)
    with pytest.raises(UnprocessableEntityError, match=r"customization config .* does not exist"):
        client.customization.jobs.create(
            config=TARGET,
            dataset={"name": "care-abc", "namespace": "llmops"},
            hyperparameters={"training_type": "sft", "finetuning_type": "lora"},
        )
