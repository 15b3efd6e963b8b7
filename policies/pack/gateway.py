"""Rules for the Envoy Gateway in front of the GPU cluster: every HTTP route authenticated and rate
limited, and the TLS passthrough to the kube-apiserver open only to allowlisted clients.

Envoy Gateway policies attach to a route directly or to its Gateway (optionally one listener, by
`sectionName`) and only from the target's own namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from .common import kube_resources_of, labels_of, meta_name, meta_namespace, open_range
from .props import get_path, is_mapping, items_of, strings_of
from .rules import MANDATORY, Rules

RULES = Rules()

GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"
_AUTHENTICATING_FIELDS = ("apiKeyAuth", "basicAuth", "extAuth", "jwt", "oidc", "authorization")


def _target_refs(policy: PolicyResource) -> list[Any]:
    spec = get_path(policy.props, "spec", default={})
    single = get_path(spec, "targetRef")
    return ([single] if single is not None else []) + items_of(get_path(spec, "targetRefs"))


def _selects(policy: PolicyResource, kind: str, labels: Mapping[str, Any]) -> bool:
    for selector in items_of(get_path(policy.props, "spec", "targetSelectors")):
        if get_path(selector, "kind") != kind or get_path(selector, "matchExpressions"):
            continue
        wanted = get_path(selector, "matchLabels", default={})
        if is_mapping(wanted) and wanted and all(labels.get(k) == wanted[k] for k in wanted):
            return True
    return False


def _parents(route: PolicyResource) -> list[tuple[str, str, str]]:
    """(namespace, name, sectionName) of each Gateway the route attaches to."""
    namespace = meta_namespace(route.props)
    parents = []
    for ref in items_of(get_path(route.props, "spec", "parentRefs")):
        if get_path(ref, "kind", default="Gateway") != "Gateway":
            continue
        parents.append(
            (
                str(get_path(ref, "namespace", default=namespace)),
                str(get_path(ref, "name", default="")),
                str(get_path(ref, "sectionName", default="") or ""),
            )
        )
    return parents


def _applies_to_route(policy: PolicyResource, route: PolicyResource) -> bool:
    policy_namespace = meta_namespace(policy.props)
    route_namespace = meta_namespace(route.props)
    route_name = meta_name(route.props)
    if policy_namespace == route_namespace:
        if _selects(policy, "HTTPRoute", labels_of(route.props)):
            return True
        if any(
            get_path(ref, "kind") == "HTTPRoute" and get_path(ref, "name") == route_name for ref in _target_refs(policy)
        ):
            return True
    for namespace, gateway, section in _parents(route):
        if namespace != policy_namespace:
            continue
        for ref in _target_refs(policy):
            if get_path(ref, "kind") != "Gateway" or get_path(ref, "name") != gateway:
                continue
            ref_section = str(get_path(ref, "sectionName", default="") or "")
            if not ref_section or ref_section == section:
                return True
    return False


def _authenticates(policy: PolicyResource) -> bool:
    spec = get_path(policy.props, "spec", default={})
    return any(get_path(spec, field) is not None for field in _AUTHENTICATING_FIELDS)


def _http_routes(args: StackValidationArgs) -> list[PolicyResource]:
    routes = kube_resources_of(args, GATEWAY_API, "HTTPRoute")
    if not routes:
        args.not_applicable("no HTTPRoute")
    return routes


def _report_uncovered_routes(
    args: StackValidationArgs,
    report_violation: ReportViolation,
    kind: str,
    covers: Callable[[PolicyResource], bool],
    missing: str,
) -> None:
    """Report each HTTPRoute that no Envoy Gateway policy of `kind` satisfying `covers` targets (directly
    or via the Gateway); `missing` says what the route lacks and what follows."""
    policies = [p for p in kube_resources_of(args, ENVOY_GATEWAY, kind) if covers(p)]
    uncovered = [route for route in _http_routes(args) if not any(_applies_to_route(p, route) for p in policies)]
    for route in uncovered:
        report_violation(
            f"HTTPRoute {meta_namespace(route.props)}/{meta_name(route.props)} has no {kind} {missing}", route.urn
        )


@RULES.stack("gateway-routes-authenticated", MANDATORY)
def gateway_routes_authenticated(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every gateway HTTPRoute is covered by an authenticating Envoy Gateway SecurityPolicy."""
    _report_uncovered_routes(
        args,
        report_violation,
        "SecurityPolicy",
        _authenticates,
        "(API key, JWT, OIDC, ext auth or authorization) targeting it or its Gateway; it is open to anyone who "
        "reaches the gateway.",
    )


def _rate_limits(policy: PolicyResource) -> bool:
    rate_limit = get_path(policy.props, "spec", "rateLimit", default={})
    rules = items_of(get_path(rate_limit, "local", "rules")) + items_of(get_path(rate_limit, "global", "rules"))
    return any(get_path(rule, "shadowMode") is not True for rule in rules)


@RULES.stack("gateway-routes-rate-limited", MANDATORY)
def gateway_routes_rate_limited(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every gateway HTTPRoute is rate limited by an Envoy Gateway BackendTrafficPolicy."""
    _report_uncovered_routes(
        args,
        report_violation,
        "BackendTrafficPolicy",
        _rate_limits,
        "rate limit targeting it or its Gateway; one client could saturate the GPUs behind it.",
    )


def allowlist_cidrs(policy: PolicyResource) -> list[str] | None:
    """The client CIDRs a SecurityPolicy admits when it denies everyone else; None when it does not
    restrict clients by address (default action Allow, no CIDR rule, or an Allow rule for 0.0.0.0/0)."""
    authorization = get_path(policy.props, "spec", "authorization")
    if authorization is None or get_path(authorization, "defaultAction", default="Deny") != "Deny":
        return None
    allowed: list[str] = []
    for rule in items_of(get_path(authorization, "rules")):
        if get_path(rule, "action") != "Allow":
            continue
        cidrs = strings_of(get_path(rule, "principal", "clientCIDRs"))
        if not cidrs or any(open_range(c) for c in cidrs):
            return None
        allowed += cidrs
    return allowed or None


@RULES.stack("gateway-passthrough-allowlisted", MANDATORY)
def gateway_passthrough_allowlisted(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The TLS passthrough listener (kube-apiserver) only admits allowlisted client CIDRs."""
    listeners = []
    for gateway in kube_resources_of(args, GATEWAY_API, "Gateway"):
        for listener in items_of(get_path(gateway.props, "spec", "listeners")):
            if get_path(listener, "protocol") == "TLS" and get_path(listener, "tls", "mode") == "Passthrough":
                listeners.append((gateway, str(get_path(listener, "name", default=""))))
    if not listeners:
        args.not_applicable("no TLS passthrough listener")
    policies = kube_resources_of(args, ENVOY_GATEWAY, "SecurityPolicy")
    for gateway, listener in listeners:
        namespace, name = meta_namespace(gateway.props), meta_name(gateway.props)
        covered = False
        for policy in policies:
            if meta_namespace(policy.props) != namespace or allowlist_cidrs(policy) is None:
                continue
            for ref in _target_refs(policy):
                section = str(get_path(ref, "sectionName", default="") or "")
                if get_path(ref, "kind") == "Gateway" and get_path(ref, "name") == name and section in ("", listener):
                    covered = True
        if not covered:
            report_violation(
                f"TLS passthrough listener {listener!r} of Gateway {namespace}/{name} is not allowlisted: it needs "
                "a SecurityPolicy targeting the Gateway (or that listener) whose authorization denies by "
                "default and allows only client CIDRs. The kube-apiserver is never open to all.",
                gateway.urn,
            )


POLICIES = RULES.policies
