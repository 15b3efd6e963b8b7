"""The NVIDIA GPU Operator: driver, container toolkit, device plugin, DCGM exporter and MIG manager on GPU nodes.

Its images (nvcr.io/nvidia/…) and its Helm repository are public, so unlike NeMo and NIM it needs no NGC
credentials: no `ngc-api` or `nvcrimagepullsecret` Secret is created in its namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import GpuOperatorConfig
from components.container_sizing import requests_limits
from components.helm import ChartRef, release_in_namespace
from components.kube import restricted_pod_security
from components.network_policies import Allow, NamespaceSpec, among_themselves, metrics_scraping

GPU_OPERATOR_CHART = "gpu-operator"
GPU_OPERATOR_REPOSITORY = "https://helm.ngc.nvidia.com/nvidia"
GPU_OPERATOR_NAMESPACE = "gpu-operator"
GPU_OPERATOR_RELEASE = "gpu-operator"
# The DCGM exporter DaemonSet the operator creates (not the chart): its pods' label and metrics port.
DCGM_EXPORTER_LABELS = {"app": "nvidia-dcgm-exporter"}
DCGM_EXPORTER_PORT = 9400

# The chart's own default for the NFD workers; Helm replaces lists, so setting tolerations must repeat it.
_CONTROL_PLANE_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Equal",
    "value": "",
    "effect": "NoSchedule",
}


# Node Feature Discovery only reads world-readable host files and talks to the API: any unprivileged UID works.
NFD_UID = 65534
_NFD_POD_SECURITY = restricted_pod_security(NFD_UID)


def gpu_operator_values(
    config: GpuOperatorConfig,
    *,
    install_driver: bool,
    gpu_node_tolerations: Sequence[Mapping[str, str]],
    prometheus_crds: bool,
) -> dict[str, Any]:
    """Values for the gpu-operator chart.

    `gpu_node_tolerations` must cover every taint a GPU node carries (the GPU taint, and the spot taint on
    spot pools): the operands and the NFD worker that labels GPU nodes must reach every GPU node, while
    they tolerate, never request, `nvidia.com/gpu`.
    """
    tolerations = [dict(t) for t in gpu_node_tolerations]
    driver: dict[str, Any] = {"enabled": install_driver}
    if install_driver and config.driver_version is not None:
        driver["version"] = config.driver_version
    return {
        "daemonsets": {"tolerations": tolerations},
        "node-feature-discovery": {
            # Non-root with a high UID and RuntimeDefault seccomp (the chart's container contexts already drop
            # every capability, read-only root); CPU limits added to the chart's requests and memory limits.
            # master.securityContext also runs the post-delete prune Job.
            "master": {
                "podSecurityContext": _NFD_POD_SECURITY,
                "securityContext": {"runAsUser": NFD_UID},
                "resources": requests_limits("100m", "128Mi", "1", "4Gi"),
            },
            "worker": {
                "tolerations": [_CONTROL_PLANE_TOLERATION, *tolerations],
                "podSecurityContext": _NFD_POD_SECURITY,
                "resources": requests_limits("5m", "64Mi", "200m", "512Mi"),
            },
            "gc": {
                "podSecurityContext": _NFD_POD_SECURITY,
                "resources": requests_limits("10m", "128Mi", "200m", "1Gi"),
            },
        },
        "driver": driver,
        "toolkit": {"enabled": True},
        "mig": {"strategy": config.mig_strategy},
        "dcgmExporter": {
            "enabled": config.dcgm_exporter,
            # The chart enables the ServiceMonitor by default; without the Prometheus Operator CRDs the
            # release would fail, so it is set explicitly either way.
            "serviceMonitor": {"enabled": config.dcgm_exporter and prometheus_crds},
        },
    }


def gpu_operator_network_allows(values: Mapping[str, Any]) -> list[Allow]:
    """The operator, NFD and the operands talk among themselves; Prometheus scrapes the DCGM exporter exactly when
    the values turn its ServiceMonitor on. Nothing else calls in: the operator has no webhook."""
    allows = [among_themselves()]
    if ((values.get("dcgmExporter") or {}).get("serviceMonitor") or {}).get("enabled"):
        allows.append(metrics_scraping(DCGM_EXPORTER_LABELS, [DCGM_EXPORTER_PORT]))
    return allows


class GpuOperator(pulumi.ComponentResource):
    """The `gpu-operator` namespace (privileged: its pods load kernel modules) and the pinned Helm release."""

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        chart_version: str,
        values: Mapping[str, Any],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:gpu:GpuOperator", name, None, opts)
        _, self.release = release_in_namespace(
            GPU_OPERATOR_RELEASE,
            ChartRef(GPU_OPERATOR_CHART, chart_version, GPU_OPERATOR_REPOSITORY),
            values,
            NamespaceSpec(GPU_OPERATOR_NAMESPACE, "privileged", gpu_operator_network_allows(values), name, "namespace"),
            parent=self,
            provider=provider,
            # The driver container compiles the kernel module on first start; atomic waits for the operator.
            timeout_seconds=1200,
        )
        self.register_outputs({"namespace": GPU_OPERATOR_NAMESPACE, "release": self.release.name})
