"""`python -m planner.preflight --stack prod`: before the first `up`, are the rights and the quota there?

From the stack's offline plan (planner/preflight_needs.py derives the needs) this asks
- an existing cluster (prod's DGX Cloud GPU cluster, by kubeconfig: `--kubeconfig`, else the stack's
  `llmops:gpuClusterKubeconfig` through `pulumi config get`) one SelfSubjectAccessReview per distinct right;
  AKS clusters the deployment creates are skipped: the deployer gets Azure Kubernetes Service RBAC Cluster Admin;
- Azure's compute usages API (`az vm list-usage`) for the subscription's vCPU limits and usage in the stack's
  region: each VM family at max scale, the regional total (`cores`) and, for spot pools, `lowPriorityCores`.
  Credentials: DefaultAzureCredential (`az login`, OIDC/workload identity, environment); the subscription from
  `--subscription`, AZURE_SUBSCRIPTION_ID or ARM_SUBSCRIPTION_ID.

One line per missing right or short quota, saying what to ask for. Exit 0 when everything is there, 1 when
something is missing or a cluster/Azure could not be asked (one line, no traceback), 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.evaluate import PROJECT_DIR, Evaluation, evaluate, platform_config_of
from planner.preflight_needs import Need, cluster_needs
from planner.quota import SPOT_QUOTA, TOTAL_QUOTA, QuotaPool, vcpu_needs

KUBECONFIG_KEY = "llmops:gpuClusterKubeconfig"
REQUEST_TIMEOUT = (5, 15)  # seconds: connect, read


class Unreachable(Exception):
    """A cluster or Azure could not be asked; the message is one line."""


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def problem(self, line: str) -> None:
        self.lines.append(line)
        self.failed = True


def _one_line(error: BaseException) -> str:
    text = " ".join(str(getattr(error, "reason", None) or error).split()) or type(error).__name__
    # urllib3 wraps the socket's error in two layers of pool description: the errno line is what matters.
    if found := re.search(r"\[Errno -?\d+\][^)\"']*", text):
        return found[0].strip()
    return text if len(text) <= 200 else text[:197] + "..."


# ----------------------------------------------------------------------------------------------------------
# Cluster rights
# ----------------------------------------------------------------------------------------------------------


def denied_rights(needs: Iterable[Need], kubeconfig: Path, context: str | None = None) -> list[Need]:
    """The needs the cluster's SelfSubjectAccessReviews deny, one review per need."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        api_client = config.new_client_from_config(config_file=str(kubeconfig), context=context)
    except (ConfigException, OSError, ValueError) as error:
        raise Unreachable(f"kubeconfig {kubeconfig}: {_one_line(error)}") from None
    api_client.configuration.retries = 0
    authorization = client.AuthorizationV1Api(api_client)
    denied = []
    try:
        for need in sorted(needs):
            review = client.V1SelfSubjectAccessReview(
                api_version="authorization.k8s.io/v1",
                kind="SelfSubjectAccessReview",
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        verb=need.verb, group=need.group, resource=need.resource, namespace=need.namespace
                    )
                ),
            )
            answer = authorization.create_self_subject_access_review(review, _request_timeout=REQUEST_TIMEOUT)
            if not (answer.status and answer.status.allowed):
                denied.append(need)
    except client.ApiException as error:
        raise Unreachable(
            f"{api_client.configuration.host} refused the access review: {error.status} {error.reason}"
        ) from None
    except Exception as error:  # urllib3's connection errors, TLS, timeouts: one line, not a traceback
        raise Unreachable(f"cannot reach {api_client.configuration.host}: {_one_line(error)}") from None
    finally:
        api_client.close()
    return denied


def stack_kubeconfig(stack: str) -> str | None:
    """The stack's GPU-cluster kubeconfig through the Pulumi CLI (it decrypts the secret), or None."""
    try:
        result = subprocess.run(
            ["pulumi", "config", "get", KUBECONFIG_KEY, "--stack", stack, "--cwd", str(PROJECT_DIR)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 and result.stdout.strip() else None


# ----------------------------------------------------------------------------------------------------------
# Azure quota
# ----------------------------------------------------------------------------------------------------------


def compute_client(subscription: str, base_url: str | None = None, credential: Any = None, **kwargs: Any) -> Any:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient

    return ComputeManagementClient(credential or DefaultAzureCredential(), subscription, base_url, **kwargs)


def usages(client: Any, location: str) -> dict[str, tuple[int, int]]:
    """Quota name -> (in use, limit) in `location`."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    try:
        return {u.name.value: (int(u.current_value), int(u.limit)) for u in client.usage.list(location)}
    except ClientAuthenticationError as error:
        raise Unreachable(f"Azure credentials: {_one_line(error).split(' Attempted credentials')[0]}") from None
    except (AzureError, OSError) as error:
        raise Unreachable(f"Azure compute usages in {location}: {_one_line(error)}") from None


def short_quotas(
    needed: dict[str, list[QuotaPool]], found: dict[str, tuple[int, int]], location: str, *, first_up: bool = True
) -> tuple[list[str], list[str]]:
    """(short, tight): quotas the pools cannot fit in, and, unless `first_up`, those they fit in only if what is in
    use is partly this stack's own nodes (a later `up`: the usages API cannot tell whose nodes they are). On a first
    `up` nothing of the stack exists, so the whole usage counts and a tight quota is short."""
    short: list[str] = []
    tight: list[str] = []
    for quota, pools in sorted(needed.items()):
        vcpus = sum(p.total_vcpus for p in pools)
        in_use, limit = found.get(quota, (0, 0))
        if in_use + vcpus <= limit:
            continue
        what = {TOTAL_QUOTA: " (regional total vCPUs)", SPOT_QUOTA: " (spot vCPUs, every family)"}.get(quota, "")
        detail = ", ".join(f"{p.pool} {p.nodes} x {p.vm_size}{' spot' if p.spot else ''}" for p in pools)
        line = (
            f"quota: {quota}{what} needs {vcpus} vCPUs, limit {limit}, in use {in_use} — "
            f"request +{in_use + vcpus - limit} in {location}  [{detail}]"
        )
        (short if first_up or vcpus > limit else tight).append(line)
    return short, tight


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, compute: Any = None, evaluation: Evaluation | None = None) -> Report:
    """The preflight of `args.stack`. `compute` (a ComputeManagementClient) and `evaluation` (the stack's offline
    plan) default to the real ones."""
    report = Report()
    evaluation = evaluation or evaluate(args.stack)
    if not evaluation.ok:
        print("\n".join(evaluation.config_problems), file=sys.stderr)
        raise SystemExit(2)
    config = platform_config_of(evaluation.stack_config)
    rendered = args.rendered or PROJECT_DIR / "build" / "plan" / args.stack / "rendered"
    found = cluster_needs(evaluation.registrations, rendered if rendered.is_dir() else None)
    existing = f"{args.stack}-gpu" if config.gpu_cluster.existing is not None else None
    for cluster, needs in sorted(found.needs.items()):
        if cluster != existing:
            report.lines.append(
                f"rights: {cluster} is an AKS cluster the deployment creates; the deployer gets Azure Kubernetes "
                "Service RBAC Cluster Admin on it, not checked"
            )
            continue
        _check_cluster(args, cluster, needs, report)
    if found.unrendered:
        report.lines.append(
            f"rights: charts not rendered (only Helm's own needs checked; `make render STACK={args.stack}`): "
            + ", ".join(sorted(found.unrendered))
        )
    for kind in sorted(found.unmapped):
        report.lines.append(f"rights: no resource name known for {kind}, not checked")
    _check_quota(args, config.azure.location, evaluation.registrations, report, compute)
    return report


def _check_cluster(args: argparse.Namespace, cluster: str, needs: set[Need], report: Report) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = args.kubeconfig
        if path is None:
            text = stack_kubeconfig(args.stack)
            if text is None:
                report.problem(
                    f"rights: {cluster} not reachable: no kubeconfig (pass --kubeconfig / make KUBECONFIG_FILE=…, "
                    f"or `pulumi config get {KUBECONFIG_KEY} --stack {args.stack}` must work)"
                )
                return
            path = Path(scratch) / "kubeconfig"
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        try:
            denied = denied_rights(needs, path, args.context)
        except Unreachable as error:
            report.problem(f"rights: {cluster} not reachable: {error}")
            return
    for need in denied:
        report.problem(
            f"missing: {need.label} on {cluster} — ask the cluster admin for a (Cluster)Role granting "
            f"`{need.verb}` on `{need.resource_label}`"
            + (f" in namespace {need.namespace}" if need.namespace else "")
            + " to the deploying identity"
        )
    if not denied:
        report.lines.append(f"rights: {cluster}: all {len(needs)} rights granted")


def _check_quota(
    args: argparse.Namespace, location: str, registrations: list[Any], report: Report, compute: Any
) -> None:
    needed, unknown = vcpu_needs(registrations)
    for size in unknown:
        report.problem(f"quota: no vCPU/family facts for {size}; add it to planner/quota.py")
    if not needed:
        report.lines.append("quota: no Azure node pools")
        return
    subscription = args.subscription or os.environ.get("AZURE_SUBSCRIPTION_ID") or os.environ.get("ARM_SUBSCRIPTION_ID")
    if compute is None and not subscription:
        report.problem("quota: no subscription (pass --subscription or set AZURE_SUBSCRIPTION_ID)")
        return
    try:
        found = usages(compute or compute_client(str(subscription)), location)
    except Unreachable as error:
        report.problem(f"quota: Azure not reachable: {error}")
        return
    short, tight = short_quotas(needed, found, location, first_up=args.first_up)
    for line in short:
        report.problem(line)
    for line in tight:
        report.lines.append(line.replace("quota:", "quota (tight):", 1) + " — fine if that usage is this stack's own")
    if not short and not tight:
        report.lines.append(f"quota: {', '.join(sorted(needed))} sufficient in {location}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planner.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--kubeconfig", type=Path, help="the existing GPU cluster's kubeconfig")
    parser.add_argument("--context", help="kubeconfig context (default: its current context)")
    parser.add_argument("--subscription", help="Azure subscription id")
    parser.add_argument(
        "--first-up",
        action="store_true",
        help="nothing of the stack exists yet: the subscription's whole usage counts against the limits (default: "
        "a quota is short when the pools alone exceed it; tight ones, short only if the usage is others', are listed)",
    )
    parser.add_argument("--rendered", type=Path, help="rendered charts (default build/plan/<stack>/rendered)")
    args = parser.parse_args(argv)
    # azure-identity logs each failed credential as a warning; the one-line reason is printed instead.
    logging.getLogger("azure").setLevel(logging.CRITICAL)
    report = run(args)
    for line in report.lines:
        print(line)
    print(f"Preflight {args.stack}: {'MISSING RIGHTS OR QUOTA' if report.failed else 'ok'}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
