"""Registers the LLM pipeline templates (pipelines/*.yaml) on the management cluster.

The YAML in the repository is the single source of the templates; this component checks that the
set hangs together (references, Evaluator benchmark types, no unauthenticated `http` artifacts), fills in
what differs per environment (service URLs, the judge, MLflow, GitOps, the step image, gate settings,
revisions, deadlines), writes what the step pods read in the pipelines namespace (gateway auth mode and
audience, CA bundle, gateway and GitOps credentials) and applies the templates after Argo Workflows has
installed its CRDs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config import GitOpsConfig, PipelinesConfig
from components.gateway_routes import NemoPublicUrls
from components.kube import custom_object, object_meta, secret
from pipelines.steps._benchmarks import UnknownBenchmark, parse_benchmarks

PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"
IMAGE_PLACEHOLDER = "llmops.local/pipeline-steps:placeholder"
# Names the step templates read (pipelines/components/*.yaml); each is optional for the pods.
GATEWAY_CREDENTIALS_SECRET = "llmops-gateway-credentials"
GATEWAY_CLIENT_CONFIGMAP = "llmops-gateway-client"
CA_BUNDLE_CONFIGMAP = "llmops-ca-bundle"
CA_BUNDLE_KEY = "ca.crt"
CA_BUNDLE_MOUNT = "/etc/llmops/ca"
GITOPS_CREDENTIALS_SECRET = "llmops-gitops-credentials"
ARGO_API_VERSION = "argoproj.io/v1alpha1"
_PARAMETER_REFERENCE = re.compile(r"\{\{\s*inputs\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")


class PipelineTemplateError(ValueError):
    """The template set in pipelines/ is inconsistent; the message names the file and the problem."""


@dataclass(frozen=True)
class PipelineEnvironment:
    """Per-environment values the program fills into the templates' empty arguments."""

    service_urls: Mapping[str, pulumi.Input[str]]  # argument name -> URL, e.g. "customizer-url"
    defaults: Mapping[str, str]  # argument name -> default for every workflow, e.g. "regression-tolerance"
    workflow_defaults: Mapping[str, Mapping[str, str]]  # workflow name -> argument defaults for it alone


@dataclass(frozen=True)
class PipelineModel:
    """A model NIM serves, as the pipelines reach it."""

    model: str
    # Workflow pods run on the management cluster and reach NIM through the gateway.
    gateway_url: str
    # NeMo Evaluator, inside the GPU cluster, reaches NIM by its in-cluster URL.
    in_cluster_url: str


def promotions_path(gitops: GitOpsConfig, environment: str) -> str:
    """Where accepted promotions are recorded in the GitOps repository: beside, never inside, the folder ArgoCD
    syncs (it would try to apply the JSON records as manifests)."""
    path = f"promotions/{environment}"
    synced = gitops.path.strip("/")
    if path == synced or path.startswith(f"{synced}/") or synced in ("", "."):
        raise PipelineTemplateError(f"promotion records at {path} would lie inside the synced gitops path {synced}")
    return path


def pipeline_environment(
    config: PipelinesConfig,
    *,
    environment: str,
    gitops: GitOpsConfig,
    nemo: NemoPublicUrls,
    models: Sequence[PipelineModel],
    customization_target: str,
    adapter_namespace: str,
    mlflow_tracking_uri: str,
) -> PipelineEnvironment:
    """The values of the templates' empty arguments: `models` in config order (the first is the one fine-tuned
    and evaluated), `customization_target` the Customizer target (`<model>@<version>`) adapters start from."""
    judge = next((m for m in models if m.model == config.judge_model), None)
    if judge is None:
        # The config check refuses this first; a judge URL must never fall back to a model that is not the judge.
        served = ", ".join(m.model for m in models)
        raise PipelineTemplateError(
            f"llmops:pipelines.judgeModel: no NIM serves {config.judge_model} (served: {served})"
        )
    base_model, _, base_version = customization_target.partition("@")
    service_urls: dict[str, pulumi.Input[str]] = {
        "datastore-url": nemo.data_store,
        "entity-store-url": nemo.entity_store,
        "customizer-url": nemo.customizer,
        "evaluator-url": nemo.evaluator,
        "nim-url": models[0].gateway_url,
        "evaluator-nim-url": models[0].in_cluster_url,
        "judge-url": judge.gateway_url,
        # The judge as the Evaluator's llm-judge metric reaches it, inside the GPU cluster like evaluator-nim-url.
        "evaluator-judge-url": judge.in_cluster_url,
        "mlflow-tracking-uri": mlflow_tracking_uri,
        "gitops-repo-url": gitops.repo_url,
    }
    defaults = {
        "namespace": adapter_namespace,
        "base-model": base_model,
        "base-model-version": base_version,
        "judge-model": config.judge_model,
        "regression-tolerance": str(config.regression_tolerance),
        "benchmarks": ",".join(config.benchmarks),
        "min-examples": str(config.min_examples),
        "min-benchmark-samples": str(config.min_benchmark_samples),
        "confidence": str(config.confidence),
        "git-commit": config.git_commit or "unknown",
        "config-revision": config.config_revision or "unknown",
    }
    if len(models) > 1:
        # A second served model is the natural candidate when a new base model is evaluated.
        service_urls["candidate-nim-url"] = models[1].gateway_url
        service_urls["candidate-evaluator-nim-url"] = models[1].in_cluster_url
        defaults["candidate-model"] = models[1].model
    return PipelineEnvironment(
        service_urls=service_urls,
        defaults=defaults,
        workflow_defaults={
            "lora-finetune-evaluate-deploy": {
                "min-business-gain": str(config.min_business_gain),
                "promoted-model": config.promoted_model,
                "gitops-revision": gitops.revision,
                "gitops-path": promotions_path(gitops, environment),
            }
        },
    )


@dataclass(frozen=True)
class LoadedTemplate:
    path: Path
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


def load_templates(directory: Path = PIPELINES_DIR) -> tuple[list[LoadedTemplate], list[LoadedTemplate]]:
    """ClusterWorkflowTemplates from components/ and WorkflowTemplates from workflows/, checked as a set."""
    components = [_load(p, "ClusterWorkflowTemplate") for p in sorted((directory / "components").glob("*.yaml"))]
    workflows = [_load(p, "WorkflowTemplate") for p in sorted((directory / "workflows").glob("*.yaml"))]
    check_references(components, workflows)
    for loaded in [*components, *workflows]:
        check_benchmarks(loaded)
        check_http_artifacts(loaded)
    return components, workflows


def _load(path: Path, kind: str) -> LoadedTemplate:
    body = yaml.safe_load(path.read_text())
    if not isinstance(body, dict) or body.get("kind") != kind or body.get("apiVersion") != ARGO_API_VERSION:
        raise PipelineTemplateError(f"{path.name}: expected an {ARGO_API_VERSION} {kind}")
    if not body.get("metadata", {}).get("name"):
        raise PipelineTemplateError(f"{path.name}: metadata.name is missing")
    return LoadedTemplate(path, body)


def _declared_inputs(template: Mapping[str, Any]) -> dict[str, bool]:
    """Input parameter name -> whether it has a default."""
    parameters = (template.get("inputs") or {}).get("parameters") or []
    return {p["name"]: "value" in p or "default" in p for p in parameters}


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def check_benchmarks(loaded: LoadedTemplate) -> None:
    """Every `benchmarks` default (workflow argument or step input) names types the pinned Evaluator runs."""
    for node in _walk(loaded.body["spec"]):
        if node.get("name") == "benchmarks" and isinstance(node.get("value"), str) and "{{" not in node["value"]:
            try:
                parse_benchmarks(node["value"])
            except UnknownBenchmark as error:
                raise PipelineTemplateError(f"{loaded.path.name}: benchmarks: {error}") from None


def check_http_artifacts(loaded: LoadedTemplate) -> None:
    """An `http` artifact without `auth` fetches through the gateway with no credential (or from anywhere with
    none): the steps download with the gateway's credential themselves instead."""
    for node in _walk(loaded.body["spec"]):
        http = node.get("http")
        if isinstance(http, Mapping) and "url" in http and not http.get("auth"):
            raise PipelineTemplateError(
                f"{loaded.path.name}: artifact {node.get('name')!r} is an unauthenticated http artifact ({http['url']})"
            )


def check_references(components: Sequence[LoadedTemplate], workflows: Sequence[LoadedTemplate]) -> None:
    """Every entrypoint, template and templateRef resolves; every argument a step passes is declared by the
    template it calls; every input without a default is passed; `{{inputs.parameters.x}}` names an input."""
    cluster_templates = {(c.name, t["name"]): t for c in components for t in c.body["spec"].get("templates", [])}
    for loaded in [*components, *workflows]:
        spec = loaded.body["spec"]
        local = {t["name"]: t for t in spec.get("templates", [])}
        where = loaded.path.name
        for field in ("entrypoint", "onExit"):
            if field in spec and spec[field] not in local:
                raise PipelineTemplateError(f"{where}: {field} {spec[field]!r} is not a template here")
        for template in local.values():
            declared = _declared_inputs(template)
            for used in _PARAMETER_REFERENCE.findall(yaml.safe_dump(template)):
                if used not in declared:
                    raise PipelineTemplateError(
                        f"{where}: template {template['name']!r} uses undeclared input {used!r}"
                    )
            tasks = (template.get("dag") or {}).get("tasks") or [
                step for group in template.get("steps") or [] for step in group
            ]
            for task in tasks:
                _check_call(where, task, local, cluster_templates)


def _check_call(
    where: str,
    task: Mapping[str, Any],
    local: Mapping[str, Mapping[str, Any]],
    cluster_templates: Mapping[tuple[str, str], Mapping[str, Any]],
) -> None:
    label = f"{where}: task {task.get('name')!r}"
    if "templateRef" in task:
        ref = task["templateRef"]
        if not ref.get("clusterScope"):
            raise PipelineTemplateError(
                f"{label}: templateRef must set clusterScope: true (components are cluster-wide)"
            )
        target = cluster_templates.get((ref["name"], ref["template"]))
        if target is None:
            raise PipelineTemplateError(f"{label}: no ClusterWorkflowTemplate {ref['name']}/{ref['template']}")
    else:
        target = local.get(task.get("template", ""))
        if target is None:
            raise PipelineTemplateError(f"{label}: template {task.get('template')!r} does not exist")
    declared = _declared_inputs(target)
    passed = {p["name"] for p in (task.get("arguments") or {}).get("parameters") or []}
    if unknown := sorted(passed - set(declared)):
        raise PipelineTemplateError(f"{label}: passes undeclared parameter(s) {', '.join(unknown)}")
    if missing := sorted(name for name, has_default in declared.items() if not has_default and name not in passed):
        raise PipelineTemplateError(f"{label}: does not pass required parameter(s) {', '.join(missing)}")


def _with_image(body: dict[str, Any], image: str) -> dict[str, Any]:
    text = yaml.safe_dump(body, sort_keys=False)
    return yaml.safe_load(text.replace(IMAGE_PLACEHOLDER, image))


def _input_artifacts(template: Mapping[str, Any]) -> list[str]:
    return [a["name"] for a in (template.get("inputs") or {}).get("artifacts") or [] if "from" not in a]


def _submit_command(
    kind: str, name: str, namespace: str, parameters: Mapping[str, Any], entrypoint: str, artifacts: Sequence[str]
) -> str | None:
    """A ready `argo submit`, or None when the template takes an input artifact: `argo submit` sets parameters
    only, so such a step runs inside a workflow that produces the artifact."""
    if artifacts:
        return None
    source = f"workflowtemplate/{name}" if kind == "WorkflowTemplate" else f"clusterworkflowtemplate/{name}"
    flags = [f"argo submit -n {namespace} --from {source}"]
    if kind == "ClusterWorkflowTemplate":
        flags.append(f"--entrypoint {entrypoint}")
    flags += [f"-p {key}=<{key}>" for key, default in parameters.items() if default is None]
    return " ".join(flags)


@dataclass(frozen=True)
class StepAccess:
    """What the step pods read in the pipelines namespace to reach the gateway and the GitOps repository."""

    gateway_auth: str  # "api-key" | "jwt"
    # jwt: the audience the steps request Entra tokens for (scope `<audience>/.default`).
    token_audience: str | None
    # api-key: the key the gateway checks.
    gateway_api_key: pulumi.Output[str] | None
    # PEM of the CAs behind the gateway certificate, when no public trust store has them.
    ca_bundle: str | None
    # Push rights to the GitOps repository (promotion records).
    gitops_token: pulumi.Output[str]


def _check_judge(where: str, arguments: Mapping[str, Any]) -> None:
    """The judge never scores the model whose promotion it decides."""
    judge, candidate = arguments.get("judge-model"), arguments.get("candidate-model")
    if judge is not None and judge == candidate:
        raise PipelineTemplateError(
            f"{where}: llmops:pipelines.judgeModel {judge} is also the candidate-model it would judge; "
            "choose another served model"
        )


class PipelineTemplates(pulumi.ComponentResource):
    """One ClusterWorkflowTemplate per step and one WorkflowTemplate per pipeline, registered in the
    pipelines namespace after the Argo Workflows release, and the ConfigMaps and Secrets their pods read;
    `self.catalog` describes the templates for stack outputs."""

    def __init__(
        self,
        name: str,
        config: PipelinesConfig,
        namespace: str,
        environment: PipelineEnvironment,
        provider: k8s.Provider,
        workflows_release: pulumi.Resource,
        access: StepAccess,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:pipelines:PipelineTemplates", name, None, opts)
        components, workflows = load_templates()
        # The CRDs come with the Argo Workflows release (installed by its hook), so every template waits for it.
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[workflows_release])
        self.catalog: list[dict[str, Any]] = []
        self._step_access(name, namespace, access, child)

        registered: list[pulumi.Resource] = []
        for component in components:
            body = _with_image(component.body, config.image)
            registered.append(self._register(name, body, None, child))
            template = body["spec"]["templates"][0]
            inputs = (template.get("inputs") or {}).get("parameters") or []
            step_parameters = {p["name"]: p.get("value") for p in inputs}
            self.catalog.append(
                self._entry(body, namespace, step_parameters, template["name"], _input_artifacts(template))
            )

        after_components = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=registered))
        for workflow in workflows:
            body = _with_image(workflow.body, config.image)
            spec = body["spec"]
            spec["activeDeadlineSeconds"] = config.active_deadline_seconds
            defaults = {**environment.defaults, **environment.workflow_defaults.get(workflow.name, {})}
            parameters: dict[str, Any] = {}
            for argument in spec["arguments"]["parameters"]:
                key = argument["name"]
                if key in environment.service_urls:
                    argument["value"] = environment.service_urls[key]
                elif key in defaults:
                    argument["value"] = defaults[key]
                parameters[key] = argument.get("value")
            _check_judge(workflow.path.name, parameters)
            self._register(name, body, namespace, after_components)
            self.catalog.append(self._entry(body, namespace, parameters, spec["entrypoint"], []))

        self.register_outputs({"templates": self.catalog})

    def _step_access(self, name: str, namespace: str, access: StepAccess, opts: pulumi.ResourceOptions) -> None:
        client = {"auth": access.gateway_auth}
        if access.token_audience is not None:
            client["token-audience"] = access.token_audience
        self.gateway_client = k8s.core.v1.ConfigMap(
            f"{name}-gateway-client", metadata=object_meta(GATEWAY_CLIENT_CONFIGMAP, namespace), data=client, opts=opts
        )
        self.ca_bundle = (
            k8s.core.v1.ConfigMap(
                f"{name}-ca-bundle",
                metadata=object_meta(CA_BUNDLE_CONFIGMAP, namespace),
                data={CA_BUNDLE_KEY: access.ca_bundle},
                opts=opts,
            )
            if access.ca_bundle is not None
            else None
        )
        if access.gateway_api_key is not None:
            # Steps reach NeMo and NIM through the gateway; the templates read the key from here.
            secret(
                f"{name}-gateway-credentials",
                object_meta(GATEWAY_CREDENTIALS_SECRET, namespace),
                string_data={"api-key": access.gateway_api_key},
                opts=opts,
            )
        # deploy-adapter pushes the promotion record with it.
        secret(
            f"{name}-gitops-credentials",
            object_meta(GITOPS_CREDENTIALS_SECRET, namespace),
            string_data={"token": access.gitops_token},
            opts=opts,
        )

    def _register(
        self, name: str, body: dict[str, Any], namespace: str | None, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        metadata = copy.deepcopy(body["metadata"])
        if namespace is not None:
            metadata["namespace"] = namespace
        return custom_object(
            f"{name}-{body['metadata']['name']}",
            api_version=ARGO_API_VERSION,
            kind=body["kind"],
            metadata=metadata,
            spec=body["spec"],
            opts=opts,
        )

    @staticmethod
    def _entry(
        body: Mapping[str, Any],
        namespace: str,
        parameters: Mapping[str, Any],
        entrypoint: str,
        artifacts: Sequence[str],
    ) -> dict[str, Any]:
        kind, name = body["kind"], body["metadata"]["name"]
        entry = {
            "name": name,
            "kind": kind,
            "namespace": namespace if kind == "WorkflowTemplate" else None,
            "parameters": dict(parameters),
        }
        command = _submit_command(kind, name, namespace, parameters, entrypoint, artifacts)
        if command is not None:
            entry["submit"] = command
        else:
            entry["note"] = (
                f"takes the input artifact(s) {', '.join(artifacts)}, which `argo submit` cannot pass: "
                "call it as a step of a workflow that produces them"
            )
        return entry
