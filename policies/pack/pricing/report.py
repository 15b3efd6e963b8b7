"""What a cost estimate says: line items under three measures, the fine-tuning GPU-hour, and the
report as plan.json carries it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .prices import PRICE_TABLE

Measure = Literal["idle", "serving", "peak"]
MEASURES: tuple[Measure, ...] = ("idle", "serving", "peak")


@dataclass(frozen=True)
class CostOptions:
    """What the stack's `llmops:budget` adds to the estimate."""

    monthly_limit_usd: float | None = None
    measure: Measure = "peak"
    external_gpus: int = 0
    external_gpu_hour_usd: float | None = None


@dataclass(frozen=True)
class LineItem:
    """One priced thing, in USD per month under each measure."""

    name: str
    type: str
    category: str
    detail: str
    idle: float
    serving: float
    peak: float

    def monthly(self, measure: Measure) -> float:
        return float(getattr(self, measure))


def flat_item(name: str, type_: str, category: str, detail: str, monthly: float) -> LineItem:
    """A line item that costs the same under every measure."""
    return LineItem(name, type_, category, detail, monthly, monthly, monthly)


def span(counts: tuple[int, int]) -> str:
    """A (minimum, maximum) count as `2` or `1-3`."""
    return str(counts[0]) if counts[0] == counts[1] else f"{counts[0]}-{counts[1]}"


@dataclass(frozen=True)
class GpuHour:
    """One node of the pool fine-tuning jobs land on, per hour."""

    pool: str
    vm_size: str
    gpus: int
    gpu_model: str
    spot: bool
    node_hour: float
    on_demand_node_hour: float

    @property
    def gpu_hour(self) -> float:
        return self.node_hour / self.gpus


@dataclass(frozen=True)
class ServingSchedule:
    """A model server that serves only inside a weekly window, in USD per month: the GPU nodes it adds beyond the
    pools' minimum inside the window (`scheduled`) and around the clock (`always_on`); idle it adds nothing."""

    release: str
    window: str
    hours_per_month: float
    replicas: int
    gpus: int
    scheduled: float
    always_on: float

    @property
    def saving(self) -> float:
        return self.always_on - self.scheduled


@dataclass
class CostReport:
    currency: str
    prices_as_of: str
    region: str | None
    region_multiplier: float
    region_estimated: bool
    items: list[LineItem] = field(default_factory=list)
    usage_based: list[str] = field(default_factory=list)
    not_priced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fine_tuning: GpuHour | None = None
    schedules: list[ServingSchedule] = field(default_factory=list)
    options: CostOptions = CostOptions()

    def monthly(self, measure: Measure) -> float:
        return round(sum(item.monthly(measure) for item in self.items), 2)

    @property
    def budget_exceeded(self) -> bool:
        limit = self.options.monthly_limit_usd
        return limit is not None and self.monthly(self.options.measure) > limit

    def to_json(self) -> dict[str, Any]:
        limit = self.options.monthly_limit_usd
        return {
            "currency": self.currency,
            "pricesAsOf": self.prices_as_of,
            "priceTable": PRICE_TABLE,
            "region": self.region,
            "regionMultiplier": self.region_multiplier,
            "regionEstimated": self.region_estimated,
            "monthly": {measure: self.monthly(measure) for measure in MEASURES},
            "budget": None
            if limit is None
            else {
                "monthlyLimitUsd": limit,
                "measure": self.options.measure,
                "withinBudget": not self.budget_exceeded,
            },
            "fineTuningGpuHour": None
            if self.fine_tuning is None
            else {
                "pool": self.fine_tuning.pool,
                "vmSize": self.fine_tuning.vm_size,
                "gpus": self.fine_tuning.gpus,
                "gpuModel": self.fine_tuning.gpu_model,
                "spot": self.fine_tuning.spot,
                "nodeHourUsd": round(self.fine_tuning.node_hour, 4),
                "gpuHourUsd": round(self.fine_tuning.gpu_hour, 4),
                "onDemandNodeHourUsd": round(self.fine_tuning.on_demand_node_hour, 4),
            },
            "servingSchedules": [
                {
                    "release": sc.release,
                    "window": sc.window,
                    "hoursPerMonth": round(sc.hours_per_month, 1),
                    "replicas": sc.replicas,
                    "gpus": sc.gpus,
                    "idle": 0.0,
                    "scheduled": round(sc.scheduled, 2),
                    "alwaysOn": round(sc.always_on, 2),
                    "saving": round(sc.saving, 2),
                }
                for sc in self.schedules
            ],
            "items": [
                {
                    "name": i.name,
                    "type": i.type,
                    "category": i.category,
                    "detail": i.detail,
                    "idle": round(i.idle, 2),
                    "serving": round(i.serving, 2),
                    "peak": round(i.peak, 2),
                }
                for i in self.items
            ],
            "usageBased": self.usage_based,
            "notPriced": self.not_priced,
            "problems": self.problems,
            "notes": self.notes,
        }


def format_usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"
