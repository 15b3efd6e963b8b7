"""The gateway's HTTPS side: one host per exposed service (`nemo-<service>.<domain>`, `nim-<model>.<domain>`), an
HTTPRoute to its Service, the ReferenceGrants that let the routes cross namespaces, and the policies that
authenticate (API key or JWT) and rate limit every route."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pulumi

from components.config import GatewayConfig
from components.gateway_objects import (
    ENVOY_GATEWAY_VERSION,
    GATEWAY,
    GATEWAY_API_VERSION,
    HTTPS_LISTENER,
    NAMESPACE,
    GatewayObjects,
    gateway_labels,
    gateway_ref,
)
from components.kube import object_meta, secret

API_KEY_HEADER = "x-api-key"
API_KEY_SECRET = "llmops-gateway-api-keys"
# The client id the shared API key is stored under (the Secret's data key).
API_KEY_CLIENT = "platform"
# Long generations and dataset uploads outlast Envoy's 15 s default route timeout.
REQUEST_TIMEOUT = "600s"

# The NeMo microservices clients call; deployment management and the NIM proxy stay internal.
EXPOSED_NEMO_SERVICES = ("customizer", "evaluator", "data-store", "entity-store", "guardrails")


def nemo_backend_name(service: str) -> str:
    return f"nemo-{service}"


def nim_backend_name(service_name: str) -> str:
    return f"nim-{service_name}"


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
            GatewayBackend.from_url(nemo_backend_name(service), url)
            for service, url in nemo_service_urls.items()
            if service in EXPOSED_NEMO_SERVICES
        ),
        *(GatewayBackend.from_url(nim_backend_name(model), url) for model, url in nim_urls.items()),
    ]


@dataclass(frozen=True)
class NemoPublicUrls:
    """Where clients outside the GPU cluster reach the NeMo services, through the gateway."""

    customizer: str
    evaluator: str
    data_store: str
    entity_store: str
    # Only when Guardrails is enabled.
    guardrails: str | None


@dataclass(frozen=True)
class PublicUrls:
    """Where clients outside the GPU cluster reach each exposed service, through the gateway."""

    nemo: NemoPublicUrls
    # NIM service name (a model's `name` in config) -> URL.
    nim: Mapping[str, str]


def public_urls(urls: Mapping[str, str], nim_service_names: Sequence[str]) -> PublicUrls:
    """The typed view of `urls` (backend name -> URL) for backends from `exposed_backends`."""
    return PublicUrls(
        nemo=NemoPublicUrls(
            customizer=urls[nemo_backend_name("customizer")],
            evaluator=urls[nemo_backend_name("evaluator")],
            data_store=urls[nemo_backend_name("data-store")],
            entity_store=urls[nemo_backend_name("entity-store")],
            guardrails=urls.get(nemo_backend_name("guardrails")),
        ),
        nim={service_name: urls[nim_backend_name(service_name)] for service_name in nim_service_names},
    )


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


def route_backends(
    objects: GatewayObjects,
    config: GatewayConfig,
    backends: Sequence[GatewayBackend],
    hostnames: Mapping[str, str],
    *,
    gateway: pulumi.Resource,
    gateway_namespace: pulumi.Resource,
    crds: Sequence[pulumi.Resource],
    backends_ready: Sequence[pulumi.Resource],
    api_key: pulumi.Output[str] | None,
) -> None:
    """An HTTPRoute per backend at its host in `hostnames`, the grants to reach it, and the routes' protection.
    `api_key`: the key clients present, given exactly when `config.auth` is api-key (PlatformSecrets)."""
    routes = [_http_route(objects, backend, hostnames[backend.name], depends_on=[gateway]) for backend in backends]
    route_refs = [gateway_ref("HTTPRoute", backend.name) for backend in backends]
    objects.route_grants(GATEWAY, [(b.namespace, b.service) for b in backends], depends_on=[*crds, *backends_ready])

    if api_key is not None:
        secret(
            f"{objects.prefix}-api-keys",
            object_meta(API_KEY_SECRET, NAMESPACE, labels=gateway_labels()),
            # `api_key` is a secret Output (Pulumi secret config); the Secret never shows it.
            string_data={API_KEY_CLIENT: api_key},
            opts=objects.options(depends_on=[gateway_namespace]),
        )
    if routes:
        objects.custom(
            "routes-auth",
            ENVOY_GATEWAY_VERSION,
            "SecurityPolicy",
            f"{GATEWAY}-routes-auth",
            {"targetRefs": route_refs, **route_authentication(config)},
            depends_on=routes,
        )
        objects.custom(
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


def _http_route(
    objects: GatewayObjects, backend: GatewayBackend, hostname: str, depends_on: Sequence[pulumi.Resource]
) -> pulumi.Resource:
    return objects.custom(
        f"route-{backend.name}",
        GATEWAY_API_VERSION,
        "HTTPRoute",
        backend.name,
        {
            "parentRefs": [gateway_ref("Gateway", GATEWAY, HTTPS_LISTENER)],
            "hostnames": [hostname],
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
