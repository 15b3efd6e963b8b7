"""One way to install a Helm chart: a pinned, atomic `helm.v3.Release`.

`Release` (not the v4 `Chart`) because the charts we install rely on hooks: Argo Workflows installs
its CRDs with a hook Job and the GPU Operator cleans up with one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.network_policies import IsolatedNamespace, NamespaceSpec


@dataclass(frozen=True)
class ChartRef:
    chart: str
    version: str
    repository: str


def release(
    name: str,
    chart: ChartRef,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    *,
    parent: pulumi.Resource,
    provider: k8s.Provider,
    timeout_seconds: int = 900,
    depends_on: Sequence[pulumi.Resource] = (),
    repository_credentials: k8s.helm.v3.RepositoryOptsArgs | None = None,
    protect: bool = False,
    skip_crds: bool = False,
) -> k8s.helm.v3.Release:
    """A release named `name` (also the Helm release name, so in-cluster service names are stable).

    An `oci://` repository is a registry path: Helm pulls `<repository>/<chart>` and takes no repository options.
    `skip_crds`: leave out the chart's `crds/` (Helm installs them once and never upgrades them), for a chart
    whose CRDs come from elsewhere.
    """
    oci = chart.repository.startswith("oci://")
    repository_opts = repository_credentials or (None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository))
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=f"{chart.repository}/{chart.chart}" if oci else chart.chart,
        version=chart.version,
        repository_opts=repository_opts,
        namespace=namespace,
        values=dict(values),
        atomic=True,
        cleanup_on_fail=True,
        timeout=timeout_seconds,
        skip_crds=skip_crds or None,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on), protect=protect),
    )


def release_in_namespace(
    name: str,
    chart: ChartRef,
    values: Mapping[str, Any],
    namespace: NamespaceSpec,
    *,
    parent: pulumi.Resource,
    provider: k8s.Provider,
    timeout_seconds: int = 900,
    depends_on: Sequence[pulumi.Resource] = (),
    skip_crds: bool = False,
) -> tuple[IsolatedNamespace, k8s.helm.v3.Release]:
    """A chart in a namespace of its own (`namespace`): the namespace with its policies, then the release in it."""
    chart_namespace = namespace.create(parent=parent, provider=provider)
    chart_release = release(
        name,
        chart,
        chart_namespace.name,
        values,
        parent=parent,
        provider=provider,
        timeout_seconds=timeout_seconds,
        depends_on=[*chart_namespace.ready, *depends_on],
        skip_crds=skip_crds,
    )
    return chart_namespace, chart_release
