"""The pack: its rules in order, their default enforcement and their default configuration."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, Policy

from . import (
    access,
    aks,
    aks_day2,
    argocd,
    cost,
    database,
    gateway,
    gpu,
    helm,
    kubernetes,
    network,
    stack,
    storage,
    tags,
    workflows,
)

PACK_NAME = "llmops-platform"
# Every rule states its own level; this applies only to a rule that does not.
PACK_ENFORCEMENT = EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    *aks.POLICIES,
    *aks_day2.POLICIES,
    *gpu.POLICIES,
    *helm.POLICIES,
    *kubernetes.POLICIES,
    *network.POLICIES,
    *storage.POLICIES,
    *database.POLICIES,
    *workflows.POLICIES,
    *argocd.POLICIES,
    *gateway.POLICIES,
    *access.POLICIES,
    *tags.POLICIES,
    *stack.POLICIES,
    *cost.POLICIES,
]


def default_config(policies: list[Policy]) -> dict[str, dict[str, Any]]:
    """Each configurable policy's knobs at their schema defaults: what the engine hands a policy when
    `--policy-pack-config` leaves it alone, and a starting point for such a file."""
    return {
        policy.name: {
            key: spec["default"] for key, spec in policy.config_schema.properties.items() if "default" in spec
        }
        for policy in policies
        if policy.config_schema is not None
    }


POLICY_CONFIG: dict[str, dict[str, Any]] = default_config(POLICIES)
