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
from components.container_sizing import requests_limits
from components.gateway_objects import (
    ACME_LISTENER,
    GATEWAY,
    GATEWAY_API,
    GATEWAY_API_VERSION,
    HTTP_PORT,
    HTTPS_LISTENER,
    HTTPS_PORT,
    NAMESPACE,
    PASSTHROUGH_LISTENER,
    PRIVILEGED_PORT_SHIFT,
    PROXY_LABELS,
    GatewayObjects,
    gateway_ref,
)
from components.gateway_passthrough import api_server_host, pass_through_to_api_server
from components.gateway_routes import GatewayBackend, PublicUrls, exposed_backends, public_urls, route_backends
from components.helm import ChartRef, release_in_namespace
from components.network_policies import (
    FROM_ANYWHERE,
    Allow,
    IsolatedNamespace,
    NamespaceSpec,
    among_themselves,
    webhook,
)
from components.passwords import generated_password

GATEWAY_CHART = "gateway-helm"
GATEWAY_REPOSITORY = "oci://docker.io/envoyproxy"
# Envoy Gateway's chart of its CRDs and the Gateway API's, released with gateway-helm under the same version.
CRDS_CHART = "gateway-crds-helm"
GATEWAY_CLASS = "envoy-gateway"
# Named through the EnvoyProxy resource, so the address can be looked up without Envoy Gateway's generated name.
SERVICE = "llmops-gateway"
PROXY_CONFIG = "llmops-gateway-proxy"
ACME_TLS_SECRET = "llmops-gateway-tls"
# The Envoy Gateway controller's pods (xDS for the proxies, and the topology-injector admission webhook).
CONTROLLER_LABELS = {"control-plane": "envoy-gateway"}
CONTROLLER_WEBHOOK_PORT = 9443


def envoy_gateway_crds_values() -> dict[str, Any]:
    """Values for gateway-crds-helm v1.9.0 (keys from its values.yaml at envoyproxy/gateway v1.9.0): the Envoy
    Gateway CRDs and Gateway API v1.6.1 on the experimental channel (TLSRoute), which gateway-helm's own `crds/`
    held, plus the Gateway API's safe-upgrades admission policy."""
    return {"crds": {"gatewayAPI": {"enabled": True, "channel": "experimental"}, "envoyGateway": {"enabled": True}}}


def install_envoy_gateway(
    name: str,
    chart_version: str,
    values: Mapping[str, Any],
    namespace: NamespaceSpec,
    *,
    parent: pulumi.Resource,
    provider: k8s.Provider,
) -> tuple[IsolatedNamespace, k8s.helm.v4.Chart, k8s.helm.v3.Release]:
    """Envoy Gateway as two installs of one version: its CRDs, then the controller (release `name`) without them.

    Helm installs a chart's `crds/` once and never upgrades them, so a chart bump would leave the CRDs behind.
    The CRD chart is applied by Pulumi (helm.v4.Chart: rendered, then server-side applied object by object): as a
    Helm release its record (chart and manifest, about 2 MB compressed) exceeds the 1 MiB Secret Helm keeps it in
    (envoyproxy/gateway#6105), which is why upstream installs it with `helm template | kubectl apply
    --server-side`. It has no hooks, so v4's skipping of hooks loses nothing."""
    crds = k8s.helm.v4.Chart(
        f"{name}-crds",
        chart=f"{GATEWAY_REPOSITORY}/{CRDS_CHART}",
        version=chart_version,
        values=envoy_gateway_crds_values(),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
    gateway_namespace, gateway_release = release_in_namespace(
        name,
        ChartRef(GATEWAY_CHART, chart_version, GATEWAY_REPOSITORY),
        values,
        namespace,
        parent=parent,
        provider=provider,
        depends_on=[crds],
        skip_crds=True,
    )
    return gateway_namespace, crds, gateway_release


def envoy_gateway_values() -> dict[str, Any]:
    """Values for gateway-helm v1.9.0; every key exists in the chart's values (tests check it)."""
    return {
        # The CRDs come from the CRD chart (install_envoy_gateway); off, the `crds` subchart also leaves the
        # Gateway API's safe-upgrades policy, which that chart applies, alone.
        "crds": {"enabled": False},
        # Two controllers (leader-elected) and a PDB keep xDS served through node drains.
        # The chart's requests and memory limit, plus a CPU limit (the controller only computes xDS updates).
        "deployment": {"replicas": 2, "envoyGateway": {"resources": requests_limits("100m", "256Mi", "1", "1024Mi")}},
        "podDisruptionBudget": {"minAvailable": 1},
        # The certgen hook Job that writes the control plane's TLS Secrets.
        "certgen": {"job": {"resources": requests_limits("10m", "32Mi", "100m", "64Mi")}},
    }


def envoy_gateway_allows(listener_ports: Sequence[int]) -> list[Allow]:
    """Who reaches the pods of an Envoy Gateway namespace: clients reach the proxies' listener ports from anywhere
    (the load balancer keeps their address; policies on the Gateway narrow them), the proxies reach the controller
    and each other, and the kube-apiserver calls the controller's webhook."""
    return [
        Allow("clients", PROXY_LABELS, FROM_ANYWHERE, [port + PRIVILEGED_PORT_SHIFT for port in listener_ports]),
        among_themselves(),
        webhook(CONTROLLER_LABELS, CONTROLLER_WEBHOOK_PORT),
    ]


def gateway_network_allows(config: GatewayConfig) -> list[Allow]:
    """The GPU gateway's: its HTTPS port and, with ACME, port 80 (the proxies reach cert-manager's solver pods in
    this namespace during challenges, among themselves)."""
    return envoy_gateway_allows([HTTPS_PORT, HTTP_PORT] if config.tls.mode == "cert-manager" else [HTTPS_PORT])


def load_balancer_service(name: str, annotations: Mapping[str, pulumi.Input[str]] | None) -> dict[str, Any]:
    """`envoyService` of an EnvoyProxy: a LoadBalancer named `name`; `Local` keeps the client's source address,
    which the allowlists match on."""
    service: dict[str, Any] = {"name": name, "type": "LoadBalancer", "externalTrafficPolicy": "Local"}
    if annotations:
        service["annotations"] = dict(annotations)
    return service


def same_namespace_routes(kind: str) -> dict[str, Any]:
    # Routes live next to the Gateway: exposing a service is a change here, never in a workload namespace.
    return {"namespaces": {"from": "Same"}, "kinds": [{"group": GATEWAY_API, "kind": kind}]}


def https_listener(name: str, hostname: str, tls_secret: str) -> dict[str, Any]:
    """A listener terminating TLS for `hostname` with the certificate in Secret `tls_secret`, for HTTPRoutes."""
    return {
        "name": name,
        "protocol": "HTTPS",
        "port": HTTPS_PORT,
        "hostname": hostname,
        "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": tls_secret}]},
        "allowedRoutes": same_namespace_routes("HTTPRoute"),
    }


def gateway_listeners(
    config: GatewayConfig, tls_secret: str, api_server_sni: pulumi.Input[str] | None
) -> list[dict[str, Any]]:
    wildcard = f"*.{config.domain}"
    listeners = [https_listener(HTTPS_LISTENER, wildcard, tls_secret)]
    if config.tls.mode == "cert-manager":
        # Plain HTTP carries only the ACME HTTP-01 challenge routes cert-manager adds; nothing else attaches.
        listeners.append(
            {
                "name": ACME_LISTENER,
                "protocol": "HTTP",
                "port": HTTP_PORT,
                "hostname": wildcard,
                "allowedRoutes": same_namespace_routes("HTTPRoute"),
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
                "allowedRoutes": same_namespace_routes("TLSRoute"),
            }
        )
    return listeners


def service_hostnames(config: GatewayConfig, backends: Sequence[GatewayBackend]) -> dict[str, str]:
    """Each exposed backend's host, `<backend>.<domain>`."""
    return {backend.name: f"{backend.name}.{config.domain}" for backend in backends}


def gateway_hostnames(
    config: GatewayConfig, nemo_service_urls: Mapping[str, str], nim_urls: Mapping[str, str]
) -> list[str]:
    """Every name clients dial the gateway at (DNS points each at its address): the service hosts and, with the
    passthrough, the kube-apiserver's."""
    hosts = list(service_hostnames(config, exposed_backends(nemo_service_urls, nim_urls)).values())
    return [*hosts, config.api_server_hostname] if config.passthrough else hosts


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
    crds: k8s.helm.v4.Chart
    api_key: pulumi.Output[str] | None

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
        passthrough_clients: pulumi.Input[str] | None = None,
        backends_ready: Sequence[pulumi.Resource] = (),
        service_annotations: Mapping[str, pulumi.Input[str]] | None = None,
        service_ready: Sequence[pulumi.Resource] = (),
        certificate_after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`service_annotations`: on the LoadBalancer Service (a static public IP), usable once `service_ready` exist.
        `certificate_after`: what must exist before an ACME order can succeed (the hosts' DNS records).
        `nemo_service_urls`, `nim_urls`: in-cluster URLs by NeMo service and by NIM service name.
        `api_endpoint`: the GPU cluster's kube-apiserver URL, whose host name its certificate carries.
        `passthrough_clients`: the management cluster's egress prefix, which the passthrough admits besides
        `config.passthrough_allowed_cidrs`.
        `api_key`: the configured key clients present when `config.auth` is api-key; None generates one there
        (the `api_key` attribute, for the clients).
        `backends_ready`: what creates the backends' namespaces (the ReferenceGrants live there)."""
        super().__init__("llmops:gateway:EnvoyGateway", name, None, opts)
        backends = exposed_backends(nemo_service_urls, nim_urls)
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ValueError(f"gateway backends need unique names (got {names})")
        objects = GatewayObjects(name, self, provider)
        self._objects = objects
        self.hostnames = service_hostnames(config, backends)
        self.urls = {backend: f"https://{host}" for backend, host in self.hostnames.items()}
        self.public_urls = public_urls(self.urls, list(nim_urls))
        self.service_name = f"{NAMESPACE}/{SERVICE}"
        self.api_key = None
        if config.auth == "api-key":
            # Letters and digits only: it travels in an HTTP header.
            self.api_key = api_key or generated_password(f"{name}-api-key", self, special=False)

        ns, self.crds, self.release = install_envoy_gateway(
            "envoy-gateway",
            chart_version,
            envoy_gateway_values(),
            NamespaceSpec(NAMESPACE, "restricted", gateway_network_allows(config), name),
            parent=self,
            provider=provider,
        )
        crds = [self.release]

        tls_secret = self._certificate(config, cert_manager_version, certificate_after)

        envoy_service = load_balancer_service(SERVICE, service_annotations)
        proxy = objects.envoy_proxy(PROXY_CONFIG, envoy_service, [*crds, *service_ready])
        gateway_class = objects.gateway_class(GATEWAY_CLASS, PROXY_CONFIG, proxy, crds)

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
            gateway_namespace=ns.namespace,
            crds=crds,
            backends_ready=backends_ready,
            api_key=self.api_key,
        )
        if self.api_server_sni is not None:
            pass_through_to_api_server(
                objects,
                api_server_sni=self.api_server_sni,
                allowed_cidrs=pulumi.Output.from_input(passthrough_clients).apply(
                    lambda egress: [*([egress] if egress else []), *config.passthrough_allowed_cidrs]
                ),
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

    def _certificate(
        self, config: GatewayConfig, cert_manager_version: str, certificate_after: Sequence[pulumi.Resource]
    ) -> str:
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
                # Issuance completes only once DNS points the hosts at the gateway and the gateway answers there;
                # waiting for Ready here would fail the first `pulumi up`. With llmops:dns the records come first.
                annotations={"pulumi.com/skipAwait": "true"},
                depends_on=[cert_manager.release, *certificate_after],
            )
        return ACME_TLS_SECRET
