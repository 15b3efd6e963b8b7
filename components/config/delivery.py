"""How changes reach the clusters: the GitOps repository ArgoCD syncs and the model pipelines."""

from __future__ import annotations

from pydantic import Field

from components.config.base import DnsLabel, Model


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
