"""`python -m planner [--stack dev] [--out build/plan]`: the offline plan of one stack.

Exit codes: 0 ok, 1 a mandatory policy violation, 2 a configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from planner.cost import options_from_stack_config
from planner.evaluate import PROJECT_DIR, evaluate, stack_config
from planner.policy_runner import run_policies
from planner.render import summary, write_plan


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
    args = parser.parse_args(argv)

    config = stack_config(args.stack, stacks_dir=args.stacks_dir) if args.stacks_dir else None
    evaluation = evaluate(args.stack, config_override=config, placeholders_for_absent=not args.require_secrets)
    if not evaluation.ok:
        for problem in evaluation.config_problems:
            print(problem, file=sys.stderr)
        return 2

    from policies.pack import cost
    from policies.pack.catalog import PACK_ENFORCEMENT, POLICIES, POLICY_CONFIG

    budget = options_from_stack_config(config if config is not None else stack_config(args.stack))
    # The stack's budget reaches the cost policy as policy config, here and under `pulumi preview`.
    budget_config = cost.policy_config(budget)
    verdicts = run_policies(evaluation.registrations, POLICIES, PACK_ENFORCEMENT, config=budget_config)
    plan_path = write_plan(evaluation, verdicts, args.out / args.stack, budget)
    # For `pulumi preview --policy-pack policies --policy-pack-config build/plan/<stack>/policy-config.json`.
    policy_config = {**POLICY_CONFIG, **budget_config}
    (plan_path.parent / "policy-config.json").write_text(json.dumps(policy_config, indent=2) + "\n")
    print(summary(evaluation, verdicts, budget))
    print(f"\nWrote {plan_path.parent}")
    return 1 if any(v.enforcement == "mandatory" for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
