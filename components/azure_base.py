"""The Azure resources both clusters stand on: resource group, network and monitoring."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_azure_native as azure

from components.azure_site import AzureSite
from components.config import AzureConfig, Environment


class AzureBase(pulumi.ComponentResource):
    """Resource group, VNet with one subnet per cluster, and the Log Analytics workspace.

    Existing subnets from config are used as they are; the VNet is created only when a cluster
    still needs a subnet from us.
    """

    site: AzureSite
    resource_group_name: pulumi.Output[str]
    management_subnet_id: pulumi.Output[str]
    gpu_subnet_id: pulumi.Output[str] | None
    runner_subnet_id: pulumi.Output[str] | None
    runner_egress_prefix: pulumi.Output[str] | None
    log_analytics_workspace_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: AzureConfig,
        environment: Environment,
        needs_gpu_subnet: bool,
        protect: bool,
        gpu_subnet_service_endpoints: Sequence[str] = (),
        needs_runner_subnet: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`gpu_subnet_service_endpoints`: service endpoints the GPU nodes' subnet carries (for example the one the
        Azure Files CSI driver adds for NFS shares: declared, so a later Subnet update does not remove it).
        `needs_runner_subnet`: the CI runner pool's subnet (network.runnerSubnet), delegated to Container Apps and
        leaving through a NAT gateway with a fixed public IP prefix (`runner_egress_prefix`)."""
        super().__init__("llmops:azure:AzureBase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        tags = {**config.tags, "environment": environment, "managed-by": "pulumi"}
        network = config.network

        group = azure.resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=f"rg-llmops-{environment}",
            location=config.location,
            tags=tags,
            opts=stateful,
        )
        self.resource_group_name = group.name
        self.site = site = AzureSite(group.name, config.location, tags)

        wants_management = network.existing_management_subnet_id is None
        wants_gpu = needs_gpu_subnet and network.existing_gpu_subnet_id is None
        subnet_ids: dict[str, pulumi.Output[str]] = {}
        self.runner_subnet_id = None
        self.runner_egress_prefix = None
        if wants_management or wants_gpu or needs_runner_subnet:
            vnet = azure.network.VirtualNetwork(
                f"{name}-vnet",
                virtual_network_name=f"vnet-llmops-{environment}",
                address_space=azure.network.AddressSpaceArgs(address_prefixes=[network.address_space]),
                **site.regional(),
                opts=child,
            )
            wanted = {
                "management": (wants_management, network.management_subnet, ()),
                "gpu": (wants_gpu, network.gpu_subnet, tuple(gpu_subnet_service_endpoints)),
            }
            for role, (wanted_here, prefix, endpoints) in wanted.items():
                if not wanted_here:
                    continue
                subnet = azure.network.Subnet(
                    f"{name}-{role}-subnet",
                    subnet_name=f"snet-{role}",
                    resource_group_name=group.name,
                    virtual_network_name=vnet.name,
                    address_prefix=prefix,
                    service_endpoints=[
                        azure.network.ServiceEndpointPropertiesFormatArgs(service=service) for service in endpoints
                    ]
                    or None,
                    opts=child,
                )
                subnet_ids[role] = subnet.id
            if needs_runner_subnet:
                assert network.runner_subnet is not None, "the config requires runnerSubnet with ciRunners"
                self._runner_subnet(name, environment, network.runner_subnet, vnet, protect)
        self.management_subnet_id = subnet_ids.get("management") or pulumi.Output.from_input(
            network.existing_management_subnet_id or ""
        )
        self.gpu_subnet_id = None
        if needs_gpu_subnet:
            self.gpu_subnet_id = subnet_ids.get("gpu") or pulumi.Output.from_input(network.existing_gpu_subnet_id or "")

        workspace = azure.operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=f"log-llmops-{environment}",
            sku=azure.operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=config.log_retention_days,
            **site.regional(),
            opts=child,
        )
        self.log_analytics_workspace_id = workspace.id

        self.register_outputs(
            {
                "runnerEgressPrefix": self.runner_egress_prefix,
                "resourceGroupName": self.resource_group_name,
                "managementSubnetId": self.management_subnet_id,
                "logAnalyticsWorkspaceId": self.log_analytics_workspace_id,
            }
        )

    def _runner_subnet(
        self,
        name: str,
        environment: str,
        prefix: str,
        vnet: azure.network.VirtualNetwork,
        protect: bool,
    ) -> None:
        """A Container Apps (workload profiles) environment needs a subnet of its own delegated to it. Its runners
        reach a private API server inside the VNet, and a public one from the NAT gateway's prefix, which the
        clusters add to their authorized ranges."""
        egress = azure.network.PublicIPPrefix(
            f"{name}-runner-egress",
            public_ip_prefix_name=f"ippre-llmops-{environment}-runners",
            prefix_length=31,
            public_ip_address_version="IPv4",
            sku=azure.network.PublicIPPrefixSkuArgs(name="Standard", tier="Regional"),
            **self.site.regional(),
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        nat = azure.network.NatGateway(
            f"{name}-runner-nat",
            nat_gateway_name=f"ng-llmops-{environment}-runners",
            sku=azure.network.NatGatewaySkuArgs(name="Standard"),
            public_ip_prefixes=[azure.network.SubResourceArgs(id=egress.id)],
            **self.site.regional(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnet = azure.network.Subnet(
            f"{name}-runner-subnet",
            subnet_name="snet-runners",
            resource_group_name=self.site.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=prefix,
            delegations=[
                azure.network.DelegationArgs(name="container-apps", service_name="Microsoft.App/environments")
            ],
            nat_gateway=azure.network.SubResourceArgs(id=nat.id),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.runner_subnet_id = subnet.id
        self.runner_egress_prefix = egress.ip_prefix
