"""Run the real Pulumi program under mocks with preview semantics and capture what it registers."""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_in_stack

from planner.mocks import CapturingMonitor, PlanMocks
from policies.pack.record import Registration

if TYPE_CHECKING:
    from components.config import PlatformConfig

PROJECT_DIR = Path(__file__).resolve().parent.parent


def placeholder(key: str) -> str:
    """What the planner passes for a secret the stack file does not carry in clear. Letters, digits and `-_.:`
    only, so it passes the checks a real secret must (the MLflow passwords' character rules)."""
    return f"placeholder.{key}"


@dataclass
class Evaluation:
    project: str
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]
    config_problems: list[str]
    placeholders: list[str]
    secret_values: dict[str, str]
    unanswered_calls: list[str] = field(default_factory=list)
    # The stack file's `config:` as evaluated (secure values still encrypted), for the summary's secrets line.
    stack_config: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.config_problems


def project_name(project_dir: Path = PROJECT_DIR) -> str:
    return str(yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"])


class UnknownStack(SystemExit):
    """No stacks/Pulumi.<stack>.yaml: `python -m planner` exits 2 with this one line (other tools exit 1)."""


def stack_config(stack: str, project_dir: Path = PROJECT_DIR, stacks_dir: Path | None = None) -> dict[str, Any]:
    stacks_dir = stacks_dir or project_dir / "stacks"
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks_dir.glob("Pulumi.*.yaml"))
        raise UnknownStack(f"unknown stack {stack!r}; stacks: {', '.join(known)}")
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})


def engine_config(
    raw: dict[str, Any],
    secret_keys: list[str],
    secret_values: dict[str, str],
    placeholders_for_absent: bool = True,
    generated: Collection[str] = (),
) -> tuple[dict[str, str], list[str], list[str]]:
    """Config as the engine hands it to a program: `ns:key` -> string (objects JSON-encoded).

    Encrypted (`secure:`) secrets get a marked placeholder, since only the stack's secrets provider
    can decrypt them; so do absent ones unless `placeholders_for_absent` is off, or they are among
    `generated` (the program generates those when unset, as it would on `pulumi up`). `secret_values`
    lets tests seed known values to prove they never appear in clear.
    """
    values: dict[str, str] = {}
    encrypted: set[str] = set()
    placeholders: list[str] = []
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            encrypted.add(key)
        else:
            values[key] = value if isinstance(value, str) else json.dumps(value)
    for key in secret_keys:
        if key in secret_values:
            values[key] = secret_values[key]
        elif key in encrypted or (key not in values and placeholders_for_absent and key not in generated):
            values[key] = placeholder(key)
            placeholders.append(key)
    return values, [k for k in secret_keys if k in values], placeholders


def platform_config_of(stack_file_config: Mapping[str, Any]) -> PlatformConfig:
    """The typed config of a stack file's `config:`, read as the engine hands it to the program (secrets are not
    part of it). Raises the config's ConfigError when the program would refuse it."""
    from components.config import parse_config, raw_config_from_pulumi

    values, _, _ = engine_config(dict(stack_file_config), [], {})
    return parse_config(raw_config_from_pulumi(values))


def evaluate(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    secret_values: dict[str, str] | None = None,
    config_override: dict[str, Any] | None = None,
    placeholders_for_absent: bool = True,
) -> Evaluation:
    """Evaluate `__main__.py` for `stack`. `config_override` replaces the stack file's config;
    with `placeholders_for_absent` off, a required secret missing from the stack file is an error."""
    from components.config import GENERATED_SECRET_KEYS, NAMESPACE, SECRET_KEYS

    project = project_name(project_dir)
    raw = config_override if config_override is not None else stack_config(stack, project_dir)
    secret_keys = [f"{NAMESPACE}:{key}" for key in SECRET_KEYS]
    seeded = dict(secret_values or {})
    generated = [f"{NAMESPACE}:{key}" for key in GENERATED_SECRET_KEYS]
    values, secrets, placeholders = engine_config(raw, secret_keys, seeded, placeholders_for_absent, generated)

    mocks = PlanMocks()
    monitor = CapturingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime_settings.ROOT.set(None)
    runtime_config.set_all_config(values, secrets)
    pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=True, monitor=monitor)
    # set_mocks registers a throwaway root; the program gets a fresh one so its exports are recorded.
    runtime_settings.ROOT.set(None)
    runtime_settings.SETTINGS.rpc_manager.clear()

    problems: list[str] = []
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    def program() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    try:
        loop.run_until_complete(run_in_stack(program))
    except pulumi.RunError as error:
        problems = str(error).splitlines()
    finally:
        loop.close()
        asyncio.set_event_loop(None)

    stack_urn = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    return Evaluation(
        project=project,
        stack=stack,
        # In URN order: the program registers asynchronously, so the order of arrival changes from run to run, and
        # with it every listing made from it (plan.json, report.txt, the graph, the order of policy verdicts).
        registrations=sorted(monitor.registrations, key=lambda registration: registration.urn),
        outputs=monitor.component_outputs.get(stack_urn, {}),
        config_problems=problems,
        placeholders=placeholders,
        secret_values=seeded,
        unanswered_calls=mocks.unanswered_calls,
        stack_config=dict(raw),
    )
