"""Declaring rules: each module collects its policies in the order it declares them, checks skip the
resources they are not about the same way, and config knobs are spelled the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ResourceValidation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidation,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

_P = TypeVar("_P", ResourceValidationPolicy, StackValidationPolicy)


class Rules:
    """The policies of one area: `@rules.resource(name, level, schema)` or `@rules.stack(...)` on a check turns it
    into a policy and appends it to `rules.policies`. The policy's description is the check's docstring (its
    lines joined): a description is text a reader finds beside the check, never computed."""

    def __init__(self) -> None:
        self.policies: list[Policy] = []

    def resource(
        self, name: str, level: EnforcementLevel, schema: PolicyConfigSchema | None = None
    ) -> Callable[[ResourceValidation], ResourceValidationPolicy]:
        return self._declare(ResourceValidationPolicy, name, level, schema)

    def stack(
        self, name: str, level: EnforcementLevel, schema: PolicyConfigSchema | None = None
    ) -> Callable[[StackValidation], StackValidationPolicy]:
        return self._declare(StackValidationPolicy, name, level, schema)

    def _declare(
        self, kind: Callable[..., _P], name: str, level: EnforcementLevel, schema: PolicyConfigSchema | None
    ) -> Callable[[Any], _P]:
        def declare(check: Any) -> _P:
            text = " ".join((check.__doc__ or "").split())
            if not text:
                raise ValueError(f"policy {name!r} needs a description: give its check a docstring")
            policy = kind(name=name, description=text, enforcement_level=level, validate=check, config_schema=schema)
            self.policies.append(policy)
            return policy

        return declare


def only(args: ResourceValidationArgs, why: str, *types: str) -> None:
    """Skip (not applicable, with `why`) a resource that is none of `types`."""
    if args.resource_type not in types:
        args.not_applicable(why)


def knob(kind: str, default: Any, description: str, **constraints: Any) -> dict[str, Any]:
    """One config property with its default, as the engine's JSON schema has it."""
    return {"type": kind, **constraints, "default": default, "description": description}


def strings_knob(default: list[str], description: str) -> dict[str, Any]:
    return knob("array", default, description, items={"type": "string"})
