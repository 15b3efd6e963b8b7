"""Pod security of what the charts really deploy (issue 16): every rendered container runs under the `restricted`
Pod Security rules the values can give it, and only pods that call the Kubernetes API carry a service account
token. The scan (tests/test_security_scan.py) covers the same ground check by check; these name the rule and the
few containers whose chart has no key for it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from support.rendered import containers, pod_specs, rendered_release, skip_reason, stack_releases

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

# Containers (`<release>/<Kind>/<name>/<container>` patterns) whose chart has no values key for the rule, with the
# template that was checked. The GPU Operator's own Deployment and hook Jobs set no securityContext at all.
NOT_SETTABLE = {
    "non-root": {
        "gpu-operator/Deployment/gpu-operator/*": "gpu-operator v26.7.0 templates/operator.yaml",
        "gpu-operator/Job/gpu-operator-cleanup-gpucluster/*": "templates/cleanup_gpucluster.yaml",
        "gpu-operator/Job/gpu-operator-upgrade-crd/*": "templates/upgrade_crd.yaml",
    },
    "RuntimeDefault seccomp": {
        "gpu-operator/Deployment/gpu-operator/*": "gpu-operator v26.7.0 templates/operator.yaml",
        "gpu-operator/Job/gpu-operator-cleanup-gpucluster/*": "templates/cleanup_gpucluster.yaml",
        "gpu-operator/Job/gpu-operator-upgrade-crd/*": "templates/upgrade_crd.yaml",
        # Its container context is nfd-master's (no seccomp key there) and the pod has no securityContext key.
        "gpu-operator/Job/gpu-operator-node-feature-discovery-prune/*": "node-feature-discovery post-delete-job.yaml",
    },
    "no privilege escalation": {
        "gpu-operator/Deployment/gpu-operator/*": "gpu-operator v26.7.0 templates/operator.yaml",
        "gpu-operator/Job/gpu-operator-cleanup-gpucluster/*": "templates/cleanup_gpucluster.yaml",
        "gpu-operator/Job/gpu-operator-upgrade-crd/*": "templates/upgrade_crd.yaml",
    },
    "every capability dropped": {
        "gpu-operator/Deployment/gpu-operator/*": "gpu-operator v26.7.0 templates/operator.yaml",
        "gpu-operator/Job/gpu-operator-cleanup-gpucluster/*": "templates/cleanup_gpucluster.yaml",
        "gpu-operator/Job/gpu-operator-upgrade-crd/*": "templates/upgrade_crd.yaml",
    },
}

# Pods (`<release>/<Kind>/<name>`) that call the Kubernetes API and so keep their token: controllers, webhooks
# that register themselves, certificate and CRD installers, Argo CD's API server.
NEEDS_API = (
    "argo-workflows/Deployment/argo-workflows-server",
    "argo-workflows/Deployment/argo-workflows-workflow-controller",
    "argo-workflows/Job/argo-workflows-crd-install",
    "argocd/Deployment/argocd-applicationset-controller",
    "argocd/Deployment/argocd-notifications-controller",
    "argocd/Deployment/argocd-server",
    "argocd/Job/argocd-redis-secret-init",
    "argocd/StatefulSet/argocd-application-controller",
    "cert-manager/*/cert-manager*",
    "envoy-gateway*/Deployment/envoy-gateway",
    "envoy-gateway*/Job/*-gateway-helm-certgen",
    "gpu-operator/*/*",
    "volcano/*/volcano-*",
)
# Pods that need no API access but whose chart has no pod-level key: nim-llm 1.1.2 runs NIM as the namespace's
# default ServiceAccount, which no Role binds.
TOKEN_NOT_SETTABLE = ("llama-*/StatefulSet/llama-*",)


def effective(container: Mapping[str, Any], pod: Mapping[str, Any], key: str) -> Any:
    """A securityContext field as the kubelet applies it: the container's, else the pod's."""
    own = container.get("securityContext") or {}
    return own[key] if key in own else (pod.get("securityContext") or {}).get(key)


def broken_rules(container: Mapping[str, Any], pod: Mapping[str, Any]) -> Iterator[str]:
    if effective(container, pod, "runAsNonRoot") is not True:
        yield "non-root"
    if (effective(container, pod, "seccompProfile") or {}).get("type") != "RuntimeDefault":
        yield "RuntimeDefault seccomp"
    own = container.get("securityContext") or {}
    if own.get("allowPrivilegeEscalation") is not False:
        yield "no privilege escalation"
    if "ALL" not in ((own.get("capabilities") or {}).get("drop") or []):
        yield "every capability dropped"


def matches(name: str, patterns: Any) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


@pytest.mark.parametrize(("stack", "release"), stack_releases())
def test_every_container_runs_restricted_where_the_chart_lets_us(stack: str, release: str) -> None:
    problems = [
        f"{where}/{container['name']}: not {rule}"
        for obj in rendered_release(stack, release).objects
        for where, pod in pod_specs(obj)
        for container in containers(pod)
        for rule in broken_rules(container, pod)
        if not matches(f"{release}/{where}/{container['name']}", NOT_SETTABLE[rule])
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("stack", "release"), stack_releases())
def test_only_pods_that_call_the_api_mount_a_service_account_token(stack: str, release: str) -> None:
    objects = rendered_release(stack, release).objects
    unmounted_accounts = {
        (obj.get("metadata") or {}).get("name")
        for obj in objects
        if obj.get("kind") == "ServiceAccount" and obj.get("automountServiceAccountToken") is False
    }
    problems = [
        f"{where} mounts a token it does not need"
        for obj in objects
        for where, pod in pod_specs(obj)
        if pod.get("automountServiceAccountToken") is not False
        # The pod inherits automountServiceAccountToken: false from its ServiceAccount (mlflow's chart sets it there).
        and not (
            pod.get("automountServiceAccountToken") is None and pod.get("serviceAccountName") in unmounted_accounts
        )
        and not matches(f"{release}/{where}", NEEDS_API + TOKEN_NOT_SETTABLE)
    ]
    assert not problems, "\n".join(problems)


def test_the_rules_catch_a_container_that_runs_as_root() -> None:
    pod = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert list(broken_rules({"name": "ok", "securityContext": restricted}, pod)) == []
    root = {"name": "root", "securityContext": {**restricted, "runAsNonRoot": False}}
    assert list(broken_rules(root, pod)) == ["non-root"]
