"""The management cluster and its control plane: ArgoCD, Argo Workflows and MLflow."""

from __future__ import annotations

import ipaddress
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.catalog import is_gpu_vm_size
from components.config.azure import NetworkConfig
from components.config.base import Cidr, DnsLabel, Model, Uuid, VmSize, valid_cidr
from components.config.clusters import AksClusterConfig, NodePoolConfig, unique_pool_names
from components.config.dns import valid_ipv4

PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
# Azure Database for PostgreSQL flexible server: each compute tier offers one VM series (B, D or E sizes).
POSTGRES_TIER_SERIES = {"Burstable": "B", "GeneralPurpose": "D", "MemoryOptimized": "E"}
POSTGRES_TIER_EXAMPLES = {
    "Burstable": "Standard_B2s",
    "GeneralPurpose": "Standard_D2ds_v5",
    "MemoryOptimized": "Standard_E2ds_v5",
}


class ManagementClusterConfig(AksClusterConfig):
    user_pools: list[NodePoolConfig] = Field(
        default_factory=list, description="CPU node pools for the control plane's workloads besides the system pool"
    )

    @model_validator(mode="after")
    def _cpu_only(self) -> Self:
        """The management cluster's pools are CPU sizes, with unique names."""
        pools = {"systemPool": self.system_pool, **{f"userPools[{i}]": p for i, p in enumerate(self.user_pools)}}
        for key, pool in pools.items():
            if is_gpu_vm_size(pool.vm_size):
                raise ValueError(f"{key}.vmSize: the management cluster is CPU-only (got GPU size {pool.vm_size!r})")
        unique_pool_names([self.system_pool, *self.user_pools])
        return self


class OidcSsoConfig(Model):
    """Entra ID app registration for SSO; its client secret is the `llmops:ssoClientSecret` secret."""

    tenant_id: Uuid = Field(description="Entra ID tenant of the app registration")
    client_id: Uuid = Field(description="application (client) id of the app registration")
    admin_group_object_ids: list[Uuid] = Field(
        min_length=1, description="Entra groups whose members are ArgoCD and Argo Workflows admins"
    )


class ArgoCdConfig(Model):
    hostname: str = Field(
        "argocd.internal", pattern=r"^[a-z0-9.-]+$", description="host name of the ArgoCD UI on the internal entry"
    )
    high_availability: bool = Field(False, description="run ArgoCD's HA setup (several replicas, Redis HA)")
    sso: OidcSsoConfig | None = Field(None, description="sign users in with Entra ID; unset: local admin only")


class ArgoWorkflowsConfig(Model):
    hostname: str = Field(
        "workflows.internal",
        pattern=r"^[a-z0-9.-]+$",
        description="host name of the Argo Workflows UI on the internal entry",
    )
    auth_modes: list[Literal["sso", "client", "server"]] = Field(
        default=["client"],
        min_length=1,
        description="how the Argo Server authenticates: sso, client (bearer token); server is refused",
    )
    parallelism: int = Field(20, ge=1, description="most workflows running at once in the cluster")
    namespace_parallelism: int = Field(10, ge=1, description="most workflows running at once per namespace")
    gpu_job_limit: int = Field(2, ge=1, description="GPU jobs admitted at once by the pipeline semaphore")
    workflow_ttl_seconds: int = Field(
        7 * 24 * 3600,
        ge=600,
        description="seconds a finished workflow stays before it is deleted (the archive keeps it)",
    )
    archive_retention_days: int = Field(30, ge=1, description="days the workflow archive keeps finished workflows")

    @field_validator("auth_modes")
    @classmethod
    def _not_server_only(cls, value: list[str]) -> list[str]:
        if "server" in value:
            raise ValueError("'server' auth runs every request as the server's ServiceAccount; use 'sso' or 'client'")
        return value


class MlflowConfig(Model):
    hostname: str = Field(
        "mlflow.internal", pattern=r"^[a-z0-9.-]+$", description="host name of the MLflow UI on the internal entry"
    )
    backend: Literal["azure-postgres", "in-cluster"] = Field(
        "azure-postgres",
        description="MLflow's database: Azure Database for PostgreSQL, or the chart's in-cluster PostgreSQL",
    )
    postgres_sku: VmSize = Field(
        "Standard_B2s", description="PostgreSQL flexible server compute size, e.g. Standard_B2s (azure-postgres)"
    )
    postgres_tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = Field(
        "Burstable", description="PostgreSQL tier; Burstable takes B sizes, GeneralPurpose D sizes, MemoryOptimized E"
    )
    postgres_storage_gb: int = Field(32, ge=32, le=16384, description="PostgreSQL storage in GiB")
    postgres_version: Literal["14", "15", "16", "17"] = Field("16", description="PostgreSQL major version")
    backup_retention_days: int = Field(7, ge=7, le=35, description="days PostgreSQL keeps backups")
    geo_redundant_backup: bool = Field(False, description="copy backups to the paired region")
    high_availability: bool = Field(
        False, description="zone-redundant standby (needs GeneralPurpose or MemoryOptimized)"
    )

    @model_validator(mode="after")
    def _ha_tier(self) -> Self:
        """highAvailability needs postgresTier GeneralPurpose or MemoryOptimized."""
        if self.high_availability and self.postgres_tier == "Burstable":
            raise ValueError(
                "highAvailability: zone-redundant PostgreSQL needs postgresTier GeneralPurpose or MemoryOptimized"
            )
        return self

    @model_validator(mode="after")
    def _sku_in_tier(self) -> Self:
        """postgresSku is of postgresTier's series: Burstable B, GeneralPurpose D, MemoryOptimized E."""
        series = POSTGRES_TIER_SERIES[self.postgres_tier]
        if not self.postgres_sku.startswith(f"Standard_{series}"):
            raise ValueError(
                f"postgresSku: {self.postgres_tier} takes Standard_{series}… sizes, e.g. "
                f"{POSTGRES_TIER_EXAMPLES[self.postgres_tier]} (got {self.postgres_sku!r})"
            )
        return self


class InternalEntryConfig(Model):
    """How people reach the UIs: an internal Envoy Gateway behind a private load balancer in the management subnet,
    HTTPS per UI host; each UI signs users in itself (ArgoCD and Argo Workflows SSO, MLflow basic auth)."""

    private_ip: str | None = Field(
        None,
        description="address of the internal load balancer in the management subnet; default: the subnet's last "
        "usable address (set it when the subnet is an existing one)",
    )
    tls_secret_name: DnsLabel = Field(
        "llmops-ui-tls",
        description="kubernetes.io/tls Secret in envoy-gateway-system on the management cluster with a certificate "
        "for every UI host, created by you (docs/access.md): public ACME cannot validate private names",
    )
    allowed_client_cidrs: list[Cidr] = Field(
        default_factory=lambda: list(PRIVATE_RANGES),
        min_length=1,
        description="client ranges the entry admits (the VNet, peered networks, VPN); everything else is refused",
    )
    requests_per_minute: int = Field(1200, ge=1, description="requests per minute per client address and UI")

    _check_ip = field_validator("private_ip")(lambda v: v if v is None else valid_ipv4(v))
    _check_cidrs = field_validator("allowed_client_cidrs")(lambda v: [valid_cidr(c) for c in v])


def internal_entry_address(entry: InternalEntryConfig, network: NetworkConfig) -> str:
    """The private address of the UI entry: as configured, else the management subnet's last usable address (Azure
    keeps the last one for broadcast; AKS hands node addresses out from the bottom)."""
    if entry.private_ip is not None:
        return entry.private_ip
    return str(ipaddress.ip_network(network.management_subnet).broadcast_address - 1)


class ManagementConfig(Model):
    cluster: ManagementClusterConfig = Field(description="the management AKS cluster")
    internal_entry: InternalEntryConfig = Field(
        default_factory=InternalEntryConfig,
        description="the private HTTPS entry to the ArgoCD, Argo Workflows and MLflow UIs",
    )
    argocd: ArgoCdConfig = Field(ArgoCdConfig(), description="ArgoCD on the management cluster")
    argo_workflows: ArgoWorkflowsConfig = Field(
        ArgoWorkflowsConfig(), description="Argo Workflows on the management cluster"
    )
    mlflow: MlflowConfig = Field(MlflowConfig(), description="MLflow tracking server on the management cluster")

    @model_validator(mode="after")
    def _workflows_sso(self) -> Self:
        """argoWorkflows.authModes 'sso' needs argocd.sso (the same Entra ID app registration)."""
        # Argo Workflows signs users in with the same Entra ID app registration as ArgoCD.
        if "sso" in self.argo_workflows.auth_modes and self.argocd.sso is None:
            raise ValueError("argoWorkflows.authModes: 'sso' needs argocd.sso (the Entra ID app registration)")
        return self
