"""Issue 13, the platform side of pipelines that really run: the judge each stack serves, benchmark types of the
pinned Evaluator, authenticated artifacts, the pipeline runner's workload identity, the gateway's JWT settings,
what step pods read in the pipelines namespace (gateway client, CA bundle, credentials), revisions and the
exported submit commands."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.plans import SEEDED_SECRETS, Plan, evaluated

from components.config import ConfigError, parse_config
from components.config.loading import with_deployment_revision
from components.pipelines import (
    CA_BUNDLE_CONFIGMAP,
    CA_BUNDLE_KEY,
    CA_BUNDLE_MOUNT,
    GATEWAY_CLIENT_CONFIGMAP,
    GITOPS_CREDENTIALS_SECRET,
    PIPELINES_DIR,
    PipelineTemplateError,
    load_templates,
)
from components.workload_identity import CLIENT_ID_ANNOTATION, TOKEN_EXCHANGE_AUDIENCE
from pipelines.steps._benchmarks import parse_benchmarks
from planner.evaluate import evaluate, stack_config
from planner.values import redact

ARGO_TYPES = (
    "kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate",
    "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate",
)
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
WORKFLOWS = ("lora-finetune-evaluate-deploy", "evaluate-new-base-model")
TENANT = "0b7c9d2a-5e1f-4a3b-8c6d-9e0f1a2b3c4d"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
API_CLIENT_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
# A syntactically valid PEM block; the test checks wiring, not the certificate.
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n"


def raw_config(stack: str) -> dict[str, Any]:
    """The stack file's `llmops:` values as the loader hands them to parse_config."""
    return {
        key.removeprefix("llmops:"): value for key, value in stack_config(stack).items() if key.startswith("llmops:")
    }


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    return error.value.problems


def workflow_arguments(plan: Plan, name: str) -> dict[str, Any]:
    (template,) = [
        plan.inputs(r)
        for r in plan.registrations
        if r.type in ARGO_TYPES and plan.inputs(r)["metadata"]["name"] == name
    ]
    return {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}


def objects(plan: Plan, kind: str, name: str) -> list[dict[str, Any]]:
    return [
        plan.inputs(r) for r in plan.of_type(f"kubernetes:core/v1:{kind}") if plan.inputs(r)["metadata"]["name"] == name
    ]


# ------------------------------------------------------------------------------------------------
# The judge
# ------------------------------------------------------------------------------------------------


def test_judge_url_points_at_the_nim_that_serves_the_judge_model(any_stack: Plan) -> None:
    served = {
        m["model"]: any_stack.outputs["gateway"]["urls"][f"nim-{m['name']}"] for m in any_stack.outputs["nim"]["models"]
    }
    for workflow in WORKFLOWS:
        arguments = workflow_arguments(any_stack, workflow)
        assert arguments["judge-url"] == served[arguments["judge-model"]]
        # Never the candidate: the adapter (a per-run name) or the new base model.
        assert arguments["judge-model"] != arguments.get("candidate-model")


def test_each_stack_judge_is_a_served_model(dev: Plan, staging: Plan, prod: Plan) -> None:
    assert workflow_arguments(dev, WORKFLOWS[0])["judge-model"] == "meta/llama-3.1-8b-instruct"
    assert workflow_arguments(staging, WORKFLOWS[0])["judge-model"] == "meta/llama-3.1-8b-instruct"
    # prod: an independent judge, neither the production base nor the new-base-model candidate.
    arguments = workflow_arguments(prod, WORKFLOWS[1])
    assert arguments["judge-model"] == "meta/llama-3.1-70b-instruct"
    assert arguments["judge-model"] not in (arguments["base-model"], arguments["candidate-model"])


def test_a_judge_no_nim_serves_is_refused_at_config_time() -> None:
    raw = raw_config("dev")
    raw["pipelines"] = {**raw["pipelines"], "judgeModel": "meta/llama-3.3-70b-instruct"}
    (problem,) = problems(raw)
    assert problem.startswith("llmops:pipelines.judgeModel: no NIM serves 'meta/llama-3.3-70b-instruct'")


def test_the_new_base_model_candidate_cannot_judge_itself() -> None:
    raw = raw_config("prod")
    raw["pipelines"] = {**raw["pipelines"], "judgeModel": "meta/llama-3.3-70b-instruct"}
    (problem,) = problems(raw)
    assert problem.startswith(
        "llmops:pipelines.judgeModel: meta/llama-3.3-70b-instruct is the new-base-model candidate"
    )


def test_the_config_default_judge_must_be_served_too() -> None:
    raw = raw_config("staging")
    raw.pop("pipelines")
    (problem,) = problems(raw)
    assert "no NIM serves 'meta/llama-3.1-70b-instruct'" in problem


# ------------------------------------------------------------------------------------------------
# Benchmarks and artifacts in the templates
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    shutil.copytree(PIPELINES_DIR / "components", tmp_path / "components")
    shutil.copytree(PIPELINES_DIR / "workflows", tmp_path / "workflows")
    return tmp_path


def test_every_benchmark_in_templates_and_stacks_is_an_evaluator_type(any_stack: Plan) -> None:
    for workflow in WORKFLOWS:
        assert parse_benchmarks(workflow_arguments(any_stack, workflow)["benchmarks"])
    components, workflows = load_templates()
    text = yaml.safe_dump([t.body for t in [*components, *workflows]])
    assert "squad_completion" not in text and "boolq," not in text


def test_a_benchmark_the_evaluator_lacks_is_refused_naming_it(template_copy: Path) -> None:
    raw = raw_config("dev")
    raw["pipelines"] = {**raw["pipelines"], "benchmarks": ["gsm8k", "boolq"]}
    (problem,) = problems(raw)
    assert problem.startswith(
        "llmops:pipelines.benchmarks: unknown benchmark boolq: not an evaluation type of NeMo Evaluator 25.8"
    )

    path = template_copy / "workflows" / "lora-finetune-evaluate-deploy.yaml"
    path.write_text(path.read_text().replace("value: gsm8k,squad,", "value: gsm8k,squad_completion,", 1))
    with pytest.raises(
        PipelineTemplateError, match=r"lora-finetune-evaluate-deploy.yaml: benchmarks: squad_completion"
    ):
        load_templates(template_copy)


def test_an_unauthenticated_http_artifact_is_refused(template_copy: Path) -> None:
    path = template_copy / "components" / "prepare-dataset.yaml"
    body = yaml.safe_load(path.read_text())
    template = body["spec"]["templates"][0]
    template["inputs"]["artifacts"] = [
        {"name": "raw", "path": "/tmp/raw", "http": {"url": "https://nemo.example.com/v1/hf/raw.jsonl"}}
    ]
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(PipelineTemplateError, match="'raw' is an unauthenticated http artifact"):
        load_templates(template_copy)

    authenticated = copy.deepcopy(body)
    authenticated["spec"]["templates"][0]["inputs"]["artifacts"][0]["http"]["auth"] = {
        "oauth2": {"clientIDSecret": {"name": "s", "key": "id"}}
    }
    path.write_text(yaml.safe_dump(authenticated))
    load_templates(template_copy)


# ------------------------------------------------------------------------------------------------
# The pipeline runner's workload identity and the gateway's JWT settings
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_pipeline_runner_has_its_own_federated_identity(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(stack)
    identity = plan.one(IDENTITY, f"{stack}-mgmt-pipeline-runner-wi-identity")
    (runner,) = objects(plan, "ServiceAccount", "llm-pipeline-runner")
    namespace = runner["metadata"]["namespace"]
    assert runner["metadata"]["annotations"][CLIENT_ID_ANNOTATION] == identity.outputs["clientId"]
    (credential,) = [
        plan.inputs(r)
        for r in plan.of_type(FEDERATED_CREDENTIAL)
        if plan.inputs(r)["subject"] == f"system:serviceaccount:{namespace}:llm-pipeline-runner"
    ]
    cluster = plan.one("azure-native:containerservice:ManagedCluster", f"{stack}-mgmt-cluster")
    assert credential["issuer"] == cluster.outputs["oidcIssuerProfile"]["issuerURL"]
    assert credential["audiences"] == [TOKEN_EXCHANGE_AUDIENCE]
    assert credential["resourceName"] == identity.outputs["name"]
    assert plan.outputs["managementCluster"]["pipelineRunnerIdentity"]["clientId"] == identity.outputs["clientId"]


@pytest.mark.parametrize(
    ("issuer", "audiences", "accepted"),
    [
        (V2_ISSUER, [API_CLIENT_ID], True),
        (V2_ISSUER, ["api://llmops-staging"], False),
        (V2_ISSUER, [API_CLIENT_ID, "api://llmops-staging"], False),
        (V1_ISSUER, ["api://llmops-staging"], True),
        (V1_ISSUER, [API_CLIENT_ID], True),
        (V2_ISSUER, [], False),
    ],
)
def test_jwt_issuer_and_audience_must_both_match_an_entra_token(issuer: str, audiences: list, accepted: bool) -> None:
    raw = raw_config("staging")
    raw["gateway"] = {**raw["gateway"], "jwtIssuer": issuer, "jwtAudiences": audiences}
    if accepted:
        assert parse_config(raw).gateway.token_audience == audiences[0]
    else:
        (problem,) = problems(raw)
        assert problem.startswith("llmops:gateway.jwtAudiences: ")


def test_an_unmatchable_audience_stops_the_program_with_exit_2_naming_the_key() -> None:
    config = stack_config("staging")
    config["llmops:gateway"] = {**config["llmops:gateway"], "jwtAudiences": ["api://llmops-staging"]}
    evaluation = evaluate("staging", secret_values=SEEDED_SECRETS, config_override=config)
    assert [p.split(":")[1].split(" ")[0] for p in evaluation.config_problems] == ["gateway.jwtAudiences"]
    assert evaluation.registrations == []


# ------------------------------------------------------------------------------------------------
# What the step pods read in the pipelines namespace
# ------------------------------------------------------------------------------------------------


def test_gateway_client_configmap_names_the_mode_and_the_token_audience(dev: Plan, staging: Plan) -> None:
    (dev_client,) = objects(dev, "ConfigMap", GATEWAY_CLIENT_CONFIGMAP)
    assert dev_client["data"] == {"auth": "api-key"}
    (staging_client,) = objects(staging, "ConfigMap", GATEWAY_CLIENT_CONFIGMAP)
    audience = raw_config("staging")["gateway"]["jwtAudiences"][0]
    assert staging_client["data"] == {"auth": "jwt", "token-audience": audience}
    assert staging_client["metadata"]["namespace"] == staging.outputs["managementCluster"]["pipelinesNamespace"]


def test_gitops_credentials_carry_the_gitops_token_as_a_secret(any_stack: Plan) -> None:
    (secret,) = [
        r
        for r in any_stack.of_type("kubernetes:core/v1:Secret")
        if any_stack.inputs(r)["metadata"]["name"] == GITOPS_CREDENTIALS_SECRET
    ]
    assert any_stack.inputs(secret)["stringData"] == {"token": SEEDED_SECRETS["llmops:gitopsToken"]}
    assert redact(secret.inputs)["stringData"] in ("[secret]", {"token": "[secret]"})


def test_the_ca_bundle_is_mounted_where_the_steps_read_it() -> None:
    components, _ = load_templates()
    mounting = 0
    for component in components:
        template = component.body["spec"]["templates"][0]
        volumes = {v["name"]: v for v in template.get("volumes") or []}
        bundle = [name for name, v in volumes.items() if v.get("configMap", {}).get("name") == CA_BUNDLE_CONFIGMAP]
        if not bundle:
            continue
        mounting += 1
        assert volumes[bundle[0]]["configMap"]["optional"] is True
        container = template["container"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == bundle[0]]
        assert (mount["mountPath"], mount["readOnly"]) == (CA_BUNDLE_MOUNT, True)
        environment = {e["name"]: e.get("value") for e in container.get("env") or []}
        assert environment["LLMOPS_CA_BUNDLE"] == f"{CA_BUNDLE_MOUNT}/{CA_BUNDLE_KEY}"
    # Every step that calls the gateway trusts the bundle.
    assert mounting >= 10


def test_dev_trusts_its_gateway_certificate(dev: Plan) -> None:
    # The production issuer by default; Let's Encrypt's staging issuer only with its roots in the CA bundle.
    config = parse_config(raw_config("dev"))
    assert "acme-staging" not in config.gateway.tls.acme_server
    assert objects(dev, "ConfigMap", CA_BUNDLE_CONFIGMAP) == []

    raw = raw_config("dev")
    raw["gateway"] = copy.deepcopy(raw["gateway"])
    raw["gateway"]["tls"]["acmeServer"] = "https://acme-staging-v02.api.letsencrypt.org/directory"
    (problem,) = problems(raw)
    assert problem.startswith("llmops:pipelines.caBundle: required with Let's Encrypt's staging issuer")

    config_file = stack_config("dev")
    config_file["llmops:gateway"] = raw["gateway"]
    config_file["llmops:pipelines"] = {**config_file["llmops:pipelines"], "caBundle": PEM}
    evaluation = evaluated("dev", secret_values=SEEDED_SECRETS, config_override=config_file)
    assert evaluation.ok, evaluation.config_problems
    (bundle,) = [
        r.inputs
        for r in evaluation.registrations
        if r.type == "kubernetes:core/v1:ConfigMap" and r.inputs["metadata"]["name"] == CA_BUNDLE_CONFIGMAP
    ]
    assert bundle["data"] == {CA_BUNDLE_KEY: PEM}


# ------------------------------------------------------------------------------------------------
# Workflow arguments: GitOps, gate settings, revisions; submit commands
# ------------------------------------------------------------------------------------------------


def test_promotions_are_recorded_outside_the_folder_argocd_syncs(any_stack: Plan) -> None:
    arguments = workflow_arguments(any_stack, "lora-finetune-evaluate-deploy")
    gitops = raw_config(any_stack.evaluation.stack)["gitops"]
    assert arguments["gitops-repo-url"] == gitops["repoUrl"]
    assert arguments["gitops-revision"] == gitops.get("revision", "main")
    assert arguments["gitops-path"] == f"promotions/{any_stack.evaluation.stack}"
    assert not arguments["gitops-path"].startswith(gitops["path"])


def test_gate_settings_come_from_config(prod: Plan) -> None:
    for workflow in WORKFLOWS:
        arguments = workflow_arguments(prod, workflow)
        assert (arguments["min-examples"], arguments["min-benchmark-samples"], arguments["confidence"]) == (
            "30",
            "100",
            "0.95",
        )
        assert arguments["regression-tolerance"] == "0.01"
    assert workflow_arguments(prod, WORKFLOWS[0])["promoted-model"] == "llmops/customer-care"


def test_revisions_default_to_the_commit_ci_deploys_from(any_stack: Plan) -> None:
    expected = os.environ.get("GITHUB_SHA") or "unknown"
    for workflow in WORKFLOWS:
        arguments = workflow_arguments(any_stack, workflow)
        assert (arguments["git-commit"], arguments["config-revision"]) == (expected, expected)

    sha = "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"
    filled = parse_config(with_deployment_revision(raw_config("dev"), sha)).pipelines
    assert (filled.git_commit, filled.config_revision) == (sha, sha)
    raw = raw_config("dev")
    raw["pipelines"] = {**raw["pipelines"], "gitCommit": "image-build-commit"}
    kept = parse_config(with_deployment_revision(raw, sha)).pipelines
    assert (kept.git_commit, kept.config_revision) == ("image-build-commit", sha)
    assert parse_config(with_deployment_revision(raw_config("dev"), None)).pipelines.git_commit is None


def test_templates_with_input_artifacts_export_no_plain_submit_command(any_stack: Plan) -> None:
    catalog = {entry["name"]: entry for entry in any_stack.outputs["pipelines"]}
    for name in ("llmops-upload-dataset", "llmops-evaluate-business", "llmops-judge"):
        assert "submit" not in catalog[name]
        assert "dataset" in catalog[name]["note"]
    prepare = catalog["llmops-prepare-dataset"]["submit"]
    assert "--from clusterworkflowtemplate/llmops-prepare-dataset --entrypoint prepare-dataset" in prepare
    assert all(catalog[name]["submit"] for name in WORKFLOWS)


def test_registration_refuses_a_judge_that_is_the_candidate_model() -> None:
    from components.pipelines import _check_judge

    _check_judge("evaluate-new-base-model.yaml", {"judge-model": "a/judge", "candidate-model": "a/candidate"})
    with pytest.raises(PipelineTemplateError, match="judgeModel a/x is also the candidate-model"):
        _check_judge("evaluate-new-base-model.yaml", {"judge-model": "a/x", "candidate-model": "a/x"})
