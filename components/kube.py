"""Small Kubernetes building blocks shared by the components."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

PodSecurityLevel = str  # "privileged" | "baseline" | "restricted"


def namespace(
    name: str,
    *,
    pod_security: PodSecurityLevel,
    parent: pulumi.Resource,
    provider: k8s.Provider,
    labels: Mapping[str, str] | None = None,
    resource_name: str | None = None,
) -> k8s.core.v1.Namespace:
    """A namespace that enforces a Pod Security Standard.

    GPU Operator and Volcano pods need host access, so their namespaces are `privileged`; everything
    we author runs `restricted`; third-party charts that are not yet restricted-clean get `baseline`.
    """
    return k8s.core.v1.Namespace(
        resource_name or name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            labels={
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
                "app.kubernetes.io/part-of": "llmops-platform",
                **(labels or {}),
            },
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
