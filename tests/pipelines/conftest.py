"""Shared fixtures for the pipeline tests.

The step tests need httpx and pytest-httpserver, the MLflow test mlflow-skinny plus what the
tracking server imports (Flask, Flask-CORS, SQLAlchemy, alembic; the full mlflow package has
them all). Each test module skips itself when its packages are missing, so this file imports
none of them.

The MLflow tracking server is real: MLflow's own server app (`mlflow.server:app`, what
`mlflow server` runs) in a subprocess on 127.0.0.1, configured through the environment
variables `mlflow server` sets for it. It is served directly rather than through the
`mlflow server` CLI, which imports it twice (CLI, then a uvicorn worker whose job runner also
wants pandas) and takes several times longer to answer. It starts when collection reaches the
module that needs it, so its boot overlaps the other tests, and the tests that use it run last.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# MLflow's usage telemetry runs in a background thread that edits os.environ while the client
# reads it (a KeyError race seen here); tests must not phone home anyway. Set before any test
# module imports mlflow, inherited by the server subprocess.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

MLFLOW_FIXTURE = "mlflow_tracking_uri"
MLFLOW_TEST_MODULES = ("test_dag_end_to_end.py", "test_log_to_mlflow.py")
MLFLOW_SERVER_MODULES = ("mlflow", "flask", "flask_cors", "sqlalchemy", "alembic")
MLFLOW_READY_TIMEOUT = 180.0
SERVE_MLFLOW = """
import os, sys
from mlflow.server.constants import ARTIFACT_ROOT_ENV_VAR, BACKEND_STORE_URI_ENV_VAR
os.environ[BACKEND_STORE_URI_ENV_VAR], os.environ[ARTIFACT_ROOT_ENV_VAR], port = sys.argv[1:]
from mlflow.server import app
app.run(host="127.0.0.1", port=int(port))
"""


@dataclass
class MlflowServer:
    process: subprocess.Popen[bytes]
    url: str
    workdir: Path

    @classmethod
    def start(cls) -> MlflowServer:
        workdir = Path(tempfile.mkdtemp(prefix="mlflow-test-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [
            sys.executable, "-c", SERVE_MLFLOW,
            f"sqlite:///{workdir / 'mlflow.db'}", str(workdir / "artifacts"), str(port),
        ]  # fmt: skip
        # Own session, so stop() can signal everything the server started.
        with (workdir / "server.log").open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return cls(process, f"http://127.0.0.1:{port}", workdir)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + MLFLOW_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                # An API call, not /health: the first one creates the database, which takes a while.
                probe = f"{self.url}/api/2.0/mlflow/experiments/search?max_results=1"
                with urllib.request.urlopen(probe, timeout=30) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"mlflow server not ready after {MLFLOW_READY_TIMEOUT:g}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        shutil.rmtree(self.workdir, ignore_errors=True)


_server: MlflowServer | None = None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    global _server
    if (
        file_path.name in MLFLOW_TEST_MODULES
        and _server is None
        and all(map(importlib.util.find_spec, MLFLOW_SERVER_MODULES))
    ):
        _server = MlflowServer.start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_mlflow = [item for item in items if MLFLOW_FIXTURE in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in needs_mlflow] + needs_mlflow


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()


@pytest.fixture(scope="session")
def mlflow_tracking_uri() -> Iterator[str]:
    """URL of a real MLflow tracking server on 127.0.0.1, started once for the session."""
    global _server
    if _server is None:
        _server = MlflowServer.start()
    _server.wait_ready()
    yield _server.url
    _server.stop()
