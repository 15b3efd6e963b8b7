"""The gateway in front of the GPU cluster and the GitOps wiring from the management cluster, as planned."""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
from typing import Any
from urllib.parse import urlparse

import pytest
from pulumi.output import Unknown
from support.chart_values import unknown_values_keys
from support.plans import SEEDED_SECRETS, Plan, plan_of, stack_fixtures
from support.schemas import validate_core, validate_custom

from components import gateway as gw
from components import gateway_objects as gwo
from components import gateway_routes as gwr
from components import gitops
from components.config import GatewayConfig, GatewayTlsConfig, PlatformConfig, parse_config
from planner.evaluate import stack_config
from planner.mocks import Registration
from planner.values import SECRET, redact

GATEWAY_API = "kubernetes:gateway.networking.k8s.io/v1"
ENVOY_GATEWAY = "kubernetes:gateway.envoyproxy.io/v1alpha1"
ARGOCD = "kubernetes:argoproj.io/v1alpha1"
ARGOCD_KINDS = (f"{ARGOCD}:Application", f"{ARGOCD}:AppProject")
NEMO_EXPOSED = {"customizer", "evaluator", "data-store", "entity-store", "guardrails"}


INTERNAL_ENTRY = "llmops:management:InternalEntry"


@functools.cache
def gpu_side(stack: str) -> Plan:
    """The stack's plan without the management cluster's internal entry to the UIs (its own Envoy Gateway, tested in
    test_access_ui_dns.py): the gateway of these tests is the GPU cluster's."""
    plan = plan_of(stack)
    kept = [r for r in plan.registrations if not any(a.type == INTERNAL_ENTRY for a in plan.ancestors(r))]
    return Plan(dataclasses.replace(plan.evaluation, registrations=kept), plan.verdicts)


dev, staging, prod, any_stack = stack_fixtures(gpu_side, "module")


def config_of(plan: Plan) -> PlatformConfig:
    raw = stack_config(plan.evaluation.stack)
    return parse_config({key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("llmops:")})


def known(value: Any) -> Any:
    """Plan inputs with values unknown at preview replaced by a placeholder string, for schema checks."""
    if isinstance(value, Unknown):
        return "unknown-at-preview"
    if isinstance(value, dict):
        return {key: known(item) for key, item in value.items()}
    if isinstance(value, list):
        return [known(item) for item in value]
    return value


def owned_by(plan: Plan, component_type: str) -> list[Registration]:
    return [r for r in plan.registrations if any(a.type == component_type for a in plan.ancestors(r))]


def spec(plan: Plan, registration: Registration) -> dict[str, Any]:
    return plan.inputs(registration)["spec"]


def name_of(plan: Plan, registration: Registration) -> str:
    return str(plan.inputs(registration)["metadata"]["name"])


def targets(plan: Plan, policy: Registration) -> set[tuple[str, str, str | None]]:
    return {(ref["kind"], ref["name"], ref.get("sectionName")) for ref in spec(plan, policy)["targetRefs"]}


def gateway_listeners(plan: Plan) -> dict[str, dict[str, Any]]:
    gateway = plan.one(f"{GATEWAY_API}:Gateway")
    return {listener["name"]: listener for listener in spec(plan, gateway)["listeners"]}


def cluster_secret(plan: Plan) -> Registration:
    found = [
        r
        for r in plan.of_type("kubernetes:core/v1:Secret")
        if plan.inputs(r)["metadata"].get("labels", {}).get("argocd.argoproj.io/secret-type") == "cluster"
    ]
    assert len(found) == 1
    return found[0]


# ------------------------------------------------------------------------------------------------------
# Routes and their protection
# ------------------------------------------------------------------------------------------------------


def test_every_exposed_service_has_a_route(any_stack: Plan) -> None:
    outputs = any_stack.outputs
    config = config_of(any_stack)
    expected = {
        f"nemo-{service}": url for service, url in outputs["nemo"]["serviceUrls"].items() if service in NEMO_EXPOSED
    } | {f"nim-{model['name']}": model["url"] for model in outputs["nim"]["models"]}
    assert len([n for n in expected if n.startswith("nemo-")]) == (5 if config.nemo.guardrails else 4)

    routes = {name_of(any_stack, r): spec(any_stack, r) for r in any_stack.of_type(f"{GATEWAY_API}:HTTPRoute")}
    assert set(routes) == set(expected)
    for name, url in expected.items():
        backend = urlparse(url)
        host, namespace = str(backend.hostname).split(".")[:2]
        route = routes[name]
        assert route["hostnames"] == [f"{name}.{config.gateway.domain}"]
        assert route["parentRefs"] == [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gwo.GATEWAY, "sectionName": "https"}
        ]
        [rule] = route["rules"]
        assert rule["backendRefs"] == [
            {"group": "", "kind": "Service", "name": host, "namespace": namespace, "port": backend.port}
        ]
        assert outputs["gateway"]["urls"][name] == f"https://{name}.{config.gateway.domain}"


def test_cross_namespace_backends_are_granted_by_name(any_stack: Plan) -> None:
    grants = {
        plan_namespace: spec(any_stack, r)
        for r in any_stack.of_type(f"{GATEWAY_API}:ReferenceGrant")
        if (plan_namespace := any_stack.inputs(r)["metadata"]["namespace"]) != "default"
    }
    wanted: dict[str, set[str]] = {}
    for r in any_stack.of_type(f"{GATEWAY_API}:HTTPRoute"):
        [ref] = spec(any_stack, r)["rules"][0]["backendRefs"]
        wanted.setdefault(ref["namespace"], set()).add(ref["name"])
    assert set(grants) == set(wanted)
    for namespace, grant in grants.items():
        assert grant["from"] == [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": gwo.NAMESPACE}
        ]
        assert {(t["kind"], t["name"]) for t in grant["to"]} == {("Service", s) for s in wanted[namespace]}


def test_every_route_is_authenticated_and_rate_limited(any_stack: Plan) -> None:
    config = config_of(any_stack).gateway
    routes = {name_of(any_stack, r) for r in any_stack.of_type(f"{GATEWAY_API}:HTTPRoute")}
    namespaces = {any_stack.inputs(r)["metadata"]["namespace"] for r in any_stack.of_type(f"{GATEWAY_API}:HTTPRoute")}
    assert namespaces == {gwo.NAMESPACE}

    security = [
        p for p in any_stack.of_type(f"{ENVOY_GATEWAY}:SecurityPolicy") if "authorization" not in spec(any_stack, p)
    ]
    limits = any_stack.of_type(f"{ENVOY_GATEWAY}:BackendTrafficPolicy")
    for route in routes:
        authenticating = [p for p in security if ("HTTPRoute", route, None) in targets(any_stack, p)]
        assert len(authenticating) == 1, route
        policy = spec(any_stack, authenticating[0])
        if config.auth == "jwt":
            [provider] = policy["jwt"]["providers"]
            assert provider["issuer"] == config.jwt_issuer
            assert provider["audiences"] == config.jwt_audiences
            assert provider["remoteJWKS"] == {"uri": config.jwt_jwks_uri}
        else:
            assert policy["apiKeyAuth"]["credentialRefs"] == [
                {"group": "", "kind": "Secret", "name": gwr.API_KEY_SECRET}
            ]
        limiting = [p for p in limits if ("HTTPRoute", route, None) in targets(any_stack, p)]
        assert len(limiting) == 1, route
        assert spec(any_stack, limiting[0])["rateLimit"] == {
            "local": {"rules": [{"limit": {"requests": config.requests_per_minute, "unit": "Minute"}}]}
        }
    gateway_verdicts = [v for v in any_stack.verdicts if v.policy.startswith("gateway-")]
    assert gateway_verdicts == []


def test_api_key_lives_in_a_secret_and_never_in_clear(dev: Plan, staging: Plan) -> None:
    assert config_of(dev).gateway.auth == "api-key"
    secret = next(r for r in dev.of_type("kubernetes:core/v1:Secret") if name_of(dev, r) == gwr.API_KEY_SECRET)
    assert dev.inputs(secret)["stringData"] == {gwr.API_KEY_CLIENT: SEEDED_SECRETS["llmops:gatewayApiKey"]}
    assert redact(secret.inputs)["stringData"] == SECRET
    # JWT stacks carry no key at all.
    assert not [r for r in staging.of_type("kubernetes:core/v1:Secret") if name_of(staging, r) == gwr.API_KEY_SECRET]


def test_no_secret_in_clear_in_gateway_or_gitops(any_stack: Plan) -> None:
    mine = owned_by(any_stack, "llmops:gateway:EnvoyGateway") + owned_by(any_stack, "llmops:gitops:GitOpsWiring")
    text = json.dumps([redact(r.inputs) for r in mine] + [redact(any_stack.evaluation.outputs)], default=str)
    for value in SEEDED_SECRETS.values():
        assert value not in text


# ------------------------------------------------------------------------------------------------------
# TLS passthrough to the kube-apiserver and the ArgoCD cluster registration
# ------------------------------------------------------------------------------------------------------


def test_passthrough_sni_is_the_apiserver_certificate_name(any_stack: Plan) -> None:
    outputs = any_stack.outputs
    api_host = urlparse(outputs["gpuCluster"]["apiEndpoint"]).hostname
    listener = gateway_listeners(any_stack)[gwo.PASSTHROUGH_LISTENER]
    assert listener["protocol"] == "TLS" and listener["tls"] == {"mode": "Passthrough"} and listener["port"] == 443
    assert listener["hostname"] == api_host == outputs["gateway"]["apiServerTlsServerName"]

    route = spec(any_stack, any_stack.one(f"{GATEWAY_API}:TLSRoute"))
    assert route["hostnames"] == [api_host]
    assert route["parentRefs"][0]["sectionName"] == gwo.PASSTHROUGH_LISTENER
    assert route["rules"] == [
        {"backendRefs": [{"group": "", "kind": "Service", "name": "kubernetes", "namespace": "default", "port": 443}]}
    ]
    [grant] = [
        spec(any_stack, r)
        for r in any_stack.of_type(f"{GATEWAY_API}:ReferenceGrant")
        if any_stack.inputs(r)["metadata"]["namespace"] == "default"
    ]
    assert grant["from"] == [{"group": "gateway.networking.k8s.io", "kind": "TLSRoute", "namespace": gwo.NAMESPACE}]
    assert grant["to"] == [{"group": "", "kind": "Service", "name": "kubernetes"}]


def test_passthrough_hostname_and_cluster_secret_server_agree(any_stack: Plan) -> None:
    config = config_of(any_stack)
    hostname = any_stack.outputs["gateway"]["apiServerHostname"]
    assert hostname == config.gateway.api_server_hostname == f"k8s.{config.gateway.domain}"
    server = f"https://{hostname}:443"
    data = any_stack.inputs(cluster_secret(any_stack))["stringData"]
    assert data["server"] == server == any_stack.outputs["gitops"]["server"]
    assert data["name"] == any_stack.outputs["gitops"]["clusterName"] == f"{config.environment}-gpu"
    project = next(
        r
        for r in any_stack.of_type(f"{ARGOCD}:AppProject")
        if name_of(any_stack, r) == any_stack.outputs["gitops"]["project"]
    )
    assert {d["server"] for d in spec(any_stack, project)["destinations"]} == {server}


def test_passthrough_admits_only_allowlisted_clients(any_stack: Plan) -> None:
    config = config_of(any_stack).gateway
    [allowlist] = [
        p
        for p in any_stack.of_type(f"{ENVOY_GATEWAY}:SecurityPolicy")
        if "authorization" in spec(any_stack, p)
        and targets(any_stack, p) == {("Gateway", gwo.GATEWAY, gwo.PASSTHROUGH_LISTENER)}
    ]
    # The management cluster's egress prefix first (tests/test_access_ci.py), then the configured ranges.
    egress = any_stack.outputs["egress"]["management"]
    assert spec(any_stack, allowlist)["authorization"] == {
        "defaultAction": "Deny",
        "rules": [
            {
                "name": "allowlisted-clients",
                "action": "Allow",
                "principal": {"clientCIDRs": [egress, *config.passthrough_allowed_cidrs]},
            }
        ],
    }
    # Envoy Gateway only enforces clientCIDRs on a TLS listener; nothing HTTP-only may ride along.
    assert set(spec(any_stack, allowlist)) == {"targetRefs", "authorization"}
    proxy = spec(any_stack, any_stack.one(f"{ENVOY_GATEWAY}:EnvoyProxy"))
    assert proxy["provider"]["kubernetes"]["envoyService"]["externalTrafficPolicy"] == "Local"


def test_cluster_config_verifies_the_apiserver_certificate() -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    data = {"token": base64.b64encode(b"eyJhbGciOi.token").decode(), "ca.crt": ca, "namespace": "a3ViZS1zeXN0ZW0="}
    config = json.loads(gitops._config_from_token(data, "aks-x.hcp.westeurope.azmk8s.io"))
    assert config == {
        "bearerToken": "eyJhbGciOi.token",
        "tlsClientConfig": {"insecure": False, "caData": ca, "serverName": "aks-x.hcp.westeurope.azmk8s.io"},
    }
    direct = json.loads(gitops.cluster_config("t", ca, None))
    assert direct["tlsClientConfig"] == {"insecure": False, "caData": ca}


def test_cluster_secret_is_secret_and_waits_for_the_token(any_stack: Plan) -> None:
    secret = cluster_secret(any_stack)
    assert redact(secret.inputs)["stringData"] == SECRET
    assert redact(secret.inputs)["data"] == SECRET
    data = any_stack.inputs(secret)
    # The token exists only once the token controller has filled the Secret: unknown offline, never guessed.
    assert isinstance(data["data"], Unknown)
    assert set(data["stringData"]) == {"name", "server", "namespaces", "clusterResources"}
    assert data["metadata"]["namespace"] == "argocd"
    token = next(
        r for r in any_stack.of_type("kubernetes:core/v1:Secret") if name_of(any_stack, r) == gitops.TOKEN_SECRET
    )
    token_inputs = any_stack.inputs(token)
    assert token_inputs["type"] == "kubernetes.io/service-account-token"
    assert token_inputs["metadata"]["namespace"] == "kube-system"
    assert token_inputs["metadata"]["annotations"] == {"kubernetes.io/service-account.name": gitops.SERVICE_ACCOUNT}
    assert token.urn in secret.dependencies
    account = any_stack.one("kubernetes:core/v1:ServiceAccount", f"{any_stack.evaluation.stack}-gitops-manager")
    assert account.urn in token.dependencies


def test_argocd_objects_live_on_the_management_cluster_after_argocd(any_stack: Plan) -> None:
    argocd = any_stack.helm_release("argocd")
    stack = any_stack.evaluation.stack
    chart_logins = [
        r
        for r in owned_by(any_stack, "llmops:gitops:GitOpsWiring")
        if r.type == "kubernetes:core/v1:Secret"
        and any_stack.inputs(r)["metadata"]["labels"].get("argocd.argoproj.io/secret-type") == "repository"
    ]
    management = [
        cluster_secret(any_stack),
        *chart_logins,
        *[r for r in any_stack.registrations if r.type in ARGOCD_KINDS],
    ]
    assert len(management) == 6
    for registration in management:
        assert registration.provider.endswith(f"::{stack}-mgmt-k8s"), registration.name
        assert argocd.urn in registration.dependencies, registration.name
    for registration in owned_by(any_stack, "llmops:gitops:GitOpsWiring"):
        if registration not in management and registration.custom:
            assert registration.provider.endswith(f"::{stack}-gpu-k8s"), registration.name


def test_argocd_may_deploy_only_into_platform_namespaces(any_stack: Plan) -> None:
    outputs = any_stack.outputs
    platform_namespaces = sorted({outputs["nemo"]["namespace"], outputs["nim"]["namespace"]})
    data = any_stack.inputs(cluster_secret(any_stack))["stringData"]
    assert data["namespaces"] == ",".join(platform_namespaces)
    assert data["clusterResources"] == "false"

    project = next(
        r for r in any_stack.of_type(f"{ARGOCD}:AppProject") if name_of(any_stack, r) == outputs["gitops"]["project"]
    )
    project_spec = spec(any_stack, project)
    assert sorted(d["namespace"] for d in project_spec["destinations"]) == platform_namespaces
    # The chart repositories after it are checked in test_day2_argocd.
    assert project_spec["sourceRepos"][0] == config_of(any_stack).gitops.repo_url
    assert "clusterResourceWhitelist" not in project_spec

    bindings = any_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    mine = [b for b in bindings if b in owned_by(any_stack, "llmops:gitops:GitOpsWiring")]
    assert sorted(any_stack.inputs(b)["metadata"]["namespace"] for b in mine) == platform_namespaces
    for binding in mine:
        assert any_stack.inputs(binding)["roleRef"]["name"] == gitops.DEPLOYER_ROLE
    [cluster_binding] = [
        b
        for b in any_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
        if b in owned_by(any_stack, "llmops:gitops:GitOpsWiring")
    ]
    assert any_stack.inputs(cluster_binding)["roleRef"]["name"] == gitops.OBSERVER_ROLE
    roles = {
        name_of(any_stack, r): any_stack.inputs(r)["rules"]
        for r in any_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
        if r in owned_by(any_stack, "llmops:gitops:GitOpsWiring")
    }
    assert roles[gitops.OBSERVER_ROLE] == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": list(gitops.READ)}]
    for rule in roles[gitops.DEPLOYER_ROLE]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    # What the project lets ArgoCD sync is exactly what the token may write.
    writable = {
        (group, resource)
        for rule in roles[gitops.DEPLOYER_ROLE]
        if "create" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert writable == {(k.group, k.resource) for k in gitops.DEPLOYABLE_KINDS}
    assert {(w["group"], w["kind"]) for w in project_spec["namespaceResourceWhitelist"]} == {
        (k.group, k.kind) for k in gitops.DEPLOYABLE_KINDS
    }


def test_app_of_apps_follows_the_gitops_config(any_stack: Plan) -> None:
    config = config_of(any_stack).gitops
    application = spec(any_stack, any_stack.one(f"{ARGOCD}:Application"))
    assert application["source"] == {"repoURL": config.repo_url, "targetRevision": config.revision, "path": config.path}
    assert application["destination"] == {"server": gitops.IN_CLUSTER, "namespace": "argocd"}
    assert application["syncPolicy"] == {"automated": {"prune": config.prune, "selfHeal": config.self_heal}}
    bootstrap = next(
        r for r in any_stack.of_type(f"{ARGOCD}:AppProject") if name_of(any_stack, r) == application["project"]
    )
    assert spec(any_stack, bootstrap)["namespaceResourceWhitelist"] == [{"group": "argoproj.io", "kind": "Application"}]
    assert spec(any_stack, bootstrap)["destinations"] == [{"server": gitops.IN_CLUSTER, "namespace": "argocd"}]


def test_prune_is_per_environment(dev: Plan, prod: Plan) -> None:
    assert spec(dev, dev.one(f"{ARGOCD}:Application"))["syncPolicy"]["automated"]["prune"] is True
    assert spec(prod, prod.one(f"{ARGOCD}:Application"))["syncPolicy"]["automated"]["prune"] is False


# ------------------------------------------------------------------------------------------------------
# Releases, certificates and schemas
# ------------------------------------------------------------------------------------------------------


def test_envoy_gateway_release_is_the_pinned_oci_chart(any_stack: Plan) -> None:
    release = any_stack.inputs(any_stack.helm_release("envoy-gateway"))
    version = config_of(any_stack).charts.envoy_gateway
    assert release["chart"] == "oci://docker.io/envoyproxy/gateway-helm"
    assert release["version"] == version == "v1.9.0"
    assert "repositoryOpts" not in release
    assert release["namespace"] == gwo.NAMESPACE
    assert unknown_values_keys(release["values"], "gateway-helm", version) == []


def test_the_gateway_is_the_only_load_balancer(any_stack: Plan) -> None:
    proxy = spec(any_stack, any_stack.one(f"{ENVOY_GATEWAY}:EnvoyProxy"))
    assert proxy["provider"]["kubernetes"]["envoyService"]["type"] == "LoadBalancer"
    assert any_stack.outputs["gateway"]["serviceName"] == f"{gwo.NAMESPACE}/{gw.SERVICE}"
    gateway_class = spec(any_stack, any_stack.one(f"{GATEWAY_API}:GatewayClass"))
    assert gateway_class["parametersRef"]["name"] == name_of(any_stack, any_stack.one(f"{ENVOY_GATEWAY}:EnvoyProxy"))
    assert [v for v in any_stack.verdicts if v.policy == "no-load-balancer-services"] == []


def test_certificate_comes_from_acme_over_the_gateway(any_stack: Plan) -> None:
    config = config_of(any_stack).gateway
    assert config.tls.mode == "cert-manager"
    release = any_stack.inputs(any_stack.helm_release("cert-manager"))
    assert release["values"]["crds"] == {"enabled": True}
    assert release["values"]["config"]["enableGatewayAPI"] is True
    assert release["version"].startswith("v1.19.")
    assert any_stack.helm_release("envoy-gateway").urn in any_stack.helm_release("cert-manager").dependencies

    issuer = spec(any_stack, any_stack.one("kubernetes:cert-manager.io/v1:ClusterIssuer"))["acme"]
    assert (issuer["email"], issuer["server"]) == (config.tls.acme_email, config.tls.acme_server)
    [solver] = issuer["solvers"]
    assert solver["http01"]["gatewayHTTPRoute"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": gwo.GATEWAY,
            "namespace": gwo.NAMESPACE,
            "sectionName": gwo.ACME_LISTENER,
        }
    ]
    certificate = spec(any_stack, any_stack.one("kubernetes:cert-manager.io/v1:Certificate"))
    assert sorted(certificate["dnsNames"]) == sorted(any_stack.outputs["gateway"]["hostnames"].values())
    listeners = gateway_listeners(any_stack)
    assert listeners["https"]["tls"]["certificateRefs"] == [
        {"group": "", "kind": "Secret", "name": certificate["secretName"]}
    ]
    assert listeners[gwo.ACME_LISTENER]["port"] == 80


def test_authored_custom_resources_match_their_crds(any_stack: Plan) -> None:
    checked = 0
    for registration in any_stack.registrations:
        if registration.type.startswith((GATEWAY_API, ENVOY_GATEWAY)) or registration.type in ARGOCD_KINDS:
            obj = known(any_stack.inputs(registration))
            assert validate_custom(obj) == [], registration.name
            checked += 1
    assert checked >= 15


def test_authored_core_objects_match_the_kubernetes_schema(any_stack: Plan) -> None:
    config = config_of(any_stack)
    cluster = config.gpu_cluster.aks or config.gpu_cluster.existing
    assert cluster is not None
    versions = {
        f"{config.environment}-gpu-k8s": cluster.kubernetes_version,
        f"{config.environment}-mgmt-k8s": config.management.cluster.kubernetes_version,
    }
    mine = owned_by(any_stack, "llmops:gateway:EnvoyGateway") + owned_by(any_stack, "llmops:gitops:GitOpsWiring")
    core = [r for r in mine if r.custom and r.type.startswith(("kubernetes:core/", "kubernetes:rbac."))]
    assert len(core) >= 8
    for registration in core:
        version = versions[registration.provider.rsplit("::", 1)[-1]]
        obj = any_stack.inputs(registration)
        if isinstance(obj.get("data"), Unknown):
            # A Secret's whole `data` map is unknown until its token exists.
            obj["data"] = {"config": "unknown-at-preview"}
        assert validate_core(known(obj), version) == [], registration.name


# ------------------------------------------------------------------------------------------------------
# Config and pure pieces
# ------------------------------------------------------------------------------------------------------


def _gateway_config(**overrides: Any) -> GatewayConfig:
    base: dict[str, Any] = {
        "domain": "llmops.example.com",
        "tls": {"mode": "provided", "providedSecretName": "wildcard-tls"},
        "passthroughAllowedCidrs": ["198.51.100.0/28"],
    }
    return GatewayConfig.model_validate(base | overrides)


def test_jwt_needs_its_keys() -> None:
    with pytest.raises(ValueError, match="jwtJwksUri: required"):
        _gateway_config(auth="jwt", jwtIssuer="https://issuer.example/v2.0")
    with pytest.raises(ValueError, match="only apply when auth is 'jwt'"):
        _gateway_config(jwtIssuer="https://issuer.example/v2.0")


def test_passthrough_settings_need_passthrough() -> None:
    with pytest.raises(ValueError, match="need passthrough on"):
        _gateway_config(passthrough=False)
    assert _gateway_config(passthroughHostname="api.gpu.example.com").api_server_hostname == "api.gpu.example.com"


def test_without_passthrough_there_is_no_tls_listener() -> None:
    config = _gateway_config(passthrough=False, passthroughAllowedCidrs=[])
    listeners = gw.gateway_listeners(config, "wildcard-tls", None)
    assert [listener["name"] for listener in listeners] == ["https"]
    assert listeners[0]["tls"]["certificateRefs"][0]["name"] == "wildcard-tls"


def test_backends_come_from_in_cluster_urls() -> None:
    backends = gwr.exposed_backends(
        {
            "customizer": "http://nemo-customizer.nemo.svc.cluster.local:8000",
            "nim-proxy": "http://nemo-nim-proxy.nemo.svc.cluster.local:8000",
        },
        {"llama": "http://llama.nim.svc.cluster.local:8000"},
    )
    assert backends == [
        gwr.GatewayBackend("nemo-customizer", "nemo", "nemo-customizer", 8000),
        gwr.GatewayBackend("nim-llama", "nim", "llama", 8000),
    ]
    with pytest.raises(ValueError, match="in-cluster Service URL"):
        gwr.GatewayBackend.from_url("x", "https://api.example.com")


def test_tls_config_accepts_a_provided_secret() -> None:
    assert GatewayTlsConfig(mode="provided", provided_secret_name="wildcard-tls").provided_secret_name == "wildcard-tls"
