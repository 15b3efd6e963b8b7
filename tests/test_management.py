"""The management cluster as planned for each shipped stack: AKS hardening, the three releases
(ArgoCD, Argo Workflows, MLflow), the Azure resources behind them, and what they must never leak."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from support.chart_values import unknown_values_keys
from support.plans import SEEDED_SECRETS, Plan
from support.schemas import validate_argo, validate_core

from components import argo_workflows, mlflow
from components.artifact_storage import STORAGE_BLOB_DATA_CONTRIBUTOR
from components.config import ConfigError, parse_config
from components.postgres import ROLES_NAMESPACE
from components.workload_identity import CLIENT_ID_ANNOTATION, TOKEN_EXCHANGE_AUDIENCE, USE_LABEL
from planner.evaluate import placeholder, stack_config
from planner.values import redact

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
POSTGRES = "azure-native:dbforpostgresql:Server"
POSTGRES_DB = "azure-native:dbforpostgresql:Database"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
MANAGEMENT_CHARTS = {"argocd": "argo-cd", "argo-workflows": "argo-workflows", "mlflow": "mlflow"}
PIPELINES_NAMESPACE = "llm-pipelines"


def env(plan: Plan) -> str:
    return plan.evaluation.stack


def management_cluster(plan: Plan) -> Any:
    return plan.one(CLUSTER, f"{env(plan)}-mgmt-cluster")


def management_provider_urn(plan: Plan) -> str:
    found = [r.urn for r in plan.of_type("pulumi:providers:kubernetes") if r.name == f"{env(plan)}-mgmt-k8s"]
    assert len(found) == 1
    return found[0]


def under_management(plan: Plan) -> list[Any]:
    return [
        r for r in plan.registrations if any(a.type == "llmops:management:ManagementCluster" for a in plan.ancestors(r))
    ]


def authored_kubernetes_objects(plan: Plan) -> list[Any]:
    return [r for r in under_management(plan) if r.type.startswith("kubernetes:") and r.type != RELEASE and r.custom]


def values(plan: Plan, release_name: str) -> dict[str, Any]:
    result: dict[str, Any] = plan.inputs(plan.helm_release(release_name))["values"]
    return result


def by_metadata_name(plan: Plan, type_: str, name: str) -> Any:
    found = [
        r for r in authored_kubernetes_objects(plan) if r.type == type_ and plan.inputs(r)["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one {type_} named {name}, found {len(found)}"
    return found[0]


# ------------------------------------------------------------------------------------------------
# AKS
# ------------------------------------------------------------------------------------------------


def test_cluster_uses_entra_id_only_with_workload_identity(any_stack: Plan) -> None:
    cluster = any_stack.inputs(management_cluster(any_stack))
    assert cluster["disableLocalAccounts"] is True
    assert cluster["enableRBAC"] is True
    assert cluster["aadProfile"]["managed"] is True
    assert cluster["aadProfile"]["enableAzureRBAC"] is True
    assert cluster["aadProfile"]["adminGroupObjectIDs"]
    assert cluster["oidcIssuerProfile"]["enabled"] is True
    assert cluster["securityProfile"]["workloadIdentity"]["enabled"] is True


def test_cluster_network_is_cni_overlay_with_cilium(any_stack: Plan) -> None:
    network = any_stack.inputs(management_cluster(any_stack))["networkProfile"]
    assert (network["networkPlugin"], network["networkPluginMode"]) == ("azure", "overlay")
    assert network["networkDataplane"] == network["networkPolicy"] == "cilium"


def test_system_pool_is_tainted_and_its_count_left_to_the_autoscaler(any_stack: Plan) -> None:
    registration = management_cluster(any_stack)
    (system,) = any_stack.inputs(registration)["agentPoolProfiles"]
    assert system["mode"] == "System"
    assert system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert system["enableAutoScaling"] is True
    assert "agentPoolProfiles[*].count" in registration.ignore_changes


def test_user_pools_are_autoscaled_cpu_agent_pools(any_stack: Plan) -> None:
    pools = [r for r in under_management(any_stack) if r.type == AGENT_POOL]
    assert pools, "the management cluster needs an untainted pool for its workloads"
    for pool in pools:
        inputs = any_stack.inputs(pool)
        assert inputs["mode"] == "User"
        assert inputs["enableAutoScaling"] is True
        assert inputs["minCount"] <= inputs["maxCount"]
        assert "gpuProfile" not in inputs
        assert not inputs["vmSize"].startswith(("Standard_NC", "Standard_ND"))
        # Every shipped cluster is on a version-moving upgrade channel (tests/test_day2_aks.py).
        assert pool.ignore_changes == ["count", "orchestratorVersion"]


def test_api_server_is_restricted_or_private(dev: Plan, staging: Plan, prod: Plan) -> None:
    for plan in (dev, staging):
        access = plan.inputs(management_cluster(plan))["apiServerAccessProfile"]
        assert access["enablePrivateCluster"] is False
        assert access["authorizedIPRanges"]
    prod_access = prod.inputs(management_cluster(prod))["apiServerAccessProfile"]
    assert prod_access["enablePrivateCluster"] is True
    assert "authorizedIPRanges" not in prod_access
    assert prod.outputs["managementCluster"]["apiServerFqdn"].endswith(".privatelink.westeurope.azmk8s.io")


def test_sku_tier_and_protection_differ_between_dev_and_prod(dev: Plan, prod: Plan) -> None:
    assert dev.inputs(management_cluster(dev))["sku"]["tier"] == "Free"
    assert prod.inputs(management_cluster(prod))["sku"]["tier"] == "Standard"
    assert not management_cluster(dev).protect
    assert management_cluster(prod).protect


def test_planned_maintenance_covers_both_upgrade_schedules(any_stack: Plan) -> None:
    names = {
        any_stack.inputs(r)["configName"]
        for r in under_management(any_stack)
        if r.type == "azure-native:containerservice:MaintenanceConfiguration"
    }
    assert names == {"aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"}


# ------------------------------------------------------------------------------------------------
# Releases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("release_name", sorted(MANAGEMENT_CHARTS))
def test_every_values_key_exists_in_the_pinned_chart(any_stack: Plan, release_name: str) -> None:
    registration = any_stack.helm_release(release_name)
    chart = MANAGEMENT_CHARTS[release_name]
    assert registration.inputs["chart"] == chart
    assert unknown_values_keys(values(any_stack, release_name), chart, registration.inputs["version"]) == []


@pytest.mark.parametrize("release_name", sorted(MANAGEMENT_CHARTS))
def test_releases_are_pinned_atomic_and_on_the_management_provider(any_stack: Plan, release_name: str) -> None:
    registration = any_stack.helm_release(release_name)
    inputs = any_stack.inputs(registration)
    assert registration.provider == management_provider_urn(any_stack)
    assert inputs["atomic"] is True and inputs["cleanupOnFail"] is True
    assert inputs["repositoryOpts"]["repo"].startswith("https://")
    assert inputs["version"] == {"argocd": "10.1.1", "argo-workflows": "1.0.18", "mlflow": "1.11.5"}[release_name]


def test_every_management_kubernetes_object_uses_the_management_provider(any_stack: Plan) -> None:
    provider = management_provider_urn(any_stack)
    objects = authored_kubernetes_objects(any_stack)
    assert objects
    assert {r.provider for r in objects} == {provider}


def test_authored_objects_are_valid_kubernetes_1_33(any_stack: Plan) -> None:
    # ArgoCD's and the UI entry's Gateway API kinds are checked against their CRDs in test_manifests.
    errors = {
        r.name: problems
        for r in authored_kubernetes_objects(any_stack)
        if not r.type.startswith(("kubernetes:argoproj.io/", "kubernetes:gateway."))
        and (problems := validate_core(any_stack.inputs(r), "1.33"))
    }
    assert errors == {}


def test_namespaces_enforce_pod_security(any_stack: Plan) -> None:
    levels = {
        any_stack.inputs(r)["metadata"]["name"]: any_stack.inputs(r)["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        for r in authored_kubernetes_objects(any_stack)
        if r.type == "kubernetes:core/v1:Namespace"
    }
    # The database roles Job has a namespace of its own where MLflow runs on Azure PostgreSQL.
    roles = {ROLES_NAMESPACE} if any_stack.of_type(POSTGRES) else set()
    # envoy-gateway-system: the internal entry to the UIs (components/internal_entry.py).
    assert set(levels) == {"argocd", "argo", PIPELINES_NAMESPACE, "mlflow", "envoy-gateway-system"} | roles
    assert levels[PIPELINES_NAMESPACE] == "restricted"
    assert all(level in ("baseline", "restricted") for level in levels.values())


def test_releases_depend_on_their_namespace(any_stack: Plan) -> None:
    for release_name, namespace in (("argocd", "argocd"), ("argo-workflows", "argo"), ("mlflow", "mlflow")):
        registration = any_stack.helm_release(release_name)
        ns = by_metadata_name(any_stack, "kubernetes:core/v1:Namespace", namespace)
        assert ns.urn in registration.dependencies
        assert registration.inputs["namespace"] == namespace


# ------------------------------------------------------------------------------------------------
# ArgoCD
# ------------------------------------------------------------------------------------------------


def test_argocd_is_highly_available_only_in_prod(dev: Plan, prod: Plan) -> None:
    dev_values, prod_values = values(dev, "argocd"), values(prod, "argocd")
    assert "redis-ha" not in dev_values
    assert prod_values["redis-ha"]["enabled"] is True
    for component in ("server", "repoServer", "applicationSet"):
        assert "replicas" not in dev_values[component]
        assert prod_values[component]["replicas"] >= 2
        assert prod_values[component]["pdb"] == {"enabled": True, "minAvailable": 1}


def test_argocd_serves_tls_reads_only_by_default_and_sizes_every_component(any_stack: Plan) -> None:
    config = values(any_stack, "argocd")
    assert config["configs"]["params"]["server.insecure"] is False
    assert config["configs"]["rbac"]["policy.default"] == "role:readonly"
    assert config["dex"]["enabled"] is False
    for component in ("controller", "server", "repoServer", "applicationSet", "notifications", "redisSecretInit"):
        assert set(config[component]["resources"]) == {"requests", "limits"}, component
    if not config.get("redis-ha", {}).get("enabled"):
        assert set(config["redis"]["resources"]) == {"requests", "limits"}


def test_argocd_values_leave_the_gitops_token_to_the_repository_secret(any_stack: Plan) -> None:
    # The repository Secret itself is checked in test_day2_argocd.
    assert "repositories" not in values(any_stack, "argocd")["configs"]
    redacted = redact(any_stack.helm_release("argocd").inputs)
    assert SEEDED_SECRETS["llmops:gitopsToken"] not in json.dumps(redacted)


def test_argocd_sso_uses_entra_id_and_maps_admin_groups(dev: Plan, prod: Plan) -> None:
    dev_configs = values(dev, "argocd")["configs"]
    assert "oidc.config" not in dev_configs["cm"]
    assert dev_configs["cm"]["admin.enabled"] is True

    configs = values(prod, "argocd")["configs"]
    sso = stack_config("prod")["llmops:management"]["argocd"]["sso"]
    oidc = configs["cm"]["oidc.config"]
    assert f"issuer: https://login.microsoftonline.com/{sso['tenantId']}/v2.0" in oidc
    assert f"clientID: {sso['clientId']}" in oidc
    assert "clientSecret: $argocd-sso-entra:clientSecret" in oidc
    assert "secret" not in configs
    assert configs["cm"]["admin.enabled"] is False
    for group in sso["adminGroupObjectIds"]:
        assert f'g, "{group}", role:admin' in configs["rbac"]["policy.csv"]


def test_service_monitors_only_with_prometheus_crds(dev: Plan, prod: Plan) -> None:
    assert "metrics" not in values(dev, "argocd")["controller"]
    assert values(prod, "argocd")["controller"]["metrics"]["serviceMonitor"]["enabled"] is True
    assert "serviceMonitor" not in values(dev, "argo-workflows")["controller"]
    assert values(prod, "argo-workflows")["controller"]["serviceMonitor"]["enabled"] is True
    assert "serviceMonitor" not in values(dev, "mlflow")
    assert values(prod, "mlflow")["serviceMonitor"]["enabled"] is True


# ------------------------------------------------------------------------------------------------
# Argo Workflows
# ------------------------------------------------------------------------------------------------


def test_workflows_run_in_the_pipelines_namespace_with_limits_from_config(any_stack: Plan) -> None:
    controller = values(any_stack, "argo-workflows")["controller"]
    workflows_config = stack_config(env(any_stack))["llmops:management"].get("argoWorkflows", {})
    assert controller["workflowNamespaces"] == [PIPELINES_NAMESPACE]
    assert controller["parallelism"] == workflows_config.get("parallelism", 20)
    assert controller["namespaceParallelism"] == workflows_config.get("namespaceParallelism", 10)
    assert set(controller["resources"]) == {"requests", "limits"}


def test_workflow_defaults_are_a_valid_workflow_spec(any_stack: Plan) -> None:
    defaults = values(any_stack, "argo-workflows")["controller"]["workflowDefaults"]
    spec = defaults["spec"]
    assert spec["serviceAccountName"] == argo_workflows.RUNNER_SERVICE_ACCOUNT
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["ttlStrategy"]["secondsAfterCompletion"] >= 600
    assert spec["podMetadata"]["labels"][USE_LABEL] == "true"
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "defaults"}, **defaults}
    assert validate_argo(workflow) == []


def test_server_auth_is_never_server_mode(any_stack: Plan) -> None:
    server = values(any_stack, "argo-workflows")["server"]
    assert server["authModes"]
    assert "server" not in server["authModes"]
    assert server["secure"] is True


def test_workflows_sso_maps_entra_groups_to_scoped_accounts(dev: Plan, prod: Plan) -> None:
    assert "sso" not in values(dev, "argo-workflows")["server"]
    sso = values(prod, "argo-workflows")["server"]["sso"]
    tenant = stack_config("prod")["llmops:management"]["argocd"]["sso"]["tenantId"]
    assert sso["issuer"] == f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert sso["redirectUrl"] == "https://workflows.llmops.example.com/oauth2/callback"
    assert sso["rbac"]["enabled"] is True
    secret = prod.inputs(by_metadata_name(prod, "kubernetes:core/v1:Secret", argo_workflows.SSO_SECRET))
    assert secret["stringData"]["client-secret"] == SEEDED_SECRETS["llmops:ssoClientSecret"]
    admin = prod.inputs(by_metadata_name(prod, "kubernetes:core/v1:ServiceAccount", "argo-sso-admin"))
    assert (
        "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a' in groups"
        in admin["metadata"]["annotations"]["workflows.argoproj.io/rbac-rule"]
    )
    binding = prod.inputs(
        by_metadata_name(prod, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "argo-sso-readonly")
    )
    assert binding["metadata"]["namespace"] == PIPELINES_NAMESPACE
    assert binding["roleRef"]["name"] == argo_workflows.VIEW_CLUSTER_ROLE


def test_pipeline_runner_has_only_the_executor_minimum(any_stack: Plan) -> None:
    account = any_stack.inputs(
        by_metadata_name(any_stack, "kubernetes:core/v1:ServiceAccount", argo_workflows.RUNNER_SERVICE_ACCOUNT)
    )
    assert account["metadata"]["namespace"] == PIPELINES_NAMESPACE
    role = any_stack.inputs(
        by_metadata_name(any_stack, "kubernetes:rbac.authorization.k8s.io/v1:Role", "llm-pipeline-runner-executor")
    )
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    binding = any_stack.inputs(
        by_metadata_name(
            any_stack, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "llm-pipeline-runner-executor"
        )
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": argo_workflows.RUNNER_SERVICE_ACCOUNT, "namespace": PIPELINES_NAMESPACE}
    ]
    # The chart must not add its own, broader workflow ServiceAccount and Role.
    assert values(any_stack, "argo-workflows")["workflow"] == {
        "serviceAccount": {"create": False},
        "rbac": {"create": False},
    }


def test_gpu_semaphore_holds_the_configured_limit(any_stack: Plan) -> None:
    configmap = any_stack.inputs(
        by_metadata_name(any_stack, "kubernetes:core/v1:ConfigMap", argo_workflows.GPU_SEMAPHORE_CONFIGMAP)
    )
    limit = stack_config(env(any_stack))["llmops:management"]["argoWorkflows"]["gpuJobLimit"]
    assert configmap["metadata"]["namespace"] == PIPELINES_NAMESPACE
    assert configmap["data"] == {argo_workflows.GPU_SEMAPHORE_KEY: str(limit)}


def test_argo_dependent_objects_wait_for_the_workflows_release(any_stack: Plan) -> None:
    release = any_stack.helm_release("argo-workflows")
    semaphore = by_metadata_name(any_stack, "kubernetes:core/v1:ConfigMap", argo_workflows.GPU_SEMAPHORE_CONFIGMAP)
    assert release.urn in semaphore.dependencies
    sso_bindings = [
        r
        for r in authored_kubernetes_objects(any_stack)
        if r.type == "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
        and any_stack.inputs(r)["roleRef"]["kind"] == "ClusterRole"
    ]
    assert all(release.urn in r.dependencies for r in sso_bindings)
    pipelines_ns = by_metadata_name(any_stack, "kubernetes:core/v1:Namespace", PIPELINES_NAMESPACE)
    assert pipelines_ns.urn in release.dependencies


def test_artifacts_go_to_blob_storage_with_workload_identity(any_stack: Plan) -> None:
    config = values(any_stack, "argo-workflows")
    account = any_stack.outputs["managementCluster"]["artifactStorageAccount"]
    assert config["useStaticCredentials"] is False
    assert config["artifactRepository"]["azure"] == {
        "endpoint": f"https://{account}.blob.core.windows.net",
        "container": "argo-artifacts",
        "useSDKCreds": True,
    }
    workflows_identity = any_stack.one(IDENTITY, f"{env(any_stack)}-mgmt-workflows-wi-identity")
    client_id = workflows_identity.outputs["clientId"]
    assert config["server"]["serviceAccount"]["annotations"] == {CLIENT_ID_ANNOTATION: client_id}
    runner = any_stack.inputs(
        by_metadata_name(any_stack, "kubernetes:core/v1:ServiceAccount", argo_workflows.RUNNER_SERVICE_ACCOUNT)
    )
    runner_identity = any_stack.one(IDENTITY, f"{env(any_stack)}-mgmt-pipeline-runner-wi-identity")
    assert runner["metadata"]["annotations"] == {CLIENT_ID_ANNOTATION: runner_identity.outputs["clientId"]}


def test_archive_only_where_postgres_exists(dev: Plan, prod: Plan) -> None:
    assert "persistence" not in values(dev, "argo-workflows")["controller"]
    persistence = values(prod, "argo-workflows")["controller"]["persistence"]
    server = prod.one(POSTGRES, "prod-mgmt-postgres-server")
    assert persistence["archive"] is True
    assert persistence["archiveTTL"] == "365d"
    assert persistence["postgresql"]["host"] == server.outputs["fullyQualifiedDomainName"]
    assert persistence["postgresql"]["sslMode"] == "require"


# ------------------------------------------------------------------------------------------------
# Identity and storage
# ------------------------------------------------------------------------------------------------


def test_federated_credentials_match_the_service_accounts(any_stack: Plan) -> None:
    issuer = management_cluster(any_stack).outputs["oidcIssuerProfile"]["issuerURL"]
    credentials = {any_stack.inputs(r)["subject"]: any_stack.inputs(r) for r in any_stack.of_type(FEDERATED_CREDENTIAL)}
    runner = any_stack.inputs(
        by_metadata_name(any_stack, "kubernetes:core/v1:ServiceAccount", argo_workflows.RUNNER_SERVICE_ACCOUNT)
    )["metadata"]
    expected = {
        f"system:serviceaccount:{runner['namespace']}:{runner['name']}": "pipeline-runner",
        f"system:serviceaccount:argo:{argo_workflows.SERVER_SERVICE_ACCOUNT}": "workflows",
        f"system:serviceaccount:{mlflow.NAMESPACE}:{mlflow.SERVICE}": "mlflow",
    }
    assert set(credentials) == set(expected)
    for subject, identity in expected.items():
        credential = credentials[subject]
        assert credential["issuer"] == issuer
        assert credential["audiences"] == [TOKEN_EXCHANGE_AUDIENCE]
        assert credential["resourceName"] == f"id-{env(any_stack)}-mgmt-{identity}-wi"


def test_federated_credentials_of_one_identity_are_written_one_at_a_time(any_stack: Plan) -> None:
    by_identity: dict[str, list] = {}
    for credential in any_stack.of_type(FEDERATED_CREDENTIAL):
        by_identity.setdefault(any_stack.inputs(credential)["resourceName"], []).append(credential)
    for credentials in by_identity.values():
        for earlier, later in itertools.pairwise(sorted(credentials, key=lambda r: len(r.dependencies))):
            assert earlier.urn in later.dependencies


def test_storage_account_is_hardened(any_stack: Plan) -> None:
    (account,) = [r for r in under_management(any_stack) if r.type == STORAGE_ACCOUNT]
    inputs = any_stack.inputs(account)
    assert inputs["enableHttpsTrafficOnly"] is True
    assert inputs["minimumTlsVersion"] == "TLS1_2"
    assert inputs["allowBlobPublicAccess"] is False
    assert inputs["allowSharedKeyAccess"] is False
    assert len(inputs["accountName"]) <= 24 and inputs["accountName"].isalnum()
    containers = [any_stack.inputs(r) for r in under_management(any_stack) if r.type == BLOB_CONTAINER]
    assert {c["containerName"] for c in containers} == {"argo-artifacts", "mlflow-artifacts"}
    assert all(c["publicAccess"] == "None" for c in containers)


def test_blob_access_is_granted_per_container(any_stack: Plan) -> None:
    containers = {r.outputs["name"]: r.outputs["id"] for r in any_stack.of_type(BLOB_CONTAINER)}
    identities = {r.name: r.outputs["principalId"] for r in any_stack.of_type(IDENTITY)}
    grants = {
        any_stack.inputs(r)["principalId"]: any_stack.inputs(r)
        for r in any_stack.of_type(ROLE_ASSIGNMENT)
        if any_stack.inputs(r)["roleDefinitionId"].endswith(f"/roleDefinitions/{STORAGE_BLOB_DATA_CONTRIBUTOR}")
    }
    prefix = f"{env(any_stack)}-mgmt"
    assert grants[identities[f"{prefix}-workflows-wi-identity"]]["scope"] == containers["argo-artifacts"]
    assert grants[identities[f"{prefix}-mlflow-wi-identity"]]["scope"] == containers["mlflow-artifacts"]
    assert all(g["principalType"] == "ServicePrincipal" for g in grants.values())


def test_stateful_resources_are_protected_in_prod_only(dev: Plan, prod: Plan) -> None:
    stateful = (STORAGE_ACCOUNT, BLOB_CONTAINER, POSTGRES, POSTGRES_DB)
    prod_stateful = [r for r in under_management(prod) if r.type in stateful]
    assert {r.type for r in prod_stateful} == set(stateful)
    assert all(r.protect for r in prod_stateful)
    assert not any(r.protect for r in under_management(dev) if r.type in stateful)


# ------------------------------------------------------------------------------------------------
# PostgreSQL and MLflow
# ------------------------------------------------------------------------------------------------


def test_dev_uses_in_cluster_postgres_and_prod_a_flexible_server(dev: Plan, prod: Plan) -> None:
    assert not dev.of_type(POSTGRES)
    assert values(dev, "mlflow")["postgresql"]["enabled"] is True
    prod_values = values(prod, "mlflow")
    assert "postgresql" not in prod_values
    server = prod.one(POSTGRES, "prod-mgmt-postgres-server")
    backend = prod_values["backendStore"]
    assert backend["postgres"] == {
        "enabled": True,
        "host": server.outputs["fullyQualifiedDomainName"],
        "port": 5432,
        "database": "mlflow",
    }
    assert backend["existingDatabaseSecret"]["name"] == mlflow.DATABASE_SECRET
    assert prod_values["auth"]["postgres"]["database"] == mlflow.AUTH_DATABASE
    assert prod_values["replicaCount"] == 2


def test_flexible_server_settings_follow_config(staging: Plan, prod: Plan) -> None:
    staging_server = staging.inputs(staging.one(POSTGRES, "staging-mgmt-postgres-server"))
    prod_server = prod.inputs(prod.one(POSTGRES, "prod-mgmt-postgres-server"))
    assert prod_server["sku"] == {"name": "Standard_D4ds_v5", "tier": "GeneralPurpose"}
    assert staging_server["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}
    assert prod_server["highAvailability"]["mode"] == "ZoneRedundant"
    assert staging_server["highAvailability"]["mode"] == "Disabled"
    assert prod_server["backup"] == {"backupRetentionDays": 35, "geoRedundantBackup": "Enabled"}
    assert prod_server["storage"]["storageSizeGB"] == 256
    assert prod_server["version"] == "16"
    for server in (staging_server, prod_server):
        assert server["network"]["publicNetworkAccess"] == "Disabled"
        assert server["administratorLoginPassword"] == SEEDED_SECRETS["llmops:postgresAdminPassword"]


def test_flexible_server_requires_tls_and_is_reached_privately(prod: Plan) -> None:
    (setting,) = prod.of_type("azure-native:dbforpostgresql:Configuration")
    assert (prod.inputs(setting)["configurationName"], prod.inputs(setting)["value"]) == (
        "require_secure_transport",
        "on",
    )
    (endpoint,) = prod.of_type("azure-native:network:PrivateEndpoint")
    connection = prod.inputs(endpoint)["privateLinkServiceConnections"][0]
    assert connection["groupIds"] == ["postgresqlServer"]
    assert connection["privateLinkServiceId"] == prod.one(POSTGRES).outputs["id"]
    (zone,) = prod.of_type("azure-native:privatedns:PrivateZone")
    assert prod.inputs(zone)["privateZoneName"] == "privatelink.postgres.database.azure.com"
    databases = {prod.inputs(r)["databaseName"] for r in prod.of_type(POSTGRES_DB)}
    assert databases == {"mlflow", "mlflow_auth", "argo_workflows"}


def test_mlflow_authenticates_and_proxies_artifacts_to_blob(any_stack: Plan) -> None:
    config = values(any_stack, "mlflow")
    assert config["auth"]["enabled"] is True
    assert config["auth"]["existingAdminSecret"]["name"] == mlflow.ADMIN_SECRET
    account = any_stack.outputs["managementCluster"]["artifactStorageAccount"]
    assert config["artifactRoot"]["proxiedArtifactStorage"] is True
    assert config["artifactRoot"]["azureBlob"] == {
        "enabled": True,
        "container": "mlflow-artifacts",
        "storageAccount": account,
    }
    client_id = any_stack.one(IDENTITY, f"{env(any_stack)}-mgmt-mlflow-wi-identity").outputs["clientId"]
    assert config["serviceAccount"]["annotations"] == {CLIENT_ID_ANNOTATION: client_id}
    assert config["serviceAccount"]["name"] == mlflow.SERVICE
    assert config["extraPodLabels"] == {USE_LABEL: "true"}
    assert set(config["resources"]) == {"requests", "limits"}
    assert "mlflow.mlflow.svc.cluster.local:5000" in config["serverAllowedHosts"]


def test_pipelines_get_mlflow_credentials_in_their_namespace(any_stack: Plan) -> None:
    secret = any_stack.inputs(
        by_metadata_name(any_stack, "kubernetes:core/v1:Secret", mlflow.TRACKING_CREDENTIALS_SECRET)
    )
    assert secret["metadata"]["namespace"] == PIPELINES_NAMESPACE
    assert set(secret["stringData"]) == {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}


# ------------------------------------------------------------------------------------------------
# Outputs and secrets
# ------------------------------------------------------------------------------------------------


def test_outputs_describe_the_management_cluster(any_stack: Plan) -> None:
    outputs = any_stack.outputs
    management = outputs["managementCluster"]
    workloads = stack_config(env(any_stack))["llmops:management"]
    assert management["name"] == f"aks-{env(any_stack)}-mgmt"
    assert management["resourceId"].endswith(f"/managedClusters/aks-{env(any_stack)}-mgmt")
    assert management["apiServerFqdn"]
    assert management["argocdUrl"] == f"https://{workloads['argocd']['hostname']}"
    assert management["argoWorkflowsUrl"] == f"https://{workloads['argoWorkflows']['hostname']}"
    assert management["mlflowUrl"] == f"https://{workloads['mlflow']['hostname']}"
    assert management["mlflowTrackingUri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert management["artifactContainer"] == "argo-artifacts"
    assert management["artifactStorageAccount"].startswith(f"st{env(any_stack)}mgmt")
    assert management["pipelinesNamespace"] == PIPELINES_NAMESPACE
    assert "managementKubeconfig" in outputs
    assert redact(any_stack.evaluation.outputs["managementKubeconfig"]) == "[secret]"


def test_no_secret_appears_in_clear(any_stack: Plan) -> None:
    known = [
        *SEEDED_SECRETS.values(),
        *(placeholder(f"llmops:{k}") for k in ("mlflowDbPassword", "mlflowAdminPassword")),
    ]
    for registration in any_stack.registrations:
        text = json.dumps(redact(registration.inputs))
        leaked = [value for value in known if value in text]
        assert leaked == [], f"{registration.type} {registration.name} shows a secret in clear"
    outputs_text = json.dumps(redact(any_stack.evaluation.outputs))
    assert not any(value in outputs_text for value in known)


# ------------------------------------------------------------------------------------------------
# Config rules of the management section
# ------------------------------------------------------------------------------------------------


def _raw_config(stack: str) -> dict[str, Any]:
    return {
        key.removeprefix("llmops:"): value for key, value in stack_config(stack).items() if key.startswith("llmops:")
    }


def test_workflows_sso_needs_the_argocd_app_registration() -> None:
    raw = _raw_config("prod")
    del raw["management"]["argocd"]["sso"]
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert error.value.problems == [
        "llmops:management.argoWorkflows.authModes: 'sso' needs argocd.sso (the Entra ID app registration)"
    ]


def test_zone_redundant_postgres_is_refused_on_burstable() -> None:
    raw = _raw_config("prod")
    raw["management"]["mlflow"]["postgresTier"] = "Burstable"
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert error.value.problems == [
        "llmops:management.mlflow.highAvailability: zone-redundant PostgreSQL needs postgresTier GeneralPurpose "
        "or MemoryOptimized"
    ]
