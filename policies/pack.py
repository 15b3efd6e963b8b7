"""The policies of the pack and their default enforcement."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from policies.helm import helm_release_pins_version

PACK_NAME = "llmops-platform"
PACK_ENFORCEMENT = EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    helm_release_pins_version,
]
