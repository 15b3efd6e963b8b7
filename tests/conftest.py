"""Shared fixtures: every shipped stack is evaluated once per session (see support.plans)."""

from __future__ import annotations

from support.plans import plan_of, stack_fixtures

dev, staging, prod, any_stack = stack_fixtures(plan_of, "session")
