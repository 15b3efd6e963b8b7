"""The Azure location, tags and the network both AKS clusters join."""

from __future__ import annotations

import ipaddress
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.config.base import Cidr, Model, SubnetId, TagName, TagValue, valid_cidr
from components.config.dns import valid_ipv4


class NetworkConfig(Model):
    """The VNet both AKS clusters join, or subnets that already exist."""

    address_space: Cidr = Field("10.40.0.0/16", description="address space of the VNet the program creates")
    management_subnet: Cidr = Field(
        "10.40.0.0/22", description="subnet of the management cluster's nodes, inside addressSpace"
    )
    gpu_subnet: Cidr = Field("10.40.4.0/22", description="subnet of the GPU cluster's nodes, inside addressSpace")
    runner_subnet: Cidr | None = Field(
        None,
        description="subnet of the CI runner pool (ciRunners), delegated to Microsoft.App/environments; /27 or larger",
    )
    existing_management_subnet_id: SubnetId | None = Field(
        None, description="resource id of an existing subnet for the management cluster instead of ours"
    )
    existing_gpu_subnet_id: SubnetId | None = Field(
        None, description="resource id of an existing subnet for the GPU cluster instead of ours"
    )
    # Azure CNI overlay: pods get addresses from this private range, not from the VNet.
    pod_cidr: Cidr = Field("192.168.0.0/16", description="Azure CNI overlay pod range; must not overlap addressSpace")
    service_cidr: Cidr = Field("172.16.0.0/16", description="Kubernetes service range; must not overlap addressSpace")
    dns_service_ip: str = Field("172.16.0.10", description="cluster DNS service address, inside serviceCidr")

    _check_dns_service_ip = field_validator("dns_service_ip")(valid_ipv4)
    _check_cidrs = field_validator("address_space", "management_subnet", "gpu_subnet", "pod_cidr", "service_cidr")(
        valid_cidr
    )

    @model_validator(mode="after")
    def _layout(self) -> Self:
        """Subnets lie inside addressSpace without overlapping; runnerSubnet is a /27 or larger; podCidr and serviceCidr
        stay outside addressSpace; dnsServiceIp lies in serviceCidr."""
        vnet = ipaddress.ip_network(self.address_space)
        for key in ("management_subnet", "gpu_subnet"):
            subnet = ipaddress.ip_network(getattr(self, key))
            if not subnet.subnet_of(vnet):  # type: ignore[arg-type]
                raise ValueError(f"{to_camel(key)}: {subnet} must lie inside addressSpace {vnet}")
        if ipaddress.ip_network(self.management_subnet).overlaps(ipaddress.ip_network(self.gpu_subnet)):
            raise ValueError("gpuSubnet: must not overlap managementSubnet")
        if self.runner_subnet is not None:
            runner = ipaddress.ip_network(valid_cidr(self.runner_subnet))
            if not runner.subnet_of(vnet) or runner.prefixlen > 27:  # type: ignore[arg-type]
                raise ValueError(f"runnerSubnet: {runner} must be a /27 or larger inside addressSpace {vnet}")
            for key in ("management_subnet", "gpu_subnet"):
                if runner.overlaps(ipaddress.ip_network(getattr(self, key))):
                    raise ValueError(f"runnerSubnet: must not overlap {to_camel(key)}")
        for key in ("pod_cidr", "service_cidr"):
            if ipaddress.ip_network(getattr(self, key)).overlaps(vnet):
                raise ValueError(f"{to_camel(key)}: must not overlap addressSpace {vnet}")
        if ipaddress.ip_address(self.dns_service_ip) not in ipaddress.ip_network(self.service_cidr):
            raise ValueError(f"dnsServiceIp: {self.dns_service_ip} must lie inside serviceCidr {self.service_cidr}")
        return self


class AzureConfig(Model):
    location: str = Field(
        pattern=r"^[a-z0-9]+$", description="Azure region of every resource, e.g. westeurope (lowercase, no spaces)"
    )
    tags: dict[TagName, TagValue] = Field(default_factory=dict, description="Azure tags put on every Azure resource")
    network: NetworkConfig = Field(NetworkConfig(), description="the VNet both AKS clusters join, or existing subnets")
    log_retention_days: int = Field(30, ge=30, le=730, description="days the Log Analytics workspace keeps logs")
