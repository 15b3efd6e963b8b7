"""The plan report: monthly cost and the budget policy, the deployment critical path, the picture, and
the credential-free plan diff."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc
from support.plans import STACKS, Plan

from planner import cost, critical_path, diff, digests, graph, revisions
from planner.policy_runner import run_policies
from planner.render import plan_document, summary
from planner.values import SECRET
from policies.pack.cost import POLICY_NAME, monthly_cost_within_budget, options_from, policy_config
from policies.pack.gpu_sizes import GPU_SKUS
from policies.pack.pricing.estimate import estimate
from policies.pack.pricing.inputs import quantity_gib
from policies.pack.pricing.prices import load_prices
from policies.pack.pricing.report import CostOptions
from policies.pack.record import Registration

ROOT = Path(__file__).resolve().parent.parent
STACK_URN = "urn:pulumi:t::p::pulumi:pulumi:Stack::p-t"
CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"


def reg(
    name: str,
    type_: str,
    inputs: dict[str, Any] | None = None,
    deps: tuple[Registration, ...] = (),
    provider: Registration | None = None,
    parent: Registration | None = None,
) -> Registration:
    custom = not type_.startswith("llmops:")
    return Registration(
        urn=f"urn:pulumi:t::p::{type_}::{name}",
        type=type_,
        name=name,
        parent=parent.urn if parent else STACK_URN,
        provider=provider.urn if provider else "",
        dependencies=[d.urn for d in deps],
        property_dependencies={},
        protect=False,
        ignore_changes=[],
        custom=custom,
        inputs=inputs or {},
    )


# A small price table, so the arithmetic below does not move when list prices are refreshed.
PRICES: dict[str, Any] = {
    "currency": "USD",
    "pricesAsOf": "test",
    "hoursPerMonth": 730,
    "baseRegion": "eastus",
    "regions": {"eastus": 1.0, "westeurope": 1.5},
    "vmHour": {"Standard_D4ds_v5": 0.2, "Standard_NC24ads_A100_v4": 4.0},
    "spot": {"discount": 0.75},
    "managedDisks": {
        "Premium_LRS": [{"tier": "P10", "gib": 128, "month": 20.0}, {"tier": "P20", "gib": 512, "month": 70.0}],
        "StandardSSD_LRS": [{"tier": "E10", "gib": 128, "month": 10.0}],
    },
    "aksTierHour": {"Free": 0.0, "Standard": 0.1},
    "postgresFlexible": {"computeHour": {"Standard_D2ds_v5": 0.2}, "storageGbMonth": 0.1, "highAvailabilityFactor": 2},
    "network": {
        "loadBalancerStandardHour": 0.02,
        "publicIpStandardHour": 0.01,
        "natGatewayHour": 0.05,
        "privateEndpointHour": 0.01,
        "privateDnsZoneMonth": 0.5,
    },
    "storage": {
        "blobHotGbMonth": {"Standard_LRS": 0.02},
        "filesPremiumGibMonth": 0.2,
        "filesPremiumMinGib": 100,
        "filesStandardGibMonth": 0.06,
    },
    "aksStorageClasses": {"default": {"kind": "disk", "sku": "StandardSSD_LRS"}},
    "helmVolumes": {
        "nim-llm": [
            {
                "path": "persistence",
                "enabled": "enabled",
                "enabledDefault": False,
                "size": "size",
                "sizeDefault": "50Gi",
                "storageClass": "storageClass",
                "perReplicaWhen": "statefulSet.enabled",
                "perReplicaDefault": True,
            }
        ]
    },
    "freeTypes": ["pulumi:", "llmops:", "kubernetes:", "azure-native:resources:ResourceGroup"],
}


def pool_inputs(vm_size: str, low: int, high: int, disk: int = 128, **extra: Any) -> dict[str, Any]:
    return {
        "vmSize": vm_size,
        "enableAutoScaling": True,
        "count": low,
        "minCount": low,
        "maxCount": high,
        "osDiskSizeGB": disk,
        "osDiskType": "Managed",
        **extra,
    }


def small_stack(location: str = "eastus", spot_max_price: float = -1) -> dict[str, Registration]:
    cluster = reg(
        "c-cluster",
        CLUSTER,
        {
            "location": location,
            "sku": {"name": "Base", "tier": "Standard"},
            "networkProfile": {"outboundType": "loadBalancer"},
            "agentPoolProfiles": [{"name": "system", **pool_inputs("Standard_D4ds_v5", 1, 2)}],
        },
    )
    gpu = reg("c-gpu", POOL, pool_inputs("Standard_NC24ads_A100_v4", 0, 2, disk=512), deps=(cluster,))
    spot = reg(
        "c-spot",
        POOL,
        pool_inputs("Standard_NC24ads_A100_v4", 0, 2, disk=512, scaleSetPriority="Spot", spotMaxPrice=spot_max_price),
        deps=(cluster,),
    )
    database = reg(
        "c-db",
        "azure-native:dbforpostgresql:Server",
        {
            "location": location,
            "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
            "storage": {"storageSizeGB": 64},
            "highAvailability": {"mode": "ZoneRedundant"},
        },
    )
    group = reg("c-rg", "azure-native:resources:ResourceGroup", {"location": location})
    return {"cluster": cluster, "gpu": gpu, "spot": spot, "db": database, "rg": group}


# ------------------------------------------------------------------------------------------------------
# Cost
# ------------------------------------------------------------------------------------------------------


def test_cost_arithmetic_on_hand_built_registrations() -> None:
    report = estimate(small_stack().values(), prices=PRICES)
    by_name = {i.name: i for i in report.items}
    assert by_name["c-cluster control plane"].idle == pytest.approx(0.1 * 730)
    assert by_name["c-cluster outbound"].idle == pytest.approx(0.03 * 730)
    system = by_name["c-cluster/system"]
    assert (system.idle, system.peak) == (pytest.approx(0.2 * 730 + 20), pytest.approx(2 * (0.2 * 730 + 20)))
    gpu = by_name["c-gpu"]
    assert (gpu.idle, gpu.peak) == (0, pytest.approx(2 * (4.0 * 730 + 70)))
    spot = by_name["c-spot"]
    assert spot.peak == pytest.approx(2 * (4.0 * 0.25 * 730 + 70)), "spot discount on the VM, not on the OS disk"
    assert by_name["c-db"].idle == pytest.approx((0.2 * 730 + 64 * 0.1) * 2), "HA standby doubles the server"
    assert report.monthly("idle") == pytest.approx(73 + 21.9 + 166 + 304.8, abs=0.01)
    assert report.monthly("peak") == pytest.approx(73 + 21.9 + 332 + 5980 + 1600 + 304.8, abs=0.01)
    assert report.monthly("serving") == report.monthly("idle")
    assert report.region == "eastus" and not report.region_estimated
    assert not report.problems and not report.not_priced
    training = report.fine_tuning
    assert training is not None and training.spot and training.pool == "c-spot"
    assert training.node_hour == pytest.approx(4.0 * 0.25 + 70 / 730)
    assert training.gpu_hour == pytest.approx(training.node_hour / GPU_SKUS["Standard_NC24ads_A100_v4"].gpus)
    assert training.on_demand_node_hour == pytest.approx(4.0 + 70 / 730)


def test_spot_max_price_caps_the_spot_estimate() -> None:
    report = estimate(small_stack(spot_max_price=0.5).values(), prices=PRICES)
    spot = next(i for i in report.items if i.name == "c-spot")
    assert spot.peak == pytest.approx(2 * (0.5 * 730 + 70))


def test_region_multiplier_applies_and_an_unknown_region_is_a_flagged_estimate() -> None:
    europe = estimate(small_stack("westeurope").values(), prices=PRICES)
    base = estimate(small_stack().values(), prices=PRICES)
    assert europe.region == "westeurope" and europe.region_multiplier == 1.5
    pool = next(i for i in europe.items if i.name == "c-gpu")
    assert pool.peak == pytest.approx(1.5 * next(i for i in base.items if i.name == "c-gpu").peak)
    mars = estimate(small_stack("marsnorth").values(), prices=PRICES)
    assert mars.region_estimated and mars.region_multiplier == 1.5
    assert "marsnorth" in mars.notes[0] and "estimate" in mars.notes[0]
    assert any("estimate" in line for line in cost.summary_lines(mars))


def test_a_size_missing_from_the_table_is_a_problem_not_a_zero() -> None:
    parts = small_stack()
    unknown = reg("c-new", POOL, pool_inputs("Standard_NC999_Z1", 1, 1), deps=(parts["cluster"],))
    report = estimate([*parts.values(), unknown], prices=PRICES)
    assert any("Standard_NC999_Z1" in p for p in report.problems)


def test_unpriced_azure_types_are_listed_for_review() -> None:
    odd = reg("c-odd", "azure-native:cdn:Profile", {"location": "eastus"})
    assert estimate([odd], prices=PRICES).not_priced == ["azure-native:cdn:Profile"]


def test_model_servers_raise_the_serving_floor_and_their_volumes_scale_with_replicas() -> None:
    parts = small_stack()
    provider = reg("c-k8s", PROVIDER, deps=(parts["cluster"], parts["gpu"]))
    fast = reg(
        "c-fast",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        {"metadata": {"name": "fast"}, "provisioner": "disk.csi.azure.com", "parameters": {"skuName": "Premium_LRS"}},
        provider=provider,
    )
    nim = reg(
        "nim",
        RELEASE,
        {
            "chart": "nim-llm",
            "name": "llama",
            "values": {
                "resources": {"limits": {"nvidia.com/gpu": 1}},
                "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
                "persistence": {"enabled": True, "size": "32Gi", "storageClass": "fast"},
            },
        },
        provider=provider,
    )
    report = estimate([*parts.values(), provider, fast, nim], prices=PRICES)
    volume = next(i for i in report.items if i.name == "llama persistence")
    assert (volume.idle, volume.peak) == (20.0, 60.0), "one P10 per replica, 1 to 3 replicas"
    floor = next(i for i in report.items if i.name.endswith("serving floor"))
    assert floor.serving == pytest.approx(4.0 * 730 + 70) and floor.idle == floor.peak == 0
    assert report.monthly("serving") == pytest.approx(report.monthly("idle") + floor.serving)


def test_an_existing_cluster_is_not_billed_through_azure_unless_a_rate_is_configured() -> None:
    provider = reg("dgx-k8s", PROVIDER, {"kubeconfig": SECRET})
    claim = reg(
        "cache",
        "kubernetes:core/v1:PersistentVolumeClaim",
        {"spec": {"resources": {"requests": {"storage": "1Ti"}}, "storageClassName": "dgxc-enterprise-file"}},
        provider=provider,
    )
    report = estimate([provider, claim], prices=PRICES)
    assert report.items == [] and any("dgx" in n and "not billed through Azure" in n for n in report.notes)
    contracted = estimate([provider, claim], CostOptions(external_gpus=8, external_gpu_hour_usd=2.0), prices=PRICES)
    assert contracted.monthly("idle") == contracted.monthly("peak") == pytest.approx(8 * 2.0 * 730)


def test_quantities() -> None:
    assert quantity_gib("100Gi") == 100
    assert quantity_gib("2Ti") == 2048
    assert quantity_gib("500G") == pytest.approx(465.66, abs=0.01)
    assert quantity_gib("lots") is None


def _stack_vm_sizes(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    vm_sizes: set[str] = set()
    databases: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key == "vmSize":
            vm_sizes.add(str(node))
        elif key == "postgresSku":
            databases.add(str(node))

    walk(document)
    return vm_sizes, databases


def test_the_price_table_covers_every_gpu_size_and_every_size_the_stacks_use() -> None:
    prices = load_prices()
    assert set(GPU_SKUS) <= set(prices["vmHour"])
    assert {"eastus", "westeurope"} <= set(prices["regions"])
    for stack in STACKS:
        config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
        vm_sizes, databases = _stack_vm_sizes(config)
        assert vm_sizes <= set(prices["vmHour"]), stack
        assert databases <= set(prices["postgresFlexible"]["computeHour"]), stack
    assert prices["pricesAsOf"] and "refresh" in prices["refresh"].lower()
    for field in ("retailPricesApi", "virtualMachines", "managedDisks"):
        assert prices["sources"][field].startswith("https://")


def test_dev_cost_from_the_shipped_stack(dev: Plan) -> None:
    report = estimate(dev.registrations)
    assert report.region == "westeurope" and not report.problems and not report.not_priced
    assert 0 < report.monthly("idle") < report.monthly("serving") <= report.monthly("peak")
    pools = {r.name for r in dev.of_type(POOL)}
    assert pools <= {i.name for i in report.items}
    gpu_idle = sum(i.idle for i in report.items if i.category == "gpu")
    assert gpu_idle == 0, "dev's GPU pools scale from zero"
    training = report.fine_tuning
    assert training is not None and training.spot and training.vm_size == "Standard_NC24ads_A100_v4"
    assert training.node_hour < training.on_demand_node_hour
    document = report.to_json()
    assert set(document["monthly"]) == {"idle", "serving", "peak"}
    assert document["fineTuningGpuHour"]["gpuHourUsd"] == pytest.approx(training.gpu_hour, abs=1e-3)


def test_prod_prices_only_azure_and_notes_the_existing_gpu_cluster(prod: Plan) -> None:
    report = estimate(prod.registrations)
    assert report.fine_tuning is None
    assert not [i for i in report.items if i.category == "gpu"]
    assert any("existing cluster" in n for n in report.notes)
    assert report.monthly("idle") > 0


def test_every_shipped_stack_is_within_its_budget(any_stack: Plan) -> None:
    options = cost.options_from_stack_config(
        yaml.safe_load((ROOT / "stacks" / f"Pulumi.{any_stack.evaluation.stack}.yaml").read_text())["config"]
    )
    assert options.monthly_limit_usd is not None
    report = estimate(any_stack.registrations, options)
    assert not report.budget_exceeded, cost.summary_lines(report)[:3]


# ------------------------------------------------------------------------------------------------------
# Budget policy
# ------------------------------------------------------------------------------------------------------


def _budget_verdicts(plan: Plan, limit: float | None) -> list[Any]:
    config = policy_config(CostOptions(monthly_limit_usd=limit)) if limit else {}
    return run_policies(plan.registrations, [monthly_cost_within_budget], config=config)


def test_budget_policy_reports_a_stack_over_budget(dev: Plan) -> None:
    verdicts = _budget_verdicts(dev, 500)
    assert len(verdicts) == 1
    verdict = verdicts[0]
    assert verdict.policy == POLICY_NAME and verdict.enforcement == "mandatory"
    assert "exceeds the budget of $500" in verdict.message and "peak" in verdict.message


def test_budget_policy_passes_a_stack_within_budget_and_skips_one_without(dev: Plan) -> None:
    assert _budget_verdicts(dev, 1_000_000) == []
    assert _budget_verdicts(dev, None) == []


def test_budget_policy_config_round_trips_the_stack_budget() -> None:
    options = CostOptions(monthly_limit_usd=1234.0, measure="serving", external_gpus=64, external_gpu_hour_usd=3.5)
    assert options_from(policy_config(options)[POLICY_NAME]) == options
    schema = monthly_cost_within_budget.config_schema
    assert schema is not None and set(policy_config(options)[POLICY_NAME]) == set(schema.properties)


# ------------------------------------------------------------------------------------------------------
# Critical path
# ------------------------------------------------------------------------------------------------------

DURATIONS: dict[str, Any] = {
    "componentSeconds": 0,
    "providerSeconds": 0,
    "defaultSeconds": 1,
    "byType": {f"t:x:{k}": {"seconds": v} for k, v in {"A": 10, "B": 20, "C": 50, "D": 5}.items()},
    "byTypePrefix": {"kubernetes:": {"seconds": 2}},
    "agentPool": {"cpuSeconds": 240, "gpuSeconds": 360},
    "helmCharts": {"defaultSeconds": 100, "charts": {"nim-llm": {"seconds": 1200}}},
}


def test_critical_path_on_a_small_graph() -> None:
    a = reg("a", "t:x:A")
    b = reg("b", "t:x:B", deps=(a,))
    group = reg("group", "llmops:test:Group")
    c = reg("c", "t:x:C", deps=(a,), parent=group)
    d = reg("d", "t:x:D", deps=(b, group))  # depending on a component waits for what is inside it
    provider = reg("k8s", PROVIDER, deps=(b,))
    namespace = reg("ns", "kubernetes:core/v1:Namespace", provider=provider)
    release = reg("nim", RELEASE, {"chart": "oci://nvcr.io/nim-llm"}, deps=(namespace,), provider=provider)
    path = critical_path.analyse([a, b, group, c, d, provider, namespace, release], DURATIONS)
    assert [s.name for s in path.path] == ["a", "b", "k8s", "ns", "nim"]
    assert path.seconds == 10 + 20 + 0 + 2 + 1200
    assert path.sum_seconds == 10 + 20 + 50 + 5 + 0 + 2 + 1200
    assert path.parallelism == round(path.sum_seconds / path.seconds, 2)
    assert path.finish[d.urn] == 65, "d starts when the component's c is done"
    document = path.to_json()
    assert set(document) >= {"seconds", "path", "sumSeconds", "parallelism"}
    assert document["path"][0]["urn"] == a.urn


def test_durations_by_kind() -> None:
    cpu = reg("p", POOL, {"vmSize": "Standard_D8ds_v5"})
    gpu = reg("g", POOL, {"vmSize": "Standard_NC40ads_H100_v5"})
    nim = reg("n", RELEASE, {"chart": "nim-llm"})
    other = reg("o", RELEASE, {"chart": "something-else"})
    cr = reg("w", "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate")
    table = critical_path.load_durations()
    assert critical_path.duration_of(cpu) == table["agentPool"]["cpuSeconds"] == 240
    assert critical_path.duration_of(gpu) == table["agentPool"]["gpuSeconds"] == 360
    assert critical_path.duration_of(nim) == 1200
    assert critical_path.duration_of(other) == table["helmCharts"]["defaultSeconds"]
    assert critical_path.duration_of(cr) <= 5
    assert critical_path.duration_of(reg("m", CLUSTER)) == 480


def test_critical_path_of_the_shipped_stacks(any_stack: Plan) -> None:
    path = critical_path.analyse(any_stack.registrations)
    assert 0 < path.seconds <= path.sum_seconds and path.parallelism >= 1
    for before, after in zip(path.path, path.path[1:], strict=False):
        assert after.start == before.finish
    assert path.path[-1].finish == path.seconds
    kinds = {s.type for s in path.path}
    assert RELEASE in kinds, "the model servers' Helm releases are the long pole"
    if any_stack.of_type(POOL) and any(p.inputs.get("vmSize") in GPU_SKUS for p in any_stack.of_type(POOL)):
        assert CLUSTER in kinds


def _side_closure(plan: Plan) -> tuple[dict[str, str], dict[str, set[str]], set[str]]:
    lanes = graph.clusters(plan.registrations)
    waits = critical_path.predecessors(plan.registrations)
    wiring = {
        r.urn
        for r in plan.registrations
        if any(a.type.split(":")[1] in {"gitops", "gateway"} for a in [r, *plan.ancestors(r)])
    }
    return lanes, waits, wiring


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_management_and_gpu_sides_proceed_independently_until_they_meet(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    lanes, waits, wiring = _side_closure(plan)
    management = lanes[plan.one("llmops:management:ManagementCluster").urn]
    gpu = lanes[plan.one("llmops:gpu:GpuCluster").urn]
    assert management != gpu and graph.SHARED not in (management, gpu)
    for urn in waits:
        side = lanes[urn]
        if side not in (management, gpu) or urn in wiring:
            continue
        other = gpu if side == management else management
        seen: set[str] = set()
        todo = list(waits[urn])
        while todo:
            current = todo.pop()
            if current in seen or current in wiring:
                continue  # the GitOps and gateway wiring is where the two sides meet
            seen.add(current)
            assert lanes.get(current) != other, f"{plan.by_urn(urn).name} ({side}) waits for {current} ({other})"
            todo.extend(waits.get(current, ()))


# ------------------------------------------------------------------------------------------------------
# Picture
# ------------------------------------------------------------------------------------------------------


def _two_clusters() -> list[Registration]:
    platform = reg("llmops", "llmops:platform:Platform")
    mgmt = reg("mgmt", "llmops:management:ManagementCluster", parent=platform)
    gpu_side = reg("gpu", "llmops:gpu:GpuCluster", parent=platform)
    mgmt_cluster = reg("mgmt-cluster", CLUSTER, {"location": "eastus"}, parent=mgmt)
    gpu_cluster = reg("gpu-cluster", CLUSTER, {"location": "eastus"}, parent=gpu_side)
    mgmt_k8s = reg("mgmt-k8s", PROVIDER, deps=(mgmt_cluster,), parent=mgmt)
    gpu_k8s = reg("gpu-k8s", PROVIDER, deps=(gpu_cluster,), parent=gpu_side)
    secret = reg("gpu-cluster-secret", "kubernetes:core/v1:Secret", deps=(gpu_cluster,), provider=mgmt_k8s, parent=mgmt)
    namespace = reg("nim-ns", "kubernetes:core/v1:Namespace", provider=gpu_k8s, parent=gpu_side)
    return [platform, mgmt, gpu_side, mgmt_cluster, gpu_cluster, mgmt_k8s, gpu_k8s, secret, namespace]


def test_mermaid_draws_both_clusters_and_the_cross_cluster_edge() -> None:
    registrations = _two_clusters()
    lanes = graph.clusters(registrations)
    assert lanes[registrations[3].urn] == "mgmt" and lanes[registrations[4].urn] == "gpu"
    text = graph.mermaid(registrations)
    assert text.startswith("flowchart LR")
    assert "ManagementCluster mgmt" in text and "GpuCluster gpu" in text
    assert "classDef c_mgmt" in text and "classDef c_gpu" in text
    edges = [line for line in text.splitlines() if "-->" in line]
    assert len(edges) == 1 and '"1 dependency"' in edges[0]


def test_mermaid_of_the_dev_stack_contains_both_clusters(dev: Plan) -> None:
    text = graph.mermaid(dev.registrations)
    assert "subgraph" in text and "ManagementCluster dev-mgmt" in text and "GpuCluster dev-gpu" in text
    assert "class " in text and "c_dev_mgmt" in text and "c_dev_gpu" in text
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("subgraph ") for line in lines) == lines.count("end")


def test_svg_is_skipped_without_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    written = graph.write(_two_clusters(), tmp_path)
    assert [p.name for p in written] == ["graph.mmd"]
    assert not (tmp_path / "graph.svg").exists()
    assert (tmp_path / "graph.mmd").read_text().startswith("flowchart LR")


def test_svg_is_drawn_with_graphviz_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dot"
    received = tmp_path / "received.dot"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\nsource = sys.stdin.read()\nopen({str(received)!r}, 'w').write(source)\n"
        "print('<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- ' + str(len(source)) + ' --></svg>')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(graph.shutil, "which", lambda name: str(fake) if name == "dot" else None)
    out = tmp_path / "out"
    out.mkdir()
    written = graph.write(_two_clusters(), out)
    assert [p.name for p in written] == ["graph.mmd", "graph.svg"]
    assert (out / "graph.svg").read_text().startswith("<svg")
    source = received.read_text()
    assert source.startswith("digraph plan") and "subgraph cluster_" in source and "->" in source


# ------------------------------------------------------------------------------------------------------
# The report in plan.json and the summary
# ------------------------------------------------------------------------------------------------------


def test_plan_json_and_summary_carry_the_report(dev: Plan) -> None:
    budget = CostOptions(monthly_limit_usd=15000)
    document = json.loads(json.dumps(plan_document(dev.evaluation, dev.verdicts, budget)))
    assert document["cost"]["monthly"]["peak"] > document["cost"]["monthly"]["idle"] > 0
    assert document["cost"]["budget"] == {"monthlyLimitUsd": 15000, "measure": "peak", "withinBudget": True}
    path = document["criticalPath"]
    assert path["seconds"] > 0 and path["sumSeconds"] >= path["seconds"] and path["path"]
    assert "secretDigests" not in document, "digests only when planner.diff asks for them"
    text = summary(dev.evaluation, dev.verdicts, budget, graph_on_terminal=True)
    for heading in ("Cost (USD/month", "fine-tuning:", "Deployment time", "critical path", "flowchart LR"):
        assert heading in text


# ------------------------------------------------------------------------------------------------------
# Diff
# ------------------------------------------------------------------------------------------------------


def _resource(urn: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "urn": urn,
        "type": urn.split("::")[-2],
        "name": urn.split("::")[-1],
        "parent": "",
        "provider": "",
        "dependencies": [],
        "protect": False,
        "ignoreChanges": [],
        "custom": True,
        "inputs": inputs,
        **extra,
    }


POOL_URN = f"urn:pulumi:dev::p::{POOL}::dev-gpu-pool-a100"
NIM_URN = f"urn:pulumi:dev::p::{RELEASE}::nim"
OLD_URN = "urn:pulumi:dev::p::kubernetes:core/v1:ConfigMap::old"
NEW_URN = "urn:pulumi:dev::p::kubernetes:core/v1:ConfigMap::new"


def _plans() -> tuple[dict[str, Any], dict[str, Any]]:
    base = {
        "stack": "dev",
        "resources": [
            _resource(POOL_URN, {"vmSize": "Standard_NC24ads_A100_v4", "maxCount": 2, "tags": {"env": "dev"}}),
            _resource(
                NIM_URN,
                {"values": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "apiKey": SECRET}},
            ),
            _resource(OLD_URN, {"data": {"x": "1"}}),
        ],
        "outputs": {"endpoint": "https://a"},
        "policies": {"violations": []},
        "cost": {"monthly": {"idle": 1000.0, "serving": 1500.0, "peak": 9000.0}},
        "criticalPath": {"seconds": 3000},
        "secretDigests": {NIM_URN: {'["values", "apiKey"]': "aaaa"}},
    }
    head = json.loads(json.dumps(base))
    pool, nim, _ = head["resources"]
    pool["inputs"]["maxCount"] = 3
    pool["protect"] = True
    nim["inputs"]["values"]["env"] = [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]
    head["secretDigests"][NIM_URN]['["values", "apiKey"]'] = "bbbb"
    head["resources"] = [pool, nim, _resource(NEW_URN, {"data": {"password": SECRET}})]
    head["policies"]["violations"] = [{"policy": "p", "enforcement": "mandatory", "urn": POOL_URN, "message": "m"}]
    head["cost"]["monthly"]["peak"] = 12000.0
    head["criticalPath"]["seconds"] = 3300
    return base, head


def test_diff_of_two_plan_documents() -> None:
    base, head = _plans()
    result = diff.compare(base, head, "main", "branch")
    assert [r["urn"] for r in result.added] == [NEW_URN]
    assert [r["urn"] for r in result.removed] == [OLD_URN]
    changes = {r.name: {c.path: c.describe() for c in r.changes} for r in result.changed}
    assert changes["dev-gpu-pool-a100"] == {"maxCount": ("2", "3"), "(protect)": ("false", "true")}
    assert changes["nim"] == {"values.env[name=A].value": ('"1"', '"9"'), "values.apiKey": (SECRET, "[secret] changed")}
    assert result.new_violations and not result.resolved_violations
    assert any("peak $9,000 → $12,000 (+3,000)" in f for f in result.figures)
    assert any("50.0 → 55.0 min" in f for f in result.figures)
    text = diff.render_text(result)
    assert f"+ {NEW_URN}" in text and f"- {OLD_URN}" in text and f"~ {POOL_URN}" in text
    assert "values.apiKey: [secret] → [secret] changed" in text
    markdown = diff.render_markdown(result)
    assert markdown.startswith("### Offline plan diff: `dev`")
    assert "| `values.apiKey` | `[secret]` | `[secret] changed` |" in markdown
    assert "| | 3 | 3 | 1 | 1 | 2 |" in markdown and "<details>" in markdown


def test_diff_hides_values_around_secrets() -> None:
    base = {"stack": "dev", "resources": [_resource(NIM_URN, {"token": "plain-old-token", "other": SECRET})]}
    head = {"stack": "dev", "resources": [_resource(NIM_URN, {"token": SECRET, "other": "now-in-clear"})]}
    result = diff.compare(base, head)
    text = diff.render_text(result) + diff.render_markdown(result)
    assert "plain-old-token" not in text and "now-in-clear" not in text
    described = {c.path: c.describe() for c in result.changed[0].changes}
    assert described == {
        "token": ("(value hidden)", SECRET),
        "other": (SECRET, "(no longer secret; value hidden)"),
    }
    assert any("no secret digests" in n for n in result.notes)


def test_secret_digests_show_a_change_without_the_value() -> None:
    def release(password: str) -> Registration:
        return reg("db", RELEASE, {"values": {"auth": {"password": rpc.wrap_rpc_secret(password)}, "size": 1}})

    key = os.urandom(32)
    same = digests.secret_digests([release("hunter2")], key) == digests.secret_digests([release("hunter2")], key)
    old, new = (
        digests.secret_digests([release("hunter2")], key),
        digests.secret_digests([release("correct-horse")], key),
    )
    assert same and old != new
    assert "hunter2" not in json.dumps(old)
    document = {"stack": "t", "resources": [_resource(release("x").urn, {"values": {"auth": {"password": SECRET}}})]}
    result = diff.compare({**document, "secretDigests": old}, {**document, "secretDigests": new})
    assert [(c.path, c.describe()) for c in result.changed[0].changes] == [
        ("values.auth.password", (SECRET, "[secret] changed"))
    ]


def test_diff_command_compares_plan_files_as_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = _plans()
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    code = diff.main(
        ["--base-plan", str(tmp_path / "base.json"), "--head-plan", str(tmp_path / "head.json"), "--format", "markdown"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "#### Added" in out and "#### Removed" in out and "#### Changed" in out


FAKE_PLANNER = textwrap.dedent(
    """
    import argparse, hashlib, hmac, json, os, pathlib
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack")
    parser.add_argument("--out")
    args = parser.parse_args()
    resources = json.loads(pathlib.Path("resources.json").read_text())
    document = {"stack": args.stack, "resources": resources}
    key = os.environ.get("LLMOPS_PLAN_DIGEST_KEY")
    if key:
        secret = pathlib.Path("secret.txt").read_text().encode()
        digest = hmac.new(bytes.fromhex(key), secret, hashlib.sha256).hexdigest()
        document["secretDigests"] = {r["urn"]: {'["password"]': digest} for r in resources}
    out = pathlib.Path(args.out) / args.stack
    out.mkdir(parents=True)
    (out / "plan.json").write_text(json.dumps(document))
    """
)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_plan_diff_plans_the_base_revision_in_a_temporary_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / "stacks" / "Pulumi.dev.yaml").write_text("config: {}\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "before the planner")
    (repo / "planner").mkdir()
    (repo / "planner" / "__init__.py").write_text("")
    (repo / "planner" / "__main__.py").write_text(FAKE_PLANNER)
    one = {**_resource(POOL_URN, {"maxCount": 2, "password": SECRET})}
    (repo / "resources.json").write_text(json.dumps([one]))
    (repo / "secret.txt").write_text("first-secret-value")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "planner")
    changed = {**one, "inputs": {"maxCount": 3, "password": SECRET}}
    (repo / "resources.json").write_text(json.dumps([changed, _resource(NEW_URN, {})]))
    (repo / "secret.txt").write_text("second-secret-value")

    base, head, notes, label = revisions.plan_revisions("HEAD", "dev", project_dir=repo)
    result = diff.compare(base, head, label)
    assert notes == [] and label.startswith("HEAD (")
    assert [r["urn"] for r in result.added] == [NEW_URN]
    described = {c.path: c.describe() for c in result.changed[0].changes}
    assert described == {"maxCount": ("2", "3"), "password": (SECRET, "[secret] changed")}
    text = diff.render_text(result)
    assert "first-secret-value" not in text and "second-secret-value" not in text
    assert _git(repo, "worktree", "list").count("\n") == 1, "the temporary worktree is removed"

    base, head, notes, _ = revisions.plan_revisions("HEAD~1", "dev", project_dir=repo)
    assert base["resources"] == [] and len(head["resources"]) == 2
    assert notes and "has no offline planner" in notes[0]


def test_dependency_changes_show_what_left_and_what_came() -> None:
    a, b, c = (f"urn:pulumi:dev::p::t:x:X::{n}" for n in "abc")
    base = {"stack": "dev", "resources": [_resource(POOL_URN, {}, dependencies=[a, b])]}
    head = {"stack": "dev", "resources": [_resource(POOL_URN, {}, dependencies=[b, c])]}
    (change,) = diff.compare(base, head).changed[0].changes
    assert change.describe() == ("-a", "+c")
