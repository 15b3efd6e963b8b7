"""Shared fixtures for the pipeline tests.

The step tests need httpx and pytest-httpserver, the MLflow test mlflow-skinny plus what the
tracking server imports (Flask, Flask-CORS, SQLAlchemy, alembic; the full mlflow package has
them all). Each test module skips itself when its packages are missing, so this file imports
none of them.

The MLflow tracking server is real (support.mlflow_server). It starts when collection reaches the
module that needs it, so its boot overlaps the other tests, and the tests that use it run last.
Under pytest-xdist the controller starts the one server before its workers collect (tests/conftest.py),
every worker uses that one, and the tests that use it run first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.mlflow_server import MLFLOW_TEST_MODULES, MlflowServer, server_packages_installed

# MLflow's usage telemetry runs in a background thread that edits os.environ while the client
# reads it (a KeyError race seen here); tests must not phone home anyway. Set before any test
# module imports mlflow.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

MLFLOW_FIXTURE = "mlflow_tracking_uri"

_server: MlflowServer | None = None


def _shared_server(config: pytest.Config) -> MlflowServer | None:
    """In a pytest-xdist worker, the server its controller started (see tests/conftest.py), if it started one."""
    shared = getattr(config, "workerinput", {}).get("mlflow_server")
    return MlflowServer(None, shared["url"], Path(shared["workdir"])) if shared else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    global _server
    if file_path.name in MLFLOW_TEST_MODULES and _server is None and server_packages_installed():
        _server = _shared_server(parent.config) or MlflowServer.start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_mlflow = [item for item in items if MLFLOW_FIXTURE in getattr(item, "fixturenames", ())]
    others = [item for item in items if item not in needs_mlflow]
    # In one process they run last, so the server boots meanwhile. Under xdist it has booted while the workers
    # collected; they run first, so these longest tests are shared out among the workers, not left to the end.
    items[:] = needs_mlflow + others if _shared_server(config) else others + needs_mlflow


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()


@pytest.fixture(scope="session")
def mlflow_tracking_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a real MLflow tracking server on 127.0.0.1, started once for the session."""
    global _server
    if _server is None:
        _server = _shared_server(request.config) or MlflowServer.start()
    _server.wait_ready()
    yield _server.url
    _server.stop()
