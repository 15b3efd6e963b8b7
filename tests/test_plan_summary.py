"""The plan summary fits one screen, names the secrets this stack still needs, and points at the next command;
an unknown stack is a one-line usage error (exit 2), not a policy violation (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.plans import Plan, planner_cli_on_shared_plan

import planner.__main__ as planner_cli
from components.config import NAMESPACE, SECRET_KEYS, PlatformConfig, parse_config, required_secret_keys
from planner.cost import options_from_stack_config
from planner.evaluate import stack_config
from planner.render import secrets_needed, summary

SCREEN_LINES = 60


def _summary(plan: Plan, graph_on_terminal: bool = False) -> str:
    stack = plan.evaluation.stack
    budget = options_from_stack_config(stack_config(stack))
    return summary(
        plan.evaluation, plan.verdicts, budget, out_dir=Path("build/plan") / stack, graph_on_terminal=graph_on_terminal
    )


def _config(stack: str) -> PlatformConfig:
    prefix = f"{NAMESPACE}:"
    raw = stack_config(stack)
    return parse_config(
        {
            k.removeprefix(prefix): v
            for k, v in raw.items()
            if k.startswith(prefix) and k.removeprefix(prefix) not in SECRET_KEYS
        }
    )


def test_summary_fits_one_screen(any_stack: Plan) -> None:
    lines = _summary(any_stack).splitlines()
    assert len(lines) <= SCREEN_LINES, f"{any_stack.evaluation.stack}: {len(lines)} lines"
    text = "\n".join(lines)
    for part in ("Components (", "Resources: ", "Outputs (", "Cost (USD/month", "GPU quota", "Deployment time"):
        assert part in text
    assert sum(line.startswith("Policies: ") for line in lines) == 1, "make plan-all greps this one line"
    assert f"make preview STACK={any_stack.evaluation.stack}" in lines[-1]
    assert "report.txt" in text and "graph.mmd" in text
    assert "flowchart" not in text, "the graph goes to graph.mmd, to the terminal only with --graph"


def test_summary_names_only_the_secrets_this_stack_needs(any_stack: Plan) -> None:
    stack = any_stack.evaluation.stack
    required = [f"{NAMESPACE}:{key}" for key in required_secret_keys(_config(stack))]
    needs = secrets_needed(stack_config(stack))
    assert needs is not None and needs[0] == required
    text = _summary(any_stack)
    secrets_part = text[text.index("Secrets") :]
    for key in required:
        assert key in secrets_part
    unused = {"gpuClusterKubeconfig", "ssoClientSecret", "ciRunnerGithubToken"} - {
        key.removeprefix(f"{NAMESPACE}:") for key in required
    }
    for key in unused:
        assert f"{NAMESPACE}:{key}" not in text, f"{stack} does not need {key}"


def test_dev_needs_no_kubeconfig_and_prod_does() -> None:
    dev = secrets_needed(stack_config("dev"))
    prod = secrets_needed(stack_config("prod"))
    assert dev is not None and prod is not None
    assert "llmops:gpuClusterKubeconfig" not in dev[0]
    assert "llmops:gpuClusterKubeconfig" in prod[0]


def test_a_secret_in_the_stack_file_is_not_listed_as_missing() -> None:
    raw = {**stack_config("dev"), "llmops:ngcApiKey": {"secure": "v1:AAAA"}}
    needs = secrets_needed(raw)
    assert needs is not None
    required, missing = needs
    assert "llmops:ngcApiKey" in required and "llmops:ngcApiKey" not in missing
    assert missing == ["llmops:gitopsToken"]


def test_unknown_stack_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert planner_cli.main(["--stack", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [captured.err.strip()]
    assert "unknown stack 'nope'" in captured.err and "dev" in captured.err


@pytest.mark.parametrize("flag", [[], ["--graph"]])
def test_graph_on_the_terminal_only_with_the_flag(
    flag: list[str], dev: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert planner_cli_on_shared_plan("dev", monkeypatch) is dev
    assert planner_cli.main(["--stack", "dev", "--out", str(tmp_path), *flag]) == 0
    out = capsys.readouterr().out
    assert ("flowchart LR" in out) == bool(flag)
    assert (tmp_path / "dev" / "graph.mmd").read_text().startswith("flowchart LR")
    assert "Policies:" in (tmp_path / "dev" / "report.txt").read_text()
    if not flag:
        assert len(out.splitlines()) <= SCREEN_LINES
