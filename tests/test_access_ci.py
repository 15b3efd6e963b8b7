"""Issue 14, paths 1 and 2: CI reaches both clusters' API servers as a named identity with a data-plane role (from an
in-network runner pool where a stack has one), and ArgoCD reaches the GPU apiserver passthrough from a fixed egress
that the passthrough's allowlist admits by dependency."""

from __future__ import annotations

import base64
import copy
import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.plans import SEEDED_SECRETS, Plan, evaluated
from test_policies import (
    Case,
    allowlist,
    case_tests,
    cluster,
    gateway_with_passthrough,
    k8s_provider,
    reg,
)

from components.aks import AKS_RBAC_CLUSTER_ADMIN_ROLE, _kubelogin_kubeconfig
from components.ci_runners import registration_urls, scaler_metadata
from components.config import ConfigError, parse_config, raw_config_from_pulumi
from planner.evaluate import engine_config, stack_config
from planner.mocks import _exec_kubeconfig, _uuid_from
from planner.values import unwrap
from policies.pack import access
from policies.pack.record import Registration

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "azure-native:containerservice:ManagedCluster"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
PREFIX = "azure-native:network:PublicIPPrefix"
PROVIDER = "pulumi:providers:kubernetes"
SECURITY_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:SecurityPolicy"
TLS_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:TLSRoute"
JOB = "azure-native:app:Job"
ENVIRONMENT = "azure-native:app:ManagedEnvironment"
SUBNET = "azure-native:network:Subnet"
NAT = "azure-native:network:NatGateway"


def raw(stack: str) -> dict[str, Any]:
    values, _, _ = engine_config(stack_config(stack), [], {})
    return raw_config_from_pulumi(values)


# ------------------------------------------------------------------------------------------------------
# Path 1: the deploying identity's data-plane role, the provider waiting for it, and the kubelogin mode
# ------------------------------------------------------------------------------------------------------


def test_every_aks_cluster_grants_the_deployer_cluster_admin_before_its_provider(any_stack: Plan) -> None:
    clusters = any_stack.of_type(CLUSTER)
    assert clusters
    for managed in clusters:
        prefix = managed.name.removesuffix("-cluster")
        assignment = any_stack.one(ROLE_ASSIGNMENT, f"{prefix}-deployer-cluster-admin")
        inputs = any_stack.inputs(assignment)
        assert inputs["roleDefinitionId"].endswith(f"/roleDefinitions/{AKS_RBAC_CLUSTER_ADMIN_ROLE}")
        assert AKS_RBAC_CLUSTER_ADMIN_ROLE == "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
        # Scoped to the cluster itself, by its id, with the edge that carries it.
        assert inputs["scope"] == managed.outputs["id"]
        assert assignment.property_dependencies["scope"] == [managed.urn]
        assert inputs["principalType"] == "ServicePrincipal"
        provider = any_stack.one(PROVIDER, f"{prefix}-k8s")
        assert assignment.urn in provider.dependencies


def test_the_existing_gpu_cluster_has_no_azure_role(prod: Plan) -> None:
    assert [r.name for r in prod.of_type(CLUSTER)] == ["prod-mgmt-cluster"]
    assert not [r for r in prod.of_type(ROLE_ASSIGNMENT) if r.name.startswith("prod-gpu")]


def test_without_runners_the_deployer_is_pinned_in_config(dev: Plan) -> None:
    pinned = raw("dev")["deployer"]["principalId"]
    assignments = [r for r in dev.of_type(ROLE_ASSIGNMENT) if r.name.endswith("deployer-cluster-admin")]
    assert len(assignments) == 2 and {dev.inputs(r)["principalId"] for r in assignments} == {pinned}


def test_unpinned_the_deployer_is_whoever_runs_pulumi_up_in_its_kubelogin_mode() -> None:
    config = stack_config("dev")
    config["llmops:deployer"] = {"principalType": "User", "kubelogin": "workloadidentity"}
    evaluation = evaluated("dev", secret_values=SEEDED_SECRETS, config_override=config)
    assert evaluation.ok, evaluation.config_problems
    assignments = [r for r in evaluation.registrations if r.name.endswith("deployer-cluster-admin")]
    assert {unwrap(r.inputs)["principalId"] for r in assignments} == {_uuid_from("object")}  # getClientConfig
    assert {unwrap(r.inputs)["principalType"] for r in assignments} == {"User"}
    provider = next(r for r in evaluation.registrations if r.name == "dev-gpu-k8s")
    kubeconfig = yaml.safe_load(unwrap(provider.inputs)["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:3] == ["get-token", "--login", "workloadidentity"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_with_runners_the_role_and_the_runners_name_the_same_identity(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    identity_id = raw(stack)["ciRunners"]["identityResourceId"]
    job = plan.one(JOB)
    assert plan.inputs(job)["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity_id]}
    principal = _uuid_from(identity_id.rsplit("/", 1)[1] + "principal")  # the identity's principalId, as ARM answers
    assignments = [r for r in plan.of_type(ROLE_ASSIGNMENT) if r.name.endswith("deployer-cluster-admin")]
    assert assignments and {plan.inputs(r)["principalId"] for r in assignments} == {principal}


def _aks_kubeconfig() -> str:
    server = "https://aks-x-1234.hcp.westeurope.azmk8s.io:443"
    return base64.b64encode(_exec_kubeconfig("aks-x", server).encode()).decode()


@pytest.mark.parametrize("login", ["azurecli", "workloadidentity"])
def test_kubeconfig_logs_in_as_kubelogin_convert_kubeconfig_would(login: str) -> None:
    kubeconfig = yaml.safe_load(_kubelogin_kubeconfig(_aks_kubeconfig(), login))
    exec_config = kubeconfig["users"][0]["user"]["exec"]
    assert exec_config["command"] == "kubelogin"
    # No --client-id/--tenant-id/--environment: in workloadidentity mode a --client-id flag would override
    # AZURE_CLIENT_ID, and azurecli takes the tenant from the CLI login.
    assert exec_config["args"] == [
        "get-token",
        "--login",
        login,
        "--server-id",
        "6dae42f8-4368-4678-94ff-3960e28e3630",
    ]


def test_the_shipped_stacks_log_in_with_the_azure_cli_by_default(dev: Plan) -> None:
    provider = dev.one(PROVIDER, "dev-mgmt-k8s")
    kubeconfig = yaml.safe_load(dev.inputs(provider)["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:3] == ["get-token", "--login", "azurecli"]


# ------------------------------------------------------------------------------------------------------
# Path 1: the in-network runner pool (staging and prod; dev stays on GitHub-hosted runners)
# ------------------------------------------------------------------------------------------------------


def test_dev_has_no_runner_pool(dev: Plan) -> None:
    assert not dev.of_type(JOB) and not dev.of_type(ENVIRONMENT) and not dev.of_type(NAT)
    assert dev.outputs.get("ciRunnerLabel") is None  # a None output is not exported


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_runner_pool_runs_in_a_delegated_subnet_of_the_vnet(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    config = raw(stack)
    subnet = plan.one(SUBNET, "llmops-azure-runner-subnet")
    inputs = plan.inputs(subnet)
    assert inputs["addressPrefix"] == config["azure"]["network"]["runnerSubnet"]
    assert inputs["delegations"] == [{"name": "container-apps", "serviceName": "Microsoft.App/environments"}]
    nat = plan.one(NAT)
    assert inputs["natGateway"]["id"] == nat.outputs["id"]
    environment = plan.one(ENVIRONMENT)
    vnet = plan.inputs(environment)["vnetConfiguration"]
    assert vnet == {"infrastructureSubnetId": subnet.outputs["id"], "internal": True}
    assert subnet.urn in environment.dependencies


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_runner_job_scales_on_queued_jobs_for_its_label(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    config = raw(stack)["ciRunners"]
    label = f"llmops-{stack}"
    assert plan.outputs["ciRunnerLabel"] == label
    job = plan.inputs(plan.one(JOB))
    trigger = job["configuration"]
    assert trigger["triggerType"] == "Event" and trigger["replicaRetryLimit"] == 0
    (rule,) = trigger["eventTriggerConfig"]["scale"]["rules"]
    assert rule["type"] == "github-runner"
    # KEDA's github_runner_scaler.go metadata keys; the token through the `personalAccessToken` auth parameter.
    assert rule["metadata"] == {
        "owner": config["githubOwner"],
        "runnerScope": "repo",
        "repos": ",".join(config["githubRepos"]),
        "labels": label,
        "targetWorkflowQueueLength": "1",
    }
    assert rule["auth"] == [{"secretRef": "github-token", "triggerParameter": "personalAccessToken"}]
    assert [s["name"] for s in trigger["secrets"]] == ["github-token"]
    (container,) = job["template"]["containers"]
    env = {e["name"]: e.get("value", e.get("secretRef")) for e in container["env"]}
    assert env["RUNNER_LABELS"] == label and env["GITHUB_TOKEN"] == "github-token"
    assert env["REGISTRATION_TOKEN_API_URL"].endswith("/actions/runners/registration-token")
    assert container["image"] == config["image"]


def test_registration_follows_the_runner_scope() -> None:
    config = parse_config(raw("staging")).ci_runners
    assert config is not None
    assert registration_urls(config) == (
        "https://github.com/example-org/llmops-platform",
        "https://api.github.com/repos/example-org/llmops-platform/actions/runners/registration-token",
    )
    org = config.model_copy(update={"runner_scope": "org", "github_repos": ["a", "b"]})
    assert registration_urls(org)[1] == "https://api.github.com/orgs/example-org/actions/runners/registration-token"
    assert scaler_metadata(org, "x")["repos"] == "a,b"


def test_public_api_servers_authorize_the_runner_egress(staging: Plan) -> None:
    egress = staging.one(PREFIX, "llmops-azure-runner-egress")
    assert staging.outputs["egress"]["ciRunners"] == egress.outputs["ipPrefix"]
    for managed in staging.of_type(CLUSTER):
        ranges = staging.inputs(managed)["apiServerAccessProfile"]["authorizedIPRanges"]
        assert ranges[-1] == egress.outputs["ipPrefix"] and "203.0.113.0/24" in ranges
        assert egress.urn in managed.dependencies


def test_a_private_api_server_is_reached_only_from_the_runners(prod: Plan) -> None:
    managed = prod.one(CLUSTER, "prod-mgmt-cluster")
    assert prod.inputs(managed)["apiServerAccessProfile"] == {"enablePrivateCluster": True}
    assert prod.one(JOB)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["azure"]["network"].pop("runnerSubnet"), "llmops:azure.network.runnerSubnet"),
        (lambda c: c["azure"]["network"].update(runnerSubnet="10.41.8.0/28"), "llmops:azure.network.runnerSubnet"),
        (lambda c: c["azure"]["network"].update(runnerSubnet="10.41.4.0/27"), "llmops:azure.network.runnerSubnet"),
        (lambda c: c.update(deployer={"principalId": _uuid_from("x")}), "llmops:deployer.principalId"),
        (lambda c: c["ciRunners"].update(githubRepos=["a", "b"]), "llmops:ciRunners.githubRepos"),
        (lambda c: c["ciRunners"].update(identityResourceId="id-deploy"), "llmops:ciRunners.identityResourceId"),
        (lambda c: c["ciRunners"].update(image="ghcr.io/example-org/runner"), "llmops:ciRunners.image"),
        (lambda c: c["ciRunners"].update(cpu=1.0), "llmops:ciRunners.memory"),
        (lambda c: c.update(deployer={"kubelogin": "devicecode"}), "llmops:deployer.kubelogin"),
    ],
)
def test_a_bad_runner_or_deployer_setting_names_its_key(change: Any, key: str) -> None:
    config = copy.deepcopy(raw("staging"))
    change(config)
    with pytest.raises(ConfigError) as error:
        parse_config(config)
    assert any(line.startswith(f"{key}:") for line in error.value.problems), error.value.problems


# ------------------------------------------------------------------------------------------------------
# Path 2: the management cluster's fixed egress reaches the passthrough allowlist, which guards the route
# ------------------------------------------------------------------------------------------------------


def test_management_cluster_leaves_from_its_own_prefix(any_stack: Plan) -> None:
    environment = any_stack.outputs["environment"]
    prefix = any_stack.one(PREFIX, f"{environment}-mgmt-egress")
    assert any_stack.inputs(prefix)["prefixLength"] == 31
    managed = any_stack.one(CLUSTER, f"{environment}-mgmt-cluster")
    profile = any_stack.inputs(managed)["networkProfile"]
    assert profile["outboundType"] == "loadBalancer"
    assert profile["loadBalancerProfile"]["outboundIPPrefixes"] == {"publicIPPrefixes": [{"id": prefix.outputs["id"]}]}
    assert prefix.urn in managed.property_dependencies["networkProfile"]
    assert any_stack.outputs["egress"]["management"] == prefix.outputs["ipPrefix"]
    assert any_stack.outputs["managementCluster"]["egressPrefix"] == prefix.outputs["ipPrefix"]
    assert prefix.protect == (environment == "prod")


def test_passthrough_allowlist_admits_the_egress_by_dependency(any_stack: Plan) -> None:
    environment = any_stack.outputs["environment"]
    prefix = any_stack.one(PREFIX, f"{environment}-mgmt-egress")
    policy = any_stack.one(SECURITY_POLICY, f"{environment}-gateway-kube-apiserver-allowlist")
    assert prefix.urn in policy.dependencies
    cidrs = any_stack.inputs(policy)["spec"]["authorization"]["rules"][0]["principal"]["clientCIDRs"]
    assert cidrs[0] == prefix.outputs["ipPrefix"]
    configured = raw(environment)["gateway"].get("passthroughAllowedCidrs", [])
    assert cidrs[1:] == configured


def test_prod_admits_only_the_management_egress(prod: Plan) -> None:
    assert "passthroughAllowedCidrs" not in raw("prod")["gateway"]
    policy = prod.one(SECURITY_POLICY, "prod-gateway-kube-apiserver-allowlist")
    cidrs = prod.inputs(policy)["spec"]["authorization"]["rules"][0]["principal"]["clientCIDRs"]
    assert [ipaddress.ip_network(c).prefixlen for c in cidrs] == [31]


def test_tls_route_waits_for_the_allowlist(any_stack: Plan) -> None:
    environment = any_stack.outputs["environment"]
    policy = any_stack.one(SECURITY_POLICY, f"{environment}-gateway-kube-apiserver-allowlist")
    route = any_stack.one(TLS_ROUTE, f"{environment}-gateway-route-kube-apiserver")
    assert policy.urn in route.dependencies


def test_the_shipped_stacks_pass_the_access_rules(any_stack: Plan) -> None:
    names = {p.name for p in access.POLICIES}
    assert [v for v in any_stack.verdicts if v.policy in names] == []


# ------------------------------------------------------------------------------------------------------
# The workflows: the runner label per stack, the kubelogin mode and a fresh federated token
# ------------------------------------------------------------------------------------------------------


def _job(workflow: str, job: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    return dict(document["jobs"][job])


@pytest.mark.parametrize(
    ("workflow", "job", "stack_expression", "command"),
    [
        ("pulumi-up.yml", "up", "inputs.stack", "make up"),
        ("pull-request.yml", "preview", "matrix.stack", "make preview"),
        ("drift.yml", "preview", "matrix.stack", "make preview"),
    ],
)
def test_deploy_preview_and_drift_run_on_the_stack_runner_label(
    workflow: str, job: str, stack_expression: str, command: str
) -> None:
    spec = _job(workflow, job)
    # A repository variable: environment variables are not available to runs-on.
    assert spec["runs-on"] == f"${{{{ vars[format('RUNNER_LABEL_{{0}}', {stack_expression})] || 'ubuntu-latest' }}}}"
    assert spec["env"]["AZURE_CLIENT_ID"] == "${{ secrets.AZURE_CLIENT_ID }}"
    assert spec["env"]["AZURE_TENANT_ID"] == "${{ secrets.AZURE_TENANT_ID }}"
    runs = [str(step.get("run", "")) for step in spec["steps"]]
    token = next(i for i, run_ in enumerate(runs) if ".ci/federated-token" in run_)
    deploy = next(i for i, run_ in enumerate(runs) if command in run_)
    assert token < deploy and "KUBELOGIN=workloadidentity" in runs[deploy]
    assert "AZURE_FEDERATED_TOKEN_FILE=$RUNNER_TEMP/" in runs[token] and "GITHUB_ENV" in runs[token]


def test_make_sets_the_kubelogin_mode_before_planning() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "$(PULUMI) config set --path llmops:deployer.kubelogin $(KUBELOGIN) --stack $(STACK)" in makefile


def test_runner_entrypoint_keeps_its_credentials_from_the_job() -> None:
    entrypoint = (ROOT / ".ci" / "runner" / "entrypoint.sh").read_text()
    unset = entrypoint.index("unset GITHUB_TOKEN IDENTITY_ENDPOINT IDENTITY_HEADER")
    assert unset < entrypoint.index("./config.sh") and "--ephemeral" in entrypoint
    assert '--labels "${RUNNER_LABELS}"' in entrypoint
    dockerfile = (ROOT / ".ci" / "runner" / "Dockerfile").read_text()
    assert "FROM ghcr.io/actions/actions-runner:2.329.0" in dockerfile


# ------------------------------------------------------------------------------------------------------
# The policies: a violating and a compliant case each
# ------------------------------------------------------------------------------------------------------

CLUSTER_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-dev-mgmt"


def _with(registration: Registration, *sources: Registration, prop: str | None = None) -> Registration:
    urns = [s.urn for s in sources]
    props = {**registration.property_dependencies, **({prop: urns} if prop else {})}
    return dataclasses.replace(
        registration, dependencies=[*registration.dependencies, *urns], property_dependencies=props
    )


def _deployer_role(managed: Registration, role: str = AKS_RBAC_CLUSTER_ADMIN_ROLE) -> Registration:
    assignment = reg(
        ROLE_ASSIGNMENT,
        "dev-mgmt-deployer-cluster-admin",
        {
            "principalId": _uuid_from("object"),
            "principalType": "ServicePrincipal",
            "roleDefinitionId": f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "scope": CLUSTER_ID,
        },
    )
    return _with(assignment, managed, prop="scope")


def _deployer_case(
    with_role: bool, provider_waits: bool, role: str = AKS_RBAC_CLUSTER_ADMIN_ROLE
) -> list[Registration]:
    managed = cluster()
    assignment = _deployer_role(managed, role)
    provider = _with(k8s_provider("dev-mgmt-k8s"), managed, *([assignment] if provider_waits else []))
    return [managed, provider, *([assignment] if with_role else [])]


def _egress_case(egress_feeds_cluster: bool, policy_admits: bool) -> list[Registration]:
    prefix = reg(PREFIX, "dev-mgmt-egress", {"publicIpPrefixName": "ippre-dev-mgmt-egress", "prefixLength": 31})
    managed = cluster()
    if egress_feeds_cluster:
        managed = _with(managed, prefix, prop="networkProfile")
    policy = allowlist(["203.0.113.0/24"])
    if policy_admits:
        policy = _with(policy, prefix, prop="spec")
    return [prefix, managed, gateway_with_passthrough(), policy]


def _egress_by_address() -> list[Registration]:
    """Once known, the prefix's address in the allowlist admits it as well as the edge does."""
    prefix, managed, gateway, _ = _egress_case(True, False)
    prefix = dataclasses.replace(prefix, inputs={**prefix.inputs, "ipPrefix": "192.0.2.8/31"})
    return [prefix, managed, gateway, allowlist(["192.0.2.0/24"])]


POLICY_CASES = [
    Case("aks-deployer-cluster-admin", lambda: _deployer_case(False, False), lambda: _deployer_case(True, True)),
    Case("aks-deployer-cluster-admin", lambda: _deployer_case(True, False), lambda: _deployer_case(True, True)),
    Case(
        "aks-deployer-cluster-admin",
        # The classic "Azure Kubernetes Service Cluster Admin Role" only lists credentials; it is no data-plane role.
        lambda: _deployer_case(True, True, role="0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8"),
        lambda: _deployer_case(True, True),
    ),
    Case(
        "gateway-passthrough-admits-management-egress",
        lambda: _egress_case(False, True),
        lambda: _egress_case(True, True),
    ),
    Case(
        "gateway-passthrough-admits-management-egress",
        lambda: _egress_case(True, False),
        _egress_by_address,
    ),
]


test_access_rule_reports_the_violating_case, test_access_rule_passes_the_compliant_case = case_tests(POLICY_CASES)
