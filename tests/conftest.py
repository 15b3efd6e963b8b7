"""Shared fixtures: every shipped stack is evaluated once per session (see support.plans)."""

from __future__ import annotations

import pytest
from support.plans import STACKS, Plan, plan_of


@pytest.fixture(scope="session")
def dev() -> Plan:
    return plan_of("dev")


@pytest.fixture(scope="session")
def staging() -> Plan:
    return plan_of("staging")


@pytest.fixture(scope="session")
def prod() -> Plan:
    return plan_of("prod")


@pytest.fixture(scope="session", params=STACKS)
def any_stack(request: pytest.FixtureRequest) -> Plan:
    return plan_of(request.param)
