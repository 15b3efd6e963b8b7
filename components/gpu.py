"""The GPU cluster: AKS with GPU node pools, or an existing cluster (NVIDIA DGX Cloud) by kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s

from components.aks import AksCluster, ClusterPlacement, PoolSpec
from components.catalog import GPU_SKUS
from components.config import (
    GPU_TAINT,
    SPOT_TAINT,
    ChartVersionsConfig,
    GpuClusterConfig,
    GpuPoolConfig,
    MonitoringConfig,
)
from components.gpu_operator import GpuOperator, gpu_operator_values
from components.gpu_storage import gpu_storage_classes

# Pods that may run on spot GPU nodes (fine-tuning jobs) tolerate this taint; serving pods do not.
TRAINING_LABEL = "llmops.io/workload"

# Every GPU workload this program schedules carries this toleration and requests `nvidia.com/gpu`.
GPU_TOLERATION = {"key": GPU_TAINT.key, "operator": "Exists", "effect": GPU_TAINT.effect}
# Only training workloads (NeMo Customizer jobs) also tolerate spot eviction.
SPOT_TOLERATION = {"key": SPOT_TAINT.key, "operator": "Equal", "value": SPOT_TAINT.value, "effect": SPOT_TAINT.effect}

# Storage classes this program creates on AKS (names from config on an existing cluster).
AKS_MODEL_CACHE_CLASS = "llmops-model-cache"
AKS_SHARED_CLASS = "llmops-shared-workspace"


@dataclass(frozen=True)
class GpuWorkloadTarget:
    """What a workload on the GPU cluster needs from it (NeMo and NIM take this, not the cluster).

    Tolerate `gpu_tolerations` (serving) or `training_tolerations` (fine-tuning, may land on spot), request
    `nvidia.com/gpu`, and depend on `gpu_operator_ready` and `storage_ready`.
    """

    # The GPU cluster's name: objects it hosts per workload namespace (NGC credentials) are named after it.
    cluster_name: str
    provider: k8s.Provider
    gpu_tolerations: list[dict[str, Any]]
    training_tolerations: list[dict[str, Any]]
    model_cache_storage_class: str
    shared_storage_class: str
    gpu_operator_ready: list[pulumi.Resource]
    storage_ready: list[pulumi.Resource]


@dataclass(frozen=True)
class GpuPoolSummary:
    name: str
    vm_size: str
    gpus_per_node: int
    min_count: int
    max_count: int
    spot: bool


def gpu_pool_spec(pool: GpuPoolConfig) -> PoolSpec:
    sku = GPU_SKUS[pool.vm_size]
    taints = [GPU_TAINT, SPOT_TAINT] if pool.spot else [GPU_TAINT]
    labels = {
        "llmops.io/gpu-model": sku.gpu_model.replace(" ", "-"),
        TRAINING_LABEL: "training" if pool.spot else "general",
    }
    return PoolSpec(
        config=pool,
        taints=taints,
        labels=labels,
        gpu=True,
        spot=pool.spot,
        spot_max_price=pool.spot_max_price,
        upgrade_settings=azure.containerservice.AgentPoolUpgradeSettingsArgs(
            max_surge=pool.upgrade.max_surge, max_unavailable=pool.upgrade.max_unavailable
        ),
    )


class GpuCluster(pulumi.ComponentResource):
    """Exposes one Kubernetes provider for the GPU side whichever way the cluster came to be, with the GPU
    Operator and the storage classes GPU workloads use; `workload_target` is what those workloads need of it."""

    provider: k8s.Provider
    api_endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    pools: list[GpuPoolSummary]
    model_cache_storage_class: str
    shared_storage_class: str
    storage_classes: list[k8s.storage.v1.StorageClass]
    gpu_operator: GpuOperator | None
    gpu_operator_release: k8s.helm.v3.Release | None

    def __init__(
        self,
        name: str,
        config: GpuClusterConfig,
        placement: ClusterPlacement | None,
        existing_kubeconfig: pulumi.Output[str] | None,
        charts: ChartVersionsConfig,
        monitoring: MonitoringConfig,
        protect: bool,
        keda: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`keda`: workloads on the cluster scale through KEDA, so an AKS cluster enables its KEDA add-on."""
        super().__init__("llmops:gpu:GpuCluster", name, None, opts)
        self._name = name
        self.mode = config.mode
        self.aks: AksCluster | None = None
        if config.aks is not None:
            assert placement is not None, "mode aks needs an Azure placement"
            self.aks = AksCluster(
                name,
                config.aks,
                placement,
                user_pools=[
                    *(PoolSpec(config=pool) for pool in config.aks.cpu_pools),
                    *(gpu_pool_spec(pool) for pool in config.aks.gpu_pools),
                ],
                protect=protect,
                keda=keda,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.provider = self.aks.provider
            self.kubeconfig = self.aks.kubeconfig
            self.api_endpoint = self.aks.fqdn.apply(lambda fqdn: f"https://{fqdn}:443")
            self.model_cache_storage_class = AKS_MODEL_CACHE_CLASS
            self.shared_storage_class = AKS_SHARED_CLASS
            self.storage_classes = gpu_storage_classes(
                name,
                model_cache_class=AKS_MODEL_CACHE_CLASS,
                shared_workspace_class=AKS_SHARED_CLASS,
                retain=protect,
                parent=self,
                provider=self.provider,
            )
            self.pools = [
                GpuPoolSummary(p.name, p.vm_size, GPU_SKUS[p.vm_size].gpus, p.min_count, p.max_count, p.spot)
                for p in config.aks.gpu_pools
            ]
            operator_wanted = True
        else:
            existing = config.existing
            assert existing is not None and existing_kubeconfig is not None, "mode existing needs its kubeconfig"
            self.kubeconfig = pulumi.Output.secret(existing_kubeconfig)
            self.provider = k8s.Provider(
                f"{name}-k8s",
                kubeconfig=self.kubeconfig,
                # Stable identity: rotating the kubeconfig secret must not replace every object on the cluster.
                cluster_identifier=f"existing-{name}",
                enable_server_side_apply=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.api_endpoint = pulumi.Output.from_input(
                f"https://{existing.api_server_host}:{existing.api_server_port}"
            )
            self.model_cache_storage_class = existing.model_cache_storage_class
            self.shared_storage_class = existing.shared_storage_class
            self.storage_classes = []
            self.pools = []
            operator_wanted = not existing.gpu_operator_preinstalled

        self.gpu_operator = None
        self.gpu_operator_release = None
        if operator_wanted:
            self.gpu_operator = GpuOperator(
                f"{name}-gpu-operator",
                charts.gpu_operator,
                gpu_operator_values(
                    config.gpu_operator,
                    install_driver=config.operator_installs_driver,
                    # Spot GPU nodes exist only on AKS; the operands must reach them too (Azure spot taint).
                    gpu_node_tolerations=self.training_tolerations if self.aks else self.gpu_tolerations,
                    prometheus_crds=monitoring.prometheus_crds,
                ),
                self.provider,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.gpu_operator_release = self.gpu_operator.release

        # What the GPU cluster publishes (its kubeconfig, a secret, apart).
        self.outputs: dict[str, Any] = {
            "mode": self.mode,
            "apiEndpoint": self.api_endpoint,
            "pools": [
                {
                    "name": p.name,
                    "vmSize": p.vm_size,
                    "gpusPerNode": p.gpus_per_node,
                    "minCount": p.min_count,
                    "maxCount": p.max_count,
                    "spot": p.spot,
                }
                for p in self.pools
            ],
            "storageClasses": {
                "modelCache": self.model_cache_storage_class,
                "sharedWorkspace": self.shared_storage_class,
            },
            "gpuOperatorManaged": self.gpu_operator_managed,
        }
        self.register_outputs({**self.outputs, "kubeconfig": self.kubeconfig})

    @property
    def gpu_tolerations(self) -> list[dict[str, Any]]:
        """Tolerations of every pod that runs on GPU nodes (it must also request `nvidia.com/gpu`)."""
        return [dict(GPU_TOLERATION)]

    @property
    def training_tolerations(self) -> list[dict[str, Any]]:
        """Tolerations of fine-tuning pods, which may also run on (evictable) spot GPU nodes."""
        return [dict(GPU_TOLERATION), dict(SPOT_TOLERATION)]

    @property
    def gpu_operator_managed(self) -> bool:
        """False when the cluster came with its own GPU Operator (DGX Cloud)."""
        return self.gpu_operator is not None

    @property
    def gpu_operator_ready(self) -> list[pulumi.Resource]:
        """What GPU workloads depend on: the operator release, or nothing when the cluster brings its own."""
        return [self.gpu_operator_release] if self.gpu_operator_release is not None else []

    @property
    def storage_ready(self) -> list[pulumi.Resource]:
        """What PVCs of the GPU storage classes depend on; empty on an existing cluster, whose classes exist."""
        return list(self.storage_classes)

    @property
    def workload_target(self) -> GpuWorkloadTarget:
        return GpuWorkloadTarget(
            cluster_name=self._name,
            provider=self.provider,
            gpu_tolerations=self.gpu_tolerations,
            training_tolerations=self.training_tolerations,
            model_cache_storage_class=self.model_cache_storage_class,
            shared_storage_class=self.shared_storage_class,
            gpu_operator_ready=self.gpu_operator_ready,
            storage_ready=self.storage_ready,
        )
