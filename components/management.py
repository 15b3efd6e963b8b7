"""The CPU-only management cluster: the GitOps control plane and the pipeline engine."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native as azure

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
    internal_entry_address,
)
from components.internal_entry import UI_ENTRY_PEER, InternalEntry, ui_backends
from components.mlflow import Mlflow, MlflowArtifacts
from components.postgres import AppRole, DatabaseRoles, PostgresServer
from components.workload_identity import RoleGrant, WorkloadIdentity

WORKFLOW_ARTIFACTS_CONTAINER = "argo-artifacts"
MLFLOW_ARTIFACTS_CONTAINER = "mlflow-artifacts"
# Two addresses the management cluster leaves from: what the gateway's passthrough and outside firewalls admit.
EGRESS_PREFIX_LENGTH = 31


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
        # A fixed egress: every outbound connection (ArgoCD to the GPU apiserver passthrough among them) leaves from
        # this prefix, so allowlists can name it. Protected with the cluster: a new prefix is a new address.
        egress = azure.network.PublicIPPrefix(
            f"{name}-egress",
            public_ip_prefix_name=f"ippre-{name}-egress",
            prefix_length=EGRESS_PREFIX_LENGTH,
            public_ip_address_version="IPv4",
            sku=azure.network.PublicIPPrefixSkuArgs(name="Standard", tier="Regional"),
            **placement.site.regional(),
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.egress_prefix = egress.ip_prefix
        self.aks = AksCluster(
            name,
            config.cluster,
            placement,
            user_pools=[PoolSpec(config=pool) for pool in config.cluster.user_pools],
            protect=protect,
            egress_prefix_id=egress.id,
            opts=child,
        )
        self.provider = self.aks.provider
        storage = ArtifactStorage(
            f"{name}-artifacts",
            container_names=[WORKFLOW_ARTIFACTS_CONTAINER, MLFLOW_ARTIFACTS_CONTAINER],
            protect=protect,
            site=placement.site,
            opts=child,
        )
        self.artifact_storage_account = storage.account_name
        self.artifact_container = storage.containers[WORKFLOW_ARTIFACTS_CONTAINER].name
        self.mlflow_artifact_container = storage.containers[MLFLOW_ARTIFACTS_CONTAINER].name

        # Blob access is per container: the pipelines cannot touch MLflow's artifacts and vice versa.
        # The pipeline runner has an identity of its own: beside the artifacts, it is what the workflow pods present
        # to the gateway (Entra tokens for the gateway API where auth is jwt), which argo-server must not be.
        def blob_identity(suffix: str, service_account: tuple[str, str], container: str) -> WorkloadIdentity:
            return WorkloadIdentity(
                f"{name}-{suffix}-wi",
                oidc_issuer_url=self.aks.oidc_issuer_url,
                service_accounts=[service_account],
                grants=[RoleGrant("blob-contributor", STORAGE_BLOB_DATA_CONTRIBUTOR, storage.containers[container].id)],
                site=placement.site,
                opts=child,
            )

        self.pipeline_runner_identity = blob_identity(
            "pipeline-runner",
            (pipelines.namespace, argo_workflows.RUNNER_SERVICE_ACCOUNT),
            WORKFLOW_ARTIFACTS_CONTAINER,
        )
        workflows_identity = blob_identity(
            "workflows",
            (argo_workflows.NAMESPACE, argo_workflows.SERVER_SERVICE_ACCOUNT),
            WORKFLOW_ARTIFACTS_CONTAINER,
        )
        mlflow_identity = blob_identity("mlflow", (mlflow.NAMESPACE, mlflow.SERVICE), MLFLOW_ARTIFACTS_CONTAINER)

        postgres = None
        database_ready: list[pulumi.Resource] = []
        # The passwords are there exactly when the backend is azure-postgres (see ManagementSecrets).
        if secrets.database is not None:
            postgres = PostgresServer(
                f"{name}-postgres",
                config.mlflow,
                placement=placement,
                admin_password=secrets.database.admin,
                roles=[
                    AppRole(mlflow.DATABASE_ROLE, (mlflow.DATABASE, mlflow.AUTH_DATABASE), secrets.database.mlflow),
                    AppRole(
                        argo_workflows.ARCHIVE_ROLE, (argo_workflows.ARCHIVE_DATABASE,), secrets.database.argo_archive
                    ),
                ],
                protect=protect,
                opts=child,
            )
            database_ready.append(
                DatabaseRoles(f"{name}-postgres-roles", postgres, provider=self.provider, opts=child).job
            )

        argocd = ArgoCd(
            f"{name}-argocd",
            config.argocd,
            chart_version=charts.argo_cd,
            gitops=gitops,
            gitops_token=secrets.gitops_token,
            sso=secrets.sso,
            prometheus_crds=monitoring.prometheus_crds,
            ui_entry=[UI_ENTRY_PEER],
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
                runner_client_id=self.pipeline_runner_identity.client_id,
            ),
            sso=secrets.sso,
            archive=postgres.login(argo_workflows.ARCHIVE_DATABASE) if postgres else None,
            database_ready=database_ready,
            prometheus_crds=monitoring.prometheus_crds,
            ui_entry=[UI_ENTRY_PEER],
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
            database_ready=database_ready,
            client_namespace=workflows.pipelines_ns.metadata.name,
            prometheus_crds=monitoring.prometheus_crds,
            ui_entry=[UI_ENTRY_PEER],
            provider=self.provider,
            opts=child,
        )
        self.mlflow_url = tracking.url
        self.mlflow_tracking_uri = tracking.tracking_uri
        self.mlflow_credentials_secret = tracking.tracking_credentials_secret
        # Configured or generated: for people to read with `pulumi stack output --show-secrets`.
        self.mlflow_admin_password = tracking.admin_password
        self.postgres_admin_password = postgres.admin_password if postgres is not None else None

        # The exported UI URLs are served here, from inside the network only.
        self.internal_entry = InternalEntry(
            f"{name}-entry",
            config.internal_entry,
            address=internal_entry_address(config.internal_entry, placement.network),
            backends=ui_backends(config.argocd.hostname, config.argo_workflows.hostname, config.mlflow.hostname),
            chart_version=charts.envoy_gateway,
            provider=self.provider,
            backends_ready=[argocd.release, workflows.workflows_release, tracking.release],
            opts=child,
        )

        # What the management cluster publishes (its kubeconfig, a secret, apart).
        self.outputs: dict[str, Any] = {
            "name": self.aks.cluster_name,
            "resourceId": self.aks.cluster_id,
            "egressPrefix": self.egress_prefix,
            "apiServerFqdn": self.aks.fqdn,
            "argocdUrl": self.argocd_url,
            "argoWorkflowsUrl": self.argo_workflows_url,
            "mlflowUrl": self.mlflow_url,
            "mlflowTrackingUri": self.mlflow_tracking_uri,
            # The workflow pods' Entra identity: grant it the gateway API (an app role where assignment is required).
            "pipelineRunnerIdentity": {
                "clientId": self.pipeline_runner_identity.client_id,
                "principalId": self.pipeline_runner_identity.principal_id,
            },
            "artifactStorageAccount": self.artifact_storage_account,
            "artifactContainer": self.artifact_container,
            "pipelinesNamespace": self.pipelines_namespace,
            "internalEntry": self.internal_entry.outputs,
        }
        self.register_outputs(self.outputs)
