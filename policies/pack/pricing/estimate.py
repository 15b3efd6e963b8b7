"""The estimate: every registration through its type's pricer, then the serving floor, an existing
cluster's GPUs and the fine-tuning node-hour."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..record import Registration
from ..tokens import AGENT_POOL, HELM_RELEASE, MANAGED_CLUSTER
from . import azure, claims, clusters
from .gpus import existing_cluster, fine_tuning, serving_floor
from .inputs import Pricer, priced_stack
from .prices import is_free, load_prices, region_multiplier
from .report import CostOptions, CostReport

PRICERS: dict[str, Pricer] = {
    MANAGED_CLUSTER: clusters.managed_cluster,
    AGENT_POOL: clusters.agent_pool,
    "azure-native:dbforpostgresql:Server": azure.postgres,
    "azure-native:network:PublicIPAddress": azure.hourly("publicIpStandardHour", "network", "Standard public IP"),
    "azure-native:network:PublicIPPrefix": azure.public_ip_prefix,
    "azure-native:network:LoadBalancer": azure.hourly("loadBalancerStandardHour", "network", "Standard load balancer"),
    "azure-native:network:NatGateway": azure.hourly("natGatewayHour", "network", "NAT gateway"),
    "azure-native:network:PrivateEndpoint": azure.hourly("privateEndpointHour", "network", "private endpoint"),
    "azure-native:privatedns:PrivateZone": azure.private_zone,
    "azure-native:storage:StorageAccount": azure.storage_account,
    "azure-native:operationalinsights:Workspace": azure.usage_note("log ingestion, about $2.30/GB (Analytics logs)"),
    "azure-native:app:Job": azure.usage_note("Container Apps job: vCPU- and GiB-seconds while a runner runs"),
    "kubernetes:core/v1:PersistentVolumeClaim": claims.persistent_volume_claim,
    "kubernetes:apps/v1:StatefulSet": claims.stateful_set,
    HELM_RELEASE: claims.helm_release,
}


def estimate(
    registrations: Iterable[Registration], options: CostOptions | None = None, prices: dict[str, Any] | None = None
) -> CostReport:
    options = options or CostOptions()
    prices = prices or load_prices()
    stack = priced_stack(list(registrations), prices)
    multiplier, estimated = region_multiplier(stack.region, prices)
    report = CostReport(
        currency=str(prices.get("currency", "USD")),
        prices_as_of=str(prices["pricesAsOf"]),
        region=stack.region,
        region_multiplier=multiplier,
        region_estimated=estimated,
        options=options,
    )
    not_priced: set[str] = set()
    for r in stack.resources:
        pricer = PRICERS.get(r.type)
        if pricer is not None:
            report.items += pricer(stack, r)
        elif r.type.startswith("azure-native:") and not is_free(r.type, prices):
            not_priced.add(r.type)
    floor, report.schedules = serving_floor(stack)
    report.items += floor
    report.items += existing_cluster(stack, options)
    report.fine_tuning = fine_tuning(stack)
    if estimated:
        report.notes.insert(
            0,
            f"region {stack.region!r} is not in the price table: priced at the highest multiplier ({multiplier:g}), "
            "an estimate",
        )
    report.not_priced = sorted(not_priced)
    report.problems = stack.problems
    report.notes += stack.notes
    report.usage_based = stack.usage_based
    return report
