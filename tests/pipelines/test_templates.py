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
from support.schemas import validate_argo

from pipelines.steps import STEPS
from pipelines.steps._benchmarks import parse_benchmarks

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
COMPONENT_FILES = sorted((PIPELINES / "components").glob("*.yaml"))
WORKFLOW_FILES = sorted((PIPELINES / "workflows").glob("*.yaml"))
IMAGE_PLACEHOLDER = "llmops.local/pipeline-steps:placeholder"
URL_PARAMETERS = {
    "datastore-url": "DATASTORE_URL",
    "entity-store-url": "ENTITY_STORE_URL",
    "customizer-url": "CUSTOMIZER_URL",
    "evaluator-url": "EVALUATOR_URL",
    "evaluator-nim-url": "EVALUATOR_NIM_URL",
    "evaluator-judge-url": "EVALUATOR_JUDGE_URL",
    "nim-url": "NIM_URL",
    "judge-url": "JUDGE_URL",
    "mlflow-tracking-uri": "MLFLOW_TRACKING_URI",
}
# Steps whose result depends only on their inputs: retrying them cannot help.
DETERMINISTIC_STEPS = {"gate"}
# Steps that reach nothing through the gateway (MLflow is on the management cluster itself).
OFF_GATEWAY_STEPS = {"gate", "log-to-mlflow"}
GATEWAY_ENV = {"GATEWAY_AUTH", "GATEWAY_TOKEN_AUDIENCE", "GATEWAY_API_KEY", "LLMOPS_CA_BUNDLE"}
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


@pytest.mark.parametrize("path", COMPONENT_FILES + WORKFLOW_FILES, ids=lambda path: path.name)
def test_valid_against_the_argo_v4_crd_schema(path: Path) -> None:
    assert validate_argo(load(path)) == []


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
            [(kind, ref)] = variable["valueFrom"].items()
            assert kind in {"secretKeyRef", "configMapKeyRef"}
            # The platform always creates MLflow's credentials; the rest depends on the environment.
            if ref["name"] == "mlflow-tracking-credentials":
                assert ref["key"] in {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
            else:
                assert ref["optional"] is True


@pytest.mark.parametrize("path", COMPONENT_FILES, ids=lambda path: path.stem)
def test_gateway_callers_carry_credentials_identity_and_the_ca_bundle(path: Path) -> None:
    template = step_template(load(path))
    env = {variable["name"]: variable for variable in template["container"]["env"]}
    labels = template["metadata"]["labels"]
    if path.stem in OFF_GATEWAY_STEPS:
        assert not GATEWAY_ENV & env.keys()
        assert "azure.workload.identity/use" not in labels
        return
    assert env.keys() >= GATEWAY_ENV
    assert env["GATEWAY_AUTH"]["valueFrom"]["configMapKeyRef"]["name"] == "llmops-gateway-client"
    assert env["GATEWAY_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "llmops-gateway-credentials"
    # Workload identity injects the federated token only into pods labelled for it.
    assert labels["azure.workload.identity/use"] == "true"
    [volume] = [volume for volume in template["volumes"] if "configMap" in volume]
    assert volume["configMap"] == {"name": "llmops-ca-bundle", "optional": True}
    [mount] = [mount for mount in template["container"]["volumeMounts"] if mount["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert env["LLMOPS_CA_BUNDLE"]["value"].startswith(mount["mountPath"] + "/")


@pytest.mark.parametrize("path", COMPONENT_FILES + WORKFLOW_FILES, ids=lambda path: path.name)
def test_no_unauthenticated_http_artifacts(path: Path) -> None:
    # Argo's http artifacts cannot present an Entra token; downloads are steps with the gateway credentials.
    assert "http" not in set(keys(load(path)))


@pytest.mark.parametrize("path", COMPONENT_FILES + WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_benchmark_named_is_an_evaluator_25_8_type(path: Path) -> None:
    document = load(path)
    named = [
        parameter["value"]
        for template in document["spec"].get("templates", [])
        for parameter in template.get("inputs", {}).get("parameters", [])
        if parameter["name"] == "benchmarks"
    ] + [
        parameter["value"]
        for parameter in document["spec"].get("arguments", {}).get("parameters", [])
        if parameter["name"] == "benchmarks"
    ]
    for value in named:
        assert parse_benchmarks(value)


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
    assert direct_dependencies(tasks["gate"]) == set(EVALUATIONS)
    for name in EVALUATIONS:
        assert not set(EVALUATIONS) & ancestors(tasks, name)
        # Base evaluations start at once: nothing about training is upstream of them (upload only puts the
        # test split in the Data Store, where the business and judge Evaluator jobs read it).
        if name.startswith("base-"):
            assert ancestors(tasks, name) <= {"prepare", "prepare-benchmarks", "upload"}
    # The outcome is recorded whether the gate accepts or rejects.
    assert tasks["log"]["depends"] == "gate.Succeeded || gate.Failed"


def test_lora_pipeline_order_gate_before_deploy() -> None:
    tasks = dag_tasks(load(PIPELINES / "workflows" / "lora-finetune-evaluate-deploy.yaml"), "main")
    assert ancestors(tasks, "customize") == {"prepare", "upload"}
    assert "customize" in ancestors(tasks, "adapter-ready")
    for name in EVALUATIONS:
        assert ("adapter-ready" in ancestors(tasks, name)) is name.startswith("candidate-")
    assert {"gate", "log"} <= ancestors(tasks, "deploy")
    assert tasks["deploy"]["depends"] == "gate.Succeeded && log.Succeeded"
    # A candidate the gate did not accept leaves the Entity Store, hence NIM.
    assert tasks["discard"]["depends"].startswith("gate.Failed")
    arguments = {
        name: {p["name"]: p["value"] for p in tasks[name]["arguments"]["parameters"]}
        for name in ("adapter-ready", "deploy", "discard")
    }
    assert arguments["adapter-ready"]["promote"] == "false"
    assert arguments["deploy"]["promote"] == "true"
    assert arguments["deploy"]["alias"] == "{{workflow.parameters.promoted-model}}"
    # The candidate is served under a name no production client calls; only the alias is production's.
    output_model = {p["name"]: p["value"] for p in tasks["customize"]["arguments"]["parameters"]}["output-model"]
    assert output_model.endswith("-candidate-{{workflow.uid}}")
    assert arguments["deploy"]["model"] == arguments["discard"]["model"] == arguments["adapter-ready"]["model"]


def test_new_base_model_pipeline_neither_trains_nor_deploys() -> None:
    tasks = dag_tasks(load(PIPELINES / "workflows" / "evaluate-new-base-model.yaml"), "main")
    steps = {task["templateRef"]["name"] for task in tasks.values()}
    assert not steps & {"llmops-customize", "llmops-deploy-adapter", "llmops-discard-adapter"}
    # It uploads the prepared dataset only so the Evaluator can read the test split.
    assert not {"customize", "deploy"} & tasks.keys()


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.stem)
def test_exit_handler_cancels_jobs_and_closes_the_mlflow_run_with_the_workflow_outcome(path: Path) -> None:
    workflow = load(path)
    tasks = dag_tasks(workflow, workflow["spec"]["onExit"])
    assert {name: task["templateRef"]["name"] for name, task in tasks.items()} == {
        "cancel-jobs": "llmops-cancel-jobs",
        "close-mlflow-run": "llmops-log-to-mlflow",
    }
    assert tasks["cancel-jobs"]["when"] == "{{workflow.status}} != Succeeded"
    arguments = {p["name"]: p["value"] for p in tasks["close-mlflow-run"]["arguments"]["parameters"]}
    assert arguments["workflow-status"] == "{{workflow.status}}"
    assert arguments["failures"] == "{{workflow.failures}}"
    # Exit handlers cannot rely on task outputs: the tasks may never have run.
    for task in tasks.values():
        assert not TASK_REFERENCE.search("\n".join(strings(task)))
