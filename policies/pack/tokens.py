"""Resource type tokens and Kubernetes names that the rules, the pricer and the planner look for."""

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"
