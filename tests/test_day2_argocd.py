"""Day 2 for ArgoCD: credentials out of the chart's values (issue 15, item 5), the `default` AppProject emptied and
`argocd-manager` given exactly what the GitOps apps deploy (item 6), and the policies that keep it so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.plans import SEEDED_SECRETS, Plan
from support.resource_types import APP_PROJECT, APPLICATION, RELEASE
from support.resource_types import APP_PROJECT_PATCH as DEFAULT_PROJECT_PATCH
from support.resource_types import SECRET as SECRET_TYPE
from test_policies import ARGO, Case, deep, kube, release, run

from components import argocd, gitops
from components.config import parse_config
from components.ngc import NGC_USERNAME
from planner.evaluate import stack_config
from planner.mocks import Registration
from planner.render import write_plan
from planner.values import SECRET, redact
from policies.pack.argocd import argocd_credential_problems

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"


def gitops_repo_url(plan: Plan) -> str:
    return str(stack_config(plan.evaluation.stack)["llmops:gitops"]["repoUrl"])


def has_sso(plan: Plan) -> bool:
    return "sso" in stack_config(plan.evaluation.stack)["llmops:management"].get("argocd", {})


def secrets_labelled(plan: Plan, secret_type: str) -> list[Registration]:
    return [
        r
        for r in plan.of_type(SECRET_TYPE)
        if plan.inputs(r)["metadata"].get("labels", {}).get(SECRET_TYPE_LABEL) == secret_type
    ]


def named(plan: Plan, type_: str, name: str) -> Registration:
    [found] = [r for r in plan.of_type(type_) if plan.inputs(r)["metadata"]["name"] == name]
    return found


def platform_project(plan: Plan) -> dict[str, Any]:
    project = named(plan, APP_PROJECT, plan.outputs["gitops"]["project"])
    spec: dict[str, Any] = plan.inputs(project)["spec"]
    return spec


# ------------------------------------------------------------------------------------------------------
# Item 5: no credential in the ArgoCD release's values
# ------------------------------------------------------------------------------------------------------


def test_argocd_values_are_a_readable_mapping_without_secrets(any_stack: Plan) -> None:
    release_inputs = any_stack.helm_release("argocd").inputs
    values = redact(release_inputs)["values"]
    assert isinstance(values, dict) and values["configs"]["cm"]
    assert SECRET not in json.dumps(values)
    revealed = json.dumps(any_stack.inputs(any_stack.helm_release("argocd"))["values"])
    for key, seeded in SEEDED_SECRETS.items():
        assert seeded not in revealed, key
    assert argocd_credential_problems(any_stack.inputs(any_stack.helm_release("argocd"))["values"]) == []


def test_the_planned_helm_file_shows_the_values(prod: Plan, tmp_path: Path) -> None:
    write_plan(prod.evaluation, prod.verdicts, tmp_path / "plan")
    [path] = (tmp_path / "plan" / "helm").glob("*-mgmt/argocd.yaml")
    written = yaml.safe_load(path.read_text())
    assert isinstance(written["values"], dict)
    assert SECRET not in path.read_text()


def test_the_gitops_repository_is_a_labelled_secret_argocd_starts_with(any_stack: Plan) -> None:
    [repository] = [
        r
        for r in secrets_labelled(any_stack, "repository")
        if any_stack.inputs(r)["metadata"]["name"] == argocd.GITOPS_REPOSITORY_SECRET
    ]
    inputs = any_stack.inputs(repository)
    assert inputs["metadata"]["namespace"] == argocd.NAMESPACE
    assert inputs["stringData"] == {
        "type": "git",
        "url": gitops_repo_url(any_stack),
        "username": "git",
        "password": SEEDED_SECRETS["llmops:gitopsToken"],
    }
    assert redact(repository.inputs)["stringData"] == SECRET
    assert repository.urn in any_stack.helm_release("argocd").dependencies


def test_the_sso_client_secret_is_referenced_from_a_labelled_secret(any_stack: Plan) -> None:
    sso_secrets = [
        r for r in any_stack.of_type(SECRET_TYPE) if any_stack.inputs(r)["metadata"]["name"] == argocd.SSO_SECRET
    ]
    configs = any_stack.inputs(any_stack.helm_release("argocd"))["values"]["configs"]
    if not has_sso(any_stack):
        assert sso_secrets == [] and "oidc.config" not in configs["cm"]
        return
    [sso] = sso_secrets
    inputs = any_stack.inputs(sso)
    assert inputs["metadata"]["namespace"] == argocd.NAMESPACE
    assert inputs["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    assert inputs["stringData"] == {argocd.SSO_SECRET_KEY: SEEDED_SECRETS["llmops:ssoClientSecret"]}
    oidc = yaml.safe_load(configs["cm"]["oidc.config"])
    assert oidc["clientSecret"] == f"${argocd.SSO_SECRET}:{argocd.SSO_SECRET_KEY}"
    assert "secret" not in configs
    assert sso.urn in any_stack.helm_release("argocd").dependencies


# ------------------------------------------------------------------------------------------------------
# Item 6: the default project, argocd-manager's rights and the project's repositories
# ------------------------------------------------------------------------------------------------------


def test_the_default_project_is_patched_empty_after_argocd_starts(any_stack: Plan) -> None:
    [patch] = any_stack.of_type(DEFAULT_PROJECT_PATCH)
    inputs = any_stack.inputs(patch)
    assert inputs["metadata"]["name"] == "default"
    assert inputs["metadata"]["namespace"] == argocd.NAMESPACE
    assert inputs["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    spec = inputs["spec"]
    assert spec["sourceRepos"] == [] and spec["destinations"] == [] and spec["clusterResourceWhitelist"] == []
    argocd_release = any_stack.helm_release("argocd")
    assert argocd_release.urn in patch.dependencies
    assert patch.provider == argocd_release.provider
    # argocd-server creates `default` itself; the program must never try to create it.
    assert not [r for r in any_stack.of_type(APP_PROJECT) if any_stack.inputs(r)["metadata"]["name"] == "default"]


def test_argocd_manager_may_write_the_monitoring_kinds_and_read_logs_only() -> None:
    rules = gitops.deployer_rules()
    monitoring = [rule for rule in rules if rule["apiGroups"] == ["monitoring.coreos.com"]]
    assert monitoring == [
        {
            "apiGroups": ["monitoring.coreos.com"],
            "resources": ["podmonitors", "prometheusrules", "servicemonitors"],
            "verbs": [*gitops.READ, *gitops.WRITE],
        }
    ]
    logs = [rule for rule in rules if any("/" in resource for resource in rule["resources"])]
    assert logs == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    for rule in rules:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
    # The NIM operator is not installed, so its kinds are not deployable.
    assert not {kind.group for kind in gitops.DEPLOYABLE_KINDS} & {"apps.nvidia.com"}


def test_the_project_allows_the_chart_repositories_of_its_namespaces(any_stack: Plan) -> None:
    spec = platform_project(any_stack)
    destinations = {d["namespace"] for d in spec["destinations"]}
    chart_repositories = {
        inputs["repositoryOpts"]["repo"]
        for r in any_stack.of_type(RELEASE)
        if (inputs := any_stack.inputs(r))["namespace"] in destinations
    }
    assert chart_repositories
    assert spec["sourceRepos"] == [gitops_repo_url(any_stack), *sorted(chart_repositories)]


def test_each_ngc_chart_repository_has_its_login_for_argocd(any_stack: Plan) -> None:
    logins = [
        r
        for r in secrets_labelled(any_stack, "repository")
        if any_stack.inputs(r)["metadata"]["name"] != argocd.GITOPS_REPOSITORY_SECRET
    ]
    helm_urls = set(platform_project(any_stack)["sourceRepos"]) - {gitops_repo_url(any_stack)}
    assert {any_stack.inputs(r)["stringData"]["url"] for r in logins} == helm_urls
    application = any_stack.one(APPLICATION)
    for login in logins:
        inputs = any_stack.inputs(login)
        assert inputs["metadata"]["namespace"] == argocd.NAMESPACE
        assert inputs["stringData"]["type"] == "helm" and inputs["stringData"]["username"] == NGC_USERNAME
        assert inputs["stringData"]["password"] == SEEDED_SECRETS["llmops:ngcApiKey"]
        assert redact(login.inputs)["stringData"] == SECRET
        assert login.urn in application.dependencies


def test_the_sso_secret_name_is_what_the_config_references() -> None:
    raw = stack_config("prod")
    config = parse_config({key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith("llmops:")})
    sso = config.management.argocd.sso
    assert sso is not None
    values = argocd.argocd_values(config.management.argocd, sso, prometheus_crds=False)
    assert f"${argocd.SSO_SECRET}:" in values["configs"]["cm"]["oidc.config"]
    assert argocd_credential_problems(values) == []


# ------------------------------------------------------------------------------------------------------
# Policies: one violating and one compliant case each
# ------------------------------------------------------------------------------------------------------


def argocd_release(**values: Any) -> Registration:
    return release("argocd", "argo-cd", ARGO, "10.1.1", **values)


def default_project(kind: str = "AppProjectPatch", namespace: str = "argocd", **spec: Any) -> Registration:
    base = {"sourceRepos": [], "destinations": [], "clusterResourceWhitelist": []}
    registration = kube(kind, "argoproj.io/v1alpha1", "default", namespace, spec=deep(base, **spec))
    return registration


LEAKY_OIDC = "name: Entra ID\nclientID: abc\nclientSecret: s3cr3t\n"
REFERENCED_OIDC = "name: Entra ID\nclientID: abc\nclientSecret: $argocd-sso-entra:clientSecret\n"

POLICY_CASES = [
    Case(
        "argocd-values-carry-no-credentials",
        lambda: [argocd_release(configs__repositories={"gitops": {"url": "https://git/x.git", "password": "t"}})],
        lambda: [argocd_release(configs__repositories={"charts": {"url": "https://charts.example", "type": "helm"}})],
    ),
    Case(
        "argocd-values-carry-no-credentials",
        lambda: [argocd_release(configs__cm={"oidc.config": LEAKY_OIDC}, configs__secret__extra={"k": "v"})],
        lambda: [argocd_release(configs__cm={"oidc.config": REFERENCED_OIDC})],
    ),
    Case(
        "argocd-projects-without-wildcards",
        lambda: [default_project("AppProject", sourceRepos=["*"], destinations=[{"server": "*", "namespace": "*"}])],
        lambda: [default_project("AppProject", sourceRepos=["https://git/x.git"])],
    ),
    Case(
        "argocd-default-project-locked",
        lambda: [argocd_release()],
        lambda: [argocd_release(), default_project()],
    ),
    Case(
        "argocd-default-project-locked",
        lambda: [argocd_release(), default_project(sourceRepos=["https://git/x.git"], clusterResourceWhitelist=None)],
        lambda: [argocd_release(), default_project("AppProject", clusterResourceWhitelist=None)],
    ),
]


@pytest.mark.parametrize("case", POLICY_CASES, ids=lambda case: case.policy)
def test_argocd_rule_reports_the_violating_case(case: Case) -> None:
    found = [v for v in run(case.violating(), [case.policy]) if v.policy == case.policy]
    assert found and {v.enforcement for v in found} == {"mandatory"}
    assert all("can't run" not in v.message for v in found)


@pytest.mark.parametrize("case", POLICY_CASES, ids=lambda case: case.policy)
def test_argocd_rule_passes_the_compliant_case(case: Case) -> None:
    assert [v for v in run(case.compliant(), [case.policy]) if v.policy == case.policy] == []


def test_the_default_project_in_another_namespace_does_not_count() -> None:
    found = run([argocd_release(), default_project(namespace="elsewhere")], ["argocd-default-project-locked"])
    assert [v.policy for v in found] == ["argocd-default-project-locked"]


def test_the_old_values_would_have_been_refused() -> None:
    old = {
        "configs": {
            "repositories": {"gitops": {"url": "https://git/x.git", "username": "git", "password": "token"}},
            "secret": {"extra": {"oidc.entra.clientSecret": "s"}},
            "cm": {"oidc.config": "clientSecret: $oidc.entra.clientSecret\n"},
        }
    }
    assert argocd_credential_problems(old) == [
        "configs.repositories.gitops.password",
        "configs.secret.extra",
    ]


def test_cluster_and_template_credentials_are_found_too() -> None:
    values = {
        "configs": {
            "credentialTemplates": {"org": {"url": "https://git/org", "githubAppPrivateKey": "-----BEGIN"}},
            "clusterCredentials": {
                "gpu": {"server": "https://gpu", "config": {"bearerToken": "t", "tlsClientConfig": {}}}
            },
            "cm": {"dex.config": "connectors:\n- config:\n    clientSecret: plain\n"},
        }
    }
    assert argocd_credential_problems(values) == [
        "configs.credentialTemplates.org.githubAppPrivateKey",
        "configs.clusterCredentials.gpu.config.bearerToken",
        "configs.cm.dex.config clientSecret (not a `$<secret>:<key>` reference)",
    ]
