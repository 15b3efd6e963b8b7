"""Argo Workflows (v4) on the management cluster: the engine the LLM pipelines run on.

Workflows run in the pipelines namespace as `llm-pipeline-runner`, a ServiceAccount with only the
executor's permissions that reaches the artifact container through workload identity. Completed
workflows leave the cluster after `workflowTtlSeconds`; when a PostgreSQL server is available they
are archived there for `archiveRetentionDays`, otherwise the TTL is the only retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.argocd import entra_issuer
from components.config import ArgoWorkflowsConfig, OidcSsoConfig, PipelinesConfig, SsoClient
from components.container_sizing import requests_limits
from components.helm import ChartRef, release
from components.kube import object_meta, restricted_pod_security, secret
from components.network_policies import Allow, NamespaceSpec, Peer, metrics_scraping
from components.postgres import DatabaseLogin
from components.workload_identity import CLIENT_ID_ANNOTATION, USE_LABEL

NAMESPACE = "argo"
RELEASE = "argo-workflows"
REPOSITORY = "https://argoproj.github.io/argo-helm"
RUNNER_SERVICE_ACCOUNT = "llm-pipeline-runner"
SERVER_SERVICE_ACCOUNT = "argo-workflows-server"
# The Service the chart names after the release, where argo-server serves its UI and API (HTTPS, `secure`).
SERVER_SERVICE = f"{RELEASE}-server"
SERVER_PORT = 2746
# The pipeline templates reference this ConfigMap and key in `synchronization.semaphores`.
GPU_SEMAPHORE_CONFIGMAP = "llmops-gpu-semaphore"
GPU_SEMAPHORE_KEY = "gpu-jobs"
SSO_SECRET = "argo-server-sso"
ARCHIVE_DB_SECRET = "argo-archive-db"
ARCHIVE_DATABASE = "argo_workflows"
# The PostgreSQL login role the archive uses; it owns ARCHIVE_DATABASE and nothing else.
ARCHIVE_ROLE = "argo_workflows"
# ClusterRoles the chart aggregates into view/admin (createAggregateRoles), named after the release.
VIEW_CLUSTER_ROLE = f"{RELEASE}-view"
ADMIN_CLUSTER_ROLE = f"{RELEASE}-admin"

EXECUTOR_USER = 8737
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
# Argo Workflows >= 3.4 executor minimum (docs/workflow-rbac.md): it reports outputs through
# WorkflowTaskResults; the emissary executor needs nothing on pods.
EXECUTOR_RULES = [
    k8s.rbac.v1.PolicyRuleArgs(
        api_groups=["argoproj.io"], resources=["workflowtaskresults"], verbs=["create", "patch"]
    ),
]


@dataclass(frozen=True)
class ArtifactRepository:
    blob_endpoint: pulumi.Input[str]
    container: pulumi.Input[str]
    # Workload identity of the server, which serves artifacts and archived logs in the UI.
    client_id: pulumi.Input[str]
    # Workload identity of the pipeline runner, which writes them (and calls the gateway).
    runner_client_id: pulumi.Input[str]


@dataclass(frozen=True)
class SsoAccount:
    """A ServiceAccount SSO users are mapped to by an expression over their token's claims."""

    name: str
    rule: str
    precedence: int
    cluster_role: str


def sso_accounts(sso: OidcSsoConfig) -> list[SsoAccount]:
    admin_rule = " || ".join(f"'{group}' in groups" for group in sso.admin_group_object_ids)
    return [
        SsoAccount("argo-sso-admin", admin_rule, 1, ADMIN_CLUSTER_ROLE),
        # Everyone else who can sign in to the tenant app may look, not touch.
        SsoAccount("argo-sso-readonly", "true", 0, VIEW_CLUSTER_ROLE),
    ]


def token_secret_name(service_account: str) -> str:
    # The name Argo looks for (docs/service-account-secrets.md); Kubernetes >= 1.24 creates none itself.
    return f"{service_account}.service-account-token"


def workflow_defaults(config: ArgoWorkflowsConfig, pipelines: PipelinesConfig) -> dict[str, Any]:
    """`controller.workflowDefaults`: a Workflow spec merged under every submitted workflow."""
    return {
        "spec": {
            "serviceAccountName": RUNNER_SERVICE_ACCOUNT,
            "activeDeadlineSeconds": pipelines.active_deadline_seconds,
            # Failed pods stay for debugging until the workflow's TTL removes them with it.
            "podGC": {"strategy": "OnPodSuccess"},
            "ttlStrategy": {"secondsAfterCompletion": config.workflow_ttl_seconds},
            "podMetadata": {"labels": {USE_LABEL: "true"}},
            # Pod half of the `restricted` standard the pipelines namespace enforces. The default argoexec
            # image runs as root, so a user is set: 8737, the user of Argo's non-root executor image
            # (docs/workflow-pod-security-context.md).
            "securityContext": restricted_pod_security(EXECUTOR_USER, fs_group=EXECUTOR_USER),
        }
    }


# Pod securityContext of the workflow controller and argo-server: the `restricted` pod half with a UID >= 10000
# (the images run as 8737 by default; they are static binaries that run under any UID).
CONTROL_PLANE_USER = 10001
_CONTROL_PLANE_POD = restricted_pod_security(CONTROL_PLANE_USER)


def archive_persistence(config: ArgoWorkflowsConfig, database: DatabaseLogin) -> dict[str, Any]:
    return {
        "archive": True,
        "archiveTTL": f"{config.archive_retention_days}d",
        "postgresql": {
            "host": database.host,
            "port": database.port,
            "database": database.database,
            "tableName": "argo_workflows",
            "userNameSecret": {"name": ARCHIVE_DB_SECRET, "key": "username"},
            "passwordSecret": {"name": ARCHIVE_DB_SECRET, "key": "password"},
            "ssl": True,
            "sslMode": "require",
        },
    }


def argo_workflows_values(
    config: ArgoWorkflowsConfig,
    pipelines: PipelinesConfig,
    artifacts: ArtifactRepository,
    sso: OidcSsoConfig | None,
    archive: DatabaseLogin | None,
    prometheus_crds: bool,
) -> dict[str, Any]:
    """Values for argo-workflows 1.0.x; every key exists in the chart's values.yaml (tests check it)."""
    controller: dict[str, Any] = {
        "workflowNamespaces": [pipelines.namespace],
        "parallelism": config.parallelism,
        "namespaceParallelism": config.namespace_parallelism,
        "workflowDefaults": workflow_defaults(config, pipelines),
        "resources": requests_limits("100m", "256Mi", "1", "1Gi"),
        "podSecurityContext": _CONTROL_PLANE_POD,
    }
    if archive is not None:
        controller["persistence"] = archive_persistence(config, archive)
    if prometheus_crds:
        controller["metricsConfig"] = {"enabled": True}
        controller["serviceMonitor"] = {"enabled": True}

    server: dict[str, Any] = {
        "authModes": list(config.auth_modes),
        # argo-server serves HTTPS itself.
        "secure": True,
        "resources": requests_limits("50m", "128Mi", "500m", "512Mi"),
        "podSecurityContext": _CONTROL_PLANE_POD,
        # The chart mounts an emptyDir on /tmp (server.tmpVolume), the only place the server writes.
        "securityContext": {"readOnlyRootFilesystem": True},
        "livenessProbe": {"enabled": True},
        "serviceAccount": {"name": SERVER_SERVICE_ACCOUNT, "annotations": {CLIENT_ID_ANNOTATION: artifacts.client_id}},
        "podLabels": {USE_LABEL: "true"},
    }
    if "sso" in config.auth_modes:
        if sso is None:
            raise ValueError("Argo Workflows SSO needs management.argocd.sso")
        server["sso"] = {
            "enabled": True,
            "issuer": entra_issuer(sso.tenant_id),
            "clientId": {"name": SSO_SECRET, "key": "client-id"},
            "clientSecret": {"name": SSO_SECRET, "key": "client-secret"},
            "redirectUrl": f"https://{config.hostname}/oauth2/callback",
            # Entra ID puts group object ids into the `groups` claim without a `groups` scope.
            "scopes": ["profile", "email"],
            "rbac": {
                "enabled": True,
                # The server may read the SSO client secret and the mapped accounts' tokens, nothing else.
                "secretWhitelist": [SSO_SECRET, *(token_secret_name(a.name) for a in sso_accounts(sso))],
            },
        }

    return {
        "crds": {
            "install": True,
            "keep": True,
            "upgradeJob": {
                "resources": requests_limits("50m", "64Mi", "200m", "128Mi"),
                "podSecurityContext": restricted_pod_security(),
            },
        },
        # We create the runner ServiceAccount and its minimal Role ourselves (see ArgoWorkflows).
        "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
        "controller": controller,
        "executor": {
            "resources": requests_limits("50m", "64Mi", "500m", "256Mi"),
            "securityContext": _RESTRICTED_CONTAINER,
        },
        "mainContainer": {"securityContext": _RESTRICTED_CONTAINER},
        "server": server,
        "useStaticCredentials": False,
        "artifactRepository": {
            "archiveLogs": True,
            "azure": {"endpoint": artifacts.blob_endpoint, "container": artifacts.container, "useSDKCreds": True},
        },
    }


SERVER_POD_LABELS = {"app.kubernetes.io/name": f"{RELEASE}-server"}
CONTROLLER_POD_LABELS = {"app.kubernetes.io/name": f"{RELEASE}-workflow-controller"}
CONTROLLER_METRICS_PORT = 9090


def argo_network_allows(ui_entry: Sequence[Peer], prometheus_crds: bool) -> list[Allow]:
    """argo-server is called by people through `ui_entry`; the controller only by Prometheus. Workflow pods talk to
    the kube-apiserver, never to these pods, and nothing calls the workflow pods (their namespace only denies)."""
    allows: list[Allow] = []
    if ui_entry:
        allows.append(Allow("ui", SERVER_POD_LABELS, ui_entry, [SERVER_PORT]))
    if prometheus_crds:
        allows.append(metrics_scraping(CONTROLLER_POD_LABELS, [CONTROLLER_METRICS_PORT]))
    return allows


class ArgoWorkflows(pulumi.ComponentResource):
    """Namespaces `argo` and the pipelines namespace, the release, the pipeline runner's
    ServiceAccount and Role, SSO wiring, and the GPU semaphore. Argo custom resources (workflow
    templates) must depend on `workflows_release`: its hook Job installs the CRDs."""

    namespace: str
    pipelines_namespace: str
    runner_service_account: str
    url: str
    workflows_release: k8s.helm.v3.Release
    pipelines_ns: k8s.core.v1.Namespace

    def __init__(
        self,
        name: str,
        config: ArgoWorkflowsConfig,
        *,
        chart_version: str,
        pipelines: PipelinesConfig,
        artifacts: ArtifactRepository,
        sso: SsoClient | None,
        archive: DatabaseLogin | None,
        prometheus_crds: bool,
        provider: k8s.Provider,
        ui_entry: Sequence[Peer] = (),
        database_ready: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`ui_entry`: the pods through which people reach the UI (the internal entry), allowed into argo-server.
        `database_ready`: what creates the `archive` login role (the controller connects at start)."""
        super().__init__("llmops:management:ArgoWorkflows", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.namespace = NAMESPACE
        self.pipelines_namespace = pipelines.namespace
        self.runner_service_account = RUNNER_SERVICE_ACCOUNT
        self.url = f"https://{config.hostname}"

        # The chart's controller and server set no seccomp profile. Workflow pods take no connections.
        argo_allows = argo_network_allows(ui_entry, prometheus_crds)
        argo = NamespaceSpec(NAMESPACE, "baseline", argo_allows, name, "namespace").create(
            parent=self, provider=provider
        )
        pipelines_spec = NamespaceSpec(pipelines.namespace, "restricted", [], f"{name}-pipelines", "namespace")
        pipelines_isolated = pipelines_spec.create(parent=self, provider=provider)
        argo_ns, pipelines_ns = argo.namespace, pipelines_isolated.namespace
        self.pipelines_ns = pipelines_ns

        runner = k8s.core.v1.ServiceAccount(
            f"{name}-runner",
            metadata=object_meta(
                RUNNER_SERVICE_ACCOUNT,
                pipelines_ns.metadata.name,
                annotations={CLIENT_ID_ANNOTATION: artifacts.runner_client_id},
            ),
            opts=child,
        )
        runner_role = k8s.rbac.v1.Role(
            f"{name}-runner-executor",
            metadata=object_meta(f"{RUNNER_SERVICE_ACCOUNT}-executor", pipelines_ns.metadata.name),
            rules=EXECUTOR_RULES,
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-runner-executor-binding",
            metadata=object_meta(f"{RUNNER_SERVICE_ACCOUNT}-executor", pipelines_ns.metadata.name),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=runner_role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=runner.metadata.name, namespace=pipelines_ns.metadata.name
                )
            ],
            opts=child,
        )

        prerequisites: list[pulumi.Resource] = [*argo.ready, *pipelines_isolated.ready, *database_ready]
        sso_in_use = sso if "sso" in config.auth_modes else None
        accounts = sso_accounts(sso_in_use.app) if sso_in_use is not None else []
        if sso_in_use is not None:
            prerequisites.append(
                secret(
                    f"{name}-sso",
                    object_meta(SSO_SECRET, argo_ns.metadata.name),
                    string_data={"client-id": sso_in_use.app.client_id, "client-secret": sso_in_use.client_secret},
                    opts=child,
                )
            )
        if archive is not None:
            prerequisites.append(
                archive.credentials_secret(f"{name}-archive-db", ARCHIVE_DB_SECRET, argo_ns.metadata.name, child)
            )

        self.workflows_release = release(
            RELEASE,
            ChartRef(chart="argo-workflows", version=chart_version, repository=REPOSITORY),
            argo_ns.metadata.name,
            argo_workflows_values(config, pipelines, artifacts, sso.app if sso else None, archive, prometheus_crds),
            parent=self,
            provider=provider,
            depends_on=prerequisites,
        )
        after_release = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.workflows_release])

        self.gpu_semaphore = k8s.core.v1.ConfigMap(
            f"{name}-gpu-semaphore",
            metadata=object_meta(GPU_SEMAPHORE_CONFIGMAP, pipelines_ns.metadata.name),
            data={GPU_SEMAPHORE_KEY: str(config.gpu_job_limit)},
            opts=after_release,
        )

        for account in accounts:
            self._sso_account(name, account, argo_ns, pipelines_ns, after_release)

        self.register_outputs(
            {
                "namespace": self.namespace,
                "pipelinesNamespace": self.pipelines_namespace,
                "runnerServiceAccount": self.runner_service_account,
                "url": self.url,
            }
        )

    def _sso_account(
        self,
        name: str,
        account: SsoAccount,
        argo_ns: k8s.core.v1.Namespace,
        pipelines_ns: k8s.core.v1.Namespace,
        opts: pulumi.ResourceOptions,
    ) -> None:
        """A ServiceAccount in `argo` that argo-server maps matching SSO users to, its token Secret,
        and its role (a chart ClusterRole) in the pipelines namespace only."""
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-{account.name}",
            metadata=object_meta(
                account.name,
                argo_ns.metadata.name,
                annotations={
                    "workflows.argoproj.io/rbac-rule": account.rule,
                    "workflows.argoproj.io/rbac-rule-precedence": str(account.precedence),
                },
            ),
            opts=opts,
        )
        secret(
            f"{name}-{account.name}-token",
            object_meta(
                token_secret_name(account.name),
                argo_ns.metadata.name,
                annotations={"kubernetes.io/service-account.name": account.name},
            ),
            secret_type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[service_account])),
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-{account.name}-binding",
            metadata=object_meta(account.name, pipelines_ns.metadata.name),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=account.cluster_role
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=service_account.metadata.name, namespace=argo_ns.metadata.name
                )
            ],
            opts=opts,
        )
