"""What a stack's deployment needs before the first `up`, derived offline from its plan (planner/preflight.py asks
the cluster and Azure whether it is there).

- Rights on each cluster: (verb, group, resource, namespace) for every Kubernetes object the program authors
  (Pulumi creates, reads, server-side-apply patches and deletes it), for every object of the rendered charts
  (`build/plan/<stack>/rendered/<cluster>/<release>.yaml`, read when present: Helm creates, reads, patches and
  deletes them) and Helm's own release records (Secrets in the release namespace: Helm's default storage driver
  gets, lists, creates, updates and deletes them).
- vCPUs per Azure quota name at max scale: planner/quota.py's `vcpu_needs`, the computation the plan's GPU quota
  comes from too.

Kinds map to REST resource names from a table, not a guess: built-in kinds from the kubernetes client's generated
API (each `create_*` operation's kind and path), custom kinds from facts/crds (`plural`, `scope`) and from the
CRDs the rendered charts install.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner.evaluate import PROJECT_DIR
from planner.render import cluster_of
from policies.pack.record import Registration
from policies.pack.tokens import HELM_RELEASE

OBJECT_VERBS = ("create", "get", "patch", "delete")
HELM_STORAGE_VERBS = ("create", "get", "list", "update", "delete")


@dataclass(frozen=True, order=True)
class Need:
    cluster: str
    verb: str
    group: str
    resource: str
    namespace: str | None  # None: cluster-wide

    @property
    def resource_label(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def label(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "(cluster-wide)"
        return f"{self.verb} {self.resource_label} {where}"


@dataclass(frozen=True)
class Resource:
    plural: str
    namespaced: bool


# ----------------------------------------------------------------------------------------------------------
# Kind -> resource
# ----------------------------------------------------------------------------------------------------------

_OPERATION = re.compile(
    r"def create_\w+?_with_http_info\(.*?\n\s+create an? (?P<kind>[A-Z]\w*)\s+# noqa"
    r".*?'(?P<path>/apis?/[^']*)', 'POST'",
    re.S,
)
_PATH = re.compile(
    r"^/(?:api|apis/(?P<group>[^/]+))/(?P<version>[^/]+)/(?P<ns>namespaces/\{namespace\}/)?(?P<plural>[a-z0-9]+)$"
)


@functools.cache
def builtin_resources() -> dict[tuple[str, str], Resource]:
    """(group, kind) -> resource for every built-in kind, from the kubernetes client's generated operations."""
    # The package's source files, read without importing it (importing the client takes seconds).
    spec = importlib.util.find_spec("kubernetes")
    assert spec is not None and spec.submodule_search_locations, "the kubernetes client is not installed"
    table: dict[tuple[str, str], Resource] = {}
    for module in sorted(Path(spec.submodule_search_locations[0], "client", "api").glob("*_api.py")):
        for match in _OPERATION.finditer(module.read_text(encoding="utf-8")):
            path = _PATH.match(match["path"])
            if path is None:  # a subresource (`pods/{name}/binding`) or a review
                continue
            table.setdefault((path["group"] or "", match["kind"]), Resource(path["plural"], bool(path["ns"])))
    return table


@functools.cache
def fact_resources(facts_dir: Path = PROJECT_DIR / "facts" / "crds") -> dict[tuple[str, str], Resource]:
    table = {}
    for path in sorted(facts_dir.glob("*.json")):
        crd = json.loads(path.read_text(encoding="utf-8"))
        table[(crd["group"], crd["kind"])] = Resource(crd["plural"], crd["scope"] == "Namespaced")
    return table


# CRDs not in facts/crds. Those a stack presumes installed (`monitoring.prometheusCrds`): Prometheus Operator's
# (prometheus-operator/prometheus-operator example/prometheus-operator-crd/monitoring.coreos.com_<plural>.yaml).
PRESUMED_CRDS = {
    ("monitoring.coreos.com", "ServiceMonitor"): Resource("servicemonitors", True),
    ("monitoring.coreos.com", "PodMonitor"): Resource("podmonitors", True),
    ("monitoring.coreos.com", "PrometheusRule"): Resource("prometheusrules", True),
    # The AKS KEDA add-on's (kedacore/keda config/crd/bases/keda.sh_scaledobjects.yaml).
    ("keda.sh", "ScaledObject"): Resource("scaledobjects", True),
    # cert-manager's chart installs these from templates/crd-cert-manager.io_<plural>.yaml; listed for when the
    # chart is not rendered (tests/test_preflight.py checks them against the reference chart).
    ("cert-manager.io", "Certificate"): Resource("certificates", True),
    ("cert-manager.io", "Issuer"): Resource("issuers", True),
    ("cert-manager.io", "ClusterIssuer"): Resource("clusterissuers", False),
}
# Pulumi's `<Kind>Patch` resources server-side-apply fields onto an object that exists: they read and patch it.
PATCH_SUFFIX = "Patch"
PATCH_VERBS = ("get", "patch")


def crd_resources(documents: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Resource]:
    table = {}
    for doc in documents:
        if doc.get("kind") == "CustomResourceDefinition":
            spec = doc.get("spec") or {}
            names = spec.get("names") or {}
            table[(spec.get("group", ""), names.get("kind", ""))] = Resource(
                names.get("plural", ""), spec.get("scope") == "Namespaced"
            )
    return table


def split_api_version(api_version: str) -> str:
    """The group of `apps/v1` (`apps`) or `v1` (the core group, "")."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


# ----------------------------------------------------------------------------------------------------------
# Rights
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ClusterNeeds:
    needs: dict[str, set[Need]]
    # "<cluster>: <kind> (<group>)" for kinds no table knows: listed, not checked.
    unmapped: set[str]
    # Releases whose rendered manifest was not found (only Helm's own needs are known for them).
    unrendered: list[str]


def _authored(registration: Registration) -> tuple[str, str, Any] | None:
    """(group, kind, namespace) of an authored object: `kubernetes:<group>/<version>:<Kind>`, `core` the core group."""
    if not registration.type.startswith("kubernetes:") or registration.type.startswith("kubernetes:helm.sh/"):
        return None
    _, api, kind = registration.type.split(":")
    if "/" not in api:
        return None  # a provider or yaml/kustomize component: its objects are registered on their own
    if kind == "CustomResource":  # the untyped form: apiVersion and kind are inputs
        api, kind = str(registration.inputs.get("apiVersion", "")), str(registration.inputs.get("kind", ""))
    group = split_api_version(api)
    metadata = registration.inputs.get("metadata") or {}
    return ("" if group == "core" else group), kind, metadata.get("namespace")


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
        if isinstance(doc, dict) and doc.get("kind"):
            yield doc


def cluster_needs(registrations: list[Registration], rendered_dir: Path | None) -> ClusterNeeds:
    by_urn = {r.urn: r for r in registrations}
    kinds = {**builtin_resources(), **PRESUMED_CRDS, **fact_resources()}
    result = ClusterNeeds({}, set(), [])
    objects: list[tuple[str, str, str, Any]] = []  # cluster, group, kind, namespace
    for r in registrations:
        cluster = cluster_of(r, by_urn)
        if r.type == HELM_RELEASE:
            name, namespace = str(r.inputs.get("name") or r.name), str(r.inputs.get("namespace") or "default")
            for verb in HELM_STORAGE_VERBS:
                result.needs.setdefault(cluster, set()).add(Need(cluster, verb, "", "secrets", namespace))
            path = rendered_dir / cluster / f"{name}.yaml" if rendered_dir else None
            if path is None or not path.is_file():
                result.unrendered.append(f"{cluster}/{name}")
                continue
            documents = list(_documents(path))
            kinds.update(crd_resources(documents))
            for doc in documents:
                meta = doc.get("metadata") or {}
                objects.append(
                    (
                        cluster,
                        split_api_version(str(doc.get("apiVersion", ""))),
                        doc["kind"],
                        meta.get("namespace") or namespace,
                    )
                )
        elif (authored := _authored(r)) is not None:
            objects.append((cluster, *authored))
    for cluster, group, kind, namespace in objects:
        verbs: tuple[str, ...] = OBJECT_VERBS
        resource = kinds.get((group, kind))
        if resource is None and kind.endswith(PATCH_SUFFIX):
            resource, verbs = kinds.get((group, kind.removesuffix(PATCH_SUFFIX))), PATCH_VERBS
        if resource is None:
            result.unmapped.add(f"{cluster}: {kind} ({group or 'core'})")
            continue
        scope = (namespace if isinstance(namespace, str) and namespace else "default") if resource.namespaced else None
        for verb in verbs:
            result.needs.setdefault(cluster, set()).add(Need(cluster, verb, group, resource.plural, scope))
    return result
