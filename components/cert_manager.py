"""cert-manager on the GPU cluster: issues the gateway's certificate from ACME, answering HTTP-01 challenges
with HTTPRoutes on the gateway itself (Gateway API support, https://cert-manager.io/docs/usage/gateway/).

There are no chart facts for cert-manager in facts/charts. The values keys set here, checked against the
chart's values.yaml at tag v1.19.1 (https://github.com/cert-manager/cert-manager/blob/v1.19.1/deploy/charts/
cert-manager/values.yaml, rendered at https://artifacthub.io/packages/helm/cert-manager/cert-manager):
- `crds.enabled`: the chart installs (and, with the default `crds.keep`, never deletes) its CRDs;
- `config`: the controller's ControllerConfiguration (`apiVersion`, `kind`, `enableGatewayAPI`), the documented
  way to turn on Gateway API support since cert-manager 1.15;
- `resources`, `securityContext` (pod) and the same under `webhook`, `cainjector` and `startupapicheck`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.container_sizing import requests_limits
from components.helm import ChartRef, release_in_namespace
from components.network_policies import NamespaceSpec, webhook

CERT_MANAGER_CHART = "cert-manager"
CERT_MANAGER_REPOSITORY = "https://charts.jetstack.io"
CERT_MANAGER_NAMESPACE = "cert-manager"
WEBHOOK_LABELS = {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/instance": "cert-manager"}
WEBHOOK_PORT = 10250
CERT_MANAGER_UID = 65532
_SMALL = requests_limits("10m", "32Mi", "200m", "128Mi")


def cert_manager_values() -> dict[str, Any]:
    return {
        "crds": {"enabled": True},
        "config": {
            "apiVersion": "controller.config.cert-manager.io/v1alpha1",
            "kind": "ControllerConfiguration",
            # Without it the `gatewayHTTPRoute` solver is ignored and HTTP-01 challenges never resolve.
            "enableGatewayAPI": True,
        },
        # The chart's pod securityContext (non-root, RuntimeDefault seccomp) with the UID the distroless images
        # are built for (65532, `nonroot`) spelled out: maps merge with the chart's defaults.
        "securityContext": {"runAsUser": CERT_MANAGER_UID},
        "resources": requests_limits("50m", "128Mi", "500m", "512Mi"),
        "webhook": {"securityContext": {"runAsUser": CERT_MANAGER_UID}, "resources": _SMALL},
        "cainjector": {
            "securityContext": {"runAsUser": CERT_MANAGER_UID},
            "resources": requests_limits("50m", "128Mi", "500m", "512Mi"),
        },
        "startupapicheck": {"securityContext": {"runAsUser": CERT_MANAGER_UID}, "resources": _SMALL},
    }


class CertManager(pulumi.ComponentResource):
    """The cert-manager release in its own namespace. Issuers and Certificates depend on `release` (CRDs)."""

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        chart_version: str,
        *,
        provider: k8s.Provider,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`depends_on`: what installs the Gateway API CRDs, which cert-manager looks for when it starts."""
        super().__init__("llmops:gateway:CertManager", name, None, opts)
        # `restricted`: the controller, webhook and cainjector run non-root with RuntimeDefault seccomp and every
        # capability dropped (so do the ACME solver pods, which run in the Certificate's namespace). Only the
        # kube-apiserver calls in (the webhook); the controller and cainjector call it, not each other.
        namespace = NamespaceSpec(CERT_MANAGER_NAMESPACE, "restricted", [webhook(WEBHOOK_LABELS, WEBHOOK_PORT)], name)
        _, self.release = release_in_namespace(
            "cert-manager",
            ChartRef(CERT_MANAGER_CHART, chart_version, CERT_MANAGER_REPOSITORY),
            cert_manager_values(),
            namespace,
            parent=self,
            provider=provider,
            depends_on=depends_on,
        )
        self.register_outputs({"namespace": CERT_MANAGER_NAMESPACE})
