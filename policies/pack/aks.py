"""Rules for AKS clusters and their node pools (azure-native ManagedCluster and AgentPool)."""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs

from .common import ENVIRONMENT_KNOBS, MANAGEMENT_KNOBS, is_management, knobs, open_range, resource_environment
from .gpu_sizes import is_gpu_vm_size
from .props import get_path, items_of, strings_of
from .rules import MANDATORY, Rules, only, strings_knob
from .tokens import AGENT_POOL, MANAGED_CLUSTER

RULES = Rules()


def _only_clusters(args: ResourceValidationArgs) -> None:
    only(args, "not an AKS cluster", MANAGED_CLUSTER)


@RULES.resource("aks-entra-id-rbac", MANDATORY)
def aks_entra_id_rbac(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """AKS clusters authenticate through Entra ID with Azure RBAC and have local accounts disabled."""
    _only_clusters(args)
    props = args.props
    problems = []
    if get_path(props, "enableRBAC") is False:
        problems.append("enableRBAC is false")
    if get_path(props, "aadProfile", "managed") is not True:
        problems.append("aadProfile.managed is not true (Entra ID integration)")
    if get_path(props, "aadProfile", "enableAzureRBAC") is not True:
        problems.append("aadProfile.enableAzureRBAC is not true")
    if get_path(props, "disableLocalAccounts") is not True:
        problems.append("disableLocalAccounts is not true (the static admin kubeconfig stays usable)")
    if problems:
        report_violation(f"Cluster {args.name!r}: " + "; ".join(problems) + ".", None)


@RULES.resource("aks-api-server-restricted", MANDATORY)
def aks_api_server_restricted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The AKS API server is private or restricted to authorized IP ranges."""
    _only_clusters(args)
    access = get_path(args.props, "apiServerAccessProfile", default={})
    if get_path(access, "enablePrivateCluster") is True:
        return
    ranges = strings_of(get_path(access, "authorizedIPRanges"))
    if not ranges:
        report_violation(
            f"Cluster {args.name!r} has a public API server open to the internet: set "
            "apiServerAccessProfile.authorizedIPRanges or make the cluster private.",
            None,
        )
    elif any(open_range(cidr) for cidr in ranges):
        report_violation(f"Cluster {args.name!r} authorizes every address ({', '.join(ranges)}).", None)


@RULES.resource("aks-workload-identity", MANDATORY)
def aks_workload_identity(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """AKS clusters enable the OIDC issuer and workload identity."""
    _only_clusters(args)
    missing = []
    if get_path(args.props, "oidcIssuerProfile", "enabled") is not True:
        missing.append("oidcIssuerProfile.enabled")
    if get_path(args.props, "securityProfile", "workloadIdentity", "enabled") is not True:
        missing.append("securityProfile.workloadIdentity.enabled")
    if missing:
        report_violation(
            f"Cluster {args.name!r} must enable {' and '.join(missing)}: pods reach Azure through "
            "federated workload identities, never stored credentials.",
            None,
        )


_NETWORK_POLICY_ENGINES = ("azure", "calico", "cilium")


@RULES.resource("aks-network-policy", MANDATORY)
def aks_network_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """AKS clusters run a network policy engine (Azure, Calico or Cilium)."""
    _only_clusters(args)
    engine = get_path(args.props, "networkProfile", "networkPolicy")
    if str(engine or "").lower() not in _NETWORK_POLICY_ENGINES:
        report_violation(
            f"Cluster {args.name!r} has no network policy engine (networkProfile.networkPolicy is "
            f"{engine!r}); NetworkPolicies would be silently ignored. Use one of {', '.join(_NETWORK_POLICY_ENGINES)}.",
            None,
        )


def _ignores(ignore_changes: list[str], *paths: str) -> bool:
    return any(path in ignore_changes for path in paths)


@RULES.resource("aks-autoscaled-counts-ignored", MANDATORY)
def aks_autoscaled_counts_ignored(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Autoscaled node pools leave their node count to the autoscaler (count in ignore_changes)."""
    ignored = list(args.opts.ignore_changes or [])
    if args.resource_type == MANAGED_CLUSTER:
        for index, profile in enumerate(items_of(get_path(args.props, "agentPoolProfiles"))):
            if get_path(profile, "enableAutoScaling") is not True:
                continue
            if not _ignores(ignored, "agentPoolProfiles[*].count", f"agentPoolProfiles[{index}].count"):
                report_violation(
                    f"Cluster {args.name!r}: pool {get_path(profile, 'name')!r} is autoscaled but "
                    "`agentPoolProfiles[*].count` is not in ignore_changes; every `pulumi up` would "
                    "scale it back to its initial count.",
                    None,
                )
                return
    elif args.resource_type == AGENT_POOL:
        if get_path(args.props, "enableAutoScaling") is True and not _ignores(ignored, "count"):
            report_violation(
                f"Node pool {args.name!r} is autoscaled but `count` is not in ignore_changes; every "
                "`pulumi up` would scale it back to its initial count.",
                None,
            )
    else:
        args.not_applicable("not an AKS cluster or node pool")


@RULES.resource("aks-user-pools-as-agent-pools", MANDATORY)
def aks_user_pools_as_agent_pools(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Only the system pool is declared inline; every other pool is its own AgentPool resource."""
    _only_clusters(args)
    profiles = items_of(get_path(args.props, "agentPoolProfiles"))
    inline_users = [str(get_path(p, "name")) for p in profiles if get_path(p, "mode") != "System"]
    if inline_users:
        report_violation(
            f"Cluster {args.name!r} declares user pools inline ({', '.join(inline_users)}); declare them "
            "as separate AgentPool resources (AKS rejects adding pools through agentPoolProfiles later).",
            None,
        )
    if len(profiles) > 1 and not inline_users:
        report_violation(f"Cluster {args.name!r} declares more than one system pool inline.", None)


_SKU_TIER_SCHEMA = PolicyConfigSchema(
    properties={
        **ENVIRONMENT_KNOBS,
        "productionTiers": strings_knob(
            ["Standard", "Premium"], "AKS SKU tiers with an uptime SLA, required in production."
        ),
    }
)


@RULES.resource("aks-sku-tier-in-prod", MANDATORY, _SKU_TIER_SCHEMA)
def aks_sku_tier_in_prod(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Production AKS clusters use the Standard or Premium tier."""
    _only_clusters(args)
    config = knobs(args, _SKU_TIER_SCHEMA)
    environment = resource_environment(args, config)
    if environment not in config["productionEnvironments"]:
        args.not_applicable(f"environment {environment or 'unknown'!r} is not production")
    tier = get_path(args.props, "sku", "tier", default="Free")
    if tier not in config["productionTiers"]:
        report_violation(
            f"Cluster {args.name!r} runs on the {tier!r} tier in {environment}; production needs one of "
            f"{', '.join(config['productionTiers'])} (financially backed API server SLA).",
            None,
        )


_MANAGEMENT_SCHEMA = PolicyConfigSchema(properties=dict(MANAGEMENT_KNOBS))


@RULES.resource("aks-management-cluster-cpu-only", MANDATORY, _MANAGEMENT_SCHEMA)
def aks_management_cluster_cpu_only(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The management cluster and its pools use no GPU VM sizes."""
    only(args, "not an AKS cluster or node pool", MANAGED_CLUSTER, AGENT_POOL)
    config = knobs(args, _MANAGEMENT_SCHEMA)
    if not is_management(args.name, config):
        args.not_applicable("not part of the management cluster")
    if args.resource_type == AGENT_POOL:
        sizes = [str(get_path(args.props, "vmSize", default=""))]
    else:
        sizes = [str(get_path(p, "vmSize", default="")) for p in items_of(get_path(args.props, "agentPoolProfiles"))]
    gpu_sizes = sorted({size for size in sizes if is_gpu_vm_size(size)})
    if gpu_sizes:
        report_violation(
            f"{args.name!r} belongs to the CPU-only management cluster but uses GPU VM size(s) "
            f"{', '.join(gpu_sizes)}; GPUs belong in the GPU cluster.",
            None,
        )


POLICIES = RULES.policies
