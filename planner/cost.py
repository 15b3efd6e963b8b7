"""The plan's cost as the planner reports it: the budget from a stack file's config, and the summary
lines. The estimate itself is the policy pack's (`policies.pack.pricing`), so the budget rule and the
plan report price a stack the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from policies.pack.pricing.prices import PRICE_TABLE
from policies.pack.pricing.report import MEASURES, CostOptions, CostReport, format_usd

if TYPE_CHECKING:
    from components.config import PlatformConfig


def budget_options(config: PlatformConfig) -> CostOptions:
    """Budget options from the stack's typed config."""
    budget = config.budget
    if budget is None:
        return CostOptions()
    existing = config.gpu_cluster.existing
    return CostOptions(
        monthly_limit_usd=budget.monthly_limit_usd,
        measure=budget.measure,
        external_gpus=existing.gpu_count if existing is not None else 0,
        external_gpu_hour_usd=budget.existing_cluster_gpu_hour_usd,
    )


def options_from_stack_config(raw: Mapping[str, Any]) -> CostOptions:
    """Budget options from a stack file's `config:` (already validated by the evaluation)."""
    from planner.evaluate import platform_config_of

    return budget_options(platform_config_of(raw))


def budget_line(report: CostReport) -> str | None:
    """The budget and whether the estimate keeps to it, where the stack sets one."""
    limit = report.options.monthly_limit_usd
    if limit is None:
        return None
    verdict = "OVER BUDGET" if report.budget_exceeded else "within budget"
    return f"budget {format_usd(limit)} on {report.options.measure}: {verdict}"


def summary_lines(report: CostReport) -> list[str]:
    region = report.region or "no Azure region"
    flag = " (estimate: region not in the table)" if report.region_estimated else ""
    lines = [
        f"Cost (USD/month, Azure list prices as of {report.prices_as_of}, pay-as-you-go, {region} x"
        f"{report.region_multiplier:g}{flag}):",
        "  idle {}   serving {}   peak {}".format(*(format_usd(report.monthly(m)) for m in MEASURES)),
    ]
    budget = budget_line(report)
    if budget is not None:
        lines.append(f"  {budget}")
    if report.fine_tuning is not None:
        ft = report.fine_tuning
        kind = "spot" if ft.spot else "on-demand"
        lines.append(
            f"  fine-tuning: {format_usd(ft.node_hour)}/h per {ft.vm_size} node ({kind}, {ft.gpus} x {ft.gpu_model}), "
            f"{format_usd(ft.gpu_hour)}/GPU-hour; on-demand {format_usd(ft.on_demand_node_hour)}/h"
        )
    for schedule in report.schedules:
        replicas = f"{schedule.replicas} replica(s), {schedule.gpus} GPU(s)"
        lines.append(
            f"  serving schedule {schedule.release}: {schedule.window} ({schedule.hours_per_month:.0f} h/month, "
            f"{replicas}): idle $0, scheduled {format_usd(schedule.scheduled)}, always-on "
            f"{format_usd(schedule.always_on)}; saves {format_usd(schedule.saving)}/month"
        )
    width = max((len(i.name) for i in report.items), default=0)
    for item in sorted(report.items, key=lambda i: -i.peak):
        lines.append(
            f"  {item.name:<{width}}  {format_usd(item.idle):>9} {format_usd(item.serving):>9} "
            f"{format_usd(item.peak):>9}  {item.detail}"
        )
    lines += [f"  usage-based: {text}" for text in report.usage_based]
    lines += [f"  not priced: {text} (add it to {PRICE_TABLE} or its freeTypes)" for text in report.not_priced]
    lines += [f"  note: {text}" for text in report.notes]
    lines += [f"  PROBLEM: {text}" for text in report.problems]
    return lines
