"""The whole platform for one environment: the only place that knows how the parts connect."""

from __future__ import annotations

import pulumi

from components.aks import ClusterPlacement
from components.azure_base import AzureBase
from components.config import PlatformConfig, PlatformSecrets
from components.gpu import GpuCluster
from components.management import ManagementCluster


class Platform(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        secrets: PlatformSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:platform:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gpu_on_aks = config.gpu_cluster.mode == "aks"

        base = AzureBase(
            f"{name}-azure",
            config.azure,
            config.environment,
            needs_gpu_subnet=gpu_on_aks,
            protect=config.protect,
            opts=child,
        )

        def placement(subnet_id: pulumi.Input[str]) -> ClusterPlacement:
            return ClusterPlacement(
                resource_group_name=base.resource_group_name,
                location=config.azure.location,
                subnet_id=subnet_id,
                log_analytics_workspace_id=base.log_analytics_workspace_id,
                network=config.azure.network,
                tags=base.tags,
            )

        self.management = ManagementCluster(
            f"{config.environment}-mgmt",
            config.management,
            placement(base.management_subnet_id),
            protect=config.protect,
            opts=child,
        )
        self.gpu = GpuCluster(
            f"{config.environment}-gpu",
            config.gpu_cluster,
            placement(base.gpu_subnet_id) if base.gpu_subnet_id is not None else None,
            existing_kubeconfig=secrets.gpu_cluster_kubeconfig,
            protect=config.protect,
            opts=child,
        )

        self.outputs: dict[str, pulumi.Input[object]] = {
            "environment": config.environment,
            "resourceGroupName": base.resource_group_name,
            "managementCluster": {
                "name": self.management.aks.cluster_name,
                "resourceId": self.management.aks.cluster_id,
                "apiServerFqdn": self.management.aks.fqdn,
            },
            "managementKubeconfig": self.management.aks.kubeconfig,
            "gpuCluster": {
                "mode": self.gpu.mode,
                "apiEndpoint": self.gpu.api_endpoint,
                "pools": [
                    {
                        "name": p.name,
                        "vmSize": p.vm_size,
                        "gpusPerNode": p.gpus_per_node,
                        "minCount": p.min_count,
                        "maxCount": p.max_count,
                        "spot": p.spot,
                    }
                    for p in self.gpu.pools
                ],
            },
            "gpuKubeconfig": self.gpu.kubeconfig,
        }
        self.register_outputs(self.outputs)
