"""`make preflight`: the rights and quota each stack needs, and the checks against local stand-ins for a cluster's
API server (requests read back with the kubernetes client's models) and Azure's compute usages API (responses
built with the Azure SDK's models, served over TLS as the SDK requires for a bearer token)."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.credentials import AccessToken
from azure.mgmt.compute._utils.model_base import SdkJSONEncoder
from azure.mgmt.compute.models import Usage, UsageName
from kubernetes.client import ApiClient, V1SelfSubjectAccessReview, V1SubjectAccessReviewStatus
from pytest_httpserver import HTTPServer
from support.plans import Plan
from werkzeug import Request, Response

from planner import preflight
from planner.preflight_needs import PRESUMED_CRDS, Need, Resource, builtin_resources, cluster_needs, fact_resources
from planner.quota import SPOT_QUOTA, TOTAL_QUOTA, vcpu_needs

REFERENCE_CHARTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "helm-charts"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
GATEWAY_GROUP = "gateway.networking.k8s.io"


def needs_of(plan: Plan, rendered: Path | None = None) -> dict[str, set[Need]]:
    found = cluster_needs(plan.registrations, rendered)
    assert not found.unmapped, found.unmapped
    return found.needs


def quota_vcpus(plan: Plan) -> dict[str, int]:
    quotas, unknown = vcpu_needs(plan.registrations)
    assert not unknown
    return {quota: sum(p.nodes * p.vcpus for p in pools) for quota, pools in quotas.items()}


# ----------------------------------------------------------------------------------------------------------
# Derived needs
# ----------------------------------------------------------------------------------------------------------


def test_builtin_kinds_map_to_their_rest_resources() -> None:
    table = builtin_resources()
    assert table[("", "Namespace")] == Resource("namespaces", namespaced=False)
    assert table[("", "Secret")] == Resource("secrets", namespaced=True)
    assert table[("rbac.authorization.k8s.io", "ClusterRole")] == Resource("clusterroles", namespaced=False)
    assert table[("networking.k8s.io", "NetworkPolicy")] == Resource("networkpolicies", namespaced=True)
    assert table[("apiextensions.k8s.io", "CustomResourceDefinition")].plural == "customresourcedefinitions"
    assert table[("storage.k8s.io", "StorageClass")] == Resource("storageclasses", namespaced=False)


def test_crd_kinds_map_from_the_facts() -> None:
    table = fact_resources()
    assert table[(GATEWAY_GROUP, "GatewayClass")] == Resource("gatewayclasses", namespaced=False)
    assert table[(GATEWAY_GROUP, "HTTPRoute")] == Resource("httproutes", namespaced=True)
    assert table[("argoproj.io", "ClusterWorkflowTemplate")] == Resource("clusterworkflowtemplates", False)


@pytest.mark.skipif(not REFERENCE_CHARTS.is_dir(), reason="no reference charts")
def test_cert_manager_kinds_match_its_chart_crds() -> None:
    for (group, kind), resource in PRESUMED_CRDS.items():
        if group != "cert-manager.io":
            continue
        text = (
            REFERENCE_CHARTS / "cert-manager-v1.19.1" / "templates" / f"crd-{group}_{resource.plural}.yaml"
        ).read_text()
        assert f"kind: {kind}\n" in text
        assert re.search(rf"scope: {'Namespaced' if resource.namespaced else 'Cluster'}\b", text)


def test_prod_needs_cluster_wide_rights_on_the_gpu_cluster(prod: Plan) -> None:
    gpu = needs_of(prod)["prod-gpu"]
    assert Need("prod-gpu", "create", GATEWAY_GROUP, "gatewayclasses", None) in gpu
    assert Need("prod-gpu", "create", "rbac.authorization.k8s.io", "clusterroles", None) in gpu
    assert Need("prod-gpu", "create", "", "namespaces", None) in gpu
    assert Need("prod-gpu", "delete", GATEWAY_GROUP, "httproutes", "envoy-gateway-system") in gpu
    # Helm's release records: Secrets in each release's namespace.
    assert {n.verb for n in gpu if n.resource == "secrets" and n.namespace == "nim"} >= {"create", "list", "update"}
    assert Need("prod-gpu", "create", "", "namespaces", None).label == "create namespaces (cluster-wide)"


def test_every_stack_needs_namespaces_and_helm_records_on_each_cluster(any_stack: Plan) -> None:
    stack = any_stack.evaluation.stack
    needs = needs_of(any_stack)
    assert set(needs) == {f"{stack}-gpu", f"{stack}-mgmt"}
    for cluster, found in needs.items():
        assert Need(cluster, "create", "", "namespaces", None) in found
        assert Need(cluster, "list", "", "secrets", "envoy-gateway-system" if "gpu" in cluster else "argocd") in found


def test_rendered_chart_objects_and_their_crds_are_needs(prod: Plan, tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget", "plural": "widgets"}},
    }
    objects = [
        crd,
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "elsewhere"}},
    ]
    (tmp_path / "prod-gpu").mkdir()
    (tmp_path / "prod-gpu" / "volcano.yaml").write_text(yaml.safe_dump_all(objects))
    found = cluster_needs(prod.registrations, tmp_path)
    gpu = found.needs["prod-gpu"]
    assert Need("prod-gpu", "create", "apiextensions.k8s.io", "customresourcedefinitions", None) in gpu
    assert Need("prod-gpu", "create", "example.com", "widgets", None) in gpu
    assert Need("prod-gpu", "patch", "apps", "deployments", "volcano-system") in gpu
    assert Need("prod-gpu", "create", "", "configmaps", "elsewhere") in gpu
    assert "prod-gpu/volcano" not in found.unrendered and "prod-gpu/cert-manager" in found.unrendered


def test_vcpus_per_quota_at_max_scale(dev: Plan, staging: Plan, prod: Plan) -> None:
    # staging: 3 x NC40ads_H100_v5 regular (40 vCPUs each) and 4 spot.
    assert quota_vcpus(staging)["standardNCADSH100v5Family"] == 120
    assert quota_vcpus(staging)[SPOT_QUOTA] == 160
    assert quota_vcpus(dev)["standardNCADSA100v4Family"] == 48
    # prod's GPUs are DGX Cloud's: only the management cluster's pools, system pool included, draw on Azure.
    prod_quota = quota_vcpus(prod)
    assert set(prod_quota) == {"standardDDSv5Family", TOTAL_QUOTA}
    assert prod_quota[TOTAL_QUOTA] == prod_quota["standardDDSv5Family"]
    pools = {p.pool for p in vcpu_needs(prod.registrations)[0][TOTAL_QUOTA]}
    assert "prod-mgmt-cluster/system" in pools
    for plan in (dev, staging, prod):
        quotas = quota_vcpus(plan)
        assert quotas[TOTAL_QUOTA] == sum(v for k, v in quotas.items() if k not in (TOTAL_QUOTA, SPOT_QUOTA))


# ----------------------------------------------------------------------------------------------------------
# A cluster's API server
# ----------------------------------------------------------------------------------------------------------


class _Body:
    """What ApiClient.deserialize reads: a response's `data`."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def kubeconfig_for(url: str, path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gpu", "cluster": {"server": url}}],
        "users": [{"name": "tenant", "user": {"token": "tenant-token"}}],
        "contexts": [{"name": "gpu", "context": {"cluster": "gpu", "user": "tenant"}}],
        "current-context": "gpu",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class FakeCluster:
    """Answers SelfSubjectAccessReviews, denying the rights in `deny`; every review is read back with the client."""

    def __init__(self, server: HTTPServer, deny: set[tuple[str, str, str, str | None]]) -> None:
        self.deny = deny
        self.reviews: list[V1SelfSubjectAccessReview] = []
        server.expect_request(SSAR_PATH, method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer tenant-token"
        review = ApiClient().deserialize(_Body(request.get_data()), "V1SelfSubjectAccessReview")
        assert isinstance(review, V1SelfSubjectAccessReview)
        assert (review.api_version, review.kind) == ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
        attributes = review.spec.resource_attributes
        assert attributes is not None and review.spec.non_resource_attributes is None
        self.reviews.append(review)
        key = (attributes.verb, attributes.group, attributes.resource, attributes.namespace)
        review.status = V1SubjectAccessReviewStatus(allowed=key not in self.deny)
        body = json.dumps(ApiClient().sanitize_for_serialization(review))
        return Response(body, status=201, content_type="application/json")


def test_the_cluster_denies_exactly_one_right(prod: Plan, httpserver: HTTPServer, tmp_path: Path) -> None:
    cluster = FakeCluster(httpserver, deny={("create", GATEWAY_GROUP, "gatewayclasses", None)})
    needs = needs_of(prod)["prod-gpu"]
    kubeconfig = kubeconfig_for(httpserver.url_for("/").rstrip("/"), tmp_path / "kubeconfig")
    denied = preflight.denied_rights(needs, kubeconfig)
    assert denied == [Need("prod-gpu", "create", GATEWAY_GROUP, "gatewayclasses", None)]
    assert len(cluster.reviews) == len(needs)  # one review per distinct need


def test_an_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    kubeconfig = kubeconfig_for("https://127.0.0.1:9", tmp_path / "kubeconfig")
    with pytest.raises(preflight.Unreachable) as raised:
        preflight.denied_rights([Need("c", "create", "", "namespaces", None)], kubeconfig)
    assert "\n" not in str(raised.value) and "127.0.0.1:9" in str(raised.value)


# ----------------------------------------------------------------------------------------------------------
# Azure's compute usages API
# ----------------------------------------------------------------------------------------------------------


class StaticToken:
    """A TokenCredential with one token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("static-arm-token", int(time.time()) + 3600)


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


@pytest.fixture
def azure(tmp_path: Path) -> Iterator[tuple[HTTPServer, Path]]:
    context, cert_file = _self_signed(tmp_path)
    server = HTTPServer(host="localhost", ssl_context=context)
    server.start()
    try:
        yield server, cert_file
    finally:
        server.clear()
        server.stop()


def serve_usages(server: HTTPServer, location: str, usages: dict[str, tuple[int, int]]) -> None:
    models = [
        Usage(current_value=used, limit=limit, name=UsageName(value=name, localized_value=f"{name} vCPUs"))
        for name, (used, limit) in usages.items()
    ]

    def handle(request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer static-arm-token"
        assert request.args.get("api-version")
        return Response(json.dumps({"value": models}, cls=SdkJSONEncoder), content_type="application/json")

    path = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/locations/{location}/usages"
    server.expect_request(path, method="GET").respond_with_handler(handle)


def compute_for(server: HTTPServer, cert_file: Path) -> Any:
    return preflight.compute_client(
        SUBSCRIPTION,
        base_url=server.url_for("/").rstrip("/"),
        credential=StaticToken(),
        connection_verify=str(cert_file),
        retry_total=0,
    )


def test_a_subscription_short_of_gpu_quota(staging: Plan, azure: tuple[HTTPServer, Path]) -> None:
    server, cert_file = azure
    serve_usages(
        server,
        "westeurope",
        {
            "standardNCADSH100v5Family": (0, 40),
            "standardDDSv5Family": (0, 350),
            TOTAL_QUOTA: (10, 1000),
            SPOT_QUOTA: (0, 200),
        },
    )
    found = preflight.usages(compute_for(server, cert_file), "westeurope")
    assert found["standardNCADSH100v5Family"] == (0, 40)
    lines, tight = preflight.short_quotas(vcpu_needs(staging.registrations)[0], found, "westeurope", first_up=False)
    assert len(lines) == 1 and not tight
    assert lines[0].startswith(
        "quota: standardNCADSH100v5Family needs 120 vCPUs, limit 40, in use 0 — request +80 in westeurope"
    )


def test_azure_unreachable_is_one_line() -> None:
    client = preflight.compute_client(
        SUBSCRIPTION, base_url="https://localhost:9", credential=StaticToken(), retry_total=0
    )
    with pytest.raises(preflight.Unreachable) as raised:
        preflight.usages(client, "westeurope")
    assert "\n" not in str(raised.value)


# ----------------------------------------------------------------------------------------------------------
# The whole preflight
# ----------------------------------------------------------------------------------------------------------


def test_prod_preflight_lists_exactly_the_denied_right_and_the_short_quota(
    prod: Plan, httpserver: HTTPServer, azure: tuple[HTTPServer, Path], tmp_path: Path
) -> None:
    FakeCluster(httpserver, deny={("create", "rbac.authorization.k8s.io", "clusterroles", None)})
    server, cert_file = azure
    ddsv5 = quota_vcpus(prod)["standardDDSv5Family"]
    serve_usages(server, "westeurope", {"standardDDSv5Family": (16, ddsv5), TOTAL_QUOTA: (16, 1000)})
    args = argparse.Namespace(
        stack="prod",
        kubeconfig=kubeconfig_for(httpserver.url_for("/").rstrip("/"), tmp_path / "kubeconfig"),
        context=None,
        subscription=SUBSCRIPTION,
        rendered=tmp_path / "no-renders",
        first_up=True,
    )
    report = preflight.run(args, compute=compute_for(server, cert_file), evaluation=prod.evaluation)
    assert report.failed
    problems = [line for line in report.lines if line.startswith(("missing:", "quota:", "rights: prod-gpu not"))]
    assert problems == [
        "missing: create clusterroles.rbac.authorization.k8s.io (cluster-wide) on prod-gpu — ask the cluster admin "
        "for a (Cluster)Role granting `create` on `clusterroles.rbac.authorization.k8s.io` to the deploying identity",
        f"quota: standardDDSv5Family needs {ddsv5} vCPUs, limit {ddsv5}, in use 16 — request "
        "+16 in westeurope  [prod-mgmt-cluster/system 6 x Standard_D8ds_v5, prod-mgmt-pool-workflows 11 x "
        "Standard_D16ds_v5]",
    ]
    # On a later `up` the 16 vCPUs in use may be the stack's own nodes: the quota is tight, not short.
    args.first_up = False
    report = preflight.run(args, compute=compute_for(server, cert_file), evaluation=prod.evaluation)
    assert [line for line in report.lines if line.startswith(("missing:", "quota"))] == [
        problems[0],
        problems[1].replace("quota:", "quota (tight):") + " — fine if that usage is this stack's own",
    ]


def test_prod_preflight_without_a_cluster_says_so_in_one_line(prod: Plan, tmp_path: Path) -> None:
    args = argparse.Namespace(
        stack="prod",
        kubeconfig=kubeconfig_for("https://127.0.0.1:9", tmp_path / "kubeconfig"),
        context=None,
        subscription=None,
        rendered=None,
        first_up=False,
    )
    report = preflight.run(args, compute=_NoAzure(), evaluation=prod.evaluation)
    assert report.failed
    unreachable = [line for line in report.lines if "prod-gpu" in line and "not reachable" in line]
    assert len(unreachable) == 1 and unreachable[0].startswith("rights: prod-gpu not reachable: cannot reach")


class _NoAzure:
    class usage:  # the SDK client's attribute name
        @staticmethod
        def list(location: str) -> list[Any]:
            return []
