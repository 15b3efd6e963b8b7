"""A hardened AKS cluster with separately managed node pools and its Kubernetes provider.

Both the management cluster and the GPU cluster (mode `aks`) are instances of `AksCluster`; they
differ only in the node pools they ask for.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s
import yaml

from components.config import AksClusterConfig, NetworkConfig, NodePoolConfig, Taint
from components.workload_identity import built_in_role_definition_id

# Built-in role "Network Contributor": the cluster identity joins nodes and load balancers to our subnet.
NETWORK_CONTRIBUTOR_ROLE = "4d97b98b-1d4f-4787-a291-c67834d212e7"
SYSTEM_POOL_TAINT = "CriticalAddonsOnly=true:NoSchedule"


@dataclass(frozen=True)
class PoolSpec:
    """A user node pool as the cluster needs it; callers derive it from their pool config."""

    config: NodePoolConfig
    taints: Sequence[Taint] = ()
    labels: dict[str, str] = field(default_factory=dict)
    gpu: bool = False
    spot: bool = False
    spot_max_price: float = -1


@dataclass(frozen=True)
class ClusterPlacement:
    """Where the cluster lives in Azure: shared by both clusters of an environment."""

    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]
    network: NetworkConfig
    tags: dict[str, str]


def _kubelogin_kubeconfig(encoded: str) -> str:
    """AKS returns an exec kubeconfig that logs in interactively (device code); `pulumi up` in CI
    and on a workstation both have an Azure CLI login, so have kubelogin reuse it instead."""
    kubeconfig = yaml.safe_load(base64.b64decode(encoded))
    for user in kubeconfig.get("users", []):
        exec_config = user.get("user", {}).get("exec")
        if not exec_config:
            continue
        args = list(exec_config.get("args", []))
        if "--login" in args:
            args[args.index("--login") + 1] = "azurecli"
        else:
            args += ["--login", "azurecli"]
        exec_config["args"] = args
    return yaml.safe_dump(kubeconfig, sort_keys=False)


def _scale_set_pool(pool: NodePoolConfig, subnet_id: pulumi.Input[str]) -> dict[str, Any]:
    """What the system pool and the user pools share: an autoscaled Linux scale set on our subnet, sized by config
    (arguments of both a cluster's agent pool profile and an `AgentPool`)."""
    return {
        "vm_size": pool.vm_size,
        "os_type": "Linux",
        "os_disk_size_gb": pool.os_disk_size_gb,
        "os_disk_type": pool.os_disk_type,
        "max_pods": pool.max_pods,
        "count": pool.min_count,
        "enable_auto_scaling": True,
        "min_count": pool.min_count,
        "max_count": pool.max_count,
        "availability_zones": list(pool.zones) or None,
        "vnet_subnet_id": subnet_id,
        "type": "VirtualMachineScaleSets",
    }


class AksCluster(pulumi.ComponentResource):
    """Entra ID-only AKS (Azure RBAC, no local accounts) with workload identity, Azure CNI overlay
    with Cilium, a tainted system pool, autoscaled user pools as `AgentPool` resources, planned
    maintenance for upgrades, Container Insights, and an explicit Kubernetes provider."""

    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    fqdn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    pools: list[azure.containerservice.AgentPool]

    def __init__(
        self,
        name: str,
        config: AksClusterConfig,
        placement: ClusterPlacement,
        user_pools: Sequence[PoolSpec],
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:aks:AksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = placement.tags

        identity = azure.managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=f"id-{name}",
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            tags=tags,
            opts=child,
        )
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        subnet_access = azure.authorization.RoleAssignment(
            f"{name}-subnet-network-contributor",
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=built_in_role_definition_id(client.subscription_id, NETWORK_CONTRIBUTOR_ROLE),
            scope=placement.subnet_id,
            opts=child,
        )

        system = config.system_pool
        api_server = config.api_server
        network = placement.network
        cluster = azure.containerservice.ManagedCluster(
            f"{name}-cluster",
            resource_name_=f"aks-{name}",
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            dns_prefix=f"aks-{name}",
            node_resource_group=f"rg-{name}-nodes",
            kubernetes_version=config.kubernetes_version,
            sku=azure.containerservice.ManagedClusterSKUArgs(name="Base", tier=config.sku_tier),
            identity=azure.containerservice.ManagedClusterIdentityArgs(
                type=azure.containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity.id],
            ),
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=azure.containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=list(config.admin_group_object_ids),
                tenant_id=client.tenant_id,
            ),
            oidc_issuer_profile=azure.containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=azure.containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=azure.containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                ),
            ),
            api_server_access_profile=azure.containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=api_server.private_cluster,
                authorized_ip_ranges=list(api_server.authorized_ip_ranges) or None,
            ),
            network_profile=azure.containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_dataplane="cilium",
                network_policy="cilium",
                pod_cidr=network.pod_cidr,
                service_cidr=network.service_cidr,
                dns_service_ip=network.dns_service_ip,
                load_balancer_sku="standard",
                outbound_type="loadBalancer",
            ),
            auto_upgrade_profile=azure.containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=config.upgrade_channel,
                node_os_upgrade_channel=config.node_os_upgrade_channel,
            ),
            addon_profiles={
                "omsagent": azure.containerservice.ManagedClusterAddonProfileArgs(
                    enabled=True,
                    config={
                        "logAnalyticsWorkspaceResourceID": placement.log_analytics_workspace_id,
                        "useAADAuth": "true",
                    },
                )
            },
            agent_pool_profiles=[
                azure.containerservice.ManagedClusterAgentPoolProfileArgs(
                    name=system.name,
                    mode="System",
                    os_sku="AzureLinux",
                    node_taints=[SYSTEM_POOL_TAINT],
                    node_labels=dict(system.labels) or None,
                    **_scale_set_pool(system, placement.subnet_id),
                )
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=protect,
                depends_on=[subnet_access],
                # The autoscaler owns node counts; Pulumi must not scale the pool back on every `up`.
                ignore_changes=["agentPoolProfiles[*].count"],
            ),
        )
        self.cluster_name = cluster.name
        self.cluster_id = cluster.id
        self.fqdn = cluster.private_fqdn if api_server.private_cluster else cluster.fqdn
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else "")

        window = config.maintenance_window
        for schedule_name in ("aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"):
            azure.containerservice.MaintenanceConfiguration(
                f"{name}-{schedule_name}",
                config_name=schedule_name,
                resource_group_name=placement.resource_group_name,
                resource_name_=cluster.name,
                maintenance_window=azure.containerservice.MaintenanceWindowArgs(
                    schedule=azure.containerservice.ScheduleArgs(
                        weekly=azure.containerservice.WeeklyScheduleArgs(
                            day_of_week=window.day_of_week, interval_weeks=1
                        )
                    ),
                    start_time=window.start_time,
                    duration_hours=window.duration_hours,
                    utc_offset=window.utc_offset,
                ),
                opts=child,
            )

        self.pools = [self._agent_pool(name, pool, cluster, config, placement) for pool in user_pools]

        credentials = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=placement.resource_group_name,
            resource_name=cluster.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.kubeconfig = pulumi.Output.secret(
            credentials.kubeconfigs.apply(lambda kubeconfigs: _kubelogin_kubeconfig(kubeconfigs[0].value))
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Stable identity: at preview the kubeconfig is unknown, and without this every object
            # on the cluster would show as a replacement.
            cluster_identifier=f"aks-{name}",
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *self.pools]),
        )

        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "clusterId": self.cluster_id,
                "fqdn": self.fqdn,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _agent_pool(
        self,
        name: str,
        pool: PoolSpec,
        cluster: azure.containerservice.ManagedCluster,
        config: AksClusterConfig,
        placement: ClusterPlacement,
    ) -> azure.containerservice.AgentPool:
        spec = pool.config
        return azure.containerservice.AgentPool(
            f"{name}-pool-{spec.name}",
            agent_pool_name=spec.name,
            resource_group_name=placement.resource_group_name,
            resource_name_=cluster.name,
            mode="User",
            os_sku="Ubuntu",
            orchestrator_version=config.kubernetes_version,
            node_labels={**spec.labels, **pool.labels} or None,
            node_taints=[t.render() for t in [*spec.taints, *pool.taints]] or None,
            # The GPU Operator installs and upgrades the driver; an AKS-installed driver would fight it.
            gpu_profile=azure.containerservice.GPUProfileArgs(driver="None") if pool.gpu else None,
            scale_set_priority="Spot" if pool.spot else None,
            scale_set_eviction_policy="Delete" if pool.spot else None,
            spot_max_price=pool.spot_max_price if pool.spot else None,
            tags=placement.tags,
            **_scale_set_pool(spec, placement.subnet_id),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["count"]),
        )
