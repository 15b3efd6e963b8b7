"""docs/access.md's access matrix against the plans: every row has a check that finds the row's identity, role
assignment, policy or allowlist in each shipped stack and follows the dependency edges that wire them, and every
object the table names exists, so the table cannot drift from the code."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.plans import STACKS, Plan, plan_of

from components.aks import AKS_RBAC_CLUSTER_ADMIN_ROLE
from components.artifact_storage import STORAGE_BLOB_DATA_CONTRIBUTOR
from policies.pack.record import Registration

REPO = Path(__file__).resolve().parents[1]
ACCESS_DOC = REPO / "docs" / "access.md"
COLUMNS = ["path", "caller", "callee", "identity", "authn", "authz", "network control", "created in"]
# Columns whose `code` names are objects of the plan.
OBJECT_COLUMNS = ("identity", "authz", "network control")
OBJECT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
K8S_PROVIDER = "pulumi:providers:kubernetes"


def matrix() -> list[dict[str, str]]:
    lines = ACCESS_DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| path |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header == COLUMNS
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == len(COLUMNS), line
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


def code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# ------------------------------------------------------------------------------------------------------
# Plan queries
# ------------------------------------------------------------------------------------------------------


def meta(plan: Plan, registration: Registration) -> dict[str, Any]:
    inputs = plan.inputs(registration)
    return inputs.get("metadata") or {} if isinstance(inputs, dict) else {}


def kube(plan: Plan, kind: str, name: str, namespace: str | None = None) -> list[Registration]:
    return [
        r
        for r in plan.registrations
        if r.type.startswith("kubernetes:")
        and r.type.endswith(f":{kind}")
        and meta(plan, r).get("name") == name
        and (namespace is None or meta(plan, r).get("namespace") == namespace)
    ]


def one_kube(plan: Plan, kind: str, name: str, namespace: str | None = None) -> Registration:
    found = kube(plan, kind, name, namespace)
    assert len(found) == 1, f"{plan.evaluation.stack}: expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


def ending(plan: Plan, type_: str, suffix: str) -> list[Registration]:
    return [r for r in plan.of_type(type_) if r.name.endswith(suffix)]


def depends(registration: Registration, on: Registration) -> bool:
    return on.urn in registration.dependencies or any(
        on.urn in urns for urns in registration.property_dependencies.values()
    )


def provider_of_cluster(plan: Plan, cluster: Registration) -> Registration:
    [provider] = [p for p in plan.of_type(K8S_PROVIDER) if depends(p, cluster)]
    return provider


def named_anything(plan: Plan, name: str) -> bool:
    return any(
        r.name == name or r.name.endswith(f"-{name}") or meta(plan, r).get("name") == name for r in plan.registrations
    )


# ------------------------------------------------------------------------------------------------------
# One check per row
# ------------------------------------------------------------------------------------------------------


def check_ci_clusters(plan: Plan) -> None:
    clusters = plan.of_type("azure-native:containerservice:ManagedCluster")
    assert clusters
    runner_jobs = plan.of_type("azure-native:app:Job")
    for cluster in clusters:
        [grant] = [
            r
            for r in plan.of_type("azure-native:authorization:RoleAssignment")
            if plan.inputs(r)["roleDefinitionId"].endswith(AKS_RBAC_CLUSTER_ADMIN_ROLE)
            and plan.inputs(r)["scope"] == cluster.outputs["id"]
        ]
        assert depends(grant, cluster)
        assert depends(provider_of_cluster(plan, cluster), grant), f"{cluster.name}: provider does not wait for RBAC"
        access = plan.inputs(cluster)["apiServerAccessProfile"]
        if access.get("enablePrivateCluster"):
            assert runner_jobs, f"{cluster.name} is private and no in-network runner pool reaches it"
        else:
            assert access.get("authorizedIPRanges"), f"{cluster.name}: public API server open to all"
            for prefix in ending(plan, "azure-native:network:PublicIPPrefix", "runner-egress"):
                assert depends(cluster, prefix), f"{cluster.name}: runner egress not in authorized ranges"


def check_ci_azure(plan: Plan) -> None:
    ci = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
    assert "federated" in ci.lower()


def check_argocd_gpu(plan: Plan) -> None:
    account = one_kube(plan, "ServiceAccount", "argocd-manager", "kube-system")
    token = one_kube(plan, "Secret", "argocd-manager-token", "kube-system")
    assert depends(token, account) and token.provider == account.provider
    [cluster_secret] = [
        r
        for r in plan.of_type("kubernetes:core/v1:Secret")
        if meta(plan, r).get("namespace") == "argocd" and meta(plan, r).get("name", "").startswith("cluster-")
    ]
    assert depends(cluster_secret, token) and cluster_secret.provider != account.provider
    role = one_kube(plan, "ClusterRole", "argocd-manager-deployer")
    bindings = [
        r
        for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
        if plan.inputs(r)["roleRef"]["name"] == "argocd-manager-deployer"
    ]
    assert bindings and all(depends(b, role) and depends(b, account) for b in bindings)
    assert not kube(plan, "ClusterRoleBinding", "argocd-manager")
    allowlist = one_kube(plan, "SecurityPolicy", "llmops-gateway-kube-apiserver-allowlist")
    [egress] = ending(plan, "azure-native:network:PublicIPPrefix", "mgmt-egress")
    assert depends(allowlist, egress), "the management egress prefix does not reach the passthrough allowlist"
    assert depends(one_kube(plan, "TLSRoute", "kube-apiserver"), allowlist)


def check_argocd_git(plan: Plan) -> None:
    repository = one_kube(plan, "Secret", "gitops-repository", "argocd")
    assert meta(plan, repository)["labels"]["argocd.argoproj.io/secret-type"] == "repository"


def check_workflows_gateway(plan: Plan) -> None:
    runner = one_kube(plan, "ServiceAccount", "llm-pipeline-runner", "llm-pipelines")
    [identity] = ending(plan, "azure-native:managedidentity:UserAssignedIdentity", "pipeline-runner-wi-identity")
    assert depends(runner, identity)
    credentials = [
        r
        for r in plan.of_type("azure-native:managedidentity:FederatedIdentityCredential")
        if plan.inputs(r)["subject"] == "system:serviceaccount:llm-pipelines:llm-pipeline-runner"
    ]
    assert [c for c in credentials if depends(c, identity)]
    auth = plan.inputs(one_kube(plan, "SecurityPolicy", "llmops-gateway-routes-auth"))["spec"]
    if "apiKeyAuth" in auth:
        one_kube(plan, "Secret", "llmops-gateway-api-keys", "envoy-gateway-system")
        one_kube(plan, "Secret", "llmops-gateway-credentials", "llm-pipelines")
    else:
        [provider] = auth["jwt"]["providers"]
        assert provider["issuer"].startswith("https://login.microsoftonline.com/")
    one_kube(plan, "BackendTrafficPolicy", "llmops-gateway-routes-rate-limit")


def check_workflows_mlflow(plan: Plan) -> None:
    one_kube(plan, "Secret", "mlflow-tracking-credentials", "llm-pipelines")
    allow = plan.inputs(one_kube(plan, "NetworkPolicy", "allow-pipelines", "mlflow"))["spec"]
    [peer] = allow["ingress"][0]["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "llm-pipelines"}


def check_workflows_artifacts(plan: Plan) -> None:
    for workload in ("pipeline-runner-wi", "workflows-wi", "mlflow-wi"):
        [identity] = ending(plan, "azure-native:managedidentity:UserAssignedIdentity", f"{workload}-identity")
        [grant] = ending(plan, "azure-native:authorization:RoleAssignment", f"{workload}-blob-contributor")
        inputs = plan.inputs(grant)
        assert inputs["roleDefinitionId"].endswith(STORAGE_BLOB_DATA_CONTRIBUTOR)
        assert "/blobServices/default/containers/" in inputs["scope"], "blob access wider than one container"
        assert depends(grant, identity)
        assert [
            c for c in plan.of_type("azure-native:managedidentity:FederatedIdentityCredential") if depends(c, identity)
        ]
    [account] = plan.of_type("azure-native:storage:StorageAccount")
    assert plan.inputs(account)["allowSharedKeyAccess"] is False


def check_gpu_ngc(plan: Plan) -> None:
    for namespace in ("nemo", "nim"):
        one_kube(plan, "Secret", "ngc-api", namespace)
        one_kube(plan, "Secret", "nvcrimagepullsecret", namespace)


def check_nim_entity_store(plan: Plan) -> None:
    one_kube(plan, "NetworkPolicy", "default-deny-ingress", "nemo")
    allow = plan.inputs(one_kube(plan, "NetworkPolicy", "allow-nim", "nemo"))["spec"]
    peers = allow["ingress"][0]["from"]
    assert {"kubernetes.io/metadata.name": "nim"} in [p["namespaceSelector"]["matchLabels"] for p in peers]


def check_people_uis(plan: Plan) -> None:
    outputs = plan.outputs["managementCluster"]
    gateway = one_kube(plan, "Gateway", "llmops-ui-gateway", "envoy-gateway-system")
    proxy = plan.inputs(one_kube(plan, "EnvoyProxy", "llmops-ui-gateway-proxy"))["spec"]
    service = proxy["provider"]["kubernetes"]["envoyService"]
    assert service["annotations"]["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
    allowlist = one_kube(plan, "SecurityPolicy", "llmops-ui-gateway-client-allowlist")
    hosts = {listener["hostname"] for listener in plan.inputs(gateway)["spec"]["listeners"]}
    for key in ("argocdUrl", "argoWorkflowsUrl", "mlflowUrl"):
        host = outputs[key].removeprefix("https://")
        assert host in hosts
        [route] = [
            r
            for r in plan.of_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
            if r.provider == gateway.provider and host in plan.inputs(r)["spec"]["hostnames"]
        ]
        assert depends(route, allowlist)
    argocd_values = plan.inputs(plan.helm_release("argocd"))["values"]
    workflows_server = plan.inputs(plan.helm_release("argo-workflows"))["values"]["server"]
    if "oidc.config" in argocd_values["configs"]["cm"]:
        assert "sso" in workflows_server["authModes"]
        one_kube(plan, "ServiceAccount", "argo-sso-admin", "argo")
        one_kube(plan, "ServiceAccount", "argo-sso-readonly", "argo")
    assert plan.inputs(plan.helm_release("mlflow"))["values"]["auth"]["enabled"] is True


CHECKS: dict[str, Callable[[Plan], None]] = {
    "ci-clusters": check_ci_clusters,
    "ci-azure": check_ci_azure,
    "argocd-gpu": check_argocd_gpu,
    "argocd-git": check_argocd_git,
    "workflows-gateway": check_workflows_gateway,
    "workflows-mlflow": check_workflows_mlflow,
    "workflows-artifacts": check_workflows_artifacts,
    "gpu-ngc": check_gpu_ngc,
    "nim-entity-store": check_nim_entity_store,
    "people-uis": check_people_uis,
}


# ------------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------------


def test_every_row_has_a_check_and_every_check_a_row() -> None:
    assert [row["path"] for row in matrix()] == list(CHECKS)


def test_the_matrix_covers_the_design_access_paths() -> None:
    callers = " ".join(f"{row['caller']} -> {row['callee']}" for row in matrix()).lower()
    for caller, callee in [
        ("ci deploy job", "kube-apiservers"),
        ("argocd", "gpu kube-apiserver"),
        ("workflow pods", "through the gateway"),
        ("nim", "entity store"),
        ("people", "uis"),
    ]:
        assert re.search(f"{re.escape(caller)}[^>]*-> [^>]*{re.escape(callee)}", callers), (caller, callee)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("path", list(CHECKS))
def test_row_holds_in_the_plan(path: str, stack: str) -> None:
    CHECKS[path](plan_of(stack))


@pytest.mark.parametrize("row", matrix(), ids=lambda row: row["path"])
def test_every_object_the_row_names_exists(row: dict[str, str]) -> None:
    plans = [plan_of(stack) for stack in STACKS]
    names = [n for column in OBJECT_COLUMNS for n in code_names(row[column]) if OBJECT_NAME.match(n)]
    missing = [name for name in names if not any(named_anything(plan, name) for plan in plans)]
    assert not missing, f"{row['path']}: no stack creates {missing}"
    files = [f for f in code_names(row["created in"])]
    assert files and all((REPO / f).is_file() for f in files), files
