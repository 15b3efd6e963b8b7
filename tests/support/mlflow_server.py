"""A real MLflow tracking server for the pipeline tests (see tests/pipelines/conftest.py).

MLflow's own server app (`mlflow.server:app`, what `mlflow server` runs) in a subprocess on 127.0.0.1, configured
through the environment variables `mlflow server` sets for it. It is served directly rather than through the
`mlflow server` CLI, which imports it twice (CLI, then a uvicorn worker whose job runner also wants pandas) and
takes several times longer to answer. This module imports none of the server's packages.
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
from dataclasses import dataclass
from pathlib import Path

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


def server_packages_installed() -> bool:
    return all(map(importlib.util.find_spec, MLFLOW_SERVER_MODULES))


@dataclass
class MlflowServer:
    """The server; `process` is None in a pytest-xdist worker, which uses the one its controller started."""

    process: subprocess.Popen[bytes] | None
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
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # No usage telemetry from tests (see tests/pipelines/conftest.py), however the server was started.
                env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
            )
        return cls(process, f"http://127.0.0.1:{port}", workdir)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + MLFLOW_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
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
        if self.process is None:
            return  # the controller's
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        shutil.rmtree(self.workdir, ignore_errors=True)
