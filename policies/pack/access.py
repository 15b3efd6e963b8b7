"""Rules for the access paths into the clusters: the deploying identity holds a data-plane role on every AKS cluster
before anything is applied there, and ArgoCD's fixed egress is what the GPU apiserver passthrough admits.

Both are about wiring between resources, so they read dependencies: at preview the ids and addresses involved are
still unknown, while the edges that will carry them are already there.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ReportViolation, StackValidationArgs

from .common import MANAGEMENT_KNOBS, is_management, knobs, kube_resources_of, meta_namespace, resources_of
from .gateway import ENVOY_GATEWAY, GATEWAY_API, allowlist_cidrs
from .props import get_path, items_of
from .rules import MANDATORY, Rules
from .tokens import KUBERNETES_PROVIDER, MANAGED_CLUSTER

RULES = Rules()

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
PUBLIC_IP_PREFIX = "azure-native:network:PublicIPPrefix"
PUBLIC_IP_ADDRESS = "azure-native:network:PublicIPAddress"
# Built-in role "Azure Kubernetes Service RBAC Cluster Admin".
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"


def _feeds(resource: PolicyResource, source: PolicyResource, prop: str | None = None) -> bool:
    """Whether `source` reaches `resource` (through property `prop` when given and recorded)."""
    if prop is not None and prop in resource.property_dependencies:
        return any(d.urn == source.urn for d in resource.property_dependencies[prop])
    return any(d.urn == source.urn for d in resource.dependencies)


def _cluster_admin_assignments(args: StackValidationArgs, cluster: PolicyResource) -> list[PolicyResource]:
    found = []
    for assignment in resources_of(args, ROLE_ASSIGNMENT):
        role = str(get_path(assignment.props, "roleDefinitionId", default="") or "")
        if not role.lower().endswith(AKS_RBAC_CLUSTER_ADMIN):
            continue
        scope = get_path(assignment.props, "scope")
        if _feeds(assignment, cluster, "scope") or (scope and scope == get_path(cluster.props, "id")):
            found.append(assignment)
    return found


@RULES.stack("aks-deployer-cluster-admin", MANDATORY)
def aks_deployer_cluster_admin(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every AKS cluster grants the deploying identity AKS RBAC Cluster Admin, and its Kubernetes provider waits for
    it."""
    clusters = resources_of(args, MANAGED_CLUSTER)
    if not clusters:
        args.not_applicable("no AKS cluster")
    providers = resources_of(args, KUBERNETES_PROVIDER)
    for cluster in clusters:
        assignments = _cluster_admin_assignments(args, cluster)
        if not assignments:
            report_violation(
                f"Cluster {cluster.name!r} has no role assignment of AKS RBAC Cluster Admin ({AKS_RBAC_CLUSTER_ADMIN}) "
                "scoped to it: with Azure RBAC and local accounts off, the deploying identity cannot apply anything.",
                cluster.urn,
            )
            continue
        for provider in providers:
            if _feeds(provider, cluster) and not any(_feeds(provider, a) for a in assignments):
                report_violation(
                    f"Kubernetes provider {provider.name!r} of cluster {cluster.name!r} does not depend on the "
                    f"deployer's role assignment ({', '.join(a.name for a in assignments)}): its first requests "
                    "could run before the role exists and be refused.",
                    provider.urn,
                )


def _egress_of(args: StackValidationArgs, cluster: PolicyResource) -> list[PolicyResource]:
    """The public IP prefixes and addresses the cluster's load balancer sends outbound traffic from."""
    candidates = resources_of(args, PUBLIC_IP_PREFIX, PUBLIC_IP_ADDRESS)
    return [c for c in candidates if _feeds(cluster, c, "networkProfile")]


def _passthrough_listeners(args: StackValidationArgs) -> list[tuple[PolicyResource, str]]:
    found = []
    for gateway in kube_resources_of(args, GATEWAY_API, "Gateway"):
        for listener in items_of(get_path(gateway.props, "spec", "listeners")):
            if get_path(listener, "protocol") == "TLS" and get_path(listener, "tls", "mode") == "Passthrough":
                found.append((gateway, str(get_path(listener, "name", default=""))))
    return found


def _targets(policy: PolicyResource, gateway: PolicyResource, listener: str) -> bool:
    spec = get_path(policy.props, "spec", default={})
    single = get_path(spec, "targetRef")
    refs: list[Any] = ([single] if single is not None else []) + items_of(get_path(spec, "targetRefs"))
    name = get_path(gateway.props, "metadata", "name")
    return meta_namespace(policy.props) == meta_namespace(gateway.props) and any(
        get_path(ref, "kind") == "Gateway"
        and get_path(ref, "name") == name
        and str(get_path(ref, "sectionName", default="") or "") in ("", listener)
        for ref in refs
    )


def _admits(cidrs: list[str], egress: PolicyResource) -> bool:
    """Whether the allowlist covers the egress's known address (`ipPrefix`/`ipAddress` outputs)."""
    address = get_path(egress.props, "ipPrefix") or get_path(egress.props, "ipAddress")
    if not address:
        return False
    network = ipaddress.ip_network(str(address), strict=False)
    for cidr in cidrs:
        try:
            if network.subnet_of(ipaddress.ip_network(cidr, strict=False)):  # type: ignore[arg-type]
                return True
        except (TypeError, ValueError):
            continue
    return False


@RULES.stack(
    "gateway-passthrough-admits-management-egress", MANDATORY, PolicyConfigSchema(properties=dict(MANAGEMENT_KNOBS))
)
def gateway_passthrough_admits_management_egress(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The management cluster leaves from a fixed egress, and the GPU apiserver passthrough's allowlist admits it."""
    listeners = _passthrough_listeners(args)
    if not listeners:
        args.not_applicable("no TLS passthrough listener")
    config = knobs(args, PolicyConfigSchema(properties=dict(MANAGEMENT_KNOBS)))
    management = [c for c in resources_of(args, MANAGED_CLUSTER) if is_management(c.name, config)]
    if not management:
        args.not_applicable("no management cluster in this stack")
    allowlists = [
        (policy, cidrs)
        for policy in kube_resources_of(args, ENVOY_GATEWAY, "SecurityPolicy")
        if (cidrs := allowlist_cidrs(policy)) is not None
    ]
    for cluster in management:
        egress = _egress_of(args, cluster)
        if not egress:
            report_violation(
                f"Management cluster {cluster.name!r} has no fixed egress (networkProfile.loadBalancerProfile "
                "outboundIPPrefixes or outboundIPs): ArgoCD's source address is AKS-assigned, so no allowlist can "
                "name it.",
                cluster.urn,
            )
            continue
        for gateway, listener in listeners:
            policies = [(p, cidrs) for p, cidrs in allowlists if _targets(p, gateway, listener)]
            for source in egress:
                if not any(_feeds(p, source) or _admits(cidrs, source) for p, cidrs in policies):
                    report_violation(
                        f"The allowlist of TLS passthrough listener {listener!r} does not admit {source.name!r}, the "
                        f"egress of management cluster {cluster.name!r}: feed its address into the SecurityPolicy's "
                        "clientCIDRs, or ArgoCD cannot reach the GPU apiserver.",
                        gateway.urn,
                    )


POLICIES = RULES.policies
