"""Validate the Kubernetes objects the program authors against real schemas, offline.

- core kinds: the strict JSON Schemas kubernetes-validate ships (unknown fields are errors);
- custom resources: facts/crds, the CRDs' openAPIV3Schema as JSON Schema (tools/derive_reference_facts.py),
  with `metadata` checked against the core ObjectMeta;
- Argo Workflows kinds: hera's models, a round trip that reports every input field the models dropped (they
  ignore unknown fields), and the CRD facts where the kind has them.

Every function returns human-readable errors such as "spec.templates[0].contaner: unknown field"; an empty
list means valid. CEL rules (`x-kubernetes-validations`) and admission webhooks are not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
from jsonschema import Draft202012Validator, ValidationError
from kubernetes_validate.utils import all_versions, major_minor
from packaging.version import Version
from referencing import Registry, Resource

CRD_FACTS = Path(__file__).resolve().parents[2] / "facts" / "crds"
OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

ARGO_KINDS = ("ClusterWorkflowTemplate", "CronWorkflow", "Workflow", "WorkflowTemplate")


def format_path(parts: Iterable[str | int]) -> str:
    """`spec.rules[0].backendRefs`, with a key that holds a dot quoted: `limits["nvidia.com/gpu"]`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "." in str(part):
            text += f"[{json.dumps(str(part))}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<root>"


def _errors(validator: Draft202012Validator, instance: Any, prefix: Sequence[str | int] = ()) -> list[str]:
    messages = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        messages.extend(_describe(error, [*prefix, *error.absolute_path]))
    return messages


def _describe(error: ValidationError, path: list[str | int]) -> list[str]:
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        declared = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, Mapping) else {}
        unexpected = [
            key
            for key in error.instance
            if key not in declared and not any(re.search(pattern, key) for pattern in patterns)
        ]
        return [f"{format_path([*path, key])}: unknown field" for key in unexpected]
    return [f"{format_path(path)}: {error.message}"]


# ----------------------------------------------------------------------------------------------------------
# Core kinds
# ----------------------------------------------------------------------------------------------------------

_SCHEMAS = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")


def schema_version(kubernetes_version: str) -> str:
    """The newest schema kubernetes-validate ships offline that is not newer than `kubernetes_version`
    (e.g. "1.33" -> "1.33.0"); a version outside the shipped range is an error, not a silent fallback."""
    wanted = Version(major_minor(kubernetes_version.removeprefix("v")))
    shipped = all_versions()
    candidates = [v for v in shipped if Version(major_minor(v)) <= wanted]
    if not candidates or wanted > Version(major_minor(shipped[-1])):
        raise LookupError(
            f"kubernetes-validate ships schemas for {shipped[0]}..{shipped[-1]}, not {kubernetes_version}"
        )
    return candidates[-1]


def _load(folder: str, name: str) -> Any:
    return json.loads(_SCHEMAS.joinpath(folder, name).read_text(encoding="utf-8"))


@cache
def _core_registry(folder: str) -> Registry:
    return Resource.from_contents(_load(folder, "_definitions.json")) @ Registry()


@cache
def _core_validator(folder: str, filename: str) -> Draft202012Validator | None:
    if not _SCHEMAS.joinpath(folder, filename).is_file():
        return None
    return Draft202012Validator(_load(folder, filename), registry=_core_registry(folder))


def _api_file_part(api_version: str) -> str:
    # rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1, v1 -> v1 (kubernetes-validate's file names)
    return re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)


def validate_core(obj: Mapping[str, Any], kubernetes_version: str) -> list[str]:
    """Errors of a core Kubernetes object against the strict schema of that Kubernetes minor version."""
    folder = f"v{schema_version(kubernetes_version)}-local-strict"
    kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
    validator = _core_validator(folder, f"{str(kind).lower()}-{_api_file_part(str(api_version))}.json")
    if validator is None:
        return [f"{kind} {api_version}: not a core kind of Kubernetes {kubernetes_version}"]
    return _errors(validator, obj)


# ----------------------------------------------------------------------------------------------------------
# Custom resources
# ----------------------------------------------------------------------------------------------------------


@cache
def _crd_facts(group: str, kind: str) -> Mapping[str, Any] | None:
    path = CRD_FACTS / f"{group}_{kind}.json"
    if not path.is_file():
        return None
    facts: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return facts


@cache
def _crd_validator(group: str, kind: str, version: str) -> Draft202012Validator | None:
    facts = _crd_facts(group, kind)
    if facts is None or version not in facts["versions"]:
        return None
    return Draft202012Validator(facts["versions"][version])


@lru_cache(maxsize=1)
def _object_meta_validator() -> Draft202012Validator:
    folder = f"v{all_versions()[-1]}-local-strict"
    return Draft202012Validator({"$ref": OBJECT_META}, registry=_core_registry(folder))


def validate_custom(obj: Mapping[str, Any]) -> list[str]:
    """Errors of a custom resource against the schema its CRD (from facts/crds) enforces."""
    kind = str(obj.get("kind", ""))
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    facts = _crd_facts(group, kind)
    if facts is None:
        return [f"{kind} {group}: no CRD facts (facts/crds/{group}_{kind}.json); derive them first"]
    validator = _crd_validator(group, kind, version)
    if validator is None:
        return [f"apiVersion: {group}/{version} does not serve {kind}; served: {sorted(facts['versions'])}"]
    errors = _errors(validator, obj)
    if isinstance(obj.get("metadata"), Mapping):
        errors += _errors(_object_meta_validator(), obj["metadata"], prefix=["metadata"])
    return errors


# ----------------------------------------------------------------------------------------------------------
# Argo Workflows kinds
# ----------------------------------------------------------------------------------------------------------


def _dropped_fields(given: Any, kept: Any, path: list[str | int]) -> list[str]:
    if isinstance(given, Mapping) and isinstance(kept, Mapping):
        dropped = []
        for key, value in given.items():
            if key not in kept:
                # exclude_none also drops explicit nulls, which are not misspellings.
                if value is not None:
                    dropped.append(f"{format_path([*path, key])}: unknown field")
            else:
                dropped.extend(_dropped_fields(value, kept[key], [*path, key]))
        return dropped
    if isinstance(given, list) and isinstance(kept, list):
        return [
            error
            for index, (item, kept_item) in enumerate(zip(given, kept, strict=False))
            for error in _dropped_fields(item, kept_item, [*path, index])
        ]
    return []


@cache
def _argo_model(kind: str) -> type[pydantic.BaseModel]:
    # Imported on first use: hera's models take seconds to import.
    from hera.workflows import models

    model: type[pydantic.BaseModel] = getattr(models, kind)
    return model


def _numbers_as_strings(value: Any) -> Any:
    """hera types quantities and parameter values as str though the API also takes numbers there. Numbers go
    to hera as strings, which pydantic's lax mode still turns into its int and float fields; the CRD schema
    checks the number types."""
    if isinstance(value, Mapping):
        return {key: _numbers_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_strings(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def validate_argo(obj: Mapping[str, Any]) -> list[str]:
    """Errors of an Argo Workflows object (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow)."""
    kind = str(obj.get("kind", ""))
    if kind not in ARGO_KINDS:
        return [f"kind: {kind!r} is not one of {list(ARGO_KINDS)}"]
    try:
        model = _argo_model(kind).model_validate(_numbers_as_strings(obj))
    except pydantic.ValidationError as error:
        errors = [f"{format_path(e['loc'])}: {e['msg']}" for e in error.errors()]
    else:
        errors = _dropped_fields(obj, model.model_dump(by_alias=True, exclude_none=True), [])
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    if _crd_facts(group, kind) is not None:
        errors += validate_custom(obj)
    return list(dict.fromkeys(errors))
