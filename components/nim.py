"""NIM for LLMs on the GPU cluster: one `nim-llm` release per configured model, serving LoRA adapters that the
NeMo Customizer registers in the Entity Store (NIM polls `NIM_PEFT_SOURCE` for new adapters of its base model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import NimConfig, NimModelConfig
from components.gpu import GpuWorkloadTarget
from components.helm import ChartRef, release
from components.ngc import NGC_API_SECRET, NGC_PULL_SECRET, NgcNamespace

NIM_CHART = "nim-llm"
NIM_REPOSITORY = "https://helm.ngc.nvidia.com/nim"
NIM_PORT = 8000

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


def nim_service_url(nim_namespace: str, model: NimModelConfig) -> str:
    """The in-cluster base URL of a model's NIM (OpenAI API under /v1)."""
    return f"http://{model.name}.{nim_namespace}.svc.cluster.local:{NIM_PORT}"


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


def autoscaling_values(model: NimModelConfig, *, custom_metrics: bool) -> dict[str, Any]:
    """The chart's HPA. KV-cache usage (`gpu_cache_usage_perc`, the signal NVIDIA scales NIM on) reaches the HPA
    only through Prometheus and its adapter, so without the Prometheus stack we scale on CPU, a weaker signal."""
    scaling = model.autoscaling
    if scaling.min_replicas == scaling.max_replicas:
        return {"enabled": False}
    if scaling.metric == "gpu-cache-usage" and custom_metrics:
        metric: dict[str, Any] = {
            "type": "Object",
            "object": {
                "metric": {"name": "gpu_cache_usage_perc"},
                "describedObject": {"apiVersion": "v1", "kind": "Service", "name": model.name},
                # The metric is a fraction: 75 percent is 750m.
                "target": {"type": "Value", "value": f"{scaling.target * 10}m"},
            },
        }
    else:
        metric = {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": scaling.target}},
        }
    return {
        "enabled": True,
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": [metric],
    }


def nim_values(
    model: NimModelConfig,
    *,
    peft_source: str,
    model_cache_storage_class: str,
    gpu_tolerations: list[dict[str, Any]],
    prometheus: bool,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "image": {"repository": model.image, "tag": model.image_tag, "pullPolicy": "IfNotPresent"},
        "imagePullSecrets": [{"name": NGC_PULL_SECRET}],
        "model": {"name": model.model, "ngcAPISecret": NGC_API_SECRET},
        "resources": {
            "limits": {"nvidia.com/gpu": model.gpus},
            "requests": {"nvidia.com/gpu": model.gpus, "cpu": str(CPU_PER_GPU * model.gpus)},
        },
        # GPU nodes only, never spot: an evicted NIM drops in-flight requests and re-reads its cache elsewhere.
        "tolerations": gpu_tolerations,
        # Restricted Pod Security: the image runs as an unprivileged user already.
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
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
        "replicaCount": model.autoscaling.min_replicas,
        "autoscaling": autoscaling_values(model, custom_metrics=prometheus),
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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
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
        peft_source_ready: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`peft_source`: the Entity Store URL LoRA-enabled NIMs poll for adapters; `peft_source_ready`: what must
        be up before they start polling it."""
        super().__init__("llmops:nim:NimServing", name, None, opts)
        self.namespace_name = config.namespace
        ngc = NgcNamespace(
            name,
            config.namespace,
            pod_security="restricted",
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
                ),
                repository_credentials=ngc.helm_repository,
                provider=gpu.provider,
                protect=protect,
                depends_on=[
                    ngc.credentials,
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
