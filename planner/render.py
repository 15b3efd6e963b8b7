"""Write the plan to disk: plan.json, authored manifests, Helm release values, and a summary."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from planner import cost, critical_path, graph
from planner.digests import digests_from_environment
from planner.evaluate import Evaluation
from planner.policy_runner import Verdict
from planner.values import SECRET, redact, unwrap
from policies.pack.pricing.estimate import estimate
from policies.pack.pricing.report import CostOptions
from policies.pack.record import Registration
from policies.pack.tokens import HELM_RELEASE


def cluster_of(registration: Registration, by_urn: dict[str, Registration]) -> str:
    """The cluster an object lands on, named after its Kubernetes provider (`<cluster>-k8s`)."""
    provider = by_urn.get(registration.provider)
    return provider.name.removesuffix("-k8s") if provider else "default"


def is_authored_object(registration: Registration) -> bool:
    return registration.type.startswith("kubernetes:") and registration.type != HELM_RELEASE and registration.custom


def manifest(registration: Registration) -> dict[str, Any]:
    obj = redact(registration.inputs)
    if obj.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(obj.get(key), dict):
                obj[key] = dict.fromkeys(obj[key], SECRET)
    return obj


def plan_document(evaluation: Evaluation, verdicts: list[Verdict], budget: CostOptions | None = None) -> dict[str, Any]:
    document = {
        "project": evaluation.project,
        "stack": evaluation.stack,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "provider": r.provider,
                "dependencies": r.dependencies,
                "protect": r.protect,
                "ignoreChanges": r.ignore_changes,
                "custom": r.custom,
                "inputs": redact(r.inputs),
            }
            for r in evaluation.registrations
        ],
        "outputs": redact(evaluation.outputs),
        "secretPlaceholders": evaluation.placeholders,
        "policies": {
            "violations": [
                {"policy": v.policy, "enforcement": v.enforcement, "urn": v.urn, "message": v.message} for v in verdicts
            ]
        },
        "cost": estimate(evaluation.registrations, budget).to_json(),
        "criticalPath": critical_path.analyse(evaluation.registrations).to_json(),
    }
    digests = digests_from_environment(evaluation.registrations)
    if digests is not None:
        # Only `python -m planner.diff` sets the one-off key: it shows that a secret changed, never its value.
        document["secretDigests"] = digests
    return document


def write_plan(
    evaluation: Evaluation, verdicts: list[Verdict], out_dir: Path, budget: CostOptions | None = None
) -> Path:
    """Replace `out_dir` with the plan of this evaluation."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / "plan.json").write_text(
        json.dumps(plan_document(evaluation, verdicts, budget), indent=2, sort_keys=False) + "\n"
    )
    graph.write(evaluation.registrations, out_dir)

    by_urn = {r.urn: r for r in evaluation.registrations}
    for registration in evaluation.registrations:
        cluster = cluster_of(registration, by_urn)
        if registration.type == HELM_RELEASE:
            inputs = redact(registration.inputs)
            # Options holding registry credentials are secret as a whole; the URL beside the login is not.
            repository = unwrap(registration.inputs).get("repositoryOpts")
            release = {
                "chart": inputs.get("chart"),
                "repository": repository.get("repo") if isinstance(repository, dict) else None,
                "version": inputs.get("version"),
                "namespace": inputs.get("namespace"),
                "values": inputs.get("values") or {},
            }
            path = out_dir / "helm" / cluster / f"{inputs.get('name') or registration.name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(release, sort_keys=False))
        elif is_authored_object(registration):
            obj = manifest(registration)
            metadata = obj.get("metadata") or {}
            namespace = metadata.get("namespace") or "_cluster"
            name = metadata.get("name") or registration.name
            path = out_dir / "manifests" / cluster / str(namespace) / f"{obj.get('kind', 'Object')}-{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(obj, sort_keys=False))
    return out_dir / "plan.json"


def _tree_lines(evaluation: Evaluation) -> list[str]:
    children: dict[str, list[Registration]] = {}
    for r in evaluation.registrations:
        children.setdefault(r.parent, []).append(r)
    lines: list[str] = []

    def walk(urn: str, depth: int) -> None:
        kids = children.get(urn, [])
        components = [k for k in kids if not k.custom]
        counts = Counter(k.type.split(":")[-1] for k in kids if k.custom)
        for component in components:
            lines.append(f"{'  ' * depth}{component.type}  {component.name}")
            walk(component.urn, depth + 1)
        if counts:
            lines.append(f"{'  ' * depth}" + ", ".join(f"{n} x {t}" for t, n in sorted(counts.items())))

    roots = [r.parent for r in evaluation.registrations if r.parent not in {x.urn for x in evaluation.registrations}]
    for root in dict.fromkeys(roots):
        walk(root, 1)
    return lines


def summary(evaluation: Evaluation, verdicts: list[Verdict], budget: CostOptions | None = None) -> str:
    lines = [f"Plan of {evaluation.project}/{evaluation.stack} (offline; Pulumi mocks, preview semantics)", ""]
    lines.append("Components:")
    lines += _tree_lines(evaluation)
    lines.append("")
    counts = Counter(r.type for r in evaluation.registrations if r.custom)
    lines.append(f"Resources: {sum(counts.values())} to create")
    lines += [f"  {n:4d}  {t}" for t, n in sorted(counts.items())]
    lines.append("")
    lines.append("Outputs:")
    for key, value in redact(evaluation.outputs).items():
        text = json.dumps(value)
        lines.append(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
    if evaluation.placeholders:
        lines.append("")
        lines.append(
            "Secrets not in the stack file (planned with marked placeholders): " + ", ".join(evaluation.placeholders)
        )
    lines.append("")
    mandatory = [v for v in verdicts if v.enforcement == "mandatory"]
    advisory = [v for v in verdicts if v.enforcement != "mandatory"]
    lines.append(f"Policies: {len(mandatory)} mandatory violation(s), {len(advisory)} advisory")
    for v in mandatory + advisory:
        lines.append(f"  [{v.enforcement}] {v.policy}: {v.message}  ({v.urn.rsplit('::', 1)[-1] or 'stack'})")
    lines.append("")
    lines += cost.summary_lines(estimate(evaluation.registrations, budget))
    lines.append("")
    path = critical_path.analyse(evaluation.registrations)
    lines += critical_path.summary_lines(path, evaluation.registrations)
    lines.append("")
    lines.append("Graph (Mermaid; also graph.mmd, and graph.svg when graphviz is installed):")
    lines.append(graph.mermaid(evaluation.registrations).rstrip())
    return "\n".join(lines)
