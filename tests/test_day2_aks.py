"""Day 2 for AKS and GPU cost (issue 15, items 1-4, 11, 12): auto-upgrade channels vs pinned versions, Container
Insights' data collection rule, the NFS service endpoint on the GPU subnet, GPU pool upgrade settings, NIM serving
schedules and KV-cache scaling through KEDA, and the GPU quota summary; with the policies that keep them so."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from support.plans import Plan
from support.rendered import CHARTS_DIR
from support.resource_types import AGENT_POOL as AP
from support.resource_types import DATA_COLLECTION_RULE as DCR
from support.resource_types import DATA_COLLECTION_RULE_ASSOCIATION as DCRA
from support.resource_types import MANAGED_CLUSTER as MC
from support.resource_types import SCALED_OBJECT, SUBNET
from test_policies import (
    Case,
    case_tests,
    cluster,
    deep,
    gpu_pool,
    kube,
    reg,
    release,
    run,
)

from components.aks import VERSION_UPGRADE_CHANNELS
from components.config import ConfigError, NimModelConfig, parse_config, raw_config_from_pulumi
from components.nim import KV_CACHE_METRIC, NimKeda, autoscaling_values, keda_scales, nim_values, scaled_object_spec
from planner.cost import summary_lines
from planner.evaluate import engine_config, stack_config
from planner.quota import SPOT_QUOTA, gpu_quota, surge_nodes
from planner.quota import summary_lines as quota_lines
from planner.values import unwrap
from policies.pack import aks_day2
from policies.pack.gpu_sizes import GPU_SKUS
from policies.pack.pricing.estimate import estimate
from policies.pack.pricing.schedule import weekly_window


def config_of(plan: Plan) -> Any:
    values, _, _ = engine_config(stack_config(plan.evaluation.stack), [], {})
    return parse_config(raw_config_from_pulumi(values))


def model(**changes: Any) -> NimModelConfig:
    base = {"name": "m", "model": "meta/llama-3.1-8b-instruct", "image": "nvcr.io/nim/m/m", "imageTag": "1.8.6"}
    return NimModelConfig.model_validate({**base, **changes})


WINDOW = {"timezone": "Europe/Berlin", "start": "0 8 * * 1-5", "end": "0 19 * * 1-5"}


# ----------------------------------------------------------------------------------------------------------
# Item 1: auto-upgrade channels and pinned versions
# ----------------------------------------------------------------------------------------------------------


def test_clusters_on_a_version_channel_ignore_their_version_fields(any_stack: Plan) -> None:
    clusters = any_stack.of_type(MC)
    assert clusters
    for registration in clusters:
        channel = unwrap(registration.inputs)["autoUpgradeProfile"]["upgradeChannel"]
        pools = [p for p in any_stack.of_type(AP) if registration.urn in p.dependencies]
        assert pools, f"{registration.name}: no AgentPool depends on it"
        moving = channel in VERSION_UPGRADE_CHANNELS
        assert ("kubernetesVersion" in registration.ignore_changes) is moving, registration.name
        for profile in unwrap(registration.inputs)["agentPoolProfiles"]:
            assert "orchestratorVersion" not in profile, "an inline version would need its own ignore path"
        for pool in pools:
            assert ("orchestratorVersion" in pool.ignore_changes) is moving, pool.name
            assert "count" in pool.ignore_changes


def test_every_shipped_cluster_is_on_a_version_channel(any_stack: Plan) -> None:
    channels = {unwrap(r.inputs)["autoUpgradeProfile"]["upgradeChannel"] for r in any_stack.of_type(MC)}
    assert channels <= set(VERSION_UPGRADE_CHANNELS)


def test_no_pin_is_ignored_without_a_version_channel() -> None:
    from components.aks import _version_fields
    from components.config import AksClusterConfig

    base = {
        "kubernetesVersion": "1.33",
        "adminGroupObjectIds": ["6a1f3c2e-0d4b-4c8e-9b7a-2f5e8d1c4a90"],
        "apiServer": {"privateCluster": True},
    }
    for channel, ignored in (("none", []), ("node-image", []), ("patch", ["kubernetesVersion"])):
        config = AksClusterConfig.model_validate({**base, "upgradeChannel": channel})
        assert _version_fields(config, "kubernetesVersion") == ignored


# ----------------------------------------------------------------------------------------------------------
# Item 2: Container Insights with AAD auth collects through a data collection rule
# ----------------------------------------------------------------------------------------------------------


def test_every_monitored_cluster_has_a_container_insights_rule(any_stack: Plan) -> None:
    rules = {r.urn: unwrap(r.inputs) for r in any_stack.of_type(DCR)}
    for registration in any_stack.of_type(MC):
        oms = unwrap(registration.inputs)["addonProfiles"]["omsagent"]
        assert oms["enabled"] is True and oms["config"]["useAADAuth"] == "true"
        associations = [a for a in any_stack.of_type(DCRA) if registration.urn in a.dependencies]
        assert len(associations) == 1, registration.name
        association = associations[0]
        assert association.inputs["associationName"] == "ContainerInsightsExtension"
        (rule_urn,) = [d for d in association.dependencies if d in rules]
        rule = rules[rule_urn]
        assert rule["kind"] == "Linux"
        (extension,) = rule["dataSources"]["extensions"]
        assert extension["extensionName"] == "ContainerInsights"
        assert extension["streams"] == ["Microsoft-ContainerInsights-Group-Default"]
        (destination,) = rule["destinations"]["logAnalytics"]
        assert rule["dataFlows"] == [
            {"streams": ["Microsoft-ContainerInsights-Group-Default"], "destinations": [destination["name"]]}
        ]
        assert destination["workspaceResourceId"] == oms["config"]["logAnalyticsWorkspaceResourceID"]


# ----------------------------------------------------------------------------------------------------------
# Item 3: the NFS service endpoint on the GPU subnet
# ----------------------------------------------------------------------------------------------------------


def test_the_gpu_subnet_declares_the_storage_endpoint_nfs_needs(any_stack: Plan) -> None:
    subnets = {r.inputs["subnetName"]: unwrap(r.inputs) for r in any_stack.of_type(SUBNET)}
    nfs_classes = [
        r
        for r in any_stack.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
        if unwrap(r.inputs)["provisioner"] == "file.csi.azure.com"
        and unwrap(r.inputs)["parameters"].get("protocol") == "nfs"
    ]
    if config_of(any_stack).gpu_cluster.mode == "existing":
        assert "snet-gpu" not in subnets and not nfs_classes
        return
    assert [unwrap(c.inputs)["metadata"]["name"] for c in nfs_classes] == ["llmops-shared-workspace"]
    assert subnets["snet-gpu"]["serviceEndpoints"] == [{"service": "Microsoft.Storage"}]
    assert "serviceEndpoints" not in subnets["snet-management"]


# ----------------------------------------------------------------------------------------------------------
# Item 4: GPU pools upgrade without a surge GPU VM
# ----------------------------------------------------------------------------------------------------------


def test_gpu_pools_upgrade_without_surge(any_stack: Plan) -> None:
    gpu_pools = [p for p in any_stack.of_type(AP) if unwrap(p.inputs)["vmSize"] in GPU_SKUS]
    cpu_pools = [p for p in any_stack.of_type(AP) if unwrap(p.inputs)["vmSize"] not in GPU_SKUS]
    if config_of(any_stack).gpu_cluster.mode == "existing":
        assert not gpu_pools
    for pool in gpu_pools:
        assert unwrap(pool.inputs)["upgradeSettings"] == {"maxSurge": "0", "maxUnavailable": "1"}, pool.name
    for pool in cpu_pools:
        assert "upgradeSettings" not in pool.inputs, "CPU pools keep AKS's default surge"


def test_pool_upgrade_settings_are_configurable_and_must_progress() -> None:
    from components.config import GpuPoolConfig

    pool = GpuPoolConfig.model_validate(
        {"name": "a100", "vmSize": "Standard_NC24ads_A100_v4", "upgrade": {"maxSurge": "1", "maxUnavailable": "0"}}
    )
    assert (pool.upgrade.max_surge, pool.upgrade.max_unavailable) == ("1", "0")
    with pytest.raises(ValueError, match="maxUnavailable: must be above 0 when maxSurge is 0"):
        GpuPoolConfig.model_validate(
            {"name": "a100", "vmSize": "Standard_NC24ads_A100_v4", "upgrade": {"maxUnavailable": "0"}}
        )


# ----------------------------------------------------------------------------------------------------------
# Items 11 and 12: NIM serving schedules and KV-cache scaling through KEDA
# ----------------------------------------------------------------------------------------------------------

# KEDA's ScaledObject spec, hand-checked against kedacore/keda at commit 8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a
# (v2.20.1-117): config/crd/bases/keda.sh_scaledobjects.yaml (openAPIV3Schema of spec, descriptions dropped,
# `advanced`/`fallback` kept opaque) and apis/keda/v1alpha1/scaledobject_types.go. The CRD's schema is structural,
# so the API server would silently prune an unknown field; here an unknown field is an error. Trigger metadata keys
# per scaler come from pkg/scalers/{cron,prometheus,cpu_memory}_scaler.go at the same commit.
_INT32 = {"type": "integer", "format": "int32"}
KEDA_SCALED_OBJECT_SPEC = {
    "type": "object",
    "required": ["scaleTargetRef", "triggers"],
    "additionalProperties": False,
    "properties": {
        "advanced": {"type": "object"},
        "cooldownPeriod": {**_INT32, "minimum": 0},
        "fallback": {"type": "object"},
        "idleReplicaCount": {**_INT32, "minimum": 0},
        "initialCooldownPeriod": {**_INT32, "minimum": 0},
        "maxReplicaCount": {**_INT32, "minimum": 1},
        "minReplicaCount": {**_INT32, "minimum": 0},
        "pollingInterval": {**_INT32, "minimum": 1},
        "scaleTargetRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "apiVersion": {"type": "string"},
                "envSourceContainerName": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string", "minLength": 1},
            },
        },
        "triggers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["metadata", "type"],
                "additionalProperties": False,
                "properties": {
                    "authenticationRef": {"type": "object", "required": ["name"]},
                    "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    "metricType": {"type": "string"},
                    "name": {"type": "string"},
                    "type": {"type": "string", "minLength": 1},
                    "useCachedMetrics": {"type": "boolean"},
                },
            },
        },
    },
}
# (required, optional) metadata keys of the scalers this program uses.
KEDA_TRIGGER_METADATA = {
    "cron": ({"start", "end", "timezone", "desiredReplicas"}, set()),
    "prometheus": (
        {"serverAddress", "query", "threshold"},
        {"activationThreshold", "namespace", "queryParameters", "customHeaders", "ignoreNullValues", "unsafeSsl"},
    ),
    "cpu": ({"value"}, {"containerName"}),
}


def scaled_object_errors(obj: dict[str, Any]) -> list[str]:
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft202012Validator(KEDA_SCALED_OBJECT_SPEC).iter_errors(obj["spec"])
    ]
    spec = obj["spec"]
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        errors.append("minReplicaCount must be less than or equal to maxReplicaCount")
    for trigger in spec.get("triggers", []):
        required, optional = KEDA_TRIGGER_METADATA[trigger["type"]]
        keys = set(trigger["metadata"])
        errors += [f"{trigger['type']}: missing {k}" for k in sorted(required - keys)]
        errors += [f"{trigger['type']}: unknown {k}" for k in sorted(keys - required - optional)]
    if obj["apiVersion"] != "keda.sh/v1alpha1" or obj["kind"] != "ScaledObject":
        errors.append(f"not a KEDA ScaledObject: {obj['apiVersion']} {obj['kind']}")
    return errors


def test_the_schema_check_catches_a_misspelled_field() -> None:
    good = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "spec": scaled_object_spec(model(schedule=WINDOW), "nim", NimKeda(True)),
    }
    assert scaled_object_errors(good) == []
    bad = deep(good, spec__minReplicas=0)
    bad["spec"]["triggers"][0]["metadata"]["desiredReplica"] = "1"
    assert scaled_object_errors(bad) == [
        "[]: Additional properties are not allowed ('minReplicas' was unexpected)",
        "cron: unknown desiredReplica",
    ]


def test_dev_serves_in_working_hours_through_keda(dev: Plan) -> None:
    (gpu_cluster,) = [c for c in dev.of_type(MC) if c.name == "dev-gpu-cluster"]
    assert unwrap(gpu_cluster.inputs)["workloadAutoScalerProfile"] == {"keda": {"enabled": True}}
    (management,) = [c for c in dev.of_type(MC) if c.name == "dev-mgmt-cluster"]
    assert "workloadAutoScalerProfile" not in management.inputs
    (scaled,) = dev.of_type(SCALED_OBJECT)
    obj = unwrap(scaled.inputs)
    assert scaled_object_errors(obj) == []
    release = dev.helm_release("llama-3-1-8b-instruct")
    assert release.urn in scaled.dependencies
    values = unwrap(release.inputs)["values"]
    assert values["autoscaling"] == {"enabled": False}, "KEDA runs its own HPA; the chart's would fight it"
    assert values["statefulSet"]["enabled"] is True
    assert obj["metadata"]["namespace"] == unwrap(release.inputs)["namespace"]
    assert obj["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "llama-3-1-8b-instruct",
    }
    assert obj["spec"]["minReplicaCount"] == 0
    (cron,) = obj["spec"]["triggers"]
    assert cron == {
        "type": "cron",
        "metadata": {
            "timezone": "Europe/Berlin",
            "start": "0 8 * * 1-5",
            "end": "0 19 * * 1-5",
            "desiredReplicas": "1",
        },
    }


def test_the_nim_chart_names_its_statefulset_after_the_release() -> None:
    template_path = CHARTS_DIR / "nim-llm-1.1.2" / "templates" / "deployment.yaml"
    if not template_path.is_file():
        pytest.skip(f"no nim-llm chart source in {CHARTS_DIR}")
    template = template_path.read_text()
    assert "kind: StatefulSet" in template and "  name: {{ .Release.Name }}\n" in template


def test_dev_report_shows_the_schedule_and_its_saving(dev: Plan) -> None:
    report = estimate(dev.registrations)
    (schedule,) = report.schedules
    assert schedule.release == "llama-3-1-8b-instruct"
    assert schedule.window == "Mon-Fri 08:00-19:00 Europe/Berlin"
    assert schedule.hours_per_month == pytest.approx(55 * 730 / 168)
    assert 0 < schedule.scheduled < schedule.always_on
    assert schedule.saving == pytest.approx(schedule.always_on * (1 - 55 / 168))
    # The serving measure prices the window, not the clock.
    assert report.monthly("serving") == pytest.approx(report.monthly("idle") + schedule.scheduled, abs=0.05)
    line = next(line for line in summary_lines(report) if "serving schedule" in line)
    assert "idle $0" in line and "scheduled $" in line and "always-on $" in line and "saves $" in line
    (entry,) = report.to_json()["servingSchedules"]
    assert entry["saving"] == round(schedule.saving, 2) > 1000


def test_unscheduled_stacks_keep_their_serving_floor(staging: Plan, prod: Plan) -> None:
    assert estimate(staging.registrations).schedules == []
    assert estimate(prod.registrations).schedules == []
    assert not staging.of_type(SCALED_OBJECT) and not prod.of_type(SCALED_OBJECT)


def test_kv_cache_scaling_goes_through_keda_with_prometheus() -> None:
    scaling = {"minReplicas": 1, "maxReplicas": 4, "target": 80}
    keda = NimKeda(True, "http://prometheus-operated.monitoring:9090")
    served = model(autoscaling=scaling)
    assert keda_scales(served, keda)
    spec = scaled_object_spec(served, "nim", keda)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring:9090",
        "query": f'sum({KV_CACHE_METRIC}{{namespace="nim",service="m"}})',
        "threshold": "0.8",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    obj = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "spec": spec}
    assert scaled_object_errors(obj) == []
    values = nim_values(
        served, peft_source="", model_cache_storage_class="c", gpu_tolerations=[], prometheus=True, keda=keda
    )
    assert values["autoscaling"] == {"enabled": False}
    # With a schedule too: the window and the metric, KEDA taking the larger.
    both = scaled_object_spec(model(autoscaling=scaling, schedule={**WINDOW, "replicas": 2}), "nim", keda)
    assert [t["type"] for t in both["triggers"]] == ["cron", "prometheus"]
    assert (both["minReplicaCount"], both["triggers"][0]["metadata"]["desiredReplicas"]) == (0, "2")


def test_cpu_is_the_fallback_where_keda_or_prometheus_is_missing() -> None:
    scaling = {"minReplicas": 2, "maxReplicas": 6}
    served = model(autoscaling=scaling)
    for keda in (NimKeda(False, "http://prometheus:9090"), NimKeda(True, None)):
        assert not keda_scales(served, keda)
        values = nim_values(
            served, peft_source="", model_cache_storage_class="c", gpu_tolerations=[], prometheus=True, keda=keda
        )
        assert values["autoscaling"] == autoscaling_values(served)
        assert values["autoscaling"]["metrics"][0]["resource"]["name"] == "cpu"
    # A schedule without Prometheus scales within the window on KEDA's CPU trigger.
    spec = scaled_object_spec(model(autoscaling=scaling, schedule=WINDOW), "nim", NimKeda(True))
    assert [t["type"] for t in spec["triggers"]] == ["cron", "cpu"]
    assert scaled_object_errors({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "spec": spec}) == []


def test_prod_scales_on_cpu_without_keda(prod: Plan) -> None:
    values = unwrap(prod.helm_release("llama-3-1-8b-instruct").inputs)["values"]
    assert values["autoscaling"]["metrics"][0]["resource"]["name"] == "cpu"
    assert not any(
        m.get("type") == "Object"
        for r in prod.of_type("kubernetes:helm.sh/v3:Release")
        for m in (unwrap(r.inputs)["values"].get("autoscaling") or {}).get("metrics", [])
    ), "an Object metric needs a Prometheus adapter nothing installs"


def _with(stack: str, **changes: Any) -> dict[str, Any]:
    values, _, _ = engine_config(stack_config(stack), [], {})
    raw = raw_config_from_pulumi(values)
    for key, value in changes.items():
        raw[key] = value
    return raw


def test_a_schedule_on_an_existing_cluster_needs_keda_there() -> None:
    raw = _with("prod")
    models = [dict(m) for m in raw["nim"]["models"]]
    models[0]["schedule"] = WINDOW
    raw["nim"] = {**raw["nim"], "models": models}
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert [p for p in error.value.problems if "schedule" in p] == [
        "llmops:nim.models[0].schedule: needs KEDA on the GPU cluster; this program installs it only on AKS (add-on): "
        "install KEDA v2 on the existing cluster and set gpuCluster.existing.kedaInstalled, or remove the schedule"
    ]
    raw["gpuCluster"] = deep(raw["gpuCluster"], existing__kedaInstalled=True)
    assert parse_config(raw).nim_uses_keda


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ({"start": "0 8 * * 1-5", "end": "0 19 * * 1-4"}, "start and end must name the same days"),
        ({"start": "0 19 * * 1-5", "end": "0 8 * * 1-5"}, "end must be later in the day than start"),
        ({"start": "0 8 1 * *", "end": "0 19 1 * *"}, "day of month and month must be '*'"),
        ({"start": "0 8 * *", "end": "0 19 * * *"}, "must be a 5-field cron expression"),
        ({**WINDOW, "timezone": "Mars/Olympus"}, "timezone: must be an IANA time zone"),
        ({**WINDOW, "replicas": 3}, "schedule.replicas: must be <= autoscaling.maxReplicas (1)"),
    ],
)
def test_bad_schedules_are_refused_naming_the_key(schedule: dict[str, Any], problem: str) -> None:
    raw = _with("dev")
    raw["nim"] = {"models": [{**raw["nim"]["models"][0], "schedule": schedule}]}
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert any(p.startswith("llmops:nim.models[0].schedule.") and problem in p for p in error.value.problems), (
        error.value.problems
    )


def test_weekly_windows() -> None:
    assert weekly_window("30 7 * * mon-fri", "0 18 * * MON-FRI").hours_per_week == 5 * 10.5
    assert weekly_window("0 0 * * *", "0 12 * * *").monthly_hours(730) == pytest.approx(7 * 12 * 730 / 168)
    assert weekly_window("0 9 * * 1,3,5", "0 17 * * 1,3,5").describe() == "Mon,Wed,Fri 09:00-17:00"


# ----------------------------------------------------------------------------------------------------------
# Item 11: GPU quota per VM family
# ----------------------------------------------------------------------------------------------------------


def test_every_gpu_size_names_its_quota_family() -> None:
    for size, sku in GPU_SKUS.items():
        assert sku.quota_family.startswith("standard") and sku.quota_family.endswith("Family"), size
    assert GPU_SKUS["Standard_NC40ads_H100_v5"].quota_family == "standardNCADSH100v5Family"


def test_quota_per_family_at_max_scale(any_stack: Plan) -> None:
    quota = gpu_quota(any_stack.registrations)
    lines = quota_lines(quota)
    config = config_of(any_stack)
    if config.gpu_cluster.mode == "existing":
        assert quota.families == {} and quota.external_cluster
        assert lines == [
            "GPU quota (Azure vCPUs per VM family at max scale): none from Azure, the GPU cluster is an existing "
            "cluster (e.g. NVIDIA DGX Cloud), not Azure VMs"
        ]
        return
    expected: dict[str, int] = {}
    for pool in config.gpu_cluster.aks.gpu_pools:
        family = SPOT_QUOTA if pool.spot else GPU_SKUS[pool.vm_size].quota_family
        expected[family] = expected.get(family, 0) + pool.max_count * GPU_SKUS[pool.vm_size].vcpus
    assert {family: quota.vcpus(family) for family in quota.families} == expected
    assert all(
        any(f"{family}" in line and f"{vcpus} vCPUs" in line for line in lines) for family, vcpus in expected.items()
    )
    assert quota.to_json()["region"] == config.azure.location


def test_dev_quota_numbers(dev: Plan) -> None:
    quota = gpu_quota(dev.registrations).to_json()
    assert {f["family"]: f["vcpus"] for f in quota["families"]} == {
        "standardNCADSA100v4Family": 48,
        "lowPriorityCores": 48,
    }


def test_surge_nodes_count_against_quota() -> None:
    assert surge_nodes("0", 4) == 0
    assert surge_nodes(None, 4) == 1, "AKS's default max surge is 10%, rounded up"
    assert surge_nodes("50%", 3) == 2
    assert surge_nodes("2", 3) == 2


# ----------------------------------------------------------------------------------------------------------
# Policies guarding items 1, 2 and 4
# ----------------------------------------------------------------------------------------------------------


def channel_cluster(channel: str = "stable", ignore: tuple[str, ...] = ("kubernetesVersion",), **changes: Any) -> Any:
    registration = cluster(
        "dev-gpu-cluster", kubernetesVersion="1.33", autoUpgradeProfile={"upgradeChannel": channel}, **changes
    )
    registration.ignore_changes += list(ignore)
    return registration


def version_pool(parent: Any, ignore: tuple[str, ...] = ("count", "orchestratorVersion")) -> Any:
    pool = gpu_pool(orchestratorVersion="1.33")
    pool.ignore_changes = list(ignore)
    pool.dependencies = [parent.urn]
    return pool


def _cluster_and_pool(
    cluster_ignore: tuple[str, ...], pool_ignore: tuple[str, ...], channel: str = "stable"
) -> list[Any]:
    parent = channel_cluster(channel, cluster_ignore)
    return [parent, version_pool(parent, pool_ignore)]


def monitored_cluster() -> Any:
    return cluster(
        "dev-gpu-cluster",
        addonProfiles={
            "omsagent": {"enabled": True, "config": {"useAADAuth": "true", "logAnalyticsWorkspaceResourceID": "ws"}}
        },
    )


def container_insights(parent: Any, extension: str = "ContainerInsights") -> list[Any]:
    rule = reg(
        DCR,
        "dev-gpu-container-insights",
        {
            "kind": "Linux",
            "dataSources": {
                "extensions": [
                    {
                        "name": "ContainerInsightsExtension",
                        "extensionName": extension,
                        "streams": ["Microsoft-ContainerInsights-Group-Default"],
                    }
                ]
            },
        },
    )
    association = reg(DCRA, "dev-gpu-container-insights", {"associationName": "ContainerInsightsExtension"})
    association.dependencies = [parent.urn, rule.urn]
    return [rule, association]


def _monitored(extension: str = "ContainerInsights") -> list[Any]:
    parent = monitored_cluster()
    return [parent, *container_insights(parent, extension)]


def keda_pair(chart_autoscaling: bool) -> list[Any]:
    chart = nim_release(autoscaling={"enabled": chart_autoscaling, "minReplicas": 1, "maxReplicas": 2})
    scaled = kube(
        "ScaledObject",
        "keda.sh/v1alpha1",
        "llama",
        namespace="nim",
        spec={
            "scaleTargetRef": {"kind": "StatefulSet", "name": "llama"},
            "triggers": [{"type": "cron", "metadata": {}}],
        },
    )
    return [chart, scaled]


def nim_release(**values: Any) -> Any:
    registration = release("llama", "nim-llm", "https://helm.ngc.nvidia.com/nim", "1.1.2", **values)
    registration.inputs["namespace"] = "nim"
    return registration


def authored_hpa() -> Any:
    return kube(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "llama",
        namespace="nim",
        spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "llama"}},
    )


POLICY_CASES = [
    Case(
        "keda-scaled-workloads-have-no-other-hpa",
        lambda: keda_pair(chart_autoscaling=True),
        lambda: keda_pair(chart_autoscaling=False),
    ),
    Case(
        "keda-scaled-workloads-have-no-other-hpa",
        lambda: [*keda_pair(chart_autoscaling=False), authored_hpa()],
        lambda: [nim_release(autoscaling={"enabled": True}), authored_hpa()],
    ),
    Case(
        "aks-upgrade-channel-ignores-versions",
        lambda: _cluster_and_pool((), ("count", "orchestratorVersion")),
        lambda: _cluster_and_pool(("kubernetesVersion",), ("count", "orchestratorVersion")),
    ),
    Case(
        "aks-upgrade-channel-ignores-versions",
        lambda: _cluster_and_pool(("kubernetesVersion",), ("count",), channel="patch"),
        lambda: _cluster_and_pool((), ("count",), channel="node-image"),
    ),
    Case(
        "aks-upgrade-channel-ignores-versions",
        lambda: [
            channel_cluster(
                "rapid",
                agentPoolProfiles=[{"name": "system", "mode": "System", "orchestratorVersion": "1.33"}],
            )
        ],
        lambda: [
            channel_cluster(
                "rapid",
                ("kubernetesVersion", "agentPoolProfiles[*].orchestratorVersion"),
                agentPoolProfiles=[{"name": "system", "mode": "System", "orchestratorVersion": "1.33"}],
            )
        ],
    ),
    Case(
        "aks-gpu-pools-upgrade-without-surge",
        lambda: [gpu_pool()],
        lambda: [gpu_pool(upgradeSettings={"maxSurge": "0", "maxUnavailable": "1"})],
    ),
    Case(
        "aks-gpu-pools-upgrade-without-surge",
        lambda: [gpu_pool(upgradeSettings={"maxSurge": "0"})],
        lambda: [gpu_pool(scaleSetPriority="Spot")],
    ),
    Case(
        "aks-container-insights-has-data-collection-rule",
        lambda: [monitored_cluster()],
        lambda: _monitored(),
    ),
    Case(
        "aks-container-insights-has-data-collection-rule",
        lambda: _monitored(extension="DependencyAgent"),
        lambda: [cluster("dev-gpu-cluster")],
    ),
]


test_day2_aks_rule_reports_the_violating_case, test_day2_aks_rule_passes_the_compliant_case = case_tests(POLICY_CASES)


def test_the_shipped_stacks_pass_the_day2_rules(any_stack: Plan) -> None:
    names = {p.name for p in aks_day2.POLICIES}
    assert [v for v in any_stack.verdicts if v.policy in names] == []


def test_the_old_cluster_would_have_been_refused(staging: Plan) -> None:
    """Without the ignore paths, staging (patch channel) fails the rule: the check that keeps item 1 fixed."""
    import dataclasses

    stripped = [
        dataclasses.replace(
            r, ignore_changes=[p for p in r.ignore_changes if p not in ("kubernetesVersion", "orchestratorVersion")]
        )
        if r.type in (MC, AP)
        else r
        for r in staging.registrations
    ]
    found = run(stripped, ["aks-upgrade-channel-ignores-versions"])
    assert {v.urn.rsplit("::", 1)[-1] for v in found} >= {"staging-gpu-cluster", "staging-gpu-pool-h100"}


def test_a_chart_hpa_beside_devs_scaled_object_would_be_refused(dev: Plan) -> None:
    import copy
    import dataclasses

    release = dev.helm_release("llama-3-1-8b-instruct")
    inputs = copy.deepcopy(release.inputs)
    inputs["values"]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 2}
    changed = [dataclasses.replace(r, inputs=inputs) if r.urn == release.urn else r for r in dev.registrations]
    found = run(changed, ["keda-scaled-workloads-have-no-other-hpa"])
    assert [v.urn for v in found] == [release.urn]
