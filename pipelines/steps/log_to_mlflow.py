"""Record a pipeline run in MLflow: one experiment per pipeline, one run per candidate.

The run is keyed by the Argo workflow uid, so the exit handler finds the run the main DAG
logged (or creates it when the DAG failed before logging) and closes it with the workflow's
final status and failures.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipelines.steps._common import add_output_dir, add_service_url, json_object, parser_for, write_outputs

log = logging.getLogger(__name__)

# MLflow rejects metric and param names outside this alphabet.
_INVALID_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")
MAX_TAG_LENGTH = 5000


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
    if workflow_status is not None:
        client.set_terminated(run_id, "FINISHED" if workflow_status == "Succeeded" else "FAILED")
    log.info("logged %d metrics, %d params to run %s", len(metrics), len(params), run_id)
    return run_id


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
    }
    if args.decision:
        tags["decision"] = str(args.decision.get("decision", "unknown"))
        tags["decision_reasons"] = "; ".join(map(str, args.decision.get("reasons", [])))
    if args.workflow_status:
        tags["workflow_status"] = args.workflow_status
    if args.failures:
        tags["failures"] = summarize_failures(args.failures)
    return tags


def main(argv: Sequence[str]) -> int:
    parser = parser_for("log-to-mlflow", "Log params, metrics and tags of a pipeline run to MLflow.")
    parser.add_argument("--experiment", required=True, help="one per pipeline")
    parser.add_argument("--run-name", required=True, help="the candidate, e.g. the adapter name")
    parser.add_argument("--workflow-name", required=True)
    parser.add_argument("--workflow-uid", required=True)
    parser.add_argument("--git-commit", default="unknown")
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
        metrics=dict(flatten("", args.metrics)),
        tags=build_tags(args),
        workflow_status=args.workflow_status or None,
    )
    write_outputs(args.output_dir, {"run-id": run_id})
    return 0
