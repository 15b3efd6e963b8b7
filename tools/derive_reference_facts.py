"""Derive, from the upstream reference folder, the facts our tests check Helm values and Kubernetes objects against.

    uv run --frozen python tools/derive_reference_facts.py [--reference ../shared/reference] [--out facts]

The reference folder (charts' values.yaml, CRDs, NVIDIA's documented NeMo values) is not available to every
checkout, so the facts live in the project. Only facts are written, never upstream text: the values key paths
of each pinned chart and, for each CRD, its validation schema without descriptions.

facts/charts/<chart>-<version>.json
    keys      every mapping key path, dotted, reachable from the root through mappings. A list value is
              not descended: its items are Kubernetes objects handed to a template verbatim, or chart records
              whose shape the defaults only sample, so any list is accepted where the key exists.
    freeMaps  key paths under which any sub-key is allowed (their sub-keys are not listed in keys): maps
              whose default is `{}`, maps named like the Kubernetes objects charts pass through verbatim
              (PASS_THROUGH_NAMES), and the maps listed per chart in FREE_MAPS.
facts/crds/<group>_<kind>.json
    versions  the served versions' openAPIV3Schema as JSON Schema (draft 2020-12): `nullable` allows null,
              `x-kubernetes-int-or-string` allows integer or string, `x-kubernetes-list-type: set` requires
              unique items, boolean `exclusiveMinimum`/`exclusiveMaximum` become numeric, and every structural
              object with `properties` rejects other fields (as the API server's strict field validation
              does) unless it has `x-kubernetes-preserve-unknown-fields`. CEL rules
              (`x-kubernetes-validations`), defaults and formats are dropped: they cannot be checked offline.
facts/sources.json
    sha256 of this script, of every reference file read and of every facts file written: re-parsing all CRDs
    takes several seconds, so the tests check their freshness through these digests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference"
DEFAULT_OUT = REPO / "facts"

Json = dict[str, Any]


@dataclass(frozen=True)
class ChartSource:
    folder: str
    chart: str
    version: str
    repository: str
    derived_from: str


CHARTS = (
    ChartSource(
        "argo-cd-10.1.1",
        "argo-cd",
        "10.1.1",
        "https://argoproj.github.io/argo-helm",
        "values.yaml of argoproj/argo-helm argo-cd-10.1.1",
    ),
    ChartSource(
        "argo-workflows-1.0.18",
        "argo-workflows",
        "1.0.18",
        "https://argoproj.github.io/argo-helm",
        "values.yaml of argoproj/argo-helm argo-workflows-1.0.18",
    ),
    ChartSource(
        "gateway-helm-v1.9.0",
        "gateway-helm",
        "v1.9.0",
        "oci://docker.io/envoyproxy/gateway-helm",
        "values.tmpl.yaml of envoyproxy/gateway v1.9.0",
    ),
    ChartSource(
        "gpu-operator-v26.7.0",
        "gpu-operator",
        "v26.7.0",
        "https://helm.ngc.nvidia.com/nvidia",
        "values.yaml of NVIDIA/gpu-operator v26.7.0",
    ),
    ChartSource(
        "k8s-nim-operator-v3.1.2",
        "k8s-nim-operator",
        "v3.1.2",
        "https://helm.ngc.nvidia.com/nvidia",
        "values.yaml of NVIDIA/k8s-nim-operator v3.1.2",
    ),
    ChartSource(
        "mlflow-1.11.5",
        "mlflow",
        "1.11.5",
        "https://community-charts.github.io/helm-charts",
        "values.yaml of community-charts/helm-charts mlflow-1.11.5",
    ),
    ChartSource(
        "nim-llm-1.1.2",
        "nim-llm",
        "1.1.2",
        "https://helm.ngc.nvidia.com/nim",
        "values.yaml of NVIDIA/nim-deploy 6bc89ff (nim-llm 1.1.2)",
    ),
    # The volcano chart's own version has no "v" (Chart.yaml), unlike the repository tag.
    ChartSource(
        "volcano-v1.15.1",
        "volcano",
        "1.15.1",
        "https://volcano-sh.github.io/helm-charts",
        "values.yaml of volcano-sh/volcano v1.15.1",
    ),
)

NEMO_CHART = ChartSource(
    "nemo-microservices-25.x",
    "nemo-microservices-helm-chart",
    "25.8.0",
    "https://helm.ngc.nvidia.com/nvidia/nemo-microservices",
    "documented usage (data-flywheel blueprint values, chart 25.8.0 / 25.11.0)",
)

# Charts hand maps with these names to a Kubernetes object verbatim (toYaml), so any field of that object
# (or any label/annotation) is allowed below them, whatever sample the default shows.
PASS_THROUGH_NAMES = frozenset(
    {
        "affinity",
        "annotations",
        "containerSecurityContext",
        "labels",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "podSecurityContext",
        "resources",
        "securityContext",
    }
)

# Chart-specific maps that look like pass-through ones but whose keys the chart interprets itself.
NOT_PASS_THROUGH: Mapping[str, frozenset[str]] = {
    # podAntiAffinity: soft|hard and nodeAffinity.type are argo-cd's own shorthand, not a core Affinity.
    "argo-cd": frozenset({"global.affinity"}),
}

# Maps whose non-empty default is only a sample of a free-form map.
# Keys of the bundled node-feature-discovery subchart (charts/node-feature-discovery/values.yaml in the gpu-operator
# v26.7.0 package; the parent values.yaml shows only what it overrides), each rendered with toYaml into the pod
# securityContext, container securityContext or resources of nfd-master (and its prune Job), nfd-worker, nfd-gc.
NFD_SUBCHART_MAPS = tuple(
    f"node-feature-discovery.{component}.{key}"
    for component, keys in (
        ("master", ("podSecurityContext", "securityContext", "resources")),
        ("worker", ("podSecurityContext", "securityContext", "resources")),
        ("gc", ("podSecurityContext", "resources")),
    )
    for key in keys
)

# Keys of the bundled redis-ha subchart (charts/redis-ha/values.yaml in the argo-cd 10.1.1 package; the parent
# values.yaml shows only what it overrides), each rendered with toYaml into a pod securityContext or a container's
# resources; haproxy.serviceAccount.automountToken sets the HAProxy ServiceAccount's automountServiceAccountToken.
REDIS_HA_SUBCHART_MAPS = (
    "redis-ha.securityContext",
    "redis-ha.haproxy.securityContext",
    *(
        f"redis-ha.{component}.resources"
        for component in ("redis", "sentinel", "init", "splitBrainDetection", "haproxy", "haproxy.init")
    ),
)

FREE_MAPS: Mapping[str, tuple[str, ...]] = {
    "argo-cd": (
        *REDIS_HA_SUBCHART_MAPS,
        # Rendered as the data of argocd-cm, argocd-cmd-params-cm and argocd-rbac-cm: any Argo CD setting.
        "configs.cm",
        "configs.params",
        "configs.rbac",
    ),
    "gpu-operator": NFD_SUBCHART_MAPS,
    "gateway-helm": (
        # Rendered verbatim as the EnvoyGateway configuration resource.
        "config.envoyGateway",
    ),
    NEMO_CHART.chart: (
        # Keyed by customization target name (<namespace>/<model>@<version>).
        "customizer.customizationTargets.targets",
        # Environment variables as NAME: value (the entity-store values table documents the same `env` map).
        "entity-store.env",
        "guardrails.env",
    ),
}

# Per-component Kubernetes objects of the volcano chart: `custom.<component>_<suffix>` defaults to null (or a
# sample) and is rendered with toYaml into affinity, securityContext, nodeSelector, labels or resources.
VOLCANO_PASS_THROUGH = re.compile(r"custom\.\w+_(affinity|sc|csc|ns|podLabels|labels|resources)")

# Keys the templates read that values.yaml only shows commented out, each checked in the chart's templates.
EXTRA_KEYS: Mapping[str, tuple[str, ...]] = {
    "argo-cd": (*REDIS_HA_SUBCHART_MAPS, "redis-ha.haproxy.serviceAccount.automountToken"),
    "argo-workflows": (
        # templates/controller/workflow-controller-deployment-pdb.yaml and
        # templates/server/server-deployment-pdb.yaml read minAvailable, else maxUnavailable.
        "controller.pdb.maxUnavailable",
        "controller.pdb.minAvailable",
        "server.pdb.maxUnavailable",
        "server.pdb.minAvailable",
    ),
    "gateway-helm": (
        # templates/envoy-gateway-poddisruptionbudget.yaml renders it when >= 1.
        "podDisruptionBudget.maxUnavailable",
    ),
    "gpu-operator": (
        # templates/_helpers.tpl "gpu-operator.fullimage" uses it, defaulting to the chart's appVersion.
        "operator.version",
        *NFD_SUBCHART_MAPS,
    ),
    NEMO_CHART.chart: (
        # https://docs.nvidia.com/nemo/microservices/25.4.0/helm/platform.html and
        # https://docs.nvidia.com/nemo/microservices/latest/helm/customizer.html (both list them).
        "customizer.customizerConfig.entityStoreURL",
        "customizer.customizerConfig.mlflowURL",
        # https://docs.nvidia.com/nemo/microservices/25.4.0/helm/platform.html (modelsStorage; the blueprint
        # sets its storageClassName).
        "customizer.modelsStorage.accessModes",
        "customizer.modelsStorage.enabled",
        "customizer.modelsStorage.size",
        # https://docs.nvidia.com/nemo/microservices/latest/set-up/manage-storage/database/postgres.html:
        # postgresql.enabled=false turns off the bundled PostgreSQL of each component that has one.
        "customizer.postgresql.enabled",
        "data-store.postgresql.enabled",
        "entity-store.postgresql.enabled",
        "evaluator.postgresql.enabled",
        "guardrails.postgresql.enabled",
        # https://docs.nvidia.com/nemo/microservices/latest/helm/entity-store.html: external database.
        "entity-store.env",
        "entity-store.externalDatabase.database",
        "entity-store.externalDatabase.existingSecret",
        "entity-store.externalDatabase.existingSecretPasswordKey",
        "entity-store.externalDatabase.host",
        "entity-store.externalDatabase.port",
        "entity-store.externalDatabase.uriSecret.key",
        "entity-store.externalDatabase.uriSecret.name",
    ),
}

# The data-flywheel chart nests the NeMo chart's values under this key; its `enabled` is the parent's
# dependency condition, not a value of the NeMo chart.
NEMO_SECTION = "nemo-microservices-helm-chart"
NEMO_PARENT_ONLY_KEYS = frozenset({"enabled"})


@dataclass(frozen=True)
class CrdSource:
    path: str
    derived_from: str


CRDS = (
    # The standard channel: an object valid there is valid on the experimental channel too (which the
    # gateway-helm chart bundles), while experimental-only fields would be dropped on a standard cluster.
    CrdSource(
        "crds/gateway-api-v1.6.1/standard-gatewayapi-crds.yaml",
        "Gateway API v1.6.1 standard channel, as bundled by envoyproxy/gateway v1.9.0",
    ),
    *(
        CrdSource(
            f"crds/envoy-gateway-v1.9.0/gateway.envoyproxy.io_{plural}.yaml",
            "envoyproxy/gateway v1.9.0 gateway-crds-helm",
        )
        for plural in (
            "backends",
            "backendtrafficpolicies",
            "clienttrafficpolicies",
            "envoyproxies",
            "securitypolicies",
        )
    ),
    *(
        CrdSource(f"crds/argo-cd-10.1.1/crd-{name}.yaml", "argoproj/argo-helm argo-cd-10.1.1")
        for name in ("application", "applicationset", "appproject")
    ),
    *(
        CrdSource(f"crds/argo-workflows-v4.0.6/argoproj.io_{plural}.yaml", "argoproj/argo-workflows v4.0.6 (full CRDs)")
        for plural in ("clusterworkflowtemplates", "workflowtemplates")
    ),
)

# JSON Schema keywords of an OpenAPI v3 schema that validation needs, kept as they are.
KEPT_KEYWORDS = frozenset(
    {
        "enum",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "pattern",
        "required",
        "type",
        "uniqueItems",
    }
)


# --------------------------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------------------------


def _is_free_map(chart: str, path: str, name: str, default: Any) -> bool:
    if path in FREE_MAPS.get(chart, ()):
        return True
    if chart == "volcano" and VOLCANO_PASS_THROUGH.fullmatch(path):
        return True
    if not isinstance(default, Mapping):
        return False
    return not default or (name in PASS_THROUGH_NAMES and path not in NOT_PASS_THROUGH.get(chart, frozenset()))


def _walk_values(chart: str, node: Mapping[Any, Any], prefix: str, keys: set[str], free_maps: set[str]) -> None:
    for raw_key, default in node.items():
        name = str(raw_key)
        path = f"{prefix}.{name}" if prefix else name
        if "." in name:
            raise ValueError(f"{chart}: key {path!r} holds a dot outside any free map; list its parent in FREE_MAPS")
        keys.add(path)
        if _is_free_map(chart, path, name, default):
            free_maps.add(path)
        elif isinstance(default, Mapping):
            _walk_values(chart, default, path, keys, free_maps)


def _with_ancestors(paths: Iterable[str]) -> set[str]:
    result: set[str] = set()
    for path in paths:
        parts = path.split(".")
        result.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return result


def chart_facts(source: ChartSource, values_documents: Iterable[Mapping[Any, Any]]) -> Json:
    keys: set[str] = set()
    free_maps: set[str] = set()
    for document in values_documents:
        _walk_values(source.chart, document, "", keys, free_maps)
    keys |= _with_ancestors(EXTRA_KEYS.get(source.chart, ()))
    listed = set(FREE_MAPS.get(source.chart, ())) | NOT_PASS_THROUGH.get(source.chart, frozenset())
    if listed - keys:
        raise ValueError(f"{source.chart}: tables name keys the chart does not have: {sorted(listed - keys)}")
    free_maps |= set(FREE_MAPS.get(source.chart, ()))
    # A key under a free map is implied by it.
    keys = {key for key in keys if not any(key.startswith(f"{free}.") for free in free_maps)}
    return {
        "chart": source.chart,
        "version": source.version,
        "repository": source.repository,
        "derivedFrom": source.derived_from,
        "keys": sorted(keys),
        "freeMaps": sorted(free_maps),
    }


def _load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def nemo_documents(reference: Path) -> list[Mapping[Any, Any]]:
    folder = reference / NEMO_CHART.folder
    flywheel = _load_yaml(folder / "data-flywheel-values.yaml")[NEMO_SECTION]
    nemo_values = {key: value for key, value in flywheel.items() if key not in NEMO_PARENT_ONLY_KEYS}
    return [nemo_values, _load_yaml(folder / "deploy-nmp-demo-values.yaml")]


def nemo_inputs() -> list[str]:
    return [f"{NEMO_CHART.folder}/data-flywheel-values.yaml", f"{NEMO_CHART.folder}/deploy-nmp-demo-values.yaml"]


def derive_chart_facts(reference: Path) -> dict[str, bytes]:
    outputs = {}
    for source in CHARTS:
        facts = chart_facts(source, [_load_yaml(reference / "charts" / source.folder / "values.yaml")])
        outputs[f"charts/{source.chart}-{source.version}.json"] = _dump(facts, indent=1)
    nemo = chart_facts(NEMO_CHART, nemo_documents(reference))
    outputs[f"charts/{NEMO_CHART.chart}-{NEMO_CHART.version}.json"] = _dump(nemo, indent=1)
    return outputs


def chart_inputs() -> list[str]:
    return [f"charts/{source.folder}/values.yaml" for source in CHARTS] + nemo_inputs()


# --------------------------------------------------------------------------------------------------------
# CRDs
# --------------------------------------------------------------------------------------------------------


def to_json_schema(node: Mapping[str, Any], structural: bool = True) -> Json:
    """An OpenAPI v3 CRD schema as a JSON Schema; `structural` is false inside anyOf/oneOf/allOf/not, whose
    branches only add constraints to the fields the enclosing schema declares."""
    out: Json = {key: node[key] for key in KEPT_KEYWORDS & node.keys()}
    if "properties" in node:
        out["properties"] = {name: to_json_schema(sub, structural) for name, sub in node["properties"].items()}
    if "items" in node:
        out["items"] = to_json_schema(node["items"], structural)
    if "additionalProperties" in node:
        extra = node["additionalProperties"]
        out["additionalProperties"] = extra if isinstance(extra, bool) else to_json_schema(extra, structural)
    for keyword in ("anyOf", "oneOf", "allOf"):
        if keyword in node:
            out[keyword] = [to_json_schema(branch, structural=False) for branch in node[keyword]]
    if "not" in node:
        out["not"] = to_json_schema(node["not"], structural=False)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        structural
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _crd_documents(text: str) -> Iterator[Json]:
    # Helm chart templates wrap (and annotate) some CRDs with template lines; the CRD is what remains.
    plain = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("{{"))
    for document in yaml.load_all(plain, Loader=yaml.CSafeLoader):
        if document and document.get("kind") == "CustomResourceDefinition":
            yield document


def crd_facts(crd: Mapping[str, Any], derived_from: str) -> Json:
    spec = crd["spec"]
    return {
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        # The REST resource name (`gatewayclasses`): what RBAC rules and access reviews name (planner/preflight.py).
        "plural": spec["names"]["plural"],
        "scope": spec["scope"],
        "derivedFrom": derived_from,
        "versions": {
            version["name"]: to_json_schema(version["schema"]["openAPIV3Schema"])
            for version in spec["versions"]
            if version.get("served", False)
        },
    }


def derive_crd_facts(reference: Path) -> dict[str, bytes]:
    outputs = {}
    for source in CRDS:
        for crd in _crd_documents((reference / source.path).read_text(encoding="utf-8")):
            facts = crd_facts(crd, source.derived_from)
            outputs[f"crds/{facts['group']}_{facts['kind']}.json"] = _dump(facts, indent=None)
    return outputs


def crd_inputs() -> list[str]:
    return [source.path for source in CRDS]


# --------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------

MANIFEST = "sources.json"


def _dump(data: Json, indent: int | None) -> bytes:
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False, separators=separators)
    return (text + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(reference: Path, outputs: Mapping[str, bytes]) -> bytes:
    """The digests that tie the facts to this script and to the reference files they came from."""
    return _dump(
        {
            "generator": _sha256(Path(__file__).read_bytes()),
            "inputs": {path: _sha256((reference / path).read_bytes()) for path in chart_inputs() + crd_inputs()},
            "outputs": {path: _sha256(data) for path, data in outputs.items()},
        },
        indent=1,
    )


def derive_all(reference: Path) -> dict[str, bytes]:
    outputs = derive_chart_facts(reference) | derive_crd_facts(reference)
    return outputs | {MANIFEST: manifest(reference, outputs)}


def write(outputs: Mapping[str, bytes], out: Path) -> None:
    # The generator owns these folders: a file it no longer produces is stale.
    for folder in ("charts", "crds"):
        for stale in (out / folder).glob("*.json"):
            if f"{folder}/{stale.name}" not in outputs:
                stale.unlink()
    for path, data in outputs.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="upstream reference folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="facts folder to (re)write")
    args = parser.parse_args(argv)
    if not args.reference.is_dir():
        parser.error(f"no reference folder at {args.reference}")
    outputs = derive_all(args.reference)
    write(outputs, args.out)
    print(f"wrote {len(outputs)} files under {args.out}")


if __name__ == "__main__":
    main()
