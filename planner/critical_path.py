"""How long `pulumi up` of a fresh stack takes: the longest chain through the dependency graph.

A resource starts when its dependencies and its provider are ready, and takes the typical creation
time of its kind (facts/durations.json). Components take no time; depending on a component means
depending on everything inside it. Parent -> child is not an edge: the engine does not wait for a
parent to be created before creating its children (components wrap, they do not gate).
The sum of all durations over the critical path is the parallelism the engine can exploit.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.values import unwrap
from policies.pack.gpu_sizes import is_gpu_vm_size
from policies.pack.props import chart_name
from policies.pack.record import Registration
from policies.pack.tokens import AGENT_POOL, HELM_RELEASE

DURATIONS_PATH = Path(__file__).resolve().parent.parent / "facts" / "durations.json"


@functools.cache
def load_durations(path: Path = DURATIONS_PATH) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def duration_of(registration: Registration, durations: Mapping[str, Any] | None = None) -> int:
    """Typical seconds to create this resource: by chart for Helm releases, GPU or CPU for agent pools,
    then by type, then by type prefix."""
    table = durations or load_durations()
    type_ = registration.type
    if type_.startswith("pulumi:providers:"):
        return int(table["providerSeconds"])
    if not registration.custom:
        return int(table["componentSeconds"])
    inputs = unwrap(registration.inputs)
    if type_ == HELM_RELEASE:
        charts = table["helmCharts"]
        entry = charts["charts"].get(chart_name(inputs))
        return int(entry["seconds"]) if entry else int(charts["defaultSeconds"])
    if type_ == AGENT_POOL:
        gpu = is_gpu_vm_size(str(inputs.get("vmSize") or ""))
        return int(table["agentPool"]["gpuSeconds" if gpu else "cpuSeconds"])
    if type_ in table["byType"]:
        return int(table["byType"][type_]["seconds"])
    prefixes = [p for p in table["byTypePrefix"] if type_.startswith(p)]
    if prefixes:
        return int(table["byTypePrefix"][max(prefixes, key=len)]["seconds"])
    return int(table["defaultSeconds"])


@dataclass(frozen=True)
class Step:
    urn: str
    name: str
    type: str
    seconds: int
    start: int
    finish: int


@dataclass
class CriticalPath:
    seconds: int
    path: list[Step]
    sum_seconds: int
    finish: dict[str, int]

    @property
    def parallelism(self) -> float:
        return round(self.sum_seconds / self.seconds, 2) if self.seconds else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "path": [
                {"urn": s.urn, "name": s.name, "type": s.type, "seconds": s.seconds, "start": s.start}
                for s in self.path
            ],
            "sumSeconds": self.sum_seconds,
            "parallelism": self.parallelism,
            "durations": "facts/durations.json",
        }


def _descendants(registrations: Iterable[Registration]) -> dict[str, list[str]]:
    """Component URN -> the URNs of every resource (custom or provider) below it."""
    children: dict[str, list[Registration]] = {}
    for r in registrations:
        children.setdefault(r.parent, []).append(r)

    @functools.cache
    def below(urn: str) -> tuple[str, ...]:
        found: list[str] = []
        for child in children.get(urn, []):
            if child.custom:
                found.append(child.urn)
            found += below(child.urn)
        return tuple(found)

    return {r.urn: list(below(r.urn)) for r in registrations if not r.custom}


def predecessors(registrations: list[Registration]) -> dict[str, set[str]]:
    """What each custom resource waits for: its dependencies (components expanded) and its provider."""
    by_urn = {r.urn: r for r in registrations}
    inside = _descendants(registrations)
    waits: dict[str, set[str]] = {}
    for r in registrations:
        if not r.custom:
            continue
        found: set[str] = set()
        for dependency in [*r.dependencies, r.provider]:
            if dependency not in by_urn:
                continue
            if by_urn[dependency].custom:
                found.add(dependency)
            else:
                found.update(inside.get(dependency, []))
        found.discard(r.urn)
        waits[r.urn] = found
    return waits


def analyse(registrations: Iterable[Registration], durations: Mapping[str, Any] | None = None) -> CriticalPath:
    registrations = list(registrations)
    by_urn = {r.urn: r for r in registrations}
    waits = predecessors(registrations)
    seconds = {urn: duration_of(by_urn[urn], durations) for urn in waits}
    finish: dict[str, int] = {}
    start: dict[str, int] = {}
    via: dict[str, str | None] = {}

    def visit(urn: str, trail: frozenset[str]) -> int:
        if urn in finish:
            return finish[urn]
        if urn in trail:
            raise ValueError(f"dependency cycle through {by_urn[urn].name}")
        before = [(visit(p, trail | {urn}), p) for p in sorted(waits[urn])]
        latest = max(before, default=(0, None))
        start[urn], via[urn] = latest
        finish[urn] = start[urn] + seconds[urn]
        return finish[urn]

    for urn in waits:
        visit(urn, frozenset())
    path: list[Step] = []
    # Ties go to the greatest URN so the reported path does not depend on registration order.
    current = max(finish, key=lambda u: (finish[u], u), default=None)
    while current is not None:
        r = by_urn[current]
        path.append(Step(current, r.name, r.type, seconds[current], start[current], finish[current]))
        current = via[current]
    path.reverse()
    total = max(finish.values(), default=0)
    return CriticalPath(seconds=total, path=path, sum_seconds=sum(seconds.values()), finish=finish)


def ready_at(report: CriticalPath, registrations: Iterable[Registration], component_urn: str) -> int:
    """When everything inside a component is ready."""
    inside = _descendants(list(registrations)).get(component_urn, [])
    return max((report.finish.get(u, 0) for u in inside), default=0)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def summary_lines(report: CriticalPath, registrations: list[Registration]) -> list[str]:
    lines = [
        f"Deployment time (fresh stack, typical creation times from facts/durations.json): critical path "
        f"{minutes(report.seconds)}, sum of all {minutes(report.sum_seconds)}, parallelism x{report.parallelism}"
    ]
    roots = {r.urn for r in registrations}
    top = [r for r in registrations if not r.custom and r.parent not in roots]
    # The platform's own parts: children of the outermost components.
    parts = [r for r in registrations if not r.custom and r.parent in {t.urn for t in top}] or top
    for part in sorted(parts, key=lambda p: ready_at(report, registrations, p.urn)):
        lines.append(f"  ready {minutes(ready_at(report, registrations, part.urn)):>9}  {part.type}  {part.name}")
    lines.append("  critical path:")
    for step in report.path:
        lines.append(
            f"    {minutes(step.start):>9} +{minutes(step.seconds):>9}  {step.type.split(':')[-1]}  {step.name}"
        )
    return lines
