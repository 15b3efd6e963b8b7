"""Generate docs/configuration.md from the config models (`make docs`); a test fails when it is stale."""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config import NAMESPACE, SECRET_KEYS, PlatformConfig  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"

SECRET_DOCS = {
    "ngcApiKey": "NGC API key: Helm repositories and image pulls from nvcr.io, model downloads.",
    "gitopsToken": "Token ArgoCD uses to read the GitOps repository.",
    "gpuClusterKubeconfig": "Kubeconfig of the existing GPU cluster (required when `gpuCluster.mode` is `existing`).",
    "ssoClientSecret": "Entra ID app client secret for ArgoCD SSO (required when `management.argocd.sso` is set).",
    "gatewayApiKey": "API key clients present to the gateway (required when `gateway.auth` is `api-key`).",
    "mlflowDbPassword": "Admin password of the MLflow PostgreSQL server (required when `management.mlflow.backend` "
    "is `azure-postgres`).",
    "mlflowAdminPassword": "Password of MLflow's basic-auth admin, which pipelines log with.",
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
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(annotation))}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr in ("ge", "le", "min_length", "pattern"):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{attr}={value}")
    return ", ".join(parts)


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
        return f"{len(value)} item(s), see stacks"
    return f"`{value!r}`" if value not in (None, [], {}) else f"`{value}`"


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `components/config/` by `make docs`; do not edit by hand.",
        f"Every key lives in the `{NAMESPACE}:` namespace of a stack file (`stacks/Pulumi.<stack>.yaml`).",
        "Unknown keys are errors. Objects are YAML maps; `[i]` marks list items.",
        "",
        "## Secrets",
        "",
        "Set with `pulumi config set --secret llmops:<key> <value>`; never stored in clear.",
        "",
        "| key | what it is |",
        "|---|---|",
    ]
    lines += [f"| `{NAMESPACE}:{key}` | {SECRET_DOCS[key]} |" for key in SECRET_KEYS]
    seen: set[type[BaseModel]] = set()

    def section(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        lines.extend(["", f"## `{path}`" if path else "## Top-level keys", ""])
        if model.__doc__ and model is not PlatformConfig:
            lines.extend([" ".join(model.__doc__.split()), ""])
        lines.extend(["| key | type | default | constraints / notes |", "|---|---|---|---|"])
        nested: list[tuple[type[BaseModel], str]] = []
        for name, field in model.model_fields.items():
            key = field.alias or name
            notes = "; ".join(p for p in (_constraints(field), field.description or "") if p)
            lines.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {notes} |")
            is_list = typing.get_origin(field.annotation) is list
            for sub in _models(field.annotation):
                nested.append((sub, f"{path + '.' if path else NAMESPACE + ':'}{key}{'[i]' if is_list else ''}"))
        for sub, sub_path in nested:
            section(sub, sub_path)

    section(PlatformConfig, "")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
