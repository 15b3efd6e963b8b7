"""Reading property trees: captured inputs (plain data) and CrossGuard's unknown-checking proxies alike.
A missing step reads as a default; an unknown value a check needs raises, as the engine's proxy does."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError


class UnknownLeaf:
    """An unknown value carried through a derived tree (see `merged`); reading it raises as the
    engine's proxy would have."""

    def __init__(self, error: UnknownValueError) -> None:
        self.error = error


def get_path(props: Any, *path: str | int, default: Any = None) -> Any:
    """Read a nested property; a missing step gives `default` (unknown values still raise)."""
    current = props
    for step in path:
        try:
            current = current[step]
        except (KeyError, IndexError, TypeError):
            return default
        if isinstance(current, UnknownLeaf):
            raise current.error
        if current is None:
            return default
    return current


def get_dotted(props: Any, dotted: str, default: Any = None) -> Any:
    """`get_path` for a path written `a.b.c`, as the price table names chart values."""
    return get_path(props, *dotted.split("."), default=default)


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def items_of(value: Any) -> list[Any]:
    """The items of a list property, or [] when absent or not a list."""
    return list(value) if is_list(value) else []


def strings_of(value: Any) -> list[str]:
    return [str(v) for v in items_of(value)]


def truthy(value: Any) -> bool:
    """Booleans arrive as bools from programs and as strings from provider config."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def chart_name(props: Any) -> str:
    """A Helm release's chart by its own name whichever way it is given: `nim-llm`, `ngc/nim-llm`,
    `oci://docker.io/envoyproxy/gateway-helm` or a packaged `…/nim-llm-1.1.2.tgz`."""
    chart = str(get_path(props, "chart", default="") or "")
    last = chart.rstrip("/").rsplit("/", 1)[-1]
    if last.endswith(".tgz"):
        last = re.sub(r"-v?\d+\.\d+\.\d+.*$", "", last.removesuffix(".tgz"))
    return last


def merged(defaults: Any, overrides: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else (lists included) replaces, and an
    explicit null removes the default."""
    if not (is_mapping(defaults) and is_mapping(overrides)):
        return overrides
    result: dict[str, Any] = dict(defaults)
    for key in overrides:
        try:
            value = overrides[key]
        except UnknownValueError as error:
            result[key] = UnknownLeaf(error)
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(defaults.get(key), value) if key in defaults else value
    return result


def walk(
    node: Any, path: tuple[str, ...] = (), needed: frozenset[str] = frozenset()
) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """Yield (path, key, value) for every mapping entry below `node`. An unknown value under a key in
    `needed` raises (the check can't run during preview); other unknowns are skipped."""
    if is_mapping(node):
        for key in list(node):
            try:
                value = node[key]
            except UnknownValueError:
                if key in needed:
                    raise
                continue
            yield path, str(key), value
            yield from walk(value, (*path, str(key)), needed)
    elif is_list(node):
        for index in range(len(node)):
            try:
                value = node[index]
            except UnknownValueError:
                continue
            yield from walk(value, (*path, str(index)), needed)
