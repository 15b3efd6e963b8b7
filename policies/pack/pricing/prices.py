"""The dated table of Azure list prices, and the lookups every pricer shares."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).resolve().with_name("prices-azure.json")
# How reports and messages name the table: its place in the repository.
PRICE_TABLE = "policies/pack/pricing/prices-azure.json"


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


def region_multiplier(region: str | None, prices: Mapping[str, Any]) -> tuple[float, bool]:
    """(multiplier, estimated): an unknown region gets the highest multiplier, flagged."""
    regions: Mapping[str, float] = prices["regions"]
    if region is None:
        return 1.0, False
    if region in regions:
        return float(regions[region]), False
    return max(float(v) for v in regions.values()), True


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


def is_free(type_: str, prices: Mapping[str, Any]) -> bool:
    return any(type_ == free or (free.endswith(":") and type_.startswith(free)) for free in prices["freeTypes"])
