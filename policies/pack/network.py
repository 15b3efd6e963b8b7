"""Rules for the network isolation of the namespaces the program creates."""

from __future__ import annotations

from pulumi_policy import ReportViolation, StackValidationArgs

from .common import kube_resources_of, meta_name, meta_namespace
from .props import get_path, is_mapping, items_of, strings_of
from .rules import MANDATORY, Rules

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
                "components/network_policies.py's ingress_policies.",
                namespace.urn,
            )


POLICIES = RULES.policies
