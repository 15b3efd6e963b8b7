"""Azure DNS for the platform's names: the GPU gateway's hosts in a public zone, the management UIs in a private
zone linked to the VNet. Optional: without `llmops:dns` the records are a manual step (docs/access.md)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from components.config.base import Model

DnsName = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")]


def valid_ipv4(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address):
        raise ValueError(f"must be an IPv4 address such as 10.40.3.254 (got {value!r})")
    return value


def in_zone(hostname: str, zone: str) -> bool:
    return hostname == zone or hostname.endswith(f".{zone}")


def relative_name(hostname: str, zone: str) -> str:
    """The record set name of `hostname` inside `zone` (`@` for the apex)."""
    return "@" if hostname == zone else hostname.removesuffix(f".{zone}")


class DnsConfig(Model):
    zone_name: DnsName | None = Field(
        None, description="public Azure DNS zone that holds the gateway's hosts (gateway.domain lies in it)"
    )
    resource_group: str | None = Field(
        None, pattern=r"^[-\w._()]{1,90}$", description="resource group of an existing zoneName (the zone is not ours)"
    )
    create: bool = Field(False, description="create zoneName in the platform's resource group (then delegate it)")
    private_zone_name: DnsName | None = Field(
        None,
        description="private zone linked to the VNet for the management UIs' hosts; when it also covers "
        "gateway.domain it repeats the gateway's records, since it hides the public zone inside the VNet",
    )
    ttl_seconds: int = Field(300, ge=30, le=86400, description="TTL of the records")
    gateway_address: str | None = Field(
        None,
        description="public address of the gateway's load balancer on an existing GPU cluster (gpuCluster.mode "
        "existing); on AKS the program creates a static public IP instead",
    )

    _check_address = field_validator("gateway_address")(lambda v: v if v is None else valid_ipv4(v))

    @model_validator(mode="after")
    def _zone_source(self) -> Self:
        """zoneName or privateZoneName is set; zoneName is either create: true or in resourceGroup; create,
        resourceGroup and gatewayAddress need zoneName."""
        if self.zone_name is None and self.private_zone_name is None:
            raise ValueError("zoneName: set zoneName, privateZoneName or both (or leave out llmops:dns)")
        if self.zone_name is not None and self.create == (self.resource_group is not None):
            raise ValueError("resourceGroup: give the resource group of an existing zoneName, or create: true")
        if self.zone_name is None and (self.create or self.resource_group or self.gateway_address):
            raise ValueError("zoneName: create, resourceGroup and gatewayAddress are about the public zone")
        return self
