"""Rules for GPU capacity: GPU node pools, who owns the NVIDIA driver, and how NIM is scheduled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, StackValidationArgs

from .common import (
    ENVIRONMENT_KNOBS,
    MANAGEMENT_KNOBS,
    helm_releases,
    helm_values,
    is_kind,
    is_management,
    knobs,
    resource_environment,
    resources_of,
)
from .gpu_sizes import is_gpu_vm_size
from .props import chart_name, get_path, is_mapping, items_of, merged, strings_of, truthy
from .rules import ADVISORY, MANDATORY, Rules, knob
from .tokens import AGENT_POOL, GPU_RESOURCE, GPU_TAINT_KEY, HELM_RELEASE, MANAGED_CLUSTER

RULES = Rules()

NIM_CHART = "nim-llm"
GPU_OPERATOR_CHART = "gpu-operator"
NIM_GROUP = "apps.nvidia.com"

# The values of chart nim-llm 1.1.2 that the NIM rules read (a release's values merge over these).
NIM_LLM_DEFAULTS: dict[str, Any] = {
    "resources": {"limits": {GPU_RESOURCE: 1}},
    "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    "persistence": {
        "enabled": False,
        "existingClaim": "",
        "stsPersistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
    },
    "statefulSet": {"enabled": True},
    "startupProbe": {"enabled": True, "initialDelaySeconds": 40, "periodSeconds": 10, "failureThreshold": 180},
}
# gpu-operator v26.7.0 installs the driver unless told otherwise.
GPU_OPERATOR_DRIVER_DEFAULT = True


def _is_gpu_pool(pool: Any) -> bool:
    return is_gpu_vm_size(str(get_path(pool, "vmSize", default=""))) or get_path(pool, "gpuProfile") is not None


def gpu_pools_of(resource_type: str, name: str, props: Any, config: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, pool properties) of each GPU pool an AgentPool or a (non-management) cluster declares."""
    if resource_type == AGENT_POOL:
        return [(name, props)] if _is_gpu_pool(props) else []
    if resource_type != MANAGED_CLUSTER or is_management(name, config):
        return []
    return [
        (f"{name}/{get_path(profile, 'name')}", profile)
        for profile in items_of(get_path(props, "agentPoolProfiles"))
        if _is_gpu_pool(profile)
    ]


def _gpu_pools(args: ResourceValidationArgs, config: dict[str, Any]) -> list[tuple[str, Any]]:
    """The GPU pools the resource declares; not applicable when none."""
    pools = gpu_pools_of(args.resource_type, args.name, args.props, config)
    if not pools:
        args.not_applicable("no GPU node pool")
    return pools


def _taint_key_effect(taint: str) -> tuple[str, str]:
    key_value, _, effect = taint.partition(":")
    return key_value.split("=", 1)[0], effect


_GPU_TAINT_SCHEMA = PolicyConfigSchema(properties=dict(MANAGEMENT_KNOBS))


@RULES.resource("gpu-pools-tainted", MANDATORY, _GPU_TAINT_SCHEMA)
def gpu_pools_tainted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """GPU node pools carry the `nvidia.com/gpu` NoSchedule taint."""
    config = knobs(args, _GPU_TAINT_SCHEMA)
    for label, pool in _gpu_pools(args, config):
        taints = [_taint_key_effect(t) for t in strings_of(get_path(pool, "nodeTaints"))]
        if not any(key == GPU_TAINT_KEY and effect in ("NoSchedule", "NoExecute") for key, effect in taints):
            report_violation(
                f"GPU pool {label!r} is not tainted `{GPU_TAINT_KEY}=…:NoSchedule`; CPU workloads would land "
                "on GPU nodes (the GPU Operator and NIM tolerate exactly this taint).",
                None,
            )


_SCALE_FROM_ZERO_SCHEMA = PolicyConfigSchema(
    properties={
        **ENVIRONMENT_KNOBS,
        **MANAGEMENT_KNOBS,
        "maxIdleNodes": knob("integer", 0, "Largest minimum node count a GPU pool may keep outside production."),
    }
)


@RULES.resource("gpu-pools-scale-from-zero", ADVISORY, _SCALE_FROM_ZERO_SCHEMA)
def gpu_pools_scale_from_zero(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Outside production, GPU node pools autoscale from zero."""
    config = knobs(args, _SCALE_FROM_ZERO_SCHEMA)
    pools = _gpu_pools(args, config)
    environment = resource_environment(args, config)
    if environment in config["productionEnvironments"]:
        args.not_applicable("production keeps warm GPU nodes")
    limit = int(config["maxIdleNodes"])
    for label, pool in pools:
        if get_path(pool, "enableAutoScaling") is not True:
            report_violation(
                f"GPU pool {label!r} is not autoscaled; outside production GPU pools scale from zero.", None
            )
            continue
        minimum = int(get_path(pool, "minCount", default=0))
        if minimum > limit:
            report_violation(
                f"GPU pool {label!r} keeps {minimum} idle node(s) in {environment or 'a non-production stack'} "
                f"(minCount {minimum} > {limit}); idle GPUs are billed by the hour.",
                None,
            )


def _operator_installs_driver(release: Any) -> bool:
    enabled = get_path(helm_values(release.props), "driver", "enabled", default=GPU_OPERATOR_DRIVER_DEFAULT)
    return truthy(enabled)


@RULES.stack("gpu-driver-ownership", MANDATORY, _GPU_TAINT_SCHEMA)
def gpu_driver_ownership(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Exactly one party installs the NVIDIA driver: AKS GPU pools use gpuProfile.driver 'None' exactly when the GPU
    Operator's driver.enabled is true."""
    config = knobs(args, _GPU_TAINT_SCHEMA)
    operators = helm_releases(args, GPU_OPERATOR_CHART)
    pools = [
        (label, resource.urn, pool)
        for resource in resources_of(args, AGENT_POOL, MANAGED_CLUSTER)
        for label, pool in gpu_pools_of(resource.resource_type, resource.name, resource.props, config)
    ]
    if not pools or not operators:
        args.not_applicable("no GPU Operator release next to AKS GPU pools")
    operator_driver = {release.name: _operator_installs_driver(release) for release in operators}
    for label, urn, pool in pools:
        aks_installs = str(get_path(pool, "gpuProfile", "driver", default="Install")) != "None"
        for release, operator_installs in operator_driver.items():
            if aks_installs and operator_installs:
                report_violation(
                    f"GPU pool {label!r} gets the NVIDIA driver from AKS (gpuProfile.driver is not 'None') and "
                    f"GPU Operator release {release!r} installs it too (driver.enabled); the two fight over "
                    "the kernel module. Create the pool with gpuProfile.driver 'None'.",
                    urn,
                )
            elif not aks_installs and not operator_installs:
                report_violation(
                    f"GPU pool {label!r} skips the AKS driver (gpuProfile.driver 'None') but GPU Operator "
                    f"release {release!r} sets driver.enabled false; its nodes would have no NVIDIA driver.",
                    urn,
                )


# ------------------------------------------------------------------------------------------------------
# NIM: the nim-llm chart, or the NIM Operator's NIMService / NIMPipeline resources
# ------------------------------------------------------------------------------------------------------


def is_nim_release(resource_type: str, props: Any) -> bool:
    return resource_type == HELM_RELEASE and chart_name(props) == NIM_CHART


def nim_values(props: Any) -> Any:
    """A nim-llm release's values with the chart's defaults merged in."""
    return merged(NIM_LLM_DEFAULTS, helm_values(props))


def _nim_specs(args: ResourceValidationArgs) -> Iterator[tuple[str, str, Any]]:
    """(label, shape, spec) of each NIM deployment the resource declares; shape is "chart" for nim-llm
    values (defaults merged in) and "operator" for a NIMService spec."""
    if is_nim_release(args.resource_type, args.props):
        yield args.name, "chart", nim_values(args.props)
    elif is_kind(args.resource_type, NIM_GROUP, "NIMService"):
        yield args.name, "operator", get_path(args.props, "spec", default={})
    elif is_kind(args.resource_type, NIM_GROUP, "NIMPipeline"):
        for service in items_of(get_path(args.props, "spec", "services")):
            if get_path(service, "enabled", default=True) is not False:
                yield f"{args.name}/{get_path(service, 'name')}", "operator", get_path(service, "spec", default={})
    else:
        args.not_applicable("not a NIM deployment")


def _gpu_count(value: Any) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0


@RULES.resource("nim-requests-gpus", MANDATORY)
def nim_requests_gpus(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """NIM deployments request at least one `nvidia.com/gpu`."""
    for label, _, spec in _nim_specs(args):
        limits = get_path(spec, "resources", "limits", default={})
        requests = get_path(spec, "resources", "requests", default={})
        gpus = max(
            _gpu_count(get_path(limits, GPU_RESOURCE, default=0)),
            _gpu_count(get_path(requests, GPU_RESOURCE, default=0)),
        )
        if gpus < 1:
            report_violation(
                f"NIM {label!r} requests no GPU (resources.limits['{GPU_RESOURCE}']); it would be scheduled "
                "on a node without one and fail to load the model.",
                None,
            )


_TOLERATION_SCHEMA = PolicyConfigSchema(
    properties={
        "gpuTaintValue": knob(
            "string", "present", f"Value of the `{GPU_TAINT_KEY}` taint, for tolerations that use operator Equal."
        )
    }
)


def tolerates_gpu_taint(toleration: Any, taint_value: str) -> bool:
    key = str(get_path(toleration, "key", default="") or "")
    operator = str(get_path(toleration, "operator", default="Equal") or "Equal")
    effect = str(get_path(toleration, "effect", default="") or "")
    if effect not in ("", "NoSchedule"):
        return False
    if key == "":
        return operator == "Exists"
    if key != GPU_TAINT_KEY:
        return False
    return operator == "Exists" or str(get_path(toleration, "value", default="") or "") == taint_value


@RULES.resource("nim-tolerates-gpu-taint", MANDATORY, _TOLERATION_SCHEMA)
def nim_tolerates_gpu_taint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """NIM deployments tolerate the `nvidia.com/gpu` taint of GPU nodes."""
    taint_value = str(knobs(args, _TOLERATION_SCHEMA)["gpuTaintValue"])
    for label, _, spec in _nim_specs(args):
        tolerations = items_of(get_path(spec, "tolerations"))
        if not any(tolerates_gpu_taint(t, taint_value) for t in tolerations):
            report_violation(
                f"NIM {label!r} does not tolerate the `{GPU_TAINT_KEY}` NoSchedule taint, so it can never "
                "be scheduled on a GPU node.",
                None,
            )


def _cache_persisted(shape: str, spec: Any) -> bool:
    if shape == "chart":
        return truthy(get_path(spec, "persistence", "enabled", default=False)) or truthy(
            get_path(spec, "nfs", "enabled", default=False)
        )
    storage = get_path(spec, "storage", default={})
    if get_path(storage, "nimCache", "name"):
        return True
    pvc = get_path(storage, "pvc", default={})
    return is_mapping(pvc) and bool(get_path(pvc, "name") or truthy(get_path(pvc, "create", default=False)))


@RULES.resource("nim-persists-model-cache", MANDATORY)
def nim_persists_model_cache(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """NIM deployments keep the model cache on a persistent volume."""
    for label, shape, spec in _nim_specs(args):
        if not _cache_persisted(shape, spec):
            where = "persistence.enabled" if shape == "chart" else "spec.storage (nimCache or pvc)"
            report_violation(
                f"NIM {label!r} keeps its model cache on ephemeral storage ({where} not set); every restart "
                "downloads the model again.",
                None,
            )


_STARTUP_SCHEMA = PolicyConfigSchema(
    properties={
        "minStartupSeconds": knob("integer", 1800, "Time the startup probe must allow for the first model download.")
    }
)


@RULES.resource("nim-startup-allows-model-download", ADVISORY, _STARTUP_SCHEMA)
def nim_startup_allows_model_download(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The NIM startup probe leaves time for the first model download."""
    if not is_nim_release(args.resource_type, args.props):
        args.not_applicable("not a nim-llm release")
    minimum = int(knobs(args, _STARTUP_SCHEMA)["minStartupSeconds"])
    probe = get_path(nim_values(args.props), "startupProbe", default={})
    if not truthy(get_path(probe, "enabled", default=True)):
        report_violation(
            f"NIM {args.name!r} disables its startup probe; the liveness probe would restart the pod "
            "in the middle of the model download.",
            None,
        )
        return
    allowed = int(get_path(probe, "initialDelaySeconds", default=0)) + int(
        get_path(probe, "periodSeconds", default=10)
    ) * int(get_path(probe, "failureThreshold", default=3))
    if allowed < minimum:
        report_violation(
            f"NIM {args.name!r} allows only {allowed}s to start (startupProbe initialDelaySeconds + "
            f"periodSeconds x failureThreshold) but a first model download can take {minimum}s.",
            None,
        )


POLICIES = RULES.policies
