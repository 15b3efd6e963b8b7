"""The gateway in front of the GPU cluster: Envoy Gateway with one Gateway, the platform's only LoadBalancer.

Two kinds of traffic share its port 443, told apart by SNI:
- HTTPS to the services: one host per service (`nemo-<service>.<domain>`, `nim-<model>.<domain>`), TLS terminated
  here with a certificate from cert-manager (ACME, HTTP-01 answered on the gateway's port 80) or a provided Secret.
  Every route is authenticated (API key or JWT) and rate limited.
- TLS passthrough to the kube-apiserver, for ArgoCD on the management cluster. The listener matches the SNI the
  apiserver's own certificate is issued for (the AKS FQDN, or the existing cluster's API host), so the TLS session
  runs end to end from ArgoCD to the apiserver with full certificate verification; clients reach the gateway by
  another name (`k8s.<domain>`) and set that SNI as `tlsServerName`. On AKS the SNI also selects the control plane
  behind the shared front end. Only allowlisted client CIDRs get through.

Envoy Gateway v1.9 API: gateway.envoyproxy.io/v1alpha1 (EnvoyProxy, SecurityPolicy, BackendTrafficPolicy);
Gateway API v1.6.1 (experimental channel, installed by the chart): gateway.networking.k8s.io/v1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import CertManager
from components.config import GatewayConfig
from components.helm import ChartRef, release
from components.kube import namespace

NAMESPACE = "envoy-gateway-system"
GATEWAY_CHART = "gateway-helm"
GATEWAY_REPOSITORY = "oci://docker.io/envoyproxy"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "envoy-gateway"
GATEWAY = "llmops-gateway"
# Named through the EnvoyProxy resource, so the address can be looked up without Envoy Gateway's generated name.
SERVICE = "llmops-gateway"
PROXY_CONFIG = "llmops-gateway-proxy"

HTTPS_LISTENER = "https"
ACME_LISTENER = "http"
PASSTHROUGH_LISTENER = "kube-apiserver"
HTTPS_PORT = 443
HTTP_PORT = 80

API_KEY_HEADER = "x-api-key"
API_KEY_SECRET = "llmops-gateway-api-keys"
# The client id the shared API key is stored under (the Secret's data key).
API_KEY_CLIENT = "platform"
ACME_TLS_SECRET = "llmops-gateway-tls"
# Long generations and dataset uploads outlast Envoy's 15 s default route timeout.
REQUEST_TIMEOUT = "600s"

GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"
GATEWAY_API_VERSION = f"{GATEWAY_API}/v1"
ENVOY_GATEWAY_VERSION = f"{ENVOY_GATEWAY}/v1alpha1"

# The NeMo microservices clients call; deployment management and the NIM proxy stay internal.
EXPOSED_NEMO_SERVICES = ("customizer", "evaluator", "data-store", "entity-store", "guardrails")


@dataclass(frozen=True)
class GatewayBackend:
    """A Service the gateway exposes at `https://<name>.<domain>`."""

    name: str
    namespace: str
    service: str
    port: int

    @classmethod
    def from_url(cls, name: str, url: str) -> GatewayBackend:
        """From an in-cluster URL such as `http://nemo-evaluator.nemo.svc.cluster.local:7331`."""
        parsed = urlparse(url)
        labels = (parsed.hostname or "").split(".")
        if len(labels) < 3 or labels[2] != "svc" or parsed.port is None:
            raise ValueError(f"{url!r} is not an in-cluster Service URL with a port")
        return cls(name=name, namespace=labels[1], service=labels[0], port=parsed.port)


def exposed_backends(nemo_service_urls: Mapping[str, str], nim_urls: Mapping[str, str]) -> list[GatewayBackend]:
    """The NeMo services clients use (those that are enabled) and every NIM, by in-cluster URL."""
    return [
        *(
            GatewayBackend.from_url(f"nemo-{service}", url)
            for service, url in nemo_service_urls.items()
            if service in EXPOSED_NEMO_SERVICES
        ),
        *(GatewayBackend.from_url(f"nim-{model}", url) for model, url in nim_urls.items()),
    ]


def envoy_gateway_values() -> dict[str, Any]:
    """Values for gateway-helm v1.9.0; every key exists in the chart's values (tests check it)."""
    return {
        # The release brings the Envoy Gateway CRDs and Gateway API v1.6.1; everything below depends on it.
        "crds": {"enabled": True},
        # Two controllers (leader-elected) and a PDB keep xDS served through node drains.
        "deployment": {"replicas": 2},
        "podDisruptionBudget": {"minAvailable": 1},
    }


def _ref(kind: str, name: str, section: str | None = None) -> dict[str, str]:
    ref = {"group": GATEWAY_API, "kind": kind, "name": name}
    if section is not None:
        ref["sectionName"] = section
    return ref


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


def route_authentication(config: GatewayConfig) -> dict[str, Any]:
    """The SecurityPolicy fields that authenticate every HTTP request."""
    if config.auth == "jwt":
        provider: dict[str, Any] = {
            "name": "platform-idp",
            "issuer": config.jwt_issuer,
            "remoteJWKS": {"uri": config.jwt_jwks_uri},
        }
        if config.jwt_audiences:
            provider["audiences"] = list(config.jwt_audiences)
        return {"jwt": {"providers": [provider]}}
    return {
        "apiKeyAuth": {
            "credentialRefs": [{"group": "", "kind": "Secret", "name": API_KEY_SECRET}],
            "extractFrom": [{"headers": [API_KEY_HEADER]}],
            # The backends never see the key.
            "sanitize": True,
        }
    }


def client_allowlist(cidrs: Sequence[str]) -> dict[str, Any]:
    """Deny by default, allow the listed client CIDRs: on a TLS listener Envoy Gateway enforces this with the
    network RBAC filter on the client's source address (clientCIDRs is the only principal it accepts there)."""
    return {
        "defaultAction": "Deny",
        "rules": [{"name": "allowlisted-clients", "action": "Allow", "principal": {"clientCIDRs": list(cidrs)}}],
    }


def api_server_host(api_endpoint: pulumi.Input[str]) -> pulumi.Output[str]:
    """`aks-x.hcp.westeurope.azmk8s.io` from `https://aks-x.hcp.westeurope.azmk8s.io:443`."""
    return pulumi.Output.from_input(api_endpoint).apply(lambda url: urlparse(url).hostname or url)


class EnvoyGateway(pulumi.ComponentResource):
    """Envoy Gateway, its Gateway, the routes to `backends` with their protection, and the kube-apiserver
    passthrough (when `config.passthrough`)."""

    hostnames: dict[str, str]
    urls: dict[str, str]
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
        backends: Sequence[GatewayBackend],
        api_endpoint: pulumi.Input[str],
        api_key: pulumi.Output[str] | None,
        provider: k8s.Provider,
        backends_ready: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`api_endpoint`: the GPU cluster's kube-apiserver URL, whose host name its certificate carries.
        `backends_ready`: what creates the backends' namespaces (the ReferenceGrants live there)."""
        super().__init__("llmops:gateway:EnvoyGateway", name, None, opts)
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ValueError(f"gateway backends need unique names (got {names})")
        self._prefix = name
        self._k8s = provider
        self.hostnames = {b.name: f"{b.name}.{config.domain}" for b in backends}
        self.urls = {backend: f"https://{host}" for backend, host in self.hostnames.items()}
        self.service_name = f"{NAMESPACE}/{SERVICE}"

        ns = namespace(NAMESPACE, pod_security="restricted", parent=self, provider=provider, resource_name=f"{name}-ns")
        self.release = release(
            "envoy-gateway",
            ChartRef(GATEWAY_CHART, chart_version, GATEWAY_REPOSITORY),
            ns.metadata.name,
            envoy_gateway_values(),
            parent=self,
            provider=provider,
            depends_on=[ns],
        )
        crds = [self.release]

        tls_secret = self._certificate(config, cert_manager_version)

        proxy = self._object(
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
        gateway_class = self._object(
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
        gateway = self._object(
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

        routes = [self._http_route(backend, depends_on=[gateway]) for backend in backends]
        route_refs = [_ref("HTTPRoute", backend.name) for backend in backends]
        self._grant_backends(backends, backends_ready)

        if config.auth == "api-key":
            if api_key is None:
                raise ValueError("gateway auth 'api-key' needs the llmops:gatewayApiKey secret")
            k8s.core.v1.Secret(
                f"{name}-api-keys",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=API_KEY_SECRET, namespace=NAMESPACE, labels=_labels()),
                type="Opaque",
                # `api_key` is a secret Output (Pulumi secret config); the Secret never shows it.
                string_data={API_KEY_CLIENT: api_key},
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[ns]),
            )
        if routes:
            self._object(
                "routes-auth",
                ENVOY_GATEWAY_VERSION,
                "SecurityPolicy",
                f"{GATEWAY}-routes-auth",
                {"targetRefs": route_refs, **route_authentication(config)},
                depends_on=routes,
            )
            self._object(
                "routes-rate-limit",
                ENVOY_GATEWAY_VERSION,
                "BackendTrafficPolicy",
                f"{GATEWAY}-routes-rate-limit",
                # Each route gets its own bucket (rules are not `shared`), counted per Envoy replica.
                {
                    "targetRefs": route_refs,
                    "rateLimit": {
                        "local": {"rules": [{"limit": {"requests": config.requests_per_minute, "unit": "Minute"}}]}
                    },
                },
                depends_on=routes,
            )

        if self.api_server_sni is not None:
            self._passthrough(config, gateway)

        self.register_outputs(
            {
                "serviceName": self.service_name,
                "hostnames": self.hostnames,
                "urls": self.urls,
                "apiServerHostname": self.api_server_hostname,
                "apiServerSni": self.api_server_sni,
            }
        )

    def _object(
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
        metadata: dict[str, Any] = {"name": object_name, "labels": _labels()}
        if namespaced:
            metadata["namespace"] = object_namespace
        if annotations:
            metadata["annotations"] = dict(annotations)
        return k8s.apiextensions.CustomResource(
            f"{self._prefix}-{suffix}",
            api_version=api_version,
            kind=kind,
            metadata=metadata,
            spec=dict(spec),
            opts=pulumi.ResourceOptions(parent=self, provider=self._k8s, depends_on=list(depends_on)),
        )

    def _certificate(self, config: GatewayConfig, cert_manager_version: str) -> str:
        """The Secret the HTTPS listener serves; with cert-manager, an ACME certificate for every service host."""
        if config.tls.mode == "provided":
            assert config.tls.provided_secret_name is not None
            return config.tls.provided_secret_name
        assert config.tls.acme_email is not None
        cert_manager = CertManager(
            f"{self._prefix}-cert-manager",
            cert_manager_version,
            provider=self._k8s,
            depends_on=[self.release],
            opts=pulumi.ResourceOptions(parent=self),
        )
        issuer = f"{GATEWAY}-acme"
        self._object(
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
                                    "parentRefs": [{**_ref("Gateway", GATEWAY, ACME_LISTENER), "namespace": NAMESPACE}],
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
            self._object(
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

    def _http_route(self, backend: GatewayBackend, depends_on: Sequence[pulumi.Resource]) -> pulumi.Resource:
        return self._object(
            f"route-{backend.name}",
            GATEWAY_API_VERSION,
            "HTTPRoute",
            backend.name,
            {
                "parentRefs": [_ref("Gateway", GATEWAY, HTTPS_LISTENER)],
                "hostnames": [self.hostnames[backend.name]],
                "rules": [
                    {
                        "backendRefs": [
                            {
                                "group": "",
                                "kind": "Service",
                                "name": backend.service,
                                "namespace": backend.namespace,
                                "port": backend.port,
                            }
                        ],
                        "timeouts": {"request": REQUEST_TIMEOUT},
                    }
                ],
            },
            depends_on=depends_on,
        )

    def _grant_backends(self, backends: Sequence[GatewayBackend], backends_ready: Sequence[pulumi.Resource]) -> None:
        """One ReferenceGrant per backend namespace, naming exactly the Services the routes reach."""
        by_namespace: dict[str, list[str]] = {}
        for backend in backends:
            by_namespace.setdefault(backend.namespace, []).append(backend.service)
        for backend_namespace, services in by_namespace.items():
            self._object(
                f"grant-{backend_namespace}",
                GATEWAY_API_VERSION,
                "ReferenceGrant",
                f"{GATEWAY}-routes",
                {
                    "from": [{"group": GATEWAY_API, "kind": "HTTPRoute", "namespace": NAMESPACE}],
                    "to": [{"group": "", "kind": "Service", "name": service} for service in sorted(set(services))],
                },
                object_namespace=backend_namespace,
                depends_on=[self.release, *backends_ready],
            )

    def _passthrough(self, config: GatewayConfig, gateway: pulumi.Resource) -> None:
        """TLSRoute to the in-cluster `kubernetes` Service, its ReferenceGrant, and the client allowlist."""
        assert self.api_server_sni is not None
        self._object(
            "grant-default",
            GATEWAY_API_VERSION,
            "ReferenceGrant",
            f"{GATEWAY}-kube-apiserver",
            {
                "from": [{"group": GATEWAY_API, "kind": "TLSRoute", "namespace": NAMESPACE}],
                "to": [{"group": "", "kind": "Service", "name": "kubernetes"}],
            },
            object_namespace="default",
            depends_on=[self.release],
        )
        self._object(
            "route-kube-apiserver",
            GATEWAY_API_VERSION,
            "TLSRoute",
            PASSTHROUGH_LISTENER,
            {
                "parentRefs": [_ref("Gateway", GATEWAY, PASSTHROUGH_LISTENER)],
                "hostnames": [self.api_server_sni],
                "rules": [
                    {
                        "backendRefs": [
                            {"group": "", "kind": "Service", "name": "kubernetes", "namespace": "default", "port": 443}
                        ]
                    }
                ],
            },
            depends_on=[gateway],
        )
        self._object(
            "kube-apiserver-allowlist",
            ENVOY_GATEWAY_VERSION,
            "SecurityPolicy",
            f"{GATEWAY}-kube-apiserver-allowlist",
            {
                # Listener-scoped: the HTTP routes keep their own authentication.
                "targetRefs": [_ref("Gateway", GATEWAY, PASSTHROUGH_LISTENER)],
                "authorization": client_allowlist(config.passthrough_allowed_cidrs),
            },
            depends_on=[gateway],
        )


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "llmops-platform", "app.kubernetes.io/component": "gateway"}
