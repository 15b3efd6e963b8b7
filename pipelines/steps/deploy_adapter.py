"""Make a LoRA adapter servable and, after an accepted gate, promote it to the name production calls.

NIM loads every adapter the Entity Store holds for its base model (NIM_PEFT_SOURCE), so the candidate
is served from the moment Customizer registers it, under its own name, which production clients do not
call. Readiness: the adapter's Entity Store model exists and NIM lists it in /v1/models on
--consecutive checks in a row (the gateway balances requests over NIM replicas; one answer speaks for one
replica). Promotion (--promote true): the stable alias (--alias, the app's model name) becomes an Entity
Store model that points at the adapter's files, NIM serves the alias consistently, the promotion record is
committed to the GitOps repository and added to the workflow's MLflow run.
https://docs.nvidia.com/nemo/microservices/25.8.0/manage-entities/models/index.html
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nemo_microservices as nemo
from nemo_microservices.types import Model

from pipelines.steps._chat import served_models
from pipelines.steps._common import (
    StepError,
    TransientError,
    add_output_dir,
    add_service_url,
    env,
    parser_for,
    write_outputs,
)
from pipelines.steps._http import NotFound, ServiceClient, nemo_client, nemo_errors, poll_consecutive

log = logging.getLogger(__name__)

GITOPS_TOKEN_ENV = "GITOPS_TOKEN"
GIT_AUTHOR = ("llmops-pipeline", "llmops-pipeline@users.noreply.github.com")
PUSH_ATTEMPTS = 3


def split_model_id(model: str) -> tuple[str, str]:
    """ "namespace/name" (name may carry "@version", as Customizer's output models do) -> (namespace, name)."""
    namespace, _, name = model.partition("/")
    if not namespace or not name or "/" in name:
        raise StepError(f"model id must be namespace/name, got {model!r}")
    return namespace, name


def model_entity(entity_store: nemo.NeMoMicroservices, model: str) -> Model:
    namespace, name = split_model_id(model)
    try:
        with nemo_errors(f"Entity Store model {model}"):
            return entity_store.models.retrieve(name, namespace=namespace)
    except NotFound as exc:
        raise StepError(f"model entity {model} does not exist in the Entity Store") from exc


def serves(model: str, listed: set[str]) -> bool:
    # NIM lists an Entity Store model by its id, with or without the version suffix.
    return model in listed or any(entry.startswith(f"{model}@") for entry in listed)


def wait_for_listing(
    nim: ServiceClient, model: str, *, listed: bool, needed: int, interval: float, timeout: float
) -> None:
    """Wait until NIM's /v1/models lists `model` (listed=True: NIM serves it) or no longer lists it (listed=False:
    NIM dropped it) on `needed` checks in a row, `interval` seconds apart; PollTimeout after `timeout` seconds."""

    def as_wanted() -> bool:
        models = served_models(nim)
        if serves(model, models) != listed:
            log.info("NIM %s %s (%d models listed)", "does not list" if listed else "still lists", model, len(models))
            return False
        return True

    what = f"NIM to {'serve' if listed else 'drop'} {model}"
    poll_consecutive(as_wanted, needed=needed, interval=interval, timeout=timeout, what=what)


def promote(entity_store: nemo.NeMoMicroservices, alias: str, adapter: Model, record: Mapping[str, str]) -> str:
    """Point the alias model at the adapter's files; returns the model the alias pointed at before, if any."""
    namespace, name = split_model_id(alias)

    def param(value: Any) -> Any:
        return value.model_dump(mode="json", exclude_none=True) if value is not None else nemo.NOT_GIVEN

    fields: dict[str, Any] = {
        "artifact": param(adapter.artifact),
        "peft": param(adapter.peft),
        "spec": param(adapter.spec),
        "base_model": adapter.base_model if adapter.base_model is not None else nemo.NOT_GIVEN,
    }
    try:
        with nemo_errors(f"Entity Store model {alias}"):
            previous = entity_store.models.retrieve(name, namespace=namespace)
    except NotFound:
        previous = None
    custom_fields = {**record, "previous_model": (previous.custom_fields or {}).get("model", "") if previous else ""}
    description = f"stable name of the promoted adapter {record['model']}"
    with nemo_errors(f"promoting {record['model']} to {alias}"):
        if previous is None:
            entity_store.with_options(max_retries=0).models.create(
                name=name, namespace=namespace, description=description, custom_fields=custom_fields, **fields
            )
        else:
            entity_store.models.update(
                name, namespace=namespace, description=description, custom_fields=custom_fields, **fields
            )
    log.info("%s now serves %s (before: %s)", alias, record["model"], custom_fields["previous_model"] or "nothing")
    return custom_fields["previous_model"]


def _git(args: Sequence[str], cwd: Path | None = None, token: str | None = None) -> str:
    command = ["git"]
    if token:
        # A header rather than a URL with the token in it: URLs end up in logs and error messages.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        command += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    result = subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"GIT_TERMINAL_PROMPT": "0", "HOME": env("HOME", "/tmp") or "/tmp", "PATH": env("PATH", "") or ""},
        check=False,
    )
    if result.returncode != 0:
        raise TransientError(f"git {args[0]} failed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def commit_promotion(repo_url: str, revision: str, path: str, alias: str, record: Mapping[str, str]) -> str:
    """Write <path>/<alias>.json on the GitOps branch and push; returns the commit that holds it."""
    token = env(GITOPS_TOKEN_ENV)
    relative = f"{path.strip('/')}/{alias.replace('/', '--')}.json"
    content = json.dumps(dict(record), indent=2, sort_keys=True) + "\n"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "repo"
        _git(["clone", "--quiet", "--depth", "1", "--branch", revision, repo_url, str(work)], token=token)
        target = work / relative
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            return _git(["rev-parse", "HEAD"], cwd=work)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        _git(["add", relative], cwd=work)
        name, email = GIT_AUTHOR
        message = (
            f"Promote {record['model']} to {alias}\n\nworkflow {record['workflow_name']} ({record['workflow_uid']})"
        )
        _git(["-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "--quiet", "-m", message], cwd=work)
        for attempt in range(PUSH_ATTEMPTS):
            try:
                _git(["push", "--quiet", "origin", f"HEAD:{revision}"], cwd=work, token=token)
                break
            except TransientError:
                if attempt == PUSH_ATTEMPTS - 1:
                    raise
                # Someone else pushed first: replay the promotion on top of their commit.
                _git(["pull", "--quiet", "--rebase", "origin", revision], cwd=work, token=token)
        return _git(["rev-parse", "HEAD"], cwd=work)


def add_adapter_service_arguments(parser: argparse.ArgumentParser, *, consecutive_help: str | None = None) -> None:
    """The Entity Store and NIM an adapter step talks to, how it waits for NIM's listing, and MLflow."""
    parser.add_argument("--consecutive", type=int, default=3, help=consecutive_help)
    parser.add_argument("--interval-seconds", type=float, default=10)
    parser.add_argument("--timeout-seconds", type=float, default=1200)
    add_service_url(parser, "--entity-store-url", "ENTITY_STORE_URL", "NeMo Entity Store")
    add_service_url(parser, "--nim-url", "NIM_URL", "NIM")
    parser.add_argument("--tracking-uri", default=env("MLFLOW_TRACKING_URI"), help="(default: $MLFLOW_TRACKING_URI)")


def main(argv: Sequence[str]) -> int:
    parser = parser_for("deploy-adapter", "Wait until NIM serves an adapter; with --promote, promote it.")
    parser.add_argument("--model", required=True, help="adapter id, namespace/name (customize's output-model)")
    parser.add_argument("--promote", choices=("true", "false"), default="false")
    parser.add_argument("--alias", default="", help="with --promote: the stable name, namespace/name")
    parser.add_argument("--workflow-name", default="")
    parser.add_argument("--workflow-uid", default="")
    parser.add_argument("--git-commit", default="unknown")
    parser.add_argument("--decision", default="", help="the gate's one-line reason, recorded with the promotion")
    parser.add_argument("--gitops-repo-url", default="", help="with --promote: commit the promotion record here")
    parser.add_argument("--gitops-revision", default="main")
    parser.add_argument("--gitops-path", default="promotions")
    parser.add_argument("--mlflow-experiment", default="", help="with --promote: record it on the workflow's run")
    parser.add_argument("--mlflow-run-name", default="")
    add_adapter_service_arguments(parser, consecutive_help="NIM must list the model this many times in a row")
    add_output_dir(parser)
    args = parser.parse_args(argv)
    if args.promote == "true" and not args.alias:
        parser.error("--promote true needs --alias")

    wait = {"needed": args.consecutive, "interval": args.interval_seconds, "timeout": args.timeout_seconds}
    outputs: dict[str, Any] = {"model-id": args.model}
    with nemo_client(args.entity_store_url) as entity_store, ServiceClient(args.nim_url) as nim:
        adapter = model_entity(entity_store, args.model)
        wait_for_listing(nim, args.model, listed=True, **wait)
        if args.promote == "true":
            record = {
                "alias": args.alias,
                "model": args.model,
                "workflow_name": args.workflow_name,
                "workflow_uid": args.workflow_uid,
                "git_commit": args.git_commit,
                "decision": args.decision,
                "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            record["previous_model"] = promote(entity_store, args.alias, adapter, record)
            wait_for_listing(nim, args.alias, listed=True, **wait)
            if args.gitops_repo_url:
                record["gitops_commit"] = commit_promotion(
                    args.gitops_repo_url, args.gitops_revision, args.gitops_path, args.alias, record
                )
                log.info("promotion committed to %s as %s", args.gitops_repo_url, record["gitops_commit"])
            outputs = {"model-id": args.alias, "promotion": record}
    if args.promote == "true" and args.mlflow_experiment and args.tracking_uri:
        from pipelines.steps.log_to_mlflow import tag_run

        tags = {f"promotion.{key}": value for key, value in outputs["promotion"].items()}
        tag_run(
            args.tracking_uri,
            experiment=args.mlflow_experiment,
            workflow_uid=args.workflow_uid,
            run_name=args.mlflow_run_name or args.model,
            tags=tags,
        )
    outputs.setdefault("promotion", {})
    write_outputs(args.output_dir, outputs)
    return 0
