"""Small Kubernetes building blocks shared by the components: labels, metadata, namespaces, Secrets and custom
objects, so every object this program authors carries the same labels and is built the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

PodSecurityLevel = str  # "privileged" | "baseline" | "restricted"

PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
PLATFORM = "llmops-platform"


def platform_labels(component: str | None = None) -> dict[str, str]:
    """The labels of every object we author; `component` names the part of the platform it belongs to."""
    labels = {PART_OF_LABEL: PLATFORM}
    if component is not None:
        labels[COMPONENT_LABEL] = component
    return labels


def restricted_pod_security(user: int | None = None, *, fs_group: int | None = None) -> dict[str, Any]:
    """The pod half of the `restricted` Pod Security Standard as charts take it (`podSecurityContext`): non-root with
    RuntimeDefault seccomp, and `user` as UID and GID where the image's own user does not qualify."""
    context: dict[str, Any] = {"runAsNonRoot": True}
    if user is not None:
        context.update(runAsUser=user, runAsGroup=user)
    if fs_group is not None:
        context["fsGroup"] = fs_group
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def object_meta(
    name: str,
    namespace: pulumi.Input[str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
) -> k8s.meta.v1.ObjectMetaArgs:
    """Metadata of an authored object: `labels` default to `platform_labels()`."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=dict(labels) if labels is not None else platform_labels(),
        annotations=dict(annotations) if annotations else None,
    )


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
                **platform_labels(),
                **(labels or {}),
            },
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


def secret(
    resource_name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    *,
    opts: pulumi.ResourceOptions,
    string_data: Mapping[str, pulumi.Input[str]] | None = None,
    data: Mapping[str, pulumi.Input[str]] | None = None,
    secret_type: str = "Opaque",
) -> k8s.core.v1.Secret:
    """Every Secret this program authors. Values derived from a secret Output stay secret, and the Kubernetes
    provider marks `data` and `stringData` secret in the state whatever they hold."""
    return k8s.core.v1.Secret(
        resource_name,
        metadata=metadata,
        type=secret_type,
        data=dict(data) if data is not None else None,
        string_data=dict(string_data) if string_data is not None else None,
        opts=opts,
    )


def custom_object(
    resource_name: str,
    *,
    api_version: str,
    kind: str,
    metadata: k8s.meta.v1.ObjectMetaArgs | Mapping[str, Any],
    spec: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """An object of a kind a chart or CRD brings (Gateway API, Envoy Gateway, cert-manager, ArgoCD, Argo)."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=api_version,
        kind=kind,
        metadata=metadata,
        spec=dict(spec),
        opts=opts,
    )
