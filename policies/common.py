"""Helpers shared by the rules: reading properties through CrossGuard's unknown-checking proxies,
policy config with schema defaults, the environment, Kubernetes kinds, Helm charts and image refs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"


class UnknownLeaf:
    """An unknown value carried through a derived tree (see `merged`); reading it raises as the
    engine's proxy would have."""

    def __init__(self, error: UnknownValueError) -> None:
        self.error = error


def get_path(props: Any, *path: str | int, default: Any = None) -> Any:
    """Read a nested property; a missing step gives `default` (unknown values still raise)."""
    current = props
    for step in path:
        try:
            current = current[step]
        except (KeyError, IndexError, TypeError):
            return default
        if isinstance(current, UnknownLeaf):
            raise current.error
        if current is None:
            return default
    return current


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def items_of(value: Any) -> list[Any]:
    """The items of a list property, or [] when absent or not a list."""
    return list(value) if is_list(value) else []


def strings_of(value: Any) -> list[str]:
    return [str(v) for v in items_of(value)]


def truthy(value: Any) -> bool:
    """Booleans arrive as bools from programs and as strings from provider config."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


# ------------------------------------------------------------------------------------------------------
# Policy config: the engine fills in the schema's defaults; a hand-built args bag may not, so read the
# defaults from the same schema here and both paths behave the same.
# ------------------------------------------------------------------------------------------------------


def knobs(args: Any, schema: PolicyConfigSchema) -> dict[str, Any]:
    config = args.get_config() or {}
    return {key: config.get(key, spec.get("default")) for key, spec in schema.properties.items()}


ENVIRONMENT_KNOBS: dict[str, dict[str, Any]] = {
    "environment": {
        "type": "string",
        "default": "",
        "description": "The stack's environment; empty: the `environment` stack tag, else the resources' "
        "`environment` Azure tag.",
    },
    "productionEnvironments": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["prod"],
        "description": "Environments held to production rules.",
    },
}


def environment_of(config: Mapping[str, Any], stack_tags: Mapping[str, str], tags: Any = None) -> str:
    """Which environment a check runs in: policy config, then stack tag, then the resource's Azure tags."""
    explicit = str(config.get("environment") or "")
    if explicit:
        return explicit
    if stack_tags.get("environment"):
        return str(stack_tags["environment"])
    return str(get_path(tags, "environment", default="") or "")


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
# Names: the management cluster and its pools are recognised by their logical names (`<env>-mgmt-…`).
# ------------------------------------------------------------------------------------------------------

MANAGEMENT_KNOBS: dict[str, dict[str, Any]] = {
    "managementNamePattern": {
        "type": "string",
        "default": r"(^|-)mgmt(-|$)",
        "description": "Regular expression on logical names that marks the management cluster and its pools.",
    },
}


def is_management(name: str, config: Mapping[str, Any]) -> bool:
    pattern = str(config.get("managementNamePattern") or MANAGEMENT_KNOBS["managementNamePattern"]["default"])
    return re.search(pattern, name) is not None


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


def chart_name(props: Any) -> str:
    """The chart's own name whichever way it is given: `nim-llm`, `ngc/nim-llm`,
    `oci://docker.io/envoyproxy/gateway-helm` or a packaged `…/nim-llm-1.1.2.tgz`."""
    chart = str(get_path(props, "chart", default="") or "")
    last = chart.rstrip("/").rsplit("/", 1)[-1]
    if last.endswith(".tgz"):
        last = re.sub(r"-v?\d+\.\d+\.\d+.*$", "", last.removesuffix(".tgz"))
    return last


def helm_releases(args: StackValidationArgs, chart: str) -> list[PolicyResource]:
    return [r for r in resources_of(args, HELM_RELEASE) if chart_name(r.props) == chart]


def helm_values(props: Any) -> Mapping[str, Any]:
    values = get_path(props, "values", default={})
    return values if is_mapping(values) else {}


def merged(defaults: Any, overrides: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else (lists included) replaces, and an
    explicit null removes the default."""
    if not (is_mapping(defaults) and is_mapping(overrides)):
        return overrides
    result: dict[str, Any] = dict(defaults)
    for key in overrides:
        try:
            value = overrides[key]
        except UnknownValueError as error:
            result[key] = UnknownLeaf(error)
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(defaults.get(key), value) if key in defaults else value
    return result


# ------------------------------------------------------------------------------------------------------
# Walking property trees without tripping over unknowns that a check does not need
# ------------------------------------------------------------------------------------------------------


def walk(
    node: Any, path: tuple[str, ...] = (), needed: frozenset[str] = frozenset()
) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """Yield (path, key, value) for every mapping entry below `node`. An unknown value under a key in
    `needed` raises (the check can't run during preview); other unknowns are skipped."""
    if is_mapping(node):
        for key in list(node):
            try:
                value = node[key]
            except UnknownValueError:
                if key in needed:
                    raise
                continue
            yield path, str(key), value
            yield from walk(value, (*path, str(key)), needed)
    elif is_list(node):
        for index in range(len(node)):
            try:
                value = node[index]
            except UnknownValueError:
                continue
            yield from walk(value, (*path, str(index)), needed)


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
