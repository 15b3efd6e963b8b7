"""MLflow tracking server on the management cluster: experiment lineage of every pipeline run.

Runs, metrics and the model registry live in PostgreSQL (Azure Flexible Server, or the chart's own
PostgreSQL for a throwaway dev stack); artifacts go through the server (`--serve-artifacts`) to a
blob container the server reaches with workload identity, so clients need no storage access at all.
Basic authentication is on; pipelines authenticate with the Secret `mlflow-tracking-credentials`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import MlflowConfig
from components.container_sizing import requests_limits
from components.helm import ChartRef, release
from components.kube import PodSecurityLevel, object_meta, restricted_pod_security, secret
from components.network_policies import Allow, NamespaceSpec, Peer, among_themselves, metrics_scraping
from components.passwords import generated_password
from components.postgres import DatabaseLogin
from components.workload_identity import CLIENT_ID_ANNOTATION, USE_LABEL

NAMESPACE = "mlflow"
RELEASE = "mlflow"
REPOSITORY = "https://community-charts.github.io/helm-charts"
SERVICE = "mlflow"
PORT = 5000
TRACKING_URI = f"http://{SERVICE}.{NAMESPACE}.svc.cluster.local:{PORT}"
ADMIN_USERNAME = "llmops-admin"
ADMIN_SECRET = "mlflow-admin"
DATABASE_SECRET = "mlflow-db"
TRACKING_CREDENTIALS_SECRET = "mlflow-tracking-credentials"
DATABASE = "mlflow"
# The PostgreSQL login role MLflow uses; it owns DATABASE and AUTH_DATABASE.
DATABASE_ROLE = "mlflow"
AUTH_DATABASE = "mlflow_auth"


@dataclass(frozen=True)
class MlflowArtifacts:
    storage_account: pulumi.Input[str]
    container: pulumi.Input[str]
    client_id: pulumi.Input[str]


def allowed_hosts(config: MlflowConfig) -> list[str]:
    """Host headers MLflow >= 3.5 accepts (by default only localhost and private IPs)."""
    in_cluster = [
        SERVICE,
        f"{SERVICE}.{NAMESPACE}",
        f"{SERVICE}.{NAMESPACE}.svc",
        f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    ]
    return [config.hostname, *in_cluster, *(f"{host}:{PORT}" for host in in_cluster)]


def mlflow_values(
    config: MlflowConfig,
    artifacts: MlflowArtifacts,
    database: DatabaseLogin | None,
    auth_database: DatabaseLogin | None,
    prometheus_crds: bool,
) -> dict[str, Any]:
    """Values for community-charts mlflow 1.11.x; every key exists in the chart's values.yaml (tests check it)."""
    auth: dict[str, Any] = {
        "enabled": True,
        "existingAdminSecret": {"name": ADMIN_SECRET, "usernameKey": "username", "passwordKey": "password"},
        "defaultPermission": "READ",
    }
    values: dict[str, Any] = {
        "fullnameOverride": SERVICE,
        # Several replicas need shared state: the tracking and auth stores in one PostgreSQL.
        "replicaCount": 2 if database is not None else 1,
        "service": {"port": PORT},
        # MLflow never calls the Kubernetes API; Azure workload identity projects its own token volume.
        "serviceAccount": {
            "create": True,
            "name": SERVICE,
            "annotations": {CLIENT_ID_ANNOTATION: artifacts.client_id},
            "automount": False,
        },
        "extraPodLabels": {USE_LABEL: "true"},
        # The chart's container securityContext has everything `restricted` asks except seccomp.
        "podSecurityContext": {**restricted_pod_security(fs_group=1001), "fsGroupChangePolicy": "OnRootMismatch"},
        "resources": requests_limits("250m", "512Mi", "1", "2Gi"),
        "artifactRoot": {
            "proxiedArtifactStorage": True,
            "azureBlob": {
                "enabled": True,
                "container": artifacts.container,
                "storageAccount": artifacts.storage_account,
            },
        },
        "auth": auth,
        "serverAllowedHosts": allowed_hosts(config),
    }
    if database is not None:
        if auth_database is None:
            raise ValueError("MLflow on PostgreSQL needs an auth database on the same server")
        values["backendStore"] = {
            "databaseMigration": True,
            "databaseConnectionCheck": True,
            "postgres": {"enabled": True, "host": database.host, "port": database.port, "database": database.database},
            "existingDatabaseSecret": {"name": DATABASE_SECRET, "usernameKey": "username", "passwordKey": "password"},
        }
        auth["postgres"] = {
            "enabled": True,
            "host": auth_database.host,
            "port": auth_database.port,
            "database": auth_database.database,
            "existingSecret": {"name": DATABASE_SECRET, "usernameKey": "username", "passwordKey": "password"},
        }
        # libpq reads it: the server refuses clear-text connections (require_secure_transport).
        values["extraEnvVars"] = {"PGSSLMODE": "require"}
    else:
        values["backendStore"] = {"databaseMigration": True, "databaseConnectionCheck": True}
        values["postgresql"] = {
            "enabled": True,
            "auth": {"database": DATABASE},
            "primary": {"persistence": {"enabled": True}},
        }
    if prometheus_crds:
        values["serviceMonitor"] = {"enabled": True, "namespace": NAMESPACE}
    return values


POD_LABELS = {"app.kubernetes.io/name": SERVICE}


def mlflow_network_allows(
    client_namespace: pulumi.Input[str], ui_entry: Sequence[Peer], chart_database: bool, prometheus_crds: bool
) -> list[Allow]:
    """Workflow pods in `client_namespace` log runs; people reach the UI through `ui_entry`; with the chart's own
    PostgreSQL (`chart_database`) MLflow reaches it in this namespace. Metrics share the API port."""
    allows = [Allow("pipelines", POD_LABELS, [Peer(namespace=client_namespace)], [PORT])]
    if ui_entry:
        allows.append(Allow("ui", POD_LABELS, ui_entry, [PORT]))
    if chart_database:
        allows.append(among_themselves())
    if prometheus_crds:
        allows.append(metrics_scraping(POD_LABELS, [PORT]))
    return allows


class Mlflow(pulumi.ComponentResource):
    """The `mlflow` namespace, credentials Secrets and the mlflow release. `tracking_uri` is the
    stable in-cluster address pipeline steps log to."""

    namespace: str
    url: str
    tracking_uri: str
    tracking_credentials_secret: str
    release: k8s.helm.v3.Release
    admin_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: MlflowConfig,
        *,
        chart_version: str,
        artifacts: MlflowArtifacts,
        database: DatabaseLogin | None,
        auth_database: DatabaseLogin | None,
        admin_password: pulumi.Output[str] | None,
        client_namespace: pulumi.Input[str],
        prometheus_crds: bool,
        provider: k8s.Provider,
        ui_entry: Sequence[Peer] = (),
        database_ready: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`client_namespace`: where the workflow pods that log to MLflow run. `ui_entry`: the pods through which
        people reach the UI (the internal entry). `admin_password`: the configured basic-auth admin password, or
        None to generate one (`admin_password` attribute). `database_ready`: what creates the `database` login role.
        """
        super().__init__("llmops:management:Mlflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.namespace = NAMESPACE
        self.url = f"https://{config.hostname}"
        self.tracking_uri = TRACKING_URI
        self.tracking_credentials_secret = TRACKING_CREDENTIALS_SECRET
        self.admin_password = admin_password or generated_password(f"{name}-admin-password", self)
        admin_password = self.admin_password

        # The chart's own PostgreSQL (dev) is not restricted-clean; MLflow alone is.
        pod_security: PodSecurityLevel = "restricted" if database is not None else "baseline"
        allows = mlflow_network_allows(client_namespace, ui_entry, database is None, prometheus_crds)
        ns = NamespaceSpec(NAMESPACE, pod_security, allows, name, "namespace").create(parent=self, provider=provider)
        prerequisites: list[pulumi.Resource] = [
            *database_ready,
            *ns.ready,
            secret(
                f"{name}-admin",
                object_meta(ADMIN_SECRET, ns.name),
                string_data={"username": ADMIN_USERNAME, "password": admin_password},
                opts=child,
            ),
        ]
        if database is not None:
            prerequisites.append(database.credentials_secret(f"{name}-db", DATABASE_SECRET, ns.name, child))
        # The environment variables the MLflow client reads, ready for `envFrom`.
        secret(
            f"{name}-tracking-credentials",
            object_meta(TRACKING_CREDENTIALS_SECRET, client_namespace),
            string_data={"MLFLOW_TRACKING_USERNAME": ADMIN_USERNAME, "MLFLOW_TRACKING_PASSWORD": admin_password},
            opts=child,
        )

        self.release = release(
            RELEASE,
            ChartRef(chart="mlflow", version=chart_version, repository=REPOSITORY),
            ns.name,
            mlflow_values(config, artifacts, database, auth_database, prometheus_crds),
            parent=self,
            provider=provider,
            depends_on=prerequisites,
        )
        self.register_outputs({"namespace": self.namespace, "url": self.url, "trackingUri": self.tracking_uri})
