"""Rules for the network isolation of the namespaces the program creates."""

from __future__ import annotations

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from .common import is_kind, kube_resources_of, meta_name, meta_namespace, resources_of
from .props import get_path, is_mapping, items_of, strings_of
from .rules import MANDATORY, Rules
from .tokens import HELM_RELEASE

RULES = Rules()


def denies_all_ingress(policy_props: object) -> bool:
    """A NetworkPolicy that selects every pod of its namespace for ingress and admits nothing: an empty (or absent)
    podSelector, Ingress among its policy types, no ingress rule."""
    spec = get_path(policy_props, "spec", default={})
    selector = get_path(spec, "podSelector", default={})
    selects_all = selector is None or (
        is_mapping(selector) and not get_path(selector, "matchLabels") and not get_path(selector, "matchExpressions")
    )
    types = strings_of(get_path(spec, "policyTypes"))
    # Without policyTypes, Kubernetes infers Ingress for every policy.
    isolates_ingress = not types or "Ingress" in types
    return selects_all and isolates_ingress and not items_of(get_path(spec, "ingress"))


@RULES.stack("namespaces-default-deny-ingress", MANDATORY)
def namespaces_default_deny_ingress(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every namespace the stack creates has a NetworkPolicy denying all ingress, so each allowed caller is explicit."""
    namespaces = kube_resources_of(args, "", "Namespace")
    if not namespaces:
        args.not_applicable("no Namespace")
    # Namespace names are unique across the stack's clusters (a stack policy does not see providers).
    denied = {
        meta_namespace(policy.props)
        for policy in kube_resources_of(args, "networking.k8s.io", "NetworkPolicy")
        if denies_all_ingress(policy.props)
    }
    for namespace in namespaces:
        name = meta_name(namespace.props)
        if name not in denied:
            report_violation(
                f"Namespace {name!r} has no default-deny ingress NetworkPolicy (empty podSelector, policyTypes "
                "[Ingress], no rules): every pod in it is reachable from every pod of the cluster. Create it with "
                "components/network_policies.py's NamespaceSpec.",
                namespace.urn,
            )


def _upstream(resource: PolicyResource) -> dict[str, PolicyResource]:
    """Everything `resource` waits for, directly or through what it depends on, by URN."""
    seen: dict[str, PolicyResource] = {}
    pending = list(resource.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.urn not in seen:
            seen[dependency.urn] = dependency
            pending.extend(dependency.dependencies)
    return seen


@RULES.stack("releases-wait-for-network-policies", MANDATORY)
def releases_wait_for_network_policies(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Helm releases into a namespace the stack creates wait for that namespace's NetworkPolicies, so no pod starts
    before the deny and the allows that admit its callers."""
    releases = resources_of(args, HELM_RELEASE)
    if not releases or not kube_resources_of(args, "", "Namespace"):
        args.not_applicable("no Helm release into a namespace the stack creates")
    policies = kube_resources_of(args, "networking.k8s.io", "NetworkPolicy")
    for release in releases:
        target = str(get_path(release.props, "namespace", default="") or "")
        upstream = _upstream(release)
        # The release's namespace among what it waits for (a name alone would be ambiguous across the clusters).
        namespaces = [
            r for r in upstream.values() if is_kind(r.resource_type, "", "Namespace") and meta_name(r.props) == target
        ]
        for namespace in namespaces:
            missing = sorted(
                meta_name(policy.props)
                for policy in policies
                if namespace.urn in {d.urn for d in policy.dependencies} and policy.urn not in upstream
            )
            if missing:
                report_violation(
                    f"Helm release {release.name!r} installs into namespace {target!r} without waiting for its "
                    f"NetworkPolicies {', '.join(missing)}: its pods can start before the policies that admit their "
                    "callers exist. Create the namespace with components/network_policies.py's NamespaceSpec and "
                    "depend on its `ready`.",
                    release.urn,
                )


POLICIES = RULES.policies
