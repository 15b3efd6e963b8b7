"""Each shipped stack's Helm releases rendered once per test session with the real charts (planner.charts).

Charts come from the reference chart sources (`../shared/reference/helm-charts`, or `LLMOPS_CHARTS_DIR`), never
from the network; without them the rendered-chart tests skip with one line saying so. Helm is the one on PATH or
the pinned one the tooling installs from npm.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.charts import (
    CHARTS_DIR_ENV,
    HelmRelease,
    RenderedRelease,
    StackRender,
    charts_dir_default,
    platform_config,
    render_stack,
)
from planner.evaluate import PROJECT_DIR
from planner.helm_tool import helm_binary
from support.plans import plan_of

CHARTS_DIR = charts_dir_default()
CRD_CACHE = PROJECT_DIR / "build" / "cache" / "rendered-crds"
RENDER_CACHE = PROJECT_DIR / "build" / "cache" / "renders"

STACKS = ("dev", "staging", "prod")
# The platform's Helm releases per cluster; every stack adds one nim-llm release per configured model and, on the
# GPU cluster, the GPU Operator unless an existing cluster comes with it. Tests are parametrized over these so a
# release-specific expected failure can be marked; a test checks they match what each plan registers.
PLATFORM_RELEASES = {
    "mgmt": ("argo-workflows", "argocd", "envoy-gateway-internal", "mlflow"),
    "gpu": ("cert-manager", "envoy-gateway", "gpu-operator", "volcano"),
}
# Stands for every nim-llm release (one per configured model) in tables keyed by release.
NIM = "<nim-llm>"
NGC_ONLY = {stack: f"{stack}-gpu/nemo" for stack in STACKS}


@functools.cache
def nim_releases(stack: str) -> tuple[str, ...]:
    return tuple(model.name for model in platform_config(stack).nim.models)


@functools.cache
def releases(stack: str) -> dict[str, tuple[str, ...]]:
    """`<cluster>` -> release names the stack's plan registers, the NGC-only NeMo release aside."""
    existing = platform_config(stack).gpu_cluster.existing
    operator_preinstalled = existing is not None and existing.gpu_operator_preinstalled
    gpu = [name for name in PLATFORM_RELEASES["gpu"] if not (name == "gpu-operator" and operator_preinstalled)]
    return {
        f"{stack}-mgmt": PLATFORM_RELEASES["mgmt"],
        f"{stack}-gpu": tuple(sorted([*gpu, *nim_releases(stack)])),
    }


def stack_releases() -> list[tuple[str, str]]:
    return [(stack, name) for stack in STACKS for names in releases(stack).values() for name in names]


# Charts the program installs that are not Helm releases, so the render step never sees them, with the reason.
NOT_RENDERED_CHARTS = {
    # Envoy Gateway's CRD chart, applied by Pulumi as a helm.v4.Chart (components/gateway.py): CRDs only, no
    # workload to scan, and not among the reference chart sources; its values keys are checked against the
    # upstream values.yaml in tests/test_day2_secrets.py.
    "gateway-crds-helm": "helm.v4.Chart of CRDs only; not in the reference chart sources",
}


def skip_reason() -> str | None:
    if (CHARTS_DIR / "argo-cd-10.1.1" / "Chart.yaml").is_file():
        return None
    return f"no chart sources in {CHARTS_DIR} (needs ../shared/reference/helm-charts or ${CHARTS_DIR_ENV})"


@functools.cache
def helm() -> Path:
    return helm_binary()


@functools.cache
def rendered_of(stack: str) -> StackRender:
    if reason := skip_reason():
        pytest.skip(reason)
    evaluation, config = plan_of(stack).evaluation, platform_config(stack)
    return render_stack(evaluation, config, CHARTS_DIR, helm(), offline=True, cache_dir=RENDER_CACHE)


def rendered_release(stack: str, name: str) -> RenderedRelease:
    return rendered_of(stack).release(name)


def _parse_crd(text: str) -> dict[str, Any]:
    # CRDs run to megabytes and are the same in every stack and run: parse each once, keep it as JSON.
    digest = hashlib.sha256(text.encode()).hexdigest()
    cached = CRD_CACHE / f"{digest}.json"
    if cached.is_file():
        parsed: dict[str, Any] = json.loads(cached.read_text())
        return parsed
    parsed = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(parsed))
    return parsed


@functools.cache
def crds_of(stack: str, name: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in map(_parse_crd, rendered_release(stack, name).crd_documents) if d)


# ----------------------------------------------------------------------------------------------------------
# Pod templates
# ----------------------------------------------------------------------------------------------------------


def pod_specs(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(`<Kind>/<name>`, pod spec) of a workload object, a Pod, or a CronJob."""
    where = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        yield where, spec
        return
    holder = (spec.get("jobTemplate") or {}).get("spec") or spec
    template = holder.get("template") if isinstance(holder, Mapping) else None
    if isinstance(template, Mapping) and isinstance(template.get("spec"), Mapping):
        yield where, template["spec"]


def containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def requests_gpu(pod_spec: Mapping[str, Any]) -> bool:
    return any(
        "nvidia.com/gpu" in ((c.get("resources") or {}).get(part) or {})
        for c in containers(pod_spec)
        for part in ("requests", "limits")
    )


def tolerates(tolerations: Any, key: str, value: str, effect: str) -> bool:
    """Whether a toleration list lets a pod onto a node tainted `key=value:effect` (Kubernetes' matching)."""
    for toleration in tolerations or []:
        if toleration.get("effect") not in (None, "", effect):
            continue
        if toleration.get("operator") == "Exists":
            if toleration.get("key") in (None, "", key):
                return True
        elif toleration.get("key") == key and str(toleration.get("value", "")) == value:
            return True
    return False


def release_of(stack: str, name: str) -> HelmRelease:
    return rendered_release(stack, name).release
