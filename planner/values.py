"""Turning captured property values into something printable, with secrets and unknowns marked."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.output import Unknown

from policies.pack.record import integral, rebuild

SECRET = "[secret]"
UNKNOWN = "[unknown]"


def _printable(value: Any) -> Any:
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, pulumi.Resource):
        return f"[resource {type(value).__name__}]"
    return integral(value)


def redact(value: Any) -> Any:
    """Plain JSON-able data: secrets become "[secret]", unknowns "[unknown]"."""
    return rebuild(value, _printable, secret=lambda _: SECRET)


def unwrap(value: Any) -> Any:
    """Data with secrets revealed and unknowns kept, for checks that must see real values."""
    return rebuild(value, integral)


def stable(value: Any) -> Any:
    """Data with secrets revealed and unknowns as "[unknown]": the same value always prints the same."""
    return rebuild(value, lambda leaf: UNKNOWN if isinstance(leaf, Unknown) else integral(leaf))
