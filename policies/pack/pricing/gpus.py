"""GPUs: the fine-tuning node-hour, the serving floor (GPU nodes the model servers keep busy beyond the
pools' minimum, around the clock or inside a serving schedule's window), and the GPUs of an existing cluster
billed at a contracted rate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..gpu_sizes import GPU_SKUS
from ..props import get_path
from ..record import Registration
from ..tokens import AGENT_POOL, GPU_RESOURCE, HELM_RELEASE, KUBERNETES_PROVIDER, SCALED_OBJECT
from .claims import replica_range
from .clusters import Pool, node_hour, pool_of
from .inputs import PricedStack
from .report import CostOptions, GpuHour, LineItem, ServingSchedule, flat_item
from .schedule import WeeklyWindow, weekly_window


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


@dataclass(frozen=True)
class _Demand:
    """GPUs a model server keeps busy: always, or inside the weekly window of its KEDA cron trigger."""

    release: str
    gpus_per_replica: int
    replicas: int
    window: WeeklyWindow | None = None
    timezone: str = ""

    @property
    def gpus(self) -> int:
        return self.gpus_per_replica * self.replicas


def _scaled_objects(stack: PricedStack) -> dict[tuple[str, Any, Any], Mapping[str, Any]]:
    """KEDA ScaledObjects by (provider, namespace, target name): the nim-llm chart names its StatefulSet after the
    release, so a target names the release it scales."""
    found: dict[tuple[str, Any, Any], Mapping[str, Any]] = {}
    for r in stack.resources:
        if r.type == SCALED_OBJECT and r.provider not in stack.external_providers:
            spec = stack.inputs[r.urn]
            key = (
                r.provider,
                get_path(spec, "metadata", "namespace"),
                get_path(spec, "spec", "scaleTargetRef", "name"),
            )
            found[key] = get_path(spec, "spec", default={})
    return found


def _demands(stack: PricedStack) -> list[_Demand]:
    scaled = _scaled_objects(stack)
    demands = []
    for r in stack.resources:
        if r.type != HELM_RELEASE or r.provider in stack.external_providers:
            continue
        spec = stack.inputs[r.urn]
        values = spec.get("values")
        per_replica = gpu_requests(values) if isinstance(values, Mapping) else 0
        if not per_replica or not isinstance(values, Mapping):
            continue
        name = str(spec.get("name") or r.name)
        scaling = scaled.get((r.provider, spec.get("namespace"), name))
        if scaling is None:
            demands.append(_Demand(name, per_replica, replica_range(values)[0]))
            continue
        # KEDA's default minReplicaCount is 0.
        floor = int(get_path(scaling, "minReplicaCount", default=0))
        cron = next((t for t in get_path(scaling, "triggers", default=[]) or [] if get_path(t, "type") == "cron"), None)
        if cron is None or floor > 0:
            demands.append(_Demand(name, per_replica, floor))
            continue
        meta = get_path(cron, "metadata", default={})
        try:
            window = weekly_window(str(meta.get("start")), str(meta.get("end")))
        except ValueError as error:
            stack.notes.append(f"{name}: serving schedule not priced as a window ({error}); counted as always on")
            window = None
        demands.append(
            _Demand(
                name, per_replica, int(meta.get("desiredReplicas") or 1), window, str(meta.get("timezone") or "UTC")
            )
        )
    return demands


_Added = list[tuple[Registration, Pool, int, float]]


def _fill(stack: PricedStack, pools: list[tuple[Registration, Pool]], missing: int, used: dict[str, int]) -> _Added:
    """GPU nodes to add for `missing` GPUs, cheapest GPU-hour first, within each pool's maxCount (nodes already
    added in `used`); the GPUs no pool has room for stay unmet."""
    added: _Added = []
    for r, pool in pools:
        if missing <= 0:
            break
        per_node = GPU_SKUS[pool.vm_size].gpus
        nodes = min(math.ceil(missing / per_node), pool.peak_nodes - pool.idle_nodes - used.get(r.urn, 0))
        hour = node_hour(pool, stack.multiplier(r.urn), stack.prices, spot=False)
        if nodes <= 0 or hour is None:
            continue
        used[r.urn] = used.get(r.urn, 0) + nodes
        missing -= nodes * per_node
        added.append((r, pool, nodes, hour))
    if missing > 0:
        stack.notes.append(f"model servers request {missing} GPU(s) more than the GPU pools' maxCount allows")
    return added


def serving_floor(stack: PricedStack) -> tuple[list[LineItem], list[ServingSchedule]]:
    """GPU nodes that the model servers keep busy beyond the GPU pools' minimum: around the clock at their minimum
    replicas, or inside the window of a serving schedule (KEDA cron trigger, zero replicas outside it). Each
    schedule comes with what the same replicas would cost around the clock.

    Spot pools carry a taint that only training jobs tolerate, so serving lands on regular GPU pools.
    """
    demands = _demands(stack)
    regular = sorted(
        ((r, p) for r, p in _gpu_pools(stack) if not p.spot),
        key=lambda rp: (
            (node_hour(rp[1], stack.multiplier(rp[0].urn), stack.prices, spot=False) or math.inf)
            / GPU_SKUS[rp[1].vm_size].gpus
        ),
    )
    if not demands or not regular:
        return [], []
    hours = stack.hours()
    free = sum(GPU_SKUS[p.vm_size].gpus * p.idle_nodes for _, p in regular)
    used: dict[str, int] = {}
    items: list[LineItem] = []
    always = sum(d.gpus for d in demands if d.window is None)
    if always > free:
        for r, pool, nodes, hour in _fill(stack, regular, always - free, used):
            detail = f"+{nodes} x {pool.vm_size} for the {always} GPU(s) model servers request at minimum replicas"
            items.append(LineItem(f"{r.name} serving floor", r.type, "gpu", detail, 0.0, hour * nodes * hours, 0.0))
    free = max(free - always, 0)
    schedules: list[ServingSchedule] = []
    for demand in demands:
        if demand.window is None:
            continue
        covered = min(free, demand.gpus)
        free -= covered
        added = _fill(stack, regular, demand.gpus - covered, used) if demand.gpus > covered else []
        always_on = sum(hour * nodes for _, _, nodes, hour in added) * hours
        window_hours = demand.window.monthly_hours(hours)
        scheduled = always_on * window_hours / hours
        when = f"{demand.window.describe()} {demand.timezone}"
        for r, pool, nodes, hour in added:
            detail = f"+{nodes} x {pool.vm_size} for {demand.release}, {when} ({window_hours:.0f} h/month)"
            monthly = hour * nodes * window_hours
            items.append(LineItem(f"{demand.release} serving window", r.type, "gpu", detail, 0.0, monthly, 0.0))
        schedules.append(
            ServingSchedule(
                release=demand.release,
                window=when,
                hours_per_month=window_hours,
                replicas=demand.replicas,
                gpus=demand.gpus,
                scheduled=scheduled,
                always_on=always_on,
            )
        )
    return items, schedules


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
