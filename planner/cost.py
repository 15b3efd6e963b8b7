"""Monthly cost of a plan, from the captured registrations and a dated table of Azure list prices.

Each priced resource type has one pricer (see `PRICERS`); a type that is neither priced, free nor
usage-based is listed as "not priced" so a new kind of resource is noticed, and a size the table
lacks is a problem (the budget policy refuses to vouch for a cost it cannot compute).

Three monthly figures, 730 hours each:
- idle: every autoscaler at its minimum (system pools, `AgentPool.minCount`);
- serving: idle plus the GPU nodes that the model servers' minimum replicas need when the GPU pools
  scale from zero (they would be added within minutes of the first deploy and then stay);
- peak: every autoscaler at its maximum and every scalable claim at its largest.
Usage-based charges (blob data, log ingestion, egress) are listed with their rates, outside the totals.
A cluster this stack does not create (an existing cluster such as NVIDIA DGX Cloud) is not billed
through Azure; its GPUs count only when a rate is configured (`llmops:budget.existingClusterGpuHourUsd`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pulumi.output import Unknown

from components.facts import GPU_SKUS, is_gpu_vm_size
from planner.mocks import Registration
from planner.values import unwrap

PRICES_PATH = Path(__file__).resolve().parent.parent / "facts" / "prices-azure.json"

Measure = Literal["idle", "serving", "peak"]
MEASURES: tuple[Measure, ...] = ("idle", "serving", "peak")

MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
GPU_RESOURCE = "nvidia.com/gpu"


class CostError(Exception):
    """The price table is unusable (missing or malformed)."""


@functools.cache
def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CostError(f"price table {path}: {error}") from None
    for key in ("pricesAsOf", "hoursPerMonth", "baseRegion", "regions", "vmHour", "managedDisks"):
        if key not in table:
            raise CostError(f"price table {path}: missing {key!r}")
    return dict(table)


@dataclass(frozen=True)
class CostOptions:
    """What the stack's `llmops:budget` adds to the estimate."""

    monthly_limit_usd: float | None = None
    measure: Measure = "peak"
    external_gpus: int = 0
    external_gpu_hour_usd: float | None = None


@dataclass(frozen=True)
class LineItem:
    """One priced thing, in USD per month under each measure."""

    name: str
    type: str
    category: str
    detail: str
    idle: float
    serving: float
    peak: float

    def monthly(self, measure: Measure) -> float:
        return float(getattr(self, measure))


@dataclass(frozen=True)
class GpuHour:
    """One node of the pool fine-tuning jobs land on, per hour."""

    pool: str
    vm_size: str
    gpus: int
    gpu_model: str
    spot: bool
    node_hour: float
    on_demand_node_hour: float

    @property
    def gpu_hour(self) -> float:
        return self.node_hour / self.gpus


@dataclass
class CostReport:
    currency: str
    prices_as_of: str
    region: str | None
    region_multiplier: float
    region_estimated: bool
    items: list[LineItem] = field(default_factory=list)
    usage_based: list[str] = field(default_factory=list)
    not_priced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fine_tuning: GpuHour | None = None
    options: CostOptions = CostOptions()

    def monthly(self, measure: Measure) -> float:
        return round(sum(item.monthly(measure) for item in self.items), 2)

    @property
    def budget_exceeded(self) -> bool:
        limit = self.options.monthly_limit_usd
        return limit is not None and self.monthly(self.options.measure) > limit

    def to_json(self) -> dict[str, Any]:
        limit = self.options.monthly_limit_usd
        return {
            "currency": self.currency,
            "pricesAsOf": self.prices_as_of,
            "priceTable": "facts/prices-azure.json",
            "region": self.region,
            "regionMultiplier": self.region_multiplier,
            "regionEstimated": self.region_estimated,
            "monthly": {measure: self.monthly(measure) for measure in MEASURES},
            "budget": None
            if limit is None
            else {
                "monthlyLimitUsd": limit,
                "measure": self.options.measure,
                "withinBudget": not self.budget_exceeded,
            },
            "fineTuningGpuHour": None
            if self.fine_tuning is None
            else {
                "pool": self.fine_tuning.pool,
                "vmSize": self.fine_tuning.vm_size,
                "gpus": self.fine_tuning.gpus,
                "gpuModel": self.fine_tuning.gpu_model,
                "spot": self.fine_tuning.spot,
                "nodeHourUsd": round(self.fine_tuning.node_hour, 4),
                "gpuHourUsd": round(self.fine_tuning.gpu_hour, 4),
                "onDemandNodeHourUsd": round(self.fine_tuning.on_demand_node_hour, 4),
            },
            "items": [
                {
                    "name": i.name,
                    "type": i.type,
                    "category": i.category,
                    "detail": i.detail,
                    "idle": round(i.idle, 2),
                    "serving": round(i.serving, 2),
                    "peak": round(i.peak, 2),
                }
                for i in self.items
            ],
            "usageBased": self.usage_based,
            "notPriced": self.not_priced,
            "problems": self.problems,
            "notes": self.notes,
        }


# ------------------------------------------------------------------------------------------------------
# Reading captured inputs
# ------------------------------------------------------------------------------------------------------


def _known(value: Any) -> Any:
    """Plain data with secrets revealed and unknowns as None: prices only need known inputs."""
    if isinstance(value, Unknown):
        return None
    if isinstance(value, Mapping):
        return {str(k): _known(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_known(v) for v in value]
    return value


def get(data: Any, path: str, default: Any = None) -> Any:
    """`a.b.c` into nested mappings; a missing or null step gives `default`."""
    current = data
    for step in path.split("."):
        if not isinstance(current, Mapping) or current.get(step) is None:
            return default
        current = current[step]
    return current


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_TO_GIB = {
    None: 1 / 2**30,
    "Ki": 1 / 2**20,
    "Mi": 1 / 2**10,
    "Gi": 1.0,
    "Ti": 2.0**10,
    "Pi": 2.0**20,
    "k": 1e3 / 2**30,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
    "T": 1e12 / 2**30,
    "P": 1e15 / 2**30,
}


def quantity_gib(value: Any) -> float | None:
    """A Kubernetes storage quantity in GiB ("100Gi", "2Ti", "500G"); None when not a quantity."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 2**30
    match = _QUANTITY.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        return None
    return float(match.group(1)) * _TO_GIB[match.group(2)]


def _truthy(value: Any) -> bool:
    return value.strip().lower() == "true" if isinstance(value, str) else bool(value)


def chart_of(inputs: Mapping[str, Any]) -> str:
    """The chart's own name whichever way it is given (`repo/nim-llm`, an OCI URL, a packaged .tgz)."""
    chart = str(inputs.get("chart") or "")
    last = chart.rstrip("/").rsplit("/", 1)[-1]
    if last.endswith(".tgz"):
        last = re.sub(r"-v?\d+\.\d+\.\d+.*$", "", last.removesuffix(".tgz"))
    return last


# ------------------------------------------------------------------------------------------------------
# The stack as the pricers see it
# ------------------------------------------------------------------------------------------------------


@dataclass
class _Stack:
    """Registrations with known inputs, and what pricers need to know about clusters and storage."""

    resources: list[Registration]
    inputs: dict[str, dict[str, Any]]
    prices: dict[str, Any]
    region: str | None
    by_urn: dict[str, Registration]
    aks_providers: set[str]
    external_providers: set[str]
    storage_classes: dict[tuple[str, str], tuple[str, str]]
    problems: list[str]
    notes: list[str]
    usage_based: list[str]

    def location_of(self, urn: str) -> str | None:
        location = self.inputs[urn].get("location")
        return location if isinstance(location, str) and location != "global" else self.region

    def multiplier(self, urn: str) -> float:
        return region_multiplier(self.location_of(urn), self.prices)[0]

    def hours(self) -> float:
        return float(self.prices["hoursPerMonth"])


def region_multiplier(region: str | None, prices: Mapping[str, Any]) -> tuple[float, bool]:
    """(multiplier, estimated): an unknown region gets the highest multiplier, flagged."""
    regions: Mapping[str, float] = prices["regions"]
    if region is None:
        return 1.0, False
    if region in regions:
        return float(regions[region]), False
    return max(float(v) for v in regions.values()), True


def _stack_region(resources: Iterable[Registration], inputs: Mapping[str, Mapping[str, Any]]) -> str | None:
    seen = Counter(
        str(inputs[r.urn]["location"])
        for r in resources
        if r.type.startswith("azure-native:")
        and isinstance(inputs[r.urn].get("location"), str)
        and inputs[r.urn]["location"] != "global"
    )
    return seen.most_common(1)[0][0] if seen else None


def _depends_on_type(urn: str, type_: str, by_urn: Mapping[str, Registration]) -> bool:
    seen: set[str] = set()
    stack = list(by_urn[urn].dependencies) if urn in by_urn else []
    while stack:
        current = stack.pop()
        if current in seen or current not in by_urn:
            continue
        seen.add(current)
        if by_urn[current].type == type_:
            return True
        stack.extend(by_urn[current].dependencies)
    return False


def _build(resources: list[Registration], prices: dict[str, Any]) -> _Stack:
    inputs = {r.urn: _known(unwrap(r.inputs)) for r in resources}
    by_urn = {r.urn: r for r in resources}
    providers = [r for r in resources if r.type == KUBERNETES_PROVIDER]
    aks = {p.urn for p in providers if _depends_on_type(p.urn, MANAGED_CLUSTER, by_urn)}
    classes: dict[tuple[str, str], tuple[str, str]] = {}
    for r in resources:
        if r.type != STORAGE_CLASS:
            continue
        spec = inputs[r.urn]
        name = get(spec, "metadata.name")
        provisioner = str(spec.get("provisioner") or "")
        if not name:
            continue
        if provisioner == "disk.csi.azure.com":
            classes[(r.provider, name)] = ("disk", str(get(spec, "parameters.skuName", "StandardSSD_LRS")))
        elif provisioner == "file.csi.azure.com":
            classes[(r.provider, name)] = ("files", str(get(spec, "parameters.skuName", "Standard_LRS")))
    return _Stack(
        resources=resources,
        inputs=inputs,
        prices=prices,
        region=_stack_region(resources, inputs),
        by_urn=by_urn,
        aks_providers=aks,
        external_providers={p.urn for p in providers} - aks,
        storage_classes=classes,
        problems=[],
        notes=[],
        usage_based=[],
    )


# ------------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------------


def disk_month(sku: str, size_gib: float, prices: Mapping[str, Any]) -> tuple[str, float] | None:
    """(tier, USD/month at the base region) of a managed disk: its size rounded up to the next tier."""
    family = "Premium_LRS" if sku.startswith("Premium") else "StandardSSD_LRS" if sku.startswith("StandardSSD") else ""
    tiers = prices["managedDisks"].get(family)
    if not tiers:
        return None
    for tier in tiers:
        if size_gib <= tier["gib"]:
            return str(tier["tier"]), float(tier["month"])
    largest = tiers[-1]
    return f"{largest['tier']}+", float(largest["month"]) * size_gib / float(largest["gib"])


def vm_hour(vm_size: str, prices: Mapping[str, Any]) -> float | None:
    value = prices["vmHour"].get(vm_size)
    return None if value is None else float(value)


@dataclass(frozen=True)
class _Pool:
    name: str
    vm_size: str
    idle_nodes: int
    peak_nodes: int
    os_disk_gib: int
    ephemeral_os: bool
    spot: bool
    spot_max_price: float | None


def _pool(name: str, spec: Mapping[str, Any]) -> _Pool:
    count = int(spec.get("count") or 0) if spec.get("count") is not None else 1
    autoscaled = _truthy(spec.get("enableAutoScaling"))
    max_price = spec.get("spotMaxPrice")
    return _Pool(
        name=name,
        vm_size=str(spec.get("vmSize") or ""),
        idle_nodes=int(spec["minCount"]) if autoscaled and spec.get("minCount") is not None else count,
        peak_nodes=int(spec["maxCount"]) if autoscaled and spec.get("maxCount") is not None else count,
        os_disk_gib=int(spec.get("osDiskSizeGB") or 128),
        ephemeral_os=spec.get("osDiskType") == "Ephemeral",
        spot=spec.get("scaleSetPriority") == "Spot",
        spot_max_price=float(max_price) if isinstance(max_price, int | float) and max_price > 0 else None,
    )


def _node_hour(pool: _Pool, multiplier: float, prices: Mapping[str, Any], *, spot: bool) -> float | None:
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


def _price_pool(stack: _Stack, urn: str, pool: _Pool, type_: str) -> list[LineItem]:
    multiplier = stack.multiplier(urn)
    hour = _node_hour(pool, multiplier, stack.prices, spot=pool.spot)
    if hour is None:
        stack.problems.append(f"{pool.name}: no price for VM size {pool.vm_size!r} in facts/prices-azure.json")
        return []
    hours = stack.hours()
    disk = "ephemeral OS disk" if pool.ephemeral_os else f"{pool.os_disk_gib} GiB OS disk"
    nodes = f"{pool.idle_nodes}" if pool.idle_nodes == pool.peak_nodes else f"{pool.idle_nodes}-{pool.peak_nodes}"
    gpu = pool.vm_size in GPU_SKUS or is_gpu_vm_size(pool.vm_size)
    return [
        LineItem(
            name=pool.name,
            type=type_,
            category="gpu" if gpu else "compute",
            detail=f"{nodes} x {pool.vm_size}{' spot' if pool.spot else ''} + {disk}",
            idle=hour * pool.idle_nodes * hours,
            serving=hour * pool.idle_nodes * hours,
            peak=hour * pool.peak_nodes * hours,
        )
    ]


def _flat(name: str, type_: str, category: str, detail: str, monthly: float) -> LineItem:
    return LineItem(name, type_, category, detail, monthly, monthly, monthly)


# ------------------------------------------------------------------------------------------------------
# Pricers by resource type
# ------------------------------------------------------------------------------------------------------


def _managed_cluster(stack: _Stack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    prices, hours, multiplier = stack.prices, stack.hours(), stack.multiplier(r.urn)
    items: list[LineItem] = []
    tier = str(get(spec, "sku.tier", "Free"))
    rate = prices["aksTierHour"].get(tier)
    if rate is None:
        stack.problems.append(f"{r.name}: no price for AKS tier {tier!r}")
    elif rate:
        items.append(_flat(f"{r.name} control plane", r.type, "control-plane", f"AKS {tier} tier", rate * hours))
    network = prices["network"]
    outbound = str(get(spec, "networkProfile.outboundType", "loadBalancer"))
    if outbound == "loadBalancer":
        hourly = (network["loadBalancerStandardHour"] + network["publicIpStandardHour"]) * multiplier
        items.append(_flat(f"{r.name} outbound", r.type, "network", "Standard LB + outbound public IP", hourly * hours))
    elif outbound == "managedNATGateway":
        hourly = (network["natGatewayHour"] + network["publicIpStandardHour"]) * multiplier
        items.append(_flat(f"{r.name} outbound", r.type, "network", "managed NAT gateway + public IP", hourly * hours))
    for profile in spec.get("agentPoolProfiles") or []:
        if isinstance(profile, Mapping):
            items += _price_pool(stack, r.urn, _pool(f"{r.name}/{profile.get('name')}", profile), r.type)
    return items


def _agent_pool(stack: _Stack, r: Registration) -> list[LineItem]:
    return _price_pool(stack, r.urn, _pool(r.name, stack.inputs[r.urn]), r.type)


def _postgres(stack: _Stack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    table = stack.prices["postgresFlexible"]
    sku = str(get(spec, "sku.name", ""))
    rate = table["computeHour"].get(sku)
    if rate is None:
        stack.problems.append(f"{r.name}: no price for PostgreSQL flexible server SKU {sku!r}")
        return []
    storage_gb = float(get(spec, "storage.storageSizeGB", 32))
    ha = str(get(spec, "highAvailability.mode", "Disabled")) not in {"Disabled", ""}
    factor = float(table["highAvailabilityFactor"]) if ha else 1.0
    monthly = (rate * stack.hours() + storage_gb * float(table["storageGbMonth"])) * factor * stack.multiplier(r.urn)
    detail = f"{sku} + {storage_gb:g} GB{' x2 (HA standby)' if ha else ''}"
    return [_flat(r.name, r.type, "database", detail, monthly)]


def _hourly(key: str, category: str, detail: str) -> Callable[[_Stack, Registration], list[LineItem]]:
    def price(stack: _Stack, r: Registration) -> list[LineItem]:
        monthly = float(stack.prices["network"][key]) * stack.hours() * stack.multiplier(r.urn)
        return [_flat(r.name, r.type, category, detail, monthly)]

    return price


def _private_zone(stack: _Stack, r: Registration) -> list[LineItem]:
    return [_flat(r.name, r.type, "network", "private DNS zone", float(stack.prices["network"]["privateDnsZoneMonth"]))]


def _storage_account(stack: _Stack, r: Registration) -> list[LineItem]:
    sku = str(get(stack.inputs[r.urn], "sku.name", "Standard_LRS"))
    rate = stack.prices["storage"]["blobHotGbMonth"].get(sku)
    per_gb = f"${rate * stack.multiplier(r.urn):.4f}/GB-month" if rate is not None else "see the Blob price page"
    stack.usage_based.append(f"{r.name}: blob data ({sku}, hot) at {per_gb}, plus operations and egress")
    return []


def _usage_note(text: str) -> Callable[[_Stack, Registration], list[LineItem]]:
    def note(stack: _Stack, r: Registration) -> list[LineItem]:
        stack.usage_based.append(f"{r.name}: {text}")
        return []

    return note


# Claims: PersistentVolumeClaims, StatefulSet templates and the volumes Helm releases create.


def _claim_item(
    stack: _Stack,
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
        detail = f"{_count(replicas)} x {size_gib:g} GiB {sku} disk ({name})"
        month *= multiplier
        return [LineItem(label, r.type, "storage", detail, month * idle, month * idle, month * peak)]
    storage = stack.prices["storage"]
    if sku.startswith("Premium"):
        gib = max(size_gib, float(storage["filesPremiumMinGib"]))
        month = gib * float(storage["filesPremiumGibMonth"]) * multiplier
        detail = f"{_count(replicas)} x {gib:g} GiB premium Azure Files share"
        return [LineItem(label, r.type, "storage", detail, month * idle, month * idle, month * peak)]
    rate = float(storage["filesStandardGibMonth"]) * multiplier
    stack.usage_based.append(f"{label}: standard Azure Files share, data stored at ${rate:.3f}/GiB-month")
    return []


def _count(replicas: tuple[int, int]) -> str:
    return str(replicas[0]) if replicas[0] == replicas[1] else f"{replicas[0]}-{replicas[1]}"


def _pvc(stack: _Stack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    size = quantity_gib(get(spec, "spec.resources.requests.storage"))
    if size is None:
        return []
    return _claim_item(stack, r, r.name, get(spec, "spec.storageClassName"), size, (1, 1))


def _stateful_set(stack: _Stack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    replicas = int(get(spec, "spec.replicas", 1))
    items: list[LineItem] = []
    for template in get(spec, "spec.volumeClaimTemplates", []) or []:
        size = quantity_gib(get(template, "spec.resources.requests.storage"))
        if size is not None:
            label = f"{r.name}/{get(template, 'metadata.name', 'data')}"
            items += _claim_item(stack, r, label, get(template, "spec.storageClassName"), size, (replicas, replicas))
    return items


def replica_range(values: Mapping[str, Any]) -> tuple[int, int]:
    """A chart's replicas by the common convention: `autoscaling.{enabled,minReplicas,maxReplicas}`, else
    `replicaCount`."""
    if _truthy(get(values, "autoscaling.enabled", False)):
        low = int(get(values, "autoscaling.minReplicas", 1))
        return low, max(low, int(get(values, "autoscaling.maxReplicas", low)))
    count = int(get(values, "replicaCount", 1))
    return count, count


def _helm_release(stack: _Stack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    values: Mapping[str, Any] = spec["values"] if isinstance(spec.get("values"), Mapping) else {}
    release = str(spec.get("name") or r.name)
    items: list[LineItem] = []
    for volume in stack.prices.get("helmVolumes", {}).get(chart_of(spec), []):
        if "enabledWhen" in volume and not _truthy(get(values, volume["enabledWhen"], volume["enabledWhenDefault"])):
            continue
        block = get(values, volume["path"], {})
        if not _truthy(get(block, volume["enabled"], volume["enabledDefault"])) or get(block, "existingClaim"):
            continue
        size = quantity_gib(get(block, volume["size"], volume["sizeDefault"]))
        if size is None:
            continue
        per_replica = "perReplicaWhen" in volume and _truthy(
            get(values, volume["perReplicaWhen"], volume["perReplicaDefault"])
        )
        replicas = replica_range(values) if per_replica else (1, 1)
        label = f"{release} {volume['path']}"
        items += _claim_item(stack, r, label, get(block, volume["storageClass"]) or None, size, replicas)
    return items


PRICERS: dict[str, Callable[[_Stack, Registration], list[LineItem]]] = {
    MANAGED_CLUSTER: _managed_cluster,
    AGENT_POOL: _agent_pool,
    "azure-native:dbforpostgresql:Server": _postgres,
    "azure-native:network:PublicIPAddress": _hourly("publicIpStandardHour", "network", "Standard public IP"),
    "azure-native:network:LoadBalancer": _hourly("loadBalancerStandardHour", "network", "Standard load balancer"),
    "azure-native:network:NatGateway": _hourly("natGatewayHour", "network", "NAT gateway"),
    "azure-native:network:PrivateEndpoint": _hourly("privateEndpointHour", "network", "private endpoint"),
    "azure-native:privatedns:PrivateZone": _private_zone,
    "azure-native:storage:StorageAccount": _storage_account,
    "azure-native:operationalinsights:Workspace": _usage_note("log ingestion, about $2.30/GB (Analytics logs)"),
    "kubernetes:core/v1:PersistentVolumeClaim": _pvc,
    "kubernetes:apps/v1:StatefulSet": _stateful_set,
    HELM_RELEASE: _helm_release,
}


# ------------------------------------------------------------------------------------------------------
# GPUs: fine-tuning node-hour, serving floor, existing clusters
# ------------------------------------------------------------------------------------------------------


def _gpu_pools(stack: _Stack) -> list[tuple[Registration, _Pool]]:
    return [
        (r, _pool(r.name, stack.inputs[r.urn]))
        for r in stack.resources
        if r.type == AGENT_POOL and str(stack.inputs[r.urn].get("vmSize") or "") in GPU_SKUS
    ]


def _fine_tuning(stack: _Stack) -> GpuHour | None:
    """Training jobs tolerate the spot taint, so they land on the spot GPU pool when there is one."""
    candidates = []
    for r, pool in _gpu_pools(stack):
        multiplier = stack.multiplier(r.urn)
        hour = _node_hour(pool, multiplier, stack.prices, spot=pool.spot)
        on_demand = _node_hour(pool, multiplier, stack.prices, spot=False)
        if hour is not None and on_demand is not None:
            sku = GPU_SKUS[pool.vm_size]
            candidates.append(GpuHour(r.name, pool.vm_size, sku.gpus, sku.gpu_model, pool.spot, hour, on_demand))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (not c.spot, c.gpu_hour))


def gpu_requests(values: Mapping[str, Any]) -> int:
    """GPUs one replica of a chart's main workload asks for (top-level `resources`, the common convention)."""
    resources = get(values, "resources", {})
    for key in ("limits", "requests"):
        found = resources.get(key) if isinstance(resources, Mapping) else None
        if isinstance(found, Mapping) and found.get(GPU_RESOURCE) is not None:
            return int(found[GPU_RESOURCE])
    return 0


def _serving_floor(stack: _Stack) -> list[LineItem]:
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
            (_node_hour(rp[1], stack.multiplier(rp[0].urn), stack.prices, spot=False) or math.inf)
            / GPU_SKUS[rp[1].vm_size].gpus
        ),
    )
    for r, pool in by_gpu_hour:
        if missing <= 0:
            break
        per_node = GPU_SKUS[pool.vm_size].gpus
        nodes = min(math.ceil(missing / per_node), pool.peak_nodes - pool.idle_nodes)
        hour = _node_hour(pool, stack.multiplier(r.urn), stack.prices, spot=False)
        if nodes <= 0 or hour is None:
            continue
        missing -= nodes * per_node
        monthly = hour * nodes * stack.hours()
        detail = f"+{nodes} x {pool.vm_size} for the {demand} GPU(s) model servers request at minimum replicas"
        items.append(LineItem(f"{r.name} serving floor", r.type, "gpu", detail, 0.0, monthly, 0.0))
    if missing > 0:
        stack.notes.append(f"model servers request {missing} GPU(s) more than the GPU pools' maxCount allows")
    return items


def _external(stack: _Stack, options: CostOptions) -> list[LineItem]:
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
        items.append(_flat("existing GPU cluster", KUBERNETES_PROVIDER, "gpu", detail, monthly))
    return items


# ------------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------------


def _is_free(type_: str, prices: Mapping[str, Any]) -> bool:
    return any(type_ == free or (free.endswith(":") and type_.startswith(free)) for free in prices["freeTypes"])


def estimate(
    registrations: Iterable[Registration], options: CostOptions | None = None, prices: dict[str, Any] | None = None
) -> CostReport:
    options = options or CostOptions()
    prices = prices or load_prices()
    stack = _build(list(registrations), prices)
    multiplier, estimated = region_multiplier(stack.region, prices)
    report = CostReport(
        currency=str(prices.get("currency", "USD")),
        prices_as_of=str(prices["pricesAsOf"]),
        region=stack.region,
        region_multiplier=multiplier,
        region_estimated=estimated,
        options=options,
    )
    not_priced: set[str] = set()
    for r in stack.resources:
        pricer = PRICERS.get(r.type)
        if pricer is not None:
            report.items += pricer(stack, r)
        elif r.type.startswith("azure-native:") and not _is_free(r.type, prices):
            not_priced.add(r.type)
    report.items += _serving_floor(stack)
    report.items += _external(stack, options)
    report.fine_tuning = _fine_tuning(stack)
    if estimated:
        report.notes.insert(
            0,
            f"region {stack.region!r} is not in the price table: priced at the highest multiplier ({multiplier:g}), "
            "an estimate",
        )
    report.not_priced = sorted(not_priced)
    report.problems = stack.problems
    report.notes += stack.notes
    report.usage_based = stack.usage_based
    return report


def options_from_stack_config(raw: Mapping[str, Any]) -> CostOptions:
    """Budget options from a stack file's `config:` (already validated by the evaluation)."""
    from components.config import NAMESPACE, SECRET_KEYS, parse_config

    prefix = f"{NAMESPACE}:"
    values = {
        key.removeprefix(prefix): value
        for key, value in raw.items()
        if key.startswith(prefix) and key.removeprefix(prefix) not in SECRET_KEYS
    }
    config = parse_config(values)
    budget = config.budget
    if budget is None:
        return CostOptions()
    existing = config.gpu_cluster.existing
    return CostOptions(
        monthly_limit_usd=budget.monthly_limit_usd,
        measure=budget.measure,
        external_gpus=existing.gpu_count if existing is not None else 0,
        external_gpu_hour_usd=budget.existing_cluster_gpu_hour_usd,
    )


def format_usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def summary_lines(report: CostReport) -> list[str]:
    region = report.region or "no Azure region"
    flag = " (estimate: region not in the table)" if report.region_estimated else ""
    lines = [
        f"Cost (USD/month, Azure list prices as of {report.prices_as_of}, pay-as-you-go, {region} x"
        f"{report.region_multiplier:g}{flag}):",
        "  idle {}   serving {}   peak {}".format(*(format_usd(report.monthly(m)) for m in MEASURES)),
    ]
    limit = report.options.monthly_limit_usd
    if limit is not None:
        verdict = "OVER BUDGET" if report.budget_exceeded else "within budget"
        lines.append(f"  budget {format_usd(limit)} on {report.options.measure}: {verdict}")
    if report.fine_tuning is not None:
        ft = report.fine_tuning
        kind = "spot" if ft.spot else "on-demand"
        lines.append(
            f"  fine-tuning: {format_usd(ft.node_hour)}/h per {ft.vm_size} node ({kind}, {ft.gpus} x {ft.gpu_model}), "
            f"{format_usd(ft.gpu_hour)}/GPU-hour; on-demand {format_usd(ft.on_demand_node_hour)}/h"
        )
    width = max((len(i.name) for i in report.items), default=0)
    for item in sorted(report.items, key=lambda i: -i.peak):
        lines.append(
            f"  {item.name:<{width}}  {format_usd(item.idle):>9} {format_usd(item.serving):>9} "
            f"{format_usd(item.peak):>9}  {item.detail}"
        )
    for text in report.usage_based:
        lines.append(f"  usage-based: {text}")
    for text in report.not_priced:
        lines.append(f"  not priced: {text} (add it to facts/prices-azure.json or its freeTypes)")
    for text in report.notes:
        lines.append(f"  note: {text}")
    for text in report.problems:
        lines.append(f"  PROBLEM: {text}")
    return lines
