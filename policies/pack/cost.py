"""The stack's monthly cost stays within its budget.

The cost is priced by `pricing` from the resources' inputs and the dated Azure list prices in
pricing/prices-azure.json, the same arithmetic the plan report shows. The budget comes from the stack's
`llmops:budget` through this policy's config: the offline planner passes it in, and `make plan` writes
it to build/plan/<stack>/policy-config.json for
`pulumi preview --policy-pack policies --policy-pack-config build/plan/<stack>/policy-config.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pulumi_policy import PolicyConfigSchema, PolicyResource, ReportViolation, StackValidationArgs

from .common import knobs
from .pricing.estimate import estimate
from .pricing.inputs import known_inputs
from .pricing.report import MEASURES, CostOptions, Measure, format_usd
from .record import Registration
from .rules import MANDATORY, Rules, knob

RULES = Rules()

POLICY_NAME = "monthly-cost-within-budget"

_SCHEMA = PolicyConfigSchema(
    properties={
        "monthlyLimitUsd": knob(
            "number",
            0,
            "The stack's monthly budget in USD (llmops:budget.monthlyLimitUsd); 0: none, the policy does not apply.",
            minimum=0,
        ),
        "measure": knob(
            "string",
            "peak",
            "Which monthly cost the budget caps: idle (autoscalers at minimum), serving (idle plus the GPU nodes "
            "the model servers need) or peak (autoscalers at maximum).",
            enum=list(MEASURES),
        ),
        "externalGpus": knob(
            "integer", 0, "GPUs of an existing GPU cluster (DGX Cloud) to count at externalGpuHourUsd.", minimum=0
        ),
        "externalGpuHourUsd": knob(
            "number", 0, "Contracted USD per GPU-hour of the existing GPU cluster; 0: not counted.", minimum=0
        ),
    }
)


def options_from(config: Mapping[str, Any]) -> CostOptions:
    limit = float(config.get("monthlyLimitUsd") or 0)
    rate = float(config.get("externalGpuHourUsd") or 0)
    return CostOptions(
        monthly_limit_usd=limit or None,
        measure=cast(Measure, config.get("measure") or "peak"),
        external_gpus=int(config.get("externalGpus") or 0),
        external_gpu_hour_usd=rate or None,
    )


def policy_config(options: CostOptions) -> dict[str, dict[str, Any]]:
    """This policy's entry in a `--policy-pack-config` file, from the stack's budget."""
    return {
        POLICY_NAME: {
            "monthlyLimitUsd": options.monthly_limit_usd or 0,
            "measure": options.measure,
            "externalGpus": options.external_gpus,
            "externalGpuHourUsd": options.external_gpu_hour_usd or 0,
        }
    }


def _registration(resource: PolicyResource) -> Registration:
    """The shape the pricer reads, with the proxied inputs as plain data (unknowns as None). Components
    and providers are told apart by their type tokens."""
    custom = not resource.resource_type.startswith("llmops:")
    return Registration(
        urn=resource.urn,
        type=resource.resource_type,
        name=resource.name,
        parent=resource.parent.urn if resource.parent is not None else "",
        provider=resource.provider.urn if resource.provider is not None else "",
        dependencies=[d.urn for d in resource.dependencies],
        property_dependencies={},
        protect=resource.opts.protect,
        ignore_changes=list(resource.opts.ignore_changes or []),
        custom=custom,
        inputs=known_inputs(resource.props),
    )


@RULES.stack(POLICY_NAME, MANDATORY, _SCHEMA)
def monthly_cost_within_budget(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The stack's monthly cost at Azure list prices stays within its budget (llmops:budget)."""
    options = options_from(knobs(args, _SCHEMA))
    if options.monthly_limit_usd is None:
        args.not_applicable("no budget configured (llmops:budget.monthlyLimitUsd)")
    report = estimate([_registration(r) for r in args.resources], options)
    for problem in report.problems:
        report_violation(f"The monthly cost cannot be established: {problem}.", None)
    total = report.monthly(options.measure)
    if report.budget_exceeded:
        largest = sorted(report.items, key=lambda i: -i.monthly(options.measure))[:3]
        top = "; ".join(f"{i.name} {format_usd(i.monthly(options.measure))} ({i.detail})" for i in largest)
        report_violation(
            f"The {options.measure} monthly cost {format_usd(total)} (Azure list prices as of {report.prices_as_of}) "
            f"exceeds the budget of {format_usd(options.monthly_limit_usd or 0)}. Largest: {top}. Lower the pools' "
            "maxCount/minCount or sizes, or raise llmops:budget.monthlyLimitUsd.",
            None,
        )


POLICIES = RULES.policies
