"""People -> UIs and names -> addresses (issue 14, paths 4 and 5): the management UIs are served by an internal
Envoy Gateway behind a private load balancer, each UI signs users in itself, and where `llmops:dns` is configured
Azure DNS points every name at the load balancer address Pulumi knows."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any
from urllib.parse import urlparse

import pytest
from support.plans import Plan

from components import internal_entry
from components.config import ConfigError, PlatformConfig, parse_config, raw_config_from_pulumi
from components.dns import PIP_NAME_ANNOTATION, PIP_RESOURCE_GROUP_ANNOTATION
from planner.evaluate import engine_config, stack_config
from planner.policy_runner import run_policies
from policies.pack.catalog import PACK_ENFORCEMENT, POLICIES
from policies.pack.record import Registration

GATEWAY_API = "kubernetes:gateway.networking.k8s.io/v1"
ENVOY = "kubernetes:gateway.envoyproxy.io/v1alpha1"
UI_URLS = {"argocd": "argocdUrl", "argo-workflows": "argoWorkflowsUrl", "mlflow": "mlflowUrl"}
# The Service each UI's chart creates (helm template of the pinned charts with our release names).
UI_SERVICES = {
    "argocd": ("argocd", "argocd-server", 443),
    "argo-workflows": ("argo", "argo-workflows-server", 2746),
    "mlflow": ("mlflow", "mlflow", 5000),
}


def config_of(plan: Plan) -> PlatformConfig:
    values, _, _ = engine_config(stack_config(plan.evaluation.stack), [], {})
    return parse_config(raw_config_from_pulumi(values))


def objects_of(plan: Plan, type_: str) -> list[Registration]:
    return plan.of_type(type_)


def named(plan: Plan, type_: str, object_name: str) -> Registration:
    [found] = [r for r in plan.of_type(type_) if plan.inputs(r)["metadata"]["name"] == object_name]
    return found


def spec(plan: Plan, registration: Registration) -> Any:
    return plan.inputs(registration)["spec"]


def management_provider(plan: Plan) -> str:
    [provider] = [r for r in plan.of_type("pulumi:providers:kubernetes") if "-mgmt-" in r.name]
    return provider.urn


def depends(registration: Registration, on: Registration) -> bool:
    return on.urn in registration.dependencies or any(
        on.urn in urns for urns in registration.property_dependencies.values()
    )


def entry_address(plan: Plan) -> str:
    return plan.outputs["managementCluster"]["internalEntry"]["address"]


# ------------------------------------------------------------------------------------------------------
# Path 4: people -> UIs
# ------------------------------------------------------------------------------------------------------


def test_the_ui_entry_is_an_internal_load_balancer_in_the_management_subnet(any_stack: Plan) -> None:
    proxy = named(any_stack, f"{ENVOY}:EnvoyProxy", internal_entry.PROXY_CONFIG)
    assert proxy.provider == management_provider(any_stack)
    service = spec(any_stack, proxy)["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "LoadBalancer"
    assert service["annotations"][internal_entry.INTERNAL_ANNOTATION] == "true"
    address = service["annotations"][internal_entry.IPV4_ANNOTATION]
    assert address == entry_address(any_stack)
    subnet = config_of(any_stack).azure.network.management_subnet
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    # The only public LoadBalancer stays the GPU gateway's.
    assert [v for v in any_stack.verdicts if v.policy == "no-load-balancer-services"] == []
    release = any_stack.inputs(any_stack.helm_release(internal_entry.RELEASE))
    gpu_release = any_stack.inputs(any_stack.helm_release("envoy-gateway"))
    assert (release["chart"], release["version"]) == (gpu_release["chart"], gpu_release["version"])
    assert release["values"]["config"]["envoyGateway"]["extensionApis"] == {"enableBackend": True}


@pytest.mark.parametrize("ui", list(UI_URLS))
def test_every_exported_ui_url_is_served_by_the_internal_gateway(any_stack: Plan, ui: str) -> None:
    host = urlparse(any_stack.outputs["managementCluster"][UI_URLS[ui]]).hostname
    gateway = named(any_stack, f"{GATEWAY_API}:Gateway", internal_entry.GATEWAY)
    assert gateway.provider == management_provider(any_stack)
    [listener] = [item for item in spec(any_stack, gateway)["listeners"] if item["hostname"] == host]
    assert (listener["protocol"], listener["port"], listener["tls"]["mode"]) == ("HTTPS", 443, "Terminate")
    assert listener["tls"]["certificateRefs"] == [
        {"group": "", "kind": "Secret", "name": config_of(any_stack).management.internal_entry.tls_secret_name}
    ]

    [route] = [r for r in objects_of(any_stack, f"{GATEWAY_API}:HTTPRoute") if host in spec(any_stack, r)["hostnames"]]
    assert route.provider == management_provider(any_stack)
    assert spec(any_stack, route)["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": internal_entry.GATEWAY, "sectionName": ui}
    ]
    [backend_ref] = spec(any_stack, route)["rules"][0]["backendRefs"]
    namespace, service, port = UI_SERVICES[ui]
    if backend_ref["kind"] == "Backend":
        backend = named(any_stack, f"{ENVOY}:Backend", backend_ref["name"])
        [endpoint] = spec(any_stack, backend)["endpoints"]
        assert endpoint["fqdn"] == {"hostname": f"{service}.{namespace}.svc.cluster.local", "port": port}
    else:
        assert (backend_ref["namespace"], backend_ref["name"], backend_ref["port"]) == (namespace, service, port)
        grant = next(
            g
            for g in objects_of(any_stack, f"{GATEWAY_API}:ReferenceGrant")
            if any_stack.inputs(g)["metadata"]["namespace"] == namespace and g.provider == route.provider
        )
        assert {"group": "", "kind": "Service", "name": service} in spec(any_stack, grant)["to"]
    # The route is live only after the release that serves it and the entry's protection exist.
    allowlist = named(any_stack, f"{ENVOY}:SecurityPolicy", f"{internal_entry.GATEWAY}-client-allowlist")
    assert depends(route, allowlist)


def test_ui_routes_admit_only_private_clients_and_are_rate_limited(any_stack: Plan) -> None:
    target = [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": internal_entry.GATEWAY}]
    allowlist = spec(
        any_stack, named(any_stack, f"{ENVOY}:SecurityPolicy", f"{internal_entry.GATEWAY}-client-allowlist")
    )
    assert allowlist["targetRefs"] == target
    assert allowlist["authorization"]["defaultAction"] == "Deny"
    [rule] = allowlist["authorization"]["rules"]
    cidrs = rule["principal"]["clientCIDRs"]
    assert cidrs == config_of(any_stack).management.internal_entry.allowed_client_cidrs
    assert all(ipaddress.ip_network(c).is_private for c in cidrs)
    limit = spec(any_stack, named(any_stack, f"{ENVOY}:BackendTrafficPolicy", f"{internal_entry.GATEWAY}-rate-limit"))
    assert limit["targetRefs"] == target
    assert limit["rateLimit"]["local"]["rules"][0]["clientSelectors"] == [
        {"sourceCIDR": {"type": "Distinct", "value": "0.0.0.0/0"}}
    ]
    # The UIs' namespaces admit the entry's proxies (NetworkPolicy `allow-ui`).
    for namespace, _, _ in UI_SERVICES.values():
        policy = named_in(any_stack, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "allow-ui", namespace)
        [peer] = spec(any_stack, policy)["ingress"][0]["from"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "envoy-gateway-system"}


def named_in(plan: Plan, type_: str, object_name: str, namespace: str) -> Registration:
    [found] = [
        r
        for r in plan.of_type(type_)
        if plan.inputs(r)["metadata"]["name"] == object_name
        and plan.inputs(r)["metadata"].get("namespace") == namespace
    ]
    return found


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_ui_signs_users_in_at_its_exported_host(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    outputs = plan.outputs["managementCluster"]
    argocd = plan.inputs(plan.helm_release("argocd"))["values"]
    # argo-cd derives `url` (and so the OIDC redirect https://<host>/auth/callback) from global.domain.
    assert f"https://{argocd['global']['domain']}" == outputs["argocdUrl"]
    assert "oidc.config" in argocd["configs"]["cm"]
    assert argocd["configs"]["cm"]["admin.enabled"] is False

    server = plan.inputs(plan.helm_release("argo-workflows"))["values"]["server"]
    assert server["authModes"] == ["sso"]
    assert server["sso"]["enabled"] is True
    assert server["sso"]["redirectUrl"] == f"{outputs['argoWorkflowsUrl']}/oauth2/callback"

    mlflow = plan.inputs(plan.helm_release("mlflow"))["values"]
    assert mlflow["auth"]["enabled"] is True
    assert urlparse(outputs["mlflowUrl"]).hostname in mlflow["serverAllowedHosts"]


# ------------------------------------------------------------------------------------------------------
# The load balancer policy
# ------------------------------------------------------------------------------------------------------


def envoy_proxy(
    name: str, annotations: dict[str, str] | None, service_type: str | None = "LoadBalancer"
) -> Registration:
    service: dict[str, Any] = {"name": name}
    if service_type is not None:
        service["type"] = service_type
    if annotations is not None:
        service["annotations"] = annotations
    return Registration(
        urn=f"urn:pulumi:test::llmops-platform::{ENVOY}:EnvoyProxy::{name}",
        type=f"{ENVOY}:EnvoyProxy",
        name=name,
        parent="",
        provider="urn:pulumi:test::llmops-platform::pulumi:providers:kubernetes::test-k8s",
        dependencies=[],
        property_dependencies={},
        protect=False,
        ignore_changes=[],
        custom=True,
        inputs={
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "EnvoyProxy",
            "metadata": {"name": name, "namespace": "envoy-gateway-system"},
            "spec": {"provider": {"type": "Kubernetes", "kubernetes": {"envoyService": service}}},
        },
    )


@pytest.mark.parametrize(
    ("proxy", "violates"),
    [
        (envoy_proxy("other-proxy", None), True),
        (envoy_proxy("other-proxy", None, service_type=None), True),  # LoadBalancer is the default type
        (envoy_proxy("other-proxy", {internal_entry.INTERNAL_ANNOTATION: "false"}), True),
        (envoy_proxy("other-proxy", {internal_entry.INTERNAL_ANNOTATION: "true"}), False),
        (envoy_proxy("other-proxy", None, service_type="ClusterIP"), False),
        (envoy_proxy("llmops-gateway-proxy", None), False),  # the GPU gateway, the one public entry
    ],
)
def test_only_the_gateway_or_an_internal_entry_gets_a_load_balancer(proxy: Registration, violates: bool) -> None:
    [policy] = [p for p in POLICIES if p.name == "no-load-balancer-services"]
    verdicts = run_policies([proxy], [policy], PACK_ENFORCEMENT)
    assert bool(verdicts) is violates, verdicts


# ------------------------------------------------------------------------------------------------------
# Path 5: names -> addresses
# ------------------------------------------------------------------------------------------------------


def gateway_hosts(plan: Plan) -> list[str]:
    gateway = plan.outputs["gateway"]
    return [*gateway["hostnames"].values(), gateway["apiServerHostname"]]


def test_staging_points_the_gateway_names_at_its_static_public_ip(staging: Plan) -> None:
    dns = config_of(staging).dns
    assert dns is not None and dns.zone_name is not None
    [pip] = staging.of_type("azure-native:network:PublicIPAddress")
    pip_inputs = staging.inputs(pip)
    assert pip_inputs["publicIPAllocationMethod"] == "Static" and pip_inputs["sku"]["name"] == "Standard"
    # The GPU cluster's control plane may use the address, and the gateway's Service waits for that grant.
    [grant] = [r for r in staging.of_type("azure-native:authorization:RoleAssignment") if depends(r, pip)]
    assert staging.inputs(grant)["scope"] == pip.outputs["id"]
    [identity] = [r for r in staging.of_type("azure-native:managedidentity:UserAssignedIdentity") if "-gpu-" in r.name]
    assert depends(grant, identity)
    proxy = named(staging, f"{ENVOY}:EnvoyProxy", "llmops-gateway-proxy")
    annotations = spec(staging, proxy)["provider"]["kubernetes"]["envoyService"]["annotations"]
    assert annotations[PIP_NAME_ANNOTATION] == pip_inputs["publicIpAddressName"]
    assert annotations[PIP_RESOURCE_GROUP_ANNOTATION] == pip_inputs["resourceGroupName"]
    assert depends(proxy, grant)

    records = {staging.inputs(r)["relativeRecordSetName"]: r for r in staging.of_type("azure-native:dns:RecordSet")}
    expected = {host.removesuffix(f".{dns.zone_name}") for host in gateway_hosts(staging)}
    assert set(records) == expected
    for record in records.values():
        inputs = staging.inputs(record)
        assert (inputs["recordType"], inputs["zoneName"]) == ("A", dns.zone_name)
        assert inputs["aRecords"] == [{"ipv4Address": pip.outputs["ipAddress"]}]
        assert depends(record, pip)
    # ACME HTTP-01 can only succeed once the names resolve: the Certificate waits for the records.
    certificate = staging.one("kubernetes:cert-manager.io/v1:Certificate")
    assert all(depends(certificate, record) for record in records.values())
    assert staging.outputs["dns"]["nameServers"]


def test_staging_resolves_the_ui_names_privately_at_the_entry(staging: Plan) -> None:
    dns = config_of(staging).dns
    assert dns is not None and dns.private_zone_name is not None
    [zone] = [
        r
        for r in staging.of_type("azure-native:privatedns:PrivateZone")
        if staging.inputs(r)["privateZoneName"] == dns.private_zone_name
    ]
    [link] = [r for r in staging.of_type("azure-native:privatedns:VirtualNetworkLink") if depends(r, zone)]
    [vnet] = staging.of_type("azure-native:network:VirtualNetwork")
    assert staging.inputs(link)["virtualNetwork"]["id"] == vnet.outputs["id"]
    records = {
        staging.inputs(r)["relativeRecordSetName"]: r
        for r in staging.of_type("azure-native:privatedns:PrivateRecordSet")
        if depends(r, zone)
    }
    for ui, output in UI_URLS.items():
        host = urlparse(staging.outputs["managementCluster"][output]).hostname or ui
        record = records[host.removesuffix(f".{dns.private_zone_name}")]
        assert staging.inputs(record)["aRecords"] == [{"ipv4Address": entry_address(staging)}]
        assert depends(record, link)
    # The private zone hides the public one inside the VNet, so it repeats the gateway's names (pipelines, ArgoCD).
    [pip] = staging.of_type("azure-native:network:PublicIPAddress")
    for host in gateway_hosts(staging):
        record = records[host.removesuffix(f".{dns.private_zone_name}")]
        assert staging.inputs(record)["aRecords"] == [{"ipv4Address": pip.outputs["ipAddress"]}]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_records_without_a_zone(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    assert config_of(plan).dns is None
    for type_ in ("azure-native:dns:Zone", "azure-native:dns:RecordSet", "azure-native:privatedns:PrivateRecordSet"):
        assert plan.of_type(type_) == []
    assert not [r for r in plan.of_type("azure-native:network:PublicIPAddress") if "gateway" in r.name]
    assert plan.outputs.get("dns") is None


# ------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------


def problems_of(stack: str, change: Any) -> list[str]:
    config = copy.deepcopy(stack_config(stack))
    change(config)
    values, _, _ = engine_config(config, [], {})
    with pytest.raises(ConfigError) as raised:
        parse_config(raw_config_from_pulumi(values))
    return raised.value.problems


@pytest.mark.parametrize(
    ("stack", "change", "key"),
    [
        (
            "staging",
            lambda c: c["llmops:dns"].update(zoneName="other.example.org"),
            "llmops:dns.zoneName: must contain gateway.domain",
        ),
        (
            "staging",
            lambda c: c["llmops:dns"].update(privateZoneName="internal.example.org"),
            "llmops:dns.privateZoneName: must contain the UI hosts",
        ),
        ("staging", lambda c: c["llmops:dns"].update(resourceGroup="rg-dns"), "llmops:dns.resourceGroup:"),
        (
            "staging",
            lambda c: c["llmops:dns"].update(gatewayAddress="203.0.113.10"),
            "llmops:dns.gatewayAddress: only for an existing GPU cluster",
        ),
        (
            "prod",
            lambda c: c.update({"llmops:dns": {"zoneName": "llmops.example.com", "resourceGroup": "rg-dns"}}),
            "llmops:dns.gatewayAddress: required with an existing GPU cluster",
        ),
        (
            "dev",
            lambda c: c["llmops:management"].update(internalEntry={"privateIp": "10.99.0.4"}),
            "llmops:management.internalEntry.privateIp: 10.99.0.4 must lie in managementSubnet",
        ),
        (
            "dev",
            lambda c: c["llmops:management"].update(internalEntry={"privateIp": "10.40.0.300"}),
            "llmops:management.internalEntry.privateIp: must be an IPv4 address",
        ),
    ],
)
def test_a_bad_names_setting_is_one_line_naming_the_key(stack: str, change: Any, key: str) -> None:
    problems = problems_of(stack, change)
    assert len(problems) == 1 and problems[0].startswith(key), problems


def test_an_existing_gpu_cluster_gets_records_at_the_configured_address() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["llmops:dns"] = {
        "zoneName": "llmops.example.com",
        "resourceGroup": "rg-dns",
        "gatewayAddress": "203.0.113.10",
    }
    values, _, _ = engine_config(config, [], {})
    assert parse_config(raw_config_from_pulumi(values)).dns is not None
