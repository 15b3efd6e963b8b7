"""ArgoCD on the management cluster: watches the GitOps repository and syncs both clusters.

No credential goes through the chart's values, so the release's values stay readable in previews and out of the
Helm release Secret: the GitOps repository's token sits in a repository Secret, the SSO client secret in a Secret
that `oidc.config` references by name (both created before the release, which needs them from its first start).
The `default` AppProject, which ArgoCD creates at startup open to any repository, cluster and kind, is emptied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config import ArgoCdConfig, GitOpsConfig, OidcSsoConfig, SsoClient
from components.container_sizing import requests_limits
from components.helm import ChartRef, release
from components.kube import PART_OF_LABEL, object_meta, platform_labels, restricted_pod_security, secret
from components.network_policies import Allow, NamespaceSpec, Peer, among_themselves, metrics_scraping

NAMESPACE = "argocd"
RELEASE = "argocd"
# The UI and API Service the chart names after the release; port 443 serves argocd-server's own TLS.
SERVER_SERVICE = f"{RELEASE}-server"
SERVER_PORT = 443
REPOSITORY = "https://argoproj.github.io/argo-helm"
API_VERSION = "argoproj.io/v1alpha1"
# ArgoCD reads repositories and repository credential templates from Secrets carrying this label.
SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
GITOPS_REPOSITORY_SECRET = "gitops-repository"
# ArgoCD resolves `$<secret>:<key>` in argocd-cm only from Secrets labelled part-of argocd (user-management docs,
# "Sensitive Data and SSO Client Secrets").
SSO_SECRET = "argocd-sso-entra"
SSO_SECRET_KEY = "clientSecret"
SSO_SECRET_LABELS = {PART_OF_LABEL: "argocd"}
DEFAULT_PROJECT = "default"
# An Application that names no project lands in `default`: it may use no repository, reach no cluster and create
# no cluster-scoped kind.
DEFAULT_PROJECT_SPEC: dict[str, Any] = {
    "description": "Unused: every application names the project that confines it",
    "sourceRepos": [],
    "destinations": [],
    "clusterResourceWhitelist": [],
}
# Server-side apply takes over fields argocd-server set when it created the project.
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"

# Components that run in every installation; dex is off because ArgoCD talks OIDC to Entra ID itself.
_SIZES = {
    "controller": requests_limits("250m", "1Gi", "2", "2Gi"),
    "server": requests_limits("100m", "256Mi", "500m", "512Mi"),
    "repoServer": requests_limits("100m", "256Mi", "1", "1Gi"),
    "applicationSet": requests_limits("50m", "128Mi", "500m", "256Mi"),
    "notifications": requests_limits("50m", "64Mi", "250m", "128Mi"),
    "redisSecretInit": requests_limits("50m", "64Mi", "200m", "128Mi"),
}
_REDIS_SIZE = requests_limits("100m", "128Mi", "500m", "256Mi")
_COPYUTIL_SIZE = requests_limits("10m", "32Mi", "100m", "64Mi")
_REDIS_SIDECAR_SIZE = requests_limits("10m", "32Mi", "200m", "128Mi")
# `restricted` pod half; the images set their non-root user (999) themselves.
_POD_SECURITY = restricted_pod_security()
_METRICS_COMPONENTS = ("controller", "server", "repoServer", "applicationSet", "notifications")
# Two replicas and a PDB keep the UI, API and manifest generation up through node drains; the
# application controller stays single (more replicas only shard clusters, and we manage two).
_HA_REPLICAS = {"server": 2, "repoServer": 2, "applicationSet": 2}


def entra_issuer(tenant_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def oidc_config(sso: OidcSsoConfig) -> str:
    """`oidc.config` for an Entra ID app registration (argo-cd docs, "Microsoft": Entra ID App
    Registration Auth using OIDC); group object ids arrive in the `groups` claim."""
    return yaml.safe_dump(
        {
            "name": "Entra ID",
            "issuer": entra_issuer(sso.tenant_id),
            "clientID": sso.client_id,
            "clientSecret": f"${SSO_SECRET}:{SSO_SECRET_KEY}",
            "requestedIDTokenClaims": {"groups": {"essential": True}},
            "requestedScopes": ["openid", "profile", "email"],
        },
        sort_keys=False,
    )


def argocd_values(config: ArgoCdConfig, sso: OidcSsoConfig | None, prometheus_crds: bool) -> dict[str, Any]:
    """Values for argo-cd 10.1.x; every key exists in the chart's values.yaml (tests check it). They take the
    app registration, never its secret: nothing here is a credential."""
    cm: dict[str, Any] = {
        # With SSO the local admin is off: every change is made by a named Entra ID user.
        "admin.enabled": sso is None,
        "exec.enabled": False,
        # The GPU cluster grants ArgoCD an enumerated set of kinds in the platform namespaces only; without
        # this ArgoCD tries to list and watch every kind and its cluster cache never syncs.
        "resource.respectRBAC": "normal",
    }
    rbac: dict[str, Any] = {"policy.default": "role:readonly"}
    configs: dict[str, Any] = {
        "cm": cm,
        # argocd-server keeps serving TLS itself (its own certificate in argocd-server-tls).
        "params": {"server.insecure": False},
        "rbac": rbac,
    }
    if sso is not None:
        cm["oidc.config"] = oidc_config(sso)
        rbac["policy.csv"] = "".join(f'g, "{group}", role:admin\n' for group in sso.admin_group_object_ids)
        rbac["scopes"] = "[groups]"

    values: dict[str, Any] = {
        "global": {"domain": config.hostname},
        "configs": configs,
        "dex": {"enabled": False},
        "repoServer": {
            "copyutil": {"resources": _COPYUTIL_SIZE},
            # The repo server only renders manifests from Git; it never calls the Kubernetes API.
            "automountServiceAccountToken": False,
        },
        # The chart's probes for the ApplicationSet and notifications controllers are off by default.
        "applicationSet": {"livenessProbe": {"enabled": True}, "readinessProbe": {"enabled": True}},
        "notifications": {"livenessProbe": {"enabled": True}, "readinessProbe": {"enabled": True}},
        # The secret-init hook Job's pod (the Argo CD image, built for the non-root uid 999).
        "redisSecretInit": {"securityContext": _POD_SECURITY},
    }
    # Pod securityContext of every Argo CD pod (controller, server, repo server, ApplicationSet, notifications).
    values["global"]["securityContext"] = _POD_SECURITY
    for component, size in _SIZES.items():
        values.setdefault(component, {})["resources"] = size
    if not config.high_availability:
        values["redis"] = {
            "resources": _REDIS_SIZE,
            "automountServiceAccountToken": False,
            "livenessProbe": {"enabled": True},
            "readinessProbe": {"enabled": True},
        }
    else:
        # redis-ha replaces the single redis with three Redis + Sentinel pods behind HAProxy, kept on
        # separate nodes and spread over zones. Its keys are the redis-ha subchart's (charts/redis-ha).
        values["redis-ha"] = {
            "enabled": True,
            "topologySpreadConstraints": {"enabled": True},
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "redis": {"resources": _REDIS_SIZE},
            "sentinel": {"resources": _REDIS_SIDECAR_SIZE},
            "splitBrainDetection": {"resources": _REDIS_SIDECAR_SIZE},
            "init": {"resources": _REDIS_SIDECAR_SIZE},
            "haproxy": {
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "resources": _REDIS_SIZE,
                "init": {"resources": _REDIS_SIDECAR_SIZE},
                # HAProxy only forwards to the Redis pods.
                "serviceAccount": {"automountToken": False},
            },
        }
        for component, replicas in _HA_REPLICAS.items():
            values[component].update(replicas=replicas, pdb={"enabled": True, "minAvailable": 1})
    if prometheus_crds:
        for component in _METRICS_COMPONENTS:
            values[component]["metrics"] = {"enabled": True, "serviceMonitor": {"enabled": True}}
    return values


# argocd-server's pods and the port they serve the UI and API on (the Service's 80 and 443 both target it).
SERVER_POD_LABELS = {"app.kubernetes.io/name": "argocd-server"}
SERVER_CONTAINER_PORT = 8080
# Metrics ports of the controller, server, repo server and notifications controller. The ApplicationSet
# controller's (8080) gets its own policy: on argocd-server 8080 is the UI.
_METRICS_PORTS = (8082, 8083, 8084, 9001)
_APPLICATIONSET_POD_LABELS = {"app.kubernetes.io/name": "argocd-applicationset-controller"}
_APPLICATIONSET_METRICS_PORT = 8080


def argocd_network_allows(ui_entry: Sequence[Peer], prometheus_crds: bool) -> list[Allow]:
    """ArgoCD's components (server, repo server, controllers, Redis or redis-ha) call each other; people reach the
    server through `ui_entry`."""
    allows = [among_themselves()]
    if ui_entry:
        allows.append(Allow("ui", SERVER_POD_LABELS, ui_entry, [SERVER_CONTAINER_PORT]))
    if prometheus_crds:
        allows.append(metrics_scraping({PART_OF_LABEL: "argocd"}, _METRICS_PORTS))
        allows.append(
            metrics_scraping(_APPLICATIONSET_POD_LABELS, [_APPLICATIONSET_METRICS_PORT], name="metrics-applicationset")
        )
    return allows


class ArgoCd(pulumi.ComponentResource):
    """The `argocd` namespace, the Secrets ArgoCD reads its credentials from (the GitOps repository and, with SSO,
    the client secret), the argo-cd release and the emptied `default` AppProject."""

    namespace: str
    url: str
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        config: ArgoCdConfig,
        *,
        chart_version: str,
        gitops: GitOpsConfig,
        gitops_token: pulumi.Output[str],
        sso: SsoClient | None,
        prometheus_crds: bool,
        provider: k8s.Provider,
        ui_entry: Sequence[Peer] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`ui_entry`: the pods through which people reach the UI (the internal entry), allowed into argocd-server."""
        super().__init__("llmops:management:ArgoCd", name, None, opts)
        self.namespace = NAMESPACE
        self.url = f"https://{config.hostname}"
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        # Every Argo CD, Redis (or redis-ha and HAProxy) and hook container meets `restricted` with the values above
        # (tests/test_rendered_pod_security.py checks the rendered chart).
        allows = argocd_network_allows(ui_entry, prometheus_crds)
        argocd_namespace = NamespaceSpec(NAMESPACE, "restricted", allows, name, "namespace").create(
            parent=self, provider=provider
        )
        labels = platform_labels("argocd")
        self.repository_secret = secret(
            f"{name}-gitops-repository",
            object_meta(
                GITOPS_REPOSITORY_SECRET,
                argocd_namespace.name,
                labels={**labels, SECRET_TYPE_LABEL: "repository"},
            ),
            # A token authenticates as the password; Git hosts ignore the user name then.
            string_data={"type": "git", "url": gitops.repo_url, "username": "git", "password": gitops_token},
            opts=child,
        )
        credentials = [self.repository_secret]
        if sso is not None:
            credentials.append(
                secret(
                    f"{name}-sso",
                    object_meta(SSO_SECRET, argocd_namespace.name, labels={**labels, **SSO_SECRET_LABELS}),
                    string_data={SSO_SECRET_KEY: sso.client_secret},
                    opts=child,
                )
            )
        self.release = release(
            RELEASE,
            ChartRef(chart="argo-cd", version=chart_version, repository=REPOSITORY),
            argocd_namespace.name,
            argocd_values(config, sso.app if sso is not None else None, prometheus_crds),
            parent=self,
            provider=provider,
            # argocd-server reads the SSO client secret when it loads its settings at start.
            depends_on=[*argocd_namespace.ready, *credentials],
        )
        # argocd-server creates `default` at start when it is missing, so the project is patched (server-side
        # apply, forced over argocd-server's fields) rather than created. Every app names its own project.
        self.default_project = k8s.apiextensions.CustomResourcePatch(
            f"{name}-default-project",
            api_version=API_VERSION,
            kind="AppProject",
            metadata=object_meta(
                DEFAULT_PROJECT, NAMESPACE, labels=labels, annotations={PATCH_FORCE_ANNOTATION: "true"}
            ),
            spec=DEFAULT_PROJECT_SPEC,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.release])),
        )
        self.register_outputs({"namespace": self.namespace, "url": self.url})
