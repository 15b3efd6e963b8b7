"""Rules about the stack as a whole: data safety in production and the shape of the platform."""

from __future__ import annotations

import re

from pulumi_policy import PolicyConfigSchema, PolicyResource, ReportViolation, StackValidationArgs

from .common import (
    ENVIRONMENT_KNOBS,
    MANAGEMENT_KNOBS,
    helm_releases,
    helm_values,
    is_kind,
    is_management,
    knobs,
    kube_resources_of,
    labels_of,
    meta_name,
    resources_of,
    stack_environment,
)
from .gpu import NIM_GROUP, is_nim_release, nim_values
from .props import get_path, is_mapping, truthy
from .rules import MANDATORY, Rules, knob, strings_knob
from .tokens import KUBERNETES_PROVIDER, MANAGED_CLUSTER, POSTGRES_SERVER, STORAGE_ACCOUNT

RULES = Rules()

_STATEFUL_SCHEMA = PolicyConfigSchema(
    properties={
        **ENVIRONMENT_KNOBS,
        "statefulTypes": strings_knob(
            [MANAGED_CLUSTER, STORAGE_ACCOUNT, POSTGRES_SERVER],
            "Resource types whose deletion loses data or a whole cluster.",
        ),
        "modelCachePvcPattern": knob(
            "string", "cache", "Regular expression on PersistentVolumeClaim names that marks a model cache."
        ),
    }
)
HELM_KEEP = "helm.sh/resource-policy"


def _stateful(resource: PolicyResource, config: dict) -> str | None:
    """What makes the resource stateful, or None."""
    if resource.resource_type in config["statefulTypes"]:
        return resource.resource_type.rsplit(":", 1)[-1]
    if is_kind(resource.resource_type, "", "PersistentVolumeClaim"):
        name = meta_name(resource.props) or resource.name
        if re.search(str(config["modelCachePvcPattern"]), name, re.IGNORECASE):
            return "model-cache PersistentVolumeClaim"
    if is_kind(resource.resource_type, NIM_GROUP, "NIMCache"):
        return "NIMCache"
    if is_nim_release(resource.resource_type, resource.props):
        values = nim_values(resource.props)
        persistence = get_path(values, "persistence", default={})
        if not truthy(get_path(persistence, "enabled", default=False)) or get_path(persistence, "existingClaim"):
            return None
        # StatefulSet claims outlive the release unless their retention policy says otherwise; the
        # chart's standalone claim goes with the release unless Helm is told to keep it.
        retained = truthy(get_path(values, "statefulSet", "enabled", default=True)) and (
            get_path(persistence, "stsPersistentVolumeClaimRetentionPolicy", "whenDeleted") == "Retain"
        )
        kept = get_path(persistence, "annotations", HELM_KEEP) == "keep"
        if not (retained or kept):
            return "nim-llm release owning its model-cache PVC"
    return None


@RULES.stack("stateful-resources-protected-in-prod", MANDATORY, _STATEFUL_SCHEMA)
def stateful_resources_protected_in_prod(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """In production, clusters, storage accounts, databases and model caches are protected."""
    config = knobs(args, _STATEFUL_SCHEMA)
    environment = stack_environment(args, config)
    if environment not in config["productionEnvironments"]:
        args.not_applicable(f"environment {environment or 'unknown'!r} is not production")
    for resource in args.resources:
        what = _stateful(resource, config)
        if what and not resource.opts.protect:
            report_violation(
                f"{what} {resource.name!r} is not protected in {environment}; set `protect` so no refactoring or "
                "`pulumi destroy` can delete it (a nim-llm release may instead keep its claims: StatefulSet "
                f"retention `Retain`, or the `{HELM_KEEP}: keep` annotation).",
                resource.urn,
            )


_CLUSTERS_SCHEMA = PolicyConfigSchema(
    properties={
        **MANAGEMENT_KNOBS,
        "gpuClusterNamePattern": knob(
            "string",
            r"(^|-)gpu(-|$)",
            "Regular expression on logical names of AKS clusters and Kubernetes providers that marks the GPU "
            "cluster (an existing cluster appears only as its provider).",
        ),
    }
)


def _management_clusters(args: StackValidationArgs, config: dict) -> list[PolicyResource]:
    return [r for r in resources_of(args, MANAGED_CLUSTER) if is_management(r.name, config)]


@RULES.stack("single-management-cluster", MANDATORY, _CLUSTERS_SCHEMA)
def single_management_cluster(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The stack declares exactly one management cluster."""
    config = knobs(args, _CLUSTERS_SCHEMA)
    clusters = _management_clusters(args, config)
    if len(clusters) != 1:
        names = ", ".join(c.name for c in clusters) or "none"
        report_violation(
            f"The stack declares {len(clusters)} management clusters ({names}); the platform has exactly one.", None
        )


ARGOCD_CHART = "argo-cd"
ARGOCD_SECRET_TYPE = "argocd.argoproj.io/secret-type"


@RULES.stack("gpu-cluster-registered-in-argocd", MANDATORY, _CLUSTERS_SCHEMA)
def gpu_cluster_registered_in_argocd(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """When the stack has a GPU cluster and ArgoCD, ArgoCD has a cluster Secret for it."""
    config = knobs(args, _CLUSTERS_SCHEMA)
    pattern = str(config["gpuClusterNamePattern"])
    gpu_clusters = [
        r
        for r in resources_of(args, MANAGED_CLUSTER, KUBERNETES_PROVIDER)
        if re.search(pattern, r.name) and not is_management(r.name, config)
    ]
    argocd = helm_releases(args, ARGOCD_CHART)
    if not gpu_clusters or not argocd:
        args.not_applicable("no GPU cluster, or no ArgoCD to register it with")
    secrets = [
        s for s in kube_resources_of(args, "", "Secret") if labels_of(s.props).get(ARGOCD_SECRET_TYPE) == "cluster"
    ]
    declared = [
        release
        for release in argocd
        if is_mapping(credentials := get_path(helm_values(release.props), "configs", "clusterCredentials"))
        and len(credentials) > 0
    ]
    if not secrets and not declared:
        report_violation(
            f"The GPU cluster ({gpu_clusters[0].name}) is not registered in ArgoCD: no Secret labelled "
            f"`{ARGOCD_SECRET_TYPE}: cluster` (nor argo-cd configs.clusterCredentials), so GitOps cannot "
            "deploy to it.",
            gpu_clusters[0].urn,
        )


POLICIES = RULES.policies
