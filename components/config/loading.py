"""Loading the stack's `llmops:` config and secrets from the Pulumi engine."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pulumi

from components.config.base import NAMESPACE
from components.config.parsing import ConfigError, parse_config
from components.config.platform import PlatformConfig
from components.config.secrets import SECRET_KEYS, PlatformSecrets, password_problems


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


# GitHub Actions sets it in every job: the commit `pulumi up` (and the plan) runs from.
DEPLOYMENT_REVISION_ENV = "GITHUB_SHA"


def with_deployment_revision(raw: Mapping[str, Any], revision: str | None) -> dict[str, Any]:
    """`raw` with the deployment's commit as the default of `pipelines.gitCommit` and `pipelines.configRevision`:
    the pipeline code and the platform config live in this repository, so the commit CI deploys from is the
    revision of both unless the stack names another (e.g. a step image built elsewhere)."""
    if not revision:
        return dict(raw)
    pipelines = raw.get("pipelines")
    if pipelines is not None and not isinstance(pipelines, dict):
        return dict(raw)  # not an object: validation words the problem
    filled = {"gitCommit": revision, "configRevision": revision, **(pipelines or {})}
    return {**raw, "pipelines": filled}


def load() -> tuple[PlatformConfig, PlatformSecrets]:
    """Load and validate the stack's `llmops:` config; raise ConfigError listing every problem."""
    raw = with_deployment_revision(raw_config_from_pulumi(_namespace_values()), os.environ.get(DEPLOYMENT_REVISION_ENV))
    config = parse_config(raw)
    pulumi_config = pulumi.Config(NAMESPACE)
    # Read in clear only to check what the charts can carry; from here on each is a secret Output.
    plain = {key: pulumi_config.get(key) for key in SECRET_KEYS}
    if problems := password_problems(plain):
        raise ConfigError(problems)
    secrets = {key: None if value is None else pulumi.Output.secret(value) for key, value in plain.items()}
    return config, PlatformSecrets.from_config(config, secrets)
