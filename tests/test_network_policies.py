"""NetworkPolicies: every namespace the program creates denies ingress by default, and every caller a workload has
is admitted, judged with Kubernetes' NetworkPolicy semantics against the pods the real charts render.

Callers are walked from the plan and the renders: every HTTPRoute backend from the proxies of its Gateway, every
admission webhook from the kube-apiserver (outside the pod network), every rendered Service from the callers this
file names for it, every ServiceMonitor target from Prometheus, and the in-cluster paths of the design (NIM to the
Entity Store, NeMo to NIM, workflow pods to MLflow). Selectors must match pods that exist: a policy for no pod is
a bug. The pack's `namespaces-default-deny-ingress` rule is checked on a failing and a passing case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.plans import STACKS, Plan, plan_of
from support.rendered import NGC_ONLY, pod_specs, rendered_of
from test_policies import Case, kube, namespace_, run
from test_policies import release as helm_release

from components.gateway_objects import PRIVILEGED_PORT_SHIFT, PROXY_LABELS
from components.gpu_operator import DCGM_EXPORTER_LABELS, DCGM_EXPORTER_PORT
from components.network_policies import FROM_ANYWHERE, Allow, Peer
from policies.pack.network import denies_all_ingress
from policies.pack.record import Registration

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Stands for Prometheus, in a namespace this program does not create.
PROMETHEUS_NAMESPACE = "monitoring"
STATEFULSET_POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


@dataclass(frozen=True)
class Pod:
    cluster: str
    namespace: str
    labels: Mapping[str, str]
    # Container port numbers by name (unnamed ports under their number).
    ports: Mapping[str, int]
    where: str


@dataclass(frozen=True)
class Caller:
    """Who opens a connection: pods with `labels` in `namespace`, or (namespace None) something outside the pod
    network: the kube-apiserver calling a webhook, a node, a client of a LoadBalancer."""

    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.namespace}/{dict(self.labels)}" if self.namespace else "outside the pod network"


OUTSIDE = Caller(None)


@dataclass(frozen=True)
class Policy:
    cluster: str
    namespace: str
    name: str
    spec: Mapping[str, Any]


# ----------------------------------------------------------------------------------------------------------
# What the plan and the renders hold
# ----------------------------------------------------------------------------------------------------------


def _cluster(plan: Plan, registration: Registration) -> str:
    providers = {r.urn: r for r in plan.registrations if r.type.startswith("pulumi:providers:")}
    provider = providers.get(registration.provider)
    return provider.name.removesuffix("-k8s") if provider else "default"


def policies_of(plan: Plan) -> list[Policy]:
    found = []
    for registration in plan.of_type(NETWORK_POLICY):
        inputs = plan.inputs(registration)
        found.append(
            Policy(
                _cluster(plan, registration),
                inputs["metadata"]["namespace"],
                inputs["metadata"]["name"],
                inputs["spec"],
            )
        )
    return found


def namespaces_of(plan: Plan) -> list[tuple[str, str]]:
    return [(_cluster(plan, r), plan.inputs(r)["metadata"]["name"]) for r in plan.of_type(NAMESPACE)]


def custom_objects(plan: Plan, kind: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for registration in plan.registrations:
        if registration.type.endswith(f":{kind}") and registration.type.startswith("kubernetes:"):
            yield _cluster(plan, registration), plan.inputs(registration)


def rendered_objects(stack: str) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(cluster, namespace, release, object) of every rendered release."""
    for rendered in rendered_of(stack).rendered:
        for obj in rendered.objects:
            namespace = (obj.get("metadata") or {}).get("namespace") or rendered.release.namespace
            yield rendered.release.cluster, namespace, rendered.release.name, obj


def _pod_of(cluster: str, namespace: str, where: str, template_labels: Mapping[str, str], spec: Any) -> Pod:
    ports: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            ports[str(port.get("name") or port["containerPort"])] = port["containerPort"]
    return Pod(cluster, namespace, dict(template_labels), ports, where)


def pods_of(plan: Plan) -> list[Pod]:
    """Pods the charts render, and those controllers create at run time from what the plan declares."""
    stack = plan.evaluation.stack
    pods = []
    for cluster, namespace, release, obj in rendered_objects(stack):
        for where, spec in pod_specs(obj):
            template = (obj.get("spec") or {}).get("template") or ((obj.get("spec") or {}).get("jobTemplate") or {})
            labels = (template.get("metadata") or {}).get("labels") or (obj.get("metadata") or {}).get("labels") or {}
            pods.append(_pod_of(cluster, namespace, f"{release}: {where}", labels, spec))
    # Envoy Gateway's proxies, one Deployment per Gateway, listening on each listener port (shifted below 1024).
    for cluster, gateway in custom_objects(plan, "Gateway"):
        namespace = gateway["metadata"]["namespace"]
        labels = {
            **PROXY_LABELS,
            "gateway.envoyproxy.io/owning-gateway-name": gateway["metadata"]["name"],
            "gateway.envoyproxy.io/owning-gateway-namespace": namespace,
        }
        ports = {
            str(listener["port"]): listener["port"] + (PRIVILEGED_PORT_SHIFT if listener["port"] < 1024 else 0)
            for listener in gateway["spec"]["listeners"]
        }
        pods.append(Pod(cluster, namespace, labels, ports, f"envoy proxy of Gateway {gateway['metadata']['name']}"))
    # The GPU Operator's DCGM exporter DaemonSet, created by the operator.
    for cluster, namespace in namespaces_of(plan):
        if namespace == "gpu-operator":
            ports = {"metrics": DCGM_EXPORTER_PORT}
            pods.append(Pod(cluster, namespace, dict(DCGM_EXPORTER_LABELS), ports, "DCGM exporter (operator)"))
    return pods


def ngc_only_namespace(plan: Plan) -> tuple[str, str]:
    """The namespace of the release whose chart is only on NGC (not rendered here): NeMo's."""
    cluster, release = NGC_ONLY[plan.evaluation.stack].split("/")
    return cluster, plan.inputs(plan.helm_release(release))["namespace"]


def namespace_of(plan: Plan, component: str) -> str:
    return str(plan.outputs[component]["namespace"])


# ----------------------------------------------------------------------------------------------------------
# NetworkPolicy semantics (networking.k8s.io/v1)
# ----------------------------------------------------------------------------------------------------------


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    selector = selector or {}
    assert not selector.get("matchExpressions"), "this check understands matchLabels only"
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def _peer_admits(peer: Mapping[str, Any], policy_namespace: str, caller: Caller) -> bool:
    # Cilium matches an ipBlock only against addresses outside the cluster's identities (cilium/cilium#20550); the
    # policies here never use one.
    assert "ipBlock" not in peer
    if caller.namespace is None:
        return False
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        in_namespace = caller.namespace == policy_namespace
    else:
        in_namespace = selects(namespace_selector, {NAMESPACE_NAME_LABEL: caller.namespace})
    return in_namespace and selects(peer.get("podSelector"), caller.labels)


def _port_admits(rule: Mapping[str, Any], pod: Pod, port: int) -> bool:
    ports = rule.get("ports") or []
    if not ports:
        return True
    for entry in ports:
        assert entry.get("protocol", "TCP") == "TCP"
        number = entry.get("port")
        if isinstance(number, str):
            number = pod.ports.get(number)
        if number == port:
            return True
    return False


def admits(policies: list[Policy], pod: Pod, port: int, caller: Caller) -> bool:
    """Whether `caller` may connect to `pod` on container `port`."""
    selecting = [
        p
        for p in policies
        if p.cluster == pod.cluster
        and p.namespace == pod.namespace
        and "Ingress" in (p.spec.get("policyTypes") or ["Ingress"])
        and selects(p.spec.get("podSelector"), pod.labels)
    ]
    if not selecting:
        return True
    return any(
        _port_admits(rule, pod, port)
        and (not rule.get("from") or any(_peer_admits(peer, p.namespace, caller) for peer in rule["from"]))
        for p in selecting
        for rule in p.spec.get("ingress") or []
    )


# ----------------------------------------------------------------------------------------------------------
# Services and their pods
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """A Service port and the pods behind it, each with the container port the Service targets."""

    what: str
    targets: list[tuple[Pod, int]]


def _target(pod: Pod, target_port: Any) -> int:
    if isinstance(target_port, int):
        return target_port
    assert str(target_port) in pod.ports, f"{pod.where} has no port named {target_port!r}"
    return pod.ports[str(target_port)]


def rendered_services(stack: str) -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    for cluster, namespace, release, obj in rendered_objects(stack):
        if obj.get("kind") == "Service":
            yield cluster, namespace, release, obj


def service_backend(plan: Plan, pods: list[Pod], cluster: str, namespace: str, name: str, port: int) -> Backend:
    """The pods behind Service `namespace/name` at `port`. The NeMo chart is not rendered here: its Services are
    taken to select pods whose labels nothing may assume, listening on the Service's port."""
    for svc_cluster, svc_namespace, _, service in rendered_services(plan.evaluation.stack):
        if (svc_cluster, svc_namespace, service["metadata"]["name"]) != (cluster, namespace, name):
            continue
        spec = service["spec"]
        entry = next(p for p in spec["ports"] if p["port"] == port)
        # The StatefulSet controller adds the pod-name label to each pod; templates do not carry it.
        selector = {k: v for k, v in spec["selector"].items() if k != STATEFULSET_POD_NAME_LABEL}
        selected = [
            p
            for p in pods
            if (p.cluster, p.namespace) == (cluster, namespace) and selects({"matchLabels": selector}, p.labels)
        ]
        assert selected, f"Service {namespace}/{name} selects no rendered pod"
        target_port = entry.get("targetPort", port)
        return Backend(f"{namespace}/{name}:{port}", [(pod, _target(pod, target_port)) for pod in selected])
    assert (cluster, namespace) == ngc_only_namespace(plan), f"no rendered Service {namespace}/{name} on {cluster}"
    unknown = Pod(cluster, namespace, {}, {}, f"{name} (NGC-only chart)")
    return Backend(f"{namespace}/{name}:{port}", [(unknown, port)])


def assert_admitted(plan: Plan, backend: Backend, caller: Caller) -> None:
    policies = policies_of(plan)
    for pod, port in backend.targets:
        assert admits(policies, pod, port, caller), (
            f"{plan.evaluation.stack}: {caller} cannot reach {backend.what} ({pod.where}, port {port})"
        )


# ----------------------------------------------------------------------------------------------------------
# Every namespace: default deny, ingress only
# ----------------------------------------------------------------------------------------------------------


def test_every_namespace_the_stack_creates_denies_ingress_by_default(any_stack: Plan) -> None:
    denied = {(p.cluster, p.namespace) for p in policies_of(any_stack) if denies_all_ingress({"spec": p.spec})}
    missing = [ns for ns in namespaces_of(any_stack) if ns not in denied]
    assert namespaces_of(any_stack) and not missing, f"namespaces without default-deny ingress: {missing}"


def test_policies_isolate_ingress_only(any_stack: Plan) -> None:
    """An Egress policy type would isolate the pods for egress and, with only DNS allowed, cut NGC downloads, Entra
    tokens, Azure Blob and the kube-apiserver; egress (DNS included) stays open."""
    for policy in policies_of(any_stack):
        assert policy.spec.get("policyTypes") == ["Ingress"] and "egress" not in policy.spec, policy


def test_every_policy_lives_in_a_namespace_the_stack_creates(any_stack: Plan) -> None:
    created = set(namespaces_of(any_stack))
    assert {(p.cluster, p.namespace) for p in policies_of(any_stack)} <= created


# ----------------------------------------------------------------------------------------------------------
# Callers: routes, webhooks, the design's in-cluster paths, every Service, every scrape target
# ----------------------------------------------------------------------------------------------------------


def _route_targets(
    plan: Plan, cluster: str, route_namespace: str, ref: Mapping[str, Any]
) -> list[tuple[str, str, int]]:
    """(namespace, Service, port) a backendRef reaches: a Service, or an Envoy Gateway Backend whose endpoints are
    in-cluster Service names (`<service>.<namespace>.svc...`)."""
    namespace = ref.get("namespace", route_namespace)
    if ref.get("kind", "Service") == "Service":
        return [(namespace, ref["name"], ref["port"])]
    assert ref["kind"] == "Backend", ref
    backend = next(
        obj
        for backend_cluster, obj in custom_objects(plan, "Backend")
        if backend_cluster == cluster
        and (obj["metadata"]["namespace"], obj["metadata"]["name"]) == (namespace, ref["name"])
    )
    targets = []
    for endpoint in backend["spec"]["endpoints"]:
        service, service_namespace, svc = endpoint["fqdn"]["hostname"].split(".")[:3]
        assert svc == "svc", f"Backend {ref['name']} reaches {endpoint}, not an in-cluster Service"
        targets.append((service_namespace, service, endpoint["fqdn"]["port"]))
    return targets


def test_every_route_backend_admits_its_gateways_proxies(any_stack: Plan) -> None:
    pods = pods_of(any_stack)
    routes = list(custom_objects(any_stack, "HTTPRoute"))
    assert routes
    for cluster, route in routes:
        route_namespace = route["metadata"]["namespace"]
        for parent in route["spec"]["parentRefs"]:
            proxy = Caller(
                parent.get("namespace", route_namespace),
                {**PROXY_LABELS, "gateway.envoyproxy.io/owning-gateway-name": parent["name"]},
            )
            for rule in route["spec"]["rules"]:
                for ref in rule["backendRefs"]:
                    for namespace, name, port in _route_targets(any_stack, cluster, route_namespace, ref):
                        backend = service_backend(any_stack, pods, cluster, namespace, name, port)
                        assert_admitted(any_stack, backend, proxy)


def test_gateway_proxies_admit_clients_from_outside(any_stack: Plan) -> None:
    policies = policies_of(any_stack)
    proxies = [p for p in pods_of(any_stack) if p.where.startswith("envoy proxy")]
    assert proxies
    for proxy in proxies:
        for port in proxy.ports.values():
            assert admits(policies, proxy, port, OUTSIDE), f"{proxy.where} refuses clients on {port}"


def test_admission_webhooks_admit_the_kube_apiserver(any_stack: Plan) -> None:
    """On AKS with Cilium the apiserver's calls arrive from outside the pod network (remote-node identity)."""
    pods = pods_of(any_stack)
    created = set(namespaces_of(any_stack))
    found = 0
    for cluster, _, _, obj in rendered_objects(any_stack.evaluation.stack):
        if obj.get("kind") not in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            continue
        for hook in obj.get("webhooks") or []:
            service = (hook.get("clientConfig") or {}).get("service")
            if not service or (cluster, service["namespace"]) not in created:
                continue
            found += 1
            backend = service_backend(
                any_stack, pods, cluster, service["namespace"], service["name"], service.get("port", 443)
            )
            assert_admitted(any_stack, backend, OUTSIDE)
    assert found


def _served_service(plan: Plan, pods: list[Pod], url: str) -> Backend:
    host, port = url.split("//", 1)[1].split(":")
    name, namespace = host.split(".")[:2]
    cluster = next(c for c, ns in namespaces_of(plan) if ns == namespace)
    return service_backend(plan, pods, cluster, namespace, name, int(port.split("/")[0]))


def test_nim_reaches_the_entity_store(any_stack: Plan) -> None:
    pods = pods_of(any_stack)
    nim_namespace = namespace_of(any_stack, "nim")
    nim_pods = [p for p in pods if p.namespace == nim_namespace]
    assert nim_pods
    entity_store = _served_service(any_stack, pods, any_stack.outputs["nemo"]["serviceUrls"]["entity-store"])
    for nim in nim_pods:
        assert_admitted(any_stack, entity_store, Caller(nim.namespace, nim.labels))


def test_nemo_services_reach_nim_and_each_other(any_stack: Plan) -> None:
    """Guardrails, the Evaluator and the NIM proxy call NIM; the services call each other, their databases and the
    jobs they start, in the NeMo namespace."""
    pods = pods_of(any_stack)
    nemo = Caller(namespace_of(any_stack, "nemo"))
    for model in any_stack.outputs["nim"]["models"]:
        assert_admitted(any_stack, _served_service(any_stack, pods, model["url"]), nemo)
    for url in any_stack.outputs["nemo"]["serviceUrls"].values():
        assert_admitted(any_stack, _served_service(any_stack, pods, url), nemo)


def test_workflow_pods_reach_mlflow(any_stack: Plan) -> None:
    pods = pods_of(any_stack)
    pipelines = Caller(str(any_stack.outputs["managementCluster"]["pipelinesNamespace"]))
    tracking = _served_service(any_stack, pods, any_stack.outputs["managementCluster"]["mlflowTrackingUri"])
    assert_admitted(any_stack, tracking, pipelines)


def test_workflow_pods_admit_no_one(any_stack: Plan) -> None:
    """Workflow steps talk to the kube-apiserver and out through the gateway; nothing connects to them."""
    namespace = str(any_stack.outputs["managementCluster"]["pipelinesNamespace"])
    assert {p.name for p in policies_of(any_stack) if p.namespace == namespace} == {"default-deny-ingress"}


# Who calls each rendered Service (by namespace, then Service name pattern), beyond webhooks and metrics scrapes,
# which other tests cover. A Service matching no pattern fails the test below: decide who calls it.
ARGOCD_POD = Caller("argocd", {"app.kubernetes.io/name": "argocd-server"})
ENVOY_PROXY = Caller("envoy-gateway-system", PROXY_LABELS)
SERVICE_CALLERS: dict[str, list[tuple[str, list[Caller]]]] = {
    # The server, controllers and repo server call the repo server and Redis (or redis-ha through HAProxy).
    "argocd": [
        (r"argocd-(repo-server|redis|redis-ha|redis-ha-haproxy|redis-ha-announce-\d)", [ARGOCD_POD]),
        # Reached by people through the UI entry (the HTTPRoute test checks that path).
        (r"argocd-server", []),
        # The ApplicationSet webhook receiver: no Git host is configured to call it.
        (r"argocd-applicationset-controller", []),
    ],
    "argo": [(r"argo-workflows-server", [])],
    "mlflow": [(r"mlflow", [Caller("llm-pipelines")])],
    # The proxies fetch their configuration (xDS) and rate-limit state from the controller.
    "envoy-gateway-system": [(r"envoy-gateway", [ENVOY_PROXY])],
    "cert-manager": [(r"cert-manager-webhook", [])],
    "volcano-system": [(r"volcano-admission-service", [])],
    "nim": [(r".*", [ENVOY_PROXY, Caller("nemo")])],
}


def _metrics_port(service: Mapping[str, Any], port: Mapping[str, Any]) -> bool:
    return "metrics" in service["metadata"]["name"] or any(
        word in str(port.get("name", "")) for word in ("metrics", "exporter", "prometheus")
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_service_admits_its_callers(stack: str) -> None:
    plan = plan_of(stack)
    pods = pods_of(plan)
    created = set(namespaces_of(plan))
    unknown = []
    for cluster, namespace, _, service in rendered_services(stack):
        if (cluster, namespace) not in created:
            continue
        name = service["metadata"]["name"]
        if all(_metrics_port(service, port) for port in service["spec"]["ports"]):
            continue
        patterns = SERVICE_CALLERS.get(namespace, [])
        callers = next((c for pattern, c in patterns if re.fullmatch(pattern, name)), None)
        if callers is None:
            unknown.append(f"{namespace}/{name}")
            continue
        for port in service["spec"]["ports"]:
            if _metrics_port(service, port):
                continue
            backend = service_backend(plan, pods, cluster, namespace, name, port["port"])
            for caller in callers:
                assert_admitted(plan, backend, caller)
    assert not unknown, f"{stack}: Services nobody is known to call (add them to SERVICE_CALLERS): {unknown}"


def test_prometheus_reaches_every_scrape_target(any_stack: Plan) -> None:
    """Where the monitoring CRDs exist, every ServiceMonitor's endpoints admit Prometheus (any namespace)."""
    stack = any_stack.evaluation.stack
    pods = pods_of(any_stack)
    created = set(namespaces_of(any_stack))
    prometheus = Caller(PROMETHEUS_NAMESPACE)
    monitors = [
        (cluster, namespace, obj)
        for cluster, namespace, _, obj in rendered_objects(stack)
        if obj.get("kind") == "ServiceMonitor"
    ]
    if not monitors:
        pytest.skip(f"{stack}: no ServiceMonitor (the Prometheus Operator CRDs are off)")
    for cluster, monitor_namespace, monitor in monitors:
        spec = monitor["spec"]
        namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor_namespace]
        for svc_cluster, namespace, _, service in rendered_services(stack):
            if svc_cluster != cluster or namespace not in namespaces or (cluster, namespace) not in created:
                continue
            if not selects(spec.get("selector"), (service["metadata"].get("labels") or {})):
                continue
            for endpoint in spec.get("endpoints") or []:
                port = next((p for p in service["spec"]["ports"] if p.get("name") == endpoint.get("port")), None)
                if port is None:
                    continue
                backend = service_backend(
                    any_stack, pods, cluster, namespace, service["metadata"]["name"], port["port"]
                )
                assert_admitted(any_stack, backend, prometheus)


# ----------------------------------------------------------------------------------------------------------
# Selectors match real pods
# ----------------------------------------------------------------------------------------------------------


def test_selectors_match_real_pods(any_stack: Plan) -> None:
    """Every non-empty podSelector, of a policy or of a peer in a named namespace, selects a rendered pod or one a
    controller creates; in the NGC-only namespace, whose pod labels are unknown here, selectors stay empty."""
    pods = pods_of(any_stack)
    ngc_only = ngc_only_namespace(any_stack)
    runtime_namespaces = {str(any_stack.outputs["managementCluster"]["pipelinesNamespace"]), ngc_only[1]}

    def matched(cluster: str, namespace: str, selector: Mapping[str, Any] | None, what: str) -> None:
        if not (selector or {}).get("matchLabels"):
            return
        assert (cluster, namespace) != ngc_only, f"{what}: selects by labels in {namespace}, whose pods are unknown"
        assert any((p.cluster, p.namespace) == (cluster, namespace) and selects(selector, p.labels) for p in pods), (
            f"{what}: {selector} selects no pod in {cluster}/{namespace}"
        )

    for policy in policies_of(any_stack):
        what = f"{any_stack.evaluation.stack} {policy.cluster}/{policy.namespace}/{policy.name}"
        matched(policy.cluster, policy.namespace, policy.spec.get("podSelector"), what)
        for rule in policy.spec.get("ingress") or []:
            for peer in rule.get("from") or []:
                names = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(NAMESPACE_NAME_LABEL)
                namespace = names if "namespaceSelector" in peer else policy.namespace
                if namespace is None or (namespace in runtime_namespaces and not peer.get("podSelector")):
                    continue
                matched(policy.cluster, namespace, peer.get("podSelector"), f"{what} peer")


# ----------------------------------------------------------------------------------------------------------
# The building block and the pack's rule
# ----------------------------------------------------------------------------------------------------------


def test_an_allow_from_anywhere_must_name_its_ports() -> None:
    with pytest.raises(ValueError, match="every source"):
        Allow("everything", {}, FROM_ANYWHERE)
    Allow("webhook", {"app": "x"}, FROM_ANYWHERE, [8443])
    Allow("peers", {}, [Peer(namespace="other")])


def _network_policy(name: str, namespace: str, spec: dict[str, Any]) -> Registration:
    return kube("NetworkPolicy", "networking.k8s.io/v1", name, namespace, spec=spec)


ALLOW_ONLY = {
    "podSelector": {"matchLabels": {"app": "web"}},
    "policyTypes": ["Ingress"],
    "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
}
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress"]}


def _waiting(registration: Registration, *upstream: Registration) -> Registration:
    registration.dependencies = [r.urn for r in upstream]
    return registration


def _release_into_web(waits_for_policy: bool) -> list[Registration]:
    """Namespace `web` with a deny policy, a release into it, and a namespace of the same name on another cluster
    whose policy the release need not wait for."""
    web = namespace_("web")
    deny = _waiting(_network_policy("default-deny-ingress", "web", DENY_ALL), web)
    elsewhere = namespace_("web")
    elsewhere.urn, elsewhere.name = f"{elsewhere.urn}-other-cluster", f"{elsewhere.name}-other-cluster"
    elsewhere_deny = _waiting(_network_policy("default-deny-other-cluster", "web", DENY_ALL), elsewhere)
    # The release reaches its namespace only through another resource (as NIM does through its NGC Secrets).
    credentials = _waiting(kube("Secret", "v1", "credentials", "web"), web)
    chart = _waiting(
        helm_release("web", "web", "https://charts.example.com"), credentials, *([deny] if waits_for_policy else [])
    )
    return [web, deny, elsewhere, elsewhere_deny, credentials, chart]


POLICY_CASES = [
    Case(
        "namespaces-default-deny-ingress",
        lambda: [
            namespace_("web"),
            _network_policy("allow-web", "web", ALLOW_ONLY),
            # A deny-all in another namespace, or one that selects only some pods, does not count.
            _network_policy("default-deny-ingress", "other", DENY_ALL),
            _network_policy("deny-some", "web", {**DENY_ALL, "podSelector": {"matchLabels": {"app": "web"}}}),
        ],
        lambda: [
            namespace_("web"),
            _network_policy("allow-web", "web", ALLOW_ONLY),
            _network_policy("default-deny-ingress", "web", DENY_ALL),
        ],
    ),
    Case(
        "namespaces-default-deny-ingress",
        # An empty podSelector that still admits something is an allow-all, not a deny.
        lambda: [namespace_("web"), _network_policy("open", "web", {**DENY_ALL, "ingress": [{}]})],
        # Without policyTypes Kubernetes infers Ingress.
        lambda: [namespace_("web"), _network_policy("default-deny-ingress", "web", {"podSelector": {}})],
    ),
    Case(
        "releases-wait-for-network-policies",
        lambda: _release_into_web(waits_for_policy=False),
        lambda: _release_into_web(waits_for_policy=True),
    ),
]


@pytest.mark.parametrize("case", POLICY_CASES, ids=lambda case: case.policy)
def test_network_rule_reports_the_violating_case(case: Case) -> None:
    found = [v for v in run(case.violating(), [case.policy]) if v.policy == case.policy]
    assert found and {v.enforcement for v in found} == {"mandatory"}
    assert all("'web'" in v.message for v in found)


@pytest.mark.parametrize("case", POLICY_CASES, ids=lambda case: case.policy)
def test_network_rule_passes_the_compliant_case(case: Case) -> None:
    assert [v for v in run(case.compliant(), [case.policy]) if v.policy == case.policy] == []


def test_the_shipped_stacks_pass_the_pack_rules(any_stack: Plan) -> None:
    assert [v for v in any_stack.verdicts if v.policy in {case.policy for case in POLICY_CASES}] == []
