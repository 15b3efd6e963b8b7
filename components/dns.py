"""Names -> addresses (`llmops:dns`): the gateway's hosts in a public Azure DNS zone, the management UIs in a private
zone linked to the VNet, each an A record set at a load balancer address Pulumi knows.

The GPU gateway's address is a static public IP made here (AKS) and handed to its LoadBalancer Service by name
(cloud-provider-azure annotations `azure-pip-name` and `azure-load-balancer-resource-group`; the cluster's control
plane identity may use it through Network Contributor on the address), or given in config for an existing cluster.
The UI entry's address is its fixed private address in the management subnet (components/internal_entry.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_azure_native as azure

from components.aks import NETWORK_CONTRIBUTOR_ROLE
from components.azure_site import AzureSite
from components.config import DnsConfig, in_zone, relative_name
from components.workload_identity import built_in_role_definition_id

PIP_NAME_ANNOTATION = "service.beta.kubernetes.io/azure-pip-name"
PIP_RESOURCE_GROUP_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-resource-group"


class GatewayPublicIp(pulumi.ComponentResource):
    """A static Standard public IP for the GPU gateway's LoadBalancer, usable by the GPU cluster's control plane.
    `service_annotations` point the gateway's Service at it; `ready` is what the Service must wait for."""

    address: pulumi.Output[str]
    service_annotations: dict[str, pulumi.Input[str]]
    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        *,
        site: AzureSite,
        cluster_principal_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:dns:GatewayPublicIp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        public_ip = azure.network.PublicIPAddress(
            f"{name}-pip",
            public_ip_address_name=f"pip-{name}",
            sku=azure.network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            **site.regional(),
            opts=child,
        )
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        # Outside the node resource group the cloud provider reads and joins the address with the cluster's identity.
        grant = azure.authorization.RoleAssignment(
            f"{name}-pip-network-contributor",
            principal_id=cluster_principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=built_in_role_definition_id(client.subscription_id, NETWORK_CONTRIBUTOR_ROLE),
            scope=public_ip.id,
            opts=child,
        )
        self.address = public_ip.ip_address.apply(lambda ip: ip or "")
        self.service_annotations = {
            PIP_NAME_ANNOTATION: public_ip.name,
            PIP_RESOURCE_GROUP_ANNOTATION: site.resource_group_name,
        }
        self.ready = [public_ip, grant]
        self.register_outputs({"address": self.address})


def _resource_suffix(hostname: str) -> str:
    return hostname.replace(".", "-")


class PlatformDns(pulumi.ComponentResource):
    """The zones and A record sets `config` asks for. `gateway_records` are the public records of the gateway's
    hosts (ACME HTTP-01 validation needs them); `outputs` name the zones and their name servers."""

    gateway_records: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        config: DnsConfig,
        *,
        site: AzureSite,
        vnet_id: pulumi.Input[str],
        gateway_hostnames: Sequence[str],
        gateway_address: pulumi.Input[str] | None,
        ui_hostnames: Sequence[str],
        ui_address: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:dns:PlatformDns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.gateway_records = []
        self.outputs: dict[str, Any] = {}

        if config.zone_name is not None:
            if gateway_address is None:
                raise ValueError("a public zone needs the gateway's address")
            zone_group: pulumi.Input[str] = config.resource_group or site.resource_group_name
            zone_name: pulumi.Input[str] = config.zone_name
            if config.create:
                zone = azure.dns.Zone(
                    f"{name}-zone",
                    zone_name=config.zone_name,
                    zone_type=azure.dns.ZoneType.PUBLIC,
                    **site.global_(),
                    opts=child,
                )
                zone_name = zone.name
                self.outputs["nameServers"] = zone.name_servers
            for host in gateway_hostnames:
                self.gateway_records.append(
                    azure.dns.RecordSet(
                        f"{name}-a-{_resource_suffix(host)}",
                        zone_name=zone_name,
                        resource_group_name=zone_group,
                        relative_record_set_name=relative_name(host, config.zone_name),
                        record_type="A",
                        ttl=config.ttl_seconds,
                        a_records=[azure.dns.ARecordArgs(ipv4_address=gateway_address)],
                        opts=child,
                    )
                )
            self.outputs["zoneName"] = config.zone_name

        if config.private_zone_name is not None:
            private_zone = azure.privatedns.PrivateZone(
                f"{name}-private-zone",
                private_zone_name=config.private_zone_name,
                **site.global_(),
                opts=child,
            )
            link = azure.privatedns.VirtualNetworkLink(
                f"{name}-private-link",
                virtual_network_link_name=f"{name}-vnet",
                private_zone_name=private_zone.name,
                virtual_network=azure.privatedns.SubResourceArgs(id=vnet_id),
                registration_enabled=False,
                **site.global_(),
                opts=child,
            )
            records: dict[str, pulumi.Input[str]] = {host: ui_address for host in ui_hostnames}
            # Inside the VNet a private zone hides the public zone of the same name: repeat the gateway's records.
            if gateway_address is not None:
                records.update(
                    {host: gateway_address for host in gateway_hostnames if in_zone(host, config.private_zone_name)}
                )
            for host, address in records.items():
                azure.privatedns.PrivateRecordSet(
                    f"{name}-private-a-{_resource_suffix(host)}",
                    private_zone_name=private_zone.name,
                    resource_group_name=site.resource_group_name,
                    relative_record_set_name=relative_name(host, config.private_zone_name),
                    record_type="A",
                    ttl=config.ttl_seconds,
                    a_records=[azure.privatedns.ARecordArgs(ipv4_address=address)],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[link]),
                )
            self.outputs["privateZoneName"] = config.private_zone_name

        self.register_outputs(self.outputs)
