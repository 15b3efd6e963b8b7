"""Values as `helm template` gets them: no secret and no value unknown until deploy reaches a render, so the
rendered files are safe to keep and to scan."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc

from planner.evaluate import Evaluation, placeholder

STAND_IN_SECRET = "stand-in-secret"
UNKNOWN_STAND_IN = "[unknown]"


def stand_in(value: Any, secrets: Collection[str]) -> Any:
    """Values as `helm template` gets them: every secret a stand-in string, every value unknown until deploy
    a marker string; a secret map or list keeps its shape with the secrets inside it replaced."""
    if rpc.is_rpc_secret(value):
        inner = rpc.unwrap_rpc_secret(value)
        return stand_in(inner, secrets) if isinstance(inner, dict | list | tuple) else STAND_IN_SECRET
    if isinstance(value, Unknown):
        return UNKNOWN_STAND_IN
    if isinstance(value, dict):
        return {str(k): stand_in(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stand_in(v, secrets) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, STAND_IN_SECRET)
    return value


def secret_strings(evaluation: Evaluation) -> list[str]:
    """Every secret config value the evaluation was given, longest first (a secret may contain another)."""
    known = [*evaluation.secret_values.values(), *(placeholder(key) for key in evaluation.placeholders)]
    return sorted({s for s in known if s}, key=len, reverse=True)
