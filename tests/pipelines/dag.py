"""Run an Argo WorkflowTemplate's DAG in-process, the way Argo would, from the YAML alone.

Each task runs its ClusterWorkflowTemplate's container command (`python -m pipelines.steps <args>`) as a
call of the steps' entry point, with the arguments, environment (values, Secret and ConfigMap references),
input artifacts and output parameters the templates declare, `{{...}}` substituted as Argo substitutes them.
Paths under /tmp and the mounted CA bundle are mapped into a per-task directory. Tasks start when their
`depends` expression is decided, concurrently, each in a thread with its own environment; retryStrategy
retries exit code 75. The onExit handler runs with {{workflow.status}} and {{workflow.failures}}. A run can
be stopped: running tasks are abandoned (Argo kills their pods) and the exit handler runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.steps.__main__ import main as run_step
from pipelines.steps._common import ENVIRONMENT

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
EXPRESSION = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
MOUNTED = ("/etc/llmops/ca",)


def load_components() -> dict[str, dict[str, Any]]:
    components = {}
    for path in sorted((PIPELINES / "components").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        components[document["metadata"]["name"]] = document["spec"]["templates"][0]
    return components


@dataclass
class TaskResult:
    phase: str
    exit_code: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0


class DagRun:
    def __init__(
        self,
        workflow: str,
        *,
        arguments: Mapping[str, str],
        workdir: Path,
        uid: str,
        secrets: Mapping[str, Mapping[str, str]] = {},
        config_maps: Mapping[str, Mapping[str, str]] = {},
    ) -> None:
        self.document = yaml.safe_load((PIPELINES / "workflows" / f"{workflow}.yaml").read_text())
        self.components = load_components()
        spec = self.document["spec"]
        declared = {p["name"]: p.get("value") for p in spec["arguments"]["parameters"]}
        unknown = set(arguments) - set(declared)
        assert not unknown, f"{workflow} has no arguments {unknown}"
        self.parameters = {**declared, **arguments}
        missing = [name for name, value in self.parameters.items() if value is None]
        assert not missing, f"no value for {missing}"
        self.workdir = workdir
        self.uid = uid
        self.name = f"{workflow}-{uid[:5]}"
        self.secrets = secrets
        self.config_maps = config_maps
        self.results: dict[str, TaskResult] = {}
        self.exit_results: dict[str, TaskResult] = {}
        self.status = "Running"
        self.stopped = threading.Event()
        self.stopped_steps: list[Future[TaskResult]] = []
        self._lock = threading.Lock()

    # -- substitution ---------------------------------------------------------------------------

    def substitute(self, text: str, inputs: Mapping[str, str] | None = None) -> str:
        def value(match: re.Match[str]) -> str:
            expression = match[1]
            parts = expression.split(".")
            if parts[:2] == ["workflow", "parameters"]:
                return str(self.parameters[parts[2]])
            if expression == "workflow.uid":
                return self.uid
            if expression == "workflow.name":
                return self.name
            if expression == "workflow.status":
                return self.status
            if expression == "workflow.failures":
                return json.dumps(self.failures())
            if parts[:2] == ["inputs", "parameters"] and inputs is not None:
                return inputs[parts[2]]
            if parts[0] == "tasks" and parts[2:4] == ["outputs", "parameters"]:
                result = self.results.get(parts[1])
                if result is None or parts[4] not in result.parameters:
                    raise LookupError(f"{expression} is not available")
                return result.parameters[parts[4]]
            raise LookupError(f"cannot substitute {expression}")

        return EXPRESSION.sub(value, text)

    def failures(self) -> list[dict[str, Any]]:
        return [
            {"displayName": name, "templateName": name, "phase": "Failed", "message": f"exit code {r.exit_code}"}
            for name, r in self.results.items()
            if r.phase == "Failed"
        ]

    def local_path(self, path: str, task_dir: Path) -> str:
        if path == "/tmp" or path.startswith("/tmp/"):
            return str(task_dir / "tmp") + path[4:]
        for mount in MOUNTED:
            if path.startswith(mount):
                return str(task_dir / "mounts") + path
        return path

    # -- one task -------------------------------------------------------------------------------

    def run_task(self, name: str, task: Mapping[str, Any]) -> TaskResult:
        template = self.components[task["templateRef"]["name"]]
        passed = {p["name"]: self.substitute(p["value"]) for p in task.get("arguments", {}).get("parameters", [])}
        inputs = {p["name"]: p["value"] for p in template.get("inputs", {}).get("parameters", []) if "value" in p}
        inputs.update(passed)
        limit = int(template.get("retryStrategy", {}).get("limit", 0))
        for attempt in range(limit + 1):
            task_dir = self.workdir / f"{name}-{attempt}"
            result = self._attempt(task, template, inputs, task_dir)
            if result.exit_code != 75:
                break
        return result

    def _attempt(
        self, task: Mapping[str, Any], template: Mapping[str, Any], inputs: Mapping[str, str], task_dir: Path
    ) -> TaskResult:
        (task_dir / "tmp").mkdir(parents=True)
        container = template["container"]

        def resolve(text: str) -> str:
            return self.local_path(self.substitute(text, inputs), task_dir)

        for artifact in template.get("inputs", {}).get("artifacts", []):
            [given] = [a for a in task["arguments"]["artifacts"] if a["name"] == artifact["name"]]
            producer, _, _, output = given["from"].strip("{} ").split(".")[1:5]
            shutil.copytree(self.results[producer].artifacts[output], resolve(artifact["path"]))
        for volume in template.get("volumes", []):
            if "configMap" in volume:
                [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
                target = Path(self.local_path(mount["mountPath"], task_dir))
                target.mkdir(parents=True)
                for key, content in self.config_maps.get(volume["configMap"]["name"], {}).items():
                    (target / key).write_text(content)
        env = {"PATH": os.environ.get("PATH", "")}
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = resolve(variable["value"])
                continue
            [(kind, ref)] = variable["valueFrom"].items()
            source = (self.secrets if kind == "secretKeyRef" else self.config_maps).get(ref["name"], {})
            if ref["key"] in source:
                env[variable["name"]] = source[ref["key"]]
            else:
                assert ref.get("optional"), f"{variable['name']}: {ref['name']}/{ref['key']} is required"
        assert container["command"] == ["python", "-m", "pipelines.steps"]
        argv = [resolve(arg) for arg in container["args"]]
        log = ""
        started = time.monotonic()
        ENVIRONMENT.set(env)
        try:
            code = run_step(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        except Exception:
            log = traceback.format_exc()
            code = 1
        result = TaskResult("Succeeded" if code == 0 else "Failed", code, argv=argv, env=env, log=log)
        result.seconds = time.monotonic() - started
        for parameter in template.get("outputs", {}).get("parameters", []):
            path = Path(resolve(parameter["valueFrom"]["path"]))
            if path.is_file():
                result.parameters[parameter["name"]] = path.read_text()
        for artifact in template.get("outputs", {}).get("artifacts", []):
            result.artifacts[artifact["name"]] = Path(resolve(artifact["path"]))
        return result

    # -- the DAG --------------------------------------------------------------------------------

    def _decided(self, expression: str | None, finished: Mapping[str, TaskResult]) -> bool | None:
        """True: run, False: omit, None: not decided yet."""
        if not expression:
            return True
        names = set(re.findall(r"([\w-]+)(?:\.\w+)?", expression))
        if not names <= finished.keys():
            return None

        def phase(match: re.Match[str]) -> str:
            result = finished[match[1]]
            wanted = match[2] or "Succeeded"
            return str(result.phase == wanted or (match[2] is None and result.phase == "Omitted"))

        python = re.sub(r"([\w-]+)(?:\.(\w+))?", phase, expression).replace("&&", " and ").replace("||", " or ")
        return bool(eval(python, {"__builtins__": {}}))

    def _run_dag(self, template_name: str, results: dict[str, TaskResult]) -> None:
        [template] = [t for t in self.document["spec"]["templates"] if t["name"] == template_name]
        tasks = {task["name"]: task for task in template["dag"]["tasks"]}
        running: dict[Future[TaskResult], str] = {}
        pool = ThreadPoolExecutor(max_workers=len(tasks))
        while len(results) < len(tasks):
            if self.stopped.is_set() and template_name == self.document["spec"]["entrypoint"]:
                # Argo kills the pods; the threads are left to end on their own (see `wait_for_stopped_steps`).
                for name in running.values():
                    results[name] = TaskResult("Failed", log="stopped")
                self.stopped_steps.extend(running)
                pool.shutdown(wait=False, cancel_futures=True)
                return
            started = set(running.values())
            for name, task in tasks.items():
                if name in results or name in started:
                    continue
                decision = self._decided(task.get("depends"), results)
                if decision is None:
                    continue
                when = task.get("when")
                if decision and when:
                    left, operator, right = re.split(r"\s*(==|!=)\s*", self.substitute(when))
                    decision = (left == right) is (operator == "==")
                if not decision:
                    results[name] = TaskResult("Omitted")
                    continue
                running[pool.submit(copy_context().run, self.run_task, name, task)] = name
            if running:
                done, _ = wait(running, timeout=0.05, return_when=FIRST_COMPLETED)
                for future in done:
                    results[running.pop(future)] = future.result()
        pool.shutdown(wait=True)

    def run(self) -> str:
        self._run_dag(self.document["spec"]["entrypoint"], self.results)
        failed = self.stopped.is_set() or any(r.phase == "Failed" for r in self.results.values())
        self.status = "Failed" if failed else "Succeeded"
        self._run_dag(self.document["spec"]["onExit"], self.exit_results)
        return self.status

    def stop(self) -> None:
        self.stopped.set()

    def wait_for_stopped_steps(self, timeout: float) -> bool:
        """True when the steps a stop left running have ended. A test must wait for them while the fakes and
        the fast clock are still there: afterwards a step would poll a vanished server until its real deadline,
        and the interpreter would wait for it at exit."""
        _, not_done = wait(self.stopped_steps, timeout=timeout)
        return not not_done

    def report(self) -> str:
        lines = []
        for name, result in {**self.results, **self.exit_results}.items():
            lines.append(
                f"--- {name}: {result.phase} ({result.exit_code}, {result.seconds:.2f}s)\n{result.log[-3000:]}"
            )
        return "\n".join(lines)
