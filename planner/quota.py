"""The Azure GPU quota a stack needs: vCPUs per VM family at the GPU pools' maximum scale, the numbers to request
(`az quota update`, or the portal's "Usage + quotas") before the first `up`, since GPU families start at zero.

Regular GPU pools draw on their VM family's regional quota (policies/pack/gpu_sizes.py names it); spot pools on
the regional low-priority quota, whatever their family. A pool that surges during upgrades needs the surge nodes'
vCPUs too (AKS's default max surge is 10% of the pool, rounded up; GPU pools here default to none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from policies.pack.gpu_sizes import GPU_SKUS
from policies.pack.pricing.clusters import pool_of
from policies.pack.pricing.inputs import priced_stack
from policies.pack.pricing.prices import load_prices
from policies.pack.props import get_path
from policies.pack.record import Registration
from policies.pack.tokens import AGENT_POOL

# The regional quota every spot (low-priority) VM draws on (`az vm list-usage`: lowPriorityCores).
SPOT_QUOTA = "lowPriorityCores"
AKS_DEFAULT_MAX_SURGE = "10%"


@dataclass(frozen=True)
class QuotaPool:
    pool: str
    vm_size: str
    nodes: int
    vcpus_per_node: int
    spot: bool

    @property
    def vcpus(self) -> int:
        return self.nodes * self.vcpus_per_node


@dataclass
class GpuQuota:
    region: str | None
    families: dict[str, list[QuotaPool]] = field(default_factory=dict)
    external_cluster: bool = False

    def vcpus(self, family: str) -> int:
        return sum(p.vcpus for p in self.families[family])

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
                        {
                            "pool": p.pool,
                            "vmSize": p.vm_size,
                            "nodes": p.nodes,
                            "vcpusPerNode": p.vcpus_per_node,
                            "spot": p.spot,
                        }
                        for p in pools
                    ],
                }
                for family, pools in self.ordered()
            ],
            "externalGpuCluster": self.external_cluster,
        }


def surge_nodes(max_surge: Any, max_count: int) -> int:
    """Extra nodes a pool of `max_count` adds during an upgrade: a number, or a percentage rounded up."""
    text = str(max_surge if max_surge is not None else AKS_DEFAULT_MAX_SURGE).strip()
    if text.endswith("%"):
        return math.ceil(max_count * float(text[:-1]) / 100)
    return int(text) if text.isdigit() else 0


def gpu_quota(registrations: list[Registration]) -> GpuQuota:
    stack = priced_stack(registrations, load_prices())
    quota = GpuQuota(region=stack.region, external_cluster=bool(stack.external_providers))
    for r in stack.resources:
        spec = stack.inputs[r.urn]
        if r.type != AGENT_POOL or str(spec.get("vmSize") or "") not in GPU_SKUS:
            continue
        pool = pool_of(r.name, spec)
        sku = GPU_SKUS[pool.vm_size]
        # AKS upgrades spot pools without surge nodes (AKS docs, "Add an Azure Spot node pool": upgrades).
        extra = 0 if pool.spot else surge_nodes(get_path(spec, "upgradeSettings", "maxSurge"), pool.peak_nodes)
        family = SPOT_QUOTA if pool.spot else sku.quota_family
        quota.families.setdefault(family, []).append(
            QuotaPool(r.name, pool.vm_size, pool.peak_nodes + extra, sku.vcpus, pool.spot)
        )
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
            f"{p.pool}: {p.nodes} x {p.vm_size}{' spot' if p.spot else ''} ({p.vcpus_per_node} vCPUs)" for p in pools
        )
        label = f"{family} (spot, every family)" if family == SPOT_QUOTA else family
        lines.append(f"  {label}: {quota.vcpus(family)} vCPUs  [{detail}]")
    return lines
