"""The GPU cluster: an AKS cluster with GPU pools, or an existing cluster reached by kubeconfig."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.catalog import GPU_SKUS, is_gpu_vm_size
from components.config.base import DnsLabel, KubernetesVersion, Model, VmSize
from components.config.clusters import AksClusterConfig, NodePoolConfig, Taint, unique_pool_names

GPU_TAINT = Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")
SPOT_TAINT = Taint(key="kubernetes.azure.com/scalesetpriority", value="spot", effect="NoSchedule")


class GpuPoolUpgradeConfig(Model):
    """How AKS replaces a GPU pool's nodes on upgrades and node-image updates. A surge node is one more GPU VM, which
    needs spare GPU quota that is rarely there; so GPU pools take a node out before adding its replacement."""

    max_surge: str = Field(
        "0", pattern=r"^\d+%?$", description="extra nodes during an upgrade: a number or a percentage of the pool"
    )
    max_unavailable: str = Field(
        "1", pattern=r"^\d+%?$", description="nodes drained at once during an upgrade: a number or a percentage"
    )

    @model_validator(mode="after")
    def _progress(self) -> Self:
        """maxSurge and maxUnavailable are not both 0."""
        if self.max_surge.rstrip("%") == "0" and self.max_unavailable.rstrip("%") == "0":
            raise ValueError("maxUnavailable: must be above 0 when maxSurge is 0, or an upgrade cannot proceed")
        return self


class GpuPoolConfig(NodePoolConfig):
    vm_size: VmSize = Field(description="GPU VM size, one of the GPU sizes in components/catalog.py")
    taints: list[Taint] = Field(
        default_factory=list,
        description="taints besides nvidia.com/gpu and, on spot pools, the spot taint (always set)",
    )
    min_count: int = Field(
        0, ge=0, le=1000, description="fewest GPU nodes kept (0: scale from zero, no idle GPU billed)"
    )
    max_count: int = Field(
        2, ge=1, le=1000, description="most GPU nodes the autoscaler adds (needs that much GPU quota)"
    )
    os_disk_size_gb: int = Field(
        512, ge=128, le=4096, description="OS disk per GPU node, GiB (images and model files are large)"
    )
    # Spot pools are for fine-tuning jobs only: they carry the spot taint that only training pods tolerate.
    spot: bool = Field(False, description="Azure Spot VMs (evictable, cheaper): for fine-tuning jobs only")
    spot_max_price: float = Field(-1, description="-1 pays up to the on-demand price")
    upgrade: GpuPoolUpgradeConfig = Field(
        default_factory=GpuPoolUpgradeConfig, description="node replacement on upgrades (default: no surge GPU VM)"
    )

    @field_validator("vm_size")
    @classmethod
    def _known_gpu_sku(cls, value: str) -> str:
        if value not in GPU_SKUS:
            raise ValueError(f"must be a known GPU VM size, one of: {', '.join(sorted(GPU_SKUS))} (got {value!r})")
        return value

    @model_validator(mode="after")
    def _spot(self) -> Self:
        """spotMaxPrice only with spot, -1 or above 0; a spot pool has minCount 0."""
        if not self.spot and "spot_max_price" in self.model_fields_set:
            raise ValueError("spotMaxPrice: only applies when spot is true")
        if self.spot_max_price != -1 and self.spot_max_price <= 0:
            raise ValueError(f"spotMaxPrice: must be -1 (up to the on-demand price) or > 0 (got {self.spot_max_price})")
        # Azure may evict every spot node at any time, so a floor cannot be kept; warm capacity belongs in a
        # regular pool, and a spot pool meant for bursty fine-tuning must not bill idle GPUs.
        if self.spot and self.min_count != 0:
            raise ValueError(
                f"minCount: a spot pool scales from 0 (got {self.min_count}); keep warm GPUs in a regular pool"
            )
        return self


def _default_service_pools() -> list[NodePoolConfig]:
    return [NodePoolConfig(name="services", vm_size="Standard_D8ds_v5", min_count=1, max_count=3)]


class GpuAksConfig(AksClusterConfig):
    gpu_pools: list[GpuPoolConfig] = Field(
        min_length=1, description="GPU node pools (tainted nvidia.com/gpu=present:NoSchedule)"
    )
    # The system pool is tainted CriticalAddonsOnly and GPU pools are tainted too: the GPU Operator controller,
    # Node Feature Discovery and the CPU-only NeMo services need untainted CPU nodes.
    cpu_pools: list[NodePoolConfig] = Field(
        default_factory=_default_service_pools,
        min_length=1,
        description="untainted CPU pools for the GPU Operator, NFD and the CPU-only NeMo services",
    )

    @model_validator(mode="after")
    def _names(self) -> Self:
        """systemPool and cpuPools are CPU sizes; pool names are unique across the cluster."""
        if is_gpu_vm_size(self.system_pool.vm_size):
            raise ValueError("systemPool.vmSize: must be a CPU size; GPUs belong in gpuPools")
        for index, pool in enumerate(self.cpu_pools):
            if is_gpu_vm_size(pool.vm_size):
                raise ValueError(f"cpuPools[{index}].vmSize: must be a CPU size; GPUs belong in gpuPools")
        unique_pool_names([self.system_pool, *self.cpu_pools, *self.gpu_pools])
        return self


class ExistingGpuClusterConfig(Model):
    """A cluster this program does not create (NVIDIA DGX Cloud, on-prem), reached by kubeconfig
    from the `llmops:gpuClusterKubeconfig` secret. Here we state what it already has."""

    kubernetes_version: KubernetesVersion = Field(description="Kubernetes version the cluster runs")
    api_server_host: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="host name of the kube-apiserver, for the passthrough route",
    )
    api_server_port: int = Field(443, ge=1, le=65535, description="port of the kube-apiserver")
    gpu_operator_preinstalled: bool = Field(
        True, description="the cluster already runs the NVIDIA GPU Operator (do not install it)"
    )
    # Managed GPU clusters (DGX Cloud) ship the driver in the node image; the operator must then leave it alone.
    nodes_have_driver: bool = Field(
        True, description="the node image ships the NVIDIA driver (the operator leaves it alone)"
    )
    model_cache_storage_class: DnsLabel = Field(
        "standard-rwo", description="StorageClass of the NIM model cache volumes (ReadWriteOnce)"
    )
    shared_storage_class: DnsLabel = Field(
        "standard-rwx", description="StorageClass of shared volumes such as the Customizer's (ReadWriteMany)"
    )
    gpu_count: int = Field(8, ge=1, description="GPUs the cluster offers, for the plan report")
    # Not installed by this program on a cluster it does not own: KEDA registers the cluster-wide
    # external.metrics.k8s.io APIService (one per cluster) and admission webhooks, which would displace a metrics
    # adapter the provider runs and which the provider's upgrades do not expect.
    keda_installed: bool = Field(
        False,
        description="the cluster already runs KEDA v2 (its operator and metrics server); needed for NIM serving "
        "schedules and KV-cache scaling, which this program does not install on a cluster it does not own",
    )
    gpu_model: str = Field(
        "H100",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{0,31}$",
        description="GPU model of the nodes, e.g. H100, for the plan report",
    )


class GpuOperatorConfig(Model):
    mig_strategy: Literal["none", "single", "mixed"] = Field(
        "none", description="Multi-Instance GPU strategy of the device plugin"
    )
    driver_version: str | None = Field(
        None, pattern=r"^\d+\.\d+(\.\d+)?$", description="override the chart's default driver, e.g. 580.105.08"
    )
    dcgm_exporter: bool = Field(True, description="run the DCGM exporter (GPU metrics)")


class GpuClusterConfig(Model):
    mode: Literal["aks", "existing"] = Field(
        description="aks: the program creates an AKS cluster; existing: a cluster reached by kubeconfig"
    )
    aks: GpuAksConfig | None = Field(None, description="the AKS GPU cluster (mode aks)")
    existing: ExistingGpuClusterConfig | None = Field(None, description="what the existing cluster has (mode existing)")
    gpu_operator: GpuOperatorConfig = Field(
        GpuOperatorConfig(), description="GPU Operator settings (not with a preinstalled operator)"
    )

    @model_validator(mode="after")
    def _mode_section(self) -> Self:
        """Exactly the section of mode (aks or existing) is set; gpuOperator only where the operator is ours, and
        driverVersion only where the nodes lack a driver."""
        chosen, other = ("aks", "existing") if self.mode == "aks" else ("existing", "aks")
        if getattr(self, chosen) is None:
            raise ValueError(f"{chosen}: required when mode is {self.mode!r}")
        if getattr(self, other) is not None:
            raise ValueError(f"{other}: not used when mode is {self.mode!r}; remove it")
        existing = self.existing
        if existing is not None and "gpu_operator" in self.model_fields_set:
            if existing.gpu_operator_preinstalled:
                raise ValueError("gpuOperator: not used when existing.gpuOperatorPreinstalled is true; remove it")
            if existing.nodes_have_driver and self.gpu_operator.driver_version is not None:
                raise ValueError(
                    "gpuOperator.driverVersion: not used when existing.nodesHaveDriver is true "
                    "(the operator keeps the nodes' driver); remove it"
                )
        return self

    @property
    def operator_installs_driver(self) -> bool:
        """AKS pools skip their driver (gpuProfile.driver None), so the operator owns it there."""
        return self.existing is None or not self.existing.nodes_have_driver
