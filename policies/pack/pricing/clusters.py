"""Pricers for AKS clusters: the control plane tier, outbound networking, and node pools (the inline
system pool and every AgentPool), each node with its OS disk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..gpu_sizes import is_gpu_vm_size
from ..props import get_path, truthy
from ..record import Registration
from .inputs import PricedStack
from .prices import PRICE_TABLE, disk_month, vm_hour
from .report import LineItem, flat_item, span


@dataclass(frozen=True)
class Pool:
    name: str
    vm_size: str
    idle_nodes: int
    peak_nodes: int
    os_disk_gib: int
    ephemeral_os: bool
    spot: bool
    spot_max_price: float | None


def pool_of(name: str, spec: Mapping[str, Any]) -> Pool:
    count = int(spec.get("count") or 0) if spec.get("count") is not None else 1
    autoscaled = truthy(spec.get("enableAutoScaling"))
    max_price = spec.get("spotMaxPrice")
    return Pool(
        name=name,
        vm_size=str(spec.get("vmSize") or ""),
        idle_nodes=int(spec["minCount"]) if autoscaled and spec.get("minCount") is not None else count,
        peak_nodes=int(spec["maxCount"]) if autoscaled and spec.get("maxCount") is not None else count,
        os_disk_gib=int(spec.get("osDiskSizeGB") or 128),
        ephemeral_os=spec.get("osDiskType") == "Ephemeral",
        spot=spec.get("scaleSetPriority") == "Spot",
        spot_max_price=float(max_price) if isinstance(max_price, int | float) and max_price > 0 else None,
    )


def node_hour(pool: Pool, multiplier: float, prices: Mapping[str, Any], *, spot: bool) -> float | None:
    """One node of the pool per hour: the VM (spot-discounted when asked) and its OS disk."""
    base = vm_hour(pool.vm_size, prices)
    if base is None:
        return None
    compute = base * multiplier
    if spot:
        compute *= 1 - float(prices["spot"]["discount"])
        if pool.spot_max_price is not None:
            compute = min(compute, pool.spot_max_price)
    disk = 0.0
    if not pool.ephemeral_os:
        found = disk_month("Premium_LRS", pool.os_disk_gib, prices)
        disk = found[1] * multiplier / float(prices["hoursPerMonth"]) if found else 0.0
    return compute + disk


def _price_pool(stack: PricedStack, urn: str, pool: Pool, type_: str) -> list[LineItem]:
    multiplier = stack.multiplier(urn)
    hour = node_hour(pool, multiplier, stack.prices, spot=pool.spot)
    if hour is None:
        stack.problems.append(f"{pool.name}: no price for VM size {pool.vm_size!r} in {PRICE_TABLE}")
        return []
    hours = stack.hours()
    disk = "ephemeral OS disk" if pool.ephemeral_os else f"{pool.os_disk_gib} GiB OS disk"
    nodes = span((pool.idle_nodes, pool.peak_nodes))
    return [
        LineItem(
            name=pool.name,
            type=type_,
            category="gpu" if is_gpu_vm_size(pool.vm_size) else "compute",
            detail=f"{nodes} x {pool.vm_size}{' spot' if pool.spot else ''} + {disk}",
            idle=hour * pool.idle_nodes * hours,
            serving=hour * pool.idle_nodes * hours,
            peak=hour * pool.peak_nodes * hours,
        )
    ]


def managed_cluster(stack: PricedStack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    prices, hours, multiplier = stack.prices, stack.hours(), stack.multiplier(r.urn)
    items: list[LineItem] = []
    tier = str(get_path(spec, "sku", "tier", default="Free"))
    rate = prices["aksTierHour"].get(tier)
    if rate is None:
        stack.problems.append(f"{r.name}: no price for AKS tier {tier!r}")
    elif rate:
        items.append(flat_item(f"{r.name} control plane", r.type, "control-plane", f"AKS {tier} tier", rate * hours))
    network = prices["network"]
    outbound = str(get_path(spec, "networkProfile", "outboundType", default="loadBalancer"))
    # Outbound IPs or prefixes of our own are priced as their own resources; otherwise AKS adds one public IP.
    own_egress = get_path(spec, "networkProfile", "loadBalancerProfile", "outboundIPPrefixes") or get_path(
        spec, "networkProfile", "loadBalancerProfile", "outboundIPs"
    )
    if outbound == "loadBalancer" and own_egress:
        hourly = network["loadBalancerStandardHour"] * multiplier
        items.append(flat_item(f"{r.name} outbound", r.type, "network", "Standard LB", hourly * hours))
    elif outbound == "loadBalancer":
        hourly = (network["loadBalancerStandardHour"] + network["publicIpStandardHour"]) * multiplier
        items.append(
            flat_item(f"{r.name} outbound", r.type, "network", "Standard LB + outbound public IP", hourly * hours)
        )
    elif outbound == "managedNATGateway":
        hourly = (network["natGatewayHour"] + network["publicIpStandardHour"]) * multiplier
        items.append(
            flat_item(f"{r.name} outbound", r.type, "network", "managed NAT gateway + public IP", hourly * hours)
        )
    for profile in spec.get("agentPoolProfiles") or []:
        if isinstance(profile, Mapping):
            items += _price_pool(stack, r.urn, pool_of(f"{r.name}/{profile.get('name')}", profile), r.type)
    return items


def agent_pool(stack: PricedStack, r: Registration) -> list[LineItem]:
    return _price_pool(stack, r.urn, pool_of(r.name, stack.inputs[r.urn]), r.type)
