"""NeMo microservices, Volcano and NIM for LLMs on the GPU cluster, as the shipped stacks plan them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pulumi.runtime import rpc
from support.chart_values import unknown_values_keys
from support.plans import SEEDED_SECRETS, Plan

from components.catalog import MODEL_DISK_GIB, MODEL_MIN_GPUS
from components.config import ConfigError, NemoConfig, NimModelConfig, parse_config, raw_config_from_pulumi
from components.gpu import GPU_TOLERATION, SPOT_TOLERATION
from components.nemo import nemo_values
from components.nim import autoscaling_values, startup_seconds
from planner.evaluate import engine_config, stack_config
from planner.render import plan_document

RELEASE = "kubernetes:helm.sh/v3:Release"
NGC_KEY = SEEDED_SECRETS["llmops:ngcApiKey"]

# Keys NVIDIA uses that facts/charts/nemo-microservices-helm-chart-25.8.0.json does not list yet, each with where
# it was checked. Nothing else may be outside the facts.
NEMO_KEYS_AWAITING_FACTS = {
    # Tolerations of the customization job pods: in the values table of NVIDIA's nemo-microservices-helm-chart
    # README ("customizer.customizerConfig.tolerations | list | [] | Tolerations on the customization job pods"),
    # beside `customizerConfig.nodeSelectors`; the blueprint values the facts come from do not set it.
    "customizer.customizerConfig.tolerations",
}
# With an external PostgreSQL server (no shipped stack uses one): NVIDIA's database guide has every service
# chart take `postgresql.enabled: false` plus `externalDatabase`; the facts only know entity-store's keys.
EXTERNAL_DATABASE_KEYS_AWAITING_FACTS = {
    f"{service}.externalDatabase" for service in ("customizer", "evaluator", "data-store", "guardrails")
}


def values_of(plan: Plan, release: str) -> dict[str, Any]:
    values: dict[str, Any] = plan.inputs(plan.helm_release(release))["values"]
    return values


def nim_releases(plan: Plan) -> dict[str, dict[str, Any]]:
    return {
        inputs["name"]: inputs
        for inputs in (plan.inputs(r) for r in plan.of_type(RELEASE))
        if inputs["chart"] == "nim-llm"
    }


def env_of(values: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in values.get("env", [])}


def gib(quantity: str) -> int:
    assert quantity.endswith("Gi"), quantity
    return int(quantity.removesuffix("Gi"))


def load_config(stack: str, change: Any = None) -> Any:
    config = copy.deepcopy(stack_config(stack))
    if change is not None:
        change(config)
    values, _, _ = engine_config(config, [], {})
    return parse_config(raw_config_from_pulumi(values))


# ----------------------------------------------------------------------------------------------------------
# Releases, charts and values keys
# ----------------------------------------------------------------------------------------------------------


def test_one_nim_release_per_configured_model(dev: Plan, staging: Plan, prod: Plan) -> None:
    assert set(nim_releases(dev)) == {"llama-3-1-8b-instruct"}
    assert set(nim_releases(staging)) == {"llama-3-1-8b-instruct"}
    releases = nim_releases(prod)
    # prod serves a third model: the pipelines' LLM judge.
    assert set(releases) == {"llama-3-1-8b-instruct", "llama-3-3-70b-instruct", "llama-3-1-70b-instruct"}
    for inputs in releases.values():
        assert (inputs["version"], inputs["namespace"]) == ("1.1.2", "nim")
        assert inputs["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nim"
    served = {name: inputs["values"]["model"]["name"] for name, inputs in releases.items()}
    assert served == {
        "llama-3-1-8b-instruct": "meta/llama-3.1-8b-instruct",
        "llama-3-3-70b-instruct": "meta/llama-3.3-70b-instruct",
        "llama-3-1-70b-instruct": "meta/llama-3.1-70b-instruct",
    }


def test_nim_images_are_pinned_and_credentials_referenced_by_name(prod: Plan) -> None:
    for inputs in nim_releases(prod).values():
        values = inputs["values"]
        assert values["image"]["repository"].startswith("nvcr.io/nim/")
        assert values["image"]["tag"] == {"meta/llama-3.1-70b-instruct": "1.13.1"}.get(values["model"]["name"], "1.8.6")
        assert values["model"]["ngcAPISecret"] == "ngc-api"
        assert values["imagePullSecrets"] == [{"name": "nvcrimagepullsecret"}]
        assert values["service"] == {"name": inputs["name"], "openaiPort": 8000}


def test_nemo_and_volcano_releases_pin_their_charts(any_stack: Plan) -> None:
    nemo = any_stack.inputs(any_stack.helm_release("nemo"))
    assert (nemo["chart"], nemo["version"], nemo["namespace"]) == ("nemo-microservices-helm-chart", "25.8.0", "nemo")
    assert nemo["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nvidia/nemo-microservices"
    volcano = any_stack.inputs(any_stack.helm_release("volcano"))
    assert (volcano["chart"], volcano["version"], volcano["namespace"]) == ("volcano", "1.15.1", "volcano-system")
    assert volcano["repositoryOpts"] == {"repo": "https://volcano-sh.github.io/helm-charts"}


def test_values_keys_exist_in_the_pinned_chart_versions(any_stack: Plan) -> None:
    for registration in any_stack.of_type(RELEASE):
        inputs = any_stack.inputs(registration)
        if inputs["chart"] not in {"nim-llm", "volcano", "nemo-microservices-helm-chart"}:
            continue
        unknown = set(unknown_values_keys(inputs["values"], inputs["chart"], inputs["version"]))
        allowed = NEMO_KEYS_AWAITING_FACTS if inputs["chart"] == "nemo-microservices-helm-chart" else set()
        assert unknown <= allowed, f"{inputs['name']}: keys not in {inputs['chart']} {inputs['version']}: {unknown}"


def test_external_postgres_switches_every_service_off_its_bundled_database() -> None:
    config = NemoConfig(external_postgres_host="nemo-pg.postgres.database.azure.com")
    values = nemo_values(
        config,
        guardrails_nim_endpoint="http://nim.example:8000/v1",
        shared_storage_class="shared",
        model_cache_storage_class="cache",
        training_tolerations=[GPU_TOLERATION],
    )
    for service in ("customizer", "evaluator", "data-store", "entity-store", "guardrails"):
        assert values[service]["postgresql"] == {"enabled": False}
        database = values[service]["externalDatabase"]
        assert database["host"] == "nemo-pg.postgres.database.azure.com"
        assert database["existingSecret"] == f"{service}-postgres"
    unknown = set(unknown_values_keys(values, "nemo-microservices-helm-chart", "25.8.0"))
    assert unknown <= NEMO_KEYS_AWAITING_FACTS | EXTERNAL_DATABASE_KEYS_AWAITING_FACTS


# ----------------------------------------------------------------------------------------------------------
# GPUs, tolerations, model caches, startup
# ----------------------------------------------------------------------------------------------------------


def test_every_nim_tolerates_the_gpu_taint_and_requests_its_gpus(any_stack: Plan) -> None:
    config = load_config(any_stack.evaluation.stack)
    models = {m.name: m for m in config.nim.models}
    for name, inputs in nim_releases(any_stack).items():
        values = inputs["values"]
        assert GPU_TOLERATION in values["tolerations"]
        assert SPOT_TOLERATION not in values["tolerations"], "serving must not land on evictable spot nodes"
        gpus = values["resources"]["limits"]["nvidia.com/gpu"]
        assert gpus == models[name].gpus >= MODEL_MIN_GPUS[models[name].model]
        assert values["resources"]["requests"]["nvidia.com/gpu"] == gpus


def test_prod_70b_model_gets_four_gpus(prod: Plan) -> None:
    assert values_of(prod, "llama-3-3-70b-instruct")["resources"]["limits"]["nvidia.com/gpu"] == 4


def test_customizer_training_pods_tolerate_gpu_and_spot_taints(any_stack: Plan) -> None:
    customizer_config = values_of(any_stack, "nemo")["customizer"]["customizerConfig"]
    assert GPU_TOLERATION in customizer_config["tolerations"]
    assert SPOT_TOLERATION in customizer_config["tolerations"]
    assert "tolerations" not in customizer_config["training"]


def test_model_cache_is_persistent_and_holds_the_model(any_stack: Plan) -> None:
    config = load_config(any_stack.evaluation.stack)
    models = {m.name: m for m in config.nim.models}
    expected_class = {"dev": "llmops-model-cache", "staging": "llmops-model-cache", "prod": "dgxc-enterprise-file"}
    for name, inputs in nim_releases(any_stack).items():
        persistence = inputs["values"]["persistence"]
        assert persistence["enabled"] is True
        assert persistence["storageClass"] == expected_class[any_stack.evaluation.stack]
        assert gib(persistence["size"]) >= MODEL_DISK_GIB[models[name].model]
        assert persistence["stsPersistentVolumeClaimRetentionPolicy"] == {
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        }


def test_startup_probe_allows_the_download_and_scales_with_model_size(prod: Plan) -> None:
    def budget(release: str) -> int:
        probe = values_of(prod, release)["startupProbe"]
        assert probe["enabled"] is True
        return int(probe["failureThreshold"]) * int(probe["periodSeconds"])

    small, large = budget("llama-3-1-8b-instruct"), budget("llama-3-3-70b-instruct")
    assert small >= 3600
    assert large > small
    # The Helm wait outlasts the probe, or an atomic install would roll back a NIM still downloading.
    for release in ("llama-3-1-8b-instruct", "llama-3-3-70b-instruct"):
        assert prod.inputs(prod.helm_release(release))["timeout"] > budget(release)


def test_startup_budget_grows_with_the_model() -> None:
    base = {"image": "nvcr.io/nim/x/y", "image_tag": "1.0.0"}
    small = NimModelConfig(name="small", model="meta/llama-3.2-1b-instruct", **base)
    large = NimModelConfig(name="large", model="meta/llama-3.1-70b-instruct", gpus=4, **base)
    assert startup_seconds(small) == 3600
    assert startup_seconds(large) > 4 * 3600


def test_nim_pods_meet_restricted_pod_security(prod: Plan) -> None:
    namespaces = {
        r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"]
        for r in prod.of_type("kubernetes:core/v1:Namespace")
    }
    assert namespaces["nim"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespaces["nemo"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert namespaces["volcano-system"]["pod-security.kubernetes.io/enforce"] == "baseline"
    for inputs in nim_releases(prod).values():
        values = inputs["values"]
        assert values["podSecurityContext"]["runAsNonRoot"] is True
        assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert values["containerSecurityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }


# ----------------------------------------------------------------------------------------------------------
# LoRA from the Entity Store, Guardrails, autoscaling, monitoring
# ----------------------------------------------------------------------------------------------------------


ENTITY_STORE = "http://nemo-entity-store.nemo.svc.cluster.local:8000"


def test_lora_adapters_come_from_the_entity_store(dev: Plan, prod: Plan) -> None:
    assert env_of(values_of(dev, "llama-3-1-8b-instruct")) == {
        "NIM_PEFT_SOURCE": ENTITY_STORE,
        "NIM_PEFT_REFRESH_INTERVAL": "60",
        "NIM_MAX_GPU_LORAS": "8",
        "NIM_MAX_CPU_LORAS": "16",
    }
    prod_env = env_of(values_of(prod, "llama-3-1-8b-instruct"))
    assert (prod_env["NIM_MAX_GPU_LORAS"], prod_env["NIM_MAX_CPU_LORAS"]) == ("16", "64")
    assert prod_env["NIM_PEFT_SOURCE"] == ENTITY_STORE
    # LoRA is off for the 70B model: no PEFT settings at all.
    assert "env" not in values_of(prod, "llama-3-3-70b-instruct")


def test_lora_nims_install_after_nemo(prod: Plan) -> None:
    nemo = prod.helm_release("nemo").urn
    assert nemo in prod.helm_release("llama-3-1-8b-instruct").dependencies
    assert nemo not in prod.helm_release("llama-3-3-70b-instruct").dependencies


def test_nemo_installs_after_volcano_and_its_ngc_secrets(any_stack: Plan) -> None:
    nemo = any_stack.helm_release("nemo")
    assert any_stack.helm_release("volcano").urn in nemo.dependencies
    secrets = [r for r in any_stack.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["namespace"] == "nemo"]
    assert {r.inputs["metadata"]["name"] for r in secrets} == {"ngc-api", "nvcrimagepullsecret"}
    assert all(r.urn in nemo.dependencies or r.parent in nemo.dependencies for r in secrets)


def test_guardrails_fronts_the_first_nim(prod: Plan) -> None:
    guardrails = values_of(prod, "nemo")["guardrails"]
    assert guardrails["enabled"] is True
    assert guardrails["env"]["NIM_ENDPOINT_URL"] == "http://llama-3-1-8b-instruct.nim.svc.cluster.local:8000/v1"


def test_customizer_targets_workspace_and_scheduler(prod: Plan) -> None:
    customizer = values_of(prod, "nemo")["customizer"]
    assert customizer["customizationTargets"]["targets"] == {
        "meta/llama-3.1-8b-instruct@2.0": {"enabled": True},
        "meta/llama-3.2-3b-instruct@2.0": {"enabled": True},
    }
    pvc = customizer["customizerConfig"]["training"]["pvc"]
    assert pvc == {"size": "2Ti", "storageClass": "dgxc-enterprise-file", "volumeAccessMode": "ReadWriteMany"}
    assert customizer["modelsStorage"]["storageClassName"] == "dgxc-enterprise-file"
    volcano = values_of(prod, "volcano")
    selector = volcano["custom"]["webhooks_namespace_selector_expressions"]
    assert selector == [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["nemo"]}]


def test_data_store_persists_and_bundled_postgres_uses_bitnamilegacy(any_stack: Plan) -> None:
    values = values_of(any_stack, "nemo")
    config = load_config(any_stack.evaluation.stack)
    assert values["data-store"]["persistence"]["size"] == config.nemo.data_store_size
    for service in ("customizer", "evaluator", "data-store", "entity-store", "guardrails", "auditor"):
        postgresql = values[service]["postgresql"]
        assert postgresql["image"]["repository"] == "bitnamilegacy/postgresql"
        assert postgresql["volumePermissions"]["image"]["repository"] == "bitnamilegacy/os-shell"
        assert postgresql["metrics"]["image"]["repository"] == "bitnamilegacy/postgres-exporter"
    assert values["global"]["security"]["allowInsecureImages"] is True
    assert values["existingSecret"] == "ngc-api"
    assert values["existingImagePullSecret"] == "nvcrimagepullsecret"


def test_autoscaling_falls_back_to_cpu_without_keda(staging: Plan, prod: Plan) -> None:
    # KV-cache scaling goes through KEDA's prometheus scaler (tests/test_day2_aks.py); an HPA on the custom metric
    # would need a Prometheus adapter that nothing installs.
    prod_scaling = values_of(prod, "llama-3-1-8b-instruct")["autoscaling"]
    assert (prod_scaling["minReplicas"], prod_scaling["maxReplicas"]) == (2, 6)
    assert prod_scaling["metrics"][0]["resource"]["name"] == "cpu"
    assert values_of(prod, "llama-3-1-8b-instruct")["metrics"]["serviceMonitor"]["enabled"] is True
    staging_values = values_of(staging, "llama-3-1-8b-instruct")
    assert staging_values["autoscaling"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in staging_values["resources"]["requests"], "a CPU utilization target needs a CPU request"
    assert staging_values["metrics"]["serviceMonitor"]["enabled"] is False


def test_fixed_replica_count_needs_no_autoscaler() -> None:
    model = NimModelConfig(name="m", model="meta/llama-3.1-8b-instruct", image="nvcr.io/nim/m/m", image_tag="1.8.6")
    assert autoscaling_values(model) == {"enabled": False}


# ----------------------------------------------------------------------------------------------------------
# Secrets, data safety, outputs
# ----------------------------------------------------------------------------------------------------------


def test_ngc_repository_password_is_a_secret(any_stack: Plan) -> None:
    for name in ("nemo", *nim_releases(any_stack)):
        registration = any_stack.helm_release(name)
        assert rpc.is_rpc_secret(registration.inputs["repositoryOpts"])
        options = any_stack.inputs(registration)["repositoryOpts"]
        assert (options["username"], options["password"]) == ("$oauthtoken", NGC_KEY)


def test_ngc_key_never_appears_in_clear(any_stack: Plan) -> None:
    for name in ("nemo", *nim_releases(any_stack)):
        assert NGC_KEY not in json.dumps(values_of(any_stack, name))
    document = json.dumps(plan_document(any_stack.evaluation, any_stack.verdicts))
    for value in SEEDED_SECRETS.values():
        assert value.splitlines()[-1] not in document


def test_stateful_releases_are_protected_in_prod_only(dev: Plan, prod: Plan) -> None:
    for name in ("nemo", "llama-3-1-8b-instruct", "llama-3-3-70b-instruct"):
        assert prod.helm_release(name).protect is True
    assert prod.helm_release("volcano").protect is False
    assert dev.helm_release("nemo").protect is False
    assert dev.helm_release("llama-3-1-8b-instruct").protect is False


def test_outputs_publish_in_cluster_urls_models_and_adapter_namespace(prod: Plan) -> None:
    outputs = prod.outputs
    assert outputs["nemo"]["namespace"] == "nemo"
    assert outputs["nemo"]["adapterNamespace"] == "llmops"
    assert outputs["nemo"]["serviceUrls"] == {
        "customizer": "http://nemo-customizer.nemo.svc.cluster.local:8000",
        "evaluator": "http://nemo-evaluator.nemo.svc.cluster.local:7331",
        "data-store": "http://nemo-data-store.nemo.svc.cluster.local:3000",
        "entity-store": ENTITY_STORE,
        "guardrails": "http://nemo-guardrails.nemo.svc.cluster.local:7331",
        "deployment-management": "http://nemo-deployment-management.nemo.svc.cluster.local:8000",
        "nim-proxy": "http://nemo-nim-proxy.nemo.svc.cluster.local:8000",
    }
    models = {m["name"]: m for m in outputs["nim"]["models"]}
    assert models["llama-3-3-70b-instruct"] == {
        "name": "llama-3-3-70b-instruct",
        "model": "meta/llama-3.3-70b-instruct",
        "url": "http://llama-3-3-70b-instruct.nim.svc.cluster.local:8000",
        "port": 8000,
        "lora": False,
    }
    assert models["llama-3-1-8b-instruct"]["lora"] is True
    assert outputs["nim"]["namespace"] == "nim"


# ----------------------------------------------------------------------------------------------------------
# Configuration rules of the NIM models
# ----------------------------------------------------------------------------------------------------------


def test_a_model_with_too_few_gpus_is_refused() -> None:
    def one_gpu_for_70b(config: dict[str, Any]) -> None:
        config["llmops:nim"]["models"][1]["gpus"] = 1

    with pytest.raises(ConfigError) as raised:
        load_config("prod", one_gpu_for_70b)
    assert raised.value.problems == [
        "llmops:nim.models[1].gpus: meta/llama-3.3-70b-instruct needs at least 4 GPUs for one replica (got 1)"
    ]
