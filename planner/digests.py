"""Secret digests: plan.json holds "[secret]" in place of each secret, so to still show that a secret
changed, `python -m planner.diff` gives both planners a one-off random key (`LLMOPS_PLAN_DIGEST_KEY`)
and each records a keyed digest of every secret input under `secretDigests`; the key dies with the
diff, so the digests reveal nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi.runtime import rpc

from planner.values import stable
from policies.pack.record import Registration

DIGEST_ENV = "LLMOPS_PLAN_DIGEST_KEY"


def raw_key(path: Iterable[str | int]) -> str:
    return json.dumps(list(path))


def secret_digests(registrations: Iterable[Registration], key: bytes) -> dict[str, dict[str, str]]:
    """URN -> {raw path of each secret input: keyed digest of its value}."""
    found: dict[str, dict[str, str]] = {}

    def walk(value: Any, path: tuple[str | int, ...], into: dict[str, str]) -> None:
        if rpc.is_rpc_secret(value):
            text = json.dumps(stable(value), sort_keys=True, default=str)
            into[raw_key(path)] = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, (*path, str(k)), into)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(v, (*path, i), into)

    for registration in registrations:
        digests: dict[str, str] = {}
        walk(registration.inputs, (), digests)
        if digests:
            found[registration.urn] = digests
    return found


def digests_from_environment(registrations: Iterable[Registration]) -> dict[str, dict[str, str]] | None:
    key = os.environ.get(DIGEST_ENV)
    return secret_digests(registrations, bytes.fromhex(key)) if key else None
