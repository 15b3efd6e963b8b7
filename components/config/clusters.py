"""What every AKS cluster has: version, API server access, maintenance and node pools."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.config.base import Cidr, KubernetesVersion, Model, PoolName, Uuid, valid_cidr


class Taint(Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    def render(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


class NodePoolConfig(Model):
    name: PoolName
    vm_size: str
    min_count: int = Field(1, ge=0, le=1000)
    max_count: int = Field(3, ge=1, le=1000)
    os_disk_size_gb: int = Field(128, ge=30, le=4096)
    os_disk_type: Literal["Managed", "Ephemeral"] = "Managed"
    max_pods: int = Field(110, ge=10, le=250)
    zones: list[Literal["1", "2", "3"]] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_count > self.max_count:
            raise ValueError(f"minCount: must be <= maxCount (got {self.min_count} > {self.max_count})")
        return self


class SystemPoolConfig(NodePoolConfig):
    name: PoolName = "system"
    vm_size: str = "Standard_D4ds_v5"
    min_count: int = Field(2, ge=1, le=100)
    max_count: int = Field(3, ge=1, le=100)


class ApiServerAccessConfig(Model):
    """A public API server must be restricted to known ranges; otherwise make it private."""

    private_cluster: bool = False
    authorized_ip_ranges: list[Cidr] = Field(default_factory=list)

    _check_ranges = field_validator("authorized_ip_ranges")(lambda v: [valid_cidr(c) for c in v])

    @model_validator(mode="after")
    def _restricted(self) -> Self:
        if not self.private_cluster and not self.authorized_ip_ranges:
            raise ValueError(
                "authorizedIpRanges: required unless privateCluster is true (an open API server is refused)"
            )
        if self.private_cluster and self.authorized_ip_ranges:
            raise ValueError("authorizedIpRanges: does not apply to a private cluster; remove it")
        return self


class MaintenanceWindowConfig(Model):
    day_of_week: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = "Sunday"
    start_time: str = Field("02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    duration_hours: int = Field(4, ge=4, le=24)
    utc_offset: str = Field("+00:00", pattern=r"^[+-]\d{2}:\d{2}$")


class AksClusterConfig(Model):
    kubernetes_version: KubernetesVersion
    sku_tier: Literal["Free", "Standard", "Premium"] = "Free"
    admin_group_object_ids: list[Uuid] = Field(min_length=1)
    api_server: ApiServerAccessConfig
    system_pool: SystemPoolConfig = SystemPoolConfig()
    upgrade_channel: Literal["none", "patch", "stable", "rapid", "node-image"] = "patch"
    node_os_upgrade_channel: Literal["None", "Unmanaged", "NodeImage", "SecurityPatch"] = "NodeImage"
    maintenance_window: MaintenanceWindowConfig = MaintenanceWindowConfig()


def unique_pool_names(pools: list[NodePoolConfig]) -> None:
    names = [p.name for p in pools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"pool names must be unique (repeated: {', '.join(duplicates)})")
