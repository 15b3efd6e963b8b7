"""Each shipped stack evaluated once per state of the sources (see support.plan_cache: the processes of a session
share it, and so do sessions until a source changes), with helpers to query what it registered."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from planner.evaluate import Evaluation, evaluate, stack_config
from planner.policy_runner import Verdict, run_policies
from planner.values import unwrap
from policies.pack.catalog import PACK_ENFORCEMENT, POLICIES
from policies.pack.record import Registration
from support.plan_cache import cached

STACKS = ("dev", "staging", "prod")

# Known secret values seeded into every shared evaluation, so tests can prove none leaks.
SEEDED_SECRETS = {
    "llmops:ngcApiKey": "nvapi-SEEDED-ngc-7f3a9c",
    "llmops:gitopsToken": "ghp_SEEDED_gitops_51b2e8",
    "llmops:gpuClusterKubeconfig": "apiVersion: v1\nkind: Config\n# SEEDED-kubeconfig-a41d\n",
    "llmops:ssoClientSecret": "SEEDED-sso-secret-90cc",
    "llmops:gatewayApiKey": "SEEDED-gateway-key-3e7d",
    "llmops:mlflowDbPassword": "SEEDED-mlflow-db-61f0",
    "llmops:mlflowAdminPassword": "SEEDED-mlflow-admin-c2b9",
    "llmops:postgresAdminPassword": "SEEDED-postgres-admin-5d3a",
    "llmops:argoArchiveDbPassword": "SEEDED-argo-archive-db-e84c",
    "llmops:ciRunnerGithubToken": "github_pat_SEEDED_runner_8d41",
}


@dataclass
class Plan:
    evaluation: Evaluation
    verdicts: list[Verdict]

    @property
    def registrations(self) -> list[Registration]:
        return self.evaluation.registrations

    @property
    def outputs(self) -> dict[str, Any]:
        return unwrap(self.evaluation.outputs)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_} named {name!r}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def inputs(self, registration: Registration) -> Any:
        """Inputs with secrets revealed (the seeded values), for asserting on wiring."""
        return unwrap(registration.inputs)

    def helm_release(self, release_name: str) -> Registration:
        found = [r for r in self.of_type("kubernetes:helm.sh/v3:Release") if r.inputs.get("name") == release_name]
        assert len(found) == 1, f"no single Helm release {release_name!r}"
        return found[0]

    def ancestors(self, registration: Registration) -> list[Registration]:
        chain = []
        by_urn = {r.urn: r for r in self.registrations}
        parent = by_urn.get(registration.parent)
        while parent is not None:
            chain.append(parent)
            parent = by_urn.get(parent.parent)
        return chain


@functools.cache
def plan_of(stack: str) -> Plan:
    return cached("plan", lambda: _plan(stack), {"stack": stack})


def _plan(stack: str) -> Plan:
    evaluation = evaluate(stack, secret_values=SEEDED_SECRETS)
    assert evaluation.ok, evaluation.config_problems
    return Plan(evaluation, run_policies(evaluation.registrations, POLICIES, PACK_ENFORCEMENT))


def evaluated(
    stack: str,
    secret_values: dict[str, str] | None = None,
    config_override: dict[str, Any] | None = None,
    placeholders_for_absent: bool = True,
) -> Evaluation:
    """`planner.evaluate.evaluate` of a variant of a stack, kept like the shared plans (each variant a test needs
    is evaluated once per state of the sources)."""
    arguments = {
        "stack": stack,
        "secret_values": secret_values,
        "config_override": config_override,
        "placeholders_for_absent": placeholders_for_absent,
    }
    return cached(
        "evaluation",
        lambda: evaluate(
            stack,
            secret_values=secret_values,
            config_override=copy.deepcopy(config_override),
            placeholders_for_absent=placeholders_for_absent,
        ),
        arguments,
    )


def stack_fixtures(load: Callable[[str], Plan], scope: Literal["session", "module"]) -> tuple[Any, ...]:
    """The fixtures `dev`, `staging`, `prod` and `any_stack` (each shipped stack), each plan from `load`.
    Unpack them into a conftest (session-wide) or a test module (module-wide, to override them)."""

    def one(stack: str) -> Any:
        def plan() -> Plan:
            return load(stack)

        return pytest.fixture(scope=scope, name=stack)(plan)

    def any_stack(request: pytest.FixtureRequest) -> Plan:
        return load(request.param)

    any_stack_fixture = pytest.fixture(scope=scope, params=STACKS, name="any_stack")(any_stack)
    return (*(one(stack) for stack in STACKS), any_stack_fixture)


def planner_cli_on_shared_plan(stack: str, monkeypatch: pytest.MonkeyPatch) -> Plan:
    """Make `python -m planner` (planner.__main__.main) plan `stack` from its shared plan: the evaluation, and the
    policy run over it (kept like the plan, once per policy config: the CLI passes the stack's budget). A policy run
    over any other registrations is the real one. Returns the shared plan."""
    import planner.__main__ as planner_cli

    plan = plan_of(stack)
    real = planner_cli.run_policies

    def run_policies(
        registrations: list[Registration], policies: list[Any], *args: Any, **kwargs: Any
    ) -> list[Verdict]:
        if registrations is not plan.registrations:
            return real(registrations, policies, *args, **kwargs)
        key = {"stack": stack, "policies": [p.name for p in policies], "args": args, "kwargs": kwargs}
        return cached("policies", lambda: real(registrations, policies, *args, **kwargs), key)

    def shared_evaluation(
        requested: str, *, config_override: object = None, placeholders_for_absent: bool = True
    ) -> Evaluation:
        # The CLI asks for the stack file's config with placeholders for absent secrets; the shared plan evaluated
        # that config (with known secret values seeded, which these tests do not look at).
        assert requested == stack and placeholders_for_absent, "the CLI asked for another evaluation"
        assert config_override == stack_config(stack), "the CLI did not pass the stack file's config"
        return plan.evaluation

    monkeypatch.setattr(planner_cli, "evaluate", shared_evaluation)
    monkeypatch.setattr(planner_cli, "run_policies", run_policies)
    return plan
