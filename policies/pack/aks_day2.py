"""Rules for AKS after the first `up`: automatic upgrades, node-image upgrades of GPU pools, Container Insights,
and workloads that KEDA scales."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, StackValidationArgs

from .gpu_sizes import GPU_SKUS
from .props import get_path, items_of, truthy
from .rules import ADVISORY, MANDATORY, Rules, only
from .tokens import AGENT_POOL, HELM_RELEASE, MANAGED_CLUSTER, SCALED_OBJECT

RULES = Rules()

# AKS auto-upgrade channels that move the cluster's Kubernetes version (`node-image` and `none` leave it alone).
VERSION_UPGRADE_CHANNELS = ("patch", "stable", "rapid")
DATA_COLLECTION_RULE = "azure-native:monitor:DataCollectionRule"
DATA_COLLECTION_RULE_ASSOCIATION = "azure-native:monitor:DataCollectionRuleAssociation"
CONTAINER_INSIGHTS_STREAM = "Microsoft-ContainerInsights-Group-Default"


def _ignored(resource: PolicyResource, *paths: str) -> bool:
    return any(path in (resource.opts.ignore_changes or []) for path in paths)


def _version_channel(cluster: PolicyResource) -> str | None:
    channel = get_path(cluster.props, "autoUpgradeProfile", "upgradeChannel")
    return str(channel) if str(channel) in VERSION_UPGRADE_CHANNELS else None


@RULES.stack("aks-upgrade-channel-ignores-versions", MANDATORY)
def aks_upgrade_channel_ignores_versions(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """An AKS cluster whose auto-upgrade channel moves its Kubernetes version (patch, stable, rapid) ignores
    kubernetesVersion, and its node pools orchestratorVersion, so no later `up` asks AKS for a downgrade."""
    channels = {
        r.urn: channel
        for r in args.resources
        if r.resource_type == MANAGED_CLUSTER and (channel := _version_channel(r)) is not None
    }
    if not channels:
        args.not_applicable("no AKS cluster with a version-moving auto-upgrade channel")
    for resource in args.resources:
        if resource.urn in channels:
            channel = channels[resource.urn]
            missing = []
            if get_path(resource.props, "kubernetesVersion") is not None and not _ignored(
                resource, "kubernetesVersion"
            ):
                missing.append("kubernetesVersion")
            for index, profile in enumerate(items_of(get_path(resource.props, "agentPoolProfiles"))):
                if get_path(profile, "orchestratorVersion") is not None and not _ignored(
                    resource,
                    "agentPoolProfiles[*].orchestratorVersion",
                    f"agentPoolProfiles[{index}].orchestratorVersion",
                ):
                    missing.append("agentPoolProfiles[*].orchestratorVersion")
                    break
        elif resource.resource_type == AGENT_POOL:
            cluster = next((d for d in resource.dependencies if d.urn in channels), None)
            if cluster is None:
                continue
            channel = channels[cluster.urn]
            has_version = get_path(resource.props, "orchestratorVersion") is not None
            missing = ["orchestratorVersion"] if has_version and not _ignored(resource, "orchestratorVersion") else []
        else:
            continue
        if missing:
            report_violation(
                f"{resource.name!r} belongs to an AKS cluster on the {channel!r} auto-upgrade channel, which moves the "
                f"Kubernetes version ahead of the stack, but does not ignore {', '.join(missing)}: the next `up` "
                "would send the old version back and AKS refuses downgrades. Add it to ignore_changes (or set the "
                "channel to none or node-image and upgrade through the stack).",
                resource.urn,
            )


def _surge_is_zero(value: Any) -> bool:
    return value is not None and str(value).strip().rstrip("%") == "0"


@RULES.resource("aks-gpu-pools-upgrade-without-surge", ADVISORY)
def aks_gpu_pools_upgrade_without_surge(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Regular GPU node pools upgrade without surge nodes (upgradeSettings.maxSurge 0, maxUnavailable at least 1): a
    surge node is one more GPU VM, which needs spare GPU quota."""
    only(args, "not an AKS node pool", AGENT_POOL)
    if str(get_path(args.props, "vmSize", default="")) not in GPU_SKUS:
        args.not_applicable("not a GPU node pool")
    if get_path(args.props, "scaleSetPriority") == "Spot":
        args.not_applicable("AKS upgrades spot pools without surge nodes")
    surge = get_path(args.props, "upgradeSettings", "maxSurge")
    unavailable = get_path(args.props, "upgradeSettings", "maxUnavailable")
    if not _surge_is_zero(surge):
        report_violation(
            f"GPU pool {args.name!r} surges during upgrades (upgradeSettings.maxSurge {surge or 'unset: 10%'}): "
            "each surge node is one more GPU VM, and without spare GPU quota the node-image upgrade fails. Set "
            "maxSurge 0 and maxUnavailable 1.",
            None,
        )
    elif _surge_is_zero(unavailable) or unavailable is None:
        report_violation(
            f"GPU pool {args.name!r} has maxSurge 0 but no maxUnavailable: the upgrade cannot replace any node.",
            None,
        )


def _container_insights_rule(rule: PolicyResource) -> bool:
    extensions = items_of(get_path(rule.props, "dataSources", "extensions"))
    return any(
        get_path(e, "extensionName") == "ContainerInsights"
        and CONTAINER_INSIGHTS_STREAM in [str(s) for s in items_of(get_path(e, "streams"))]
        for e in extensions
    )


@RULES.stack("aks-container-insights-has-data-collection-rule", MANDATORY)
def aks_container_insights_has_dcr(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """An AKS cluster with Container Insights on AAD auth (omsagent, useAADAuth) has a data collection rule with the
    ContainerInsights extension associated with it; without one the agent collects nothing."""
    monitored = [
        r
        for r in args.resources
        if r.resource_type == MANAGED_CLUSTER
        and truthy(get_path(r.props, "addonProfiles", "omsagent", "enabled", default=False))
        and truthy(get_path(r.props, "addonProfiles", "omsagent", "config", "useAADAuth", default=False))
    ]
    if not monitored:
        args.not_applicable("no AKS cluster with Container Insights on AAD auth")
    covered: set[str] = set()
    for association in args.resources:
        if association.resource_type != DATA_COLLECTION_RULE_ASSOCIATION:
            continue
        rules = [d for d in association.dependencies if d.resource_type == DATA_COLLECTION_RULE]
        if any(_container_insights_rule(rule) for rule in rules):
            covered.update(d.urn for d in association.dependencies if d.resource_type == MANAGED_CLUSTER)
    for cluster in monitored:
        if cluster.urn not in covered:
            report_violation(
                f"Cluster {cluster.name!r} runs Container Insights with AAD auth but no data collection rule with the "
                f"ContainerInsights extension ({CONTAINER_INSIGHTS_STREAM}) is associated with it: the Azure "
                "Monitor agent collects nothing. Add a DataCollectionRule and a DataCollectionRuleAssociation "
                "scoped to the cluster.",
                cluster.urn,
            )


HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def _namespace_of(resource: PolicyResource) -> Any:
    if resource.resource_type == HELM_RELEASE:
        return get_path(resource.props, "namespace")
    return get_path(resource.props, "metadata", "namespace")


@RULES.stack("keda-scaled-workloads-have-no-other-hpa", MANDATORY)
def keda_scaled_workloads_have_no_other_hpa(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A workload that a KEDA ScaledObject scales has no other HorizontalPodAutoscaler (a chart's `autoscaling` or an
    authored one): KEDA runs its own, and two autoscalers fight over the replica count."""
    scaled = {
        (r.provider.urn if r.provider else "", _namespace_of(r), get_path(r.props, "spec", "scaleTargetRef", "name")): r
        for r in args.resources
        if r.resource_type == SCALED_OBJECT
    }
    if not scaled:
        args.not_applicable("no KEDA ScaledObject")
    for resource in args.resources:
        provider = resource.provider.urn if resource.provider else ""
        if resource.resource_type == HELM_RELEASE:
            # Charts name their workload after the release by the common convention (nim-llm: `.Release.Name`).
            target = get_path(resource.props, "name")
            autoscaled = truthy(get_path(resource.props, "values", "autoscaling", "enabled", default=False))
        elif resource.resource_type == HPA:
            target = get_path(resource.props, "spec", "scaleTargetRef", "name")
            autoscaled = True
        else:
            continue
        owner = scaled.get((provider, _namespace_of(resource), target))
        if owner is not None and autoscaled:
            report_violation(
                f"{resource.name!r} runs a HorizontalPodAutoscaler on {target!r}, which the KEDA ScaledObject "
                f"{owner.name!r} scales too: KEDA runs its own HPA and the two fight over the replica count. Turn "
                "the other autoscaler off (a chart's autoscaling.enabled: false).",
                resource.urn,
            )


POLICIES = RULES.policies
