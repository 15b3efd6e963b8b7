"""The CrossGuard pack: every rule on a violating and a compliant hand-made resource, run through the
planner's policy runner (the engine's semantics), plus the shipped stacks and the pack as a whole."""

from __future__ import annotations

import copy
import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pulumi.output import Unknown
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from support.plans import Plan

from planner.policy_runner import Verdict, run_policies
from policies.pack.catalog import PACK_ENFORCEMENT, PACK_NAME, POLICIES, POLICY_CONFIG
from policies.pack.record import Registration

REPO = Path(__file__).resolve().parents[1]
BY_NAME = {policy.name: policy for policy in POLICIES}
K8S_PROVIDER_URN = "urn:pulumi:test::llmops-platform::pulumi:providers:kubernetes::test-gpu-k8s"


def reg(
    type_: str,
    name: str,
    inputs: dict[str, Any],
    *,
    protect: bool = False,
    ignore_changes: tuple[str, ...] = (),
    provider: str | None = None,
) -> Registration:
    if provider is None:
        provider = K8S_PROVIDER_URN if type_.startswith("kubernetes:") else ""
    return Registration(
        urn=f"urn:pulumi:test::llmops-platform::{type_}::{name}",
        type=type_,
        name=name,
        parent="",
        provider=provider,
        dependencies=[],
        property_dependencies={},
        protect=protect,
        ignore_changes=list(ignore_changes),
        custom=True,
        inputs=inputs,
    )


def k8s_provider(name: str = "test-gpu-k8s", **inputs: Any) -> Registration:
    return dataclasses.replace(
        reg("pulumi:providers:kubernetes", name, {"clusterIdentifier": "aks-test-gpu", **inputs}, provider=""),
        urn=f"urn:pulumi:test::llmops-platform::pulumi:providers:kubernetes::{name}",
    )


def run(
    registrations: list[Registration],
    policy_names: list[str] | None = None,
    config: dict[str, Any] | None = None,
    stack_tags: dict[str, str] | None = None,
) -> list[Verdict]:
    policies = [BY_NAME[n] for n in policy_names] if policy_names else POLICIES
    if not any(r.type == "pulumi:providers:kubernetes" for r in registrations):
        registrations = [k8s_provider(), *registrations]
    return run_policies(registrations, policies, PACK_ENFORCEMENT, config, stack_tags)


def deep(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` with dotted-path changes (`a__b=1` sets base["a"]["b"]); None deletes."""
    result = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return result


# ------------------------------------------------------------------------------------------------------
# Compliant building blocks, shaped like the plan's real inputs
# ------------------------------------------------------------------------------------------------------

TAGS = {"environment": "dev", "owner": "platform-team", "cost-center": "ml-research", "managed-by": "pulumi"}
PROD_TAGS = {**TAGS, "environment": "prod"}

MC = "azure-native:containerservice:ManagedCluster"
AP = "azure-native:containerservice:AgentPool"
SA = "azure-native:storage:StorageAccount"
PG = "azure-native:dbforpostgresql:Server"
RELEASE = "kubernetes:helm.sh/v3:Release"

CLUSTER: dict[str, Any] = {
    "resourceName": "aks-dev-mgmt",
    "sku": {"name": "Base", "tier": "Free"},
    "enableRBAC": True,
    "disableLocalAccounts": True,
    "aadProfile": {"managed": True, "enableAzureRBAC": True, "adminGroupObjectIDs": ["6a1f3c2e"]},
    "oidcIssuerProfile": {"enabled": True},
    "securityProfile": {"workloadIdentity": {"enabled": True}},
    "apiServerAccessProfile": {"enablePrivateCluster": False, "authorizedIPRanges": ["203.0.113.0/24"]},
    "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay", "networkPolicy": "cilium"},
    "agentPoolProfiles": [
        {
            "name": "system",
            "mode": "System",
            "vmSize": "Standard_D4ds_v5",
            "enableAutoScaling": True,
            "count": 1,
            "minCount": 1,
            "maxCount": 2,
            "nodeTaints": ["CriticalAddonsOnly=true:NoSchedule"],
        }
    ],
    "tags": TAGS,
}
CLUSTER_IGNORES = ("agentPoolProfiles[*].count",)


def cluster(name: str = "dev-mgmt-cluster", *, protect: bool = False, **changes: Any) -> Registration:
    return reg(MC, name, deep(CLUSTER, **changes), protect=protect, ignore_changes=CLUSTER_IGNORES)


CPU_POOL: dict[str, Any] = {
    "resourceName": "aks-dev-mgmt",
    "agentPoolName": "workflows",
    "mode": "User",
    "vmSize": "Standard_D8ds_v5",
    "enableAutoScaling": True,
    "count": 1,
    "minCount": 1,
    "maxCount": 4,
    "tags": TAGS,
}
GPU_POOL: dict[str, Any] = {
    "resourceName": "aks-dev-gpu",
    "agentPoolName": "a100",
    "mode": "User",
    "vmSize": "Standard_NC24ads_A100_v4",
    "enableAutoScaling": True,
    "count": 0,
    "minCount": 0,
    "maxCount": 2,
    "nodeTaints": ["nvidia.com/gpu=present:NoSchedule"],
    "gpuProfile": {"driver": "None"},
    "tags": TAGS,
}


def pool(name: str, base: dict[str, Any], ignore: tuple[str, ...] = ("count",), **changes: Any) -> Registration:
    return reg(AP, name, deep(base, **changes), ignore_changes=ignore)


def gpu_pool(name: str = "dev-gpu-pool-a100", **changes: Any) -> Registration:
    return pool(name, GPU_POOL, **changes)


STORAGE: dict[str, Any] = {
    "accountName": "stllmopsdev",
    "kind": "StorageV2",
    "sku": {"name": "Standard_ZRS"},
    "enableHttpsTrafficOnly": True,
    "minimumTlsVersion": "TLS1_2",
    "allowBlobPublicAccess": False,
    "allowSharedKeyAccess": False,
    "tags": TAGS,
}
POSTGRES: dict[str, Any] = {
    "serverName": "psql-llmops-dev",
    "version": "16",
    "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
    "tags": TAGS,
}


def release(name: str, chart: str, repo: str, version: str = "1.0.0", **values: Any) -> Registration:
    return reg(
        RELEASE,
        name,
        {
            "name": name,
            "chart": chart,
            "version": version,
            "repositoryOpts": {"repo": repo},
            "namespace": name,
            "atomic": True,
            "cleanupOnFail": True,
            "timeout": 900,
            "values": deep({}, **values),
        },
    )


NGC_NIM = "https://helm.ngc.nvidia.com/nim"
NGC = "https://helm.ngc.nvidia.com/nvidia"
ARGO = "https://argoproj.github.io/argo-helm"


def nim(**values: Any) -> Registration:
    base = {
        "image__repository": "nvcr.io/nim/meta/llama-3.1-8b-instruct",
        "image__tag": "1.8.6",
        "persistence__enabled": True,
        "persistence__size": "32Gi",
    }
    return release("nim-llama", "nim-llm", NGC_NIM, "1.1.2", **{**base, **values})


def kube(kind: str, api_version: str, name: str, namespace: str | None = "default", **body: Any) -> Registration:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata.update(body.pop("metadata", {}))
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return reg(
        f"kubernetes:{group_version}:{kind}",
        f"{namespace or 'cluster'}-{name}",
        {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body},
    )


def namespace_(name: str, level: str | None = "restricted") -> Registration:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return kube("Namespace", "v1", name, None, metadata={"labels": labels})


def deployment(image: str) -> Registration:
    return kube(
        "Deployment",
        "apps/v1",
        "steps",
        spec={"template": {"spec": {"containers": [{"name": "main", "image": image}]}}},
    )


WORKFLOW_TEMPLATE_SPEC: dict[str, Any] = {
    "entrypoint": "main",
    "activeDeadlineSeconds": 172800,
    "retryStrategy": {"limit": "2", "retryPolicy": "OnError"},
    "podGC": {"strategy": "OnPodCompletion"},
    "templates": [
        {"name": "main", "steps": [[{"name": "train", "template": "train"}]]},
        {"name": "train", "container": {"image": "ghcr.io/llmops-platform/pipeline-steps:0.1.0"}},
    ],
}


def workflow_template(kind: str = "WorkflowTemplate", **changes: Any) -> Registration:
    return kube(kind, "argoproj.io/v1alpha1", "flywheel", "llm-pipelines", spec=deep(WORKFLOW_TEMPLATE_SPEC, **changes))


def _ref(kind: str, name: str, section: str | None = None) -> dict[str, Any]:
    ref = {"group": "gateway.networking.k8s.io", "kind": kind, "name": name}
    if section:
        ref["sectionName"] = section
    return ref


GW_NS = "envoy-gateway-system"


def http_route(name: str = "nim-llama") -> Registration:
    return kube(
        "HTTPRoute",
        "gateway.networking.k8s.io/v1",
        name,
        GW_NS,
        spec={"parentRefs": [{"name": "llmops-gateway", "sectionName": "https"}], "hostnames": [f"{name}.example.com"]},
    )


def security_policy(name: str, spec: dict[str, Any], namespace: str = GW_NS) -> Registration:
    return kube("SecurityPolicy", "gateway.envoyproxy.io/v1alpha1", name, namespace, spec=spec)


def traffic_policy(name: str, spec: dict[str, Any]) -> Registration:
    return kube("BackendTrafficPolicy", "gateway.envoyproxy.io/v1alpha1", name, GW_NS, spec=spec)


API_KEY_AUTH = {
    "apiKeyAuth": {
        "credentialRefs": [{"group": "", "kind": "Secret", "name": "llmops-gateway-api-keys"}],
        "extractFrom": [{"headers": ["x-api-key"]}],
    }
}
RATE_LIMIT = {"rateLimit": {"local": {"rules": [{"limit": {"requests": 300, "unit": "Minute"}}]}}}


def gateway_with_passthrough() -> Registration:
    return kube(
        "Gateway",
        "gateway.networking.k8s.io/v1",
        "llmops-gateway",
        GW_NS,
        spec={
            "gatewayClassName": "envoy-gateway",
            "listeners": [
                {"name": "https", "protocol": "HTTPS", "port": 443},
                {
                    "name": "kube-apiserver",
                    "protocol": "TLS",
                    "port": 443,
                    "hostname": "aks-dev-gpu.hcp.westeurope.azmk8s.io",
                    "tls": {"mode": "Passthrough"},
                },
            ],
        },
    )


def allowlist(cidrs: list[str], section: str | None = "kube-apiserver", default_action: str = "Deny") -> Registration:
    return security_policy(
        "kube-apiserver-allowlist",
        {
            "targetRefs": [_ref("Gateway", "llmops-gateway", section)],
            "authorization": {
                "defaultAction": default_action,
                "rules": [{"action": "Allow", "principal": {"clientCIDRs": cidrs}}],
            },
        },
    )


def cluster_secret() -> Registration:
    return kube(
        "Secret",
        "v1",
        "gpu-cluster",
        "argocd",
        metadata={"labels": {"argocd.argoproj.io/secret-type": "cluster"}},
        stringData={"name": "gpu", "server": "https://aks-dev-gpu.hcp.westeurope.azmk8s.io:443"},
    )


def argocd() -> Registration:
    return release("argocd", "argo-cd", ARGO, "10.1.1")


def gpu_cluster() -> Registration:
    return cluster("dev-gpu-cluster", resourceName="aks-dev-gpu")


# ------------------------------------------------------------------------------------------------------
# One violating and one compliant case per rule
# ------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    policy: str
    violating: Callable[[], list[Registration]]
    compliant: Callable[[], list[Registration]]
    stack_tags: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "aks-entra-id-rbac",
        lambda: [cluster(disableLocalAccounts=False)],
        lambda: [cluster()],
    ),
    Case(
        "aks-entra-id-rbac",
        lambda: [cluster(aadProfile__enableAzureRBAC=False)],
        lambda: [cluster()],
    ),
    Case(
        "aks-api-server-restricted",
        lambda: [cluster(apiServerAccessProfile={"enablePrivateCluster": False})],
        lambda: [cluster(apiServerAccessProfile={"enablePrivateCluster": True})],
    ),
    Case(
        "aks-api-server-restricted",
        lambda: [cluster(apiServerAccessProfile__authorizedIPRanges=["0.0.0.0/0"])],
        lambda: [cluster()],
    ),
    Case(
        "aks-workload-identity",
        lambda: [cluster(securityProfile=None)],
        lambda: [cluster()],
    ),
    Case(
        "aks-network-policy",
        lambda: [cluster(networkProfile__networkPolicy="none")],
        lambda: [cluster(networkProfile__networkPolicy="azure")],
    ),
    Case(
        "aks-autoscaled-counts-ignored",
        lambda: [reg(MC, "dev-mgmt-cluster", CLUSTER)],
        lambda: [cluster()],
    ),
    Case(
        "aks-autoscaled-counts-ignored",
        lambda: [pool("dev-mgmt-pool-workflows", CPU_POOL, ignore=())],
        lambda: [
            pool("dev-mgmt-pool-workflows", CPU_POOL),
            pool("fixed", CPU_POOL, ignore=(), enableAutoScaling=False),
        ],
    ),
    Case(
        "aks-user-pools-as-agent-pools",
        lambda: [cluster(agentPoolProfiles=[*CLUSTER["agentPoolProfiles"], {**CPU_POOL, "name": "work"}])],
        lambda: [cluster()],
    ),
    Case(
        "aks-sku-tier-in-prod",
        lambda: [cluster(tags=PROD_TAGS)],
        lambda: [cluster(tags=PROD_TAGS, sku__tier="Standard"), cluster("dev-gpu-cluster")],
    ),
    Case(
        "aks-sku-tier-in-prod",
        lambda: [cluster()],
        lambda: [cluster(sku__tier="Premium")],
        stack_tags={"environment": "prod"},
    ),
    Case(
        "aks-management-cluster-cpu-only",
        lambda: [pool("dev-mgmt-pool-gpu", CPU_POOL, vmSize="Standard_NC6s_v3")],
        lambda: [pool("dev-mgmt-pool-workflows", CPU_POOL), gpu_pool()],
    ),
    Case(
        "aks-management-cluster-cpu-only",
        lambda: [cluster(agentPoolProfiles=[{**CLUSTER["agentPoolProfiles"][0], "vmSize": "Standard_NV36ads_A10_v5"}])],
        lambda: [cluster()],
    ),
    Case(
        "gpu-pools-tainted",
        lambda: [gpu_pool(nodeTaints=["sku=gpu:NoSchedule"])],
        lambda: [gpu_pool(), pool("dev-mgmt-pool-workflows", CPU_POOL)],
    ),
    Case(
        "gpu-pools-scale-from-zero",
        lambda: [gpu_pool(minCount=1, count=1)],
        lambda: [gpu_pool(), gpu_pool("prod-gpu-pool-a100", minCount=2, tags=PROD_TAGS)],
    ),
    Case(
        "gpu-driver-ownership",
        lambda: [gpu_pool(gpuProfile=None), release("gpu-operator", "gpu-operator", NGC, "v26.7.0")],
        lambda: [gpu_pool(), release("gpu-operator", "gpu-operator", NGC, "v26.7.0")],
    ),
    Case(
        "gpu-driver-ownership",
        lambda: [gpu_pool(), release("gpu-operator", "gpu-operator", NGC, "v26.7.0", driver__enabled=False)],
        lambda: [
            gpu_pool(gpuProfile=None),
            release("gpu-operator", "gpu-operator", NGC, "v26.7.0", driver__enabled=False),
        ],
    ),
    Case(
        "nim-requests-gpus",
        lambda: [nim(resources={"limits": {"nvidia.com/gpu": 0}})],
        lambda: [nim(), nim(resources={"limits": {"nvidia.com/gpu": 4}})],
    ),
    Case(
        "nim-tolerates-gpu-taint",
        lambda: [nim(tolerations=[{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])],
        lambda: [nim(), nim(tolerations=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])],
    ),
    Case(
        "nim-persists-model-cache",
        lambda: [nim(persistence={"enabled": False})],
        lambda: [nim()],
    ),
    Case(
        "nim-persists-model-cache",
        lambda: [
            kube(
                "NIMService",
                "apps.nvidia.com/v1alpha1",
                "llama",
                "nim",
                spec={"image": {"repository": "nvcr.io/nim/meta/llama", "tag": "1.8.6"}},
            )
        ],
        lambda: [
            kube(
                "NIMService",
                "apps.nvidia.com/v1alpha1",
                "llama",
                "nim",
                spec={
                    "image": {"repository": "nvcr.io/nim/meta/llama", "tag": "1.8.6"},
                    "storage": {"nimCache": {"name": "llama"}},
                    "resources": {"limits": {"nvidia.com/gpu": 1}},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                },
            )
        ],
    ),
    Case(
        "nim-startup-allows-model-download",
        lambda: [nim(startupProbe={"failureThreshold": 30})],
        lambda: [nim(), nim(startupProbe={"failureThreshold": 360})],
    ),
    Case(
        "helm-release-pins-version",
        lambda: [release("argocd", "argo-cd", ARGO, "10.x")],
        lambda: [release("argocd", "argo-cd", ARGO, "10.1.1")],
    ),
    Case(
        "helm-release-atomic",
        lambda: [dataclasses.replace(argocd(), inputs=deep(argocd().inputs, atomic=None, timeout=None))],
        lambda: [argocd()],
    ),
    Case(
        "helm-release-allowed-repository",
        lambda: [release("argocd", "argo-cd", "https://charts.example.com/argo")],
        lambda: [
            argocd(),
            dataclasses.replace(
                argocd(),
                inputs=deep(argocd().inputs, chart="oci://docker.io/envoyproxy/gateway-helm", repositoryOpts=None),
            ),
        ],
    ),
    Case(
        "helm-release-image-tags-pinned",
        lambda: [release("mlflow", "mlflow", "https://community-charts.github.io/helm-charts", image__tag="latest")],
        lambda: [
            release("mlflow", "mlflow", "https://community-charts.github.io/helm-charts", image__tag="3.15.1"),
            # A mirror of a subchart's image keeps the subchart's pinned default tag.
            release(
                "nemo", "nemo-microservices-helm-chart", NGC, postgresql__image__repository="bitnamilegacy/postgresql"
            ),
        ],
    ),
    Case(
        "helm-release-image-tags-pinned",
        lambda: [nim(image__tag=None)],
        lambda: [nim()],
    ),
    Case(
        "kubernetes-explicit-provider",
        lambda: [dataclasses.replace(namespace_("nim"), provider="")],
        lambda: [namespace_("nim")],
    ),
    Case(
        "kubernetes-provider-cluster-identifier",
        lambda: [k8s_provider(clusterIdentifier="")],
        lambda: [k8s_provider()],
    ),
    Case(
        "namespace-pod-security-enforced",
        lambda: [namespace_("nim", None)],
        lambda: [namespace_("nim", "restricted"), namespace_("gpu-operator", "privileged")],
    ),
    Case(
        "namespace-privileged-only-where-needed",
        lambda: [namespace_("nim", "privileged")],
        lambda: [namespace_("gpu-operator", "privileged"), namespace_("nim", "baseline")],
    ),
    Case(
        "image-tags-pinned",
        lambda: [deployment("ghcr.io/llmops-platform/pipeline-steps:latest")],
        lambda: [
            deployment("ghcr.io/llmops-platform/pipeline-steps:0.1.0"),
            deployment("registry:5000/steps@sha256:" + "a" * 64),
        ],
    ),
    Case(
        "image-tags-pinned",
        lambda: [workflow_template(templates=[{"name": "train", "script": {"image": "python", "source": "print(1)"}}])],
        lambda: [workflow_template(templates=[{"name": "train", "script": {"image": "{{inputs.parameters.image}}"}}])],
    ),
    Case(
        "no-load-balancer-services",
        lambda: [kube("Service", "v1", "mlflow", "mlflow", spec={"type": "LoadBalancer", "ports": [{"port": 80}]})],
        lambda: [
            kube("Service", "v1", "mlflow", "mlflow", spec={"type": "ClusterIP", "ports": [{"port": 80}]}),
            release("gateway", "oci://docker.io/envoyproxy/gateway-helm", "", "v1.9.0", service__type="LoadBalancer"),
        ],
    ),
    Case(
        "no-load-balancer-services",
        lambda: [release("argocd", "argo-cd", ARGO, "10.1.1", server__service__type="LoadBalancer")],
        lambda: [release("argocd", "argo-cd", ARGO, "10.1.1", server__service__type="ClusterIP")],
    ),
    Case(
        "rbac-no-wildcards",
        lambda: [
            kube(
                "ClusterRole",
                "rbac.authorization.k8s.io/v1",
                "steps",
                None,
                rules=[{"apiGroups": ["argoproj.io"], "resources": ["*"], "verbs": ["get"]}],
            )
        ],
        lambda: [
            kube(
                "Role",
                "rbac.authorization.k8s.io/v1",
                "steps",
                "llm-pipelines",
                rules=[
                    {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
                ],
            )
        ],
    ),
    Case(
        "storage-account-secure-transport",
        lambda: [reg(SA, "artifacts", deep(STORAGE, minimumTlsVersion="TLS1_0"))],
        lambda: [reg(SA, "artifacts", STORAGE)],
    ),
    Case(
        "storage-no-public-blob-access",
        lambda: [reg(SA, "artifacts", deep(STORAGE, allowBlobPublicAccess=None))],
        lambda: [reg(SA, "artifacts", STORAGE)],
    ),
    Case(
        "storage-no-public-blob-access",
        lambda: [
            reg("azure-native:storage:BlobContainer", "mlflow", {"containerName": "mlflow", "publicAccess": "Blob"})
        ],
        lambda: [
            reg("azure-native:storage:BlobContainer", "mlflow", {"containerName": "mlflow", "publicAccess": "None"})
        ],
    ),
    Case(
        "storage-account-no-shared-key",
        lambda: [reg(SA, "artifacts", deep(STORAGE, allowSharedKeyAccess=True))],
        lambda: [reg(SA, "artifacts", STORAGE)],
    ),
    Case(
        "postgres-require-secure-transport",
        lambda: [
            reg(
                "azure-native:dbforpostgresql:Configuration",
                "mlflow-tls",
                {"configurationName": "require_secure_transport", "value": "OFF", "source": "user-override"},
            )
        ],
        lambda: [
            reg(
                "azure-native:dbforpostgresql:Configuration",
                "mlflow-tls",
                {"configurationName": "require_secure_transport", "value": "on", "source": "user-override"},
            )
        ],
    ),
    Case(
        "postgres-backup-retention",
        lambda: [reg(PG, "mlflow-db", deep(POSTGRES, backup__backupRetentionDays=3))],
        lambda: [reg(PG, "mlflow-db", POSTGRES), reg(PG, "defaults", deep(POSTGRES, backup=None))],
    ),
    Case(
        "postgres-geo-redundant-backup-in-prod",
        lambda: [reg(PG, "mlflow-db", deep(POSTGRES, tags=PROD_TAGS))],
        lambda: [
            reg(PG, "mlflow-db", deep(POSTGRES, tags=PROD_TAGS, backup__geoRedundantBackup="Enabled")),
            reg(PG, "dev", POSTGRES),
        ],
    ),
    Case(
        "postgres-no-open-firewall",
        lambda: [
            reg(
                "azure-native:dbforpostgresql:FirewallRule",
                "all",
                {"startIpAddress": "0.0.0.0", "endIpAddress": "255.255.255.255"},
            )
        ],
        lambda: [
            reg(
                "azure-native:dbforpostgresql:FirewallRule",
                "egress",
                {"startIpAddress": "198.51.100.16", "endIpAddress": "198.51.100.31"},
            )
        ],
    ),
    Case(
        "argo-server-auth-mode",
        lambda: [release("argo-workflows", "argo-workflows", ARGO, "1.0.18", server__authModes=["server"])],
        lambda: [
            release("argo-workflows", "argo-workflows", ARGO, "1.0.18", server__authModes=["sso"]),
            release("argo-workflows", "argo-workflows", ARGO, "1.0.18"),
        ],
    ),
    Case(
        "workflow-template-active-deadline",
        lambda: [
            workflow_template(activeDeadlineSeconds=None),
            workflow_template("ClusterWorkflowTemplate", entrypoint=None, activeDeadlineSeconds=None),
        ],
        lambda: [
            workflow_template(),
            workflow_template(
                "ClusterWorkflowTemplate",
                entrypoint=None,
                activeDeadlineSeconds=None,
                templateDefaults={"activeDeadlineSeconds": 3600},
            ),
            workflow_template(
                "ClusterWorkflowTemplate",
                entrypoint=None,
                activeDeadlineSeconds=None,
                templates=[{"name": "gate", "script": {"image": "a/b:1"}, "activeDeadlineSeconds": "300"}],
            ),
        ],
    ),
    Case(
        "workflow-template-retry-strategy",
        lambda: [workflow_template("ClusterWorkflowTemplate", entrypoint=None, retryStrategy=None)],
        lambda: [
            workflow_template(
                retryStrategy=None,
                templates=[{"name": "train", "container": {"image": "a/b:1"}, "retryStrategy": {"limit": "1"}}],
            ),
            # Steps that call library templates retry there.
            workflow_template(
                retryStrategy=None,
                templates=[{"name": "main", "steps": [[{"name": "t", "templateRef": {"name": "x", "template": "y"}}]]}],
            ),
        ],
    ),
    Case(
        "workflow-template-pod-gc",
        lambda: [workflow_template(podGC=None)],
        lambda: [workflow_template(), workflow_template("ClusterWorkflowTemplate", entrypoint=None, podGC=None)],
    ),
    Case(
        "gateway-routes-authenticated",
        lambda: [http_route(), security_policy("auth", {"targetRefs": [_ref("HTTPRoute", "nim-llama")], "cors": {}})],
        lambda: [
            http_route(),
            security_policy("auth", {"targetRefs": [_ref("HTTPRoute", "nim-llama")], **API_KEY_AUTH}),
        ],
    ),
    Case(
        "gateway-routes-authenticated",
        lambda: [
            http_route(),
            security_policy("auth", {"targetRefs": [_ref("HTTPRoute", "nim-llama")], **API_KEY_AUTH}, "nim"),
        ],
        lambda: [
            http_route(),
            security_policy("auth", {"targetRefs": [_ref("Gateway", "llmops-gateway", "https")], **API_KEY_AUTH}),
        ],
    ),
    Case(
        "gateway-routes-rate-limited",
        lambda: [http_route(), traffic_policy("limits", {"targetRefs": [_ref("HTTPRoute", "other")], **RATE_LIMIT})],
        lambda: [
            http_route(),
            traffic_policy("limits", {"targetRefs": [_ref("HTTPRoute", "nim-llama")], **RATE_LIMIT}),
        ],
    ),
    Case(
        "gateway-passthrough-allowlisted",
        lambda: [gateway_with_passthrough(), allowlist(["0.0.0.0/0"])],
        lambda: [gateway_with_passthrough(), allowlist(["198.51.100.16/28"])],
    ),
    Case(
        "gateway-passthrough-allowlisted",
        lambda: [gateway_with_passthrough(), allowlist(["198.51.100.16/28"], default_action="Allow")],
        lambda: [gateway_with_passthrough(), allowlist(["198.51.100.16/28"], section=None)],
    ),
    Case(
        "azure-required-tags",
        lambda: [reg(SA, "artifacts", deep(STORAGE, tags={"environment": "dev"}))],
        lambda: [reg(SA, "artifacts", STORAGE), reg("azure-native:network:Subnet", "snet", {"subnetName": "snet"})],
    ),
    Case(
        "azure-required-tags",
        lambda: [reg("azure-native:resources:ResourceGroup", "rg", {"resourceGroupName": "rg"})],
        lambda: [reg("azure-native:resources:ResourceGroup", "rg", {"resourceGroupName": "rg", "tags": TAGS})],
    ),
    Case(
        "stateful-resources-protected-in-prod",
        lambda: [cluster(tags=PROD_TAGS), reg(SA, "artifacts", deep(STORAGE, tags=PROD_TAGS))],
        lambda: [
            cluster(tags=PROD_TAGS, protect=True),
            reg(SA, "artifacts", deep(STORAGE, tags=PROD_TAGS), protect=True),
        ],
    ),
    Case(
        "stateful-resources-protected-in-prod",
        lambda: [kube("PersistentVolumeClaim", "v1", "llama-model-cache", "nim"), nim(statefulSet__enabled=False)],
        lambda: [
            dataclasses.replace(kube("PersistentVolumeClaim", "v1", "llama-model-cache", "nim"), protect=True),
            nim(statefulSet__enabled=False, persistence__existingClaim="llama-model-cache"),
            nim(statefulSet__enabled=False, persistence__annotations={"helm.sh/resource-policy": "keep"}),
            # StatefulSet claims are retained when the release goes.
            nim(),
            kube("PersistentVolumeClaim", "v1", "scratch", "nim"),
        ],
        stack_tags={"environment": "prod"},
    ),
    Case(
        "single-management-cluster",
        lambda: [cluster(), cluster("prod-mgmt-cluster")],
        lambda: [cluster(), gpu_cluster()],
    ),
    Case(
        "gpu-cluster-registered-in-argocd",
        lambda: [cluster(), gpu_cluster(), argocd()],
        lambda: [cluster(), gpu_cluster(), argocd(), cluster_secret()],
    ),
    Case(
        "gpu-cluster-registered-in-argocd",
        lambda: [k8s_provider("prod-gpu-k8s"), argocd()],
        lambda: [
            k8s_provider("prod-gpu-k8s"),
            release(
                "argocd", "argo-cd", ARGO, "10.1.1", configs__clusterCredentials={"gpu": {"server": "https://gpu"}}
            ),
        ],
    ),
    Case(
        "monthly-cost-within-budget",
        lambda: [gpu_pool(maxCount=10)],
        lambda: [gpu_pool(maxCount=1)],
        config={"monthly-cost-within-budget": {"monthlyLimitUsd": 5000, "measure": "peak"}},
    ),
]


def _case_id(case: Case) -> str:
    return case.policy


def case_verdicts(case: Case, registrations: list[Registration]) -> list[Verdict]:
    """What the case's own rule says about `registrations`."""
    verdicts = run(registrations, [case.policy], config=case.config, stack_tags=case.stack_tags)
    return [v for v in verdicts if v.policy == case.policy]


def assert_reports_the_violating_case(case: Case) -> None:
    policy = BY_NAME[case.policy]
    found = case_verdicts(case, case.violating())
    assert found, f"{case.policy} let a violating case through"
    assert policy.enforcement_level is not None
    assert {v.enforcement for v in found} == {policy.enforcement_level.value}
    assert all("can't run" not in v.message for v in found)


def assert_passes_the_compliant_case(case: Case) -> None:
    assert case_verdicts(case, case.compliant()) == []


def case_tests(cases: list[Case]) -> tuple[Callable[[Case], None], Callable[[Case], None]]:
    """The two tests every case list gets: its rule reports the violating case and passes the compliant one.
    Bind them to `test_…` names in the module that keeps the cases."""

    @pytest.mark.parametrize("case", cases, ids=_case_id)
    def reports(case: Case) -> None:
        assert_reports_the_violating_case(case)

    @pytest.mark.parametrize("case", cases, ids=_case_id)
    def passes(case: Case) -> None:
        assert_passes_the_compliant_case(case)

    return reports, passes


test_rule_reports_the_violating_case, test_rule_passes_the_compliant_case = case_tests(CASES)


def cases_kept_elsewhere() -> list[Case]:
    """Cases a topic's own test file keeps beside its other tests, as `POLICY_CASES` (and runs itself)."""
    found: list[Case] = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if path != Path(__file__) and "\nPOLICY_CASES" in path.read_text():
            found += importlib.import_module(path.stem).POLICY_CASES
    return found


def test_every_rule_has_cases() -> None:
    assert {case.policy for case in CASES + cases_kept_elsewhere()} == set(BY_NAME)
    assert len(BY_NAME) == len(POLICIES) >= 30


def test_every_rule_is_documented_and_levelled() -> None:
    for policy in POLICIES:
        assert policy.description and policy.enforcement_level in (
            EnforcementLevel.MANDATORY,
            EnforcementLevel.ADVISORY,
        ), policy.name


# ------------------------------------------------------------------------------------------------------
# Engine semantics: preview unknowns, config, levels
# ------------------------------------------------------------------------------------------------------


def test_an_unknown_value_turns_the_check_into_a_preview_advisory() -> None:
    registration = cluster(disableLocalAccounts=False)
    registration.inputs["disableLocalAccounts"] = Unknown()
    found = [v for v in run([registration], ["aks-entra-id-rbac"]) if v.policy == "aks-entra-id-rbac"]
    assert [v.enforcement for v in found] == ["advisory"]
    assert "can't run policy during preview" in found[0].message


def test_an_unknown_value_a_check_does_not_read_is_ignored() -> None:
    registration = deployment("ghcr.io/llmops-platform/pipeline-steps:0.1.0")
    registration.inputs["metadata"]["annotations"] = {"checksum": Unknown()}
    assert run([registration], ["image-tags-pinned"]) == []


def test_an_unknown_image_is_a_preview_advisory() -> None:
    registration = deployment("ghcr.io/llmops-platform/pipeline-steps:0.1.0")
    registration.inputs["spec"]["template"]["spec"]["containers"][0]["image"] = Unknown()
    assert [v.enforcement for v in run([registration], ["image-tags-pinned"])] == ["advisory"]


def test_an_unknown_value_only_matters_to_the_checks_that_read_it() -> None:
    release_ = nim(model__name=Unknown())
    assert run([release_], ["nim-requests-gpus", "nim-tolerates-gpu-taint", "nim-persists-model-cache"]) == []
    release_ = nim(persistence__enabled=Unknown())
    found = run([release_], ["nim-requests-gpus", "nim-persists-model-cache"])
    assert [(v.policy, v.enforcement) for v in found] == [("nim-persists-model-cache", "advisory")]
    assert "can't run policy during preview" in found[0].message


def test_the_pack_describes_itself_to_the_engine() -> None:
    """What `pulumi preview --policy-pack` asks first: every rule, its level and its config schema."""
    info = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", POLICIES, PACK_ENFORCEMENT).GetAnalyzerInfo(None, None)
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    for policy in POLICIES:
        if policy.config_schema is not None:
            schema = {"type": "object", "properties": policy.config_schema.properties}
            jsonschema.validate(POLICY_CONFIG[policy.name], schema)


def test_policy_config_narrows_the_allowed_repositories() -> None:
    config = {"helm-release-allowed-repository": {"allowedRepositories": ["https://charts.example.com/argo"]}}
    found = run([argocd()], ["helm-release-allowed-repository"], config=config)
    assert [v.policy for v in found] == ["helm-release-allowed-repository"]


def test_policy_config_can_name_the_environment() -> None:
    config = {"aks-sku-tier-in-prod": {"environment": "prod"}}
    assert [v.policy for v in run([cluster()], ["aks-sku-tier-in-prod"], config=config)] == ["aks-sku-tier-in-prod"]


def test_policy_config_can_lower_a_rule_to_advisory() -> None:
    config = {"aks-entra-id-rbac": {"enforcementLevel": "advisory"}}
    found = run([cluster(disableLocalAccounts=False)], ["aks-entra-id-rbac"], config=config)
    assert [v.enforcement for v in found] == ["advisory"]


def test_required_tags_come_from_config() -> None:
    config = {"azure-required-tags": {"requiredTags": ["data-classification"]}}
    assert [v.policy for v in run([reg(SA, "artifacts", STORAGE)], ["azure-required-tags"], config=config)] == [
        "azure-required-tags"
    ]


def test_the_default_config_is_what_the_rules_assume(dev: Plan) -> None:
    """The engine hands each rule its schema defaults; the rules apply the same defaults without them."""
    with_defaults = run_policies(dev.registrations, POLICIES, PACK_ENFORCEMENT, POLICY_CONFIG)
    assert with_defaults == dev.verdicts


# ------------------------------------------------------------------------------------------------------
# The shipped stacks and pipeline templates
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((REPO / "pipelines").glob("*/*.yaml")), ids=lambda p: p.name)
def test_pipeline_templates_pass_the_workflow_rules(path: Path) -> None:
    """The templates the program registers, as authored (their step image is substituted at registration)."""
    document = yaml.safe_load(path.read_text())
    metadata = document["metadata"]
    registration = kube(
        document["kind"], document["apiVersion"], metadata["name"], None, metadata=metadata, spec=document["spec"]
    )
    names = [p.name for p in POLICIES if p.name.startswith("workflow-template-")] + ["image-tags-pinned"]
    assert [v for v in run([registration], names) if v.enforcement == "mandatory"] == []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_have_no_mandatory_violation(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    mandatory = [f"{v.policy}: {v.message}" for v in plan.verdicts if v.enforcement == "mandatory"]
    assert mandatory == []


def test_an_unprotected_prod_cluster_is_a_mandatory_violation(prod: Plan) -> None:
    management = next(r for r in prod.of_type(MC) if "-mgmt" in r.name)
    assert management.protect
    broken = [dataclasses.replace(r, protect=False) if r is management else r for r in prod.registrations]
    found = [v for v in run_policies(broken, POLICIES, PACK_ENFORCEMENT) if v.enforcement == "mandatory"]
    assert [(v.policy, v.urn) for v in found] == [("stateful-resources-protected-in-prod", management.urn)]


def test_prod_is_recognised_from_its_azure_tags(prod: Plan, dev: Plan) -> None:
    """Without config or stack tags, the environment comes from the `environment` Azure tag."""
    policy = BY_NAME["stateful-resources-protected-in-prod"]
    unprotected_dev = [dataclasses.replace(r, protect=False) for r in dev.registrations]
    assert run_policies(unprotected_dev, [policy]) == []
    unprotected_prod = [dataclasses.replace(r, protect=False) for r in prod.registrations]
    assert run_policies(unprotected_prod, [policy])
