"""deploy-adapter, discard-adapter and cancel-jobs: readiness confirmed across replicas, promotion to the stable
name with a GitOps commit, deletion of a rejected candidate, cancellation of a stopped run's jobs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("nemo_microservices")

from fakes import FakeNim, FakePlatform, Gateway

from pipelines.steps._common import StepError
from pipelines.steps.cancel_jobs import main as cancel_jobs
from pipelines.steps.customize import job_marker
from pipelines.steps.deploy_adapter import main as deploy
from pipelines.steps.discard_adapter import main as discard
from pipelines.steps.evaluate_benchmarks import job_fields

KEY = "gateway-key"
BASE = "meta/llama-3.1-8b-instruct"
ADAPTER = "llmops/care-lora-candidate-1@cust-000001"
ALIAS = "llmops/customer-care"


def _adapter(name: str = ADAPTER) -> dict:
    namespace, entity = name.split("/")
    return {
        "name": entity,
        "namespace": namespace,
        "base_model": BASE,
        "artifact": {"files_url": f"hf://models/{name}", "status": "upload_completed"},
        "peft": {"finetuning_type": "lora"},
    }


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("GATEWAY_API_KEY", KEY)
    fake = FakePlatform(Gateway(api_key=KEY), lambda *_: 0.5)
    fake.models[ADAPTER] = _adapter()
    yield fake
    fake.stop()


@pytest.fixture
def nim(platform: FakePlatform) -> Iterator[FakeNim]:
    fake = FakeNim(Gateway(api_key=KEY), {BASE}, lambda model, messages: "", platform=platform)
    yield fake
    fake.stop()


def _argv(platform: FakePlatform, nim: FakeNim, out: Path, *extra: str, model: str = ADAPTER) -> list[str]:
    return [
        "--model", model, "--consecutive", "3", "--interval-seconds", "0.01", "--timeout-seconds", "1",
        "--entity-store-url", platform.url, "--nim-url", nim.url, "--workflow-uid", "uid-1",
        "--workflow-name", "lora-abc", "--output-dir", str(out), *extra,
    ]  # fmt: skip


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    bare, seed = tmp_path / "gitops.git", tmp_path / "seed"
    _git("init", "--quiet", "--bare", "--initial-branch", "main", str(bare))
    _git("clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text("x\n")
    _git("-C", str(seed), "add", "README.md")
    _git("-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "init")
    _git("-C", str(seed), "push", "--quiet", "origin", "HEAD:main")
    return bare


def test_readiness_needs_consecutive_confirmations(platform: FakePlatform, nim: FakeNim, tmp_path: Path) -> None:
    # Behind the gateway, one replica already loaded the adapter and one has not.
    answers = iter([True, False, True, True, False, True, True, True])
    served = nim.served
    checks = []

    def replica() -> set[str]:
        listed = next(answers, True)
        checks.append(listed)
        return served() if listed else {BASE}

    nim.served = replica  # type: ignore[method-assign]
    assert deploy(_argv(platform, nim, tmp_path)) == 0
    assert checks == [True, False, True, True, False, True, True, True]
    assert (tmp_path / "model-id").read_text() == ADAPTER
    assert json.loads((tmp_path / "promotion").read_text()) == {}


def test_promotion_points_the_stable_name_at_the_adapter_and_commits_it(
    platform: FakePlatform, nim: FakeNim, tmp_path: Path, gitops: Path
) -> None:
    promote = ["--promote", "true", "--alias", ALIAS, "--gitops-repo-url", gitops.as_uri(), "--decision", "accept: ok"]
    assert deploy(_argv(platform, nim, tmp_path / "first", *promote)) == 0
    alias = platform.models[ALIAS]
    assert alias["artifact"] == platform.models[ADAPTER]["artifact"] and alias["peft"] == {"finetuning_type": "lora"}
    assert alias["custom_fields"]["model"] == ADAPTER and alias["custom_fields"]["previous_model"] == ""
    assert (tmp_path / "first/model-id").read_text() == ALIAS
    record = json.loads(_git("--git-dir", str(gitops), "show", "main:promotions/llmops--customer-care.json"))
    assert record["model"] == ADAPTER and record["decision"] == "accept: ok"

    # The next accepted candidate replaces it; the record says what it replaced.
    second = "llmops/care-lora-candidate-2@cust-000002"
    platform.models[second] = _adapter(second)
    assert deploy(_argv(platform, nim, tmp_path / "second", *promote, model=second)) == 0
    assert platform.models[ALIAS]["custom_fields"].items() >= {"model": second, "previous_model": ADAPTER}.items()
    promotion = json.loads((tmp_path / "second/promotion").read_text())
    assert promotion["gitops_commit"] == _git("--git-dir", str(gitops), "rev-parse", "main")
    assert _git("--git-dir", str(gitops), "rev-list", "--count", "main") == "3"
    assert platform.violations == []


def test_a_missing_model_entity_fails_before_polling(platform: FakePlatform, nim: FakeNim, tmp_path: Path) -> None:
    del platform.models[ADAPTER]
    with pytest.raises(StepError, match="does not exist in the Entity Store"):
        deploy(_argv(platform, nim, tmp_path))


def test_times_out_when_nim_never_serves_the_adapter(platform: FakePlatform, nim: FakeNim, tmp_path: Path) -> None:
    nim.served = lambda: {BASE}  # type: ignore[method-assign]
    with pytest.raises(StepError, match=f"timed out after 1s waiting for NIM to serve {ADAPTER}"):
        deploy(_argv(platform, nim, tmp_path))


def test_discard_deletes_the_candidate_until_nim_drops_it(platform: FakePlatform, nim: FakeNim, tmp_path: Path) -> None:
    argv = [a for a in _argv(platform, nim, tmp_path) if a not in ("--workflow-name", "lora-abc")]
    assert discard(argv) == 0
    assert ADAPTER not in platform.models and ADAPTER not in nim.served()
    # A retried pod finds nothing left to delete.
    assert discard(argv) == 0
    assert platform.violations == []


def test_cancel_jobs_cancels_only_this_runs_active_jobs(platform: FakePlatform, tmp_path: Path) -> None:
    def job(kind: dict, job_id: str, status: str, **record: object) -> None:
        from fakes import Job

        kind[job_id] = Job({"id": job_id, "status": status, **record})

    config = {
        "config": "llmops/c",
        "dataset": "d",
        "hyperparameters": {"finetuning_type": "lora", "training_type": "sft"},
    }
    job(platform.customization_jobs, "cust-1", "running", description=job_marker("uid-1"), **config)
    job(platform.customization_jobs, "cust-2", "running", description=job_marker("uid-2"), **config)
    job(platform.customization_jobs, "cust-3", "completed", description=job_marker("uid-1"), **config)
    evaluation = {"config": {"type": "gsm8k"}, "target": {"type": "model"}, "namespace": "llmops"}
    job(platform.evaluation_jobs, "eval-1", "running", custom_fields=job_fields("uid-1", BASE, "gsm8k"), **evaluation)
    job(platform.evaluation_jobs, "eval-2", "completed", custom_fields=job_fields("uid-1", BASE, "squad"), **evaluation)
    job(platform.evaluation_jobs, "eval-3", "pending", custom_fields=job_fields("uid-2", BASE, "gsm8k"), **evaluation)
    argv = [
        "--workflow-uid", "uid-1", "--namespace", "llmops", "--customizer-url", platform.url,
        "--evaluator-url", platform.url, "--output-dir", str(tmp_path),
    ]  # fmt: skip
    assert cancel_jobs(argv) == 0
    assert sorted(platform.cancelled) == ["cust-1", "eval-1"]
    assert json.loads((tmp_path / "cancelled").read_text()) == {"customization": ["cust-1"], "evaluation": ["eval-1"]}
    assert platform.violations == []
