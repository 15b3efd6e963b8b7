"""Values as `helm template` gets them: no secret and no value unknown until deploy reaches a render, so the
rendered files are safe to keep and to scan."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pulumi.output import Unknown

from planner.evaluate import Evaluation, placeholder
from policies.pack.record import integral, rebuild

STAND_IN_SECRET = "stand-in-secret"
UNKNOWN_STAND_IN = "[unknown]"


def stand_in(value: Any, secrets: Collection[str]) -> Any:
    """Values as `helm template` gets them: every secret a stand-in string, every value unknown until deploy
    a marker string, every string with each of `secrets` in it replaced; a secret map or list keeps its shape
    with the secrets inside it replaced."""

    def leaf(item: Any) -> Any:
        if isinstance(item, Unknown):
            return UNKNOWN_STAND_IN
        if isinstance(item, str):
            for secret in secrets:
                item = item.replace(secret, STAND_IN_SECRET)
        return integral(item)

    return rebuild(value, leaf, secret=lambda inner: inner if isinstance(inner, dict | list) else STAND_IN_SECRET)


def secret_strings(evaluation: Evaluation) -> list[str]:
    """Every secret config value the evaluation was given, longest first (a secret may contain another)."""
    known = [*evaluation.secret_values.values(), *(placeholder(key) for key in evaluation.placeholders)]
    return sorted({s for s in known if s}, key=len, reverse=True)
