"""ArgoCD on the management cluster: watches the GitOps repository and syncs both clusters."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config import ArgoCdConfig, GitOpsConfig, OidcSsoConfig, SsoClient
from components.container_sizing import requests_limits
from components.helm import ChartRef, release_in_namespace

NAMESPACE = "argocd"
RELEASE = "argocd"
REPOSITORY = "https://argoproj.github.io/argo-helm"
GITOPS_REPOSITORY_KEY = "gitops"
# Key in argocd-secret that `oidc.config` references as `$oidc.entra.clientSecret`.
OIDC_CLIENT_SECRET_KEY = "oidc.entra.clientSecret"

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
            "clientSecret": f"${OIDC_CLIENT_SECRET_KEY}",
            "requestedIDTokenClaims": {"groups": {"essential": True}},
            "requestedScopes": ["openid", "profile", "email"],
        },
        sort_keys=False,
    )


def argocd_values(
    config: ArgoCdConfig,
    gitops: GitOpsConfig,
    gitops_token: pulumi.Input[str],
    sso: SsoClient | None,
    prometheus_crds: bool,
) -> dict[str, Any]:
    """Values for argo-cd 10.1.x; every key exists in the chart's values.yaml (tests check it)."""
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
        "repositories": {
            GITOPS_REPOSITORY_KEY: {
                "name": GITOPS_REPOSITORY_KEY,
                "type": "git",
                "url": gitops.repo_url,
                # A token authenticates as the password; Git hosts ignore the user name then.
                "username": "git",
                "password": gitops_token,
            }
        },
    }
    if sso is not None:
        cm["oidc.config"] = oidc_config(sso.app)
        rbac["policy.csv"] = "".join(f'g, "{group}", role:admin\n' for group in sso.app.admin_group_object_ids)
        rbac["scopes"] = "[groups]"
        configs["secret"] = {"extra": {OIDC_CLIENT_SECRET_KEY: sso.client_secret}}

    values: dict[str, Any] = {
        "global": {"domain": config.hostname},
        "configs": configs,
        "dex": {"enabled": False},
        "repoServer": {"copyutil": {"resources": _COPYUTIL_SIZE}},
    }
    for component, size in _SIZES.items():
        values.setdefault(component, {})["resources"] = size
    if not config.high_availability:
        values["redis"] = {"resources": _REDIS_SIZE}
    else:
        # redis-ha replaces the single redis with three Redis + Sentinel pods behind HAProxy, kept on
        # separate nodes and spread over zones.
        values["redis-ha"] = {"enabled": True, "topologySpreadConstraints": {"enabled": True}}
        for component, replicas in _HA_REPLICAS.items():
            values[component].update(replicas=replicas, pdb={"enabled": True, "minAvailable": 1})
    if prometheus_crds:
        for component in _METRICS_COMPONENTS:
            values[component]["metrics"] = {"enabled": True, "serviceMonitor": {"enabled": True}}
    return values


class ArgoCd(pulumi.ComponentResource):
    """The `argocd` namespace and the argo-cd release; the GitOps repository credential stays a
    secret Output, which makes the whole values input secret in the state (expected)."""

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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:management:ArgoCd", name, None, opts)
        self.namespace = NAMESPACE
        self.url = f"https://{config.hostname}"
        _, self.release = release_in_namespace(
            RELEASE,
            ChartRef(chart="argo-cd", version=chart_version, repository=REPOSITORY),
            argocd_values(config, gitops, gitops_token, sso, prometheus_crds),
            namespace_name=NAMESPACE,
            # redis-ha and HAProxy set no seccomp profile, so the namespace cannot enforce `restricted` yet.
            pod_security="baseline",
            namespace_resource_name=f"{name}-namespace",
            parent=self,
            provider=provider,
        )
        self.register_outputs({"namespace": self.namespace, "url": self.url})
