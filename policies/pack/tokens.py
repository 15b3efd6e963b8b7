"""Resource type tokens and Kubernetes names that the rules, the pricer and the planner look for."""

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART = "kubernetes:helm.sh/v4:Chart"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
POSTGRES_SERVER = "azure-native:dbforpostgresql:Server"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"
