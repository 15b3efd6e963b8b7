"""Generate docs/configuration.md and schema/stack-config.schema.json from the config models (`make docs`); tests
fail when either is stale.

The reference lists every key with its type, default (as YAML), constraints and description, and each model's
cross-field rules: the one-line docstrings of its model validators. The JSON Schema covers the `config:` map of a
stack file (`llmops:<key>` properties; other namespaces such as `azure-native:location` pass), so an editor with
the YAML language server validates stacks/Pulumi.<stack>.yaml as you type (the modeline on each file's first line).
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config import NAMESPACE, SECRET_KEYS, PlatformConfig  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"
SCHEMA_OUTPUT = ROOT / "schema" / "stack-config.schema.json"

SECRET_DOCS = {
    "ngcApiKey": "NGC API key: Helm repositories and image pulls from nvcr.io, model downloads.",
    "gitopsToken": "Token ArgoCD uses to read the GitOps repository.",
    "gpuClusterKubeconfig": "Kubeconfig of the existing GPU cluster (required when `gpuCluster.mode` is `existing`).",
    "ssoClientSecret": "Entra ID app client secret for ArgoCD SSO (required when `management.argocd.sso` is set).",
    "gatewayApiKey": "API key clients present to the gateway when `gateway.auth` is `api-key`; generated when unset.",
    "mlflowDbPassword": "Password of MLflow's own PostgreSQL login role (`management.mlflow.backend` "
    "`azure-postgres`); generated when unset. Not `/ & \\ % $ @`, whitespace or control characters.",
    "mlflowAdminPassword": "Password of MLflow's basic-auth admin, which pipelines log with; generated when unset. "
    "Not `/ & \\ % $ @`, whitespace or control characters.",
    "postgresAdminPassword": "Admin password of the PostgreSQL server (`azure-postgres`), used only to create the "
    "application roles; generated when unset.",
    "argoArchiveDbPassword": "Password of the Argo Workflows archive's PostgreSQL login role (`azure-postgres`); "
    "generated when unset.",
    "ciRunnerGithubToken": "GitHub token the CI runner pool registers runners and watches the job queue with "
    "(required when `ciRunners` is set).",
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin in (list, dict):
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"list[{args}]" if origin is list else f"map[{args}]"
    if annotation is type(None):
        return "null"
    return YAML_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))


# Python types as a stack file spells them.
YAML_TYPES: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "min items/length")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{word} {value}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            parts.append(f"pattern `{pattern}`".replace("|", "\\|"))
    return ", ".join(parts)


def yaml_value(value: Any) -> str:
    """A default as it would be written in a stack file: `null`, `false`, `[a, b]`, `{k: v}`."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} item(s), see below"
    return f"`{yaml_value(value)}`".replace("|", "\\|")


def rules(model: type[BaseModel]) -> list[str]:
    """The model's cross-field rules: each model validator's docstring, in declaration order."""
    found = []
    for decorator in model.__pydantic_decorators__.model_validators.values():
        doc = " ".join((decorator.func.__doc__ or "").split())
        if doc and doc not in found:
            found.append(doc)
    return found


def every_model() -> list[tuple[type[BaseModel], str]]:
    """Every model below PlatformConfig with its key path, parents first."""
    seen: list[tuple[type[BaseModel], str]] = []

    def visit(model: type[BaseModel], path: str) -> None:
        if any(model is m for m, _ in seen):
            return
        seen.append((model, path))
        nested = []
        for name, field in model.model_fields.items():
            key = field.alias or name
            is_list = typing.get_origin(field.annotation) is list
            for sub in _models(field.annotation):
                nested.append((sub, f"{path + '.' if path else NAMESPACE + ':'}{key}{'[i]' if is_list else ''}"))
        for sub, sub_path in nested:
            visit(sub, sub_path)

    visit(PlatformConfig, "")
    return seen


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `components/config/` by `make docs`; do not edit by hand.",
        f"Every key lives in the `{NAMESPACE}:` namespace of a stack file (`stacks/Pulumi.<stack>.yaml`).",
        "Unknown keys are errors. Objects are YAML maps; `[i]` marks list items; defaults are written as YAML.",
        "Editors with the YAML language server validate stack files against `schema/stack-config.schema.json`",
        "(generated from the same models; the modeline on the first line of each stack file points at it).",
        "",
        "## Secrets",
        "",
        "Set with `pulumi config set --secret llmops:<key> <value>`; never stored in clear.",
        "",
        "| key | what it is |",
        "|---|---|",
    ]
    lines += [f"| `{NAMESPACE}:{key}` | {SECRET_DOCS[key]} |" for key in SECRET_KEYS]
    for model, path in every_model():
        lines.extend(["", f"## `{path}`" if path else "## Top-level keys", ""])
        if model.__doc__ and model is not PlatformConfig:
            lines.extend([" ".join(model.__doc__.split()), ""])
        lines.extend(["| key | type | default | description | constraints |", "|---|---|---|---|---|"])
        for name, field in model.model_fields.items():
            key = field.alias or name
            description = (field.description or "").replace("|", "\\|")
            lines.append(
                f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} | "
                f"{_constraints(field)} |"
            )
        if model_rules := rules(model):
            lines.extend(["", "Rules across keys:", ""])
            lines += [f"- {rule}" for rule in model_rules]
    return "\n".join(lines) + "\n"


SECURE_VALUE = {
    "type": "object",
    "description": "a value encrypted by the stack's secrets provider (`pulumi config set --secret`)",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}


def schema() -> dict[str, Any]:
    """JSON Schema of a stack file: its `config:` map, with every `llmops:` key typed by the models."""
    platform = PlatformConfig.model_json_schema(by_alias=True, mode="validation")
    definitions = platform.pop("$defs", {})
    properties: dict[str, Any] = {f"{NAMESPACE}:{key}": value for key, value in platform.get("properties", {}).items()}
    for key in SECRET_KEYS:
        properties[f"{NAMESPACE}:{key}"] = {
            "description": SECRET_DOCS[key],
            "anyOf": [{"type": "string"}, {"$ref": "#/$defs/SecureValue"}],
        }
    known = sorted(properties)
    return {
        # Draft 7: what editors' YAML language servers support best; the `#/$defs/…` references are plain pointers.
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Pulumi stack file of the LLMOps platform (stacks/Pulumi.<stack>.yaml)",
        "description": "Generated from components/config/ by `make docs` (tools/gen_config_reference.py); "
        "see docs/configuration.md.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "description": f"Stack config: `{NAMESPACE}:<key>` as in docs/configuration.md; other "
                "namespaces (such as azure-native:location) are not checked here.",
                "properties": properties,
                "required": [f"{NAMESPACE}:{key}" for key in platform.get("required", [])],
                # A misspelled `llmops:` key is an error; keys of other namespaces pass.
                "propertyNames": {"anyOf": [{"enum": known}, {"not": {"pattern": f"^{NAMESPACE}:"}}]},
                "additionalProperties": True,
            }
        },
        "required": ["config"],
        "$defs": {**definitions, "SecureValue": SECURE_VALUE},
    }


def render_schema() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render())
    SCHEMA_OUTPUT.parent.mkdir(exist_ok=True)
    SCHEMA_OUTPUT.write_text(render_schema())
    print(f"wrote {OUTPUT.relative_to(ROOT)} and {SCHEMA_OUTPUT.relative_to(ROOT)}")
