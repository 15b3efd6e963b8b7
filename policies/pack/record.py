"""The plan's core record, one captured resource registration, and the one walk that rebuilds a
property tree as plain data: the planner redacts, reveals and re-encodes captured inputs with it, and
the pack turns CrossGuard's unknown-checking proxies into data the pricer reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import rpc
from pulumi_policy.proxy import UnknownValueError


@dataclass
class Registration:
    """One `RegisterResource` request, as the engine would have seen it."""

    urn: str
    type: str
    name: str
    parent: str
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    ignore_changes: list[str]
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)


def rebuild(value: Any, leaf: Callable[[Any], Any], secret: Callable[[Any], Any] | None = None) -> Any:
    """`value` as plain data: mappings (keys as strings) and sequences (as lists) rebuilt item by item;
    a secret as `secret(its rebuilt value)`, or revealed when `secret` is None; every other value as
    `leaf(value)`. An item that a CrossGuard proxy refuses to read because it is unknown reaches `leaf`
    as the `UnknownValueError`."""
    if rpc.is_rpc_secret(value):
        revealed = rebuild(rpc.unwrap_rpc_secret(value), leaf, secret)
        return revealed if secret is None else secret(revealed)
    if isinstance(value, Mapping):
        return {str(key): _item(value, key, leaf, secret) for key in list(value)}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_item(value, index, leaf, secret) for index in range(len(value))]
    return leaf(value)


def _item(container: Any, key: Any, leaf: Callable[[Any], Any], secret: Callable[[Any], Any] | None) -> Any:
    try:
        value = container[key]
    except UnknownValueError as error:
        return leaf(error)
    return rebuild(value, leaf, secret)


def integral(value: Any) -> Any:
    """The wire format has only doubles; counts and sizes read better as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
