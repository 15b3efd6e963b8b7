"""Validation of the `llmops:` namespace, and the one-line wording of every problem it finds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config.base import NAMESPACE
from components.config.platform import PlatformConfig


class ConfigError(Exception):
    """Bad configuration: one line per problem, each naming the key path and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            path += f".{part}" if path else part
    return path


def _describe(error: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key" + (f"; allowed: {', '.join(_allowed_keys(model))}" if model else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "literal_error":
        return f"must be {msg.removeprefix('Input should be ')} (got {value!r})"
    if kind == "string_pattern_mismatch":
        return f"{msg.replace('String should match pattern', 'must match')} (got {value!r})"
    return f"{msg[0].lower()}{msg[1:]} (got {value!r})"


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that owns the last key of `loc`, for naming the keys it allows."""
    model: Any = PlatformConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        for arg in candidates:
            nested += [a for a in getattr(arg, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


# A validator that blames one key starts its message with that key's path relative to the model.
_KEYED_MESSAGE = re.compile(r"^([a-zA-Z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*|\[\d+\])*): (.+)$", re.S)


def parse_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the `llmops:` namespace (keys without the prefix) or raise ConfigError."""
    try:
        return PlatformConfig.model_validate(dict(raw))
    except ValidationError as err:
        problems = []
        for error in err.errors():
            path = _key_path(tuple(error["loc"]))
            message = _describe(error, _model_at(tuple(error["loc"])))
            if error["type"] == "value_error" and (keyed := _KEYED_MESSAGE.match(message)):
                relative, message = keyed.groups()
                path = f"{path}{'' if relative.startswith('[') or not path else '.'}{relative}"
            problems.append(f"{NAMESPACE}:{path}: {message}" if path else f"{NAMESPACE}: {message}")
        raise ConfigError(problems) from None
