"""The whole platform for one environment: the only place that knows how the parts connect."""

from __future__ import annotations

import pulumi

from components.aks import ClusterPlacement
from components.argocd import NAMESPACE as ARGOCD_NAMESPACE
from components.azure_base import AzureBase
from components.config import PlatformConfig, PlatformSecrets
from components.gateway import EnvoyGateway
from components.gitops import GitOpsWiring
from components.gpu import GpuCluster
from components.management import ManagementCluster
from components.nemo import NemoMicroservices
from components.nim import NimServing, nim_service_url
from components.pipelines import PipelineModel, PipelineTemplates, pipeline_environment
from components.volcano import Volcano


class Platform(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        secrets: PlatformSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:platform:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gpu_on_aks = config.gpu_cluster.mode == "aks"

        base = AzureBase(
            f"{name}-azure",
            config.azure,
            config.environment,
            needs_gpu_subnet=gpu_on_aks,
            protect=config.protect,
            opts=child,
        )

        def placement(subnet_id: pulumi.Input[str]) -> ClusterPlacement:
            return ClusterPlacement(
                resource_group_name=base.resource_group_name,
                location=config.azure.location,
                subnet_id=subnet_id,
                log_analytics_workspace_id=base.log_analytics_workspace_id,
                network=config.azure.network,
                tags=base.tags,
            )

        self.management = ManagementCluster(
            f"{config.environment}-mgmt",
            config.management,
            placement(base.management_subnet_id),
            protect=config.protect,
            charts=config.charts,
            monitoring=config.monitoring,
            gitops=config.gitops,
            pipelines=config.pipelines,
            secrets=secrets.management,
            opts=child,
        )
        self.gpu = GpuCluster(
            f"{config.environment}-gpu",
            config.gpu_cluster,
            placement(base.gpu_subnet_id) if base.gpu_subnet_id is not None else None,
            existing_kubeconfig=secrets.gpu_cluster_kubeconfig,
            charts=config.charts,
            monitoring=config.monitoring,
            protect=config.protect,
            opts=child,
        )

        # NeMo and NIM on the GPU cluster. URLs are fixed by names in config, so NeMo's Guardrails can point at
        # the first NIM and each NIM at the Entity Store without a dependency cycle; install order is
        # Volcano -> NeMo -> NIM (a LoRA-serving NIM polls the Entity Store from its first start).
        self.volcano = Volcano(
            f"{config.environment}-volcano",
            config.charts.volcano,
            job_namespaces=[config.nemo.namespace],
            provider=self.gpu.provider,
            opts=child,
        )
        self.nemo = NemoMicroservices(
            f"{config.environment}-nemo",
            config.nemo,
            chart_version=config.charts.nemo_microservices,
            guardrails_nim_endpoint=f"{nim_service_url(config.nim.namespace, config.nim.models[0])}/v1",
            gpu=self.gpu.workload_target,
            ngc_api_key=secrets.ngc_api_key,
            protect=config.protect,
            depends_on=[self.volcano.release],
            opts=child,
        )
        self.nim = NimServing(
            f"{config.environment}-nim",
            config.nim,
            chart_version=config.charts.nim_llm,
            peft_source=self.nemo.entity_store_url,
            prometheus=config.monitoring.prometheus_crds,
            gpu=self.gpu.workload_target,
            ngc_api_key=secrets.ngc_api_key,
            protect=config.protect,
            peft_source_ready=[self.nemo.release],
            opts=child,
        )

        # Every request into the GPU cluster passes the gateway. ArgoCD reaches the GPU apiserver through its TLS
        # passthrough when that is on (at the gateway's name, verifying the apiserver's), else at its endpoint.
        backends_ready = [self.nemo.release, *(served.release for served in self.nim.models)]
        self.gateway = EnvoyGateway(
            f"{config.environment}-gateway",
            config.gateway,
            chart_version=config.charts.envoy_gateway,
            cert_manager_version=config.charts.cert_manager,
            nemo_service_urls=self.nemo.service_urls,
            nim_urls={served.service_name: served.url for served in self.nim.models},
            api_endpoint=self.gpu.api_endpoint,
            api_key=secrets.gateway_api_key,
            provider=self.gpu.provider,
            backends_ready=backends_ready,
            opts=child,
        )
        self.gitops = GitOpsWiring(
            f"{config.environment}-gitops",
            config.gitops,
            cluster_name=f"{config.environment}-gpu",
            server=self.gateway.api_server_url or self.gpu.api_endpoint,
            server_name=self.gateway.api_server_sni,
            namespaces=[self.nemo.namespace_name, self.nim.namespace_name],
            gpu_provider=self.gpu.provider,
            namespaces_ready=backends_ready,
            management_provider=self.management.provider,
            argocd_namespace=ARGOCD_NAMESPACE,
            argocd_release=self.management.argocd_release,
            opts=child,
        )

        self.pipelines = PipelineTemplates(
            f"{config.environment}-pipelines",
            config.pipelines,
            namespace=self.management.pipelines_namespace,
            # Workflow pods run on the management cluster and reach NeMo and NIM through the gateway.
            environment=pipeline_environment(
                config.pipelines,
                nemo=self.gateway.public_urls.nemo,
                models=[
                    PipelineModel(served.model, self.gateway.public_urls.nim[served.service_name], served.url)
                    for served in self.nim.models
                ],
                customization_target=config.nemo.customization_targets[0],
                adapter_namespace=self.nemo.adapter_namespace,
                mlflow_tracking_uri=self.management.mlflow_tracking_uri,
            ),
            provider=self.management.provider,
            workflows_release=self.management.workflows_release,
            gateway_api_key=secrets.gateway_api_key,
            opts=child,
        )

        self.outputs: dict[str, pulumi.Input[object]] = {
            "environment": config.environment,
            "resourceGroupName": base.resource_group_name,
            "managementCluster": self.management.outputs,
            "managementKubeconfig": self.management.aks.kubeconfig,
            "gpuCluster": self.gpu.outputs,
            "gpuKubeconfig": self.gpu.kubeconfig,
            "nemo": self.nemo.outputs,
            "nim": self.nim.outputs,
            "gateway": self.gateway.outputs,
            "gitops": self.gitops.outputs,
            "pipelines": self.pipelines.catalog,
        }
        self.register_outputs(self.outputs)
