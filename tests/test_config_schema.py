"""The JSON Schema of the stack files and the configuration reference are generated from the config models and
kept current; the schema accepts the shipped stacks and rejects a misspelled key; every documented key has a
description; names Azure constrains are refused when empty or malformed."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from components.config import NAMESPACE, SECRET_KEYS, ConfigError, parse_config

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema" / "stack-config.schema.json"
MODELINE = "# yaml-language-server: $schema=../schema/stack-config.schema.json"
STACKS = ("dev", "staging", "prod")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "tools" / "gen_config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


def _stack_file(stack: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()))


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(document: dict[str, Any]) -> list[str]:
    return [error.message for error in _validator().iter_errors(document)]


def _llmops(stack: str) -> dict[str, Any]:
    prefix = f"{NAMESPACE}:"
    config = _stack_file(stack)["config"]
    return {
        k.removeprefix(prefix): v
        for k, v in config.items()
        if k.startswith(prefix) and k.removeprefix(prefix) not in SECRET_KEYS
    }


def test_schema_is_current() -> None:
    assert SCHEMA.read_text() == GENERATOR.render_schema(), "schema/stack-config.schema.json is stale: run `make docs`"


@pytest.mark.parametrize("stack", STACKS)
def test_schema_validates_the_stack_file(stack: str) -> None:
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    assert path.read_text().splitlines()[0] == MODELINE, "the modeline must be the first line"
    assert _errors(_stack_file(stack)) == []


def test_schema_rejects_misspelled_keys_and_passes_other_namespaces() -> None:
    document = _stack_file("dev")
    config = document["config"]
    assert "azure-native:location" in config
    misspelled = copy.deepcopy(document)
    misspelled["config"]["llmops:enviroment"] = "dev"
    assert _errors(misspelled), "a misspelled top-level llmops: key must be rejected"
    nested = copy.deepcopy(document)
    nested["config"]["llmops:azure"]["locaton"] = "westeurope"
    assert any("locaton" in message for message in _errors(nested)), "a misspelled nested key must be rejected"
    other = copy.deepcopy(document)
    other["config"]["kubernetes:context"] = "anything"
    assert _errors(other) == []
    secure = copy.deepcopy(document)
    secure["config"]["llmops:ngcApiKey"] = {"secure": "v1:abc"}
    assert _errors(secure) == []


def test_schema_rejects_an_empty_postgres_sku() -> None:
    document = _stack_file("staging")
    document["config"]["llmops:management"].setdefault("mlflow", {})["postgresSku"] = ""
    assert _errors(document)


def test_every_field_and_rule_is_described() -> None:
    for model, path in GENERATOR.every_model():
        for name, field in model.model_fields.items():
            assert field.description, f"{path or 'top level'}.{field.alias or name}: no description"
        for decorator in model.__pydantic_decorators__.model_validators.values():
            doc = (decorator.func.__doc__ or "").strip()
            assert doc, f"{model.__name__}.{decorator.func.__name__}: give the rule a one-line docstring"
    assert set(GENERATOR.SECRET_DOCS) == set(SECRET_KEYS)


def test_every_key_in_the_reference_has_a_description() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) > 150
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        description = cells[1] if len(cells) == 2 else cells[3]
        assert description, f"no description: {row}"
        if len(cells) == 5:
            assert not re.search(r"\b(None|True|False)\b", cells[2]), f"default not YAML: {row}"
    assert "Rules across keys:" in text


def test_defaults_print_as_yaml() -> None:
    assert GENERATOR.yaml_value(None) == "null"
    assert GENERATOR.yaml_value(False) == "false"
    assert GENERATOR.yaml_value(["a", "b"]) == "[a, b]"
    assert GENERATOR.yaml_value({"k": "v"}) == "{k: v}"
    assert GENERATOR.yaml_value("10.40.0.0/16") == "10.40.0.0/16"


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    return error.value.problems


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("management", "mlflow", "postgresSku"), "", "llmops:management.mlflow.postgresSku:"),
        (("management", "mlflow", "postgresSku"), "Standard_D4ds_v5", "llmops:management.mlflow.postgresSku:"),
        (("management", "cluster", "systemPool", "vmSize"), "", "llmops:management.cluster.systemPool.vmSize:"),
        (("management", "cluster", "systemPool", "vmSize"), "D4ds v5", "llmops:management.cluster.systemPool.vmSize:"),
        (("management", "cluster", "systemPool", "name"), "System-Pool", "llmops:management.cluster.systemPool.name:"),
        (
            ("management", "cluster", "systemPool", "name"),
            "systempool1234",
            "llmops:management.cluster.systemPool.name:",
        ),
        (("azure", "network", "existingGpuSubnetId"), "", "llmops:azure.network.existingGpuSubnetId:"),
        (("azure", "network", "dnsServiceIp"), "", "llmops:azure.network.dnsServiceIp:"),
        (("gitops", "revision"), "", "llmops:gitops.revision:"),
        (("nemo", "namespace"), "", "llmops:nemo.namespace:"),
    ],
)
def test_malformed_names_are_refused_with_their_key(path: tuple[str, ...], value: str, key: str) -> None:
    raw = _llmops("dev")
    node = raw
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    problems = _problems(raw)
    assert len(problems) == 1 and problems[0].startswith(key), problems
