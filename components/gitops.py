"""GitOps wiring: ArgoCD on the management cluster deploys the platform's apps into the GPU cluster.

On the GPU cluster, ArgoCD acts as the `argocd-manager` ServiceAccount through a long-lived token. Its rights are
enumerated, never wildcards, and the trade-off is deliberate:
- it may write only the namespaced kinds an app of this platform consists of (`DEPLOYABLE_KINDS`: what the NeMo
  and NIM charts render — workloads, their config, Secrets included, Services, autoscaling, disruption budgets,
  network policies, namespaced RBAC — plus the Prometheus Operator's ServiceMonitors, PodMonitors and
  PrometheusRules), and only in the platform namespaces (a RoleBinding of the deployer ClusterRole in each);
- it may read what those kinds create, and pod logs for the UI (no exec: argocd-cm turns it off);
- cluster-wide it may only read namespaces (the ClusterRoleBinding);
- so the cluster is registered namespace-scoped (`namespaces`, `clusterResources: false`): ArgoCD watches those
  namespaces only. An app needing a CRD, a ClusterRole or a new kind fails to sync until the kind is added here;
  that is the price of a token that cannot take over the cluster. ArgoCD must skip kinds it may not list
  (`resource.respectRBAC` in argocd-cm), or its cache fails on the first forbidden list.

On the management cluster: the cluster Secret, an AppProject that confines the apps to the GPU cluster's platform
namespaces, the GitOps repository and the Helm repositories of the charts those apps install (with a repository
Secret holding the login for each that needs one), and the app-of-apps Application (in a bootstrap project that
may only create Applications) that syncs the environment's folder of that repository.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import GitOpsConfig
from components.kube import custom_object, object_meta, platform_labels, secret

SERVICE_ACCOUNT = "argocd-manager"
SERVICE_ACCOUNT_NAMESPACE = "kube-system"
TOKEN_SECRET = "argocd-manager-token"
OBSERVER_ROLE = "argocd-manager-observer"
DEPLOYER_ROLE = "argocd-manager-deployer"
# ArgoCD's name for the cluster it runs in.
IN_CLUSTER = "https://kubernetes.default.svc"
SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
ARGOCD_API_VERSION = "argoproj.io/v1alpha1"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete")


@dataclass(frozen=True)
class DeployableKind:
    group: str
    kind: str
    resource: str


DEPLOYABLE_KINDS: tuple[DeployableKind, ...] = (
    DeployableKind("", "ConfigMap", "configmaps"),
    DeployableKind("", "Secret", "secrets"),
    DeployableKind("", "Service", "services"),
    DeployableKind("", "ServiceAccount", "serviceaccounts"),
    DeployableKind("", "PersistentVolumeClaim", "persistentvolumeclaims"),
    DeployableKind("apps", "Deployment", "deployments"),
    DeployableKind("apps", "StatefulSet", "statefulsets"),
    DeployableKind("batch", "Job", "jobs"),
    DeployableKind("batch", "CronJob", "cronjobs"),
    DeployableKind("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    DeployableKind("policy", "PodDisruptionBudget", "poddisruptionbudgets"),
    DeployableKind("networking.k8s.io", "NetworkPolicy", "networkpolicies"),
    DeployableKind("rbac.authorization.k8s.io", "Role", "roles"),
    DeployableKind("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
    DeployableKind("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    DeployableKind("monitoring.coreos.com", "PodMonitor", "podmonitors"),
    DeployableKind("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
)

# What the deployed kinds create and ArgoCD shows in its resource tree and health checks; read only.
OBSERVED_RESOURCES: Mapping[str, tuple[str, ...]] = {
    "": ("pods", "endpoints", "events"),
    "apps": ("replicasets", "controllerrevisions"),
    "discovery.k8s.io": ("endpointslices",),
}


# The UI's log view; `get` is the only verb the subresource has.
LOG_RULE: dict[str, list[str]] = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}


@dataclass(frozen=True)
class ChartRepository:
    """A Helm repository the GPU cluster's apps install charts from (`name` tells it apart), with its login when it
    needs one."""

    name: str
    url: str
    username: str | None = None
    password: pulumi.Output[str] | None = None


def deployer_rules() -> list[dict[str, list[str]]]:
    """One rule per API group: full control of the deployable kinds, read access to what they create; and the
    pod logs."""
    groups = sorted({kind.group for kind in DEPLOYABLE_KINDS} | set(OBSERVED_RESOURCES))
    rules = []
    for group in groups:
        deployable = sorted(kind.resource for kind in DEPLOYABLE_KINDS if kind.group == group)
        if deployable:
            rules.append({"apiGroups": [group], "resources": deployable, "verbs": [*READ, *WRITE]})
        if group in OBSERVED_RESOURCES:
            rules.append({"apiGroups": [group], "resources": sorted(OBSERVED_RESOURCES[group]), "verbs": list(READ)})
    return [*rules, LOG_RULE]


def cluster_config(bearer_token: str, ca_data: str, server_name: str | None) -> str:
    """ArgoCD's cluster `config`: the token, the cluster CA (base64 PEM) and, when ArgoCD dials the gateway rather
    than the apiserver itself, the name the apiserver's certificate carries (sent as SNI and verified)."""
    tls: dict[str, Any] = {"insecure": False, "caData": ca_data}
    if server_name is not None:
        tls["serverName"] = server_name
    return json.dumps({"bearerToken": bearer_token, "tlsClientConfig": tls}, sort_keys=True)


def _config_from_token(data: Mapping[str, str], server_name: str | None) -> str:
    # A service-account-token Secret's `data`: `token` (base64 of the JWT) and `ca.crt` (base64 of the PEM, the
    # form ArgoCD's caData takes).
    return cluster_config(base64.b64decode(data["token"]).decode(), data["ca.crt"], server_name)


def _policy_rule(rule: Mapping[str, list[str]]) -> k8s.rbac.v1.PolicyRuleArgs:
    return k8s.rbac.v1.PolicyRuleArgs(api_groups=rule["apiGroups"], resources=rule["resources"], verbs=rule["verbs"])


def _cluster_role(role: str) -> k8s.rbac.v1.RoleRefArgs:
    return k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role)


class GitOpsWiring(pulumi.ComponentResource):
    """Registers the GPU cluster in ArgoCD and bootstraps the app of apps."""

    cluster_name: str
    server: pulumi.Output[str]
    project: str
    application: str

    def __init__(
        self,
        name: str,
        config: GitOpsConfig,
        *,
        cluster_name: str,
        server: pulumi.Input[str],
        server_name: pulumi.Input[str] | None,
        namespaces: Sequence[str],
        chart_repositories: Sequence[ChartRepository],
        gpu_provider: k8s.Provider,
        namespaces_ready: Sequence[pulumi.Resource],
        management_provider: k8s.Provider,
        argocd_namespace: str,
        argocd_release: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`server`: the URL ArgoCD dials; `server_name`: the apiserver certificate's name when that URL is the
        gateway's. `namespaces_ready`: what creates the platform `namespaces` on the GPU cluster.
        `chart_repositories`: where the charts of the apps deployed into those namespaces come from."""
        super().__init__("llmops:gitops:GitOpsWiring", name, None, opts)
        self.cluster_name = cluster_name
        self.server = pulumi.Output.from_input(server)
        self.project = cluster_name
        self.application = f"{cluster_name}-apps"
        platform_namespaces = sorted(set(namespaces))
        gpu = pulumi.ResourceOptions(parent=self, provider=gpu_provider)
        labels = platform_labels("gitops")

        def meta(
            object_name: str, object_namespace: str | None = None, *, annotations: Mapping[str, str] | None = None
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return object_meta(object_name, object_namespace, labels=labels, annotations=annotations)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-manager", metadata=meta(SERVICE_ACCOUNT, SERVICE_ACCOUNT_NAMESPACE), opts=gpu
        )
        subject = [
            k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=SERVICE_ACCOUNT, namespace=SERVICE_ACCOUNT_NAMESPACE)
        ]
        observer = k8s.rbac.v1.ClusterRole(
            f"{name}-observer",
            metadata=meta(OBSERVER_ROLE),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["namespaces"], verbs=list(READ))],
            opts=gpu,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-observer",
            metadata=meta(OBSERVER_ROLE),
            role_ref=_cluster_role(OBSERVER_ROLE),
            subjects=subject,
            opts=pulumi.ResourceOptions.merge(gpu, pulumi.ResourceOptions(depends_on=[observer, account])),
        )
        deployer = k8s.rbac.v1.ClusterRole(
            f"{name}-deployer",
            metadata=meta(DEPLOYER_ROLE),
            rules=[_policy_rule(rule) for rule in deployer_rules()],
            opts=gpu,
        )
        for platform_namespace in platform_namespaces:
            k8s.rbac.v1.RoleBinding(
                f"{name}-deployer-{platform_namespace}",
                metadata=meta(SERVICE_ACCOUNT, platform_namespace),
                role_ref=_cluster_role(DEPLOYER_ROLE),
                subjects=subject,
                opts=pulumi.ResourceOptions.merge(
                    gpu, pulumi.ResourceOptions(depends_on=[deployer, account, *namespaces_ready])
                ),
            )
        # Long-lived by design: ArgoCD has no way to refresh a projected token. Rotate by replacing this Secret.
        token = secret(
            f"{name}-token",
            meta(
                TOKEN_SECRET,
                SERVICE_ACCOUNT_NAMESPACE,
                annotations={"kubernetes.io/service-account.name": SERVICE_ACCOUNT},
            ),
            secret_type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions.merge(gpu, pulumi.ResourceOptions(depends_on=[account])),
        )

        management = pulumi.ResourceOptions(parent=self, provider=management_provider, depends_on=[argocd_release])
        # Unknown until the token controller fills the Secret, and secret throughout.
        config_json: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(token.data, server_name).apply(lambda args: _config_from_token(args[0], args[1]))
        )
        cluster_secret = secret(
            f"{name}-cluster",
            object_meta(f"cluster-{cluster_name}", argocd_namespace, labels={**labels, SECRET_TYPE_LABEL: "cluster"}),
            # `config` goes in `data`, apart from the rest: the provider resolves each of the two maps as one
            # value, and the token must not leave the server and scope unknown until it exists.
            data={"config": config_json.apply(lambda text: base64.b64encode(text.encode()).decode())},
            string_data={
                "name": cluster_name,
                "server": self.server,
                "namespaces": ",".join(platform_namespaces),
                "clusterResources": "false",
            },
            opts=management,
        )

        def argocd_object(
            suffix: str,
            kind: str,
            object_name: str,
            spec: Mapping[str, Any],
            opts: pulumi.ResourceOptions = management,
        ) -> pulumi.Resource:
            return custom_object(
                f"{name}-{suffix}",
                api_version=ARGOCD_API_VERSION,
                kind=kind,
                metadata=meta(object_name, argocd_namespace),
                spec=spec,
                opts=opts,
            )

        # ArgoCD finds a Helm repository's login by the repository URL an Application names.
        chart_logins = [
            secret(
                f"{name}-charts-{repository.name}",
                object_meta(
                    f"{cluster_name}-charts-{repository.name}",
                    argocd_namespace,
                    labels={**labels, SECRET_TYPE_LABEL: "repository"},
                ),
                string_data={
                    "type": "helm",
                    "url": repository.url,
                    "username": repository.username,
                    "password": repository.password,
                },
                opts=management,
            )
            for repository in chart_repositories
            if repository.username is not None and repository.password is not None
        ]
        project = argocd_object(
            "project",
            "AppProject",
            self.project,
            {
                "description": f"Platform apps on the GPU cluster {cluster_name}",
                "sourceRepos": [config.repo_url, *sorted({repository.url for repository in chart_repositories})],
                "destinations": [{"server": self.server, "namespace": ns} for ns in platform_namespaces],
                "namespaceResourceWhitelist": [{"group": k.group, "kind": k.kind} for k in DEPLOYABLE_KINDS],
            },
        )
        bootstrap_project = f"{cluster_name}-bootstrap"
        bootstrap = argocd_object(
            "bootstrap-project",
            "AppProject",
            bootstrap_project,
            {
                "description": f"The app of apps of {cluster_name}: it only creates Applications",
                "sourceRepos": [config.repo_url],
                "destinations": [{"server": IN_CLUSTER, "namespace": argocd_namespace}],
                "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
            },
        )
        sync_policy: dict[str, Any] = {}
        if config.automated_sync:
            sync_policy["automated"] = {"prune": config.prune, "selfHeal": config.self_heal}
        # No resources finalizer: deleting this Application must never cascade into the GPU cluster's apps.
        argocd_object(
            "apps",
            "Application",
            self.application,
            {
                "project": bootstrap_project,
                "source": {"repoURL": config.repo_url, "targetRevision": config.revision, "path": config.path},
                "destination": {"server": IN_CLUSTER, "namespace": argocd_namespace},
                "syncPolicy": sync_policy,
            },
            opts=pulumi.ResourceOptions.merge(
                management, pulumi.ResourceOptions(depends_on=[project, bootstrap, cluster_secret, *chart_logins])
            ),
        )
        self.outputs: dict[str, Any] = {
            "clusterName": self.cluster_name,
            "server": self.server,
            "project": self.project,
            "application": self.application,
        }
        self.register_outputs(self.outputs)
