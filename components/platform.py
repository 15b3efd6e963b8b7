"""The whole platform for one environment: the only place that knows how the parts connect."""

from __future__ import annotations

import pulumi

from components.aks import ClusterPlacement
from components.argocd import NAMESPACE as ARGOCD_NAMESPACE
from components.azure_base import AzureBase
from components.config import PlatformConfig, PlatformSecrets
from components.gateway import EnvoyGateway, exposed_backends
from components.gitops import GitOpsWiring
from components.gpu import GpuCluster
from components.management import ManagementCluster, ManagementSecrets
from components.nemo import NemoMicroservices
from components.nim import NimServing, nim_service_url
from components.pipelines import PipelineEnvironment, PipelineTemplates
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
            secrets=ManagementSecrets(
                gitops_token=secrets.gitops_token,
                sso_client_secret=secrets.sso_client_secret,
                mlflow_db_password=secrets.mlflow_db_password,
                mlflow_admin_password=secrets.mlflow_admin_password,
            ),
            opts=child,
        )
        self.gpu = GpuCluster(
            f"{config.environment}-gpu",
            config.gpu_cluster,
            placement(base.gpu_subnet_id) if base.gpu_subnet_id is not None else None,
            existing_kubeconfig=secrets.gpu_cluster_kubeconfig,
            ngc_api_key=secrets.ngc_api_key,
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
            gpu=self.gpu,
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
            gpu=self.gpu,
            ngc_api_key=secrets.ngc_api_key,
            protect=config.protect,
            lora_source=[self.nemo.release],
            opts=child,
        )

        # Every request into the GPU cluster passes the gateway. ArgoCD reaches the GPU apiserver through its TLS
        # passthrough when that is on (at the gateway's name, verifying the apiserver's), else at its endpoint.
        backends_ready = [self.nemo.release, *(service.release for service in self.nim.services)]
        self.gateway = EnvoyGateway(
            f"{config.environment}-gateway",
            config.gateway,
            chart_version=config.charts.envoy_gateway,
            cert_manager_version=config.charts.cert_manager,
            backends=exposed_backends(self.nemo.service_urls, {s.service_name: s.url for s in self.nim.services}),
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
            environment=self._pipeline_environment(config),
            provider=self.management.provider,
            workflows_release=self.management.workflows_release,
            gateway_api_key=secrets.gateway_api_key if config.gateway.auth == "api-key" else None,
            opts=child,
        )

        self.outputs: dict[str, pulumi.Input[object]] = {
            "environment": config.environment,
            "resourceGroupName": base.resource_group_name,
            "managementCluster": {
                "name": self.management.aks.cluster_name,
                "resourceId": self.management.aks.cluster_id,
                "apiServerFqdn": self.management.aks.fqdn,
                "argocdUrl": self.management.argocd_url,
                "argoWorkflowsUrl": self.management.argo_workflows_url,
                "mlflowUrl": self.management.mlflow_url,
                "mlflowTrackingUri": self.management.mlflow_tracking_uri,
                "artifactStorageAccount": self.management.artifact_storage_account,
                "artifactContainer": self.management.artifact_container,
                "pipelinesNamespace": self.management.pipelines_namespace,
            },
            "managementKubeconfig": self.management.aks.kubeconfig,
            "gpuCluster": {
                "mode": self.gpu.mode,
                "apiEndpoint": self.gpu.api_endpoint,
                "pools": [
                    {
                        "name": p.name,
                        "vmSize": p.vm_size,
                        "gpusPerNode": p.gpus_per_node,
                        "minCount": p.min_count,
                        "maxCount": p.max_count,
                        "spot": p.spot,
                    }
                    for p in self.gpu.pools
                ],
                "storageClasses": {
                    "modelCache": self.gpu.model_cache_storage_class,
                    "sharedWorkspace": self.gpu.shared_storage_class,
                },
                "gpuOperatorManaged": self.gpu.gpu_operator_managed,
            },
            "gpuKubeconfig": self.gpu.kubeconfig,
            "nemo": {
                "namespace": self.nemo.namespace_name,
                "adapterNamespace": self.nemo.adapter_namespace,
                "serviceUrls": self.nemo.service_urls,
            },
            "nim": {
                "namespace": self.nim.namespace_name,
                "models": [
                    {
                        "name": service.service_name,
                        "model": service.model,
                        "url": service.url,
                        "port": service.port,
                        "lora": service.lora,
                    }
                    for service in self.nim.services
                ],
            },
            "gateway": {
                # The LoadBalancer address is known only once Azure assigns it: read it from this Service.
                "serviceName": self.gateway.service_name,
                "hostnames": self.gateway.hostnames,
                "urls": self.gateway.urls,
                "apiServerHostname": self.gateway.api_server_hostname,
                "apiServerTlsServerName": self.gateway.api_server_sni,
            },
            "gitops": {
                "clusterName": self.gitops.cluster_name,
                "server": self.gitops.server,
                "project": self.gitops.project,
                "application": self.gitops.application,
            },
            "pipelines": self.pipelines.catalog,
        }
        self.register_outputs(self.outputs)

    def _pipeline_environment(self, config: PlatformConfig) -> PipelineEnvironment:
        """Workflow pods run on the management cluster: they reach NeMo and NIM through the gateway, while
        NeMo Evaluator, inside the GPU cluster, reaches NIM by its in-cluster URL."""
        urls = self.gateway.urls
        serving = self.nim.services
        judge = next((s for s in serving if s.model == config.pipelines.judge_model), serving[0])
        base_model, _, base_version = config.nemo.customization_targets[0].partition("@")
        service_urls: dict[str, pulumi.Input[str]] = {
            "datastore-url": urls["nemo-data-store"],
            "entity-store-url": urls["nemo-entity-store"],
            "customizer-url": urls["nemo-customizer"],
            "evaluator-url": urls["nemo-evaluator"],
            "nim-url": urls[f"nim-{serving[0].service_name}"],
            "evaluator-nim-url": serving[0].url,
            "judge-url": urls[f"nim-{judge.service_name}"],
            "mlflow-tracking-uri": self.management.mlflow_tracking_uri,
        }
        defaults = {
            "namespace": self.nemo.adapter_namespace,
            "base-model": base_model,
            "base-model-version": base_version,
            "judge-model": config.pipelines.judge_model,
            "regression-tolerance": str(config.pipelines.regression_tolerance),
        }
        if len(serving) > 1:
            # A second served model is the natural candidate when a new base model is evaluated.
            service_urls["candidate-nim-url"] = urls[f"nim-{serving[1].service_name}"]
            service_urls["candidate-evaluator-nim-url"] = serving[1].url
            defaults["candidate-model"] = serving[1].model
        return PipelineEnvironment(
            service_urls=service_urls,
            defaults=defaults,
            workflow_defaults={
                "lora-finetune-evaluate-deploy": {"min-business-gain": str(config.pipelines.min_business_gain)}
            },
        )
