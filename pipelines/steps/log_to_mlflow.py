"""Record a pipeline run in MLflow: one experiment per pipeline, one run per candidate.

The run is keyed by the Argo workflow uid, so the exit handler finds the run the main DAG
logged (or creates it when the DAG failed before logging) and closes it with the workflow's
final status and failures, and the deploy and discard steps add what they did to the same run.
Lineage: parameters (hyperparameters, thresholds, sample sizes, split fractions, judge model, job ids),
tags (git commit, platform config revision, decision and its one-line reason) and the datasets as
MLflow dataset inputs with their content digests.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipelines.steps._common import add_output_dir, add_service_url, json_object, parser_for, write_outputs

log = logging.getLogger(__name__)

# MLflow rejects metric and param names outside this alphabet.
_INVALID_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")
MAX_TAG_LENGTH = 5000
# MLflow stores a dataset digest in 36 characters; the full content hash is a run parameter.
MAX_DIGEST_LENGTH = 36


def flatten(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    """Numeric leaves of nested JSON as ("prefix.path.to.leaf", value); booleans are not metrics."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from flatten(f"{prefix}.{key}" if prefix else str(key), child)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield _INVALID_KEY_CHARS.sub("_", prefix), float(value)


def as_params(values: Mapping[str, Any]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def summarize_failures(text: str) -> str:
    """Argo's {{workflow.failures}}: a JSON list, sometimes quoted once more; keep the raw text otherwise."""
    value: Any = text
    for _ in range(2):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return text
    if not isinstance(value, list):
        return text
    return "; ".join(
        f"{item.get('displayName')} ({item.get('templateName')}): {item.get('message')}"
        for item in value
        if isinstance(item, Mapping)
    )


def experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:
        # Another candidate of the same pipeline created it in the meantime.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def find_or_create_run(client: MlflowClient, experiment: str, workflow_uid: str, run_name: str) -> str:
    runs = client.search_runs([experiment], filter_string=f"tags.workflow_uid = '{workflow_uid}'", max_results=1)
    if runs:
        return str(runs[0].info.run_id)
    run = client.create_run(experiment, run_name=run_name, tags={"workflow_uid": workflow_uid})
    return str(run.info.run_id)


def log_run(
    client: MlflowClient,
    *,
    experiment: str,
    run_name: str,
    workflow_uid: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    workflow_status: str | None,
    datasets: Sequence[Mapping[str, Any]] = (),
) -> str:
    run_id = find_or_create_run(client, experiment_id(client, experiment), workflow_uid, run_name)
    # Params are write-once in MLflow: the exit handler repeats them, so send only new ones.
    logged = client.get_run(run_id).data.params
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        params=[Param(key, value) for key, value in params.items() if key not in logged],
        tags=[RunTag(key, value[:MAX_TAG_LENGTH]) for key, value in tags.items()],
    )
    if datasets:
        client.log_inputs(run_id, datasets=[dataset_input(entry) for entry in datasets])
    if workflow_status is not None:
        client.set_terminated(run_id, "FINISHED" if workflow_status == "Succeeded" else "FAILED")
    log.info("logged %d metrics, %d params, %d datasets to run %s", len(metrics), len(params), len(datasets), run_id)
    return run_id


def dataset_input(entry: Mapping[str, Any]) -> DatasetInput:
    """{"name", "digest", "source", "context", "profile"?} as an MLflow dataset input."""
    dataset = Dataset(
        name=str(entry["name"]),
        digest=str(entry["digest"])[:MAX_DIGEST_LENGTH],
        source_type="nemo-data-store",
        source=json.dumps({"uri": entry["source"]}),
        profile=json.dumps(entry["profile"]) if entry.get("profile") is not None else None,
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", str(entry.get("context", "training")))])


def tag_run(tracking_uri: str, *, experiment: str, workflow_uid: str, run_name: str, tags: Mapping[str, str]) -> str:
    """Add tags to the run of this workflow (created if the DAG has not logged it yet)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = find_or_create_run(client, experiment_id(client, experiment), workflow_uid, run_name)
    client.log_batch(run_id, tags=[RunTag(key, value[:MAX_TAG_LENGTH]) for key, value in tags.items()])
    return run_id


def gate_metrics(decision: Mapping[str, Any] | None) -> dict[str, float]:
    """Each gate check's difference, interval and sample size, e.g. gate.business f1.delta."""
    metrics = {}
    for check in (decision or {}).get("checks", []):
        for field in ("delta", "ci_low", "ci_high", "n"):
            value = check.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[_INVALID_KEY_CHARS.sub("_", f"gate.{check['name']}.{field}")] = float(value)
    return metrics


def _json_list(text: str) -> list[dict[str, Any]]:
    value = json.loads(text) if text.strip() else []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected a JSON list of objects")
    return value


def _optional_json_object(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def build_tags(args: argparse.Namespace) -> dict[str, str]:
    tags = {
        "workflow_name": args.workflow_name,
        "workflow_uid": args.workflow_uid,
        "git_commit": args.git_commit,
        "mlflow.source.git.commit": args.git_commit,
        "config_revision": args.config_revision,
    }
    if args.decision:
        tags["decision"] = str(args.decision.get("decision", "unknown"))
        tags["decision_reason"] = str(args.decision.get("reason", ""))
    if args.workflow_status:
        tags["workflow_status"] = args.workflow_status
    if args.failures and (failures := summarize_failures(args.failures)):
        tags["failures"] = failures
    return tags


def main(argv: Sequence[str]) -> int:
    parser = parser_for("log-to-mlflow", "Log params, metrics and tags of a pipeline run to MLflow.")
    parser.add_argument("--experiment", required=True, help="one per pipeline")
    parser.add_argument("--run-name", required=True, help="the candidate, e.g. the adapter name")
    parser.add_argument("--workflow-name", required=True)
    parser.add_argument("--workflow-uid", required=True)
    parser.add_argument("--git-commit", default="unknown", help="commit of the pipeline code and data")
    parser.add_argument("--config-revision", default="unknown", help="revision of the platform config (GitOps)")
    parser.add_argument(
        "--datasets", type=_json_list, default=[], help='[{"name", "digest", "source", "context"}] dataset inputs'
    )
    parser.add_argument("--params", type=json_object, default={}, help="JSON object of run parameters")
    parser.add_argument(
        "--metrics", type=json_object, default={}, help='nested JSON scores, flattened: {"a": {"b": 1}} -> a.b'
    )
    parser.add_argument("--decision", type=_optional_json_object, default=None, help="gate decision JSON")
    parser.add_argument("--workflow-status", default="", help="set by the exit handler: closes the run")
    parser.add_argument("--failures", default="", help="Argo {{workflow.failures}}")
    add_service_url(parser, "--tracking-uri", "MLFLOW_TRACKING_URI", "MLflow tracking server")
    add_output_dir(parser)
    args = parser.parse_args(argv)

    run_id = log_run(
        MlflowClient(tracking_uri=args.tracking_uri),
        experiment=args.experiment,
        run_name=args.run_name,
        workflow_uid=args.workflow_uid,
        params=as_params(args.params),
        metrics={**dict(flatten("", args.metrics)), **gate_metrics(args.decision)},
        tags=build_tags(args),
        workflow_status=args.workflow_status or None,
        datasets=args.datasets,
    )
    write_outputs(args.output_dir, {"run-id": run_id})
    return 0
