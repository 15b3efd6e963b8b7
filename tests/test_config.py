"""Configuration: the shipped stacks load, and each kind of mistake gets one clear line and exit 2."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import SECRET_KEYS, ConfigError, PlatformSecrets, parse_config, raw_config_from_pulumi
from planner.__main__ import main
from planner.evaluate import engine_config, evaluate, stack_config

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"


def dev_config() -> dict[str, Any]:
    return copy.deepcopy(stack_config("dev"))


def problems_of(config: dict[str, Any]) -> list[str]:
    values, _, _ = engine_config(config, [], {})
    with pytest.raises(ConfigError) as raised:
        parse_config(raw_config_from_pulumi(values))
    return raised.value.problems


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_are_valid(stack: str) -> None:
    values, _, _ = engine_config(stack_config(stack), [], {})
    config = parse_config(raw_config_from_pulumi(values))
    assert config.environment == stack
    assert config.protect is (stack == "prod")


def _missing(c: dict[str, Any]) -> None:
    del c["llmops:gitops"]


def _misspelled(c: dict[str, Any]) -> None:
    c["llmops:gpuCluster"]["aks"]["gpuPools"][0]["maxCont"] = 2


def _wrong_type(c: dict[str, Any]) -> None:
    c["llmops:gateway"]["requestsPerMinute"] = "lots"


def _min_over_max(c: dict[str, Any]) -> None:
    c["llmops:gpuCluster"]["aks"]["gpuPools"][0].update(minCount=3, maxCount=2)


def _gpu_on_management(c: dict[str, Any]) -> None:
    c["llmops:management"]["cluster"]["userPools"][0]["vmSize"] = "Standard_NC24ads_A100_v4"


def _bad_cidr(c: dict[str, Any]) -> None:
    c["llmops:azure"]["network"]["gpuSubnet"] = "10.40.4.0/33"


def _unknown_top_level(c: dict[str, Any]) -> None:
    c["llmops:gpuClustr"] = {"mode": "aks"}


def _unknown_gpu_sku(c: dict[str, Any]) -> None:
    c["llmops:gpuCluster"]["aks"]["gpuPools"][1]["vmSize"] = "Standard_D4ds_v5"


def _server_auth(c: dict[str, Any]) -> None:
    c["llmops:management"]["argoWorkflows"] = {"authModes": ["server"]}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_missing, "llmops:gitops: required key is missing"),
        (_misspelled, "llmops:gpuCluster.aks.gpuPools[0].maxCont: unknown key; allowed: name, vmSize, minCount"),
        (_wrong_type, "llmops:gateway.requestsPerMinute: input should be a valid integer"),
        (_min_over_max, "llmops:gpuCluster.aks.gpuPools[0].minCount: must be <= maxCount (got 3 > 2)"),
        (_gpu_on_management, "llmops:management.cluster.userPools[0].vmSize: the management cluster is CPU-only"),
        (_bad_cidr, "llmops:azure.network.gpuSubnet: must be a CIDR such as 10.0.0.0/16 (got '10.40.4.0/33'"),
        (_unknown_top_level, "llmops:gpuClustr: unknown key; allowed: environment, azure, management, gpuCluster"),
        (_unknown_gpu_sku, "llmops:gpuCluster.aks.gpuPools[1].vmSize: must be a known GPU VM size"),
        (_server_auth, "llmops:management.argoWorkflows.authModes: 'server' auth runs every request"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:],
)
def test_bad_config_names_the_key_and_what_is_allowed(mutate: Any, expected: str) -> None:
    config = dev_config()
    mutate(config)
    problems = problems_of(config)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]
    assert "\n" not in problems[0]


def test_every_problem_is_reported_at_once() -> None:
    config = dev_config()
    _wrong_type(config)
    _bad_cidr(config)
    _missing(config)
    assert len(problems_of(config)) == 3


def test_prod_refuses_free_tier_and_unprotected_resources() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["llmops:management"]["cluster"]["skuTier"] = "Free"
    assert problems_of(config) == ["llmops:management.cluster.skuTier: prod needs 'Standard' or 'Premium' (got 'Free')"]


def test_existing_gpu_cluster_needs_its_section() -> None:
    config = dev_config()
    config["llmops:gpuCluster"]["mode"] = "existing"
    problems = problems_of(config)
    assert "llmops:gpuCluster.existing: required when mode is 'existing'" in problems


def test_bad_config_registers_nothing() -> None:
    config = dev_config()
    _min_over_max(config)
    evaluation = evaluate("dev", config_override=config)
    assert evaluation.config_problems == ["llmops:gpuCluster.aks.gpuPools[0].minCount: must be <= maxCount (got 3 > 2)"]
    assert evaluation.registrations == []


def test_missing_required_secret_is_a_config_error() -> None:
    config = stack_config("prod")
    config["llmops:ngcApiKey"] = {"secure": "v1:AAAA"}  # encrypted in the stack file: counts as set
    evaluation = evaluate("prod", config_override=config, placeholders_for_absent=False)
    assert not evaluation.ok
    assert evaluation.registrations == []
    # The existing GPU cluster is reached only through its kubeconfig; the NGC key is present (encrypted).
    assert evaluation.config_problems[:2] == [
        "llmops:gitopsToken: required secret is missing; set it with `pulumi config set --secret llmops:gitopsToken …`",
        "llmops:gpuClusterKubeconfig: required secret is missing; "
        "set it with `pulumi config set --secret llmops:gpuClusterKubeconfig …`",
    ]
    assert not any("ngcApiKey" in p for p in evaluation.config_problems)


def test_planner_exits_2_with_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = dev_config()
    _min_over_max(config)
    _bad_cidr(config)
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": config}))
    assert main(["--stack", "broken", "--stacks-dir", str(tmp_path), "--out", str(tmp_path / "plan")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "llmops:azure.network.gpuSubnet: must be a CIDR such as 10.0.0.0/16 (got '10.40.4.0/33': "
        "'10.40.4.0/33' does not appear to be an IPv4 or IPv6 network)",
        "llmops:gpuCluster.aks.gpuPools[0].minCount: must be <= maxCount (got 3 > 2)",
    ]
    assert not (tmp_path / "plan").exists()


def _loaded(stack: str) -> tuple[Any, dict[str, Any]]:
    values, _, _ = engine_config(stack_config(stack), [], {})
    # Stand-ins for the secret Outputs: the hand-out only routes them.
    return parse_config(raw_config_from_pulumi(values)), {key: object() for key in SECRET_KEYS}


def test_each_component_gets_the_secrets_its_config_uses() -> None:
    dev, given = _loaded("dev")
    secrets = PlatformSecrets.from_config(dev, given)
    assert secrets.ngc_api_key is given["ngcApiKey"]
    assert secrets.gateway_api_key is given["gatewayApiKey"]
    assert secrets.management.gitops_token is given["gitopsToken"]
    assert secrets.management.mlflow_admin_password is given["mlflowAdminPassword"]
    # dev: AKS GPU pools, no SSO, in-cluster MLflow database: those secrets are left out even when set.
    assert (secrets.gpu_cluster_kubeconfig, secrets.management.sso, secrets.management.database) == (
        None,
        None,
        None,
    )

    prod, given = _loaded("prod")
    secrets = PlatformSecrets.from_config(prod, given)
    assert secrets.gpu_cluster_kubeconfig is given["gpuClusterKubeconfig"]
    assert secrets.management.database is not None
    assert secrets.management.database.mlflow is given["mlflowDbPassword"]
    assert secrets.management.database.admin is given["postgresAdminPassword"]
    assert secrets.management.database.argo_archive is given["argoArchiveDbPassword"]
    assert secrets.management.sso is not None
    assert secrets.management.sso.app == prod.management.argocd.sso
    assert secrets.management.sso.client_secret is given["ssoClientSecret"]
    assert secrets.gateway_api_key is None  # prod authenticates clients by JWT


def test_a_secret_the_config_uses_is_required() -> None:
    staging, given = _loaded("staging")
    del given["ssoClientSecret"], given["gatewayApiKey"]
    with pytest.raises(ConfigError) as raised:
        PlatformSecrets.from_config(staging, given)
    # staging signs in with SSO but authenticates gateway clients by JWT: only the SSO secret is missing.
    assert raised.value.problems == [
        "llmops:ssoClientSecret: required secret is missing; "
        "set it with `pulumi config set --secret llmops:ssoClientSecret …`"
    ]
