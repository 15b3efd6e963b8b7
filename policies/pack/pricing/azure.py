"""Pricers for the other Azure resources: PostgreSQL flexible servers, network resources billed by the
hour, private DNS zones, and the usage-based charges of storage accounts and log workspaces."""

from __future__ import annotations

from ..props import get_path
from ..record import Registration
from .inputs import PricedStack, Pricer
from .report import LineItem, flat_item


def postgres(stack: PricedStack, r: Registration) -> list[LineItem]:
    spec = stack.inputs[r.urn]
    table = stack.prices["postgresFlexible"]
    sku = str(get_path(spec, "sku", "name", default=""))
    rate = table["computeHour"].get(sku)
    if rate is None:
        stack.problems.append(f"{r.name}: no price for PostgreSQL flexible server SKU {sku!r}")
        return []
    storage_gb = float(get_path(spec, "storage", "storageSizeGB", default=32))
    ha = str(get_path(spec, "highAvailability", "mode", default="Disabled")) not in {"Disabled", ""}
    factor = float(table["highAvailabilityFactor"]) if ha else 1.0
    monthly = (rate * stack.hours() + storage_gb * float(table["storageGbMonth"])) * factor * stack.multiplier(r.urn)
    detail = f"{sku} + {storage_gb:g} GB{' x2 (HA standby)' if ha else ''}"
    return [flat_item(r.name, r.type, "database", detail, monthly)]


def hourly(key: str, category: str, detail: str) -> Pricer:
    """A network resource billed at `network[key]` per hour."""

    def price(stack: PricedStack, r: Registration) -> list[LineItem]:
        monthly = float(stack.prices["network"][key]) * stack.hours() * stack.multiplier(r.urn)
        return [flat_item(r.name, r.type, category, detail, monthly)]

    return price


def public_ip_prefix(stack: PricedStack, r: Registration) -> list[LineItem]:
    """Every address of the prefix is billed as a Standard public IP."""
    length = get_path(stack.inputs[r.urn], "prefixLength", default=28)
    addresses = 2 ** (32 - int(length))
    hourly = float(stack.prices["network"]["publicIpStandardHour"]) * addresses
    monthly = hourly * stack.hours() * stack.multiplier(r.urn)
    return [flat_item(r.name, r.type, "network", f"public IP prefix /{length} ({addresses} addresses)", monthly)]


def private_zone(stack: PricedStack, r: Registration) -> list[LineItem]:
    monthly = float(stack.prices["network"]["privateDnsZoneMonth"])
    return [flat_item(r.name, r.type, "network", "private DNS zone", monthly)]


def storage_account(stack: PricedStack, r: Registration) -> list[LineItem]:
    sku = str(get_path(stack.inputs[r.urn], "sku", "name", default="Standard_LRS"))
    rate = stack.prices["storage"]["blobHotGbMonth"].get(sku)
    per_gb = f"${rate * stack.multiplier(r.urn):.4f}/GB-month" if rate is not None else "see the Blob price page"
    stack.usage_based.append(f"{r.name}: blob data ({sku}, hot) at {per_gb}, plus operations and egress")
    return []


def usage_note(text: str) -> Pricer:
    """A resource billed by use only: listed with its rate, outside the totals."""

    def note(stack: PricedStack, r: Registration) -> list[LineItem]:
        stack.usage_based.append(f"{r.name}: {text}")
        return []

    return note
