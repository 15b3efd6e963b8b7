"""Helpers shared by the rules."""

from __future__ import annotations

from typing import Any

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def get_path(props: Any, *path: str | int, default: Any = None) -> Any:
    """Read a nested property; a missing step gives `default` (unknown values still raise)."""
    current = props
    for step in path:
        try:
            current = current[step]
        except (KeyError, IndexError, TypeError):
            return default
        if current is None:
            return default
    return current
