"""log-to-mlflow against a real MLflow tracking server, read back with MlflowClient."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

for module in ("mlflow", "flask", "flask_cors", "sqlalchemy", "alembic"):
    pytest.importorskip(module)

from mlflow.tracking import MlflowClient  # noqa: E402

from pipelines.steps.log_to_mlflow import flatten, main, summarize_failures  # noqa: E402

CANDIDATE_BENCHMARKS = {"gsm8k.gsm8k.exact_match.strict-match": 0.71, "boolq.boolq.acc.acc": 0.86}
CANDIDATE_BUSINESS = {"examples": 40, "exact_match": 0.3, "json_field_accuracy": 0.72}
DECISION = {"decision": "accept", "reasons": ["every check passed"], "checks": []}


def test_flatten_keeps_numeric_leaves_under_the_prefix() -> None:
    nested = {"a": {"b": 1, "ok": True, "name": "x"}, "c d/e": 2.5, "weird#key": 3}
    assert dict(flatten("p", nested)) == {"p.a.b": 1.0, "p.c d/e": 2.5, "p.weird_key": 3.0}


def test_summarize_failures_reads_argo_quoted_json() -> None:
    failures = [{"displayName": "gate", "templateName": "gate", "message": "Error (exit code 1)", "phase": "Failed"}]
    once = json.dumps(failures)
    assert summarize_failures(once) == "gate (gate): Error (exit code 1)"
    assert summarize_failures(json.dumps(once)) == "gate (gate): Error (exit code 1)"
    assert summarize_failures("not json") == "not json"


PARAMS = {
    "base_model": "meta/llama-3.1-8b-instruct",
    "base_model_version": "2.0",
    "dataset": "care-abcdef012345",
    "dataset_hash": "ab" * 32,
    "epochs": 2,
    "learning_rate": "0.0001",
}


def _log(tracking_uri: str, output_dir: Path, uid: str, *extra: str) -> str:
    argv = [
        "--tracking-uri", tracking_uri, "--experiment", "lora-finetune-evaluate-deploy",
        "--run-name", "care-lora", "--workflow-name", "lora-finetune-evaluate-deploy-x7k2p",
        "--workflow-uid", uid, "--git-commit", "3f2c1ab", "--params", json.dumps(PARAMS),
        "--output-dir", str(output_dir), *extra,
    ]  # fmt: skip
    assert main(argv) == 0
    return (output_dir / "run-id").read_text()


def test_logs_params_metrics_and_tags_then_the_exit_handler_closes_the_run(
    mlflow_tracking_uri: str, tmp_path: Path
) -> None:
    uid = str(uuid.uuid4())
    metrics = {
        "candidate": {"benchmarks": CANDIDATE_BENCHMARKS, "business": CANDIDATE_BUSINESS},
        "training": {"train_loss": 1.25},
    }
    run_id = _log(
        mlflow_tracking_uri,
        tmp_path / "main",
        uid,
        "--metrics",
        json.dumps(metrics),
        "--decision",
        json.dumps(DECISION),
    )

    client = MlflowClient(tracking_uri=mlflow_tracking_uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "lora-finetune-evaluate-deploy"
    assert run.info.run_name == "care-lora"
    assert run.data.params == {
        "base_model": "meta/llama-3.1-8b-instruct",
        "base_model_version": "2.0",
        "dataset": "care-abcdef012345",
        "dataset_hash": "ab" * 32,
        "epochs": "2",
        "learning_rate": "0.0001",
    }
    assert run.data.metrics == {
        "candidate.benchmarks.gsm8k.gsm8k.exact_match.strict-match": 0.71,
        "candidate.benchmarks.boolq.boolq.acc.acc": 0.86,
        "candidate.business.examples": 40.0,
        "candidate.business.exact_match": 0.3,
        "candidate.business.json_field_accuracy": 0.72,
        "training.train_loss": 1.25,
    }
    tags = run.data.tags
    assert tags["git_commit"] == "3f2c1ab"
    assert tags["mlflow.source.git.commit"] == "3f2c1ab"
    assert tags["workflow_name"] == "lora-finetune-evaluate-deploy-x7k2p"
    assert tags["workflow_uid"] == uid
    assert tags["decision"] == "accept"
    assert run.info.status == "RUNNING"

    failures = json.dumps([{"displayName": "deploy", "templateName": "deploy-adapter", "message": "timed out"}])
    closed = _log(mlflow_tracking_uri, tmp_path / "exit", uid, "--workflow-status", "Failed", "--failures", failures)
    assert closed == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["workflow_status"] == "Failed"
    assert run.data.tags["failures"] == "deploy (deploy-adapter): timed out"
    assert run.data.metrics["training.train_loss"] == 1.25
    assert len(client.search_runs([run.info.experiment_id], f"tags.workflow_uid = '{uid}'")) == 1


def test_exit_handler_alone_records_an_early_failure(mlflow_tracking_uri: str, tmp_path: Path) -> None:
    uid = str(uuid.uuid4())
    run_id = _log(mlflow_tracking_uri, tmp_path, uid, "--workflow-status", "Error")
    run = MlflowClient(tracking_uri=mlflow_tracking_uri).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.params["base_model"] == "meta/llama-3.1-8b-instruct"
    assert run.data.tags["workflow_status"] == "Error"
    assert "decision" not in run.data.tags
