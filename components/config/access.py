"""Who deploys a stack and from where: the deploying identity, its kubelogin mode and the in-network runner pool."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from components.config.base import Model, Uuid

# An existing user-assigned managed identity, by resource id.
IDENTITY_RESOURCE_ID = (
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+"
    r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$"
)
GITHUB_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class DeployerConfig(Model):
    """The identity `pulumi up` runs as: it gets the AKS RBAC Cluster Admin role on every AKS cluster (the Kubernetes
    providers wait for that assignment), and kubelogin fetches its cluster tokens in the mode set here."""

    principal_id: Uuid | None = Field(
        None,
        description="object id of the identity that deploys this stack (CI's federated identity); pin it so a run "
        "from a workstation does not move the role assignment; default: the identity running `pulumi up`; with "
        "ciRunners, the runner pool's identity",
    )
    principal_type: Literal["ServicePrincipal", "User", "Group"] = Field(
        "ServicePrincipal",
        description="Entra object type of the deploying principal: ServicePrincipal (CI, managed identities) or "
        "User/Group (a person's workstation; admin groups are also cluster admins through adminGroupObjectIds)",
    )
    kubelogin: Literal["azurecli", "workloadidentity"] = Field(
        "azurecli",
        description="how the clusters' kubeconfigs log in: azurecli (a workstation's `az login`) or "
        "workloadidentity (CI: AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE from GitHub OIDC; "
        "the workflows set it with `make up KUBELOGIN=workloadidentity`)",
    )


class CiRunnersConfig(Model):
    """GitHub Actions runners inside the VNet, as an Azure Container Apps job started by KEDA's `github-runner`
    scaler for each queued job that asks for `label`: the way in to a private API server."""

    github_owner: str = Field(pattern=GITHUB_NAME, description="GitHub user or organization that owns the repositories")
    github_repos: list[str] = Field(
        min_length=1, description="repositories whose queued jobs start runners (names without the owner)"
    )
    runner_scope: Literal["repo", "org"] = Field(
        "repo", description="where runners register: the repository (one repo) or the organization"
    )
    label: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="the runner label the workflows ask for (`runs-on`); default `llmops-<environment>`",
    )
    identity_resource_id: str = Field(
        pattern=IDENTITY_RESOURCE_ID,
        description="resource id of the user-assigned managed identity CI deploys this stack as (its client id is "
        "the GitHub environment's AZURE_CLIENT_ID); the runners carry it and it gets the clusters' admin role",
    )
    image: str = Field(
        pattern=r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$",
        description="runner image built from .ci/runner/Dockerfile, pinned by tag or digest",
    )
    max_runners: int = Field(4, ge=1, le=50, description="most runners at once")
    cpu: float = Field(2.0, gt=0, le=4, description="vCPU per runner (Consumption profile: at most 4)")
    memory: str = Field("4Gi", pattern=r"^\d+(\.\d+)?Gi$", description="memory per runner, 2 GiB per vCPU")
    timeout_minutes: int = Field(120, ge=10, le=1440, description="longest a runner (one job) may run")

    @model_validator(mode="after")
    def _scope(self) -> Self:
        """runnerScope repo takes exactly one of githubRepos; memory is 2Gi per vCPU."""
        if self.runner_scope == "repo" and len(self.github_repos) != 1:
            raise ValueError("githubRepos: a repo-scoped runner registers with exactly one repository")
        if float(self.memory.removesuffix("Gi")) != 2 * self.cpu:
            raise ValueError(f"memory: the Consumption profile pairs {self.cpu} vCPU with {2 * self.cpu:g}Gi")
        return self

    def runner_label(self, environment: str) -> str:
        return self.label or f"llmops-{environment}"
