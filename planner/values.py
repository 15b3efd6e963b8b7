"""Turning captured property values into something printable, with secrets and unknowns marked."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc

SECRET = "[secret]"
UNKNOWN = "[unknown]"


def redact(value: Any) -> Any:
    """Plain JSON-able data: secrets become "[secret]", unknowns "[unknown]"."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return f"[resource {type(value).__name__}]"
    if isinstance(value, float) and value.is_integer():
        # The wire format has only doubles; counts and sizes read better as integers.
        return int(value)
    return value


def unwrap(value: Any) -> Any:
    """Data with secrets revealed and unknowns kept, for checks that must see real values."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {str(k): unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
