"""The Azure vCPU quota a stack needs: every AKS node pool at max scale, by the quota it draws on. Preflight checks
every quota (planner/preflight.py); the plan reports the GPU families', the numbers to request (`az quota update`, or
the portal's "Usage + quotas") before the first `up`, since GPU families start at zero.

A regular pool draws on its VM family's regional quota (GPU families as policies/pack/gpu_sizes.py names them) and on
the regional total; a spot pool on the regional low-priority quota, whatever its family. A pool counts at maxCount
when autoscaled, and a regular pool that surges during upgrades needs the surge nodes' vCPUs too (AKS's default max
surge is 10% of the pool, rounded up; GPU pools here default to none).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.pack.gpu_sizes import GPU_SKUS
from policies.pack.pricing.clusters import pool_of
from policies.pack.pricing.inputs import known_inputs, priced_stack
from policies.pack.pricing.prices import load_prices
from policies.pack.props import get_path
from policies.pack.record import Registration
from policies.pack.tokens import AGENT_POOL, MANAGED_CLUSTER

# The regional quota every spot (low-priority) VM draws on (`az vm list-usage`: lowPriorityCores).
SPOT_QUOTA = "lowPriorityCores"
# The regional quota every regular VM draws on besides its family's (`az vm list-usage`: "Total Regional vCPUs").
TOTAL_QUOTA = "cores"
AKS_DEFAULT_MAX_SURGE = "10%"

# General-purpose sizes the stacks use: vCPUs and quota name as Azure's compute usages API reports them
# (learn.microsoft.com, "Ddsv5 sizes series"/"Dsv5"/"Dadsv5"). GPU sizes come from policies/pack/gpu_sizes.py.
_GENERAL_FAMILIES = {"ds_v5": "standardDDSv5Family", "s_v5": "standardDSv5Family", "ads_v5": "standardDADSv5Family"}
GENERAL_SIZES: dict[str, tuple[int, str]] = {
    f"Standard_D{vcpus}{suffix}": (vcpus, family)
    for suffix, family in _GENERAL_FAMILIES.items()
    for vcpus in (2, 4, 8, 16, 32, 48, 64, 96)
}


def size_facts(vm_size: str) -> tuple[int, str] | None:
    """(vCPUs, quota name) of a VM size, or None when no table knows it."""
    if vm_size in GPU_SKUS:
        sku = GPU_SKUS[vm_size]
        return sku.vcpus, sku.quota_family
    return GENERAL_SIZES.get(vm_size)


@dataclass(frozen=True)
class QuotaPool:
    """One node pool at max scale: its nodes (upgrade surge included), each node's vCPUs, its VM family's quota."""

    pool: str
    vm_size: str
    nodes: int
    vcpus: int  # per node
    spot: bool
    family: str

    @property
    def total_vcpus(self) -> int:
        return self.nodes * self.vcpus


def surge_nodes(max_surge: Any, max_count: int) -> int:
    """Extra nodes a pool of `max_count` adds during an upgrade: a number, or a percentage rounded up."""
    text = str(max_surge if max_surge is not None else AKS_DEFAULT_MAX_SURGE).strip()
    if text.endswith("%"):
        return math.ceil(max_count * float(text[:-1]) / 100)
    return int(text) if text.isdigit() else 0


def _pool_specs(registrations: list[Registration]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every AKS node pool: the system pools in each ManagedCluster's agentPoolProfiles, every AgentPool."""
    for r in registrations:
        if r.type == MANAGED_CLUSTER:
            for profile in known_inputs(r.inputs).get("agentPoolProfiles") or []:
                yield f"{r.name}/{profile.get('name')}", profile
        elif r.type == AGENT_POOL:
            yield r.name, known_inputs(r.inputs)


def vcpu_needs(registrations: list[Registration]) -> tuple[dict[str, list[QuotaPool]], list[str]]:
    """Quota name -> the pools drawing on it at max scale (TOTAL_QUOTA: every regular pool, SPOT_QUOTA: every
    spot pool), and the pools whose VM size no table knows ("<pool>: <size>")."""
    quotas: dict[str, list[QuotaPool]] = {}
    unknown = []
    # By pool name, the system pools (`<cluster>/<pool>`) beside their cluster's other pools.
    for name, spec in sorted(_pool_specs(registrations), key=lambda named: named[0]):
        pool = pool_of(name, spec)
        facts = size_facts(pool.vm_size)
        if facts is None:
            unknown.append(f"{name}: {pool.vm_size}")
            continue
        vcpus, family = facts
        # AKS upgrades spot pools without surge nodes (AKS docs, "Add an Azure Spot node pool": upgrades).
        extra = 0 if pool.spot else surge_nodes(get_path(spec, "upgradeSettings", "maxSurge"), pool.peak_nodes)
        entry = QuotaPool(name, pool.vm_size, pool.peak_nodes + extra, vcpus, pool.spot, family)
        for quota in (SPOT_QUOTA,) if pool.spot else (family, TOTAL_QUOTA):
            quotas.setdefault(quota, []).append(entry)
    return quotas, unknown


@dataclass
class GpuQuota:
    region: str | None
    families: dict[str, list[QuotaPool]] = field(default_factory=dict)
    external_cluster: bool = False

    def vcpus(self, family: str) -> int:
        return sum(p.total_vcpus for p in self.families[family])

    def ordered(self) -> list[tuple[str, list[QuotaPool]]]:
        """VM families by name, the spot quota last."""
        return sorted(self.families.items(), key=lambda item: (item[0] == SPOT_QUOTA, item[0]))

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "families": [
                {
                    "family": family,
                    "vcpus": self.vcpus(family),
                    "pools": [
                        {"pool": p.pool, "vmSize": p.vm_size, "nodes": p.nodes, "vcpusPerNode": p.vcpus, "spot": p.spot}
                        for p in pools
                    ],
                }
                for family, pools in self.ordered()
            ],
            "externalGpuCluster": self.external_cluster,
        }


def gpu_quota(registrations: list[Registration]) -> GpuQuota:
    """The GPU pools' share of `vcpu_needs`: per GPU family and on the spot quota (the regional total left out)."""
    stack = priced_stack(registrations, load_prices())
    quota = GpuQuota(region=stack.region, external_cluster=bool(stack.external_providers))
    for name, pools in vcpu_needs(registrations)[0].items():
        gpu_pools = [p for p in pools if p.vm_size in GPU_SKUS]
        if gpu_pools and name != TOTAL_QUOTA:
            quota.families[name] = gpu_pools
    return quota


def summary_lines(quota: GpuQuota) -> list[str]:
    where = quota.region or "the cluster's region"
    if not quota.families:
        reason = (
            "the GPU cluster is an existing cluster (e.g. NVIDIA DGX Cloud), not Azure VMs"
            if quota.external_cluster
            else "no GPU node pools"
        )
        return [f"GPU quota (Azure vCPUs per VM family at max scale): none from Azure, {reason}"]
    lines = [f"GPU quota (Azure vCPUs per VM family at max scale, to request in {where} before the first `up`):"]
    for family, pools in quota.ordered():
        detail = ", ".join(
            f"{p.pool}: {p.nodes} x {p.vm_size}{' spot' if p.spot else ''} ({p.vcpus} vCPUs)" for p in pools
        )
        label = f"{family} (spot, every family)" if family == SPOT_QUOTA else family
        lines.append(f"  {label}: {quota.vcpus(family)} vCPUs  [{detail}]")
    return lines
