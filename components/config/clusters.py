"""What every AKS cluster has: version, API server access, maintenance and node pools."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.config.base import (
    Cidr,
    KubernetesVersion,
    LabelValue,
    Model,
    PoolName,
    QualifiedName,
    Uuid,
    VmSize,
    valid_cidr,
)


class Taint(Model):
    key: QualifiedName = Field(description="taint key, a Kubernetes qualified name (e.g. nvidia.com/gpu)")
    value: LabelValue = Field("", description="taint value (may be empty)")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        "NoSchedule", description="what the taint does to pods that do not tolerate it"
    )

    def render(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


class NodePoolConfig(Model):
    name: PoolName = Field(description="AKS pool name: a lowercase letter, then up to 11 lowercase letters or digits")
    vm_size: VmSize = Field(description="Azure VM size of the nodes, e.g. Standard_D8ds_v5")
    min_count: int = Field(1, ge=0, le=1000, description="fewest nodes the cluster autoscaler keeps")
    max_count: int = Field(3, ge=1, le=1000, description="most nodes the cluster autoscaler adds")
    os_disk_size_gb: int = Field(128, ge=30, le=4096, description="OS disk per node, GiB")
    os_disk_type: Literal["Managed", "Ephemeral"] = Field(
        "Managed", description="Managed (a managed disk) or Ephemeral (the VM's local disk; the size must fit it)"
    )
    max_pods: int = Field(110, ge=10, le=250, description="most pods per node")
    zones: list[Literal["1", "2", "3"]] = Field(
        default_factory=list, description="availability zones the pool spreads over; empty: no zone pinning"
    )
    labels: dict[QualifiedName, LabelValue] = Field(
        default_factory=dict, description="Kubernetes labels on the pool's nodes"
    )
    taints: list[Taint] = Field(default_factory=list, description="taints on the pool's nodes")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        """minCount <= maxCount."""
        if self.min_count > self.max_count:
            raise ValueError(f"minCount: must be <= maxCount (got {self.min_count} > {self.max_count})")
        return self


class SystemPoolConfig(NodePoolConfig):
    name: PoolName = Field(
        "system", description="AKS pool name of the system pool (lowercase letters and digits, at most 12)"
    )
    vm_size: VmSize = Field("Standard_D4ds_v5", description="Azure VM size of the system pool (a CPU size)")
    min_count: int = Field(
        2, ge=1, le=100, description="fewest system nodes (2 or more keeps the add-ons available during upgrades)"
    )
    max_count: int = Field(3, ge=1, le=100, description="most system nodes the autoscaler adds")


class ApiServerAccessConfig(Model):
    """A public API server must be restricted to known ranges; otherwise make it private."""

    private_cluster: bool = Field(False, description="the API server has a private endpoint in the VNet only")
    authorized_ip_ranges: list[Cidr] = Field(
        default_factory=list, description="CIDRs allowed to reach a public API server (required unless privateCluster)"
    )

    _check_ranges = field_validator("authorized_ip_ranges")(lambda v: [valid_cidr(c) for c in v])

    @model_validator(mode="after")
    def _restricted(self) -> Self:
        """A public API server needs authorizedIpRanges; a private cluster takes none."""
        if not self.private_cluster and not self.authorized_ip_ranges:
            raise ValueError(
                "authorizedIpRanges: required unless privateCluster is true (an open API server is refused)"
            )
        if self.private_cluster and self.authorized_ip_ranges:
            raise ValueError("authorizedIpRanges: does not apply to a private cluster; remove it")
        return self


class MaintenanceWindowConfig(Model):
    day_of_week: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = Field(
        "Sunday", description="day of the weekly maintenance window"
    )
    start_time: str = Field("02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="start of the window, HH:MM")
    duration_hours: int = Field(4, ge=4, le=24, description="length of the window in hours (AKS needs at least 4)")
    utc_offset: str = Field(
        "+00:00", pattern=r"^[+-]\d{2}:\d{2}$", description="offset of startTime from UTC, e.g. +01:00"
    )


class AksClusterConfig(Model):
    kubernetes_version: KubernetesVersion = Field(
        description="Kubernetes version the cluster is created with, e.g. 1.33"
    )
    sku_tier: Literal["Free", "Standard", "Premium"] = Field(
        "Free", description="AKS pricing tier: Free (no SLA) or Standard/Premium (uptime SLA)"
    )
    admin_group_object_ids: list[Uuid] = Field(
        min_length=1, description="Entra group object ids whose members are cluster admins"
    )
    api_server: ApiServerAccessConfig = Field(description="who can reach the API server")
    system_pool: SystemPoolConfig = Field(SystemPoolConfig(), description="the system node pool (CriticalAddonsOnly)")
    upgrade_channel: Literal["none", "patch", "stable", "rapid", "node-image"] = Field(
        "patch",
        description="AKS auto-upgrade channel; with patch, stable or rapid AKS moves the cluster and its pools ahead "
        "of kubernetesVersion, so that is only the version the cluster is created with (Pulumi ignores later "
        "differences, or the next `up` would ask AKS for a downgrade)",
    )
    node_os_upgrade_channel: Literal["None", "Unmanaged", "NodeImage", "SecurityPatch"] = Field(
        "NodeImage", description="how AKS updates the nodes' OS image"
    )
    maintenance_window: MaintenanceWindowConfig = Field(
        MaintenanceWindowConfig(), description="weekly window AKS may upgrade in"
    )


def unique_pool_names(pools: list[NodePoolConfig]) -> None:
    names = [p.name for p in pools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"pool names must be unique (repeated: {', '.join(duplicates)})")
