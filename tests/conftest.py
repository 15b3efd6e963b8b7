"""Shared fixtures: every shipped stack is evaluated once per state of the sources (see support.plans), and the
session-wide setup of a run on several processes (pytest-xdist, `-n` in pyproject.toml)."""

from __future__ import annotations

import gc
from collections.abc import Generator
from pathlib import Path

import pytest
from support.mlflow_server import MLFLOW_TEST_MODULES, MlflowServer, server_packages_installed
from support.plans import plan_of, stack_fixtures

dev, staging, prod, any_stack = stack_fixtures(plan_of, "session")

PIPELINE_TESTS = Path(__file__).resolve().parent / "pipelines"


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collection imports the heavy libraries (Pulumi, MLflow, Hera, the Kubernetes client): objects that live as
    long as the process. Garbage collection passes over them would cost seconds, during collection and every
    full collection after it; so none runs while collecting, and what collection built is frozen (kept out of
    every later pass)."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.freeze()
        gc.enable()


# ------------------------------------------------------------------------------------------------------
# pytest-xdist: the controller starts the one MLflow tracking server its workers use (tests/pipelines)
# ------------------------------------------------------------------------------------------------------

_mlflow: MlflowServer | None = None


def _selects_mlflow_tests(config: pytest.Config) -> bool:
    """Whether the paths the run was given hold a test module that uses the server."""
    modules = [PIPELINE_TESTS / name for name in MLFLOW_TEST_MODULES]
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if any(module == path or path in module.parents for module in modules):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # Before the controller starts its workers (xdist's own sessionstart runs last), so the server boots while
    # they collect.
    global _mlflow
    config = session.config
    if config.pluginmanager.has_plugin("dsession") and _selects_mlflow_tests(config) and server_packages_installed():
        _mlflow = MlflowServer.start()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    if _mlflow is not None:
        node.workerinput["mlflow_server"] = {"url": _mlflow.url, "workdir": str(_mlflow.workdir)}  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _mlflow is not None:
        _mlflow.stop()
