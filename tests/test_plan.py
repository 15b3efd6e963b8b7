"""The plan contract: what `make plan` writes is complete, faithful to the registrations, and safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.plans import SEEDED_SECRETS, Plan

from planner.render import summary, write_plan
from planner.values import SECRET, redact

KEYS = {"urn", "type", "name", "parent", "provider", "dependencies", "protect", "ignoreChanges", "custom", "inputs"}


@pytest.fixture(scope="module")
def written(any_stack: Plan, tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, Path]:
    out = tmp_path_factory.mktemp(any_stack.evaluation.stack)
    write_plan(any_stack.evaluation, any_stack.verdicts, out)
    return any_stack, out


def test_plan_json_carries_every_registration_as_registered(written: tuple[Plan, Path]) -> None:
    plan, out = written
    document = json.loads((out / "plan.json").read_text())
    assert document["project"] == "llmops-platform"
    assert document["stack"] == plan.evaluation.stack
    assert len(document["resources"]) == len(plan.registrations)
    for entry, registration in zip(document["resources"], plan.registrations, strict=True):
        assert set(entry) == KEYS
        assert entry["urn"] == registration.urn
        assert entry["parent"] == registration.parent
        assert entry["provider"] == registration.provider
        assert entry["dependencies"] == registration.dependencies
        assert entry["protect"] is registration.protect
        assert entry["ignoreChanges"] == registration.ignore_changes
    assert "violations" in document["policies"]
    assert document["outputs"] == json.loads(json.dumps(redact(plan.evaluation.outputs)))


def test_no_seeded_secret_appears_anywhere_in_the_plan(written: tuple[Plan, Path]) -> None:
    plan, out = written
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    text = "\n".join(p.read_text() for p in files) + summary(plan.evaluation, plan.verdicts)
    for key, value in SEEDED_SECRETS.items():
        probe = value.splitlines()[-1] if "\n" in value else value
        assert probe not in text, f"{key} leaked in clear"


def test_kubeconfigs_are_secret_outputs(any_stack: Plan) -> None:
    outputs = redact(any_stack.evaluation.outputs)
    assert outputs["managementKubeconfig"] == SECRET
    assert outputs["gpuKubeconfig"] == SECRET


def test_every_kubernetes_object_uses_an_explicit_provider(any_stack: Plan) -> None:
    providers = {r.urn for r in any_stack.of_type("pulumi:providers:kubernetes")}
    kube = [r for r in any_stack.registrations if r.type.startswith("kubernetes:")]
    for registration in kube:
        assert registration.provider in providers, f"{registration.name} uses the default provider"


def test_kubernetes_providers_have_stable_cluster_identifiers(any_stack: Plan) -> None:
    for provider in any_stack.of_type("pulumi:providers:kubernetes"):
        inputs = redact(provider.inputs)
        assert inputs["kubeconfig"] == SECRET
        assert inputs["clusterIdentifier"] not in ("", "[unknown]", None)


def test_every_child_names_its_parent(any_stack: Plan) -> None:
    urns = {r.urn for r in any_stack.registrations}
    stack_urn = next(r.parent for r in any_stack.registrations if r.type == "llmops:platform:Platform")
    for registration in any_stack.registrations:
        assert registration.parent in urns | {stack_urn}


def test_the_plan_lists_registrations_and_dependencies_in_a_stable_order(any_stack: Plan) -> None:
    """The program registers asynchronously; the plan orders what it captured, so two plans of the same code are
    byte-identical and a plan diff shows changes only."""
    urns = [r.urn for r in any_stack.registrations]
    assert urns == sorted(urns)
    for registration in any_stack.registrations:
        assert registration.dependencies == sorted(registration.dependencies), registration.urn
        assert list(registration.property_dependencies) == sorted(registration.property_dependencies)
        assert all(urns == sorted(urns) for urns in registration.property_dependencies.values()), registration.urn


def test_helm_releases_and_manifests_are_written(written: tuple[Plan, Path]) -> None:
    plan, out = written
    releases = plan.of_type("kubernetes:helm.sh/v3:Release")
    written_releases = list((out / "helm").rglob("*.yaml")) if (out / "helm").exists() else []
    assert len(written_releases) == len(releases)
    for path in written_releases:
        release = yaml.safe_load(path.read_text())
        assert set(release) == {"chart", "repository", "version", "namespace", "values"}
    for path in (out / "manifests").rglob("Secret-*.yaml") if (out / "manifests").exists() else []:
        secret = yaml.safe_load(path.read_text())
        for field in ("data", "stringData"):
            value = secret.get(field) or {}
            # Either the whole map is secret, or every value in it is.
            assert value == SECRET or all(v == SECRET for v in value.values())


def test_management_and_gpu_sides_do_not_wait_on_each_other(dev: Plan) -> None:
    """The two clusters are independent until the gateway/GitOps wiring joins them."""
    mgmt = dev.one("azure-native:containerservice:ManagedCluster", "dev-mgmt-cluster")
    gpu = dev.one("azure-native:containerservice:ManagedCluster", "dev-gpu-cluster")
    assert gpu.urn not in mgmt.dependencies and mgmt.urn not in gpu.dependencies


def test_prod_gpu_side_has_no_azure_cluster(prod: Plan) -> None:
    clusters = [r.name for r in prod.of_type("azure-native:containerservice:ManagedCluster")]
    assert clusters == ["prod-mgmt-cluster"]
    provider = prod.one("pulumi:providers:kubernetes", "prod-gpu-k8s")
    assert prod.inputs(provider)["kubeconfig"] == SEEDED_SECRETS["llmops:gpuClusterKubeconfig"]
    assert redact(provider.inputs)["kubeconfig"] == SECRET
