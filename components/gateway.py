"""The gateway in front of the GPU cluster: Envoy Gateway with one Gateway, the platform's only LoadBalancer.

Two kinds of traffic share its port 443, told apart by SNI:
- HTTPS to the services (gateway_routes.py): one host per service, TLS terminated here with a certificate from
  cert-manager (ACME, HTTP-01 answered on the gateway's port 80) or a provided Secret. Every route is
  authenticated (API key or JWT) and rate limited.
- TLS passthrough to the kube-apiserver, for ArgoCD on the management cluster (gateway_passthrough.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import CertManager
from components.config import GatewayConfig
from components.gateway_objects import (
    ACME_LISTENER,
    ENVOY_GATEWAY,
    ENVOY_GATEWAY_VERSION,
    GATEWAY,
    GATEWAY_API,
    GATEWAY_API_VERSION,
    HTTP_PORT,
    HTTPS_LISTENER,
    HTTPS_PORT,
    NAMESPACE,
    PASSTHROUGH_LISTENER,
    GatewayObjects,
    gateway_ref,
)
from components.gateway_passthrough import api_server_host, pass_through_to_api_server
from components.gateway_routes import PublicUrls, exposed_backends, public_urls, route_backends
from components.helm import ChartRef, release_in_namespace

GATEWAY_CHART = "gateway-helm"
GATEWAY_REPOSITORY = "oci://docker.io/envoyproxy"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "envoy-gateway"
# Named through the EnvoyProxy resource, so the address can be looked up without Envoy Gateway's generated name.
SERVICE = "llmops-gateway"
PROXY_CONFIG = "llmops-gateway-proxy"
ACME_TLS_SECRET = "llmops-gateway-tls"


def envoy_gateway_values() -> dict[str, Any]:
    """Values for gateway-helm v1.9.0; every key exists in the chart's values (tests check it)."""
    return {
        # The release brings the Envoy Gateway CRDs and Gateway API v1.6.1; everything below depends on it.
        "crds": {"enabled": True},
        # Two controllers (leader-elected) and a PDB keep xDS served through node drains.
        "deployment": {"replicas": 2},
        "podDisruptionBudget": {"minAvailable": 1},
    }


def _same_namespace_routes(kind: str) -> dict[str, Any]:
    # Routes live next to the Gateway: exposing a service is a change here, never in a workload namespace.
    return {"namespaces": {"from": "Same"}, "kinds": [{"group": GATEWAY_API, "kind": kind}]}


def gateway_listeners(
    config: GatewayConfig, tls_secret: str, api_server_sni: pulumi.Input[str] | None
) -> list[dict[str, Any]]:
    wildcard = f"*.{config.domain}"
    listeners: list[dict[str, Any]] = [
        {
            "name": HTTPS_LISTENER,
            "protocol": "HTTPS",
            "port": HTTPS_PORT,
            "hostname": wildcard,
            "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": tls_secret}]},
            "allowedRoutes": _same_namespace_routes("HTTPRoute"),
        }
    ]
    if config.tls.mode == "cert-manager":
        # Plain HTTP carries only the ACME HTTP-01 challenge routes cert-manager adds; nothing else attaches.
        listeners.append(
            {
                "name": ACME_LISTENER,
                "protocol": "HTTP",
                "port": HTTP_PORT,
                "hostname": wildcard,
                "allowedRoutes": _same_namespace_routes("HTTPRoute"),
            }
        )
    if api_server_sni is not None:
        listeners.append(
            {
                "name": PASSTHROUGH_LISTENER,
                "protocol": "TLS",
                "port": HTTPS_PORT,
                "hostname": api_server_sni,
                "tls": {"mode": "Passthrough"},
                "allowedRoutes": _same_namespace_routes("TLSRoute"),
            }
        )
    return listeners


class EnvoyGateway(pulumi.ComponentResource):
    """Envoy Gateway, its Gateway, the routes to the exposed NeMo services and NIMs with their protection, and
    the kube-apiserver passthrough (when `config.passthrough`). `public_urls` is where clients reach each service."""

    hostnames: dict[str, str]
    urls: dict[str, str]
    public_urls: PublicUrls
    service_name: str
    api_server_hostname: str | None
    api_server_url: str | None
    api_server_sni: pulumi.Output[str] | None
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        config: GatewayConfig,
        *,
        chart_version: str,
        cert_manager_version: str,
        nemo_service_urls: Mapping[str, str],
        nim_urls: Mapping[str, str],
        api_endpoint: pulumi.Input[str],
        api_key: pulumi.Output[str] | None,
        provider: k8s.Provider,
        backends_ready: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`nemo_service_urls`, `nim_urls`: in-cluster URLs by NeMo service and by NIM service name.
        `api_endpoint`: the GPU cluster's kube-apiserver URL, whose host name its certificate carries.
        `api_key`: the key clients present, given exactly when `config.auth` is api-key (PlatformSecrets).
        `backends_ready`: what creates the backends' namespaces (the ReferenceGrants live there)."""
        super().__init__("llmops:gateway:EnvoyGateway", name, None, opts)
        backends = exposed_backends(nemo_service_urls, nim_urls)
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ValueError(f"gateway backends need unique names (got {names})")
        objects = GatewayObjects(name, self, provider)
        self._objects = objects
        self.hostnames = {b.name: f"{b.name}.{config.domain}" for b in backends}
        self.urls = {backend: f"https://{host}" for backend, host in self.hostnames.items()}
        self.public_urls = public_urls(self.urls, list(nim_urls))
        self.service_name = f"{NAMESPACE}/{SERVICE}"

        ns, self.release = release_in_namespace(
            "envoy-gateway",
            ChartRef(GATEWAY_CHART, chart_version, GATEWAY_REPOSITORY),
            envoy_gateway_values(),
            namespace_name=NAMESPACE,
            pod_security="restricted",
            namespace_resource_name=f"{name}-ns",
            parent=self,
            provider=provider,
        )
        crds = [self.release]

        tls_secret = self._certificate(config, cert_manager_version)

        proxy = objects.custom(
            "proxy",
            ENVOY_GATEWAY_VERSION,
            "EnvoyProxy",
            PROXY_CONFIG,
            {
                "provider": {
                    "type": "Kubernetes",
                    "kubernetes": {
                        "envoyDeployment": {"replicas": 2},
                        "envoyPDB": {"minAvailable": 1},
                        # `Local` keeps the client's source address, which the passthrough allowlist matches on.
                        "envoyService": {"name": SERVICE, "type": "LoadBalancer", "externalTrafficPolicy": "Local"},
                    },
                }
            },
            depends_on=crds,
        )
        gateway_class = objects.custom(
            "class",
            GATEWAY_API_VERSION,
            "GatewayClass",
            GATEWAY_CLASS,
            {
                "controllerName": CONTROLLER_NAME,
                "parametersRef": {
                    "group": ENVOY_GATEWAY,
                    "kind": "EnvoyProxy",
                    "name": PROXY_CONFIG,
                    "namespace": NAMESPACE,
                },
            },
            namespaced=False,
            depends_on=[*crds, proxy],
        )

        self.api_server_sni = api_server_host(api_endpoint) if config.passthrough else None
        self.api_server_hostname = config.api_server_hostname if config.passthrough else None
        self.api_server_url = f"https://{self.api_server_hostname}:{HTTPS_PORT}" if config.passthrough else None
        gateway = objects.custom(
            "gateway",
            GATEWAY_API_VERSION,
            "Gateway",
            GATEWAY,
            {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": gateway_listeners(config, tls_secret, self.api_server_sni),
            },
            depends_on=[gateway_class],
        )

        route_backends(
            objects,
            config,
            backends,
            self.hostnames,
            gateway=gateway,
            gateway_namespace=ns,
            crds=crds,
            backends_ready=backends_ready,
            api_key=api_key,
        )
        if self.api_server_sni is not None:
            pass_through_to_api_server(
                objects,
                api_server_sni=self.api_server_sni,
                allowed_cidrs=config.passthrough_allowed_cidrs,
                gateway=gateway,
                crds=crds,
            )

        self.outputs: dict[str, Any] = {
            # The LoadBalancer address is known only once Azure assigns it: read it from this Service.
            "serviceName": self.service_name,
            "hostnames": self.hostnames,
            "urls": self.urls,
            "apiServerHostname": self.api_server_hostname,
            "apiServerTlsServerName": self.api_server_sni,
        }
        self.register_outputs(self.outputs)

    def _certificate(self, config: GatewayConfig, cert_manager_version: str) -> str:
        """The Secret the HTTPS listener serves; with cert-manager, an ACME certificate for every service host."""
        if config.tls.mode == "provided":
            assert config.tls.provided_secret_name is not None
            return config.tls.provided_secret_name
        assert config.tls.acme_email is not None
        cert_manager = CertManager(
            f"{self._objects.prefix}-cert-manager",
            cert_manager_version,
            provider=self._objects.provider,
            depends_on=[self.release],
            opts=pulumi.ResourceOptions(parent=self),
        )
        issuer = f"{GATEWAY}-acme"
        self._objects.custom(
            "acme-issuer",
            "cert-manager.io/v1",
            "ClusterIssuer",
            issuer,
            {
                "acme": {
                    "email": config.tls.acme_email,
                    "server": config.tls.acme_server,
                    "privateKeySecretRef": {"name": f"{issuer}-account-key"},
                    "solvers": [
                        {
                            "http01": {
                                "gatewayHTTPRoute": {
                                    # The solver's Service only needs to be reachable from Envoy.
                                    "serviceType": "ClusterIP",
                                    "parentRefs": [
                                        {**gateway_ref("Gateway", GATEWAY, ACME_LISTENER), "namespace": NAMESPACE}
                                    ],
                                }
                            }
                        }
                    ],
                }
            },
            namespaced=False,
            depends_on=[cert_manager.release],
        )
        if self.hostnames:
            self._objects.custom(
                "certificate",
                "cert-manager.io/v1",
                "Certificate",
                ACME_TLS_SECRET,
                {
                    "secretName": ACME_TLS_SECRET,
                    # HTTP-01 cannot prove a wildcard, so the certificate names each service host.
                    "dnsNames": list(self.hostnames.values()),
                    "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer},
                },
                # Issuance completes only once DNS points the hosts at the gateway, whose address exists only after
                # this deployment; waiting for Ready here would fail the first `pulumi up`.
                annotations={"pulumi.com/skipAwait": "true"},
                depends_on=[cert_manager.release],
            )
        return ACME_TLS_SECRET
