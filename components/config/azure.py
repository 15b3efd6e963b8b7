"""The Azure location, tags and the network both AKS clusters join."""

from __future__ import annotations

import ipaddress
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.config.base import Cidr, Model, valid_cidr


class NetworkConfig(Model):
    """The VNet both AKS clusters join, or subnets that already exist."""

    address_space: Cidr = "10.40.0.0/16"
    management_subnet: Cidr = "10.40.0.0/22"
    gpu_subnet: Cidr = "10.40.4.0/22"
    existing_management_subnet_id: str | None = None
    existing_gpu_subnet_id: str | None = None
    # Azure CNI overlay: pods get addresses from this private range, not from the VNet.
    pod_cidr: Cidr = "192.168.0.0/16"
    service_cidr: Cidr = "172.16.0.0/16"
    dns_service_ip: str = "172.16.0.10"

    _check_cidrs = field_validator("address_space", "management_subnet", "gpu_subnet", "pod_cidr", "service_cidr")(
        valid_cidr
    )

    @model_validator(mode="after")
    def _layout(self) -> Self:
        vnet = ipaddress.ip_network(self.address_space)
        for key in ("management_subnet", "gpu_subnet"):
            subnet = ipaddress.ip_network(getattr(self, key))
            if not subnet.subnet_of(vnet):  # type: ignore[arg-type]
                raise ValueError(f"{to_camel(key)}: {subnet} must lie inside addressSpace {vnet}")
        if ipaddress.ip_network(self.management_subnet).overlaps(ipaddress.ip_network(self.gpu_subnet)):
            raise ValueError("gpuSubnet: must not overlap managementSubnet")
        for key in ("pod_cidr", "service_cidr"):
            if ipaddress.ip_network(getattr(self, key)).overlaps(vnet):
                raise ValueError(f"{to_camel(key)}: must not overlap addressSpace {vnet}")
        if ipaddress.ip_address(self.dns_service_ip) not in ipaddress.ip_network(self.service_cidr):
            raise ValueError(f"dnsServiceIp: {self.dns_service_ip} must lie inside serviceCidr {self.service_cidr}")
        return self


class AzureConfig(Model):
    location: str = Field(pattern=r"^[a-z0-9]+$")
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig = NetworkConfig()
    log_retention_days: int = Field(30, ge=30, le=730)
