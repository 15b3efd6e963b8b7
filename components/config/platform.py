"""The root model of the `llmops:` namespace, with the settings that span every area."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from components.config.azure import AzureConfig
from components.config.base import ChartVersion, Environment, Model
from components.config.delivery import GitOpsConfig, PipelinesConfig
from components.config.gateway import GatewayConfig
from components.config.gpu import GpuClusterConfig
from components.config.management import ManagementConfig
from components.config.nemo_nim import NemoConfig, NimConfig


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


class BudgetConfig(Model):
    """The monthly cost the `monthly-cost-within-budget` policy allows, priced by the offline planner from
    Azure list prices (policies/pack/pricing/prices-azure.json)."""

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
