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


def test_pull_request_runs_offline_first_and_previews_only_with_credentials() -> None:
    workflow = load("pull-request.yml")
    offline = workflow["jobs"]["offline"]
    steps = " ".join(str(step.get("run", "")) for step in offline["steps"])
    assert "make test" in steps and "make plan" in steps and "make plan-diff" in steps
    assert "secrets." not in yaml.safe_dump([s for s in offline["steps"] if s.get("id") != "secrets"])
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "offline"
    assert preview["if"] == "needs.offline.outputs.cloud-secrets == 'true'"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    pulumi = next(s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policies"
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
    pulumi = next(s for s in up["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["refresh"] is True


def test_drift_is_a_nightly_preview_that_expects_no_changes() -> None:
    drift = load("drift.yml")
    assert drift["on"]["schedule"]
    job = drift["jobs"]["preview"]
    pulumi = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["expect-no-changes"] is True
    assert job["concurrency"]["group"] == "pulumi-${{ matrix.stack }}"
