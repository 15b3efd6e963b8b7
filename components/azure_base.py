"""The Azure resources both clusters stand on: resource group, network and monitoring."""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure

from components.config import AzureConfig, Environment


class AzureBase(pulumi.ComponentResource):
    """Resource group, VNet with one subnet per cluster, and the Log Analytics workspace.

    Existing subnets from config are used as they are; the VNet is created only when a cluster
    still needs a subnet from us.
    """

    resource_group_name: pulumi.Output[str]
    management_subnet_id: pulumi.Output[str]
    gpu_subnet_id: pulumi.Output[str] | None
    log_analytics_workspace_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: AzureConfig,
        environment: Environment,
        needs_gpu_subnet: bool,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:azure:AzureBase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        tags = {**config.tags, "environment": environment, "managed-by": "pulumi"}
        self.tags = tags
        network = config.network

        group = azure.resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=f"rg-llmops-{environment}",
            location=config.location,
            tags=tags,
            opts=stateful,
        )
        self.resource_group_name = group.name

        wants_management = network.existing_management_subnet_id is None
        wants_gpu = needs_gpu_subnet and network.existing_gpu_subnet_id is None
        subnet_ids: dict[str, pulumi.Output[str]] = {}
        if wants_management or wants_gpu:
            vnet = azure.network.VirtualNetwork(
                f"{name}-vnet",
                virtual_network_name=f"vnet-llmops-{environment}",
                resource_group_name=group.name,
                location=config.location,
                address_space=azure.network.AddressSpaceArgs(address_prefixes=[network.address_space]),
                tags=tags,
                opts=child,
            )
            wanted = {
                "management": (wants_management, network.management_subnet),
                "gpu": (wants_gpu, network.gpu_subnet),
            }
            for role, (wanted_here, prefix) in wanted.items():
                if not wanted_here:
                    continue
                subnet = azure.network.Subnet(
                    f"{name}-{role}-subnet",
                    subnet_name=f"snet-{role}",
                    resource_group_name=group.name,
                    virtual_network_name=vnet.name,
                    address_prefix=prefix,
                    opts=child,
                )
                subnet_ids[role] = subnet.id
        self.management_subnet_id = subnet_ids.get("management") or pulumi.Output.from_input(
            network.existing_management_subnet_id or ""
        )
        self.gpu_subnet_id = None
        if needs_gpu_subnet:
            self.gpu_subnet_id = subnet_ids.get("gpu") or pulumi.Output.from_input(network.existing_gpu_subnet_id or "")

        workspace = azure.operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=f"log-llmops-{environment}",
            resource_group_name=group.name,
            location=config.location,
            sku=azure.operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=config.log_retention_days,
            tags=tags,
            opts=child,
        )
        self.log_analytics_workspace_id = workspace.id

        self.register_outputs(
            {
                "resourceGroupName": self.resource_group_name,
                "managementSubnetId": self.management_subnet_id,
                "logAnalyticsWorkspaceId": self.log_analytics_workspace_id,
            }
        )
