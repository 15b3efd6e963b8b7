"""`python -m planner [--stack dev] [--out build/plan] [--graph] [--render]`: the offline plan of one stack.

`--render` also renders every Helm release with its real chart (build/plan/<stack>/rendered/) and scans the
authored and rendered objects with checkov, adding the findings per release to the report.

Exit codes: 0 ok, 1 a mandatory policy violation, 2 a configuration error or an unknown stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from planner.cost import budget_options
from planner.evaluate import PROJECT_DIR, Evaluation, UnknownStack, evaluate, platform_config_of, stack_config
from planner.policy_runner import run_policies
from planner.render import plan_figures, summary, write_plan

if TYPE_CHECKING:
    from components.config import PlatformConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planner", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name; reads stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "plan", help="plan directory root")
    parser.add_argument(
        "--stacks-dir", type=Path, default=None, help="read Pulumi.<stack>.yaml from here instead of stacks/"
    )
    parser.add_argument(
        "--require-secrets",
        action="store_true",
        help="fail when a required secret is not in the stack file (encrypted values count as present)",
    )
    parser.add_argument(
        "--graph", action="store_true", help="also print the Mermaid graph (always written to graph.mmd)"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="render the Helm releases with their charts and scan them (as `make render` and `make scan`)",
    )
    parser.add_argument("--charts-dir", type=Path, default=None, help="chart sources for --render (see planner.charts)")
    args = parser.parse_args(argv)

    try:
        config = stack_config(args.stack, stacks_dir=args.stacks_dir)
    except UnknownStack as error:
        print(error, file=sys.stderr)
        return 2
    evaluation = evaluate(args.stack, config_override=config, placeholders_for_absent=not args.require_secrets)
    if not evaluation.ok:
        for problem in evaluation.config_problems:
            print(problem, file=sys.stderr)
        return 2

    from policies.pack import cost
    from policies.pack.catalog import PACK_ENFORCEMENT, POLICIES, POLICY_CONFIG

    # The typed config the program accepted: the budget and the charts' settings come from it.
    platform = platform_config_of(evaluation.stack_config)
    budget = budget_options(platform)
    # The stack's budget reaches the cost policy as policy config, here and under `pulumi preview`.
    budget_config = cost.policy_config(budget)
    verdicts = run_policies(evaluation.registrations, POLICIES, PACK_ENFORCEMENT, config=budget_config)
    figures = plan_figures(evaluation, budget)
    plan_path = write_plan(evaluation, verdicts, args.out / args.stack, figures)
    # For `pulumi preview --policy-pack policies --policy-pack-config build/plan/<stack>/policy-config.json`.
    policy_config = {**POLICY_CONFIG, **budget_config}
    (plan_path.parent / "policy-config.json").write_text(json.dumps(policy_config, indent=2) + "\n")
    print(summary(evaluation, verdicts, figures=figures, out_dir=plan_path.parent, graph_on_terminal=args.graph))
    violated = any(v.enforcement == "mandatory" for v in verdicts)
    if args.render:
        scan_failed = _render_and_scan(evaluation, platform, plan_path.parent, args.charts_dir)
        return 1 if violated or scan_failed else 0
    return 1 if violated else 0


def _render_and_scan(evaluation: Evaluation, platform: PlatformConfig, plan_dir: Path, charts_dir: Path | None) -> bool:
    """Render the stack's releases (`platform`: the stack's typed config), scan them with the authored objects,
    print and keep the counts per release; True when a chart could not be rendered or a finding is outside the
    reviewed exceptions."""
    from planner.charts import HelmUnavailable, RenderError, charts_dir_default, render_stack, write_rendered
    from planner.scan import load_exceptions, scan

    try:
        stack_render = render_stack(evaluation, platform, charts_dir or charts_dir_default())
    except (HelmUnavailable, RenderError) as error:
        print(f"render: {error}")
        return True
    write_rendered(stack_render, plan_dir / "rendered")
    lines = [f"render: {label} not rendered: {reason}" for label, reason in stack_render.unavailable.items()]
    report = scan([(evaluation, stack_render)], load_exceptions())
    lines += report.lines() + [f"FAILING  {finding}" for finding in report.failing]
    print("\n".join(lines))
    with (plan_dir / "report.txt").open("a") as report_file:
        report_file.write("\n" + "\n".join(lines) + "\n")
    return bool(stack_render.missing_charts or report.failing)


if __name__ == "__main__":
    sys.exit(main())
