"""Self-hosted GitHub Actions runners inside the VNet: the deployment's way in to a private API server.

An Azure Container Apps job (workload profiles environment in its own delegated subnet) starts one ephemeral runner
per queued GitHub job that asks for the pool's label, through KEDA's `github-runner` scaler (metadata keys as KEDA's
github_runner_scaler.go reads them: owner, runnerScope, repos, labels, targetWorkflowQueueLength; auth parameter
`personalAccessToken`). The runner carries the deploying identity, the same user-assigned identity that holds the
clusters' AKS RBAC Cluster Admin role. The image is .ci/runner/Dockerfile; its entrypoint registers one ephemeral
runner with the environment below and runs a single job.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure

from components.aks import ClusterAccess
from components.azure_site import AzureSite
from components.config import CiRunnersConfig, DeployerConfig

WORKLOAD_PROFILE = "Consumption"
TOKEN_SECRET = "github-token"
SCALER = "github-runner"
# Seconds between KEDA's looks at the queue; GitHub's API allows a PAT 5,000 requests an hour.
POLLING_INTERVAL = 30


def registration_urls(config: CiRunnersConfig) -> tuple[str, str]:
    """Where the runner registers, and the REST endpoint that hands out its registration token."""
    owner = config.github_owner
    if config.runner_scope == "org":
        return f"https://github.com/{owner}", f"https://api.github.com/orgs/{owner}/actions/runners/registration-token"
    repo = config.github_repos[0]
    return (
        f"https://github.com/{owner}/{repo}",
        f"https://api.github.com/repos/{owner}/{repo}/actions/runners/registration-token",
    )


def scaler_metadata(config: CiRunnersConfig, label: str) -> dict[str, str]:
    """One runner per queued job whose `runs-on` labels are all among `label` and the default self-hosted ones."""
    return {
        "owner": config.github_owner,
        "runnerScope": config.runner_scope,
        "repos": ",".join(config.github_repos),
        "labels": label,
        "targetWorkflowQueueLength": "1",
    }


class CiRunnerPool(pulumi.ComponentResource):
    """The Container Apps environment in the runner subnet and the event-driven job that runs the runners."""

    label: str
    job_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: CiRunnersConfig,
        *,
        label: str,
        github_token: pulumi.Output[str],
        subnet_id: pulumi.Input[str],
        site: AzureSite,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`github_token`: a token that may register runners (fine-grained PAT: Administration read and write,
        Actions and Metadata read) and read the queue; KEDA and the runner entrypoint both use it."""
        super().__init__("llmops:ci:CiRunnerPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.label = label

        environment = azure.app.ManagedEnvironment(
            f"{name}-env",
            environment_name=f"cae-{name}",
            # Internal: jobs take no inbound traffic; runners dial out to GitHub and in to the clusters.
            vnet_configuration=azure.app.VnetConfigurationArgs(infrastructure_subnet_id=subnet_id, internal=True),
            workload_profiles=[
                azure.app.WorkloadProfileArgs(name=WORKLOAD_PROFILE, workload_profile_type=WORKLOAD_PROFILE)
            ],
            **site.regional(),
            opts=child,
        )
        runner_url, registration_token_url = registration_urls(config)
        job = azure.app.Job(
            f"{name}-job",
            job_name=f"caj-{name}",
            environment_id=environment.id,
            workload_profile_name=WORKLOAD_PROFILE,
            identity=azure.app.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[config.identity_resource_id]
            ),
            configuration=azure.app.JobConfigurationArgs(
                trigger_type="Event",
                replica_timeout=config.timeout_minutes * 60,
                # A runner registers once (ephemeral): a retried replica could not take the job again.
                replica_retry_limit=0,
                event_trigger_config=azure.app.JobConfigurationEventTriggerConfigArgs(
                    parallelism=1,
                    replica_completion_count=1,
                    scale=azure.app.JobScaleArgs(
                        min_executions=0,
                        max_executions=config.max_runners,
                        polling_interval=POLLING_INTERVAL,
                        rules=[
                            azure.app.JobScaleRuleArgs(
                                name=SCALER,
                                type=SCALER,
                                metadata=scaler_metadata(config, label),
                                auth=[
                                    azure.app.ScaleRuleAuthArgs(
                                        secret_ref=TOKEN_SECRET, trigger_parameter="personalAccessToken"
                                    )
                                ],
                            )
                        ],
                    ),
                ),
                secrets=[azure.app.SecretArgs(name=TOKEN_SECRET, value=github_token)],
            ),
            template=azure.app.JobTemplateArgs(
                containers=[
                    azure.app.ContainerArgs(
                        name="runner",
                        image=config.image,
                        resources=azure.app.ContainerResourcesArgs(cpu=config.cpu, memory=config.memory),
                        env=[
                            azure.app.EnvironmentVarArgs(name="GITHUB_TOKEN", secret_ref=TOKEN_SECRET),
                            azure.app.EnvironmentVarArgs(name="RUNNER_URL", value=runner_url),
                            azure.app.EnvironmentVarArgs(
                                name="REGISTRATION_TOKEN_API_URL", value=registration_token_url
                            ),
                            azure.app.EnvironmentVarArgs(name="RUNNER_LABELS", value=label),
                        ],
                    )
                ]
            ),
            **site.regional(),
            opts=child,
        )
        self.job_name = job.name
        self.outputs = {"label": label, "jobName": job.name, "environmentName": environment.name}
        self.register_outputs(self.outputs)


def _identity_parts(resource_id: str) -> tuple[str, str]:
    """(resource group, name) of a user-assigned identity's resource id."""
    parts = resource_id.split("/")
    return parts[4], parts[-1]


def deployment_access(
    deployer: DeployerConfig,
    runners: CiRunnersConfig | None,
    *,
    runner_egress_prefix: pulumi.Output[str] | None,
    parent: pulumi.Resource,
) -> ClusterAccess:
    """Who deploys to the clusters: with a runner pool, its identity (so the role assignment and the runners name the
    same identity, whoever runs `pulumi up`) and its egress prefix; otherwise `deployer.principalId`, or the identity
    running `pulumi up`."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    if runners is not None:
        group, identity_name = _identity_parts(runners.identity_resource_id)
        identity = azure.managedidentity.get_user_assigned_identity_output(
            resource_group_name=group, resource_name=identity_name, opts=invoke
        )
        return ClusterAccess(
            deployer_principal_id=identity.principal_id,
            deployer_principal_type="ServicePrincipal",
            kubelogin=deployer.kubelogin,
            runner_egress_ranges=runner_egress_prefix.apply(lambda prefix: [prefix])
            if runner_egress_prefix is not None
            else [],
        )
    principal = deployer.principal_id or azure.authorization.get_client_config_output(opts=invoke).object_id
    return ClusterAccess(
        deployer_principal_id=principal, deployer_principal_type=deployer.principal_type, kubelogin=deployer.kubelogin
    )
