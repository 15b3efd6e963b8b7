"""The facts derived from upstream, and the checkers built on them, catch what they are for."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support.chart_values import unknown_values_keys
from support.schemas import schema_version, validate_argo, validate_core, validate_custom

REPO = Path(__file__).resolve().parents[1]
FACTS = REPO / "facts"
REFERENCE = REPO.parent / "shared" / "reference"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"no upstream reference folder at {REFERENCE}")


def _derive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "derive_reference_facts", REPO / "tools" / "derive_reference_facts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module's annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------------
# Helm values keys
# ------------------------------------------------------------------------------------------------------


def test_real_values_keys_pass() -> None:
    values = {
        "controller": {"workflowNamespaces": ["argo"], "parallelism": 20, "pdb": {"enabled": True, "minAvailable": 1}},
        "server": {"authModes": ["client"]},
    }
    assert unknown_values_keys(values, "argo-workflows", "1.0.18") == []


def test_misspelled_values_key_is_reported_with_its_path() -> None:
    values = {"controller": {"workflowNamespace": ["argo"], "parallelism": 20}, "sever": {"enabled": True}}
    assert unknown_values_keys(values, "argo-workflows", "1.0.18") == ["controller.workflowNamespace", "sever"]


def test_anything_goes_under_a_free_map_but_not_beside_it() -> None:
    values = {
        "configs": {
            "cm": {"url": "https://argocd.internal", "oidc.config": "name: Entra"},
            "params": {"server.insecure": True},
            "rbac": {"policy.csv": "g, admins, role:admin"},
            "repositories": {"platform": {"url": "https://git.example/platform.git"}},
        },
        "server": {"podAnnotations": {"example.com/team": "ml"}, "resources": {"limits": {"cpu": "1"}}},
        "controller": {"resoures": {"limits": {"cpu": "1"}}},
    }
    assert unknown_values_keys(values, "argo-cd", "10.1.1") == ["controller.resoures"]


def test_nemo_documented_usage_is_known() -> None:
    values = {
        "existingSecret": "ngc-api",
        "existingImagePullSecret": "nvcrimagepullsecret",
        "customizer": {
            "customizationTargets": {"targets": {"meta/llama-3.1-8b-instruct@2.0": {"enabled": True}}},
            "customizerConfig": {"training": {"pvc": {"size": "200Gi", "storageClass": "managed-csi"}}},
        },
        "data-store": {"persistence": {"size": "100Gi"}},
        "guardrails": {"enabled": False},
    }
    assert unknown_values_keys(values, "nemo-microservices-helm-chart", "25.8.0") == []


def test_unknown_chart_version_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match=r"argo-workflows 0\.0\.1"):
        unknown_values_keys({}, "argo-workflows", "0.0.1")


# ------------------------------------------------------------------------------------------------------
# Core kinds
# ------------------------------------------------------------------------------------------------------

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "nemo", "labels": {"app": "api"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {
                "containers": [
                    {
                        "name": "api",
                        "image": "nvcr.io/nvidia/api:1.0",
                        "ports": [{"containerPort": 8000}],
                        "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": 1}},
                    }
                ]
            },
        },
    },
}


def test_good_deployment_is_valid() -> None:
    assert validate_core(DEPLOYMENT, "1.33") == []


def test_unknown_field_in_deployment_is_reported() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert validate_core(bad, "1.33") == ["spec.template.spec.containers[0].imagePullPolicyy: unknown field"]


def test_wrong_type_in_deployment_is_reported() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = "two"
    errors = validate_core(bad, "1.33")
    assert len(errors) == 1 and errors[0].startswith("spec.replicas:")


def test_kubernetes_versions_map_to_shipped_schemas() -> None:
    assert schema_version("1.33") == "1.33.0"
    assert schema_version("v1.33.4") == "1.33.0"
    with pytest.raises(LookupError):
        schema_version("1.99")


# ------------------------------------------------------------------------------------------------------
# Custom resources
# ------------------------------------------------------------------------------------------------------

HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "nim", "namespace": "nim"},
    "spec": {
        "parentRefs": [{"name": "gpu-gateway", "namespace": "gateway", "sectionName": "https"}],
        "hostnames": ["nim.internal"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                "backendRefs": [{"name": "nim-llm", "port": 8000}],
            }
        ],
    },
}


def test_good_http_route_is_valid() -> None:
    assert validate_custom(HTTP_ROUTE) == []


def test_misspelled_http_route_field_is_reported() -> None:
    bad = copy.deepcopy(HTTP_ROUTE)
    bad["spec"]["rules"][0]["backendRef"] = bad["spec"]["rules"][0].pop("backendRefs")
    bad["metadata"]["lables"] = {"team": "ml"}
    assert validate_custom(bad) == ["spec.rules[0].backendRef: unknown field", "metadata.lables: unknown field"]


def test_wrong_value_in_http_route_is_reported() -> None:
    bad = copy.deepcopy(HTTP_ROUTE)
    bad["spec"]["rules"][0]["backendRefs"][0]["port"] = 70000
    assert validate_custom(bad) == ["spec.rules[0].backendRefs[0].port: 70000 is greater than the maximum of 65535"]


def test_unserved_version_is_reported() -> None:
    assert validate_custom({**HTTP_ROUTE, "apiVersion": "gateway.networking.k8s.io/v9"})[0].startswith("apiVersion:")


# ------------------------------------------------------------------------------------------------------
# Argo Workflows kinds
# ------------------------------------------------------------------------------------------------------

WORKFLOW_TEMPLATE: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "fine-tune", "namespace": "pipelines"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "model", "value": "meta/llama-3.1-8b-instruct"}]},
        "templates": [
            {
                "name": "main",
                "retryStrategy": {"limit": "2"},
                "container": {
                    "image": "python:3.12",
                    "command": ["python", "-c", "print(1)"],
                    "resources": {"limits": {"nvidia.com/gpu": 1}},
                },
            }
        ],
    },
}


def test_good_workflow_template_is_valid() -> None:
    assert validate_argo(WORKFLOW_TEMPLATE) == []


def test_unknown_field_in_template_is_reported() -> None:
    bad = copy.deepcopy(WORKFLOW_TEMPLATE)
    bad["spec"]["templates"][0]["contaner"] = bad["spec"]["templates"][0].pop("container")
    assert validate_argo(bad) == ["spec.templates[0].contaner: unknown field"]


def test_wrong_type_in_template_is_reported() -> None:
    bad = copy.deepcopy(WORKFLOW_TEMPLATE)
    bad["spec"]["templates"] = {"name": "main"}
    assert validate_argo(bad)


# ------------------------------------------------------------------------------------------------------
# Freshness
# ------------------------------------------------------------------------------------------------------


@needs_reference
def test_chart_facts_are_rederived_byte_for_byte() -> None:
    derived = _derive_module().derive_chart_facts(REFERENCE)
    stored = {f"charts/{path.name}": path.read_bytes() for path in (FACTS / "charts").glob("*.json")}
    assert stored == derived, "facts/charts is stale: run `uv run --frozen python tools/derive_reference_facts.py`"


@needs_reference
def test_all_facts_match_the_script_and_reference_they_came_from() -> None:
    # Re-parsing every CRD takes several seconds; the digests written with the facts say the same thing.
    derive = _derive_module()
    outputs = {
        f"{folder}/{path.name}": path.read_bytes()
        for folder in ("charts", "crds")
        for path in (FACTS / folder).glob("*.json")
    }
    stale = "facts are stale: run `uv run --frozen python tools/derive_reference_facts.py`"
    assert json.loads((FACTS / derive.MANIFEST).read_bytes()) == json.loads(derive.manifest(REFERENCE, outputs)), stale


def test_facts_are_self_consistent() -> None:
    recorded = json.loads((FACTS / "sources.json").read_text())["outputs"]
    for path, digest in recorded.items():
        assert hashlib.sha256((FACTS / path).read_bytes()).hexdigest() == digest, f"{path} was edited by hand"
