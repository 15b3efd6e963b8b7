"""The gateway's TLS passthrough to the kube-apiserver, for ArgoCD on the management cluster.

The listener matches the SNI the apiserver's own certificate is issued for (the AKS FQDN, or the existing cluster's
API host), so the TLS session runs end to end from ArgoCD to the apiserver with full certificate verification;
clients reach the gateway by another name (`k8s.<domain>`) and set that SNI as `tlsServerName`. On AKS the SNI also
selects the control plane behind the shared front end. Only allowlisted client CIDRs get through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import pulumi

from components.gateway_objects import (
    ENVOY_GATEWAY_VERSION,
    GATEWAY,
    GATEWAY_API,
    GATEWAY_API_VERSION,
    NAMESPACE,
    PASSTHROUGH_LISTENER,
    GatewayObjects,
    gateway_ref,
)


def client_allowlist(cidrs: pulumi.Input[Sequence[str]]) -> dict[str, Any]:
    """Deny by default, allow the listed client CIDRs: on a TLS listener Envoy Gateway enforces this with the
    network RBAC filter on the client's source address (clientCIDRs is the only principal it accepts there)."""
    return {
        "defaultAction": "Deny",
        "rules": [{"name": "allowlisted-clients", "action": "Allow", "principal": {"clientCIDRs": cidrs}}],
    }


def api_server_host(api_endpoint: pulumi.Input[str]) -> pulumi.Output[str]:
    """`aks-x.hcp.westeurope.azmk8s.io` from `https://aks-x.hcp.westeurope.azmk8s.io:443`."""
    return pulumi.Output.from_input(api_endpoint).apply(lambda url: urlparse(url).hostname or url)


def pass_through_to_api_server(
    objects: GatewayObjects,
    *,
    api_server_sni: pulumi.Input[str],
    allowed_cidrs: pulumi.Input[Sequence[str]],
    gateway: pulumi.Resource,
    crds: Sequence[pulumi.Resource],
) -> None:
    """The client allowlist, then the TLSRoute to the in-cluster `kubernetes` Service and its ReferenceGrant: the
    route is only created once the policy that restricts it exists (Envoy Gateway would pass every client through
    a route without one). `allowed_cidrs` may be an Output, e.g. the management cluster's egress prefix."""
    allowlist = objects.custom(
        "kube-apiserver-allowlist",
        ENVOY_GATEWAY_VERSION,
        "SecurityPolicy",
        f"{GATEWAY}-kube-apiserver-allowlist",
        {
            # Listener-scoped: the HTTP routes keep their own authentication.
            "targetRefs": [gateway_ref("Gateway", GATEWAY, PASSTHROUGH_LISTENER)],
            "authorization": client_allowlist(allowed_cidrs),
        },
        depends_on=[gateway],
    )
    objects.custom(
        "grant-default",
        GATEWAY_API_VERSION,
        "ReferenceGrant",
        f"{GATEWAY}-kube-apiserver",
        {
            "from": [{"group": GATEWAY_API, "kind": "TLSRoute", "namespace": NAMESPACE}],
            "to": [{"group": "", "kind": "Service", "name": "kubernetes"}],
        },
        object_namespace="default",
        depends_on=crds,
    )
    objects.custom(
        "route-kube-apiserver",
        GATEWAY_API_VERSION,
        "TLSRoute",
        PASSTHROUGH_LISTENER,
        {
            "parentRefs": [gateway_ref("Gateway", GATEWAY, PASSTHROUGH_LISTENER)],
            "hostnames": [api_server_sni],
            "rules": [
                {
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": "kubernetes", "namespace": "default", "port": 443}
                    ]
                }
            ],
        },
        depends_on=[gateway, allowlist],
    )
