"""Secret config: which secrets a configuration needs, and which component gets which.

Secrets never enter the models; they stay secret `pulumi.Output`s end to end. `PlatformSecrets.from_config`
refuses a configuration whose secret is missing and leaves out the ones it does not use, so a component gets
each secret it cannot work without as a value, and an optional one exactly when its configuration asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi

from components.config.base import NAMESPACE
from components.config.management import OidcSsoConfig
from components.config.parsing import ConfigError
from components.config.platform import PlatformConfig


def _azure_postgres(cfg: PlatformConfig) -> bool:
    return cfg.management.mlflow.backend == "azure-postgres"


# Secret config keys and when the validated config uses each. A used key is required unless it is generated.
SECRET_KEYS: dict[str, Callable[[PlatformConfig], bool]] = {
    "ngcApiKey": lambda cfg: True,
    "gitopsToken": lambda cfg: True,
    "gpuClusterKubeconfig": lambda cfg: cfg.gpu_cluster.mode == "existing",
    "ssoClientSecret": lambda cfg: cfg.management.argocd.sso is not None,
    "gatewayApiKey": lambda cfg: cfg.gateway.auth == "api-key",
    "mlflowDbPassword": _azure_postgres,
    "mlflowAdminPassword": lambda cfg: True,
    "postgresAdminPassword": _azure_postgres,
    "argoArchiveDbPassword": _azure_postgres,
    "ciRunnerGithubToken": lambda cfg: cfg.ci_runners is not None,
}
# Secrets nobody needs to choose: when unset, the component that owns each creates a `random.RandomPassword`
# (exported as a secret stack output); setting one overrides the generated value.
GENERATED_SECRET_KEYS = frozenset(
    {"gatewayApiKey", "mlflowDbPassword", "mlflowAdminPassword", "postgresAdminPassword", "argoArchiveDbPassword"}
)


def required_secret_keys(config: PlatformConfig) -> list[str]:
    """The secret keys `config` cannot do without (used by it and not generated), in SECRET_KEYS order."""
    return [key for key, used in SECRET_KEYS.items() if used(config) and key not in GENERATED_SECRET_KEYS]


# The MLflow chart (1.11.x) substitutes both passwords into its auth INI file with `sed "s/…/${PASSWORD}/g"`,
# MLflow reads that file with configparser (`%` and `$` interpolate), and the database password lands in a
# `postgresql://user:password@host` URI that SQLAlchemy percent-decodes. Nothing escapes them on the way, so
# these characters cannot be carried; generated passwords never contain them.
CHART_UNSAFE_PASSWORD_CHARACTERS = frozenset("/&\\%$@")
MLFLOW_PASSWORD_KEYS = ("mlflowAdminPassword", "mlflowDbPassword")


def password_problems(values: Mapping[str, str | None]) -> list[str]:
    """One line per MLflow password (plain config values by key) that the MLflow chart cannot carry, naming the
    key and what is refused, never the value."""
    return [
        f"{NAMESPACE}:{key}: must not contain / & \\ % $ @, whitespace or control characters (the MLflow chart "
        "writes it unescaped into an INI file and a postgresql:// URI); choose another, or unset it to have one "
        "generated"
        for key in MLFLOW_PASSWORD_KEYS
        if (value := values.get(key)) is not None
        and any(c in CHART_UNSAFE_PASSWORD_CHARACTERS or c.isspace() or not c.isprintable() for c in value)
    ]


@dataclass(frozen=True)
class SsoClient:
    """The Entra ID app registration ArgoCD and Argo Workflows sign users in with, and its client secret:
    SSO has both or is off."""

    app: OidcSsoConfig
    client_secret: pulumi.Output[str]


@dataclass(frozen=True)
class DatabasePasswords:
    """Passwords on the PostgreSQL server (management.mlflow.backend azure-postgres): each the configured value, or
    None for the server component to generate."""

    admin: pulumi.Output[str] | None
    mlflow: pulumi.Output[str] | None
    argo_archive: pulumi.Output[str] | None


@dataclass(frozen=True)
class ManagementSecrets:
    """What the management cluster's control plane consumes."""

    gitops_token: pulumi.Output[str]
    # The configured MLflow basic-auth admin password, or None for the MLflow component to generate.
    mlflow_admin_password: pulumi.Output[str] | None
    # Set exactly when management.argocd.sso is.
    sso: SsoClient | None
    # Set exactly when management.mlflow.backend is azure-postgres.
    database: DatabasePasswords | None


@dataclass(frozen=True)
class PlatformSecrets:
    """Every secret of the stack, grouped by the component that consumes it."""

    # NeMo and NIM (Helm repositories, image pulls, model downloads) and the GPU cluster.
    ngc_api_key: pulumi.Output[str]
    # Set exactly when gpuCluster.mode is existing.
    gpu_cluster_kubeconfig: pulumi.Output[str] | None
    # The configured key when gateway.auth is api-key, else None (the gateway generates one when it needs it); the
    # gateway checks it and the pipeline steps send it.
    gateway_api_key: pulumi.Output[str] | None
    management: ManagementSecrets
    # Set exactly when ciRunners is: the GitHub token the runner pool registers runners and watches the queue with.
    ci_runner_github_token: pulumi.Output[str] | None = None

    @classmethod
    def from_config(cls, config: PlatformConfig, values: Mapping[str, pulumi.Output[str] | None]) -> PlatformSecrets:
        """Hand out `values` (by key of SECRET_KEYS) as `config` uses them; raise ConfigError naming every
        secret it requires that is missing."""
        missing = [
            f"{NAMESPACE}:{key}: required secret is missing; "
            f"set it with `pulumi config set --secret {NAMESPACE}:{key} …`"
            for key in required_secret_keys(config)
            if values.get(key) is None
        ]
        if missing:
            raise ConfigError(missing)
        used = {key: value for key, value in values.items() if value is not None and SECRET_KEYS[key](config)}
        sso = config.management.argocd.sso
        return cls(
            ngc_api_key=used["ngcApiKey"],
            gpu_cluster_kubeconfig=used.get("gpuClusterKubeconfig"),
            gateway_api_key=used.get("gatewayApiKey"),
            ci_runner_github_token=used.get("ciRunnerGithubToken"),
            management=ManagementSecrets(
                gitops_token=used["gitopsToken"],
                mlflow_admin_password=used.get("mlflowAdminPassword"),
                sso=SsoClient(sso, used["ssoClientSecret"]) if sso is not None else None,
                database=DatabasePasswords(
                    admin=used.get("postgresAdminPassword"),
                    mlflow=used.get("mlflowDbPassword"),
                    argo_archive=used.get("argoArchiveDbPassword"),
                )
                if _azure_postgres(config)
                else None,
            ),
        )
