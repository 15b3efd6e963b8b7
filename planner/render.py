"""Write the plan to disk: plan.json, authored manifests, Helm release values, and a summary."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner import cost, critical_path, graph, quota
from planner.critical_path import CriticalPath
from planner.digests import digests_from_environment
from planner.evaluate import Evaluation, platform_config_of
from planner.policy_runner import Verdict
from planner.quota import GpuQuota
from planner.values import SECRET, redact, unwrap
from policies.pack.pricing.estimate import estimate
from policies.pack.pricing.report import MEASURES, CostOptions, CostReport, format_usd
from policies.pack.record import Registration
from policies.pack.tokens import HELM_RELEASE


def cluster_of(registration: Registration, by_urn: Mapping[str, Registration]) -> str:
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


@dataclass(frozen=True)
class PlanFigures:
    """A plan's cost estimate, GPU quota and critical path: computed once, for plan.json, report.txt and the
    summary."""

    cost: CostReport
    gpu_quota: GpuQuota
    critical_path: CriticalPath


def plan_figures(evaluation: Evaluation, budget: CostOptions | None = None) -> PlanFigures:
    registrations = evaluation.registrations
    return PlanFigures(
        estimate(registrations, budget), quota.gpu_quota(registrations), critical_path.analyse(registrations)
    )


def plan_document(
    evaluation: Evaluation,
    verdicts: list[Verdict],
    budget: CostOptions | None = None,
    *,
    figures: PlanFigures | None = None,
) -> dict[str, Any]:
    """plan.json's content; `figures` (else computed with `budget`) holds its cost, GPU quota and critical path."""
    figures = figures or plan_figures(evaluation, budget)
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
        "cost": figures.cost.to_json(),
        "gpuQuota": figures.gpu_quota.to_json(),
        "criticalPath": figures.critical_path.to_json(),
    }
    digests = digests_from_environment(evaluation.registrations)
    if digests is not None:
        # Only `python -m planner.diff` sets the one-off key: it shows that a secret changed, never its value.
        document["secretDigests"] = digests
    return document


def write_plan(
    evaluation: Evaluation, verdicts: list[Verdict], out_dir: Path, figures: PlanFigures | None = None
) -> Path:
    """Replace `out_dir` with the plan of this evaluation (`figures`: its figures, else computed without a budget)."""
    figures = figures or plan_figures(evaluation)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    (out_dir / "plan.json").write_text(
        json.dumps(plan_document(evaluation, verdicts, figures=figures), indent=2, sort_keys=False) + "\n"
    )
    graph.write(evaluation.registrations, out_dir)
    (out_dir / "report.txt").write_text(report(evaluation, verdicts, figures))

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


def report(evaluation: Evaluation, verdicts: list[Verdict], figures: PlanFigures) -> str:
    """Everything the summary condenses, for report.txt: the component tree, resources by type, every output,
    every policy message, the cost items, the GPU quota and the critical path step by step."""
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
        lines.append(f"  {key}: {json.dumps(value)}")
    lines.append("")
    mandatory = [v for v in verdicts if v.enforcement == "mandatory"]
    advisory = [v for v in verdicts if v.enforcement != "mandatory"]
    lines.append(f"Policies: {len(mandatory)} mandatory violation(s), {len(advisory)} advisory")
    for v in mandatory + advisory:
        lines.append(f"  [{v.enforcement}] {v.policy}: {v.message}  ({_resource_name(v)})")
    lines.append("")
    lines += cost.summary_lines(figures.cost)
    lines.append("")
    lines += quota.summary_lines(figures.gpu_quota)
    lines.append("")
    lines += critical_path.summary_lines(figures.critical_path, evaluation.registrations)
    return "\n".join(lines) + "\n"


def _resource_name(verdict: Verdict) -> str:
    return verdict.urn.rsplit("::", 1)[-1] or "stack"


def _wrapped(head: str, items: list[str], width: int = 118, mark: str = ",") -> list[str]:
    """`head` then `items` separated by `mark`, continued on indented lines at `width`."""
    lines = [head]
    for item in items:
        separator = "" if lines[-1] == head else mark
        if len(lines[-1]) + len(separator) + 1 + len(item) > width and lines[-1] != head:
            lines[-1] += separator
            lines.append(f"    {item}")
        else:
            lines[-1] += f"{separator} {item}"
    return lines


def _short(text: str, width: int = 118) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _components_lines(evaluation: Evaluation) -> list[str]:
    """The platform's parts (children of the outermost component), each with the resources below it."""
    urns = {r.urn for r in evaluation.registrations}
    children: dict[str, list[Registration]] = {}
    for r in evaluation.registrations:
        children.setdefault(r.parent, []).append(r)

    def resources_below(urn: str) -> int:
        return sum(1 if k.custom else resources_below(k.urn) for k in children.get(urn, []))

    top = [r for r in evaluation.registrations if not r.custom and r.parent not in urns]
    parts = [r for r in evaluation.registrations if not r.custom and r.parent in {t.urn for t in top}] or top
    items = [f"{p.type.split(':')[-1]} {p.name} ({resources_below(p.urn)})" for p in parts]
    return _wrapped(f"Components ({len(parts)}; resources below each):", items)


def _resources_line(evaluation: Evaluation) -> str:
    custom = [r for r in evaluation.registrations if r.custom]
    providers = Counter(r.type.split(":")[0] for r in custom)
    named = {"azure-native": "Azure", "kubernetes": "Kubernetes", "pulumi": "providers"}
    helm = sum(1 for r in custom if r.type == HELM_RELEASE)
    parts = [
        f"{n} {named.get(p, p)}" + (f" ({helm} Helm releases)" if p == "kubernetes" and helm else "")
        for p, n in providers.most_common()
    ]
    return f"Resources: {len(custom)} to create: {', '.join(parts)}"


def _policy_lines(verdicts: list[Verdict]) -> list[str]:
    """The verdict line, every mandatory violation in full, advisories one line per policy."""
    mandatory = [v for v in verdicts if v.enforcement == "mandatory"]
    advisory = [v for v in verdicts if v.enforcement != "mandatory"]
    lines = [f"Policies: {len(mandatory)} mandatory violation(s), {len(advisory)} advisory"]
    lines += [f"  [mandatory] {v.policy}: {v.message}  ({_resource_name(v)})" for v in mandatory]
    by_policy: dict[str, list[str]] = {}
    for v in advisory:
        by_policy.setdefault(v.policy, []).append(_resource_name(v))
    shown = list(by_policy.items())[:ADVISORY_POLICIES_SHOWN]
    lines += [_short(f"  [advisory] {policy} ({len(names)}): {', '.join(names)}") for policy, names in shown]
    if len(by_policy) > len(shown):
        lines.append(f"  … {len(by_policy) - len(shown)} more advisory policies in report.txt")
    return lines


ADVISORY_POLICIES_SHOWN = 6


def _cost_lines(report: CostReport) -> list[str]:
    region = report.region or "no Azure region"
    totals = ", ".join(f"{m} {format_usd(report.monthly(m))}" for m in MEASURES)
    line = f"Cost (USD/month, Azure list prices {report.prices_as_of}, {region}): {totals}"
    budget = cost.budget_line(report)
    details = [budget] if budget is not None else []
    if report.fine_tuning is not None:
        ft = report.fine_tuning
        details.append(f"fine-tuning: {format_usd(ft.gpu_hour)}/GPU-hour ({ft.vm_size}{' spot' if ft.spot else ''})")
    if report.schedules:
        saving = sum(s.saving for s in report.schedules)
        details.append(f"serving schedules save {format_usd(saving)}/month")
    if report.problems:
        details.append(f"{len(report.problems)} pricing problem(s), see report.txt")
    return [line] + (_wrapped(" ", details, mark=";") if details else [])


def _quota_line(gpu: GpuQuota) -> str:
    if not gpu.families:
        return quota.summary_lines(gpu)[0]
    families = ", ".join(
        f"{family}{' (spot)' if family == quota.SPOT_QUOTA else ''} {gpu.vcpus(family)} vCPUs"
        for family, _ in gpu.ordered()
    )
    return f"GPU quota to request in {gpu.region or 'the region'} before the first `up`: {families}"


def _critical_path_lines(path: CriticalPath) -> list[str]:
    # The steps that take the time; the rest of the path is seconds each.
    slow = [
        f"{s.type.split(':')[-1]} {s.name} {critical_path.minutes(s.seconds)}"
        for s in path.path
        if s.seconds >= SLOW_STEP_SECONDS
    ]
    head = (
        f"Deployment time: critical path {critical_path.minutes(path.seconds)} (sum of all "
        f"{critical_path.minutes(path.sum_seconds)}), its slow steps:"
    )
    return _wrapped(head, slow or ["none"])


SLOW_STEP_SECONDS = 120


def secrets_needed(stack_file: Mapping[str, Any]) -> tuple[list[str], list[str]] | None:
    """(secret keys this stack's config requires, those of them not in the stack file), or None when the stack
    file's config does not validate (the evaluation reports that)."""
    from components.config import NAMESPACE, ConfigError, required_secret_keys

    try:
        config = platform_config_of(stack_file)
    except ConfigError:
        return None
    required = [f"{NAMESPACE}:{key}" for key in required_secret_keys(config)]
    return required, [key for key in required if key not in stack_file]


def _secrets_lines(evaluation: Evaluation) -> list[str]:
    needs = secrets_needed(evaluation.stack_config)
    if needs is None:
        return []
    required, missing = needs
    if not missing:
        return [f"Secrets: all {len(required)} this stack needs are in the stack file ({', '.join(required)})"]
    return [
        *_wrapped("Secrets this stack needs and its stack file lacks (planned with placeholders):", missing),
        f"  set each with `pulumi config set --secret <key> --stack {evaluation.stack}` before `make preview`",
    ]


def summary(
    evaluation: Evaluation,
    verdicts: list[Verdict],
    budget: CostOptions | None = None,
    *,
    figures: PlanFigures | None = None,
    out_dir: Path | None = None,
    graph_on_terminal: bool = False,
) -> str:
    """The plan on one screen; report.txt, plan.json and graph.mmd in `out_dir` hold the detail. `figures` (else
    computed with `budget`): the plan's figures."""
    figures = figures or plan_figures(evaluation, budget)
    lines = [f"Plan of {evaluation.project}/{evaluation.stack} (offline; Pulumi mocks, preview semantics)", ""]
    lines += _components_lines(evaluation)
    lines.append(_resources_line(evaluation))
    lines += _wrapped(
        f"Outputs ({len(evaluation.outputs)}; values in plan.json):",
        [k + (" [secret]" if v == SECRET else "") for k, v in redact(evaluation.outputs).items()],
    )
    lines.append("")
    lines += _policy_lines(verdicts)
    lines += _cost_lines(figures.cost)
    lines.append(_quota_line(figures.gpu_quota))
    lines += _critical_path_lines(figures.critical_path)
    lines += _secrets_lines(evaluation)
    if graph_on_terminal:
        lines += ["", "Graph (Mermaid):", graph.mermaid(evaluation.registrations).rstrip(), ""]
    if out_dir is not None:
        lines += [
            "",
            f"Wrote {out_dir}: plan.json, report.txt (the full report), graph.mmd, manifests/, helm/, "
            "policy-config.json",
        ]
    mandatory = any(v.enforcement == "mandatory" for v in verdicts)
    stack = evaluation.stack
    lines.append(
        f"Next: fix the mandatory violation(s) above and run `make plan STACK={stack}` again"
        if mandatory
        else f"Next: `make render STACK={stack}` (charts rendered and checked), then `make preview STACK={stack}`"
    )
    return "\n".join(lines)
