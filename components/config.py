"""Typed configuration of the whole platform, loaded from the `llmops:` config namespace.

Every model forbids unknown keys and is frozen: a typo in a stack file is an error, not a silently
ignored setting. Keys are camelCase in the stack files (Pulumi's convention) and snake_case here.
Secrets are not part of these models: they stay `pulumi.Output` secrets (see `PlatformSecrets`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.facts import GPU_SKUS, MODEL_DISK_GIB, MODEL_MIN_GPUS, is_gpu_vm_size

NAMESPACE = "llmops"

Environment = Literal["dev", "staging", "prod"]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
PoolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,11}$")]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
KubernetesVersion = Annotated[str, Field(pattern=r"^1\.\d{2}(\.\d+)?$")]
Quantity = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|m)?$")]
ChartVersion = Annotated[str, Field(pattern=r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"must be a CIDR such as 10.0.0.0/16 (got {value!r}: {err})") from None


Cidr = Annotated[str, Field(description="IPv4 CIDR")]


# --------------------------------------------------------------------------------------------
# Azure and network
# --------------------------------------------------------------------------------------------


class NetworkConfig(Model):
    """The VNet both AKS clusters join, or subnets that already exist."""

    address_space: Cidr = "10.40.0.0/16"
    management_subnet: Cidr = "10.40.0.0/22"
    gpu_subnet: Cidr = "10.40.4.0/22"
    existing_management_subnet_id: str | None = None
    existing_gpu_subnet_id: str | None = None
    # Azure CNI overlay: pods get addresses from this private range, not from the VNet.
    pod_cidr: Cidr = "192.168.0.0/16"
    service_cidr: Cidr = "172.16.0.0/16"
    dns_service_ip: str = "172.16.0.10"

    _check_cidrs = field_validator("address_space", "management_subnet", "gpu_subnet", "pod_cidr", "service_cidr")(
        _cidr
    )

    @model_validator(mode="after")
    def _layout(self) -> Self:
        vnet = ipaddress.ip_network(self.address_space)
        for key in ("management_subnet", "gpu_subnet"):
            subnet = ipaddress.ip_network(getattr(self, key))
            if not subnet.subnet_of(vnet):  # type: ignore[arg-type]
                raise ValueError(f"{to_camel(key)}: {subnet} must lie inside addressSpace {vnet}")
        if ipaddress.ip_network(self.management_subnet).overlaps(ipaddress.ip_network(self.gpu_subnet)):
            raise ValueError("gpuSubnet: must not overlap managementSubnet")
        for key in ("pod_cidr", "service_cidr"):
            if ipaddress.ip_network(getattr(self, key)).overlaps(vnet):
                raise ValueError(f"{to_camel(key)}: must not overlap addressSpace {vnet}")
        if ipaddress.ip_address(self.dns_service_ip) not in ipaddress.ip_network(self.service_cidr):
            raise ValueError(f"dnsServiceIp: {self.dns_service_ip} must lie inside serviceCidr {self.service_cidr}")
        return self


class AzureConfig(Model):
    location: str = Field(pattern=r"^[a-z0-9]+$")
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig = NetworkConfig()
    log_retention_days: int = Field(30, ge=30, le=730)


# --------------------------------------------------------------------------------------------
# AKS clusters
# --------------------------------------------------------------------------------------------


class Taint(Model):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    def render(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


class NodePoolConfig(Model):
    name: PoolName
    vm_size: str
    min_count: int = Field(1, ge=0, le=1000)
    max_count: int = Field(3, ge=1, le=1000)
    os_disk_size_gb: int = Field(128, ge=30, le=4096)
    os_disk_type: Literal["Managed", "Ephemeral"] = "Managed"
    max_pods: int = Field(110, ge=10, le=250)
    zones: list[Literal["1", "2", "3"]] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_count > self.max_count:
            raise ValueError(f"minCount: must be <= maxCount (got {self.min_count} > {self.max_count})")
        return self


class SystemPoolConfig(NodePoolConfig):
    name: PoolName = "system"
    vm_size: str = "Standard_D4ds_v5"
    min_count: int = Field(2, ge=1, le=100)
    max_count: int = Field(3, ge=1, le=100)


class ApiServerAccessConfig(Model):
    """A public API server must be restricted to known ranges; otherwise make it private."""

    private_cluster: bool = False
    authorized_ip_ranges: list[Cidr] = Field(default_factory=list)

    _check_ranges = field_validator("authorized_ip_ranges")(lambda v: [_cidr(c) for c in v])

    @model_validator(mode="after")
    def _restricted(self) -> Self:
        if not self.private_cluster and not self.authorized_ip_ranges:
            raise ValueError(
                "authorizedIpRanges: required unless privateCluster is true (an open API server is refused)"
            )
        if self.private_cluster and self.authorized_ip_ranges:
            raise ValueError("authorizedIpRanges: does not apply to a private cluster; remove it")
        return self


class MaintenanceWindowConfig(Model):
    day_of_week: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = "Sunday"
    start_time: str = Field("02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    duration_hours: int = Field(4, ge=4, le=24)
    utc_offset: str = Field("+00:00", pattern=r"^[+-]\d{2}:\d{2}$")


class AksClusterConfig(Model):
    kubernetes_version: KubernetesVersion
    sku_tier: Literal["Free", "Standard", "Premium"] = "Free"
    admin_group_object_ids: list[Uuid] = Field(min_length=1)
    api_server: ApiServerAccessConfig
    system_pool: SystemPoolConfig = SystemPoolConfig()
    upgrade_channel: Literal["none", "patch", "stable", "rapid", "node-image"] = "patch"
    node_os_upgrade_channel: Literal["None", "Unmanaged", "NodeImage", "SecurityPatch"] = "NodeImage"
    maintenance_window: MaintenanceWindowConfig = MaintenanceWindowConfig()


class ManagementClusterConfig(AksClusterConfig):
    user_pools: list[NodePoolConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cpu_only(self) -> Self:
        pools = {"systemPool": self.system_pool, **{f"userPools[{i}]": p for i, p in enumerate(self.user_pools)}}
        for key, pool in pools.items():
            if is_gpu_vm_size(pool.vm_size):
                raise ValueError(f"{key}.vmSize: the management cluster is CPU-only (got GPU size {pool.vm_size!r})")
        _unique_pool_names([self.system_pool, *self.user_pools])
        return self


def _unique_pool_names(pools: list[NodePoolConfig]) -> None:
    names = [p.name for p in pools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"pool names must be unique (repeated: {', '.join(duplicates)})")


GPU_TAINT = Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")
SPOT_TAINT = Taint(key="kubernetes.azure.com/scalesetpriority", value="spot", effect="NoSchedule")


class GpuPoolConfig(NodePoolConfig):
    min_count: int = Field(0, ge=0, le=1000)
    max_count: int = Field(2, ge=1, le=1000)
    os_disk_size_gb: int = Field(512, ge=128, le=4096)
    # Spot pools are for fine-tuning jobs only: they carry the spot taint that only training pods tolerate.
    spot: bool = False
    spot_max_price: float = Field(-1, description="-1 pays up to the on-demand price")

    @field_validator("vm_size")
    @classmethod
    def _known_gpu_sku(cls, value: str) -> str:
        if value not in GPU_SKUS:
            raise ValueError(f"must be a known GPU VM size, one of: {', '.join(sorted(GPU_SKUS))} (got {value!r})")
        return value

    @model_validator(mode="after")
    def _spot(self) -> Self:
        if not self.spot and "spot_max_price" in self.model_fields_set:
            raise ValueError("spotMaxPrice: only applies when spot is true")
        if self.spot_max_price != -1 and self.spot_max_price <= 0:
            raise ValueError(f"spotMaxPrice: must be -1 (up to the on-demand price) or > 0 (got {self.spot_max_price})")
        # Azure may evict every spot node at any time, so a floor cannot be kept; warm capacity belongs in a
        # regular pool, and a spot pool meant for bursty fine-tuning must not bill idle GPUs.
        if self.spot and self.min_count != 0:
            raise ValueError(
                f"minCount: a spot pool scales from 0 (got {self.min_count}); keep warm GPUs in a regular pool"
            )
        return self


def _default_service_pools() -> list[NodePoolConfig]:
    return [NodePoolConfig(name="services", vm_size="Standard_D8ds_v5", min_count=1, max_count=3)]


class GpuAksConfig(AksClusterConfig):
    gpu_pools: list[GpuPoolConfig] = Field(min_length=1)
    # The system pool is tainted CriticalAddonsOnly and GPU pools are tainted too: the GPU Operator controller,
    # Node Feature Discovery and the CPU-only NeMo services need untainted CPU nodes.
    cpu_pools: list[NodePoolConfig] = Field(default_factory=_default_service_pools, min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Self:
        if is_gpu_vm_size(self.system_pool.vm_size):
            raise ValueError("systemPool.vmSize: must be a CPU size; GPUs belong in gpuPools")
        for index, pool in enumerate(self.cpu_pools):
            if is_gpu_vm_size(pool.vm_size):
                raise ValueError(f"cpuPools[{index}].vmSize: must be a CPU size; GPUs belong in gpuPools")
        _unique_pool_names([self.system_pool, *self.cpu_pools, *self.gpu_pools])
        return self


class ExistingGpuClusterConfig(Model):
    """A cluster this program does not create (NVIDIA DGX Cloud, on-prem), reached by kubeconfig
    from the `llmops:gpuClusterKubeconfig` secret. Here we state what it already has."""

    kubernetes_version: KubernetesVersion
    api_server_host: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="host name of the kube-apiserver, for the passthrough route",
    )
    api_server_port: int = Field(443, ge=1, le=65535)
    gpu_operator_preinstalled: bool = True
    # Managed GPU clusters (DGX Cloud) ship the driver in the node image; the operator must then leave it alone.
    nodes_have_driver: bool = True
    model_cache_storage_class: DnsLabel = "standard-rwo"
    shared_storage_class: DnsLabel = "standard-rwx"
    gpu_count: int = Field(8, ge=1, description="GPUs the cluster offers, for the plan report")
    gpu_model: str = "H100"


class GpuOperatorConfig(Model):
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    driver_version: str | None = Field(
        None, pattern=r"^\d+\.\d+(\.\d+)?$", description="override the chart's default driver, e.g. 580.105.08"
    )
    dcgm_exporter: bool = True


class GpuClusterConfig(Model):
    mode: Literal["aks", "existing"]
    aks: GpuAksConfig | None = None
    existing: ExistingGpuClusterConfig | None = None
    gpu_operator: GpuOperatorConfig = GpuOperatorConfig()

    @model_validator(mode="after")
    def _mode_section(self) -> Self:
        chosen, other = ("aks", "existing") if self.mode == "aks" else ("existing", "aks")
        if getattr(self, chosen) is None:
            raise ValueError(f"{chosen}: required when mode is {self.mode!r}")
        if getattr(self, other) is not None:
            raise ValueError(f"{other}: not used when mode is {self.mode!r}; remove it")
        existing = self.existing
        if existing is not None and "gpu_operator" in self.model_fields_set:
            if existing.gpu_operator_preinstalled:
                raise ValueError("gpuOperator: not used when existing.gpuOperatorPreinstalled is true; remove it")
            if existing.nodes_have_driver and self.gpu_operator.driver_version is not None:
                raise ValueError(
                    "gpuOperator.driverVersion: not used when existing.nodesHaveDriver is true "
                    "(the operator keeps the nodes' driver); remove it"
                )
        return self

    @property
    def operator_installs_driver(self) -> bool:
        """AKS pools skip their driver (gpuProfile.driver None), so the operator owns it there."""
        return self.existing is None or not self.existing.nodes_have_driver


# --------------------------------------------------------------------------------------------
# Charts, control plane, MLflow
# --------------------------------------------------------------------------------------------


class ChartVersionsConfig(Model):
    """Chart versions the platform is tested against; override one only after checking its values."""

    argo_cd: ChartVersion = "10.1.1"
    argo_workflows: ChartVersion = "1.0.18"
    gpu_operator: ChartVersion = "v26.7.0"
    nemo_microservices: ChartVersion = "25.8.0"
    # Not NeMo 25.8's own pin (Volcano 1.9.0, which stops at Kubernetes 1.29): see components/volcano.py.
    volcano: ChartVersion = "1.15.1"
    nim_llm: ChartVersion = "1.1.2"
    envoy_gateway: ChartVersion = "v1.9.0"
    mlflow: ChartVersion = "1.11.5"
    cert_manager: ChartVersion = "v1.19.1"


class MonitoringConfig(Model):
    # ServiceMonitors only render when the Prometheus Operator CRDs exist on the cluster.
    prometheus_crds: bool = False


class OidcSsoConfig(Model):
    """Entra ID app registration for SSO; its client secret is the `llmops:ssoClientSecret` secret."""

    tenant_id: Uuid
    client_id: Uuid
    admin_group_object_ids: list[Uuid] = Field(min_length=1)


class ArgoCdConfig(Model):
    hostname: str = Field("argocd.internal", pattern=r"^[a-z0-9.-]+$")
    high_availability: bool = False
    sso: OidcSsoConfig | None = None


class ArgoWorkflowsConfig(Model):
    hostname: str = Field("workflows.internal", pattern=r"^[a-z0-9.-]+$")
    auth_modes: list[Literal["sso", "client", "server"]] = Field(default=["client"], min_length=1)
    parallelism: int = Field(20, ge=1)
    namespace_parallelism: int = Field(10, ge=1)
    gpu_job_limit: int = Field(2, ge=1, description="GPU jobs admitted at once by the pipeline semaphore")
    workflow_ttl_seconds: int = Field(7 * 24 * 3600, ge=600)
    archive_retention_days: int = Field(30, ge=1)

    @field_validator("auth_modes")
    @classmethod
    def _not_server_only(cls, value: list[str]) -> list[str]:
        if "server" in value:
            raise ValueError("'server' auth runs every request as the server's ServiceAccount; use 'sso' or 'client'")
        return value


class MlflowConfig(Model):
    hostname: str = Field("mlflow.internal", pattern=r"^[a-z0-9.-]+$")
    backend: Literal["azure-postgres", "in-cluster"] = "azure-postgres"
    postgres_sku: str = "Standard_B2s"
    postgres_tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = "Burstable"
    postgres_storage_gb: int = Field(32, ge=32, le=16384)
    postgres_version: Literal["14", "15", "16", "17"] = "16"
    backup_retention_days: int = Field(7, ge=7, le=35)
    geo_redundant_backup: bool = False
    high_availability: bool = False

    @model_validator(mode="after")
    def _ha_tier(self) -> Self:
        if self.high_availability and self.postgres_tier == "Burstable":
            raise ValueError(
                "highAvailability: zone-redundant PostgreSQL needs postgresTier GeneralPurpose or MemoryOptimized"
            )
        return self


class ManagementConfig(Model):
    cluster: ManagementClusterConfig
    argocd: ArgoCdConfig = ArgoCdConfig()
    argo_workflows: ArgoWorkflowsConfig = ArgoWorkflowsConfig()
    mlflow: MlflowConfig = MlflowConfig()

    @model_validator(mode="after")
    def _workflows_sso(self) -> Self:
        # Argo Workflows signs users in with the same Entra ID app registration as ArgoCD.
        if "sso" in self.argo_workflows.auth_modes and self.argocd.sso is None:
            raise ValueError("argoWorkflows.authModes: 'sso' needs argocd.sso (the Entra ID app registration)")
        return self


# --------------------------------------------------------------------------------------------
# NeMo microservices and NIM
# --------------------------------------------------------------------------------------------


class NemoConfig(Model):
    namespace: DnsLabel = "nemo"
    customization_targets: list[str] = Field(default_factory=lambda: ["meta/llama-3.1-8b-instruct@2.0"], min_length=1)
    training_workspace_size: Quantity = "200Gi"
    # Base-model weights the Customizer downloads once per target; NVIDIA sizes this at 200 GB or more.
    models_storage_size: Quantity = "200Gi"
    data_store_size: Quantity = "100Gi"
    external_postgres_host: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
        description="PostgreSQL server for every NeMo service instead of the chart's own; each service reads its "
        "password from the Secret `<service>-postgres` (key `password`) in the NeMo namespace",
    )
    guardrails: bool = True
    # The Entity Store namespace that fine-tuned adapters are registered under, where NIM discovers them.
    adapter_namespace: DnsLabel = "llmops"

    @field_validator("customization_targets")
    @classmethod
    def _target_form(cls, value: list[str]) -> list[str]:
        for target in value:
            if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9.-]+@[0-9.]+", target):
                raise ValueError(
                    f"each target is <namespace>/<model>@<version>, e.g. meta/llama-3.1-8b-instruct@2.0 (got {target!r})"  # noqa: E501
                )
        return value


class LoraConfig(Model):
    enabled: bool = True
    max_gpu_loras: int = Field(8, ge=1, le=128)
    max_cpu_loras: int = Field(16, ge=1, le=1024)
    refresh_interval_seconds: int = Field(60, ge=10)

    @model_validator(mode="after")
    def _cpu_holds_gpu(self) -> Self:
        if self.max_cpu_loras < self.max_gpu_loras:
            raise ValueError(f"maxCpuLoras: must be >= maxGpuLoras (got {self.max_cpu_loras} < {self.max_gpu_loras})")
        return self


class NimAutoscalingConfig(Model):
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(1, ge=1)
    metric: Literal["gpu-cache-usage", "cpu"] = "gpu-cache-usage"
    target: int = Field(75, ge=1, le=100, description="percent")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas: must be <= maxReplicas (got {self.min_replicas} > {self.max_replicas})")
        return self


class NimModelConfig(Model):
    name: DnsLabel
    model: str = Field(pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$")
    image: str = Field(pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+$")
    image_tag: str = Field(pattern=r"^[0-9][0-9A-Za-z._-]*$", description="pinned; never 'latest'")
    gpus: int = Field(1, ge=1, le=8)
    model_cache_size_gib: int | None = Field(None, ge=1)
    lora: LoraConfig = LoraConfig()
    autoscaling: NimAutoscalingConfig = NimAutoscalingConfig()

    @model_validator(mode="after")
    def _cache_fits_model(self) -> Self:
        if self.model not in MODEL_DISK_GIB and self.model_cache_size_gib is None:
            raise ValueError(f"modelCacheSizeGib: required for {self.model!r}, whose size is not in the model table")
        needed = MODEL_DISK_GIB.get(self.model, 0)
        if self.model_cache_size_gib is not None and self.model_cache_size_gib < needed:
            raise ValueError(
                f"modelCacheSizeGib: must be >= {needed} for {self.model} (got {self.model_cache_size_gib})"
            )
        return self

    @model_validator(mode="after")
    def _fits_release(self) -> Self:
        # The name is the Helm release and StatefulSet name; pods carry `<name>-<10-char hash>` in a 63-char label.
        if len(self.name) > 52:
            raise ValueError(f"name: at most 52 characters (got {len(self.name)})")
        needed = MODEL_MIN_GPUS.get(self.model, 1)
        if self.gpus < needed:
            raise ValueError(f"gpus: {self.model} needs at least {needed} GPUs for one replica (got {self.gpus})")
        return self

    @property
    def disk_gib(self) -> int:
        """The model's own footprint: what a pod downloads before it can serve."""
        return MODEL_DISK_GIB.get(self.model) or self.cache_size_gib

    @property
    def cache_size_gib(self) -> int:
        # Twice the weights: the download lands beside the previous version during an upgrade.
        return self.model_cache_size_gib or MODEL_DISK_GIB[self.model] * 2


def _default_models() -> list[NimModelConfig]:
    return [
        NimModelConfig(
            name="llama-3-1-8b-instruct",
            model="meta/llama-3.1-8b-instruct",
            image="nvcr.io/nim/meta/llama-3.1-8b-instruct",
            image_tag="1.8.6",
        )
    ]


class NimConfig(Model):
    namespace: DnsLabel = "nim"
    models: list[NimModelConfig] = Field(default_factory=_default_models, min_length=1)

    @field_validator("models")
    @classmethod
    def _unique(cls, value: list[NimModelConfig]) -> list[NimModelConfig]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique (got {names})")
        return value


# --------------------------------------------------------------------------------------------
# Gateway, GitOps, pipelines
# --------------------------------------------------------------------------------------------


class GatewayTlsConfig(Model):
    mode: Literal["cert-manager", "provided"] = "cert-manager"
    acme_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    acme_server: str = "https://acme-v02.api.letsencrypt.org/directory"
    provided_secret_name: DnsLabel | None = None

    @model_validator(mode="after")
    def _source(self) -> Self:
        if self.mode == "cert-manager" and not self.acme_email:
            raise ValueError("acmeEmail: required when mode is 'cert-manager'")
        if self.mode == "provided" and not self.provided_secret_name:
            raise ValueError("providedSecretName: required when mode is 'provided'")
        return self


class GatewayConfig(Model):
    domain: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
    tls: GatewayTlsConfig
    auth: Literal["api-key", "jwt"] = "api-key"
    jwt_issuer: str | None = None
    jwt_audiences: list[str] = Field(default_factory=list)
    # The keys Envoy verifies tokens with; Entra ID: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
    jwt_jwks_uri: str | None = Field(None, pattern=r"^https://[^\s]+$")
    requests_per_minute: int = Field(600, ge=1)
    passthrough: bool = True
    # The name ArgoCD dials to reach the kube-apiserver through the gateway (DNS points it at the gateway);
    # default `k8s.<domain>`.
    passthrough_hostname: str | None = Field(
        None, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
    )
    passthrough_allowed_cidrs: list[Cidr] = Field(default_factory=list)

    _check_cidrs = field_validator("passthrough_allowed_cidrs")(lambda v: [_cidr(c) for c in v])

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.auth == "jwt" and not self.jwt_issuer:
            raise ValueError("jwtIssuer: required when auth is 'jwt'")
        if self.auth == "jwt" and not self.jwt_jwks_uri:
            raise ValueError("jwtJwksUri: required when auth is 'jwt'")
        if self.auth != "jwt" and (self.jwt_issuer or self.jwt_audiences or self.jwt_jwks_uri):
            raise ValueError("auth: jwtIssuer, jwtAudiences and jwtJwksUri only apply when auth is 'jwt'")
        if self.passthrough and not self.passthrough_allowed_cidrs:
            raise ValueError(
                "passthroughAllowedCidrs: required when passthrough is on (the kube-apiserver is never open to all)"
            )
        if not self.passthrough and (self.passthrough_allowed_cidrs or self.passthrough_hostname):
            raise ValueError("passthrough: passthroughHostname and passthroughAllowedCidrs need passthrough on")
        return self

    @property
    def api_server_hostname(self) -> str:
        """The DNS name that reaches the kube-apiserver through the gateway's TLS passthrough listener."""
        return self.passthrough_hostname or f"k8s.{self.domain}"


class GitOpsConfig(Model):
    """The repository ArgoCD watches; its token is the `llmops:gitopsToken` secret."""

    repo_url: str = Field(pattern=r"^https://[^\s]+\.git$")
    revision: str = "main"
    path: str = Field("environments", pattern=r"^[A-Za-z0-9._/-]+$")
    automated_sync: bool = True
    self_heal: bool = True
    prune: bool = False


class PipelinesConfig(Model):
    namespace: DnsLabel = "llm-pipelines"
    image: str = Field(
        "ghcr.io/llmops-platform/pipeline-steps:0.1.0", pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+:[0-9][0-9A-Za-z._-]*$"
    )
    judge_model: str = "meta/llama-3.1-70b-instruct"
    regression_tolerance: float = Field(0.02, ge=0, le=1, description="largest allowed drop of any benchmark")
    min_business_gain: float = Field(0.05, ge=0, le=1, description="smallest gain of the business metric to deploy")
    active_deadline_seconds: int = Field(48 * 3600, ge=600)


# --------------------------------------------------------------------------------------------
# Root
# --------------------------------------------------------------------------------------------


class BudgetConfig(Model):
    """The monthly cost the `monthly-cost-within-budget` policy allows, priced by the offline planner from
    Azure list prices (facts/prices-azure.json)."""

    monthly_limit_usd: float = Field(gt=0)
    measure: Literal["idle", "serving", "peak"] = Field(
        "peak",
        description="idle: autoscalers at minimum; serving: idle plus the GPU nodes the model servers' minimum "
        "replicas need; peak: autoscalers at maximum",
    )
    existing_cluster_gpu_hour_usd: float | None = Field(
        None, gt=0, description="contracted USD per GPU-hour of an existing GPU cluster (DGX Cloud), to count it"
    )


class PlatformConfig(Model):
    environment: Environment
    azure: AzureConfig
    management: ManagementConfig
    gpu_cluster: GpuClusterConfig
    charts: ChartVersionsConfig = ChartVersionsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    nemo: NemoConfig = NemoConfig()
    nim: NimConfig = NimConfig()
    gateway: GatewayConfig
    gitops: GitOpsConfig
    pipelines: PipelinesConfig = PipelinesConfig()
    protect_stateful_resources: bool | None = Field(
        None, description="protect clusters, storage and databases; default: true in prod"
    )
    budget: BudgetConfig | None = Field(None, description="monthly cost cap; unset: no cap")

    @property
    def protect(self) -> bool:
        if self.protect_stateful_resources is None:
            return self.environment == "prod"
        return self.protect_stateful_resources

    @model_validator(mode="after")
    def _prod_rules(self) -> Self:
        if self.environment == "prod":
            if self.management.cluster.sku_tier == "Free":
                raise ValueError("management.cluster.skuTier: prod needs 'Standard' or 'Premium' (got 'Free')")
            if self.protect_stateful_resources is False:
                raise ValueError("protectStatefulResources: must not be false in prod")
        return self


# Secret config keys: (key, required?) where required is a predicate on the validated config.
SECRET_KEYS: dict[str, Callable[[PlatformConfig], bool]] = {
    "ngcApiKey": lambda cfg: True,
    "gitopsToken": lambda cfg: True,
    "gpuClusterKubeconfig": lambda cfg: cfg.gpu_cluster.mode == "existing",
    "ssoClientSecret": lambda cfg: cfg.management.argocd.sso is not None,
    "gatewayApiKey": lambda cfg: cfg.gateway.auth == "api-key",
    "mlflowDbPassword": lambda cfg: cfg.management.mlflow.backend == "azure-postgres",
    "mlflowAdminPassword": lambda cfg: True,
}


class ConfigError(Exception):
    """Bad configuration: one line per problem, each naming the key path and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            path += f".{part}" if path else part
    return path


def _describe(error: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key" + (f"; allowed: {', '.join(_allowed_keys(model))}" if model else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "literal_error":
        return f"must be {msg.removeprefix('Input should be ')} (got {value!r})"
    if kind == "string_pattern_mismatch":
        return f"{msg.replace('String should match pattern', 'must match')} (got {value!r})"
    return f"{msg[0].lower()}{msg[1:]} (got {value!r})"


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that owns the last key of `loc`, for naming the keys it allows."""
    model: Any = PlatformConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        for arg in candidates:
            nested += [a for a in getattr(arg, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


# A validator that blames one key starts its message with that key's path relative to the model.
_KEYED_MESSAGE = re.compile(r"^([a-zA-Z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*|\[\d+\])*): (.+)$", re.S)


def parse_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the `llmops:` namespace (keys without the prefix) or raise ConfigError."""
    try:
        return PlatformConfig.model_validate(dict(raw))
    except ValidationError as err:
        problems = []
        for error in err.errors():
            path = _key_path(tuple(error["loc"]))
            message = _describe(error, _model_at(tuple(error["loc"])))
            if error["type"] == "value_error" and (keyed := _KEYED_MESSAGE.match(message)):
                relative, message = keyed.groups()
                path = f"{path}{'' if relative.startswith('[') or not path else '.'}{relative}"
            problems.append(f"{NAMESPACE}:{path}: {message}" if path else f"{NAMESPACE}: {message}")
        raise ConfigError(problems) from None


def raw_config_from_pulumi(values: Mapping[str, str]) -> dict[str, Any]:
    """Turn Pulumi's flat `llmops:<key>` strings into the nested mapping the models take.

    Object values arrive JSON-encoded; plain strings stay strings. Secret keys are skipped here:
    they never enter the models.
    """
    raw: dict[str, Any] = {}
    for full_key, text in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in SECRET_KEYS:
            continue
        try:
            raw[key] = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raw[key] = text
    return raw


@dataclass(frozen=True)
class PlatformSecrets:
    """Secret config values, kept as secret Outputs end to end; None when not configured."""

    ngc_api_key: pulumi.Output[str]
    gitops_token: pulumi.Output[str]
    gpu_cluster_kubeconfig: pulumi.Output[str] | None
    sso_client_secret: pulumi.Output[str] | None
    gateway_api_key: pulumi.Output[str] | None
    mlflow_db_password: pulumi.Output[str] | None
    mlflow_admin_password: pulumi.Output[str]


def _namespace_values() -> dict[str, str]:
    """Every `llmops:*` value the engine handed the program, so misspelled top-level keys are caught."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {k: v for k, v in values.items() if k.startswith(f"{NAMESPACE}:")}


def load() -> tuple[PlatformConfig, PlatformSecrets]:
    """Load and validate the stack's `llmops:` config; raise ConfigError listing every problem."""
    config = parse_config(raw_config_from_pulumi(_namespace_values()))
    pulumi_config = pulumi.Config(NAMESPACE)
    secrets = {key: pulumi_config.get_secret(key) for key in SECRET_KEYS}
    missing = [
        f"{NAMESPACE}:{key}: required secret is missing; set it with `pulumi config set --secret {NAMESPACE}:{key} …`"
        for key, required in SECRET_KEYS.items()
        if required(config) and secrets[key] is None
    ]
    if missing:
        raise ConfigError(missing)
    return config, PlatformSecrets(
        ngc_api_key=secrets["ngcApiKey"],  # type: ignore[arg-type]  # required above
        gitops_token=secrets["gitopsToken"],  # type: ignore[arg-type]
        gpu_cluster_kubeconfig=secrets["gpuClusterKubeconfig"],
        sso_client_secret=secrets["ssoClientSecret"],
        gateway_api_key=secrets["gatewayApiKey"],
        mlflow_db_password=secrets["mlflowDbPassword"],
        mlflow_admin_password=secrets["mlflowAdminPassword"],  # type: ignore[arg-type]
    )
