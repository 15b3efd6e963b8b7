"""Typed configuration of the whole platform, loaded from the `llmops:` config namespace.

Every model forbids unknown keys and is frozen: a typo in a stack file is an error, not a silently
ignored setting. Keys are camelCase in the stack files (Pulumi's convention) and snake_case here.
Secrets are not part of these models: they stay `pulumi.Output` secrets (see `PlatformSecrets`).

One module per area; `parsing` words validation problems, `secrets` decides which secret each
configuration needs and hands them out, `loading` reads both from the Pulumi engine.
"""

from components.config.azure import AzureConfig, NetworkConfig
from components.config.base import (
    NAMESPACE,
    ChartVersion,
    Cidr,
    DnsLabel,
    Environment,
    KubernetesVersion,
    Model,
    PoolName,
    Quantity,
    Uuid,
)
from components.config.clusters import (
    AksClusterConfig,
    ApiServerAccessConfig,
    MaintenanceWindowConfig,
    NodePoolConfig,
    SystemPoolConfig,
    Taint,
)
from components.config.delivery import GitOpsConfig, PipelinesConfig
from components.config.gateway import GatewayConfig, GatewayTlsConfig
from components.config.gpu import (
    GPU_TAINT,
    SPOT_TAINT,
    ExistingGpuClusterConfig,
    GpuAksConfig,
    GpuClusterConfig,
    GpuOperatorConfig,
    GpuPoolConfig,
)
from components.config.loading import load, raw_config_from_pulumi
from components.config.management import (
    ArgoCdConfig,
    ArgoWorkflowsConfig,
    ManagementClusterConfig,
    ManagementConfig,
    MlflowConfig,
    OidcSsoConfig,
)
from components.config.nemo_nim import LoraConfig, NemoConfig, NimAutoscalingConfig, NimConfig, NimModelConfig
from components.config.parsing import ConfigError, parse_config
from components.config.platform import BudgetConfig, ChartVersionsConfig, MonitoringConfig, PlatformConfig
from components.config.secrets import SECRET_KEYS, ManagementSecrets, PlatformSecrets, SsoClient

__all__ = [
    "GPU_TAINT",
    "NAMESPACE",
    "SECRET_KEYS",
    "SPOT_TAINT",
    "AksClusterConfig",
    "ApiServerAccessConfig",
    "ArgoCdConfig",
    "ArgoWorkflowsConfig",
    "AzureConfig",
    "BudgetConfig",
    "ChartVersion",
    "ChartVersionsConfig",
    "Cidr",
    "ConfigError",
    "DnsLabel",
    "Environment",
    "ExistingGpuClusterConfig",
    "GatewayConfig",
    "GatewayTlsConfig",
    "GitOpsConfig",
    "GpuAksConfig",
    "GpuClusterConfig",
    "GpuOperatorConfig",
    "GpuPoolConfig",
    "KubernetesVersion",
    "LoraConfig",
    "MaintenanceWindowConfig",
    "ManagementClusterConfig",
    "ManagementConfig",
    "ManagementSecrets",
    "MlflowConfig",
    "Model",
    "MonitoringConfig",
    "NemoConfig",
    "NetworkConfig",
    "NimAutoscalingConfig",
    "NimConfig",
    "NimModelConfig",
    "NodePoolConfig",
    "OidcSsoConfig",
    "PipelinesConfig",
    "PlatformConfig",
    "PlatformSecrets",
    "PoolName",
    "Quantity",
    "SsoClient",
    "SystemPoolConfig",
    "Taint",
    "Uuid",
    "load",
    "parse_config",
    "raw_config_from_pulumi",
]
