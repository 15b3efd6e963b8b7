"""Helpers shared by the rules: policy config with schema defaults, the environment, the management
cluster's names, Kubernetes kinds, Helm releases and image references."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ResourceValidationArgs, StackValidationArgs

from .props import chart_name, get_path, is_mapping
from .rules import knob, strings_knob
from .tokens import HELM_RELEASE

# ------------------------------------------------------------------------------------------------------
# Policy config: the engine fills in the schema's defaults; a hand-built args bag may not, so read the
# defaults from the same schema here and both paths behave the same.
# ------------------------------------------------------------------------------------------------------


def knobs(args: Any, schema: PolicyConfigSchema) -> dict[str, Any]:
    config = args.get_config() or {}
    return {key: config.get(key, spec.get("default")) for key, spec in schema.properties.items()}


ENVIRONMENT_KNOBS: dict[str, dict[str, Any]] = {
    "environment": knob(
        "string",
        "",
        "The stack's environment; empty: the `environment` stack tag, else the resources' `environment` Azure tag.",
    ),
    "productionEnvironments": strings_knob(["prod"], "Environments held to production rules."),
}


def environment_of(config: Mapping[str, Any], stack_tags: Mapping[str, str], tags: Any = None) -> str:
    """Which environment a check runs in: policy config, then stack tag, then the resource's Azure tags."""
    explicit = str(config.get("environment") or "")
    if explicit:
        return explicit
    if stack_tags.get("environment"):
        return str(stack_tags["environment"])
    return str(get_path(tags, "environment", default="") or "")


def resource_environment(args: ResourceValidationArgs, config: Mapping[str, Any]) -> str:
    """The environment of the resource under check (policy config, stack tag, then its Azure tags)."""
    return environment_of(config, args.stack_tags, get_path(args.props, "tags"))


def stack_environment(args: StackValidationArgs, config: Mapping[str, Any]) -> str:
    """The environment of a whole stack; with no config or stack tag, the Azure `environment` tags
    (any production value wins, so a mixed stack is held to production rules)."""
    found = environment_of(config, args.stack_tags)
    if found:
        return found
    production = set(config.get("productionEnvironments") or [])
    seen: list[str] = []
    for resource in args.resources:
        if not resource.resource_type.startswith("azure-native:"):
            continue
        value = str(get_path(resource.props, "tags", "environment", default="") or "")
        if value:
            seen.append(value)
    for value in seen:
        if value in production:
            return value
    return seen[0] if seen else ""


# ------------------------------------------------------------------------------------------------------
# Names and addresses: the management cluster and its pools are recognised by their logical names
# (`<env>-mgmt-…`); an address range of prefix length 0 admits everyone.
# ------------------------------------------------------------------------------------------------------

MANAGEMENT_KNOBS: dict[str, dict[str, Any]] = {
    "managementNamePattern": knob(
        "string",
        r"(^|-)mgmt(-|$)",
        "Regular expression on logical names that marks the management cluster and its pools.",
    ),
}


def is_management(name: str, config: Mapping[str, Any]) -> bool:
    pattern = str(config.get("managementNamePattern") or MANAGEMENT_KNOBS["managementNamePattern"]["default"])
    return re.search(pattern, name) is not None


def open_range(cidr: str) -> bool:
    """A CIDR that admits every address (`0.0.0.0/0`, `::/0`)."""
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------------------
# Kubernetes objects
# ------------------------------------------------------------------------------------------------------


def kube_kind(resource_type: str) -> tuple[str, str] | None:
    """(API group, kind) of a Kubernetes resource type token, e.g. ("argoproj.io", "WorkflowTemplate");
    None for anything else (Helm releases, providers, patches and lists included)."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or parts[1] == "helm.sh/v3":
        return None
    group_version, kind = parts[1], parts[2]
    if kind.endswith(("Patch", "List")):
        return None
    group = group_version.rsplit("/", 1)[0] if "/" in group_version else group_version
    return ("" if group == "core" else group), kind


def is_kind(resource_type: str, group: str, *kinds: str) -> bool:
    found = kube_kind(resource_type)
    return found is not None and found[0] == group and found[1] in kinds


def meta_name(props: Any) -> str:
    return str(get_path(props, "metadata", "name", default="") or "")


def meta_namespace(props: Any, default: str = "default") -> str:
    return str(get_path(props, "metadata", "namespace", default="") or default)


def labels_of(props: Any) -> Mapping[str, Any]:
    labels = get_path(props, "metadata", "labels", default={})
    return labels if is_mapping(labels) else {}


def resources_of(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


def kube_resources_of(args: StackValidationArgs, group: str, *kinds: str) -> list[PolicyResource]:
    return [r for r in args.resources if is_kind(r.resource_type, group, *kinds)]


# ------------------------------------------------------------------------------------------------------
# Helm releases
# ------------------------------------------------------------------------------------------------------


def helm_releases(args: StackValidationArgs, chart: str) -> list[PolicyResource]:
    return [r for r in resources_of(args, HELM_RELEASE) if chart_name(r.props) == chart]


def helm_values(props: Any) -> Mapping[str, Any]:
    values = get_path(props, "values", default={})
    return values if is_mapping(values) else {}


# ------------------------------------------------------------------------------------------------------
# Container images
# ------------------------------------------------------------------------------------------------------


def image_tag_problem(reference: str) -> str | None:
    """Why an image reference is not pinned, or None. A digest pins; so does any tag but `latest`.
    References Argo or Helm substitute at run time (`{{…}}`) are judged where they are defined."""
    if "{{" in reference or "$(" in reference:
        return None
    if "@sha256:" in reference or "@sha512:" in reference:
        return None
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag"
    if last.rsplit(":", 1)[1].lower() == "latest":
        return "uses the `latest` tag"
    return None
