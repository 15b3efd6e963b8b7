"""The stack as the pricers see it: each resource's known inputs (secrets revealed, unknowns as None),
the region, which Kubernetes providers reach an AKS cluster of this stack, and its storage classes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.output import Unknown
from pulumi_policy.proxy import UnknownValueError

from ..props import get_path
from ..record import Registration, integral, rebuild
from ..tokens import KUBERNETES_PROVIDER, MANAGED_CLUSTER, STORAGE_CLASS
from .prices import region_multiplier
from .report import LineItem

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


def _known(value: Any) -> Any:
    """Prices only need known inputs: an unknown value (or one a proxy would not read) is None."""
    return None if isinstance(value, Unknown | UnknownValueError) else integral(value)


def known_inputs(inputs: Any) -> Any:
    """Plain data with secrets revealed and unknowns as None."""
    return rebuild(inputs, _known)


@dataclass
class PricedStack:
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


Pricer = Callable[[PricedStack, Registration], list[LineItem]]


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


def priced_stack(resources: list[Registration], prices: dict[str, Any]) -> PricedStack:
    inputs = {r.urn: known_inputs(r.inputs) for r in resources}
    by_urn = {r.urn: r for r in resources}
    providers = [r for r in resources if r.type == KUBERNETES_PROVIDER]
    aks = {p.urn for p in providers if _depends_on_type(p.urn, MANAGED_CLUSTER, by_urn)}
    classes: dict[tuple[str, str], tuple[str, str]] = {}
    for r in resources:
        if r.type != STORAGE_CLASS:
            continue
        spec = inputs[r.urn]
        name = get_path(spec, "metadata", "name")
        provisioner = str(spec.get("provisioner") or "")
        if not name:
            continue
        if provisioner == "disk.csi.azure.com":
            classes[(r.provider, name)] = (
                "disk",
                str(get_path(spec, "parameters", "skuName", default="StandardSSD_LRS")),
            )
        elif provisioner == "file.csi.azure.com":
            classes[(r.provider, name)] = (
                "files",
                str(get_path(spec, "parameters", "skuName", default="Standard_LRS")),
            )
    return PricedStack(
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
