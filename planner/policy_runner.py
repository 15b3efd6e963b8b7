"""Run the CrossGuard pack on captured registrations with the engine's semantics.

As under `pulumi preview --policy-pack`: a policy's enforcement level comes from the pack's config,
else the policy, else the pack; `not_applicable` skips; reading an unknown value turns the check into
an advisory "can't run during preview" note; secrets are visible to policies, never in their output.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies.pack.record import Registration, rebuild


@dataclass(frozen=True)
class Verdict:
    policy: str
    enforcement: str
    urn: str
    message: str


def _wire(value: Any) -> Any:
    """Captured inputs in the analyzer's wire form: unknowns as the sentinel, secrets signed."""
    return rebuild(
        value,
        lambda leaf: UNKNOWN_STRING_VALUE if isinstance(leaf, Unknown) else leaf,
        secret=lambda revealed: {rpc._special_sig_key: rpc._special_secret_sig, "value": revealed},
    )


def _props(registration: Registration) -> Any:
    return unknown_checking_proxy(deserialize_properties(_wire(registration.inputs)))


def _options(registration: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=registration.protect,
        ignore_changes=list(registration.ignore_changes),
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=registration.parent or None,
    )


def _level(policy: Any, pack_level: EnforcementLevel, config: dict[str, Any]) -> EnforcementLevel:
    override = config.get(policy.name)
    if isinstance(override, EnforcementLevel):
        return override
    if isinstance(override, dict) and "enforcementLevel" in override:
        return EnforcementLevel(override["enforcementLevel"])
    return policy.enforcement_level or pack_level


def _policy_config(policy: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The policy's config as the engine hands it over: schema defaults, then the pack config on top."""
    schema = getattr(policy, "config_schema", None)
    properties = getattr(schema, "properties", None) or {}
    values = {k: v["default"] for k, v in properties.items() if isinstance(v, dict) and "default" in v}
    override = config.get(policy.name)
    if isinstance(override, dict):
        values.update({k: v for k, v in override.items() if k != "enforcementLevel"})
    return values


def _run(call: Any) -> None:
    result = call()
    if isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def run_policies(
    registrations: list[Registration],
    policies: list[Any],
    pack_level: EnforcementLevel = EnforcementLevel.ADVISORY,
    config: dict[str, Any] | None = None,
    stack_tags: dict[str, str] | None = None,
) -> list[Verdict]:
    config = config or {}
    verdicts: list[Verdict] = []
    by_urn = {r.urn: r for r in registrations}
    providers = {r.urn: r for r in registrations if r.type.startswith("pulumi:providers:")}

    def reporter(policy: Any, level: EnforcementLevel, default_urn: str) -> Any:
        # The engine reports a violation that remediation did not fix as mandatory.
        reported = EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level

        def report(message: str, urn: str | None = None) -> None:
            verdicts.append(Verdict(policy.name, reported.value, urn or default_urn, message))

        return report

    def attempt(policy: Any, level: EnforcementLevel, urn: str, call: Any) -> None:
        try:
            _run(call)
        except _NotApplicableError:
            pass
        except UnknownValueError as error:
            verdicts.append(
                Verdict(
                    policy.name,
                    EnforcementLevel.ADVISORY.value,
                    urn,
                    f"can't run policy during preview: {error.message}",
                )
            )

    for policy in policies:
        level = _level(policy, pack_level, config)
        if level == EnforcementLevel.DISABLED:
            continue
        policy_config = _policy_config(policy, config)
        if isinstance(policy, ResourceValidationPolicy):
            for registration in registrations:
                if not registration.custom:
                    continue
                provider = providers.get(registration.provider)
                args = ResourceValidationArgs(
                    registration.type,
                    _props(registration),
                    registration.urn,
                    registration.name,
                    _options(registration),
                    PolicyProviderResource(provider.type, _props(provider), provider.urn, provider.name)
                    if provider
                    else None,
                    policy_config,
                    stack_tags,
                )
                report = reporter(policy, level, registration.urn)
                attempt(policy, level, registration.urn, lambda p=policy, a=args, r=report: p.validate(a, r))
        elif isinstance(policy, StackValidationPolicy):
            resources: dict[str, PolicyResource] = {}
            for registration in registrations:
                resources[registration.urn] = PolicyResource(
                    registration.type,
                    _props(registration),
                    registration.urn,
                    registration.name,
                    _options(registration),
                    None,
                    None,
                    [],
                    {},
                )
            for urn, resource in resources.items():
                registration = by_urn[urn]
                resource.parent = resources.get(registration.parent)
                resource.dependencies = [resources[d] for d in registration.dependencies if d in resources]
                resource.property_dependencies = {
                    k: [resources[d] for d in v if d in resources]
                    for k, v in registration.property_dependencies.items()
                }
            stack_args = StackValidationArgs(list(resources.values()), policy_config, stack_tags)
            report = reporter(policy, level, "")
            attempt(policy, level, "", lambda p=policy, a=stack_args, r=report: p.validate(a, r))
    return verdicts
