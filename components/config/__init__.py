"""Typed configuration of the whole platform, loaded from the `llmops:` config namespace.

Every model forbids unknown keys and is frozen: a typo in a stack file is an error, not a silently
ignored setting. Keys are camelCase in the stack files (Pulumi's convention) and snake_case here.
Secrets are not part of these models: they stay `pulumi.Output` secrets (see `PlatformSecrets`).

One module per area; `parsing` words validation problems, `secrets` decides which secret each
configuration needs and hands them out, `loading` reads both from the Pulumi engine.
"""

from components.config.access import CiRunnersConfig, DeployerConfig
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
from components.config.dns import DnsConfig, in_zone, relative_name
from components.config.gateway import GatewayConfig, GatewayTlsConfig
from components.config.gpu import (
    GPU_TAINT,
    SPOT_TAINT,
    ExistingGpuClusterConfig,
    GpuAksConfig,
    GpuClusterConfig,
    GpuOperatorConfig,
    GpuPoolConfig,
    GpuPoolUpgradeConfig,
)
from components.config.loading import load, raw_config_from_pulumi
from components.config.management import (
    ArgoCdConfig,
    ArgoWorkflowsConfig,
    InternalEntryConfig,
    ManagementClusterConfig,
    ManagementConfig,
    MlflowConfig,
    OidcSsoConfig,
    internal_entry_address,
)
from components.config.nemo_nim import (
    LoraConfig,
    NemoConfig,
    NimAutoscalingConfig,
    NimConfig,
    NimModelConfig,
    NimScheduleConfig,
)
from components.config.parsing import ConfigError, parse_config
from components.config.platform import BudgetConfig, ChartVersionsConfig, MonitoringConfig, PlatformConfig
from components.config.secrets import (
    GENERATED_SECRET_KEYS,
    SECRET_KEYS,
    DatabasePasswords,
    ManagementSecrets,
    PlatformSecrets,
    SsoClient,
    password_problems,
    required_secret_keys,
)

__all__ = [
    "GENERATED_SECRET_KEYS",
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
    "CiRunnersConfig",
    "Cidr",
    "ConfigError",
    "DatabasePasswords",
    "DeployerConfig",
    "DnsConfig",
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
    "GpuPoolUpgradeConfig",
    "InternalEntryConfig",
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
    "NimScheduleConfig",
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
    "in_zone",
    "internal_entry_address",
    "load",
    "parse_config",
    "password_problems",
    "raw_config_from_pulumi",
    "relative_name",
    "required_secret_keys",
]
