"""The CPU-only management cluster: the GitOps control plane and the pipeline engine."""

from __future__ import annotations

import pulumi

from components.aks import AksCluster, ClusterPlacement, PoolSpec
from components.config import ManagementConfig


class ManagementCluster(pulumi.ComponentResource):
    """AKS cluster (CPU pools only) that runs ArgoCD, Argo Workflows and MLflow."""

    def __init__(
        self,
        name: str,
        config: ManagementConfig,
        placement: ClusterPlacement,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:management:ManagementCluster", name, None, opts)
        self.aks = AksCluster(
            name,
            config.cluster,
            placement,
            user_pools=[PoolSpec(config=pool) for pool in config.cluster.user_pools],
            protect=protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.provider = self.aks.provider
        self.register_outputs(
            {
                "clusterName": self.aks.cluster_name,
                "clusterId": self.aks.cluster_id,
                "apiServerFqdn": self.aks.fqdn,
            }
        )
