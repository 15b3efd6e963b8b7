"""The Argo templates: valid against hera's models, internally consistent, hardened, wired as designed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows.models import ClusterWorkflowTemplate, WorkflowTemplate

from pipelines.steps import STEPS

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
COMPONENT_FILES = sorted((PIPELINES / "components").glob("*.yaml"))
WORKFLOW_FILES = sorted((PIPELINES / "workflows").glob("*.yaml"))
IMAGE_PLACEHOLDER = "llmops.local/pipeline-steps:placeholder"
URL_PARAMETERS = {
    "datastore-url": "DATASTORE_URL",
    "entity-store-url": "ENTITY_STORE_URL",
    "customizer-url": "CUSTOMIZER_URL",
    "evaluator-url": "EVALUATOR_URL",
    "nim-url": "NIM_URL",
    "judge-url": "JUDGE_URL",
    "mlflow-tracking-uri": "MLFLOW_TRACKING_URI",
}
# Steps whose result depends only on their inputs: retrying them cannot help.
DETERMINISTIC_STEPS = {"prepare-dataset", "gate"}
EVALUATIONS = [f"{side}-{kind}" for side in ("base", "candidate") for kind in ("benchmarks", "business", "judge")]
TASK_REFERENCE = re.compile(r"\{\{tasks\.([\w-]+)\.outputs\.(parameters|artifacts)\.([\w-]+)\}\}")


@cache
def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@cache
def components() -> dict[str, dict[str, Any]]:
    return {load(path)["metadata"]["name"]: load(path) for path in COMPONENT_FILES}


def step_template(component: dict[str, Any]) -> dict[str, Any]:
    [template] = component["spec"]["templates"]
    return template


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for child in value.values():
            yield from strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from strings(child)


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from keys(child)


def dropped_fields(original: Any, dumped: Any, path: str = "") -> list[str]:
    """Fields hera's models did not keep: misspelled or unknown to Argo."""
    if isinstance(original, dict):
        missing = [f"{path}.{key}" for key in original if key not in dumped]
        return missing + [
            problem
            for key, child in original.items()
            if key in dumped
            for problem in dropped_fields(child, dumped[key], f"{path}.{key}")
        ]
    if isinstance(original, list):
        return [
            problem for i, child in enumerate(original) for problem in dropped_fields(child, dumped[i], f"{path}[{i}]")
        ]
    return [] if str(original) == str(dumped) else [f"{path}: {original!r} became {dumped!r}"]


def test_every_step_has_a_component_and_the_expected_files_exist() -> None:
    assert {path.stem for path in COMPONENT_FILES} == set(STEPS)
    assert {path.stem for path in WORKFLOW_FILES} == {"lora-finetune-evaluate-deploy", "evaluate-new-base-model"}


@pytest.mark.parametrize("path", COMPONENT_FILES + WORKFLOW_FILES, ids=lambda path: path.name)
def test_round_trips_through_hera_without_losing_fields(path: Path) -> None:
    document = load(path)
    assert document["apiVersion"] == "argoproj.io/v1alpha1"
    model = {"ClusterWorkflowTemplate": ClusterWorkflowTemplate, "WorkflowTemplate": WorkflowTemplate}[document["kind"]]
    dumped = model.model_validate(document).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dropped_fields(document, dumped) == []


def test_no_argo_v4_removed_synchronization_fields() -> None:
    for path in COMPONENT_FILES + WORKFLOW_FILES:
        assert not {"semaphore", "mutex", "podPriority"} & set(keys(load(path))), path.name


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda path: path.stem)
def test_component_runs_its_step_with_declared_inputs_and_outputs(path: Path) -> None:
    component = load(path)
    step = path.stem
    assert component["kind"] == "ClusterWorkflowTemplate"
    assert component["metadata"]["name"] == f"llmops-{step}"
    template = step_template(component)
    assert template["name"] == step
    container = template["container"]
    assert container["image"] == IMAGE_PLACEHOLDER
    assert container["command"] == ["python", "-m", "pipelines.steps"]
    assert container["args"][0] == step
    assert container["args"][-2:] == ["--output-dir", "/tmp/outputs"]

    inputs = {parameter["name"]: parameter for parameter in template["inputs"].get("parameters", [])}
    used = set(re.findall(r"\{\{inputs\.parameters\.([\w-]+)\}\}", "\n".join(strings(template))))
    assert used == set(inputs), "every input is used and every used input is declared"

    source = (PIPELINES / "steps" / f"{STEPS[step]}.py").read_text()
    for output in template.get("outputs", {}).get("parameters", []):
        assert output["valueFrom"]["path"] == f"/tmp/outputs/{output['name']}"
        assert f'"{output["name"]}"' in source, f"{step} never writes {output['name']}"


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda path: path.stem)
def test_service_urls_are_inputs_without_defaults_passed_as_env(path: Path) -> None:
    template = step_template(load(path))
    inputs = {parameter["name"]: parameter for parameter in template["inputs"]["parameters"]}
    env = {variable["name"]: variable for variable in template["container"]["env"]}
    for name in inputs.keys() & URL_PARAMETERS.keys():
        assert "value" not in inputs[name], f"{name} must have no default"
        assert env[URL_PARAMETERS[name]]["value"] == f"{{{{inputs.parameters.{name}}}}}"
    for variable in env.values():
        if "valueFrom" in variable:
            ref = variable["valueFrom"]["secretKeyRef"]
            # The platform always creates MLflow's credentials; the other secrets are the team's to add.
            if ref["name"] == "mlflow-tracking-credentials":
                assert ref["key"] in {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
            else:
                assert ref["optional"] is True


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda path: path.stem)
def test_component_is_hardened_and_bounded(path: Path) -> None:
    template = step_template(load(path))
    container = template["container"]
    pod = template["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}
    assert int(template["activeDeadlineSeconds"]) > 0
    # A read-only root filesystem needs a writable /tmp for outputs and artifacts.
    [mount] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    [volume] = [volume for volume in template["volumes"] if volume["name"] == mount["name"]]
    assert "emptyDir" in volume


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda path: path.stem)
def test_api_calling_steps_retry_with_backoff_only_on_transient_failures(path: Path) -> None:
    template = step_template(load(path))
    if path.stem in DETERMINISTIC_STEPS:
        assert "retryStrategy" not in template
        return
    retry = template["retryStrategy"]
    assert retry["limit"] == "3"
    assert set(retry["backoff"]) >= {"duration", "factor", "maxDuration"}
    assert '"75"' in retry["expression"], "retries only the steps' transient exit code (and pod errors)"


def test_customize_holds_a_gpu_semaphore() -> None:
    template = step_template(components()["llmops-customize"])
    assert template["synchronization"] == {
        "semaphores": [{"configMapKeyRef": {"name": "llmops-gpu-semaphore", "key": "gpu-jobs"}}]
    }


def dag_tasks(workflow: dict[str, Any], template_name: str) -> dict[str, dict[str, Any]]:
    [template] = [t for t in workflow["spec"]["templates"] if t["name"] == template_name]
    return {task["name"]: task for task in template["dag"]["tasks"]}


def direct_dependencies(task: dict[str, Any]) -> set[str]:
    expression = task.get("depends", "")
    return {token.split(".")[0] for token in re.findall(r"[\w.-]+", expression)}


def ancestors(tasks: dict[str, dict[str, Any]], name: str) -> set[str]:
    found: set[str] = set()
    pending = list(direct_dependencies(tasks[name]))
    while pending:
        parent = pending.pop()
        if parent not in found:
            found.add(parent)
            pending += direct_dependencies(tasks[parent])
    return found


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.stem)
def test_workflow_spec_settings(path: Path) -> None:
    workflow = load(path)
    assert workflow["kind"] == "WorkflowTemplate"
    spec = workflow["spec"]
    assert spec["serviceAccountName"] == "llm-pipeline-runner"
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0 and spec["ttlStrategy"]["secondsAfterFailure"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    arguments = {parameter["name"]: parameter for parameter in spec["arguments"]["parameters"]}
    for name, parameter in arguments.items():
        is_url = name.endswith(("-url", "-uri"))
        assert ("value" in parameter) is not is_url, f"{name}: URLs come from the platform, the rest has defaults"
    used = set(re.findall(r"\{\{workflow\.parameters\.([\w-]+)\}\}", "\n".join(strings(spec["templates"]))))
    assert used == set(arguments), "every argument is used and every used argument is declared"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.stem)
def test_every_task_references_a_component_with_matching_arguments(path: Path) -> None:
    workflow = load(path)
    for template in workflow["spec"]["templates"]:
        tasks = {task["name"]: task for task in template["dag"]["tasks"]}
        for name, task in tasks.items():
            reference = task["templateRef"]
            assert reference["clusterScope"] is True
            component = components()[reference["name"]]
            step = step_template(component)
            assert reference["template"] == step["name"]

            inputs = {parameter["name"]: parameter for parameter in step["inputs"].get("parameters", [])}
            given = {parameter["name"] for parameter in task.get("arguments", {}).get("parameters", [])}
            assert given <= inputs.keys(), f"{name} passes unknown parameters {given - inputs.keys()}"
            required = {input_name for input_name, parameter in inputs.items() if "value" not in parameter}
            assert required <= given, f"{name} misses required parameters {required - given}"
            artifacts = {artifact["name"] for artifact in step["inputs"].get("artifacts", [])}
            assert {artifact["name"] for artifact in task.get("arguments", {}).get("artifacts", [])} == artifacts

            for producer, kind, output in TASK_REFERENCE.findall("\n".join(strings(task))):
                assert producer in ancestors(tasks, name), f"{name} reads {producer}, which is not an ancestor"
                produced = step_template(components()[tasks[producer]["templateRef"]["name"]])["outputs"][kind]
                assert output in {item["name"] for item in produced}, f"{producer} has no output {kind}.{output}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.stem)
def test_evaluations_run_in_parallel_and_feed_the_gate(path: Path) -> None:
    tasks = dag_tasks(load(path), "main")
    dependencies = {name: tasks[name]["depends"] for name in EVALUATIONS}
    assert len(set(dependencies.values())) == 1, dependencies
    assert direct_dependencies(tasks["gate"]) == set(EVALUATIONS)
    for name in EVALUATIONS:
        assert not set(EVALUATIONS) & ancestors(tasks, name)
    # The outcome is recorded whether the gate accepts or rejects.
    assert tasks["log"]["depends"] == "gate.Succeeded || gate.Failed"


def test_lora_pipeline_order_gate_before_deploy() -> None:
    tasks = dag_tasks(load(PIPELINES / "workflows" / "lora-finetune-evaluate-deploy.yaml"), "main")
    assert ancestors(tasks, "customize") == {"prepare", "upload"}
    assert "customize" in ancestors(tasks, "adapter-ready")
    for name in EVALUATIONS:
        assert "adapter-ready" in ancestors(tasks, name)
    assert {"gate", "log"} <= ancestors(tasks, "deploy")
    assert tasks["deploy"]["depends"] == "gate.Succeeded && log.Succeeded"
    promote = {
        name: {p["name"]: p["value"] for p in tasks[name]["arguments"]["parameters"]}["promote"]
        for name in ("adapter-ready", "deploy")
    }
    assert promote == {"adapter-ready": "false", "deploy": "true"}


def test_new_base_model_pipeline_neither_trains_nor_deploys() -> None:
    tasks = dag_tasks(load(PIPELINES / "workflows" / "evaluate-new-base-model.yaml"), "main")
    steps = {task["templateRef"]["name"] for task in tasks.values()}
    assert not steps & {"llmops-upload-dataset", "llmops-customize", "llmops-deploy-adapter"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.stem)
def test_exit_handler_closes_the_mlflow_run_with_the_workflow_outcome(path: Path) -> None:
    workflow = load(path)
    tasks = dag_tasks(workflow, workflow["spec"]["onExit"])
    [task] = tasks.values()
    assert task["templateRef"]["name"] == "llmops-log-to-mlflow"
    arguments = {parameter["name"]: parameter["value"] for parameter in task["arguments"]["parameters"]}
    assert arguments["workflow-status"] == "{{workflow.status}}"
    assert arguments["failures"] == "{{workflow.failures}}"
    # Exit handlers cannot rely on task outputs: the tasks may never have run.
    assert not TASK_REFERENCE.search("\n".join(strings(task)))
