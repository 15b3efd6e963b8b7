"""Rules for the Kubernetes objects the program authors and the providers that carry them."""

from __future__ import annotations

import re

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs

from .common import (
    helm_values,
    image_tag_problem,
    is_kind,
    knobs,
    kube_kind,
    labels_of,
    meta_name,
    meta_namespace,
)
from .props import chart_name, get_path, is_mapping, items_of, strings_of, walk
from .rules import ADVISORY, MANDATORY, Rules, only, strings_knob
from .tokens import HELM_RELEASE, KUBERNETES_PROVIDER

RULES = Rules()


@RULES.resource("kubernetes-explicit-provider", MANDATORY)
def kubernetes_explicit_provider(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every Kubernetes resource names its cluster's explicit provider, never the default one."""
    if not args.resource_type.startswith("kubernetes:"):
        args.not_applicable("not a Kubernetes resource")
    provider = args.provider
    if provider is None or provider.name.startswith("default"):
        report_violation(
            f"Kubernetes resource {args.name!r} uses the default provider (whatever the ambient kubeconfig "
            "points at); pass the cluster's explicit provider.",
            None,
        )


@RULES.resource("kubernetes-provider-cluster-identifier", MANDATORY)
def kubernetes_provider_cluster_identifier(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Kubernetes providers set a stable clusterIdentifier."""
    only(args, "not a Kubernetes provider", KUBERNETES_PROVIDER)
    if not str(get_path(args.props, "clusterIdentifier", default="") or ""):
        report_violation(
            f"Kubernetes provider {args.name!r} has no clusterIdentifier; while its kubeconfig is unknown "
            "at preview, every object on the cluster would show as a replacement.",
            None,
        )


POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


def _namespace_level(args: ResourceValidationArgs) -> str:
    if not is_kind(args.resource_type, "", "Namespace"):
        args.not_applicable("not a Namespace")
    return str(get_path(labels_of(args.props), ENFORCE_LABEL, default="") or "")


@RULES.resource("namespace-pod-security-enforced", MANDATORY)
def namespace_pod_security_enforced(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every namespace enforces a Pod Security Standard."""
    level = _namespace_level(args)
    if level not in POD_SECURITY_LEVELS:
        report_violation(
            f"Namespace {meta_name(args.props) or args.name!r} has no valid `{ENFORCE_LABEL}` label "
            f"(got {level or 'none'!r}; one of {', '.join(POD_SECURITY_LEVELS)}).",
            None,
        )


_PRIVILEGED_SCHEMA = PolicyConfigSchema(
    properties={
        "privilegedNamespaces": strings_knob(
            ["gpu-operator", "volcano-system", "volcano-monitoring", "kube-system"],
            "Namespaces whose pods need host access (drivers, device plugins, schedulers).",
        )
    }
)


@RULES.resource("namespace-privileged-only-where-needed", ADVISORY, _PRIVILEGED_SCHEMA)
def namespace_privileged_only_where_needed(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Only the namespaces of node-level components enforce the `privileged` Pod Security level."""
    level = _namespace_level(args)
    name = meta_name(args.props) or args.name
    if level == "privileged" and name not in knobs(args, _PRIVILEGED_SCHEMA)["privilegedNamespaces"]:
        report_violation(
            f"Namespace {name!r} enforces `privileged`; only the namespaces of node-level components "
            "(policy config privilegedNamespaces) should.",
            None,
        )


def authored_image_problems(spec: object) -> list[str]:
    """Images named in an authored object (containers of any kind, Argo templates, operator CRs)."""
    problems = []
    for path, key, value in walk(spec, needed=frozenset({"image", "tag", "repository"})):
        if key != "image":
            continue
        where = ".".join((*path, key))
        if isinstance(value, str):
            problem = image_tag_problem(value)
            if problem:
                problems.append(f"{where} {value!r} {problem}")
        elif is_mapping(value) and get_path(value, "repository"):
            tag = str(get_path(value, "tag", default="") or "")
            repository = str(value["repository"])
            if "@" in repository or get_path(value, "digest"):
                continue
            if not tag:
                problems.append(f"{where} {repository!r} has no tag")
            elif tag.lower() == "latest":
                problems.append(f"{where} {repository!r} uses the `latest` tag")
    return problems


@RULES.resource("image-tags-pinned", MANDATORY)
def image_tags_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Images in authored Kubernetes objects carry a tag or digest, never `latest`."""
    if kube_kind(args.resource_type) is None:
        args.not_applicable("not an authored Kubernetes object")
    problems = authored_image_problems(args.props)
    if problems:
        report_violation(f"{args.resource_type.rsplit(':', 1)[-1]} {args.name!r}: {'; '.join(problems)}.", None)


_LOAD_BALANCER_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedServices": strings_knob(
            [], "`namespace/name` of authored Services allowed to be of type LoadBalancer."
        ),
        "gatewayCharts": strings_knob(
            ["gateway-helm"], "Charts of the gateway, whose values may ask for a LoadBalancer."
        ),
        "publicGatewayProxies": strings_knob(
            ["envoy-gateway-system/llmops-gateway-proxy"],
            "`namespace/name` of the EnvoyProxy whose Service is the gateway's public LoadBalancer.",
        ),
    }
)
# Envoy Gateway labels the Services it creates for a Gateway with the owning Gateway's name.
GATEWAY_OWNER_LABEL = "gateway.envoyproxy.io/owning-gateway-name"
# cloud-provider-azure builds a private (VNet) load balancer for a Service with exactly this annotation value.
INTERNAL_LOAD_BALANCER_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-internal"


def _internal(annotations: object) -> bool:
    return get_path(annotations, INTERNAL_LOAD_BALANCER_ANNOTATION) == "true"


@RULES.resource("no-load-balancer-services", MANDATORY, _LOAD_BALANCER_SCHEMA)
def no_load_balancer_services(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No LoadBalancer Services except the gateway's and internal (VNet-only) ones."""
    config = knobs(args, _LOAD_BALANCER_SCHEMA)
    if is_kind(args.resource_type, "", "Service"):
        if get_path(args.props, "spec", "type") != "LoadBalancer":
            return
        ident = f"{meta_namespace(args.props)}/{meta_name(args.props)}"
        if ident in config["allowedServices"] or GATEWAY_OWNER_LABEL in labels_of(args.props):
            return
        if _internal(get_path(args.props, "metadata", "annotations")):
            return
        report_violation(f"Service {ident!r} is of type LoadBalancer; traffic enters through the gateway only.", None)
    elif is_kind(args.resource_type, "gateway.envoyproxy.io", "EnvoyProxy"):
        # Envoy Gateway creates each Gateway's Service from its EnvoyProxy; `type` defaults to LoadBalancer.
        service = get_path(args.props, "spec", "provider", "kubernetes", "envoyService", default={})
        if get_path(service, "type", default="LoadBalancer") != "LoadBalancer":
            return
        ident = f"{meta_namespace(args.props)}/{meta_name(args.props)}"
        if ident in config["publicGatewayProxies"] or _internal(get_path(service, "annotations")):
            return
        report_violation(
            f"EnvoyProxy {ident!r} asks for a public LoadBalancer; only the gateway's is public, any other entry must "
            f'be internal ({INTERNAL_LOAD_BALANCER_ANNOTATION}: "true").',
            None,
        )
    elif args.resource_type == HELM_RELEASE:
        if chart_name(args.props) in config["gatewayCharts"]:
            return
        exposed = [
            ".".join((*path, key, "type"))
            for path, key, value in walk(helm_values(args.props))
            if re.fullmatch(r"(?i).*service", key) and get_path(value, "type") == "LoadBalancer"
        ]
        if exposed:
            report_violation(
                f"Helm release {args.name!r} asks for a LoadBalancer Service ({', '.join(exposed)}); traffic "
                "enters through the gateway only.",
                None,
            )
    else:
        args.not_applicable("not a Service, EnvoyProxy or Helm release")


@RULES.resource("rbac-no-wildcards", MANDATORY)
def rbac_no_wildcards(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Authored Roles and ClusterRoles grant no wildcard verbs or resources."""
    if not is_kind(args.resource_type, "rbac.authorization.k8s.io", "Role", "ClusterRole"):
        args.not_applicable("not a Role or ClusterRole")
    wild = []
    for index, rule in enumerate(items_of(get_path(args.props, "rules"))):
        for field in ("verbs", "resources"):
            if "*" in strings_of(get_path(rule, field)):
                wild.append(f"rules[{index}].{field}")
    if wild:
        report_violation(
            f"{args.resource_type.rsplit(':', 1)[-1]} {meta_name(args.props) or args.name!r} grants wildcards "
            f"({', '.join(wild)}); name the verbs and resources it needs.",
            None,
        )


POLICIES = RULES.policies
