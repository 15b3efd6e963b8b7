"""The GitHub workflows: valid for actionlint, and shaped the way the platform is meant to ship."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def test_actionlint_passes() -> None:
    # The dev dependency installs the binary next to this interpreter, which need not be on PATH.
    beside_python = Path(sys.executable).parent / "actionlint"
    actionlint = str(beside_python) if beside_python.exists() else shutil.which("actionlint")
    if actionlint is None:
        pytest.fail("actionlint is not installed (it is a dev dependency: run `make setup`)")
    result = subprocess.run([actionlint, "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def installs_pulumi_cli_only(job: dict[str, Any]) -> bool:
    """pulumi/actions without `command` installs the CLI; the make wrappers run it with the policy pack."""
    actions = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    return len(actions) == 1 and "command" not in actions[0]["with"] and bool(actions[0]["with"]["pulumi-version"])


def test_pull_request_runs_offline_first_and_previews_only_with_credentials() -> None:
    workflow = load("pull-request.yml")
    offline = workflow["jobs"]["offline"]
    steps = run_lines(offline)
    assert "make test" in steps and "make plan-all" in steps and "make plan-comment" in steps
    assert "secrets." not in yaml.safe_dump([s for s in offline["steps"] if s.get("id") != "secrets"])
    # The verdicts reach the PR even when a plan fails: building, uploading and posting the comment run unless
    # the run was cancelled.
    report = [
        s
        for s in offline["steps"]
        if s.get("id") == "report" or str(s.get("uses", "")).startswith(("actions/github-script@", "actions/upload"))
    ]
    assert len(report) == 3 and all("!cancelled()" in str(s.get("if", "")) for s in report)
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "offline"
    assert preview["if"] == "needs.offline.outputs.cloud-secrets == 'true'"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    assert "make preview" in run_lines(preview) and "mkdir -p build" in run_lines(preview)
    assert installs_pulumi_cli_only(preview)
    assert any(str(s.get("uses", "")).startswith("azure/login@") for s in preview["steps"])
    assert workflow["permissions"]["id-token"] == "write"


def test_deploy_goes_dev_then_staging_then_prod_one_stack_at_a_time() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    jobs = deploy["jobs"]
    assert jobs["dev"]["needs"] == "test"
    assert jobs["staging"]["needs"] == "dev"
    assert jobs["prod"]["needs"] == "staging"
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}
    assert installs_pulumi_cli_only(up)
    command = run_lines(up)
    assert "make up STACK=${{ inputs.stack }}" in command and "--refresh" in command and "--yes" in command


def test_drift_is_a_nightly_preview_that_expects_no_changes_without_waiting_for_approval() -> None:
    drift = load("drift.yml")
    assert drift["on"]["schedule"]
    job = drift["jobs"]["preview"]
    assert installs_pulumi_cli_only(job)
    command = run_lines(job)
    assert "make preview" in command and "--expect-no-changes" in command and "--refresh" in command
    # Not the approval-gated deploy environment, and not the deploys' concurrency group.
    assert job["environment"] == "${{ matrix.stack }}-readonly"
    assert job["concurrency"]["group"] == "drift-${{ matrix.stack }}"


def test_make_wrappers_pass_the_policy_pack_and_its_config() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--policy-pack policies" in makefile
    assert "--policy-pack-config build/plan/$(STACK)/policy-config.json" in makefile
    assert "preview up: setup-deploy" in makefile and "--no-default-groups" in makefile
