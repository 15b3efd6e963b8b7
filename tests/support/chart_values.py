"""Which Helm values keys a pinned chart version accepts, from facts/charts (tools/derive_reference_facts.py).

A values key path is dotted (`controller.workflowNamespaces`). A key is allowed when its path is one of the
chart's `keys`. Below a path in `freeMaps` (maps passed through verbatim, such as `podAnnotations`,
`resources` or argo-cd's `configs.cm`) any sub-key is allowed. A list value is never descended: list items
are not checked, only that the key holding the list exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FACTS = Path(__file__).resolve().parents[2] / "facts" / "charts"


@dataclass(frozen=True)
class ChartKeys:
    keys: frozenset[str]
    free_maps: frozenset[str]


@cache
def chart_keys(chart: str, version: str) -> ChartKeys:
    path = FACTS / f"{chart}-{version}.json"
    if not path.is_file():
        known = sorted(p.stem for p in FACTS.glob(f"{chart}-*.json"))
        raise LookupError(
            f"no values facts for chart {chart} {version} ({path} is missing; facts exist for {known or 'none'}); "
            "add the chart to tools/derive_reference_facts.py and run it"
        )
    facts = json.loads(path.read_text(encoding="utf-8"))
    return ChartKeys(frozenset(facts["keys"]), frozenset(facts["freeMaps"]))


def unknown_values_keys(values: Mapping[str, Any], chart: str, version: str) -> list[str]:
    """Dotted paths of the keys in `values` that chart `version` does not accept, sorted."""
    allowed = chart_keys(chart, version)
    unknown: list[str] = []

    def walk(node: Mapping[Any, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if path not in allowed.keys:
                unknown.append(path)
            elif path not in allowed.free_maps and isinstance(value, Mapping):
                walk(value, path)

    walk(values, "")
    return sorted(unknown)
