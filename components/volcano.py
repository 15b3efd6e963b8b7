"""Volcano, the batch scheduler NeMo Customizer runs its fine-tuning jobs on (gang scheduling of training pods).

Version: the NeMo 25.8 chart declares Volcano 1.9.0 as its (disabled) dependency and NVIDIA's install guide
applies v1.9.0 by hand. Volcano's own compatibility matrix ends 1.9 at Kubernetes 1.29 and its maintainers do
not backport newer Kubernetes dependencies, while our GPU clusters run 1.32 (DGX Cloud) and 1.33 (AKS). So we
pin 1.15.1, the release whose matrix covers both, and rely on what the Customizer and the NeMo operator use
being unchanged since 1.9: `batch.volcano.sh/v1alpha1` Job and `scheduling.volcano.sh/v1beta1` PodGroup and
Queue (the `default` queue is still created by the scheduler). 1.15 also no longer enables the pod-mutating
webhook by default, the one that blocks pod creation cluster-wide while its certificate is not ready.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.container_sizing import requests_limits
from components.helm import ChartRef, release_in_namespace
from components.network_policies import NamespaceSpec, webhook

VOLCANO_REPOSITORY = "https://volcano-sh.github.io/helm-charts"
VOLCANO_NAMESPACE = "volcano-system"
# The NeMo operator and Customizer submit jobs to this queue, which the Volcano scheduler creates.
VOLCANO_QUEUE = "default"
ADMISSION_LABELS = {"app": "volcano-admission"}
# The admission Service's targetPort: the webhook server listens here.
ADMISSION_PORT = 8443
VOLCANO_UID = 10001


def volcano_values(job_namespaces: list[str]) -> dict[str, Any]:
    return {
        # Images are pinned by the chart's tag; pulling them again on every restart only adds a registry dependency.
        "basic": {"image_pull_policy": "IfNotPresent"},
        "custom": {
            # The admission webhooks fail closed; limit them to the namespaces where Volcano jobs are created so a
            # webhook outage cannot block workloads elsewhere (cluster-scoped Queues are still validated).
            "webhooks_namespace_selector_expressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(job_namespaces)}
            ],
            # Volcano's bundled Prometheus, Grafana and kube-state-metrics stay off: monitoring is not its job here.
            "metrics_enable": False,
            # `admission_resources` also sizes the admission-init hook Job.
            "admission_resources": requests_limits("50m", "64Mi", "500m", "256Mi"),
            "scheduler_resources": requests_limits("100m", "256Mi", "1", "1Gi"),
            "controller_resources": requests_limits("100m", "128Mi", "1", "512Mi"),
            # The chart's default container context with a high UID (no user in the images; any UID works). Each
            # per-component context replaces the default one whole. The admission-init hook keeps a writable root:
            # gen-admission-secret.sh writes the generated certificate under a mktemp directory.
            "default_csc": _container_security_context(read_only_root=False),
            "admission_main_csc": _container_security_context(read_only_root=True),
            "scheduler_main_csc": _container_security_context(read_only_root=True),
            "controller_main_csc": _container_security_context(read_only_root=True),
        },
    }


def _container_security_context(*, read_only_root: bool) -> dict[str, Any]:
    """The chart's `default_csc` (non-root, every capability dropped but DAC_OVERRIDE, which upstream adds to
    every component) with a UID >= 10000 and, where the component writes nothing, a read-only root."""
    return {
        "runAsNonRoot": True,
        "runAsUser": VOLCANO_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"add": ["DAC_OVERRIDE"], "drop": ["ALL"]},
    }


class Volcano(pulumi.ComponentResource):
    """The Volcano release in its own namespace. Install it before NeMo: the NeMo operator fails to start
    without the PodGroup CRD, and NVIDIA asks for the admission webhook to be ready first."""

    release: k8s.helm.v3.Release
    queue: str = VOLCANO_QUEUE

    def __init__(
        self,
        name: str,
        version: str,
        job_namespaces: list[str],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:volcano:Volcano", name, None, opts)
        # `baseline`, not `privileged`: with colocation off the chart deploys no node agent, and the scheduler,
        # controllers and webhook only add DAC_OVERRIDE, which baseline allows. Only the kube-apiserver calls in (the
        # admission webhook); with metrics off nothing scrapes the rest.
        namespace = NamespaceSpec(VOLCANO_NAMESPACE, "baseline", [webhook(ADMISSION_LABELS, ADMISSION_PORT)], name)
        _, self.release = release_in_namespace(
            "volcano",
            ChartRef("volcano", version, VOLCANO_REPOSITORY),
            volcano_values(job_namespaces),
            namespace,
            parent=self,
            provider=provider,
        )
        self.register_outputs({"namespace": VOLCANO_NAMESPACE, "queue": self.queue})
