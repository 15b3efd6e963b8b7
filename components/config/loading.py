"""Loading the stack's `llmops:` config and secrets from the Pulumi engine."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi

from components.config.base import NAMESPACE
from components.config.parsing import parse_config
from components.config.platform import PlatformConfig
from components.config.secrets import SECRET_KEYS, PlatformSecrets


def raw_config_from_pulumi(values: Mapping[str, str]) -> dict[str, Any]:
    """Turn Pulumi's flat `llmops:<key>` strings into the nested mapping the models take.

    Object values arrive JSON-encoded; plain strings stay strings. Secret keys are skipped here:
    they never enter the models.
    """
    raw: dict[str, Any] = {}
    for full_key, text in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in SECRET_KEYS:
            continue
        try:
            raw[key] = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raw[key] = text
    return raw


def _namespace_values() -> dict[str, str]:
    """Every `llmops:*` value the engine handed the program, so misspelled top-level keys are caught."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {k: v for k, v in values.items() if k.startswith(f"{NAMESPACE}:")}


def load() -> tuple[PlatformConfig, PlatformSecrets]:
    """Load and validate the stack's `llmops:` config; raise ConfigError listing every problem."""
    config = parse_config(raw_config_from_pulumi(_namespace_values()))
    pulumi_config = pulumi.Config(NAMESPACE)
    return config, PlatformSecrets.from_config(config, {key: pulumi_config.get_secret(key) for key in SECRET_KEYS})
