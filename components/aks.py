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

from components.azure_site import AzureSite
from components.config import AksClusterConfig, NetworkConfig, NodePoolConfig, Taint
from components.workload_identity import built_in_role_definition_id

# Built-in role "Network Contributor": the cluster identity joins nodes and load balancers to our subnet.
NETWORK_CONTRIBUTOR_ROLE = "4d97b98b-1d4f-4787-a291-c67834d212e7"
# Built-in role "Azure Kubernetes Service RBAC Cluster Admin": with Azure RBAC for Kubernetes authorization and local
# accounts disabled, the deploying identity needs this data-plane role to manage anything on the cluster.
AKS_RBAC_CLUSTER_ADMIN_ROLE = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
SYSTEM_POOL_TAINT = "CriticalAddonsOnly=true:NoSchedule"
# Auto-upgrade channels that move the Kubernetes version itself; `node-image` only reimages nodes.
VERSION_UPGRADE_CHANNELS = frozenset({"patch", "stable", "rapid"})
# Container Insights with AAD auth (`useAADAuth`) collects through the Azure Monitor agent, which reads what to
# collect from a data collection rule associated with the cluster (learn.microsoft.com, "Enable monitoring for
# Kubernetes clusters", ARM/Terraform onboarding). The names are the ones the portal and `az aks` onboarding use.
CONTAINER_INSIGHTS_STREAM = "Microsoft-ContainerInsights-Group-Default"
CONTAINER_INSIGHTS_EXTENSION = "ContainerInsightsExtension"


@dataclass(frozen=True)
class PoolSpec:
    """A user node pool as the cluster needs it; callers derive it from their pool config."""

    config: NodePoolConfig
    taints: Sequence[Taint] = ()
    labels: dict[str, str] = field(default_factory=dict)
    gpu: bool = False
    spot: bool = False
    spot_max_price: float = -1
    upgrade_settings: azure.containerservice.AgentPoolUpgradeSettingsArgs | None = None


@dataclass(frozen=True)
class ClusterAccess:
    """Who deploys to the clusters of an environment and from where."""

    # The identity `pulumi up` runs as, which gets the AKS RBAC Cluster Admin role on the cluster.
    deployer_principal_id: pulumi.Input[str]
    deployer_principal_type: str
    # kubelogin's login mode in the kubeconfig the Kubernetes provider uses (`azurecli`, `workloadidentity`).
    kubelogin: str
    # Where the in-network runners leave for the internet: a public API server authorizes these too.
    runner_egress_ranges: pulumi.Input[Sequence[str]] = ()


@dataclass(frozen=True)
class ClusterPlacement:
    """Where the cluster lives in Azure, and who deploys to it: shared by both clusters of an environment."""

    site: AzureSite
    subnet_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]
    network: NetworkConfig
    access: ClusterAccess


def _kubelogin_kubeconfig(encoded: str, login: str) -> str:
    """AKS returns an exec kubeconfig that logs in interactively (device code). Rewrite its arguments as
    `kubelogin convert-kubeconfig -l <login>` does: `get-token --login <login> --server-id <id>` and nothing else, so
    `azurecli` reuses the Azure CLI login and `workloadidentity` takes the client id, tenant and federated token file
    from AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE (a `--client-id` flag, which the AKS
    kubeconfig carries for device code, would override the environment)."""
    kubeconfig = yaml.safe_load(base64.b64decode(encoded))
    for user in kubeconfig.get("users", []):
        exec_config = user.get("user", {}).get("exec")
        if not exec_config:
            continue
        args = list(exec_config.get("args", []))
        server_id = args[args.index("--server-id") + 1]
        exec_config["args"] = ["get-token", "--login", login, "--server-id", server_id]
    return yaml.safe_dump(kubeconfig, sort_keys=False)


def _authorized_ranges(
    configured: Sequence[str], runner_egress: pulumi.Input[Sequence[str]]
) -> pulumi.Input[Sequence[str]] | None:
    """A public API server's authorized ranges: the configured ones, then the runner pool's egress."""
    if not runner_egress:
        return list(configured) or None
    return pulumi.Output.from_input(runner_egress).apply(
        lambda extra: [*configured, *(cidr for cidr in extra if cidr not in configured)]
    )


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


def _version_fields(config: AksClusterConfig, *fields: str) -> list[str]:
    """`fields` (engine names) when the upgrade channel moves the Kubernetes version ahead of config: sending the
    configured version back would ask AKS for a downgrade, which it refuses, failing every later update."""
    return list(fields) if config.upgrade_channel in VERSION_UPGRADE_CHANNELS else []


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
        keda: bool = False,
        egress_prefix_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`keda`: enable the AKS KEDA add-on (workloads scaled by ScaledObjects).
        `egress_prefix_id`: a public IP prefix the cluster's load balancer sends all outbound traffic from (a fixed,
        allowlistable source address); default: an AKS-managed outbound IP."""
        super().__init__("llmops:aks:AksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        site = placement.site

        identity = azure.managedidentity.UserAssignedIdentity(
            f"{name}-identity", resource_name_=f"id-{name}", **site.regional(), opts=child
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
                authorized_ip_ranges=None
                if api_server.private_cluster
                else _authorized_ranges(api_server.authorized_ip_ranges, placement.access.runner_egress_ranges),
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
                load_balancer_profile=azure.containerservice.ManagedClusterLoadBalancerProfileArgs(
                    outbound_ip_prefixes=azure.containerservice.ManagedClusterLoadBalancerProfileOutboundIPPrefixesArgs(
                        public_ip_prefixes=[azure.containerservice.ResourceReferenceArgs(id=egress_prefix_id)]
                    )
                )
                if egress_prefix_id is not None
                else None,
            ),
            auto_upgrade_profile=azure.containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=config.upgrade_channel,
                node_os_upgrade_channel=config.node_os_upgrade_channel,
            ),
            workload_auto_scaler_profile=azure.containerservice.ManagedClusterWorkloadAutoScalerProfileArgs(
                keda=azure.containerservice.ManagedClusterWorkloadAutoScalerProfileKedaArgs(enabled=True)
            )
            if keda
            else None,
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
            **site.regional(),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=protect,
                depends_on=[subnet_access],
                # The autoscaler owns node counts; Pulumi must not scale the pool back on every `up`.
                ignore_changes=["agentPoolProfiles[*].count", *_version_fields(config, "kubernetesVersion")],
            ),
        )
        self.cluster_name = cluster.name
        # The control plane's identity: load balancers it builds may use network resources granted to it.
        self.control_plane_principal_id = identity.principal_id
        self.cluster_id = cluster.id
        self.fqdn = cluster.private_fqdn if api_server.private_cluster else cluster.fqdn
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else "")

        self._container_insights(name, cluster, placement)

        window = config.maintenance_window
        for schedule_name in ("aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"):
            azure.containerservice.MaintenanceConfiguration(
                f"{name}-{schedule_name}",
                config_name=schedule_name,
                resource_group_name=site.resource_group_name,
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
            resource_group_name=site.resource_group_name,
            resource_name=cluster.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        login = placement.access.kubelogin
        self.kubeconfig = pulumi.Output.secret(
            credentials.kubeconfigs.apply(lambda kubeconfigs: _kubelogin_kubeconfig(kubeconfigs[0].value, login))
        )
        # Local accounts are off and Azure RBAC authorizes every request: without this data-plane role the deploying
        # identity could read the kubeconfig but not apply a single object. (Azure RBAC takes a few minutes to reach
        # the cluster's authorizer; a first `up` that is refused right after creating it succeeds when re-run.)
        self.deployer_access = azure.authorization.RoleAssignment(
            f"{name}-deployer-cluster-admin",
            principal_id=placement.access.deployer_principal_id,
            principal_type=placement.access.deployer_principal_type,
            role_definition_id=built_in_role_definition_id(client.subscription_id, AKS_RBAC_CLUSTER_ADMIN_ROLE),
            scope=cluster.id,
            opts=child,
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Stable identity: at preview the kubeconfig is unknown, and without this every object
            # on the cluster would show as a replacement.
            cluster_identifier=f"aks-{name}",
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *self.pools, self.deployer_access]),
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

    def _container_insights(
        self, name: str, cluster: azure.containerservice.ManagedCluster, placement: ClusterPlacement
    ) -> None:
        """The omsagent add-on's data collection rule and its association with the cluster."""
        destination = "ciworkspace"
        rule = azure.monitor.DataCollectionRule(
            f"{name}-container-insights",
            data_collection_rule_name=f"MSCI-{placement.site.location}-aks-{name}",
            kind="Linux",
            data_sources=azure.monitor.DataCollectionRuleDataSourcesArgs(
                extensions=[
                    azure.monitor.ExtensionDataSourceArgs(
                        name=CONTAINER_INSIGHTS_EXTENSION,
                        extension_name="ContainerInsights",
                        streams=[CONTAINER_INSIGHTS_STREAM],
                        extension_settings={
                            "dataCollectionSettings": {
                                "interval": "1m",
                                "namespaceFilteringMode": "Off",
                                "enableContainerLogV2": True,
                            }
                        },
                    )
                ]
            ),
            destinations=azure.monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    azure.monitor.LogAnalyticsDestinationArgs(
                        name=destination, workspace_resource_id=placement.log_analytics_workspace_id
                    )
                ]
            ),
            data_flows=[azure.monitor.DataFlowArgs(streams=[CONTAINER_INSIGHTS_STREAM], destinations=[destination])],
            **placement.site.regional(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        azure.monitor.DataCollectionRuleAssociation(
            f"{name}-container-insights",
            association_name=CONTAINER_INSIGHTS_EXTENSION,
            resource_uri=cluster.id,
            data_collection_rule_id=rule.id,
            description="Container Insights (omsagent with AAD auth) of this cluster",
            opts=pulumi.ResourceOptions(parent=self),
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
            resource_group_name=placement.site.resource_group_name,
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
            upgrade_settings=pool.upgrade_settings,
            tags=dict(placement.site.tags),
            **_scale_set_pool(spec, placement.subnet_id),
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["count", *_version_fields(config, "orchestratorVersion")]
            ),
        )
