"""Day-2 safety of secrets, database roles and CRDs: MLflow passwords the chart can carry, application roles
instead of the PostgreSQL admin, generated passwords that stay secret and yield to config, Envoy Gateway CRDs
that upgrade with the chart, and Customizer training pods scheduled by the key NVIDIA documents."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from support.plans import SEEDED_SECRETS, Plan, evaluated
from test_policies import Case, reg, release, run

from components import argo_workflows, mlflow
from components.config import GENERATED_SECRET_KEYS, SECRET_KEYS, password_problems
from components.config.secrets import CHART_UNSAFE_PASSWORD_CHARACTERS
from components.gateway import CRDS_CHART, GATEWAY_CHART, envoy_gateway_crds_values
from components.gpu import GPU_TOLERATION, SPOT_TOLERATION
from components.passwords import PASSWORD_SPECIALS
from components.postgres import ADMIN_LOGIN, PSQL_IMAGE, ROLES_NAMESPACE, AppRole, password_env, roles_script
from planner.evaluate import Evaluation, evaluate, stack_config
from planner.mocks import RANDOM_PASSWORD, PlanMocks
from planner.policy_runner import run_policies
from planner.render import summary, write_plan
from planner.values import SECRET, redact, unwrap
from policies.pack.catalog import PACK_ENFORCEMENT, POLICIES
from policies.pack.tokens import HELM_CHART, HELM_RELEASE

JOB = "kubernetes:batch/v1:Job"
SECRET_TYPE = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "helm-charts"

# gateway-crds-helm is not among the reference chart sources; its values keys as its values.yaml documents them
# at envoyproxy/gateway tag v1.9.0 (commit 39763b1c07ec30a5526fe70434a2cfe4181de642),
# charts/gateway-crds-helm/values.yaml: crds.gatewayAPI.{enabled,channel (standard|experimental)},
# crds.envoyGateway.enabled.
CRDS_CHART_KEYS = {"crds.gatewayAPI.enabled", "crds.gatewayAPI.channel", "crds.envoyGateway.enabled"}
CRDS_CHART_CHANNELS = {"standard", "experimental"}


def leaves(values: Any, prefix: str = "") -> set[str]:
    if not isinstance(values, dict):
        return {prefix}
    return {key for name, value in values.items() for key in leaves(value, f"{prefix}.{name}" if prefix else name)}


# ------------------------------------------------------------------------------------------------
# MLflow passwords the chart can carry
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", [*sorted(CHART_UNSAFE_PASSWORD_CHARACTERS), " ", "\t", "\n"])
@pytest.mark.parametrize("key", ["mlflowAdminPassword", "mlflowDbPassword"])
def test_an_mlflow_password_the_chart_cannot_carry_is_refused_in_one_line(key: str, character: str) -> None:
    value = f"Secret{character}Value1"
    (problem,) = password_problems({key: value})
    assert problem.startswith(f"llmops:{key}: must not contain")
    assert "\n" not in problem
    assert value not in problem, "the message must not echo the secret"


def test_other_secrets_and_chart_safe_passwords_pass() -> None:
    assert password_problems({"mlflowDbPassword": "Abc-123_x.y~z!*+=", "gitopsToken": "ghp_/%$@&"}) == []


def test_generated_passwords_draw_only_chart_safe_punctuation() -> None:
    assert not set(PASSWORD_SPECIALS) & CHART_UNSAFE_PASSWORD_CHARACTERS
    assert all(c in string.punctuation for c in PASSWORD_SPECIALS)


def test_the_chart_still_substitutes_the_passwords_unescaped() -> None:
    """The reason for the rule, checked against the pinned chart: sed replaces the placeholders with the raw
    values, and the auth database URI carries the password inside a postgresql:// URI."""
    chart = REFERENCE / "mlflow-1.11.5" / "templates"
    if not chart.is_dir():
        pytest.skip(f"no chart sources in {REFERENCE}")
    deployment = (chart / "deployment.yaml").read_text()
    assert "s/\\$(POSTGRES_PASSWORD_PLACEHOLDER)/${DB_PASSWORD}/g" in deployment
    assert "s/\\$(ADMIN_PASSWORD_PLACEHOLDER)/${ADMIN_PASSWORD}/g" in deployment
    ini = (chart / "auth_ini_configmap.yaml").read_text()
    assert "postgresql%s://$(POSTGRES_USERNAME_PLACEHOLDER):$(POSTGRES_PASSWORD_PLACEHOLDER)@" in ini


def test_a_configured_password_the_chart_cannot_carry_stops_the_plan() -> None:
    evaluation = evaluate("staging", secret_values={**SEEDED_SECRETS, "llmops:mlflowDbPassword": "pa%ss/word"})
    assert evaluation.config_problems == password_problems({"mlflowDbPassword": "pa%ss/word"})
    assert evaluation.registrations == []


# ------------------------------------------------------------------------------------------------
# Application database roles instead of the server admin
# ------------------------------------------------------------------------------------------------


def test_roles_script_is_idempotent_and_reads_passwords_from_the_environment() -> None:
    script = roles_script([AppRole("mlflow", ("mlflow", "mlflow_auth")), AppRole("argo_workflows", ("argo",))])
    assert script.startswith("\\set ON_ERROR_STOP on\n")
    assert "WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mlflow') \\gexec" in script
    assert "\\getenv role_password ROLE_PASSWORD_ARGO_WORKFLOWS" in script
    assert "PASSWORD :'role_password'" in script  # a psql literal: any character is quoted correctly
    for database, role in (("mlflow", "mlflow"), ("mlflow_auth", "mlflow"), ("argo", "argo_workflows")):
        assert f'ALTER DATABASE "{database}" OWNER TO "{role}";' in script
        assert f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;' in script


def _secret_data(plan: Plan, name: str) -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(SECRET_TYPE) if plan.inputs(r)["metadata"]["name"] == name]
    data: dict[str, Any] = plan.inputs(found)["stringData"]
    return data


def test_mlflow_and_the_archive_log_in_as_their_own_roles(staging: Plan) -> None:
    mlflow_login = _secret_data(staging, mlflow.DATABASE_SECRET)
    archive_login = _secret_data(staging, argo_workflows.ARCHIVE_DB_SECRET)
    assert mlflow_login["username"] == mlflow.DATABASE_ROLE
    assert archive_login["username"] == argo_workflows.ARCHIVE_ROLE
    server = staging.inputs(staging.one("azure-native:dbforpostgresql:Server"))
    assert ADMIN_LOGIN not in (mlflow_login["username"], archive_login["username"])
    assert server["administratorLogin"] == ADMIN_LOGIN
    # Three different passwords: no client holds the admin's.
    admin = server["administratorLoginPassword"]
    assert len({admin, mlflow_login["password"], archive_login["password"]}) == 3


def test_the_roles_job_runs_psql_as_admin_before_both_releases(staging: Plan) -> None:
    job = staging.one(JOB)
    spec = staging.inputs(job)["spec"]
    assert staging.inputs(job)["metadata"]["namespace"] == ROLES_NAMESPACE
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == PSQL_IMAGE and not PSQL_IMAGE.endswith(":latest")
    env = {e["name"]: e for e in container["env"]}
    assert env["PGUSER"]["value"] == ADMIN_LOGIN
    assert env["PGSSLMODE"]["value"] == "require"
    assert env["PGHOST"]["value"].endswith(".postgres.database.azure.com")
    for key in ("PGPASSWORD", password_env(mlflow.DATABASE_ROLE), password_env(argo_workflows.ARCHIVE_ROLE)):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "postgres-role-passwords"
    script = next(
        staging.inputs(r)["data"]["roles.sql"]
        for r in staging.of_type(CONFIG_MAP)
        if staging.inputs(r)["metadata"]["namespace"] == ROLES_NAMESPACE
    )
    assert f'OWNER TO "{mlflow.DATABASE_ROLE}"' in script and f'OWNER TO "{argo_workflows.ARCHIVE_ROLE}"' in script
    databases = {r.urn for r in staging.of_type("azure-native:dbforpostgresql:Database")}
    assert databases <= set(job.dependencies)
    for release_name in ("mlflow", "argo-workflows"):
        assert job.urn in staging.helm_release(release_name).dependencies, f"{release_name} may start before roles"


def test_dev_with_the_chart_database_has_no_roles_job(dev: Plan) -> None:
    assert dev.of_type(JOB) == []


# ------------------------------------------------------------------------------------------------
# Generated secrets: secret everywhere, overridable by config
# ------------------------------------------------------------------------------------------------

NOT_GENERATED = {k: v for k, v in SEEDED_SECRETS.items() if k.removeprefix("llmops:") not in GENERATED_SECRET_KEYS}


@pytest.fixture(scope="module")
def generated() -> Evaluation:
    """dev (gateway api-key auth) on Azure PostgreSQL, with no generated secret configured."""
    config = copy.deepcopy(stack_config("dev"))
    config["llmops:management"]["mlflow"]["backend"] = "azure-postgres"
    evaluation = evaluated("dev", secret_values=NOT_GENERATED, config_override=config)
    assert evaluation.ok, evaluation.config_problems
    return evaluation


def _passwords(evaluation: Evaluation) -> dict[str, str]:
    return {r.name: unwrap(r.outputs["result"]) for r in evaluation.registrations if r.type == RANDOM_PASSWORD}


def test_unset_secrets_are_generated_and_never_planned_as_placeholders(generated: Evaluation) -> None:
    assert set(_passwords(generated)) == {
        "dev-mgmt-postgres-admin-password",
        "dev-mgmt-postgres-mlflow-password",
        "dev-mgmt-postgres-argo_workflows-password",
        "dev-mgmt-mlflow-admin-password",
        "dev-gateway-api-key",
    }
    assert not {key.removeprefix("llmops:") for key in generated.placeholders} & GENERATED_SECRET_KEYS
    for name, value in _passwords(generated).items():
        assert len(value) == 32
        assert password_problems({"mlflowDbPassword": value}) == [], name
        classes = [
            any(c in group for c in value)
            for group in (string.ascii_uppercase, string.ascii_lowercase, string.digits, PASSWORD_SPECIALS)
        ]
        assert sum(classes) >= 3, f"{name}: Azure asks 3 of 4 character classes"


def test_generated_secrets_stay_secret_in_plan_manifests_values_and_summary(
    generated: Evaluation, tmp_path: Path
) -> None:
    verdicts = run_policies(generated.registrations, POLICIES, PACK_ENFORCEMENT)
    write_plan(generated, verdicts, tmp_path)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    text = "\n".join(p.read_text() for p in files) + summary(generated, verdicts)
    for name, value in _passwords(generated).items():
        assert value not in text, f"{name} leaked in clear"
    for registration in generated.registrations:
        for value in _passwords(generated).values():
            assert value not in json.dumps(redact(registration.inputs)), registration.name


def test_generated_secrets_are_exported_as_secrets(generated: Evaluation) -> None:
    exported = generated.outputs["secrets"]
    assert redact(exported) == SECRET
    values = unwrap(exported)
    passwords = _passwords(generated)
    assert values["mlflowAdminPassword"] == passwords["dev-mgmt-mlflow-admin-password"]
    assert values["postgresAdminPassword"] == passwords["dev-mgmt-postgres-admin-password"]
    assert values["gatewayApiKey"] == passwords["dev-gateway-api-key"]


def test_the_generated_gateway_key_is_the_one_the_pipelines_send(generated: Evaluation) -> None:
    key = _passwords(generated)["dev-gateway-api-key"]
    holders = [
        r.name
        for r in generated.registrations
        if r.type == SECRET_TYPE and key in unwrap(r.inputs).get("stringData", {}).values()
    ]
    assert len(holders) >= 2, holders  # the gateway's api-key Secret and the pipelines' copy


def test_configured_secrets_override_the_generated_ones(staging: Plan, dev: Plan) -> None:
    """The shared plans seed every secret: nothing is generated, and the configured values arrive."""
    for plan in (staging, dev):
        assert plan.of_type(RANDOM_PASSWORD) == []
    assert _secret_data(staging, mlflow.DATABASE_SECRET)["password"] == SEEDED_SECRETS["llmops:mlflowDbPassword"]
    assert _secret_data(staging, mlflow.ADMIN_SECRET)["password"] == SEEDED_SECRETS["llmops:mlflowAdminPassword"]
    assert (
        unwrap(staging.evaluation.outputs["secrets"])["mlflowAdminPassword"]
        == SEEDED_SECRETS["llmops:mlflowAdminPassword"]
    )


def test_generated_keys_are_secret_config_keys() -> None:
    assert set(SECRET_KEYS) >= GENERATED_SECRET_KEYS


def test_the_planner_answers_random_password_with_a_secret_result() -> None:
    args = pulumi_mocks.MockResourceArgs(
        typ=RANDOM_PASSWORD,
        name="p",
        inputs={"length": 24, "special": True, "overrideSpecial": "-_"},
        provider="",
        resource_id="",
        custom=True,
    )
    _, state = PlanMocks().new_resource(args)
    assert rpc.is_rpc_secret(state["result"]) and rpc.is_rpc_secret(state["bcryptHash"])
    result = rpc.unwrap_rpc_secret(state["result"])
    assert len(result) == 24 and re.fullmatch(r"[A-Za-z0-9_-]+", result)


# ------------------------------------------------------------------------------------------------
# Envoy Gateway CRDs upgrade with the chart
# ------------------------------------------------------------------------------------------------


def test_every_gateway_release_skips_crds_after_its_crd_chart(any_stack: Plan) -> None:
    releases = [r for r in any_stack.of_type(HELM_RELEASE) if any_stack.inputs(r)["chart"].endswith(GATEWAY_CHART)]
    charts = {r.urn: r for r in any_stack.of_type(HELM_CHART)}
    assert releases
    for gateway in releases:
        inputs = any_stack.inputs(gateway)
        assert inputs["skipCrds"] is True
        assert inputs["values"]["crds"]["enabled"] is False
        (crds,) = [charts[d] for d in gateway.dependencies if d in charts]
        crd_inputs = any_stack.inputs(crds)
        assert crd_inputs["chart"] == f"oci://docker.io/envoyproxy/{CRDS_CHART}"
        assert crd_inputs["version"] == inputs["version"]
        assert crds.provider == gateway.provider, "the CRDs go to the release's cluster"


def test_crd_chart_values_are_the_documented_keys() -> None:
    values = envoy_gateway_crds_values()
    assert leaves(values) <= CRDS_CHART_KEYS
    assert values["crds"]["gatewayAPI"]["channel"] in CRDS_CHART_CHANNELS
    assert values["crds"]["envoyGateway"]["enabled"] and values["crds"]["gatewayAPI"]["enabled"]


def _crd_chart(version: str = "v1.9.0") -> Any:
    return reg(
        HELM_CHART,
        "envoy-gateway-crds",
        {
            "chart": f"oci://docker.io/envoyproxy/{CRDS_CHART}",
            "version": version,
            "values": envoy_gateway_crds_values(),
        },
    )


def _gateway(skip: bool, crds_enabled: bool, depends_on: list[str]) -> Any:
    registration = release("envoy-gateway", "oci://docker.io/envoyproxy/gateway-helm", "", "v1.9.0")
    inputs = {k: v for k, v in registration.inputs.items() if k != "repositoryOpts"}
    inputs["values"] = {"crds": {"enabled": crds_enabled}}
    if skip:
        inputs["skipCrds"] = True
    return dataclasses.replace(registration, inputs=inputs, dependencies=depends_on)


def _gateway_case(skip: bool, crds_enabled: bool, crd_version: str = "v1.9.0", depends: bool = True) -> list[Any]:
    crds = _crd_chart(crd_version)
    return [crds, _gateway(skip, crds_enabled, [crds.urn] if depends else [])]


POLICY_CASES = [
    Case("helm-crds-upgrade-with-chart", lambda: _gateway_case(False, True), lambda: _gateway_case(True, False)),
    Case(
        "helm-crds-upgrade-with-chart",
        lambda: _gateway_case(True, False, depends=False),
        lambda: _gateway_case(True, False),
    ),
]


@pytest.mark.parametrize(
    ("skip", "crds_enabled", "crd_version", "depends", "expected"),
    [
        (True, False, "v1.9.0", True, None),
        (False, False, "v1.9.0", True, "does not set skip_crds"),
        (True, True, "v1.9.0", True, "does not set crds.enabled: false"),
        (True, False, "v1.9.0", False, "does not depend on a gateway-crds-helm Chart at version v1.9.0"),
        (True, False, "v1.8.0", True, "does not depend on a gateway-crds-helm Chart at version v1.9.0"),
    ],
)
def test_policy_gateway_release_skips_crds_and_depends_on_the_crd_chart(
    skip: bool, crds_enabled: bool, crd_version: str, depends: bool, expected: str | None
) -> None:
    verdicts = run(_gateway_case(skip, crds_enabled, crd_version, depends), ["helm-crds-upgrade-with-chart"])
    messages = [v.message for v in verdicts if v.policy == "helm-crds-upgrade-with-chart"]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1 and expected in messages[0], messages


def test_the_shipped_stacks_pass_the_crd_policy(any_stack: Plan) -> None:
    assert not [v for v in any_stack.verdicts if v.policy == "helm-crds-upgrade-with-chart"]


def test_the_crd_chart_is_listed_as_not_rendered() -> None:
    from support.rendered import NOT_RENDERED_CHARTS

    assert CRDS_CHART in NOT_RENDERED_CHARTS


# ------------------------------------------------------------------------------------------------
# Customizer training pods
# ------------------------------------------------------------------------------------------------


def test_customizer_tolerations_use_the_documented_key(any_stack: Plan) -> None:
    nemo = any_stack.inputs(any_stack.helm_release("nemo"))["values"]["customizer"]["customizerConfig"]
    assert GPU_TOLERATION in nemo["tolerations"] and SPOT_TOLERATION in nemo["tolerations"]
    assert "tolerations" not in nemo["training"], "customizerConfig.training.tolerations is not a chart key"
    # Spot is allowed, not required: a node selector would strand training where no spot capacity is left.
    assert "nodeSelectors" not in nemo
