"""NIM for LLMs on the GPU cluster: one `nim-llm` release per configured model, serving LoRA adapters that the
NeMo Customizer registers in the Entity Store (NIM polls `NIM_PEFT_SOURCE` for new adapters of its base model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import NimConfig, NimModelConfig
from components.gateway_objects import PROXY_PEER
from components.gpu import GpuWorkloadTarget
from components.helm import ChartRef, release
from components.kube import custom_object, object_meta, restricted_pod_security
from components.network_policies import Allow, NamespaceSpec, Peer, metrics_scraping
from components.ngc import NGC_API_SECRET, NGC_PULL_SECRET, NgcNamespace

NIM_CHART = "nim-llm"
NIM_REPOSITORY = "https://helm.ngc.nvidia.com/nim"
NIM_PORT = 8000
# The unprivileged user the NIM images run as.
NIM_USER = 1000
# The nim-llm chart's selector label, on every NIM pod whatever the release.
NIM_POD_LABELS = {"app.kubernetes.io/name": "nim-llm"}

# Startup budget: the first start downloads the model from NGC, then builds or loads the engine. We plan for a
# sustained 10 MiB/s from NGC plus 10 minutes of engine work, and never less than an hour. Later starts read the
# model cache PVC and are ready in minutes, well inside the budget.
NGC_DOWNLOAD_MIB_PER_SECOND = 10
ENGINE_START_SECONDS = 600
MIN_STARTUP_SECONDS = 3600
STARTUP_PERIOD_SECONDS = 10
# Image pull plus, on AKS, a GPU node scaled up from zero.
SCHEDULING_SECONDS = 1200

# CPU reserved per GPU: the smallest GPU sizes offer 4 vCPUs per GPU, and the CPU autoscaling metric is a
# utilization of this request.
CPU_PER_GPU = 2
# Host memory per GPU: the request covers the server and the LoRA adapters cached on the host; the limit leaves
# room for loading the weights (the 70B profiles, 141 GiB on disk, get 256 GiB on 4 GPUs). The smallest GPU size
# a NIM model runs on (Standard_NC24ads_A100_v4) has 220 GiB for its one GPU.
MEMORY_GIB_PER_GPU = 24
MEMORY_LIMIT_GIB_PER_GPU = 64

# KEDA (kedacore/keda apis/keda/v1alpha1/scaledobject_types.go). The nim-llm chart names its StatefulSet after the
# release (templates/deployment.yaml `name: {{ .Release.Name }}`), and each release is named after its model.
KEDA_API_VERSION = "keda.sh/v1alpha1"
# NIM for LLMs exports the fraction of its KV cache in use (1 = full) on its OpenAI port's /v1/metrics; NVIDIA
# scales NIM on it. The chart's ServiceMonitor has Prometheus scrape it with the Service's name as `service`.
KV_CACHE_METRIC = "gpu_cache_usage_perc"
# How long KEDA waits after the last active trigger before scaling to zero (the end of a serving window).
SCALE_TO_ZERO_AFTER_SECONDS = 300


@dataclass(frozen=True)
class NimKeda:
    """KEDA on the GPU cluster (`enabled`), and the Prometheus it reads NIM's KV-cache usage from (optional)."""

    enabled: bool
    prometheus_url: str | None = None


def keda_scales(model: NimModelConfig, keda: NimKeda) -> bool:
    """KEDA scales the model (a ScaledObject, no chart HPA: KEDA runs its own HPA, and two fight over replicas) when
    it has a serving schedule, or scales on KV-cache usage with a Prometheus to read it from."""
    if not keda.enabled:
        return False
    scaling = model.autoscaling
    kv_cache = scaling.metric == "gpu-cache-usage" and scaling.min_replicas != scaling.max_replicas
    return model.schedule is not None or (kv_cache and keda.prometheus_url is not None)


def scaled_object_spec(model: NimModelConfig, nim_namespace: str, keda: NimKeda) -> dict[str, Any]:
    """The ScaledObject of a model: the cron window of its schedule (zero replicas outside it) and its autoscaling
    metric, KV-cache usage through Prometheus or else CPU. KEDA takes the largest replica count any trigger asks for;
    outside the window a model that still has requests in its KV cache keeps serving until it is idle."""
    scaling = model.autoscaling
    triggers: list[dict[str, Any]] = []
    if model.schedule is not None:
        triggers.append(
            {
                "type": "cron",
                "metadata": {
                    "timezone": model.schedule.timezone,
                    "start": model.schedule.start,
                    "end": model.schedule.end,
                    "desiredReplicas": str(model.scheduled_replicas),
                },
            }
        )
    if scaling.min_replicas != scaling.max_replicas:
        if scaling.metric == "gpu-cache-usage" and keda.prometheus_url is not None:
            query = f'sum({KV_CACHE_METRIC}{{namespace="{nim_namespace}",service="{model.name}"}})'
            triggers.append(
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": keda.prometheus_url,
                        # A sum against an average target: KEDA's default AverageValue divides by the replicas.
                        "query": query,
                        "threshold": f"{scaling.target / 100:g}",
                    },
                }
            )
        else:
            # KEDA's CPU scaler alone never scales to zero; beside the cron trigger it only adds replicas.
            triggers.append({"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(scaling.target)}})
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": model.name},
        "minReplicaCount": 0 if model.schedule is not None else scaling.min_replicas,
        "maxReplicaCount": max(scaling.max_replicas, model.scheduled_replicas),
        "cooldownPeriod": SCALE_TO_ZERO_AFTER_SECONDS,
        "triggers": triggers,
    }


def nim_service_url(nim_namespace: str, model: NimModelConfig) -> str:
    """The in-cluster base URL of a model's NIM (OpenAI API under /v1)."""
    return f"http://{model.name}.{nim_namespace}.svc.cluster.local:{NIM_PORT}"


def nim_network_allows(nemo_namespace: str, prometheus: bool) -> list[Allow]:
    """Clients reach NIM through the gateway; NeMo's Guardrails, Evaluator and NIM proxy call it in the cluster."""
    allows = [
        Allow("gateway", NIM_POD_LABELS, [PROXY_PEER], [NIM_PORT]),
        Allow("nemo", NIM_POD_LABELS, [Peer(namespace=nemo_namespace)], [NIM_PORT]),
    ]
    if prometheus:
        # The ServiceMonitor scrapes the OpenAI port's /v1/metrics.
        allows.append(metrics_scraping(NIM_POD_LABELS, [NIM_PORT]))
    return allows


def startup_seconds(model: NimModelConfig) -> int:
    download = model.disk_gib * 1024 / NGC_DOWNLOAD_MIB_PER_SECOND
    return max(MIN_STARTUP_SECONDS, math.ceil(download) + ENGINE_START_SECONDS)


def lora_env(model: NimModelConfig, peft_source: str) -> list[dict[str, str]]:
    if not model.lora.enabled:
        return []
    lora = model.lora
    return [
        {"name": "NIM_PEFT_SOURCE", "value": peft_source},
        {"name": "NIM_PEFT_REFRESH_INTERVAL", "value": str(lora.refresh_interval_seconds)},
        {"name": "NIM_MAX_GPU_LORAS", "value": str(lora.max_gpu_loras)},
        {"name": "NIM_MAX_CPU_LORAS", "value": str(lora.max_cpu_loras)},
    ]


def autoscaling_values(model: NimModelConfig) -> dict[str, Any]:
    """The chart's HPA, where KEDA does not scale the model: on CPU. KV-cache usage (`gpu_cache_usage_perc`, the
    signal NVIDIA scales NIM on) reaches an HPA only through a Prometheus metrics adapter, which nothing here
    installs; with KEDA and a Prometheus it goes through KEDA's prometheus scaler instead (`scaled_object_spec`)."""
    scaling = model.autoscaling
    if scaling.min_replicas == scaling.max_replicas:
        return {"enabled": False}
    return {
        "enabled": True,
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": scaling.target}},
            }
        ],
    }


def nim_values(
    model: NimModelConfig,
    *,
    peft_source: str,
    model_cache_storage_class: str,
    gpu_tolerations: list[dict[str, Any]],
    prometheus: bool,
    keda: NimKeda = NimKeda(enabled=False),
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "image": {"repository": model.image, "tag": model.image_tag, "pullPolicy": "IfNotPresent"},
        "imagePullSecrets": [{"name": NGC_PULL_SECRET}],
        "model": {"name": model.model, "ngcAPISecret": NGC_API_SECRET},
        # No CPU limit: throttling stalls token generation (security/checkov-exceptions.yaml, CKV_K8S_11).
        "resources": {
            "limits": {"nvidia.com/gpu": model.gpus, "memory": f"{MEMORY_LIMIT_GIB_PER_GPU * model.gpus}Gi"},
            "requests": {
                "nvidia.com/gpu": model.gpus,
                "cpu": str(CPU_PER_GPU * model.gpus),
                "memory": f"{MEMORY_GIB_PER_GPU * model.gpus}Gi",
            },
        },
        # GPU nodes only, never spot: an evicted NIM drops in-flight requests and re-reads its cache elsewhere.
        "tolerations": gpu_tolerations,
        # Restricted Pod Security: the image runs as an unprivileged user already.
        "podSecurityContext": restricted_pod_security(NIM_USER, fs_group=NIM_USER),
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        # One model cache per replica (StatefulSet claim template). Pulumi never sees these PVCs, so their
        # safety is the StatefulSet's retention policy: kept when the release is deleted or scaled down.
        "statefulSet": {"enabled": True},
        "persistence": {
            "enabled": True,
            "size": f"{model.cache_size_gib}Gi",
            "storageClass": model_cache_storage_class,
            "accessMode": "ReadWriteOnce",
            "stsPersistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        },
        "startupProbe": {
            "enabled": True,
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "failureThreshold": math.ceil(startup_seconds(model) / STARTUP_PERIOD_SECONDS),
        },
        # A stable name that does not depend on the chart's fullname rules.
        "service": {"name": model.name, "openaiPort": NIM_PORT},
        # With KEDA the chart renders `replicas` for the first install only: Helm's three-way merge leaves the
        # replicas KEDA set alone while the value stays the same.
        "replicaCount": model.autoscaling.min_replicas,
        "autoscaling": {"enabled": False} if keda_scales(model, keda) else autoscaling_values(model),
        "metrics": {"serviceMonitor": {"enabled": prometheus}},
    }
    env = lora_env(model, peft_source)
    if env:
        values["env"] = env
    return values


class ServedModel(pulumi.ComponentResource):
    """One model served by NIM: its release and where to reach it inside the cluster."""

    model: str
    service_name: str
    port: int
    url: str
    lora: bool
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        model: NimModelConfig,
        *,
        nim_namespace: pulumi.Input[str],
        namespace_name: str,
        chart_version: str,
        values: dict[str, Any],
        repository_credentials: k8s.helm.v3.RepositoryOptsArgs,
        provider: k8s.Provider,
        protect: bool,
        depends_on: Sequence[pulumi.Resource],
        scaling: dict[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`scaling`: the spec of the KEDA ScaledObject that scales the model, when KEDA does."""
        # The type token predates the class name.
        super().__init__("llmops:nim:NimService", name, None, opts)
        self.model = model.model
        self.service_name = model.name
        self.port = NIM_PORT
        self.url = nim_service_url(namespace_name, model)
        self.lora = model.lora.enabled
        self.release = release(
            model.name,
            ChartRef(NIM_CHART, chart_version, NIM_REPOSITORY),
            nim_namespace,
            values,
            parent=self,
            provider=provider,
            # Helm waits for readiness; the first start may spend its whole startup budget downloading.
            timeout_seconds=startup_seconds(model) + SCHEDULING_SECONDS,
            depends_on=depends_on,
            repository_credentials=repository_credentials,
            # In prod a deleted or replaced release takes serving down and orphans the model caches.
            protect=protect,
        )
        self.scaled_object = None
        if scaling is not None:
            self.scaled_object = custom_object(
                f"{name}-scaling",
                api_version=KEDA_API_VERSION,
                kind="ScaledObject",
                metadata=object_meta(model.name, nim_namespace),
                spec=scaling,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.release]),
            )
        self.outputs: dict[str, Any] = {
            "name": self.service_name,
            "model": self.model,
            "url": self.url,
            "port": self.port,
            "lora": self.lora,
        }
        self.register_outputs(self.outputs)


class NimServing(pulumi.ComponentResource):
    """The NIM namespace with its NGC credentials and one ServedModel per configured model."""

    namespace_name: str
    models: list[ServedModel]

    def __init__(
        self,
        name: str,
        config: NimConfig,
        *,
        chart_version: str,
        peft_source: str,
        prometheus: bool,
        gpu: GpuWorkloadTarget,
        ngc_api_key: pulumi.Output[str],
        protect: bool,
        nemo_namespace: str,
        keda: NimKeda = NimKeda(enabled=False),
        peft_source_ready: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`peft_source`: the Entity Store URL LoRA-enabled NIMs poll for adapters; `peft_source_ready`: what must
        be up before they start polling it. `nemo_namespace`: where the NeMo services that call NIM run."""
        super().__init__("llmops:nim:NimServing", name, None, opts)
        self.namespace_name = config.namespace
        ngc = NgcNamespace(
            NamespaceSpec(config.namespace, "restricted", nim_network_allows(nemo_namespace, prometheus), name),
            helm_repository=NIM_REPOSITORY,
            gpu=gpu,
            ngc_api_key=ngc_api_key,
            parent=self,
        )
        self.models = [
            ServedModel(
                f"{name}-{model.name}",
                model,
                nim_namespace=ngc.namespace.metadata.name,
                namespace_name=config.namespace,
                chart_version=chart_version,
                values=nim_values(
                    model,
                    peft_source=peft_source,
                    model_cache_storage_class=gpu.model_cache_storage_class,
                    gpu_tolerations=gpu.gpu_tolerations,
                    prometheus=prometheus,
                    keda=keda,
                ),
                repository_credentials=ngc.helm_repository,
                provider=gpu.provider,
                protect=protect,
                scaling=scaled_object_spec(model, config.namespace, keda) if keda_scales(model, keda) else None,
                depends_on=[
                    *ngc.ready,
                    *gpu.gpu_operator_ready,
                    *gpu.storage_ready,
                    *(peft_source_ready if model.lora.enabled else ()),
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for model in config.models
        ]
        # What NIM publishes: its namespace and, per model, where it is served and whether it takes adapters.
        self.outputs: dict[str, Any] = {
            "namespace": self.namespace_name,
            "models": [served.outputs for served in self.models],
        }
        self.register_outputs(self.outputs)
