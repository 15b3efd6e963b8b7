"""Every Kubernetes object the program authors, in every stack, is valid against the real schema.

Core kinds go through kubernetes-validate (strict: unknown fields are errors) at the Kubernetes
version of the cluster they land on; custom resources through their CRD schema; Argo kinds through
hera's models with a round trip. A kind with no schema available fails the test rather than pass.
"""

from __future__ import annotations

import pytest
from support.plans import Plan
from support.schemas import ARGO_KINDS, CRD_FACTS, validate_argo, validate_core, validate_custom

from planner.render import is_authored_object
from planner.values import UNKNOWN, unwrap


def kubernetes_version(plan: Plan, provider_urn: str) -> str:
    """The version of the cluster behind a provider: the AKS cluster's, or the existing one's from config."""
    clusters = {
        r.name.removesuffix("-cluster"): unwrap(r.inputs)["kubernetesVersion"]
        for r in plan.of_type("azure-native:containerservice:ManagedCluster")
    }
    provider = plan.by_urn(provider_urn)
    name = provider.name.removesuffix("-k8s")
    if name in clusters:
        return str(clusters[name])
    from components.config import parse_config, raw_config_from_pulumi
    from planner.evaluate import engine_config, stack_config

    values, _, _ = engine_config(stack_config(plan.evaluation.stack), [], {})
    existing = parse_config(raw_config_from_pulumi(values)).gpu_cluster.existing
    assert existing is not None, f"no Kubernetes version known for provider {provider.name}"
    return existing.kubernetes_version


# Kinds whose schema is not available offline: cert-manager's and KEDA's CRDs are not in the upstream reference
# data. Their objects are checked by the gateway tests against the fields cert-manager v1.19 documents, and by
# tests/test_day2_aks.py against a hand-checked copy of KEDA's ScaledObject schema.
NO_OFFLINE_SCHEMA = {
    ("cert-manager.io", "ClusterIssuer"),
    ("cert-manager.io", "Certificate"),
    ("keda.sh", "ScaledObject"),
}


def _is_unknown(value: object) -> bool:
    return type(value).__name__ == "Unknown"


def _known(value: object) -> object:
    """Values unknown until deploy become a marker string, so the shape around them is still checked;
    a field that is unknown as a whole (say a Secret's data, read from another object) is left out."""
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items() if not (_is_unknown(v) and k in ("data", "stringData"))}
    if isinstance(value, list):
        return [_known(v) for v in value]
    return UNKNOWN if _is_unknown(value) else value


def test_authored_objects_are_valid(any_stack: Plan) -> None:
    problems: list[str] = []
    checked = 0
    for registration in any_stack.registrations:
        if not is_authored_object(registration):
            continue
        obj: dict = _known(unwrap(registration.inputs))  # type: ignore[assignment]
        kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
        group = api_version.split("/")[0] if "/" in api_version else ""
        where = f"{kind}/{(obj.get('metadata') or {}).get('name', registration.name)}"
        if (group, kind) in NO_OFFLINE_SCHEMA:
            continue
        if kind in ARGO_KINDS:
            errors = validate_argo(obj)
        elif (CRD_FACTS / f"{group}_{kind}.json").exists():
            errors = validate_custom(obj)
        else:
            errors = validate_core(obj, kubernetes_version(any_stack, registration.provider))
        problems += [f"{where}: {e}" for e in errors]
        checked += 1
    assert not problems, "\n".join(problems)
    if checked == 0:
        pytest.skip(f"{any_stack.evaluation.stack} authors no Kubernetes objects")
