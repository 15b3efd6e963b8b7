"""What really lands on the clusters: every Helm release of every stack rendered with its real chart.

Each release is rendered once per session with `helm template` (planner.charts) at its cluster's Kubernetes
version, with the values, namespace and API versions the Release uses, and the objects are checked: they are
valid against the real schemas; GPU pods and GPU node agents tolerate the GPU nodes' taints; NIM serves LoRA
adapters from a model cache within its startup budget; containers carry requests and a memory limit; no Service
is exposed through a load balancer. The NeMo microservices chart is only on NGC: its values are checked against
facts/charts instead (tests/test_nemo_nim.py).

An assertion that fails today because the values still need fixing is marked `xfail(strict=True)` for exactly
that stack and release, with the values key that fixes it; fixing the values makes the mark fail, so it goes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from support.plans import plan_of
from support.rendered import (
    CHARTS_DIR,
    NGC_ONLY,
    NIM,
    STACKS,
    containers,
    crds_of,
    helm,
    nim_releases,
    pod_specs,
    release_of,
    releases,
    rendered_of,
    rendered_release,
    requests_gpu,
    skip_reason,
    stack_releases,
    tolerates,
)
from support.schemas import ARGO_KINDS, CRD_FACTS, format_path, validate_argo, validate_core, validate_custom

from components.config import GPU_TAINT
from components.nim import startup_seconds
from planner.charts import RenderError, chart_source, platform_config, render
from tools.derive_reference_facts import crd_facts

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

# Custom resources with no schema offline: the Prometheus Operator's CRDs are neither in the reference data nor
# rendered by any chart we install (they come with the cluster's monitoring stack).
NO_OFFLINE_SCHEMA = {("monitoring.coreos.com", "ServiceMonitor")}
NIM_CHART = "nim-llm"


def case(stack: str, release: str, failing: Mapping[tuple[str, str], str]) -> Any:
    """A (stack, release) parameter, expected to fail (strictly) where `failing` says why."""
    keys = [release, NIM] if release in nim_releases(stack) else [release]
    reason = next((failing[(s, k)] for k in keys for s in (stack, "*") if (s, k) in failing), None)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(stack, release, id=f"{stack}-{release}", marks=marks)


def cases(failing: Mapping[tuple[str, str], str]) -> list[Any]:
    return [case(stack, release, failing) for stack, release in stack_releases()]


def taint_parts(taint: str) -> tuple[str, str, str]:
    """`key=value:Effect` (AKS node taint syntax) -> (key, value, effect)."""
    key_value, _, effect = taint.partition(":")
    key, _, value = key_value.partition("=")
    return key, value, effect


@cache
def gpu_node_taints(stack: str) -> tuple[tuple[str, str, str], ...]:
    """Every taint some GPU node of the stack carries: the AKS GPU pools' (with the spot taint on spot pools),
    or on an existing cluster the GPU taint the platform assumes."""
    gpu_taint = (GPU_TAINT.key, GPU_TAINT.value, str(GPU_TAINT.effect))
    taints: set[tuple[str, str, str]] = {gpu_taint}
    for pool in plan_of(stack).of_type("azure-native:containerservice:AgentPool"):
        pool_taints = [taint_parts(t) for t in plan_of(stack).inputs(pool).get("nodeTaints") or []]
        if gpu_taint in pool_taints:
            taints.update(pool_taints)
    return tuple(sorted(taints))


def all_objects(stack: str, release: str) -> Iterator[dict[str, Any]]:
    yield from crds_of(stack, release)
    yield from rendered_release(stack, release).objects


# ----------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_is_rendered_but_the_ngc_only_chart(stack: str) -> None:
    stack_render = rendered_of(stack)
    rendered = {r.release.label for r in stack_render.rendered}
    expected = {f"{cluster}/{name}" for cluster, names in releases(stack).items() for name in names}
    assert rendered == expected
    assert set(stack_render.unavailable) == {NGC_ONLY[stack]}
    assert "published only on NGC" in str(stack_render.unavailable[NGC_ONLY[stack]])
    for rendered_release_ in stack_render.rendered:
        assert rendered_release_.objects, f"{rendered_release_.release.label} rendered no objects"


def test_a_values_change_that_breaks_a_template_fails_the_render_with_the_charts_message() -> None:
    """mlflow's deployment refuses basic auth and OIDC at once; helm's error carries the chart's own words."""
    release = release_of("dev", "mlflow")
    broken = json.loads(json.dumps(release.values))
    broken.setdefault("auth", {})["enabled"] = True
    broken.setdefault("oidcAuth", {})["enabled"] = True
    chart_dir = chart_source(release, CHARTS_DIR, helm(), offline=True)
    with pytest.raises(RenderError, match="oidcAuth and auth are mutually exclusive"):
        render(dataclasses.replace(release, values=broken), chart_dir, helm())


# ----------------------------------------------------------------------------------------------------------
# Schemas
# ----------------------------------------------------------------------------------------------------------


@cache
def crd_validators(stack: str) -> dict[tuple[str, str], dict[str, Any]]:
    """CRD facts of every CRD the stack's charts render, for custom resources facts/crds does not cover."""
    found = {}
    for cluster_names in releases(stack).values():
        for name in cluster_names:
            for crd in crds_of(stack, name):
                facts = crd_facts(crd, f"{name} chart")
                found[(facts["group"], facts["kind"])] = facts
    return found


def schema_errors(obj: dict[str, Any], kubernetes_version: str, stack_crds: Mapping[tuple[str, str], Any]) -> list[str]:
    kind, api_version = str(obj.get("kind", "")), str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    if (group, kind) in NO_OFFLINE_SCHEMA:
        return []
    if kind in ARGO_KINDS:
        return validate_argo(obj)
    if (CRD_FACTS / f"{group}_{kind}.json").exists():
        return validate_custom(obj)
    if (group, kind) in stack_crds:
        schema = stack_crds[(group, kind)]["versions"].get(version)
        if schema is None:
            return [f"apiVersion: {api_version} is not served by the rendered {kind} CRD"]
        return [f"{format_path(e.absolute_path)}: {e.message}" for e in Draft202012Validator(schema).iter_errors(obj)]
    return validate_core(obj, kubernetes_version)


@pytest.mark.parametrize(("stack", "release"), cases({}))
def test_rendered_objects_are_valid(stack: str, release: str) -> None:
    kubernetes_version = release_of(stack, release).kubernetes_version
    stack_crds = crd_validators(stack)
    problems = [
        f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}: {error}"
        for obj in all_objects(stack, release)
        for error in schema_errors(obj, kubernetes_version, stack_crds)
    ]
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------------------------
# GPU scheduling
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "release"), cases({}))
def test_pods_requesting_gpus_tolerate_the_gpu_taint(stack: str, release: str) -> None:
    untolerated = [
        where
        for obj in rendered_release(stack, release).objects
        for where, spec in pod_specs(obj)
        if requests_gpu(spec) and not tolerates(spec.get("tolerations"), GPU_TAINT.key, GPU_TAINT.value, "NoSchedule")
    ]
    assert not untolerated, f"request nvidia.com/gpu without tolerating {GPU_TAINT.key}: {untolerated}"


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_gpu_node_agents_tolerate_every_taint_of_gpu_nodes(stack: str) -> None:
    """The operator's node agents (the operands it creates from the ClusterPolicy, and the NFD worker that labels
    GPU nodes) must run on every GPU node, spot pools included."""
    taints = gpu_node_taints(stack)
    assert len(taints) > 1, "the shipped AKS stacks have a spot GPU pool"
    objects = rendered_release(stack, "gpu-operator").objects
    (policy,) = (o for o in objects if o.get("kind") == "ClusterPolicy")
    (nfd_worker,) = (o for o in objects if o.get("kind") == "DaemonSet" and "worker" in o["metadata"]["name"])
    agents = {
        "ClusterPolicy daemonsets": policy["spec"]["daemonsets"].get("tolerations"),
        "NFD worker": nfd_worker["spec"]["template"]["spec"].get("tolerations"),
    }
    missing = [
        f"{agent} do not tolerate {taint}"
        for agent, tols in agents.items()
        for taint in taints
        if not tolerates(tols, *taint)
    ]
    assert not missing, "\n".join(missing)


def nim_cases() -> list[Any]:
    return [
        pytest.param(stack, release, id=f"{stack}-{release}")
        for stack, release in stack_releases()
        if release in nim_releases(stack)
    ]


@pytest.mark.parametrize(("stack", "release"), nim_cases())
def test_nim_serving_pods_stay_off_spot_nodes(stack: str, release: str) -> None:
    spot = [t for t in gpu_node_taints(stack) if t[0] == "kubernetes.azure.com/scalesetpriority"]
    for obj in rendered_release(stack, release).objects:
        for where, spec in pod_specs(obj):
            assert not any(tolerates(spec.get("tolerations"), *taint) for taint in spot), f"{where} tolerates spot"


# ----------------------------------------------------------------------------------------------------------
# NIM
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "release"), nim_cases())
def test_nim_statefulset_serves_adapters_from_a_model_cache_within_the_startup_budget(stack: str, release: str) -> None:
    rendered = rendered_release(stack, release)
    assert rendered.release.chart == NIM_CHART
    model = next(m for m in platform_config(stack).nim.models if m.name == release)
    (statefulset,) = (o for o in rendered.objects if o.get("kind") == "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    (nim,) = (c for c in pod["containers"] if c["name"] == "nim-llm")

    env = {item["name"]: item.get("value") for item in nim.get("env") or []}
    if model.lora.enabled:
        assert env.get("NIM_PEFT_SOURCE", "").startswith("http://nemo-entity-store."), env
        assert env.get("NIM_PEFT_REFRESH_INTERVAL") == str(model.lora.refresh_interval_seconds)

    persistence = rendered.release.values["persistence"]
    (claim,) = statefulset["spec"].get("volumeClaimTemplates") or [None]
    assert claim is not None, "the model cache is a PVC per replica"
    assert claim["spec"]["storageClassName"] == persistence["storageClass"]
    assert claim["spec"]["resources"]["requests"]["storage"] == persistence["size"]
    assert claim["metadata"]["name"] in {m["name"] for m in nim.get("volumeMounts") or []}

    probe = nim["startupProbe"]
    budget = probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= startup_seconds(model), (
        f"startup probe allows {budget}s, the model needs {startup_seconds(model)}s"
    )


# ----------------------------------------------------------------------------------------------------------
# Resources and exposure
# ----------------------------------------------------------------------------------------------------------

# Containers whose chart offers no values key for their resources, with the template that was checked.
RESOURCES_NOT_SETTABLE = {
    ("mlflow", "Deployment/mlflow/dbchecker"): "mlflow 1.11.5 templates/deployment.yaml",
    ("mlflow", "Deployment/mlflow/ini-file-initializer"): "mlflow 1.11.5 templates/deployment.yaml",
    ("gpu-operator", "Job/gpu-operator-cleanup-gpucluster/cleanup-gpucluster"): "templates/cleanup_gpucluster.yaml",
    ("gpu-operator", "Job/gpu-operator-upgrade-crd/upgrade-crd"): "templates/upgrade_crd.yaml",
}

# Values that still leave containers without requests or a memory limit, keyed by (stack or "*", release), with
# the keys that would set them; each is an xfail(strict=True). Empty since issue 16 phase 2 set them all.
RESOURCES_TO_FIX: dict[tuple[str, str], str] = {}


def missing_resources(pod_spec: Mapping[str, Any]) -> Iterator[str]:
    for container in containers(pod_spec):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        wanted = {
            "requests.cpu": requests.get("cpu"),
            "requests.memory": requests.get("memory"),
            "limits.memory": limits.get("memory"),
        }
        absent = [key for key, value in wanted.items() if value in (None, "")]
        if absent:
            yield f"{container['name']}: no {', '.join(absent)}"


@pytest.mark.parametrize(("stack", "release"), cases(RESOURCES_TO_FIX))
def test_containers_have_cpu_and_memory_requests_and_a_memory_limit(stack: str, release: str) -> None:
    problems = [
        f"{where} {problem}"
        for obj in rendered_release(stack, release).objects
        for where, spec in pod_specs(obj)
        for problem in missing_resources(spec)
        if (release, f"{where}/{problem.split(':')[0]}") not in RESOURCES_NOT_SETTABLE
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_no_service_is_exposed_through_a_load_balancer(stack: str) -> None:
    """Only the gateway has a public entry, and Envoy Gateway creates its Service from the authored EnvoyProxy at
    run time; no chart and no authored object may add another."""
    rendered = [
        f"{r.release.label}: Service/{o['metadata']['name']}"
        for r in rendered_of(stack).rendered
        for o in r.objects
        if o.get("kind") == "Service" and (o.get("spec") or {}).get("type") == "LoadBalancer"
    ]
    plan = plan_of(stack)
    authored = [
        f"authored: Service/{r.name}"
        for r in plan.of_type("kubernetes:core/v1:Service")
        if (plan.inputs(r).get("spec") or {}).get("type") == "LoadBalancer"
    ]
    assert not rendered + authored
