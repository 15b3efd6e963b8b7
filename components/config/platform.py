"""The root model of the `llmops:` namespace, with the settings that span every area."""

from __future__ import annotations

import ipaddress
from typing import Literal, Self

from pydantic import Field, model_validator

from components.config.access import CiRunnersConfig, DeployerConfig
from components.config.azure import AzureConfig
from components.config.base import ChartVersion, Environment, Model
from components.config.delivery import GitOpsConfig, PipelinesConfig
from components.config.dns import DnsConfig, in_zone
from components.config.gateway import GatewayConfig
from components.config.gpu import GpuClusterConfig
from components.config.management import ManagementConfig, internal_entry_address
from components.config.nemo_nim import NemoConfig, NimConfig


class ChartVersionsConfig(Model):
    """Chart versions the platform is tested against; override one only after checking its values."""

    argo_cd: ChartVersion = Field("10.1.1", description="argo-cd chart (argoproj.github.io/argo-helm)")
    argo_workflows: ChartVersion = Field("1.0.18", description="argo-workflows chart (argoproj.github.io/argo-helm)")
    gpu_operator: ChartVersion = Field("v26.7.0", description="NVIDIA gpu-operator chart (helm.ngc.nvidia.com/nvidia)")
    nemo_microservices: ChartVersion = Field("25.8.0", description="nemo-microservices-helm-chart (NGC)")
    # Not NeMo 25.8's own pin (Volcano 1.9.0, which stops at Kubernetes 1.29): see components/volcano.py.
    volcano: ChartVersion = Field("1.15.1", description="volcano chart, the NeMo Customizer's scheduler")
    nim_llm: ChartVersion = Field("1.1.2", description="nim-llm chart (NGC)")
    envoy_gateway: ChartVersion = Field("v1.9.0", description="Envoy Gateway gateway-helm chart (docker.io/envoyproxy)")
    mlflow: ChartVersion = Field("1.11.5", description="mlflow chart (community-charts)")
    cert_manager: ChartVersion = Field("v1.19.1", description="cert-manager chart (charts.jetstack.io)")


class MonitoringConfig(Model):
    # ServiceMonitors only render when the Prometheus Operator CRDs exist on the cluster.
    prometheus_crds: bool = Field(
        False, description="the Prometheus Operator CRDs exist on the GPU cluster: render ServiceMonitors"
    )
    prometheus_url: str | None = Field(
        None,
        pattern=r"^https?://[a-z0-9.-]+(:\d+)?(/[^\s]*)?$",
        description="Prometheus on the GPU cluster that scrapes NIM (e.g. http://prometheus-operated.monitoring:9090); "
        "with KEDA, NIM scales on its KV-cache usage through it (KEDA prometheus scaler), else on CPU",
    )


class BudgetConfig(Model):
    """The monthly cost the `monthly-cost-within-budget` policy allows, priced by the offline planner from
    Azure list prices (policies/pack/pricing/prices-azure.json)."""

    monthly_limit_usd: float = Field(
        gt=0, description="most USD per month the stack may cost under measure (Azure list prices)"
    )
    measure: Literal["idle", "serving", "peak"] = Field(
        "peak",
        description="idle: autoscalers at minimum; serving: idle plus the GPU nodes the model servers' minimum "
        "replicas need; peak: autoscalers at maximum",
    )
    existing_cluster_gpu_hour_usd: float | None = Field(
        None, gt=0, description="contracted USD per GPU-hour of an existing GPU cluster (DGX Cloud), to count it"
    )


class PlatformConfig(Model):
    environment: Environment = Field(
        description="environment this stack is (dev, staging or prod); prod turns on the prod rules"
    )
    azure: AzureConfig = Field(description="Azure location, tags, log retention and the VNet")
    management: ManagementConfig = Field(
        description="the CPU-only management cluster and its control plane (ArgoCD, Argo Workflows, MLflow)"
    )
    gpu_cluster: GpuClusterConfig = Field(
        description="the GPU cluster: AKS with GPU pools, or an existing cluster reached by kubeconfig"
    )
    charts: ChartVersionsConfig = Field(ChartVersionsConfig(), description="Helm chart versions (tested defaults)")
    monitoring: MonitoringConfig = Field(MonitoringConfig(), description="Prometheus integration of the GPU cluster")
    nemo: NemoConfig = Field(
        NemoConfig(), description="NeMo microservices (Customizer, Evaluator, Data Store, Entity Store, Guardrails)"
    )
    nim: NimConfig = Field(NimConfig(), description="NIM for LLMs: the models served on the GPU cluster")
    gateway: GatewayConfig = Field(
        description="the Envoy gateway in front of the GPU cluster (TLS, client auth, API server passthrough)"
    )
    gitops: GitOpsConfig = Field(description="the Git repository ArgoCD syncs")
    pipelines: PipelinesConfig = Field(
        PipelinesConfig(), description="per-environment settings of the pipeline templates"
    )
    protect_stateful_resources: bool | None = Field(
        None, description="protect clusters, storage and databases; default: true in prod"
    )
    budget: BudgetConfig | None = Field(None, description="monthly cost cap; unset: no cap")
    deployer: DeployerConfig = Field(
        DeployerConfig(), description="the identity `pulumi up` runs as, and how kubeconfigs log in"
    )
    ci_runners: CiRunnersConfig | None = Field(
        None, description="self-hosted GitHub Actions runners in the VNet (Container Apps job); unset: none"
    )
    dns: DnsConfig | None = Field(None, description="Azure DNS records for the gateway and the UIs; unset: set by hand")

    @property
    def protect(self) -> bool:
        if self.protect_stateful_resources is None:
            return self.environment == "prod"
        return self.protect_stateful_resources

    @property
    def ui_hostnames(self) -> list[str]:
        management = self.management
        return [management.argocd.hostname, management.argo_workflows.hostname, management.mlflow.hostname]

    @model_validator(mode="after")
    def _names_and_addresses(self) -> Self:
        """management.internalEntry.privateIp lies in managementSubnet (required with an existing one); dns zones
        contain gateway.domain and the UI hosts; dns.gatewayAddress exactly with an existing GPU cluster."""
        network = self.azure.network
        entry = self.management.internal_entry
        if entry.private_ip is None and network.existing_management_subnet_id is not None:
            raise ValueError("management.internalEntry.privateIp: required with an existing management subnet")
        if network.existing_management_subnet_id is None:
            address = ipaddress.ip_address(internal_entry_address(entry, network))
            if address not in ipaddress.ip_network(network.management_subnet):
                raise ValueError(
                    f"management.internalEntry.privateIp: {address} must lie in managementSubnet "
                    f"{network.management_subnet}"
                )
        dns = self.dns
        if dns is None:
            return self
        if dns.zone_name is not None:
            if not in_zone(self.gateway.domain, dns.zone_name):
                raise ValueError(f"dns.zoneName: must contain gateway.domain {self.gateway.domain!r}")
            if self.gpu_cluster.mode == "existing" and dns.gateway_address is None:
                raise ValueError("dns.gatewayAddress: required with an existing GPU cluster (its gateway's address)")
            if self.gpu_cluster.mode == "aks" and dns.gateway_address is not None:
                raise ValueError("dns.gatewayAddress: only for an existing GPU cluster; on AKS a static IP is created")
        if dns.private_zone_name is not None:
            outside = [host for host in self.ui_hostnames if not in_zone(host, dns.private_zone_name)]
            if outside:
                raise ValueError(f"dns.privateZoneName: must contain the UI hosts (not {', '.join(outside)})")
        return self

    @property
    def nim_uses_keda(self) -> bool:
        """Whether any NIM model needs KEDA: a serving schedule, or KV-cache scaling with a Prometheus to read."""
        return any(
            model.schedule is not None
            or (
                model.autoscaling.metric == "gpu-cache-usage"
                and model.autoscaling.min_replicas != model.autoscaling.max_replicas
                and self.monitoring.prometheus_url is not None
                and self.keda_available
            )
            for model in self.nim.models
        )

    @property
    def keda_available(self) -> bool:
        """KEDA on the GPU cluster: the AKS add-on (enabled when needed), or declared present on an existing one."""
        existing = self.gpu_cluster.existing
        return existing is None or existing.keda_installed

    @model_validator(mode="after")
    def _schedules_need_keda(self) -> Self:
        """A NIM serving schedule needs KEDA: on AKS (add-on) or gpuCluster.existing.kedaInstalled."""
        if self.keda_available:
            return self
        for index, model in enumerate(self.nim.models):
            if model.schedule is not None:
                raise ValueError(
                    f"nim.models[{index}].schedule: needs KEDA on the GPU cluster; this program installs it only on "
                    "AKS (add-on): install KEDA v2 on the existing cluster and set gpuCluster.existing.kedaInstalled, "
                    "or remove the schedule"
                )
        return self

    @model_validator(mode="after")
    def _judge_is_served(self) -> Self:
        """pipelines.judgeModel is one of nim.models, and not the second (the new-base-model candidate)."""
        served = [m.model for m in self.nim.models]
        judge = self.pipelines.judge_model
        if judge not in served:
            raise ValueError(
                f"pipelines.judgeModel: no NIM serves {judge!r}; choose one of llmops:nim.models ({', '.join(served)}) "
                "or add a NIM for it"
            )
        if len(served) > 1 and judge == served[1]:
            raise ValueError(
                f"pipelines.judgeModel: {judge} is the new-base-model candidate (the second of llmops:nim.models) "
                "and would judge itself; choose another served model"
            )
        return self

    @model_validator(mode="after")
    def _gateway_certificate_is_trusted(self) -> Self:
        """Let's Encrypt's staging issuer (gateway.tls.acmeServer) needs pipelines.caBundle."""
        tls = self.gateway.tls
        if tls.mode == "cert-manager" and "acme-staging" in tls.acme_server and self.pipelines.ca_bundle is None:
            raise ValueError(
                "pipelines.caBundle: required with Let's Encrypt's staging issuer (gateway.tls.acmeServer), whose "
                "roots no public trust store has: set it to their PEM, or use the production issuer"
            )
        return self

    @model_validator(mode="after")
    def _runner_pool(self) -> Self:
        """ciRunners needs azure.network.runnerSubnet, and then deployer.principalId/principalType stay unset."""
        if self.ci_runners is None:
            return self
        if self.azure.network.runner_subnet is None:
            raise ValueError("azure.network.runnerSubnet: required when ciRunners is set (a /27 for the runner pool)")
        if self.deployer.principal_id is not None or self.deployer.principal_type != "ServicePrincipal":
            raise ValueError(
                "deployer.principalId: with ciRunners the deployer is the runners' identity "
                "(ciRunners.identityResourceId, a ServicePrincipal); remove deployer.principalId/principalType"
            )
        return self

    @model_validator(mode="after")
    def _prod_rules(self) -> Self:
        """In prod, management.cluster.skuTier is Standard or Premium and protectStatefulResources is not false."""
        if self.environment == "prod":
            if self.management.cluster.sku_tier == "Free":
                raise ValueError("management.cluster.skuTier: prod needs 'Standard' or 'Premium' (got 'Free')")
            if self.protect_stateful_resources is False:
                raise ValueError("protectStatefulResources: must not be false in prod")
        return self
