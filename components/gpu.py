"""The GPU cluster: AKS with GPU node pools, or an existing cluster (NVIDIA DGX Cloud) by kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.aks import AksCluster, ClusterPlacement, PoolSpec
from components.config import GPU_TAINT, SPOT_TAINT, GpuClusterConfig, GpuPoolConfig
from components.facts import GPU_SKUS

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
    """Exposes one Kubernetes provider for the GPU side whichever way the cluster came to be."""

    provider: k8s.Provider
    api_endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    pools: list[GpuPoolSummary]

    def __init__(
        self,
        name: str,
        config: GpuClusterConfig,
        placement: ClusterPlacement | None,
        existing_kubeconfig: pulumi.Output[str] | None,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:gpu:GpuCluster", name, None, opts)
        self.mode = config.mode
        self.aks: AksCluster | None = None
        if config.aks is not None:
            assert placement is not None, "mode aks needs an Azure placement"
            self.aks = AksCluster(
                name,
                config.aks,
                placement,
                user_pools=[gpu_pool_spec(pool) for pool in config.aks.gpu_pools],
                protect=protect,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.provider = self.aks.provider
            self.kubeconfig = self.aks.kubeconfig
            self.api_endpoint = self.aks.fqdn.apply(lambda fqdn: f"https://{fqdn}:443")
            self.model_cache_storage_class = AKS_MODEL_CACHE_CLASS
            self.shared_storage_class = AKS_SHARED_CLASS
            self.pools = [
                GpuPoolSummary(p.name, p.vm_size, GPU_SKUS[p.vm_size].gpus, p.min_count, p.max_count, p.spot)
                for p in config.aks.gpu_pools
            ]
        else:
            assert config.existing is not None and existing_kubeconfig is not None
            self.kubeconfig = pulumi.Output.secret(existing_kubeconfig)
            self.provider = k8s.Provider(
                f"{name}-k8s",
                kubeconfig=self.kubeconfig,
                cluster_identifier=f"existing-{name}",
                enable_server_side_apply=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.api_endpoint = pulumi.Output.from_input(f"https://{config.existing.api_server_host}:443")
            self.model_cache_storage_class = config.existing.model_cache_storage_class
            self.shared_storage_class = config.existing.shared_storage_class
            self.pools = []
        self.register_outputs({"mode": self.mode, "apiEndpoint": self.api_endpoint, "kubeconfig": self.kubeconfig})
