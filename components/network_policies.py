"""Ingress NetworkPolicies for a namespace this program creates: deny every connection into its pods, then allow
exactly the callers its workloads have, from a declarative list of `Allow`s. `NamespaceSpec.create` makes the
namespace and its policies together; what starts pods there waits for them (`IsolatedNamespace.ready`, checked by
the pack's `releases-wait-for-network-policies`).

Both clusters run Cilium, which enforces `networking.k8s.io/v1` NetworkPolicy. Two of its behaviours shape the
allows here:
- Cilium gives nodes, and the AKS kube-apiserver calling an admission webhook, the `remote-node`/`host` identity,
  which an `ipBlock` does not match (cilium/cilium#20550, #31711). So callers from outside the pod network
  (webhook calls, LoadBalancer clients) are allowed by port alone (`FROM_ANYWHERE`), never by CIDR.
- A policy whose types include Egress isolates its pods for egress: an "allow DNS" egress policy on its own would
  cut every other connection (NGC downloads, Entra tokens, Azure Blob, the kube-apiserver). Egress is therefore
  not isolated: every policy here is Ingress-only, and DNS keeps working because egress stays open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PodSecurityLevel, namespace, object_meta, platform_labels

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_DENY = "default-deny-ingress"
ALLOW_PREFIX = "allow-"


@dataclass(frozen=True)
class Peer:
    """Pods that may connect: those matching `pods` (every pod when empty) in `namespace` (the policy's own
    namespace when None; every namespace when `any_namespace`)."""

    namespace: pulumi.Input[str] | None = None
    pods: Mapping[str, str] = field(default_factory=dict)
    any_namespace: bool = False

    def args(self) -> k8s.networking.v1.NetworkPolicyPeerArgs:
        namespace_selector = None
        if self.any_namespace:
            namespace_selector = k8s.meta.v1.LabelSelectorArgs()
        elif self.namespace is not None:
            namespace_selector = k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: self.namespace})
        return k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=namespace_selector,
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(self.pods) or None),
        )


# Every pod of the namespace the policy is in.
SAME_NAMESPACE = Peer()
# Every pod of the cluster (a Prometheus whose namespace this program does not know).
ANY_POD = Peer(any_namespace=True)
# No `from`: any source at all, pods, nodes, the kube-apiserver and clients outside the cluster.
FROM_ANYWHERE: tuple[Peer, ...] = ()


@dataclass(frozen=True)
class Allow:
    """Connections `peers` may open to the pods matching `pods` (every pod of the namespace when empty) on TCP
    `ports` (any port when empty). `peers` empty (`FROM_ANYWHERE`) admits every source."""

    name: str
    pods: Mapping[str, str]
    peers: Sequence[Peer]
    ports: Sequence[int] = ()

    def __post_init__(self) -> None:
        if not self.peers and not self.ports:
            raise ValueError(f"allow {self.name!r} admits every source: name the ports it is for")

    def spec(self) -> k8s.networking.v1.NetworkPolicySpecArgs:
        rule = k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[peer.args() for peer in self.peers] or None,
            ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP") for port in self.ports] or None,
        )
        return k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(self.pods) or None),
            policy_types=["Ingress"],
            ingress=[rule],
        )


def among_themselves(name: str = "same-namespace") -> Allow:
    """The namespace's pods may reach each other on any port (a chart's components and its database)."""
    return Allow(name, {}, [SAME_NAMESPACE])


def metrics_scraping(pods: Mapping[str, str], ports: Sequence[int], name: str = "metrics") -> Allow:
    """Prometheus, wherever it runs in the cluster, may scrape `ports`."""
    return Allow(name, pods, [ANY_POD], ports)


def webhook(pods: Mapping[str, str], port: int) -> Allow:
    """The kube-apiserver may call an admission webhook served on `port` (see the module docstring)."""
    return Allow("webhook", pods, FROM_ANYWHERE, [port])


@dataclass(frozen=True)
class IsolatedNamespace:
    """A created namespace and its ingress policies. Whatever starts pods in it depends on `ready`, so no pod runs
    before the policies that admit its callers (or before the deny that shuts out everyone else)."""

    namespace: k8s.core.v1.Namespace
    policies: list[k8s.networking.v1.NetworkPolicy]

    @property
    def name(self) -> pulumi.Output[str]:
        return self.namespace.metadata.name

    @property
    def ready(self) -> list[pulumi.Resource]:
        return [self.namespace, *self.policies]


@dataclass(frozen=True)
class NamespaceSpec:
    """A namespace the component `component` creates: its name, Pod Security level and the callers its pods admit.
    Pulumi names: the Namespace `<component>-<resource_suffix>`, its policies `<component>-default-deny-ingress`
    and `<component>-allow-<allow>`."""

    name: str
    pod_security: PodSecurityLevel
    allows: Sequence[Allow]
    component: str
    resource_suffix: str = "ns"

    def create(self, *, parent: pulumi.Resource, provider: k8s.Provider) -> IsolatedNamespace:
        """The namespace enforcing `pod_security`, `default-deny-ingress` for every pod in it, and an
        `allow-<name>` policy per allow (allows are additive)."""
        names = [allow.name for allow in self.allows]
        if len(set(names)) != len(names):
            raise ValueError(f"network policy allows of {self.component} need unique names (got {names})")
        created = namespace(
            self.name,
            pod_security=self.pod_security,
            parent=parent,
            provider=provider,
            resource_name=f"{self.component}-{self.resource_suffix}",
        )
        return IsolatedNamespace(created, _ingress_policies(self.component, created, self.allows, parent, provider))


def _ingress_policies(
    component_name: str,
    namespace: k8s.core.v1.Namespace,
    allows: Sequence[Allow],
    parent: pulumi.Resource,
    provider: k8s.Provider,
) -> list[k8s.networking.v1.NetworkPolicy]:
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    labels = platform_labels("network-policy")
    policies = [
        k8s.networking.v1.NetworkPolicy(
            f"{component_name}-{DEFAULT_DENY}",
            metadata=object_meta(DEFAULT_DENY, namespace.metadata.name, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
            ),
            opts=opts,
        )
    ]
    for allow in allows:
        policies.append(
            k8s.networking.v1.NetworkPolicy(
                f"{component_name}-{ALLOW_PREFIX}{allow.name}",
                metadata=object_meta(f"{ALLOW_PREFIX}{allow.name}", namespace.metadata.name, labels=labels),
                spec=allow.spec(),
                opts=opts,
            )
        )
    return policies
