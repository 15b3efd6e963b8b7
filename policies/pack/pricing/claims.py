"""Pricers for storage claims: PersistentVolumeClaims, StatefulSet claim templates and the volumes
Helm releases create (described per chart in the price table's `helmVolumes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..props import chart_name, get_dotted, get_path, truthy
from ..record import Registration
from .inputs import PricedStack, quantity_gib
from .prices import disk_month
from .report import LineItem, span


def _claim_item(
    stack: PricedStack,
    r: Registration,
    label: str,
    storage_class: str | None,
    size_gib: float,
    replicas: tuple[int, int],
) -> list[LineItem]:
    if r.provider in stack.external_providers:
        return []
    klass = storage_class or "default"
    found = stack.storage_classes.get((r.provider, klass)) or next(
        (v for (provider, name), v in stack.storage_classes.items() if name == klass and not r.provider), None
    )
    builtin = stack.prices.get("aksStorageClasses", {}).get(klass)
    if found is None and isinstance(builtin, Mapping):
        found = (str(builtin["kind"]), str(builtin["sku"]))
    if found is None:
        stack.notes.append(f"{label}: storage class {klass!r} is not an AKS or planned class; not priced")
        return []
    kind, sku = found
    multiplier = stack.multiplier(r.urn)
    idle, peak = replicas
    if kind == "disk":
        tier = disk_month(sku, size_gib, stack.prices)
        if tier is None:
            stack.problems.append(f"{label}: no price for disk SKU {sku!r}")
            return []
        name, month = tier
        detail = f"{span(replicas)} x {size_gib:g} GiB {sku} disk ({name})"
        month *= multiplier
        return [LineItem(label, r.type, "storage", detail, month * idle, month * idle, month * peak)]
    storage = stack.prices["storage"]
    if sku.startswith("Premium"):
        gib = max(size_gib, float(storage["filesPremiumMinGib"]))
        month = gib * float(storage["filesPremiumGibMonth"]) * multiplier
        detail = f"{span(replicas)} x {gib:g} GiB premium Azure Files share"
        return [LineItem(label, r.type, "storage", detail, month * idle, month * idle, month * peak)]
    rate = float(storage["filesStandardGibMonth"]) * multiplier
    stack.usage_based.append(f"{label}: standard Azure Files share, data stored at ${rate:.3f}/GiB-month")
    return []


def persistent_volume_claim(stack: PricedStack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    size = quantity_gib(get_path(spec, "spec", "resources", "requests", "storage"))
    if size is None:
        return []
    return _claim_item(stack, r, r.name, get_path(spec, "spec", "storageClassName"), size, (1, 1))


def stateful_set(stack: PricedStack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    replicas = int(get_path(spec, "spec", "replicas", default=1))
    items: list[LineItem] = []
    for template in get_path(spec, "spec", "volumeClaimTemplates", default=[]) or []:
        size = quantity_gib(get_path(template, "spec", "resources", "requests", "storage"))
        if size is not None:
            label = f"{r.name}/{get_path(template, 'metadata', 'name', default='data')}"
            storage_class = get_path(template, "spec", "storageClassName")
            items += _claim_item(stack, r, label, storage_class, size, (replicas, replicas))
    return items


def replica_range(values: Mapping[str, Any]) -> tuple[int, int]:
    """A chart's replicas by the common convention: `autoscaling.{enabled,minReplicas,maxReplicas}`, else
    `replicaCount`."""
    if truthy(get_path(values, "autoscaling", "enabled", default=False)):
        low = int(get_path(values, "autoscaling", "minReplicas", default=1))
        return low, max(low, int(get_path(values, "autoscaling", "maxReplicas", default=low)))
    count = int(get_path(values, "replicaCount", default=1))
    return count, count


def helm_release(stack: PricedStack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    values: Mapping[str, Any] = spec["values"] if isinstance(spec.get("values"), Mapping) else {}
    release = str(spec.get("name") or r.name)
    items: list[LineItem] = []
    for volume in stack.prices.get("helmVolumes", {}).get(chart_name(spec), []):
        if "enabledWhen" in volume and not truthy(
            get_dotted(values, volume["enabledWhen"], volume["enabledWhenDefault"])
        ):
            continue
        block = get_dotted(values, volume["path"], {})
        if not truthy(get_dotted(block, volume["enabled"], volume["enabledDefault"])) or get_path(
            block, "existingClaim"
        ):
            continue
        size = quantity_gib(get_dotted(block, volume["size"], volume["sizeDefault"]))
        if size is None:
            continue
        per_replica = "perReplicaWhen" in volume and truthy(
            get_dotted(values, volume["perReplicaWhen"], volume["perReplicaDefault"])
        )
        replicas = replica_range(values) if per_replica else (1, 1)
        label = f"{release} {volume['path']}"
        storage_class = get_dotted(block, volume["storageClass"]) or None
        items += _claim_item(stack, r, label, storage_class, size, replicas)
    return items
