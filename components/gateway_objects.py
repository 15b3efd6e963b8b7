"""What the gateway's modules share: the names of the Gateway and its listeners, the API groups of Gateway API
and Envoy Gateway, and the factory that creates the gateway's objects.

Envoy Gateway v1.9 API: gateway.envoyproxy.io/v1alpha1 (EnvoyProxy, SecurityPolicy, BackendTrafficPolicy);
Gateway API v1.6.1 (experimental channel, installed by the chart): gateway.networking.k8s.io/v1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kube import custom_object, platform_labels
from components.network_policies import Peer

NAMESPACE = "envoy-gateway-system"
GATEWAY = "llmops-gateway"

HTTPS_LISTENER = "https"
ACME_LISTENER = "http"
PASSTHROUGH_LISTENER = "kube-apiserver"
HTTPS_PORT = 443
HTTP_PORT = 80

# Envoy Gateway runs every Gateway's proxies in its own namespace with these labels (and the owning Gateway's name
# and namespace; one Gateway per cluster here, so they are left out), and binds a listener port below 1024 to that
# port + 10000 inside the pod (servicePortToContainerPort), so the proxies need no NET_BIND_SERVICE.
PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}
PRIVILEGED_PORT_SHIFT = 10000
# The gateway's proxies, the callers of every Service a route exposes.
PROXY_PEER = Peer(namespace=NAMESPACE, pods=PROXY_LABELS)

GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"
GATEWAY_API_VERSION = f"{GATEWAY_API}/v1"
ENVOY_GATEWAY_VERSION = f"{ENVOY_GATEWAY}/v1alpha1"
# The controller name Envoy Gateway claims GatewayClasses by.
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"


def gateway_ref(kind: str, name: str, section: str | None = None) -> dict[str, str]:
    """A reference to a Gateway API object (`parentRefs`, `targetRefs`), optionally to one of its sections."""
    ref = {"group": GATEWAY_API, "kind": kind, "name": name}
    if section is not None:
        ref["sectionName"] = section
    return ref


def gateway_labels() -> dict[str, str]:
    return platform_labels("gateway")


@dataclass(frozen=True)
class GatewayObjects:
    """Creates the gateway's objects on the GPU cluster as children of `parent`, named `<prefix>-<suffix>`."""

    prefix: str
    parent: pulumi.Resource
    provider: k8s.Provider

    def options(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, provider=self.provider, depends_on=list(depends_on))

    def custom(
        self,
        suffix: str,
        api_version: str,
        kind: str,
        object_name: str,
        spec: Mapping[str, Any],
        *,
        object_namespace: str = NAMESPACE,
        namespaced: bool = True,
        annotations: Mapping[str, str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> k8s.apiextensions.CustomResource:
        # A plain mapping, not ObjectMetaArgs: the rendered manifests keep the key order they have always had.
        metadata: dict[str, Any] = {"name": object_name, "labels": gateway_labels()}
        if namespaced:
            metadata["namespace"] = object_namespace
        if annotations:
            metadata["annotations"] = dict(annotations)
        return custom_object(
            f"{self.prefix}-{suffix}",
            api_version=api_version,
            kind=kind,
            metadata=metadata,
            spec=spec,
            opts=self.options(depends_on),
        )

    def route_grants(
        self, gateway: str, services: Iterable[tuple[str, str]], depends_on: Sequence[pulumi.Resource]
    ) -> None:
        """One ReferenceGrant `<gateway>-routes` per namespace of `services` ((namespace, Service) pairs), letting
        the HTTPRoutes in the gateway's namespace reach exactly those Services. `depends_on`: the CRDs and what
        creates the Services' namespaces (the grants live there)."""
        by_namespace: dict[str, set[str]] = {}
        for service_namespace, service in services:
            by_namespace.setdefault(service_namespace, set()).add(service)
        for service_namespace, names in by_namespace.items():
            self.custom(
                f"grant-{service_namespace}",
                GATEWAY_API_VERSION,
                "ReferenceGrant",
                f"{gateway}-routes",
                {
                    "from": [{"group": GATEWAY_API, "kind": "HTTPRoute", "namespace": NAMESPACE}],
                    "to": [{"group": "", "kind": "Service", "name": name} for name in sorted(names)],
                },
                object_namespace=service_namespace,
                depends_on=depends_on,
            )

    def envoy_proxy(
        self, proxy_config: str, envoy_service: Mapping[str, Any], depends_on: Sequence[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        """The EnvoyProxy that shapes the proxies: two replicas kept one at a time through disruptions, and the
        Service `envoy_service` in front of them."""
        return self.custom(
            "proxy",
            ENVOY_GATEWAY_VERSION,
            "EnvoyProxy",
            proxy_config,
            {
                "provider": {
                    "type": "Kubernetes",
                    "kubernetes": {
                        "envoyDeployment": {"replicas": 2},
                        "envoyPDB": {"minAvailable": 1},
                        "envoyService": dict(envoy_service),
                    },
                }
            },
            depends_on=depends_on,
        )

    def gateway_class(
        self, class_name: str, proxy_config: str, proxy: pulumi.Resource, crds: Sequence[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        """The cluster's Envoy Gateway GatewayClass, its proxies shaped by the EnvoyProxy `proxy_config`."""
        return self.custom(
            "class",
            GATEWAY_API_VERSION,
            "GatewayClass",
            class_name,
            {
                "controllerName": CONTROLLER_NAME,
                "parametersRef": {
                    "group": ENVOY_GATEWAY,
                    "kind": "EnvoyProxy",
                    "name": proxy_config,
                    "namespace": NAMESPACE,
                },
            },
            namespaced=False,
            depends_on=[*crds, proxy],
        )
