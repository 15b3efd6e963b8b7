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

# Secret config keys and when the validated config uses, and so requires, each.
SECRET_KEYS: dict[str, Callable[[PlatformConfig], bool]] = {
    "ngcApiKey": lambda cfg: True,
    "gitopsToken": lambda cfg: True,
    "gpuClusterKubeconfig": lambda cfg: cfg.gpu_cluster.mode == "existing",
    "ssoClientSecret": lambda cfg: cfg.management.argocd.sso is not None,
    "gatewayApiKey": lambda cfg: cfg.gateway.auth == "api-key",
    "mlflowDbPassword": lambda cfg: cfg.management.mlflow.backend == "azure-postgres",
    "mlflowAdminPassword": lambda cfg: True,
}


@dataclass(frozen=True)
class SsoClient:
    """The Entra ID app registration ArgoCD and Argo Workflows sign users in with, and its client secret:
    SSO has both or is off."""

    app: OidcSsoConfig
    client_secret: pulumi.Output[str]


@dataclass(frozen=True)
class ManagementSecrets:
    """What the management cluster's control plane consumes."""

    gitops_token: pulumi.Output[str]
    mlflow_admin_password: pulumi.Output[str]
    # Set exactly when management.argocd.sso is.
    sso: SsoClient | None
    # Set exactly when management.mlflow.backend is azure-postgres: the server's admin password.
    mlflow_db_password: pulumi.Output[str] | None


@dataclass(frozen=True)
class PlatformSecrets:
    """Every secret of the stack, grouped by the component that consumes it."""

    # NeMo and NIM (Helm repositories, image pulls, model downloads) and the GPU cluster.
    ngc_api_key: pulumi.Output[str]
    # Set exactly when gpuCluster.mode is existing.
    gpu_cluster_kubeconfig: pulumi.Output[str] | None
    # Set exactly when gateway.auth is api-key; the gateway checks it and the pipeline steps send it.
    gateway_api_key: pulumi.Output[str] | None
    management: ManagementSecrets

    @classmethod
    def from_config(cls, config: PlatformConfig, values: Mapping[str, pulumi.Output[str] | None]) -> PlatformSecrets:
        """Hand out `values` (by key of SECRET_KEYS) as `config` uses them; raise ConfigError naming every
        secret it requires that is missing."""
        missing = [
            f"{NAMESPACE}:{key}: required secret is missing; "
            f"set it with `pulumi config set --secret {NAMESPACE}:{key} …`"
            for key, required in SECRET_KEYS.items()
            if required(config) and values.get(key) is None
        ]
        if missing:
            raise ConfigError(missing)
        used = {key: value for key, value in values.items() if value is not None and SECRET_KEYS[key](config)}
        sso = config.management.argocd.sso
        return cls(
            ngc_api_key=used["ngcApiKey"],
            gpu_cluster_kubeconfig=used.get("gpuClusterKubeconfig"),
            gateway_api_key=used.get("gatewayApiKey"),
            management=ManagementSecrets(
                gitops_token=used["gitopsToken"],
                mlflow_admin_password=used["mlflowAdminPassword"],
                sso=SsoClient(sso, used["ssoClientSecret"]) if sso is not None else None,
                mlflow_db_password=used.get("mlflowDbPassword"),
            ),
        )
