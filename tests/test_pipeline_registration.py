"""The program registers every pipeline template on the management cluster, filled for its environment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from support.plans import SEEDED_SECRETS, Plan

from components.pipelines import IMAGE_PLACEHOLDER, PIPELINES_DIR, PipelineTemplateError, load_templates
from planner.evaluate import stack_config
from planner.values import redact

ARGO_TYPES = (
    "kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate",
    "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate",
)
RELEASE = "kubernetes:helm.sh/v3:Release"
TEMPLATE_FILES = sorted((PIPELINES_DIR / "components").glob("*.yaml")) + sorted(
    (PIPELINES_DIR / "workflows").glob("*.yaml")
)


def registered(plan: Plan) -> dict[str, dict]:
    return {
        plan.inputs(r)["metadata"]["name"]: {"registration": r, "body": plan.inputs(r)}
        for r in plan.registrations
        if r.type in ARGO_TYPES
    }


def test_every_template_file_is_registered_once(any_stack: Plan) -> None:
    names = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in TEMPLATE_FILES}
    assert set(registered(any_stack)) == names


def test_templates_wait_for_the_argo_workflows_release_and_use_the_management_provider(any_stack: Plan) -> None:
    workflows_release = next(r for r in any_stack.of_type(RELEASE) if r.inputs.get("chart") == "argo-workflows")
    for entry in registered(any_stack).values():
        registration = entry["registration"]
        assert workflows_release.urn in registration.dependencies
        assert registration.provider == workflows_release.provider


def test_workflow_templates_live_in_the_pipelines_namespace(any_stack: Plan) -> None:
    namespace = any_stack.outputs["managementCluster"]["pipelinesNamespace"]
    for entry in registered(any_stack).values():
        body = entry["body"]
        if body["kind"] == "WorkflowTemplate":
            assert body["metadata"]["namespace"] == namespace
        else:
            assert "namespace" not in body["metadata"]


def test_the_step_image_replaces_the_placeholder(any_stack: Plan) -> None:
    image = yaml.safe_load(yaml.safe_dump(stack_config(any_stack.evaluation.stack))).get("llmops:pipelines", {})
    expected = image.get("image", "ghcr.io/llmops-platform/pipeline-steps:0.1.0")
    text = json.dumps([e["body"] for e in registered(any_stack).values()])
    assert IMAGE_PLACEHOLDER not in text
    assert f'"image": "{expected}"' in text


def test_environment_values_wire_into_the_workflow_arguments(dev: Plan) -> None:
    lora = registered(dev)["lora-finetune-evaluate-deploy"]["body"]["spec"]
    arguments = {p["name"]: p.get("value") for p in lora["arguments"]["parameters"]}
    gateway_urls = dev.outputs["gateway"]["urls"]
    assert arguments["customizer-url"] == gateway_urls["nemo-customizer"]
    assert arguments["datastore-url"] == gateway_urls["nemo-data-store"]
    assert arguments["entity-store-url"] == gateway_urls["nemo-entity-store"]
    assert arguments["evaluator-url"] == gateway_urls["nemo-evaluator"]
    # Workflow pods (management cluster) use the gateway; the Evaluator (GPU cluster) the in-cluster URL.
    first_nim = dev.outputs["nim"]["models"][0]
    assert arguments["nim-url"] == gateway_urls[f"nim-{first_nim['name']}"]
    assert arguments["evaluator-nim-url"] == first_nim["url"]
    assert arguments["mlflow-tracking-uri"] == dev.outputs["managementCluster"]["mlflowTrackingUri"]
    assert arguments["gitops-repo-url"] == "https://github.com/example-org/llmops-gitops.git"
    # Gate thresholds and the deadline come from llmops:pipelines (dev: 0.03 and 0.02).
    assert arguments["regression-tolerance"] == "0.03"
    assert arguments["min-business-gain"] == "0.02"
    assert arguments["base-model"] == "meta/llama-3.1-8b-instruct"
    assert arguments["base-model-version"] == "2.0"
    assert lora["activeDeadlineSeconds"] == 48 * 3600
    assert all(value not in (None, "") for value in arguments.values())


def test_a_second_served_model_is_the_new_base_model_candidate(prod: Plan) -> None:
    spec = registered(prod)["evaluate-new-base-model"]["body"]["spec"]
    arguments = {p["name"]: p.get("value") for p in spec["arguments"]["parameters"]}
    assert arguments["candidate-model"] == "meta/llama-3.3-70b-instruct"
    assert arguments["candidate-evaluator-nim-url"] == prod.outputs["nim"]["models"][1]["url"]
    # evaluate-new-base-model keeps its own gain threshold (no training to pay off).
    assert arguments["min-business-gain"] == "0.0"


def test_outputs_list_every_template_with_a_ready_submit_command(any_stack: Plan) -> None:
    catalog = {entry["name"]: entry for entry in any_stack.outputs["pipelines"]}
    assert set(catalog) == set(registered(any_stack))
    namespace = any_stack.outputs["managementCluster"]["pipelinesNamespace"]
    lora = catalog["lora-finetune-evaluate-deploy"]
    assert lora["kind"] == "WorkflowTemplate"
    assert lora["submit"].startswith(
        f"argo submit -n {namespace} --from workflowtemplate/lora-finetune-evaluate-deploy"
    )
    assert lora["parameters"]["epochs"] == "2"
    customize = catalog["llmops-customize"]
    assert customize["kind"] == "ClusterWorkflowTemplate"
    assert "--from clusterworkflowtemplate/llmops-customize --entrypoint customize" in customize["submit"]
    # A step's service URL has no default, so its command asks for it.
    assert "-p customizer-url=<customizer-url>" in customize["submit"]


def test_gateway_credentials_for_steps_exist_only_with_api_key_auth(dev: Plan, staging: Plan) -> None:
    def credentials(plan: Plan) -> list:
        return [
            r
            for r in plan.of_type("kubernetes:core/v1:Secret")
            if plan.inputs(r)["metadata"]["name"] == "llmops-gateway-credentials"
        ]

    (secret,) = credentials(dev)
    assert dev.inputs(secret)["stringData"]["api-key"] == SEEDED_SECRETS["llmops:gatewayApiKey"]
    assert redact(secret.inputs)["stringData"] in ("[secret]", {"api-key": "[secret]"})
    assert credentials(staging) == []  # staging authenticates with JWT


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    shutil.copytree(PIPELINES_DIR / "components", tmp_path / "components")
    shutil.copytree(PIPELINES_DIR / "workflows", tmp_path / "workflows")
    return tmp_path


def test_shipped_templates_are_consistent() -> None:
    components, workflows = load_templates()
    assert len(components) == 12 and len(workflows) == 2


def test_a_templateref_to_a_missing_component_is_refused(template_copy: Path) -> None:
    (template_copy / "components" / "gate.yaml").unlink()
    with pytest.raises(PipelineTemplateError, match="no ClusterWorkflowTemplate llmops-gate/gate"):
        load_templates(template_copy)


def test_an_undeclared_argument_is_refused(template_copy: Path) -> None:
    path = template_copy / "components" / "customize.yaml"
    path.write_text(path.read_text().replace("- name: adapter-dim\n", "- name: adapter-dimension\n", 1))
    with pytest.raises(PipelineTemplateError, match="adapter-dim"):
        load_templates(template_copy)
