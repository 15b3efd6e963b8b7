"""Rules for ArgoCD: no credential in the chart's values, and no AppProject that lets an application escape.

Credentials belong in Secrets ArgoCD reads by label (repositories, repository credential templates, clusters) or
by reference (`$<secret>:<key>` in argocd-cm): in the release's values they make the whole values input secret, so a
preview shows no diff, and they land in the Helm release Secret. Policies see secrets revealed, so the rule looks
for the fields the chart turns into credentials.

ArgoCD puts an Application that names no project in `default`, which argocd-server creates at start with every
repository, every destination and every cluster-scoped kind allowed: the program must manage it, empty.
"""

from __future__ import annotations

from typing import Any

import yaml
from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, StackValidationArgs

from .common import helm_releases, helm_values, meta_name, meta_namespace
from .props import chart_name, get_path, is_mapping, items_of, walk
from .rules import MANDATORY, Rules, only
from .tokens import HELM_RELEASE

RULES = Rules()

ARGOCD_CHART = "argo-cd"
ARGOCD_GROUP = "argoproj.io"
PROJECT_KINDS = ("AppProject", "AppProjectPatch")
DEFAULT_PROJECT = "default"
# Fields of a repository or credential template Secret that hold a credential (ArgoCD declarative setup).
REPOSITORY_CREDENTIALS = (
    "password",
    "bearerToken",
    "sshPrivateKey",
    "tlsClientCertKey",
    "githubAppPrivateKey",
    "gcpServiceAccountKey",
)
# Fields of a cluster's `config` that hold a credential.
CLUSTER_CREDENTIALS = ("bearerToken", "password", "keyData")
# configs.secret fields the chart writes into argocd-secret.
ARGOCD_SECRET_FIELDS = (
    "githubSecret",
    "gitlabSecret",
    "bitbucketServerSecret",
    "bitbucketUUID",
    "gogsSecret",
    "argocdServerAdminPassword",
)
# argocd-cm keys holding YAML whose `clientSecret` must reference a Secret (`$…`) rather than be the secret.
SSO_CONFIG_KEYS = ("oidc.config", "dex.config")


def _filled(value: Any) -> bool:
    return value not in (None, "") and not (is_mapping(value) and len(value) == 0)


def _literal_client_secrets(text: str) -> bool:
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return any(
        key == "clientSecret" and isinstance(value, str) and value and not value.startswith("$")
        for _, key, value in walk(parsed)
    )


def argocd_credential_problems(values: Any) -> list[str]:
    """The places in argo-cd chart values that carry a credential."""
    configs = get_path(values, "configs", default={})
    problems = []
    for section in ("repositories", "credentialTemplates"):
        entries = get_path(configs, section, default={})
        for entry in entries if is_mapping(entries) else {}:
            problems += [
                f"configs.{section}.{entry}.{field}"
                for field in REPOSITORY_CREDENTIALS
                if _filled(get_path(entries, entry, field))
            ]
    clusters = get_path(configs, "clusterCredentials", default={})
    for entry in clusters if is_mapping(clusters) else {}:
        problems += [
            f"configs.clusterCredentials.{entry}.config.{'.'.join((*path, key))}"
            for path, key, value in walk(get_path(clusters, entry, "config", default={}))
            if key in CLUSTER_CREDENTIALS and _filled(value)
        ]
    problems += [
        f"configs.secret.{field}" for field in ARGOCD_SECRET_FIELDS if _filled(get_path(configs, "secret", field))
    ]
    if _filled(get_path(configs, "secret", "azureDevops", "password")):
        problems.append("configs.secret.azureDevops.password")
    if _filled(get_path(configs, "secret", "extra")):
        problems.append("configs.secret.extra")
    for key in SSO_CONFIG_KEYS:
        text = get_path(configs, "cm", key)
        if isinstance(text, str) and _literal_client_secrets(text):
            problems.append(f"configs.cm.{key} clientSecret (not a `$<secret>:<key>` reference)")
    if _filled(get_path(values, "notifications", "secret", "items")):
        problems.append("notifications.secret.items")
    return problems


@RULES.resource("argocd-values-carry-no-credentials", MANDATORY)
def argocd_values_carry_no_credentials(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The argo-cd release's values hold no credential: repository, cluster and SSO secrets live in labelled Secrets."""
    only(args, "not a Helm release", HELM_RELEASE)
    if chart_name(args.props) != ARGOCD_CHART:
        args.not_applicable("not the argo-cd chart")
    problems = argocd_credential_problems(helm_values(args.props))
    if problems:
        report_violation(
            f"Helm release {args.name!r} carries credentials in its values ({', '.join(problems)}): they make the "
            "values secret as a whole and land in the Helm release Secret. Put repositories in Secrets labelled "
            "`argocd.argoproj.io/secret-type: repository`, and reference SSO secrets as `$<secret>:<key>` from a "
            "Secret labelled `app.kubernetes.io/part-of: argocd`.",
            None,
        )


def project_kind(resource_type: str) -> str | None:
    """`AppProject` or `AppProjectPatch` for an ArgoCD project resource, else None."""
    parts = resource_type.split(":")
    if len(parts) == 3 and parts[0] == "kubernetes" and parts[1].startswith(f"{ARGOCD_GROUP}/"):
        return parts[2] if parts[2] in PROJECT_KINDS else None
    return None


def wildcard_problems(spec: Any) -> list[str]:
    """Where a project's spec admits anything: `*` as a repository, a destination or a whitelisted kind."""
    problems = [f"sourceRepos[{i}]" for i, repo in enumerate(items_of(get_path(spec, "sourceRepos"))) if repo == "*"]
    for i, destination in enumerate(items_of(get_path(spec, "destinations"))):
        problems += [
            f"destinations[{i}].{field}"
            for field in ("server", "name", "namespace")
            if get_path(destination, field) == "*"
        ]
    for whitelist in ("clusterResourceWhitelist", "namespaceResourceWhitelist"):
        for i, entry in enumerate(items_of(get_path(spec, whitelist))):
            problems += [f"{whitelist}[{i}].{field}" for field in ("group", "kind") if get_path(entry, field) == "*"]
    return problems


@RULES.resource("argocd-projects-without-wildcards", MANDATORY)
def argocd_projects_without_wildcards(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No AppProject allows `*` as a source repository, a destination or a whitelisted kind."""
    if project_kind(args.resource_type) is None:
        args.not_applicable("not an ArgoCD AppProject")
    problems = wildcard_problems(get_path(args.props, "spec", default={}))
    if problems:
        report_violation(
            f"AppProject {meta_name(args.props) or args.name!r} allows anything at {', '.join(problems)}: its "
            "applications could deploy from any repository, to any cluster or namespace, or any kind.",
            None,
        )


def default_project_problems(project: PolicyResource) -> list[str]:
    """What a managed `default` project leaves open. A patch that omits a field keeps argocd-server's wildcard."""
    patch = project_kind(project.resource_type) == "AppProjectPatch"
    spec = get_path(project.props, "spec", default={})
    problems = []
    for field in ("sourceRepos", "destinations", "clusterResourceWhitelist"):
        value = get_path(spec, field)
        if value is None:
            if patch:
                problems.append(f"{field} is not set (argocd-server's `*` stays)")
        elif items_of(value):
            problems.append(f"{field} is not empty")
    return problems


@RULES.stack("argocd-default-project-locked", MANDATORY)
def argocd_default_project_locked(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Where ArgoCD is installed, the program manages its `default` AppProject with no repository, destination or
    cluster-scoped kind."""
    releases = helm_releases(args, ARGOCD_CHART)
    if not releases:
        args.not_applicable("no ArgoCD")
    for release in releases:
        namespace = str(get_path(release.props, "namespace", default="") or "default")
        managed = [
            r
            for r in args.resources
            if project_kind(r.resource_type) is not None
            and meta_name(r.props) == DEFAULT_PROJECT
            and meta_namespace(r.props) == namespace
        ]
        if not managed:
            report_violation(
                f"ArgoCD ({release.name}) has no managed `{DEFAULT_PROJECT}` AppProject in {namespace!r}: "
                "argocd-server creates it allowing every repository, destination and kind, and an Application "
                "that names no project lands there. Manage it (an AppProjectPatch over argocd-server's) empty.",
                release.urn,
            )
        for project in managed:
            problems = default_project_problems(project)
            if problems:
                report_violation(
                    f"The `{DEFAULT_PROJECT}` AppProject of ArgoCD ({release.name}) is not empty: "
                    f"{'; '.join(problems)}.",
                    project.urn,
                )


POLICIES = RULES.policies
