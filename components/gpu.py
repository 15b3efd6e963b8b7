"""The GPU cluster: AKS with GPU node pools, or an existing cluster (NVIDIA DGX Cloud) by kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.aks import AksCluster, ClusterPlacement, PoolSpec
from components.config import (
    GPU_TAINT,
    SPOT_TAINT,
    ChartVersionsConfig,
    GpuClusterConfig,
    GpuPoolConfig,
    MonitoringConfig,
)
from components.facts import GPU_SKUS
from components.gpu_operator import GpuOperator, gpu_operator_values
from components.gpu_storage import gpu_storage_classes
from components.ngc import NgcCredentials

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
        config=pool, taints=taints, labels=labels, gpu=True, spot=pool.spot, spot_max_price=pool.spot_max_price
    )


class GpuCluster(pulumi.ComponentResource):
    """Exposes one Kubernetes provider for the GPU side whichever way the cluster came to be, with the GPU
    Operator, the storage classes GPU workloads use, and NGC credentials on request.

    For workloads on GPU nodes: tolerate `gpu_tolerations` (serving) or `training_tolerations` (fine-tuning,
    may land on spot), request `nvidia.com/gpu`, and depend on `gpu_operator_ready` and `storage_ready`.
    """

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
        ngc_api_key: pulumi.Output[str],
        charts: ChartVersionsConfig,
        monitoring: MonitoringConfig,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:gpu:GpuCluster", name, None, opts)
        self._name = name
        self._ngc_api_key = ngc_api_key
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

        self.register_outputs(
            {
                "mode": self.mode,
                "apiEndpoint": self.api_endpoint,
                "kubeconfig": self.kubeconfig,
                "modelCacheStorageClass": self.model_cache_storage_class,
                "sharedStorageClass": self.shared_storage_class,
                "gpuOperatorManaged": self.gpu_operator_managed,
            }
        )

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

    def ngc_credentials(
        self,
        namespace_name: str,
        namespace: k8s.core.v1.Namespace,
        *,
        parent: pulumi.Resource | None = None,
    ) -> NgcCredentials:
        """The `ngc-api` and `nvcrimagepullsecret` Secrets in `namespace` on this cluster, for charts that pull
        from NGC (NeMo, NIM). The namespace's name Output carries the dependency on it."""
        return NgcCredentials(
            f"{self._name}-{namespace_name}-ngc",
            namespace.metadata.name,
            self._ngc_api_key,
            self.provider,
            opts=pulumi.ResourceOptions(parent=parent or self),
        )
