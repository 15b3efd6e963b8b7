"""The CPU-only management cluster: the GitOps control plane and the pipeline engine."""

from __future__ import annotations

from typing import Any

import pulumi

from components import argo_workflows, mlflow
from components.aks import AksCluster, ClusterPlacement, PoolSpec
from components.argo_workflows import ArgoWorkflows, ArtifactRepository
from components.argocd import ArgoCd
from components.artifact_storage import STORAGE_BLOB_DATA_CONTRIBUTOR, ArtifactStorage
from components.config import (
    ChartVersionsConfig,
    GitOpsConfig,
    ManagementConfig,
    ManagementSecrets,
    MonitoringConfig,
    PipelinesConfig,
)
from components.mlflow import Mlflow, MlflowArtifacts
from components.postgres import PostgresServer
from components.workload_identity import RoleGrant, WorkloadIdentity

WORKFLOW_ARTIFACTS_CONTAINER = "argo-artifacts"
MLFLOW_ARTIFACTS_CONTAINER = "mlflow-artifacts"


class ManagementCluster(pulumi.ComponentResource):
    """AKS cluster (CPU pools only) that runs ArgoCD, Argo Workflows and MLflow, with the blob
    storage for their artifacts and, outside dev, a PostgreSQL server for MLflow and the workflow
    archive. Everything on the cluster goes through its explicit provider."""

    def __init__(
        self,
        name: str,
        config: ManagementConfig,
        placement: ClusterPlacement,
        protect: bool,
        *,
        charts: ChartVersionsConfig,
        monitoring: MonitoringConfig,
        gitops: GitOpsConfig,
        pipelines: PipelinesConfig,
        secrets: ManagementSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:management:ManagementCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.aks = AksCluster(
            name,
            config.cluster,
            placement,
            user_pools=[PoolSpec(config=pool) for pool in config.cluster.user_pools],
            protect=protect,
            opts=child,
        )
        self.provider = self.aks.provider
        storage = ArtifactStorage(
            f"{name}-artifacts",
            container_names=[WORKFLOW_ARTIFACTS_CONTAINER, MLFLOW_ARTIFACTS_CONTAINER],
            protect=protect,
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            tags=placement.tags,
            opts=child,
        )
        self.artifact_storage_account = storage.account_name
        self.artifact_container = storage.containers[WORKFLOW_ARTIFACTS_CONTAINER].name
        self.mlflow_artifact_container = storage.containers[MLFLOW_ARTIFACTS_CONTAINER].name

        # Blob access is per container: the pipelines cannot touch MLflow's artifacts and vice versa.
        workflows_identity = WorkloadIdentity(
            f"{name}-workflows-wi",
            oidc_issuer_url=self.aks.oidc_issuer_url,
            service_accounts=[
                (pipelines.namespace, argo_workflows.RUNNER_SERVICE_ACCOUNT),
                (argo_workflows.NAMESPACE, argo_workflows.SERVER_SERVICE_ACCOUNT),
            ],
            grants=[
                RoleGrant(
                    "blob-contributor",
                    STORAGE_BLOB_DATA_CONTRIBUTOR,
                    storage.containers[WORKFLOW_ARTIFACTS_CONTAINER].id,
                )
            ],
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            tags=placement.tags,
            opts=child,
        )
        mlflow_identity = WorkloadIdentity(
            f"{name}-mlflow-wi",
            oidc_issuer_url=self.aks.oidc_issuer_url,
            service_accounts=[(mlflow.NAMESPACE, mlflow.SERVICE)],
            grants=[
                RoleGrant(
                    "blob-contributor", STORAGE_BLOB_DATA_CONTRIBUTOR, storage.containers[MLFLOW_ARTIFACTS_CONTAINER].id
                )
            ],
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            tags=placement.tags,
            opts=child,
        )

        postgres = None
        # The password is there exactly when the backend is azure-postgres (see ManagementSecrets).
        if secrets.mlflow_db_password is not None:
            postgres = PostgresServer(
                f"{name}-postgres",
                config.mlflow,
                placement=placement,
                admin_password=secrets.mlflow_db_password,
                database_names=[mlflow.DATABASE, mlflow.AUTH_DATABASE, argo_workflows.ARCHIVE_DATABASE],
                protect=protect,
                opts=child,
            )

        argocd = ArgoCd(
            f"{name}-argocd",
            config.argocd,
            chart_version=charts.argo_cd,
            gitops=gitops,
            gitops_token=secrets.gitops_token,
            sso=secrets.sso,
            prometheus_crds=monitoring.prometheus_crds,
            provider=self.provider,
            opts=child,
        )
        self.argocd_release = argocd.release
        self.argocd_url = argocd.url

        workflows = ArgoWorkflows(
            f"{name}-argo-workflows",
            config.argo_workflows,
            chart_version=charts.argo_workflows,
            pipelines=pipelines,
            artifacts=ArtifactRepository(
                blob_endpoint=storage.blob_endpoint,
                container=self.artifact_container,
                client_id=workflows_identity.client_id,
            ),
            sso=secrets.sso,
            archive=postgres.login(argo_workflows.ARCHIVE_DATABASE) if postgres else None,
            prometheus_crds=monitoring.prometheus_crds,
            provider=self.provider,
            opts=child,
        )
        self.workflows_release = workflows.workflows_release
        self.pipelines_namespace = workflows.pipelines_namespace
        self.pipeline_service_account = workflows.runner_service_account
        self.argo_workflows_url = workflows.url

        tracking = Mlflow(
            f"{name}-mlflow",
            config.mlflow,
            chart_version=charts.mlflow,
            artifacts=MlflowArtifacts(
                storage_account=storage.account_name,
                container=self.mlflow_artifact_container,
                client_id=mlflow_identity.client_id,
            ),
            database=postgres.login(mlflow.DATABASE) if postgres else None,
            auth_database=postgres.login(mlflow.AUTH_DATABASE) if postgres else None,
            admin_password=secrets.mlflow_admin_password,
            client_namespace=workflows.pipelines_ns.metadata.name,
            prometheus_crds=monitoring.prometheus_crds,
            provider=self.provider,
            opts=child,
        )
        self.mlflow_url = tracking.url
        self.mlflow_tracking_uri = tracking.tracking_uri
        self.mlflow_credentials_secret = tracking.tracking_credentials_secret

        # What the management cluster publishes (its kubeconfig, a secret, apart).
        self.outputs: dict[str, Any] = {
            "name": self.aks.cluster_name,
            "resourceId": self.aks.cluster_id,
            "apiServerFqdn": self.aks.fqdn,
            "argocdUrl": self.argocd_url,
            "argoWorkflowsUrl": self.argo_workflows_url,
            "mlflowUrl": self.mlflow_url,
            "mlflowTrackingUri": self.mlflow_tracking_uri,
            "artifactStorageAccount": self.artifact_storage_account,
            "artifactContainer": self.artifact_container,
            "pipelinesNamespace": self.pipelines_namespace,
        }
        self.register_outputs(self.outputs)
