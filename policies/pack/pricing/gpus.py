"""GPUs: the fine-tuning node-hour, the serving floor (GPU nodes the model servers keep busy beyond the
pools' minimum), and the GPUs of an existing cluster billed at a contracted rate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..gpu_sizes import GPU_SKUS
from ..props import get_path
from ..record import Registration
from ..tokens import AGENT_POOL, GPU_RESOURCE, HELM_RELEASE, KUBERNETES_PROVIDER
from .claims import replica_range
from .clusters import Pool, node_hour, pool_of
from .inputs import PricedStack
from .report import CostOptions, GpuHour, LineItem, flat_item


def _gpu_pools(stack: PricedStack) -> list[tuple[Registration, Pool]]:
    return [
        (r, pool_of(r.name, stack.inputs[r.urn]))
        for r in stack.resources
        if r.type == AGENT_POOL and str(stack.inputs[r.urn].get("vmSize") or "") in GPU_SKUS
    ]


def fine_tuning(stack: PricedStack) -> GpuHour | None:
    """Training jobs tolerate the spot taint, so they land on the spot GPU pool when there is one."""
    candidates = []
    for r, pool in _gpu_pools(stack):
        multiplier = stack.multiplier(r.urn)
        hour = node_hour(pool, multiplier, stack.prices, spot=pool.spot)
        on_demand = node_hour(pool, multiplier, stack.prices, spot=False)
        if hour is not None and on_demand is not None:
            sku = GPU_SKUS[pool.vm_size]
            candidates.append(GpuHour(r.name, pool.vm_size, sku.gpus, sku.gpu_model, pool.spot, hour, on_demand))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (not c.spot, c.gpu_hour))


def gpu_requests(values: Mapping[str, Any]) -> int:
    """GPUs one replica of a chart's main workload asks for (top-level `resources`, the common convention)."""
    resources = get_path(values, "resources", default={})
    for key in ("limits", "requests"):
        found = resources.get(key) if isinstance(resources, Mapping) else None
        if isinstance(found, Mapping) and found.get(GPU_RESOURCE) is not None:
            return int(found[GPU_RESOURCE])
    return 0


def serving_floor(stack: PricedStack) -> list[LineItem]:
    """GPU nodes that the model servers' minimum replicas keep busy beyond the GPU pools' minimum.

    Spot pools carry a taint that only training jobs tolerate, so serving lands on regular GPU pools.
    """
    demand = 0
    for r in stack.resources:
        if r.type != HELM_RELEASE or r.provider in stack.external_providers:
            continue
        values = stack.inputs[r.urn].get("values")
        if isinstance(values, Mapping):
            demand += gpu_requests(values) * replica_range(values)[0]
    regular = [(r, p) for r, p in _gpu_pools(stack) if not p.spot]
    if not demand or not regular:
        return []
    supply = sum(GPU_SKUS[p.vm_size].gpus * p.idle_nodes for _, p in regular)
    missing = demand - supply
    if missing <= 0:
        return []
    items: list[LineItem] = []
    by_gpu_hour = sorted(
        regular,
        key=lambda rp: (
            (node_hour(rp[1], stack.multiplier(rp[0].urn), stack.prices, spot=False) or math.inf)
            / GPU_SKUS[rp[1].vm_size].gpus
        ),
    )
    for r, pool in by_gpu_hour:
        if missing <= 0:
            break
        per_node = GPU_SKUS[pool.vm_size].gpus
        nodes = min(math.ceil(missing / per_node), pool.peak_nodes - pool.idle_nodes)
        hour = node_hour(pool, stack.multiplier(r.urn), stack.prices, spot=False)
        if nodes <= 0 or hour is None:
            continue
        missing -= nodes * per_node
        monthly = hour * nodes * stack.hours()
        detail = f"+{nodes} x {pool.vm_size} for the {demand} GPU(s) model servers request at minimum replicas"
        items.append(LineItem(f"{r.name} serving floor", r.type, "gpu", detail, 0.0, monthly, 0.0))
    if missing > 0:
        stack.notes.append(f"model servers request {missing} GPU(s) more than the GPU pools' maxCount allows")
    return items


def existing_cluster(stack: PricedStack, options: CostOptions) -> list[LineItem]:
    """An existing cluster (reached by kubeconfig) is noted; its GPUs count at a contracted rate."""
    items: list[LineItem] = []
    for urn in sorted(stack.external_providers):
        name = stack.by_urn[urn].name.removesuffix("-k8s")
        stack.notes.append(
            f"{name}: an existing cluster (e.g. NVIDIA DGX Cloud) reached by kubeconfig; its nodes and storage are not "
            "billed through Azure and are not in these totals"
            + (
                ""
                if options.external_gpu_hour_usd
                else " (set llmops:budget.existingClusterGpuHourUsd to include them)"
            )
        )
    if stack.external_providers and options.external_gpu_hour_usd and options.external_gpus:
        monthly = options.external_gpus * options.external_gpu_hour_usd * stack.hours()
        detail = f"{options.external_gpus} GPUs x ${options.external_gpu_hour_usd:g}/GPU-hour (contracted, not Azure)"
        items.append(flat_item("existing GPU cluster", KUBERNETES_PROVIDER, "gpu", detail, monthly))
    return items
