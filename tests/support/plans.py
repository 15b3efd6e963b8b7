"""Each shipped stack evaluated once per test session, with helpers to query what it registered."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from planner.evaluate import Evaluation, evaluate
from planner.policy_runner import Verdict, run_policies
from planner.values import unwrap
from policies.pack.catalog import PACK_ENFORCEMENT, POLICIES
from policies.pack.record import Registration

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
    evaluation = evaluate(stack, secret_values=SEEDED_SECRETS)
    assert evaluation.ok, evaluation.config_problems
    return Plan(evaluation, run_policies(evaluation.registrations, POLICIES, PACK_ENFORCEMENT))


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
