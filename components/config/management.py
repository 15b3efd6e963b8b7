"""The management cluster and its control plane: ArgoCD, Argo Workflows and MLflow."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.catalog import is_gpu_vm_size
from components.config.base import Model, Uuid
from components.config.clusters import AksClusterConfig, NodePoolConfig, unique_pool_names


class ManagementClusterConfig(AksClusterConfig):
    user_pools: list[NodePoolConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cpu_only(self) -> Self:
        pools = {"systemPool": self.system_pool, **{f"userPools[{i}]": p for i, p in enumerate(self.user_pools)}}
        for key, pool in pools.items():
            if is_gpu_vm_size(pool.vm_size):
                raise ValueError(f"{key}.vmSize: the management cluster is CPU-only (got GPU size {pool.vm_size!r})")
        unique_pool_names([self.system_pool, *self.user_pools])
        return self


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
