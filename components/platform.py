"""The whole platform for one environment: the only place that knows how the parts connect."""

from __future__ import annotations

import pulumi

from components.aks import ClusterPlacement
from components.argocd import NAMESPACE as ARGOCD_NAMESPACE
from components.azure_base import AzureBase
from components.ci_runners import CiRunnerPool, deployment_access
from components.config import PlatformConfig, PlatformSecrets, internal_entry_address
from components.dns import GatewayPublicIp, PlatformDns
from components.gateway import EnvoyGateway, gateway_hostnames
from components.gitops import ChartRepository, GitOpsWiring
from components.gpu import GpuCluster
from components.gpu_storage import NFS_SUBNET_SERVICE_ENDPOINT
from components.management import ManagementCluster
from components.nemo import NEMO_REPOSITORY, NemoMicroservices
from components.ngc import NGC_USERNAME
from components.nim import NIM_REPOSITORY, NimKeda, NimServing, nim_service_url
from components.pipelines import PipelineModel, PipelineTemplates, StepAccess, pipeline_environment
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
            # On AKS the GPU cluster's shared-workspace StorageClass is NFS on Azure Files (components/gpu_storage.py).
            gpu_subnet_service_endpoints=[NFS_SUBNET_SERVICE_ENDPOINT],
            needs_runner_subnet=config.ci_runners is not None,
            opts=child,
        )
        # CI reaches the clusters from inside the VNet when the stack has a runner pool (a private API server
        # leaves no other way in), else from GitHub-hosted runners listed in the API servers' authorized ranges.
        self.runners = None
        if config.ci_runners is not None:
            assert base.runner_subnet_id is not None and secrets.ci_runner_github_token is not None
            self.runners = CiRunnerPool(
                f"llmops-{config.environment}-runners",
                config.ci_runners,
                label=config.ci_runners.runner_label(config.environment),
                github_token=secrets.ci_runner_github_token,
                subnet_id=base.runner_subnet_id,
                site=base.site,
                opts=child,
            )
        access = deployment_access(
            config.deployer, config.ci_runners, runner_egress_prefix=base.runner_egress_prefix, parent=self
        )

        def placement(subnet_id: pulumi.Input[str]) -> ClusterPlacement:
            return ClusterPlacement(
                site=base.site,
                subnet_id=subnet_id,
                log_analytics_workspace_id=base.log_analytics_workspace_id,
                network=config.azure.network,
                access=access,
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
            keda=config.nim_uses_keda,
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
            nim_namespace=config.nim.namespace,
            depends_on=[self.volcano.release],
            opts=child,
        )
        self.nim = NimServing(
            f"{config.environment}-nim",
            config.nim,
            chart_version=config.charts.nim_llm,
            peft_source=self.nemo.entity_store_url,
            prometheus=config.monitoring.prometheus_crds,
            keda=NimKeda(enabled=config.keda_available, prometheus_url=config.monitoring.prometheus_url),
            gpu=self.gpu.workload_target,
            ngc_api_key=secrets.ngc_api_key,
            protect=config.protect,
            nemo_namespace=config.nemo.namespace,
            peft_source_ready=[self.nemo.release],
            opts=child,
        )

        # Every request into the GPU cluster passes the gateway. ArgoCD reaches the GPU apiserver through its TLS
        # passthrough when that is on (at the gateway's name, verifying the apiserver's), else at its endpoint.
        backends_ready = [self.nemo.release, *(served.release for served in self.nim.models)]
        nim_urls = {served.service_name: served.url for served in self.nim.models}
        self.dns = self._dns(config, base, gateway_hostnames(config.gateway, self.nemo.service_urls, nim_urls))
        self.gateway = EnvoyGateway(
            f"{config.environment}-gateway",
            config.gateway,
            chart_version=config.charts.envoy_gateway,
            cert_manager_version=config.charts.cert_manager,
            nemo_service_urls=self.nemo.service_urls,
            nim_urls=nim_urls,
            api_endpoint=self.gpu.api_endpoint,
            api_key=secrets.gateway_api_key,
            provider=self.gpu.provider,
            # ArgoCD dials the passthrough from the management cluster's fixed egress.
            passthrough_clients=self.management.egress_prefix,
            backends_ready=backends_ready,
            service_annotations=self.gateway_ip.service_annotations if self.gateway_ip else None,
            service_ready=self.gateway_ip.ready if self.gateway_ip else (),
            certificate_after=self.dns.gateway_records if self.dns else (),
            opts=child,
        )
        self.gitops = GitOpsWiring(
            f"{config.environment}-gitops",
            config.gitops,
            cluster_name=f"{config.environment}-gpu",
            server=self.gateway.api_server_url or self.gpu.api_endpoint,
            server_name=self.gateway.api_server_sni,
            namespaces=[self.nemo.namespace_name, self.nim.namespace_name],
            # The apps in those namespaces install the NeMo and NIM charts from NGC, with the NGC login.
            chart_repositories=[
                ChartRepository("nemo", NEMO_REPOSITORY, NGC_USERNAME, secrets.ngc_api_key),
                ChartRepository("nim", NIM_REPOSITORY, NGC_USERNAME, secrets.ngc_api_key),
            ],
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
                environment=config.environment,
                gitops=config.gitops,
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
            access=StepAccess(
                gateway_auth=config.gateway.auth,
                token_audience=config.gateway.token_audience,
                gateway_api_key=self.gateway.api_key,
                ca_bundle=config.pipelines.ca_bundle,
                gitops_token=secrets.management.gitops_token,
            ),
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
            "dns": self.dns.outputs if self.dns else None,
            "gitops": self.gitops.outputs,
            "pipelines": self.pipelines.catalog,
            # Configured or generated, secret: `pulumi stack output --show-secrets <name>` (docs/operations.md).
            "secrets": {
                "mlflowAdminPassword": self.management.mlflow_admin_password,
                "postgresAdminPassword": self.management.postgres_admin_password,
                "gatewayApiKey": self.gateway.api_key,
            },
            # The fixed addresses outbound traffic leaves from, for allowlists outside the stack (a DGX Cloud
            # apiserver's firewall, a public API server's authorized ranges).
            "egress": {"management": self.management.egress_prefix, "ciRunners": base.runner_egress_prefix},
            # The label the workflows' `runs-on` asks for (repository variable RUNNER_LABEL_<STACK>; docs/ci.md).
            "ciRunnerLabel": self.runners.label if self.runners else None,
        }
        self.register_outputs(self.outputs)

    def _dns(self, config: PlatformConfig, base: AzureBase, gateway_hosts: list[str]) -> PlatformDns | None:
        """With `llmops:dns`: the gateway's static public IP (AKS) and the zones and records for both entries."""
        self.gateway_ip: GatewayPublicIp | None = None
        dns = config.dns
        if dns is None:
            return None
        gateway_address: pulumi.Input[str] | None = dns.gateway_address
        if dns.zone_name is not None and self.gpu.aks is not None:
            self.gateway_ip = GatewayPublicIp(
                f"{config.environment}-gateway",
                site=base.site,
                cluster_principal_id=self.gpu.aks.control_plane_principal_id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            gateway_address = self.gateway_ip.address
        return PlatformDns(
            f"{config.environment}-dns",
            dns,
            site=base.site,
            vnet_id=base.management_subnet_id.apply(lambda subnet: subnet.rsplit("/subnets/", 1)[0]),
            gateway_hostnames=gateway_hosts,
            gateway_address=gateway_address,
            ui_hostnames=config.ui_hostnames,
            ui_address=internal_entry_address(config.management.internal_entry, config.azure.network),
            opts=pulumi.ResourceOptions(parent=self),
        )
