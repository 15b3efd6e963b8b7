"""How changes reach the clusters: the GitOps repository ArgoCD syncs and the model pipelines."""

from __future__ import annotations

from pydantic import Field, field_validator

from components.config.base import DnsLabel, Model
from pipelines.steps._benchmarks import UnknownBenchmark, parse_benchmarks


class GitOpsConfig(Model):
    """The repository ArgoCD watches; its token is the `llmops:gitopsToken` secret."""

    repo_url: str = Field(
        pattern=r"^https://[^\s]+\.git$", description="HTTPS URL of the GitOps repository, ending in .git"
    )
    revision: str = Field("main", pattern=r"^[A-Za-z0-9._/-]{1,255}$", description="branch, tag or commit ArgoCD syncs")
    path: str = Field(
        "environments", pattern=r"^[A-Za-z0-9._/-]+$", description="directory of the repository the Application syncs"
    )
    automated_sync: bool = Field(True, description="ArgoCD syncs changes without a manual sync")
    self_heal: bool = Field(True, description="ArgoCD reverts changes made in the cluster")
    prune: bool = Field(False, description="ArgoCD deletes objects removed from the repository")


class PipelinesConfig(Model):
    """The pipeline templates' per-environment settings (pipelines/README.md)."""

    namespace: DnsLabel = Field("llm-pipelines", description="namespace the pipelines run in on the management cluster")
    image: str = Field(
        "ghcr.io/llmops-platform/pipeline-steps:0.1.0",
        pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+:[0-9][0-9A-Za-z._-]*$",
        description="pipeline step image, pinned by tag",
    )
    judge_model: str = Field(
        "meta/llama-3.1-70b-instruct",
        description="the LLM judge: one of llmops:nim.models, never the new-base-model candidate (the second "
        "served model)",
    )
    regression_tolerance: float = Field(0.02, ge=0, le=1, description="largest allowed drop of any benchmark")
    min_business_gain: float = Field(0.05, ge=0, le=1, description="smallest gain of the business metric to deploy")
    active_deadline_seconds: int = Field(48 * 3600, ge=600, description="longest a pipeline run may take")
    benchmarks: list[str] = Field(
        default_factory=lambda: ["gsm8k", "squad", "triviaqa", "glue", "superglue"],
        min_length=1,
        description="regression suite: LM Harness types of NeMo Evaluator 25.8 "
        "(facts/evaluator-25.8-benchmarks.json) and the custom suites squad, triviaqa, glue, superglue",
    )
    min_examples: int = Field(30, ge=1, description="fewest test examples the gate decides on")
    min_benchmark_samples: int = Field(100, ge=1, description="fewest samples per benchmark score the gate decides on")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="level of the gate's confidence intervals")
    promoted_model: str = Field(
        "llmops/customer-care",
        pattern=r"^[a-z0-9-]+/[a-z0-9._-]+$",
        description="stable model name production clients call; an accepted adapter is promoted to it",
    )
    ca_bundle: str | None = Field(
        None,
        description="PEM of the CAs that sign the gateway certificate when no public trust store has them "
        "(the ConfigMap llmops-ca-bundle, mounted into every step pod); required with Let's Encrypt's staging "
        "issuer",
    )
    git_commit: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._/:@+-]{1,128}$",
        description="commit of the pipeline code, recorded in MLflow; default: the commit CI deploys from "
        "($GITHUB_SHA), else 'unknown'",
    )
    config_revision: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._/:@+-]{1,128}$",
        description="revision of the platform configuration that registered the templates, recorded in MLflow; "
        "default: the commit CI deploys from ($GITHUB_SHA), else 'unknown'",
    )

    @field_validator("benchmarks")
    @classmethod
    def _evaluator_types(cls, value: list[str]) -> list[str]:
        try:
            return parse_benchmarks(",".join(value))
        except UnknownBenchmark as error:
            # Not "<name>: …", which would read as a key below benchmarks.
            raise ValueError(f"unknown benchmark {error}") from None

    @field_validator("ca_bundle")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("must be PEM: one or more -----BEGIN CERTIFICATE----- blocks")
        return value
