"""NeMo microservices 25.x on the GPU cluster: Customizer, Evaluator, Data Store, Entity Store, Guardrails,
deployment management and the NIM proxy, from NVIDIA's umbrella chart.

Values follow NVIDIA's documented usage of chart 25.8.0 (install guide and the data-flywheel blueprint that pins
it). In-cluster service names and ports are the chart's, for a release named `nemo` (the blueprint's defaults:
`nemo-entity-store:8000`, `nemo-evaluator:7331`, ...), so the release name is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import NemoConfig
from components.gateway_objects import PROXY_PEER
from components.gateway_routes import EXPOSED_NEMO_SERVICES
from components.gpu import GpuWorkloadTarget
from components.helm import ChartRef, release
from components.network_policies import Allow, NamespaceSpec, Peer, among_themselves
from components.ngc import NGC_API_SECRET, NGC_PULL_SECRET, NgcNamespace
from components.nim import NIM_POD_LABELS

NEMO_CHART = "nemo-microservices-helm-chart"
NEMO_REPOSITORY = "https://helm.ngc.nvidia.com/nvidia/nemo-microservices"
NEMO_RELEASE = "nemo"

# Service -> port of its ClusterIP Service `nemo-<service>`.
SERVICE_PORTS: dict[str, int] = {
    "customizer": 8000,
    "evaluator": 7331,
    "data-store": 3000,
    "entity-store": 8000,
    "guardrails": 7331,
    "deployment-management": 8000,
    "nim-proxy": 8000,
}

# Services whose chart runs its own PostgreSQL unless told to use an external one.
DATABASE_SERVICES = ("customizer", "evaluator", "data-store", "entity-store", "guardrails")

# Bitnami removed its public images (docker.io/bitnami) in September 2025; the same tags live on, unmaintained,
# under bitnamilegacy/. The chart's PostgreSQL subcharts still point at bitnami/, so every image is redirected.
BITNAMI_LEGACY_POSTGRESQL: dict[str, Any] = {
    "image": {"repository": "bitnamilegacy/postgresql"},
    "volumePermissions": {"image": {"repository": "bitnamilegacy/os-shell"}},
    "metrics": {"image": {"repository": "bitnamilegacy/postgres-exporter"}},
}
BITNAMI_LEGACY_POSTGRESQL_HA: dict[str, Any] = {
    "postgresql": {"image": {"repository": "bitnamilegacy/postgresql"}},
    "volumePermissions": {"image": {"repository": "bitnamilegacy/os-shell"}},
    "metrics": {"image": {"repository": "bitnamilegacy/postgres-exporter"}},
}


def service_url(service: str, nemo_namespace: str) -> str:
    """The in-cluster URL of one NeMo service, reachable from any namespace of the GPU cluster."""
    return f"http://{NEMO_RELEASE}-{service}.{nemo_namespace}.svc.cluster.local:{SERVICE_PORTS[service]}"


def nemo_network_allows(enabled_services: Sequence[str], nim_namespace: str) -> list[Allow]:
    """Who may connect to the NeMo pods. The chart comes from NGC only, so its pod labels are not known here: the
    allows select every pod and narrow by port (each service listens on its Service's port)."""
    exposed = sorted({SERVICE_PORTS[s] for s in enabled_services if s in EXPOSED_NEMO_SERVICES})
    return [
        # The services, their PostgreSQL and Milvus, and the training and evaluation jobs they start.
        among_themselves(),
        Allow("gateway", {}, [PROXY_PEER], exposed),
        # LoRA-serving NIMs poll the Entity Store for adapters (NIM_PEFT_SOURCE).
        Allow("nim", {}, [Peer(namespace=nim_namespace, pods=NIM_POD_LABELS)], [SERVICE_PORTS["entity-store"]]),
    ]


def _database(service: str, config: NemoConfig) -> dict[str, Any]:
    if config.external_postgres_host is None:
        return {"postgresql": BITNAMI_LEGACY_POSTGRESQL}
    return {
        "postgresql": {"enabled": False},
        "externalDatabase": {
            "host": config.external_postgres_host,
            "port": 5432,
            "existingSecret": f"{service}-postgres",
            "existingSecretPasswordKey": "password",
        },
    }


def nemo_values(
    config: NemoConfig,
    *,
    guardrails_nim_endpoint: str,
    shared_storage_class: str,
    model_cache_storage_class: str,
    training_tolerations: list[dict[str, Any]],
) -> dict[str, Any]:
    """Values for the NeMo umbrella chart. `guardrails_nim_endpoint` is the OpenAI-compatible base URL
    (ending in /v1) of the NIM that Guardrails fronts."""
    guardrails: dict[str, Any] = {"enabled": config.guardrails}
    if config.guardrails:
        guardrails |= {"env": {"NIM_ENDPOINT_URL": guardrails_nim_endpoint}, **_database("guardrails", config)}
    return {
        # The NGC key stays in the Secrets NgcCredentials creates; the chart only learns their names.
        "existingSecret": NGC_API_SECRET,
        "existingImagePullSecret": NGC_PULL_SECRET,
        # Bitnami charts refuse images outside bitnami/ unless told the substitution is deliberate.
        "global": {"security": {"allowInsecureImages": True}},
        # Traffic from outside the cluster enters through the platform gateway, not the chart's Ingress.
        "ingress": {"enabled": False},
        "customizer": {
            "enabled": True,
            "customizationTargets": {
                "overrideExistingTargets": True,
                "targets": {target: {"enabled": True} for target in config.customization_targets},
            },
            "customizerConfig": {
                # Tolerations of the customization job pods (chart README: `customizer.customizerConfig.tolerations`,
                # "Tolerations on the customization job pods"). Fine-tuning may run on spot GPU pools: a preempted
                # job is resubmitted by its pipeline. The chart offers `nodeSelectors` (a hard requirement) but no
                # affinity for these pods, so spot is allowed rather than preferred: requiring it would strand
                # training wherever no spot capacity is left.
                "tolerations": training_tolerations,
                # Training and model storage are shared by the training pods of a multi-GPU job: ReadWriteMany.
                "training": {
                    "pvc": {
                        "size": config.training_workspace_size,
                        "storageClass": shared_storage_class,
                        "volumeAccessMode": "ReadWriteMany",
                    },
                },
            },
            "modelsStorage": {
                "enabled": True,
                "size": config.models_storage_size,
                "storageClassName": shared_storage_class,
                "accessModes": ["ReadWriteMany"],
            },
            **_database("customizer", config),
        },
        # Milvus backs the retriever and RAG evaluation flows.
        "evaluator": {"milvus": {"enabled": True}, **_database("evaluator", config)},
        "data-store": {
            "enabled": True,
            "persistence": {"size": config.data_store_size},
            "postgresql-ha": BITNAMI_LEGACY_POSTGRESQL_HA,
            **_database("data-store", config),
        },
        "entity-store": _database("entity-store", config),
        "guardrails": guardrails,
        "auditor": {"postgresql": BITNAMI_LEGACY_POSTGRESQL},
        # NIMs that deployment management starts keep their model cache where our own NIMs do.
        "deployment-management": {"deployments": {"defaultStorageClass": model_cache_storage_class}},
    }


class NemoMicroservices(pulumi.ComponentResource):
    """The NeMo namespace, its NGC credentials and the NeMo release. Exposes in-cluster service URLs."""

    namespace_name: str
    adapter_namespace: str
    service_urls: dict[str, str]
    entity_store_url: str
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        config: NemoConfig,
        *,
        chart_version: str,
        guardrails_nim_endpoint: str,
        gpu: GpuWorkloadTarget,
        ngc_api_key: pulumi.Output[str],
        protect: bool,
        nim_namespace: str,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`nim_namespace`: where the NIMs that poll the Entity Store run. `depends_on`: the Volcano release, whose
        CRDs and webhook the NeMo operator needs at start."""
        super().__init__("llmops:nemo:NemoMicroservices", name, None, opts)
        self.namespace_name = config.namespace
        self.adapter_namespace = config.adapter_namespace
        self.service_urls = {
            service: service_url(service, config.namespace)
            for service in SERVICE_PORTS
            if service != "guardrails" or config.guardrails
        }
        self.entity_store_url = self.service_urls["entity-store"]

        ngc = NgcNamespace(
            # `baseline`: the umbrella chart bundles third-party subcharts (Bitnami PostgreSQL, Milvus, an
            # OpenTelemetry collector) that do not all meet `restricted`; none of them needs host access.
            NamespaceSpec(
                config.namespace, "baseline", nemo_network_allows(list(self.service_urls), nim_namespace), name
            ),
            helm_repository=NEMO_REPOSITORY,
            gpu=gpu,
            ngc_api_key=ngc_api_key,
            parent=self,
        )
        self.release = release(
            NEMO_RELEASE,
            ChartRef(NEMO_CHART, chart_version, NEMO_REPOSITORY),
            ngc.namespace.metadata.name,
            nemo_values(
                config,
                guardrails_nim_endpoint=guardrails_nim_endpoint,
                shared_storage_class=gpu.shared_storage_class,
                model_cache_storage_class=gpu.model_cache_storage_class,
                training_tolerations=gpu.training_tolerations,
            ),
            parent=self,
            provider=gpu.provider,
            # A cold install pulls a dozen images and runs database migrations before every service is ready.
            timeout_seconds=3600,
            depends_on=[*ngc.ready, *gpu.storage_ready, *depends_on],
            repository_credentials=ngc.helm_repository,
            # The chart-managed databases hold every dataset, model and adapter record.
            protect=protect,
        )
        # What NeMo publishes: its namespaces and the in-cluster URL of each enabled service.
        self.outputs: dict[str, Any] = {
            "namespace": self.namespace_name,
            "adapterNamespace": self.adapter_namespace,
            "serviceUrls": self.service_urls,
        }
        self.register_outputs(self.outputs)
