"""The internal entry to the management cluster's UIs: Envoy Gateway (the GPU gateway's chart and version) behind an
Azure internal load balancer at a fixed private address in the management subnet.

One HTTPS listener per UI host, each serving the certificate Secret named in config (an operator-provided
certificate: cert-manager's HTTP-01 cannot prove private names). Every route admits only the configured private
client ranges and is rate limited per client address; sign-in is each UI's own (ArgoCD and Argo Workflows SSO with
Entra ID, MLflow basic auth), so the gateway authenticates no one itself.

argocd-server and argo-server serve HTTPS with certificates they generate themselves. Envoy reaches them through an
Envoy Gateway `Backend` that keeps TLS to the pod but cannot verify that self-signed certificate; MLflow speaks
plain HTTP inside the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import argo_workflows, argocd, mlflow
from components.config import InternalEntryConfig
from components.gateway import (
    envoy_gateway_allows,
    envoy_gateway_values,
    https_listener,
    install_envoy_gateway,
    load_balancer_service,
)
from components.gateway_objects import (
    ENVOY_GATEWAY,
    ENVOY_GATEWAY_VERSION,
    GATEWAY_API_VERSION,
    HTTPS_PORT,
    NAMESPACE,
    PROXY_PEER,
    GatewayObjects,
    gateway_ref,
)
from components.gateway_passthrough import client_allowlist
from components.network_policies import NamespaceSpec

RELEASE = "envoy-gateway-internal"
GATEWAY_CLASS = "envoy-gateway-internal"
GATEWAY = "llmops-ui-gateway"
SERVICE = "llmops-ui-gateway"
PROXY_CONFIG = "llmops-ui-gateway-proxy"
# cloud-provider-azure Service annotations: an internal load balancer, at this private address.
INTERNAL_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-internal"
IPV4_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
# The entry's proxies: the pods the UIs' NetworkPolicies admit.
UI_ENTRY_PEER = PROXY_PEER


@dataclass(frozen=True)
class UiBackend:
    """A UI behind the entry: its listener and route name, host, and in-cluster Service."""

    name: str
    hostname: str
    namespace: str
    service: str
    port: int
    # The Service speaks HTTPS (with a certificate nobody issued) rather than HTTP.
    tls: bool

    @property
    def fqdn(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


def ui_backends(argocd_hostname: str, workflows_hostname: str, mlflow_hostname: str) -> list[UiBackend]:
    """The three UIs, at the Service names and ports their charts create (argo-cd 10.1, argo-workflows 1.0,
    community mlflow 1.11 rendered with our values)."""
    return [
        UiBackend("argocd", argocd_hostname, argocd.NAMESPACE, argocd.SERVER_SERVICE, argocd.SERVER_PORT, tls=True),
        UiBackend(
            "argo-workflows",
            workflows_hostname,
            argo_workflows.NAMESPACE,
            argo_workflows.SERVER_SERVICE,
            argo_workflows.SERVER_PORT,
            tls=True,
        ),
        UiBackend("mlflow", mlflow_hostname, mlflow.NAMESPACE, mlflow.SERVICE, mlflow.PORT, tls=False),
    ]


def internal_entry_values() -> dict[str, Any]:
    """The GPU gateway's values plus the `Backend` API (off by default), which the TLS backends need."""
    values = envoy_gateway_values()
    values["config"] = {"envoyGateway": {"extensionApis": {"enableBackend": True}}}
    return values


def internal_service(address: str) -> dict[str, Any]:
    """`envoyService` of the EnvoyProxy: an internal LoadBalancer at `address`."""
    return load_balancer_service(SERVICE, {INTERNAL_ANNOTATION: "true", IPV4_ANNOTATION: address})


def listeners(backends: Sequence[UiBackend], tls_secret: str) -> list[dict[str, Any]]:
    return [https_listener(backend.name, backend.hostname, tls_secret) for backend in backends]


class InternalEntry(pulumi.ComponentResource):
    """Envoy Gateway on the management cluster with an internal Gateway and a route to each UI. `address` is the
    load balancer's private address, `hostnames` the UI hosts it serves (by UI)."""

    address: str
    hostnames: dict[str, str]
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        config: InternalEntryConfig,
        *,
        address: str,
        backends: Sequence[UiBackend],
        chart_version: str,
        provider: k8s.Provider,
        backends_ready: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`backends_ready`: the releases that create the UIs' namespaces and Services."""
        super().__init__("llmops:management:InternalEntry", name, None, opts)
        objects = GatewayObjects(name, self, provider)
        self.address = address
        self.hostnames = {backend.name: backend.hostname for backend in backends}
        # The SecurityPolicy below narrows the clients to the private ranges.
        allows = envoy_gateway_allows([HTTPS_PORT])
        _, _, self.release = install_envoy_gateway(
            RELEASE,
            chart_version,
            internal_entry_values(),
            NamespaceSpec(NAMESPACE, "restricted", allows, name),
            parent=self,
            provider=provider,
        )
        crds = [self.release]
        proxy = objects.envoy_proxy(PROXY_CONFIG, internal_service(address), crds)
        gateway_class = objects.gateway_class(GATEWAY_CLASS, PROXY_CONFIG, proxy, crds)
        gateway = objects.custom(
            "gateway",
            GATEWAY_API_VERSION,
            "Gateway",
            GATEWAY,
            {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners(backends, config.tls_secret_name)},
            depends_on=[gateway_class],
        )
        # The gateway's protection exists before any route does, so no UI is reachable from outside the ranges.
        protection = [
            objects.custom(
                "client-allowlist",
                ENVOY_GATEWAY_VERSION,
                "SecurityPolicy",
                f"{GATEWAY}-client-allowlist",
                {
                    "targetRefs": [gateway_ref("Gateway", GATEWAY)],
                    "authorization": client_allowlist(config.allowed_client_cidrs),
                },
                depends_on=[gateway],
            ),
            objects.custom(
                "rate-limit",
                ENVOY_GATEWAY_VERSION,
                "BackendTrafficPolicy",
                f"{GATEWAY}-rate-limit",
                {
                    "targetRefs": [gateway_ref("Gateway", GATEWAY)],
                    "rateLimit": {
                        "local": {
                            "rules": [
                                {
                                    # One bucket per client address and route.
                                    "clientSelectors": [{"sourceCIDR": {"type": "Distinct", "value": "0.0.0.0/0"}}],
                                    "limit": {"requests": config.requests_per_minute, "unit": "Minute"},
                                }
                            ]
                        }
                    },
                },
                depends_on=[gateway],
            ),
        ]
        ready = [*crds, *backends_ready]
        # A Backend object carries TLS to the HTTPS UIs; plain-HTTP Services are reached across namespaces.
        objects.route_grants(GATEWAY, [(b.namespace, b.service) for b in backends if not b.tls], ready)
        for backend in backends:
            self._route(objects, backend, ready, protection)

        self.outputs: dict[str, Any] = {
            "address": address,
            "serviceName": f"{NAMESPACE}/{SERVICE}",
            "hostnames": self.hostnames,
        }
        self.register_outputs(self.outputs)

    def _route(
        self,
        objects: GatewayObjects,
        backend: UiBackend,
        ready: Sequence[pulumi.Resource],
        protection: Sequence[pulumi.Resource],
    ) -> None:
        if backend.tls:
            objects.custom(
                f"backend-{backend.name}",
                ENVOY_GATEWAY_VERSION,
                "Backend",
                backend.name,
                {
                    "endpoints": [{"fqdn": {"hostname": backend.fqdn, "port": backend.port}}],
                    # Encrypted to the pod; the UI's certificate is self-generated, so there is nothing to verify.
                    "tls": {"insecureSkipVerify": True},
                },
                depends_on=ready,
            )
            backend_ref: dict[str, str | int] = {"group": ENVOY_GATEWAY, "kind": "Backend", "name": backend.name}
        else:
            backend_ref = {
                "group": "",
                "kind": "Service",
                "name": backend.service,
                "namespace": backend.namespace,
                "port": backend.port,
            }
        objects.custom(
            f"route-{backend.name}",
            GATEWAY_API_VERSION,
            "HTTPRoute",
            backend.name,
            {
                "parentRefs": [gateway_ref("Gateway", GATEWAY, backend.name)],
                "hostnames": [backend.hostname],
                "rules": [{"backendRefs": [backend_ref]}],
            },
            depends_on=[*ready, *protection],
        )
