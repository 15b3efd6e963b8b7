"""The GPU cluster: AKS GPU pools or an existing cluster, the GPU Operator, storage classes, NGC credentials."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pulumi.runtime import rpc
from support.chart_values import unknown_values_keys
from support.plans import SEEDED_SECRETS, Plan
from support.schemas import validate_core

from components.catalog import GPU_SKUS
from components.config import (
    GPU_TAINT,
    SPOT_TAINT,
    ConfigError,
    GpuOperatorConfig,
    parse_config,
    raw_config_from_pulumi,
)
from components.gpu import AKS_MODEL_CACHE_CLASS, AKS_SHARED_CLASS, GPU_TOLERATION, SPOT_TOLERATION
from components.gpu_operator import gpu_operator_values
from planner.evaluate import engine_config, stack_config
from planner.values import redact

AGENT_POOL = "azure-native:containerservice:AgentPool"
RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
GPU_CLUSTER = "llmops:gpu:GpuCluster"
OPERATOR_CHART = ("gpu-operator", "v26.7.0")
GPU_TAINT_TEXT = "nvidia.com/gpu=present:NoSchedule"
SPOT_TAINT_TEXT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"


def _in_gpu_cluster(plan: Plan, registration: Any) -> bool:
    return any(a.type == GPU_CLUSTER for a in plan.ancestors(registration))


def _gpu_pools(plan: Plan) -> list[dict[str, Any]]:
    return [
        plan.inputs(r) for r in plan.of_type(AGENT_POOL) if _in_gpu_cluster(plan, r) and r.inputs["vmSize"] in GPU_SKUS
    ]


def _resources(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every `resources` block in Helm values, with its dotted path."""
    if not isinstance(node, dict):
        return []
    found = [(f"{path}.resources", node["resources"])] if "resources" in node else []
    for key, value in node.items():
        found += _resources(value, f"{path}.{key}")
    return found


def _operator_values(plan: Plan) -> dict[str, Any]:
    values: dict[str, Any] = plan.inputs(plan.helm_release("gpu-operator"))["values"]
    return values


# --------------------------------------------------------------------------------------------------------
# AKS GPU pools
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_gpu_pools_leave_the_driver_to_the_operator_and_are_tainted_and_autoscaled(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    registrations = [r for r in plan.of_type(AGENT_POOL) if _in_gpu_cluster(plan, r) and r.inputs["vmSize"] in GPU_SKUS]
    assert len(registrations) == 2
    for registration in registrations:
        pool = plan.inputs(registration)
        assert pool["gpuProfile"] == {"driver": "None"}
        assert GPU_TAINT_TEXT in pool["nodeTaints"]
        assert pool["enableAutoScaling"] is True
        assert 0 <= pool["minCount"] <= pool["maxCount"]
        assert pool["count"] == pool["minCount"]
        assert pool["osSKU"] == "Ubuntu"
        # Every shipped cluster is on a version-moving upgrade channel (tests/test_day2_aks.py).
        assert registration.ignore_changes == ["count", "orchestratorVersion"]


def test_gpu_pools_may_scale_from_zero(dev: Plan, staging: Plan) -> None:
    assert {p["agentPoolName"]: p["minCount"] for p in _gpu_pools(dev)} == {"a100": 0, "a100spot": 0}
    assert {p["agentPoolName"]: p["minCount"] for p in _gpu_pools(staging)} == {"h100": 1, "h100spot": 0}


def test_spot_pools_are_spot_priced_and_carry_both_taints(dev: Plan, staging: Plan) -> None:
    for plan in (dev, staging):
        for pool in _gpu_pools(plan):
            spot = pool["agentPoolName"].endswith("spot")
            assert (pool.get("scaleSetPriority") == "Spot") is spot
            assert (SPOT_TAINT_TEXT in pool["nodeTaints"]) is spot
            assert pool["nodeLabels"]["llmops.io/workload"] == ("training" if spot else "general")
            if spot:
                assert pool["scaleSetEvictionPolicy"] == "Delete"
                assert pool["spotMaxPrice"] == -1


def test_gpu_cluster_has_an_untainted_cpu_pool_for_controllers(dev: Plan) -> None:
    """The system pool is tainted CriticalAddonsOnly: the operator controller and NFD master need CPU nodes."""
    cpu_pools = [
        dev.inputs(r) for r in dev.of_type(AGENT_POOL) if _in_gpu_cluster(dev, r) and r.inputs["vmSize"] not in GPU_SKUS
    ]
    assert [p["agentPoolName"] for p in cpu_pools] == ["services"]
    assert "nodeTaints" not in cpu_pools[0] and "gpuProfile" not in cpu_pools[0]


def test_tolerations_match_the_pool_taints() -> None:
    assert {"key": GPU_TAINT.key, "operator": "Exists", "effect": GPU_TAINT.effect} == GPU_TOLERATION
    assert GPU_TAINT.render() == GPU_TAINT_TEXT
    assert {"key": SPOT_TAINT.key, "operator": "Equal", "value": "spot", "effect": "NoSchedule"} == SPOT_TOLERATION
    assert SPOT_TAINT.render() == SPOT_TAINT_TEXT


# --------------------------------------------------------------------------------------------------------
# Existing cluster (prod)
# --------------------------------------------------------------------------------------------------------


def test_prod_uses_the_existing_cluster_by_secret_kubeconfig(prod: Plan) -> None:
    gpu_cluster = prod.one(GPU_CLUSTER)
    under_gpu = [r for r in prod.registrations if gpu_cluster in prod.ancestors(r)]
    assert not [r.name for r in under_gpu if r.type.startswith("azure-native:")]
    assert not [r.name for r in prod.of_type(AGENT_POOL) if r.inputs["vmSize"] in GPU_SKUS]

    provider = prod.one("pulumi:providers:kubernetes", "prod-gpu-k8s")
    assert provider.parent == gpu_cluster.urn
    assert rpc.is_rpc_secret(provider.inputs["kubeconfig"])
    assert prod.inputs(provider)["kubeconfig"] == SEEDED_SECRETS["llmops:gpuClusterKubeconfig"]
    assert provider.inputs["clusterIdentifier"] == "existing-prod-gpu"


def test_prod_installs_no_gpu_operator_and_no_storage_classes(prod: Plan) -> None:
    assert not [r for r in prod.of_type(RELEASE) if r.inputs.get("chart") == "gpu-operator"]
    assert not [r for r in prod.of_type(STORAGE_CLASS) if _in_gpu_cluster(prod, r)]
    gpu = prod.outputs["gpuCluster"]
    assert gpu["mode"] == "existing"
    assert gpu["gpuOperatorManaged"] is False
    assert gpu["apiEndpoint"] == "https://api.dgxc-llmops-prod.example.nvidia.com:443"
    assert gpu["storageClasses"] == {"modelCache": "dgxc-enterprise-file", "sharedWorkspace": "dgxc-enterprise-file"}
    assert gpu["pools"] == []


# --------------------------------------------------------------------------------------------------------
# GPU Operator
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_gpu_operator_release_is_pinned_and_its_values_exist_in_the_chart(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    registration = plan.helm_release("gpu-operator")
    release = plan.inputs(registration)
    assert (release["chart"], release["version"]) == OPERATOR_CHART
    assert release["repositoryOpts"] == {"repo": "https://helm.ngc.nvidia.com/nvidia"}
    assert release["namespace"] == "gpu-operator"
    assert release["atomic"] is True and release["cleanupOnFail"] is True
    assert registration.provider == plan.one("pulumi:providers:kubernetes", f"{stack}-gpu-k8s").urn
    assert unknown_values_keys(release["values"], *OPERATOR_CHART) == []


def test_gpu_operator_namespace_is_privileged(dev: Plan) -> None:
    namespace = dev.inputs(dev.one("kubernetes:core/v1:Namespace", "dev-gpu-gpu-operator-namespace"))
    assert namespace["metadata"]["name"] == "gpu-operator"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert validate_core(namespace, "1.33") == []


def test_gpu_operator_on_aks_installs_driver_and_toolkit_and_reaches_every_gpu_node(dev: Plan) -> None:
    values = _operator_values(dev)
    assert values["driver"] == {"enabled": True}
    assert values["toolkit"] == {"enabled": True}
    assert values["mig"] == {"strategy": "none"}
    operand_tolerations = values["daemonsets"]["tolerations"]
    nfd_tolerations = values["node-feature-discovery"]["worker"]["tolerations"]
    for tolerations in (operand_tolerations, nfd_tolerations):
        assert GPU_TOLERATION in tolerations
        # dev has a spot GPU pool: without this the operands never reach its nodes.
        assert SPOT_TOLERATION in tolerations
    # Operands tolerate GPU nodes but never request GPUs (the device plugin is what offers them).
    assert not [path for path, resources in _resources(values) if "nvidia.com/gpu" in json.dumps(resources)]


def test_dcgm_service_monitor_only_with_prometheus_crds(dev: Plan) -> None:
    # dev has no Prometheus Operator CRDs; the chart's default would enable the ServiceMonitor.
    assert _operator_values(dev)["dcgmExporter"] == {"enabled": True, "serviceMonitor": {"enabled": False}}

    def dcgm(config: GpuOperatorConfig, prometheus_crds: bool) -> Any:
        values = gpu_operator_values(
            config, install_driver=True, gpu_node_tolerations=[GPU_TOLERATION], prometheus_crds=prometheus_crds
        )
        return values["dcgmExporter"]

    assert dcgm(GpuOperatorConfig(), True) == {"enabled": True, "serviceMonitor": {"enabled": True}}
    assert dcgm(GpuOperatorConfig(dcgm_exporter=False), True) == {
        "enabled": False,
        "serviceMonitor": {"enabled": False},
    }


def test_operator_values_follow_config_and_stay_within_the_chart() -> None:
    config = GpuOperatorConfig(mig_strategy="mixed", driver_version="580.105.08")
    with_driver = gpu_operator_values(
        config, install_driver=True, gpu_node_tolerations=[GPU_TOLERATION], prometheus_crds=True
    )
    assert with_driver["driver"] == {"enabled": True, "version": "580.105.08"}
    assert with_driver["mig"] == {"strategy": "mixed"}
    assert with_driver["daemonsets"]["tolerations"] == [GPU_TOLERATION]
    without_driver = gpu_operator_values(
        GpuOperatorConfig(), install_driver=False, gpu_node_tolerations=[GPU_TOLERATION], prometheus_crds=False
    )
    assert without_driver["driver"] == {"enabled": False}
    for values in (with_driver, without_driver):
        assert unknown_values_keys(values, *OPERATOR_CHART) == []


# --------------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_storage_classes_are_valid_with_the_azure_csi_provisioners(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    classes = {
        obj["metadata"]["name"]: obj
        for obj in (plan.inputs(r) for r in plan.of_type(STORAGE_CLASS) if _in_gpu_cluster(plan, r))
    }
    assert set(classes) == {AKS_MODEL_CACHE_CLASS, AKS_SHARED_CLASS}
    for obj in classes.values():
        assert validate_core(obj, "1.33") == []
        assert obj["allowVolumeExpansion"] is True
        assert obj["reclaimPolicy"] == "Delete"  # not protected outside prod

    model_cache = classes[AKS_MODEL_CACHE_CLASS]
    assert model_cache["provisioner"] == "disk.csi.azure.com"
    assert model_cache["parameters"]["skuName"] == "Premium_LRS"
    assert model_cache["volumeBindingMode"] == "WaitForFirstConsumer"

    shared = classes[AKS_SHARED_CLASS]
    assert shared["provisioner"] == "file.csi.azure.com"
    assert shared["parameters"] == {"skuName": "Premium_LRS", "protocol": "nfs"}

    assert plan.outputs["gpuCluster"]["storageClasses"] == {
        "modelCache": AKS_MODEL_CACHE_CLASS,
        "sharedWorkspace": AKS_SHARED_CLASS,
    }


# --------------------------------------------------------------------------------------------------------
# NGC credentials and secrets
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_ngc_secrets_carry_the_key_only_as_a_secret(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    key = SEEDED_SECRETS["llmops:ngcApiKey"]
    secrets = [
        r
        for r in plan.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] in ("ngc-api", "nvcrimagepullsecret")
    ]
    assert secrets, "NeMo and NIM namespaces get NGC credentials from NgcNamespace"
    gpu_provider = plan.one("pulumi:providers:kubernetes", f"{stack}-gpu-k8s").urn
    for registration in secrets:
        assert registration.provider == gpu_provider
        assert registration.inputs["metadata"]["namespace"] != "gpu-operator"  # public images, no NGC auth
        assert rpc.is_rpc_secret(registration.inputs["stringData"])
        data = plan.inputs(registration)["stringData"]
        if registration.inputs["metadata"]["name"] == "ngc-api":
            assert data == {"NGC_API_KEY": key}
        else:
            auth = json.loads(data[".dockerconfigjson"])["auths"]["nvcr.io"]
            assert (auth["username"], auth["password"]) == ("$oauthtoken", key)

    shown = json.dumps([redact(r.inputs) for r in plan.registrations]) + json.dumps(redact(plan.evaluation.outputs))
    for seeded in SEEDED_SECRETS.values():
        assert seeded not in shown


# --------------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------------


def test_outputs_describe_the_aks_gpu_cluster(staging: Plan) -> None:
    gpu = staging.outputs["gpuCluster"]
    assert gpu["mode"] == "aks"
    assert gpu["apiEndpoint"].startswith("https://aks-staging-gpu-") and gpu["apiEndpoint"].endswith(":443")
    assert gpu["gpuOperatorManaged"] is True
    assert gpu["pools"] == [
        {
            "name": "h100",
            "vmSize": "Standard_NC40ads_H100_v5",
            "gpusPerNode": 1,
            "minCount": 1,
            "maxCount": 3,
            "spot": False,
        },
        {
            "name": "h100spot",
            "vmSize": "Standard_NC40ads_H100_v5",
            "gpusPerNode": 1,
            "minCount": 0,
            "maxCount": 4,
            "spot": True,
        },
    ]
    assert rpc.is_rpc_secret(staging.evaluation.outputs["gpuKubeconfig"])


# --------------------------------------------------------------------------------------------------------
# Config validation
# --------------------------------------------------------------------------------------------------------


def _config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(stack_config(stack))


def _problems(config: dict[str, Any]) -> list[str]:
    values, _, _ = engine_config(config, [], {})
    with pytest.raises(ConfigError) as raised:
        parse_config(raw_config_from_pulumi(values))
    return raised.value.problems


def _gpu_pool(config: dict[str, Any], index: int) -> dict[str, Any]:
    pool: dict[str, Any] = config["llmops:gpuCluster"]["aks"]["gpuPools"][index]
    return pool


def test_unknown_or_retired_gpu_sku_is_refused() -> None:
    for size in ("Standard_NC99_v9", "Standard_NC6s_v3"):
        config = _config("dev")
        _gpu_pool(config, 0)["vmSize"] = size
        (problem,) = _problems(config)
        assert problem.startswith("llmops:gpuCluster.aks.gpuPools[0].vmSize: must be a known GPU VM size, one of: ")
        assert problem.endswith(f"(got {size!r})")


def test_min_over_max_names_the_pool() -> None:
    config = _config("dev")
    _gpu_pool(config, 0).update(minCount=3, maxCount=2)
    assert _problems(config) == ["llmops:gpuCluster.aks.gpuPools[0].minCount: must be <= maxCount (got 3 > 2)"]


def test_spot_pool_rules() -> None:
    config = _config("dev")
    _gpu_pool(config, 1)["minCount"] = 1
    assert _problems(config) == [
        "llmops:gpuCluster.aks.gpuPools[1].minCount: a spot pool scales from 0 (got 1); "
        "keep warm GPUs in a regular pool"
    ]
    config = _config("dev")
    _gpu_pool(config, 0)["spotMaxPrice"] = 2.5
    assert _problems(config) == ["llmops:gpuCluster.aks.gpuPools[0].spotMaxPrice: only applies when spot is true"]
    config = _config("dev")
    _gpu_pool(config, 1)["spotMaxPrice"] = 0
    assert _problems(config) == [
        "llmops:gpuCluster.aks.gpuPools[1].spotMaxPrice: must be -1 (up to the on-demand price) or > 0 (got 0.0)"
    ]


def test_cpu_pools_of_the_gpu_cluster_are_cpu_only() -> None:
    config = _config("dev")
    config["llmops:gpuCluster"]["aks"]["cpuPools"][0]["vmSize"] = "Standard_NC24ads_A100_v4"
    assert _problems(config) == [
        "llmops:gpuCluster.aks.cpuPools[0].vmSize: must be a CPU size; GPUs belong in gpuPools"
    ]


def test_existing_mode_needs_its_section_and_no_aks_section() -> None:
    config = _config("dev")
    config["llmops:gpuCluster"]["mode"] = "existing"
    assert "llmops:gpuCluster.existing: required when mode is 'existing'" in _problems(config)
    config = _config("prod")
    config["llmops:gpuCluster"]["aks"] = _config("dev")["llmops:gpuCluster"]["aks"]
    assert _problems(config) == ["llmops:gpuCluster.aks: not used when mode is 'existing'; remove it"]


def test_operator_settings_on_an_existing_cluster() -> None:
    config = _config("prod")
    config["llmops:gpuCluster"]["gpuOperator"] = {"migStrategy": "single"}
    assert _problems(config) == [
        "llmops:gpuCluster.gpuOperator: not used when existing.gpuOperatorPreinstalled is true; remove it"
    ]

    config["llmops:gpuCluster"]["existing"]["gpuOperatorPreinstalled"] = False
    config["llmops:gpuCluster"]["gpuOperator"] = {"driverVersion": "580.105.08"}
    assert _problems(config) == [
        "llmops:gpuCluster.gpuOperator.driverVersion: not used when existing.nodesHaveDriver is true "
        "(the operator keeps the nodes' driver); remove it"
    ]

    config["llmops:gpuCluster"]["existing"]["nodesHaveDriver"] = False
    values, _, _ = engine_config(config, [], {})
    gpu_cluster = parse_config(raw_config_from_pulumi(values)).gpu_cluster
    assert gpu_cluster.operator_installs_driver is True
    assert gpu_cluster.gpu_operator.driver_version == "580.105.08"


def test_operator_owns_the_driver_on_aks_but_not_on_a_dgx_cloud_cluster() -> None:
    for stack, installs in (("dev", True), ("prod", False)):
        values, _, _ = engine_config(_config(stack), [], {})
        assert parse_config(raw_config_from_pulumi(values)).gpu_cluster.operator_installs_driver is installs
