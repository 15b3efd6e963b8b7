"""The offline plan's pull-request comment (tools/pr_plan_comment.py): every stack's verdict, also when its plan
failed, its plan diff, and a graph of what changed in a fence GitHub draws."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK_URN = "urn:pulumi:dev::llmops-platform::pulumi:pulumi:Stack::llmops-platform-dev"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pr_plan_comment", ROOT / "tools" / "pr_plan_comment.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def resource(name: str, type_: str, parent: str = STACK_URN, **fields: Any) -> dict[str, Any]:
    urn = f"urn:pulumi:dev::llmops-platform::{type_}::{name}"
    return {"urn": urn, "type": type_, "name": name, "parent": parent, "dependencies": [], "inputs": {}} | fields


COMPONENT = resource("dev-mgmt", "llmops:management:ManagementCluster", custom=False)
POOL = resource("dev-mgmt-pool", "azure-native:containerservice:AgentPool", COMPONENT["urn"], inputs={"count": 2})
OLD_RELEASE = resource("mlflow", "kubernetes:helm.sh/v3:Release", COMPONENT["urn"])
NEW_RELEASE = resource("argo-workflows", "kubernetes:helm.sh/v3:Release", COMPONENT["urn"])
NEW_RELEASE["dependencies"] = [POOL["urn"]]
BASE = {"stack": "dev", "resources": [COMPONENT, POOL, OLD_RELEASE]}
HEAD = {"stack": "dev", "resources": [COMPONENT, POOL | {"inputs": {"count": 3}}, NEW_RELEASE]}


def test_the_graph_shows_what_was_added_removed_and_changed_inside_its_component() -> None:
    diff = tool.compare(BASE, HEAD)
    graph = tool.change_graph(BASE, HEAD, diff)
    assert graph.startswith("flowchart LR\n")
    assert 'subgraph g0["ManagementCluster dev-mgmt"]' in graph
    assert '"+ Release argo-workflows"]:::added' in graph
    assert '"- Release mlflow"]:::removed' in graph
    assert '"~ AgentPool dev-mgmt-pool · 1 change"]:::changed' in graph
    added, changed = (
        next(line.split("[")[0].strip() for line in graph.splitlines() if marker in line)
        for marker in ("argo-workflows", "dev-mgmt-pool")
    )
    assert f"{changed} --> {added}" in graph
    assert tool.change_graph(BASE, BASE, tool.compare(BASE, BASE)) is None


def test_a_large_change_is_drawn_one_box_per_component() -> None:
    many = [resource(f"secret-{i}", "kubernetes:core/v1:Secret", COMPONENT["urn"]) for i in range(60)]
    head = {"stack": "dev", "resources": [*BASE["resources"], *many]}
    graph = tool.change_graph(BASE, head, tool.compare(BASE, head))
    assert '"ManagementCluster dev-mgmt: 60 added"]:::added' in graph
    assert "subgraph" not in graph


def write_plan(build: Path, stack: str, code: int, output: str, violations: list[dict[str, str]]) -> None:
    (build / f"plan-{stack}.exit").write_text(f"{code}\n")
    (build / f"plan-{stack}.txt").write_text(output)
    if code in (0, 1):
        (build / "plan" / stack).mkdir(parents=True)
        (build / "plan" / stack / "plan.json").write_text(json.dumps({"policies": {"violations": violations}}))


def test_every_stack_gets_its_verdict_diff_and_mermaid_graph_also_when_its_plan_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mandatory = {"policy": "monthly-cost-within-budget", "enforcement": "mandatory", "message": "over budget"}
    write_plan(tmp_path, "dev", 0, "Policies: 0 mandatory violation(s), 0 advisory\n", [])
    write_plan(tmp_path, "staging", 2, "llmops:gpuCluster.aks.gpuPools[0].minCount: must be <= maxCount\n", [])
    write_plan(tmp_path, "prod", 1, "Policies: 1 mandatory violation(s)\n", [mandatory])

    def plan_revisions(base_ref: str, stack: str) -> tuple[dict[str, Any], dict[str, Any], list[str], str]:
        if stack == "staging":
            raise tool.DiffError("the planner of working tree failed (exit 2):\nmust be <= maxCount")
        return BASE, HEAD, [], f"{base_ref} (0123456789)"

    monkeypatch.setattr(tool, "plan_revisions", plan_revisions)
    text = tool.comment("origin/main", ["dev", "staging", "prod"], tmp_path)
    dev, staging, prod = (text.split(f"### `{s}`")[1] for s in ("dev", "staging", "prod"))
    assert text.startswith(tool.MARKER)
    assert "✅ no mandatory policy violation" in dev and "```mermaid\nflowchart LR" in dev and "#### Plan diff" in dev
    assert "❌ the planner failed (exit 2)" in staging and "minCount: must be <= maxCount" in staging
    assert "Plan diff against `origin/main`: not available" in staging
    assert "❌ 1 mandatory policy violation(s)" in prod and "`monthly-cost-within-budget`" in prod
    assert "```mermaid" in prod


def test_a_long_diff_is_cut_without_leaving_a_details_block_open() -> None:
    body = "".join(f"<details><summary>r{i}</summary>\n\n| a | b |\n\n</details>\n" for i in range(2000))
    cut = tool._fit(body, 5_000, "(cut)")
    assert len(cut) <= 5_000 + 20 and cut.rstrip().endswith("(cut)")
    assert cut.count("<details>") == cut.count("</details>")
