"""The GPU cluster: an AKS cluster with GPU pools, or an existing cluster reached by kubeconfig."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.catalog import GPU_SKUS, is_gpu_vm_size
from components.config.base import DnsLabel, KubernetesVersion, Model
from components.config.clusters import AksClusterConfig, NodePoolConfig, Taint, unique_pool_names

GPU_TAINT = Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")
SPOT_TAINT = Taint(key="kubernetes.azure.com/scalesetpriority", value="spot", effect="NoSchedule")


class GpuPoolConfig(NodePoolConfig):
    min_count: int = Field(0, ge=0, le=1000)
    max_count: int = Field(2, ge=1, le=1000)
    os_disk_size_gb: int = Field(512, ge=128, le=4096)
    # Spot pools are for fine-tuning jobs only: they carry the spot taint that only training pods tolerate.
    spot: bool = False
    spot_max_price: float = Field(-1, description="-1 pays up to the on-demand price")

    @field_validator("vm_size")
    @classmethod
    def _known_gpu_sku(cls, value: str) -> str:
        if value not in GPU_SKUS:
            raise ValueError(f"must be a known GPU VM size, one of: {', '.join(sorted(GPU_SKUS))} (got {value!r})")
        return value

    @model_validator(mode="after")
    def _spot(self) -> Self:
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
    gpu_pools: list[GpuPoolConfig] = Field(min_length=1)
    # The system pool is tainted CriticalAddonsOnly and GPU pools are tainted too: the GPU Operator controller,
    # Node Feature Discovery and the CPU-only NeMo services need untainted CPU nodes.
    cpu_pools: list[NodePoolConfig] = Field(default_factory=_default_service_pools, min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Self:
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

    kubernetes_version: KubernetesVersion
    api_server_host: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="host name of the kube-apiserver, for the passthrough route",
    )
    api_server_port: int = Field(443, ge=1, le=65535)
    gpu_operator_preinstalled: bool = True
    # Managed GPU clusters (DGX Cloud) ship the driver in the node image; the operator must then leave it alone.
    nodes_have_driver: bool = True
    model_cache_storage_class: DnsLabel = "standard-rwo"
    shared_storage_class: DnsLabel = "standard-rwx"
    gpu_count: int = Field(8, ge=1, description="GPUs the cluster offers, for the plan report")
    gpu_model: str = "H100"


class GpuOperatorConfig(Model):
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    driver_version: str | None = Field(
        None, pattern=r"^\d+\.\d+(\.\d+)?$", description="override the chart's default driver, e.g. 580.105.08"
    )
    dcgm_exporter: bool = True


class GpuClusterConfig(Model):
    mode: Literal["aks", "existing"]
    aks: GpuAksConfig | None = None
    existing: ExistingGpuClusterConfig | None = None
    gpu_operator: GpuOperatorConfig = GpuOperatorConfig()

    @model_validator(mode="after")
    def _mode_section(self) -> Self:
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
