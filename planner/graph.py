"""A picture of the plan: the component tree, coloured by the cluster each part lands on, and the
edges where one cluster waits for another. Mermaid always (renders on GitHub); SVG through graphviz
`dot` when it is installed.

A resource's cluster is its Kubernetes provider's (`<cluster>-k8s`); an Azure resource belongs to the
cluster of the nearest component whose resources all land on one cluster (the AKS cluster's identity,
pools and storage), else it is shared infrastructure (resource group, network, logs).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from planner.critical_path import predecessors
from policies.pack.record import Registration
from policies.pack.tokens import KUBERNETES_PROVIDER

SHARED = "shared"
_PALETTE = ["#dbe8fb:#3f6fb5", "#dcf2e3:#2f8a4f", "#fdebd3:#b8741a", "#eadcf5:#7b4aa8", "#fbdde0:#b03a48"]
_SHARED_COLOURS = "#eeeeee:#888888"


def clusters(registrations: Iterable[Registration]) -> dict[str, str]:
    """URN -> cluster name (or "shared") for every registration, components included."""
    registrations = list(registrations)
    providers = {r.urn: r.name.removesuffix("-k8s") for r in registrations if r.type == KUBERNETES_PROVIDER}
    children: dict[str, list[Registration]] = {}
    for r in registrations:
        children.setdefault(r.parent, []).append(r)

    own: dict[str, str] = {}
    for r in registrations:
        if r.urn in providers:
            own[r.urn] = providers[r.urn]
        elif r.provider in providers:
            own[r.urn] = providers[r.provider]

    subtree: dict[str, set[str]] = {}

    def lanes_below(urn: str) -> set[str]:
        if urn not in subtree:
            found = {own[urn]} if urn in own else set()
            for child in children.get(urn, []):
                found |= lanes_below(child.urn)
            subtree[urn] = found
        return subtree[urn]

    by_urn = {r.urn: r for r in registrations}
    result: dict[str, str] = {}
    for r in registrations:
        if r.urn in own:
            result[r.urn] = own[r.urn]
            continue
        current: Registration | None = r
        lane = SHARED
        while current is not None:
            below = lanes_below(current.urn)
            if len(below) == 1:
                lane = next(iter(below))
                break
            if len(below) > 1:
                break
            current = by_urn.get(current.parent)
        result[r.urn] = lane
    return result


@dataclass(frozen=True)
class _Part:
    """A component's own resources on one cluster."""

    id: str
    lane: str
    resources: tuple[Registration, ...]


@dataclass
class _Node:
    """A component: drawn as a box around its parts and sub-components when it has sub-components or
    resources on more than one cluster (GitOps wiring), else as a single node."""

    id: str
    label: str
    lane: str
    children: list[_Node] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)

    @property
    def is_box(self) -> bool:
        return bool(self.children) or len(self.parts) > 1


@dataclass
class Picture:
    roots: list[_Node]
    edges: dict[tuple[str, str], int]
    lanes: list[str]

    def colours(self, lane: str) -> tuple[str, str]:
        spec = _SHARED_COLOURS if lane == SHARED else _PALETTE[self.lanes.index(lane) % len(_PALETTE)]
        fill, stroke = spec.split(":")
        return fill, stroke


def _describe(resources: list[Registration]) -> str:
    counts = Counter(r.type.split(":")[-1] for r in resources)
    top = ", ".join(f"{n} {t}" for t, n in counts.most_common(3))
    more = "" if len(counts) <= 3 else ", …"
    if len(resources) == 1:
        return top
    return f"{len(resources)} resources: {top}{more}"


def build(registrations: Iterable[Registration]) -> Picture:
    registrations = list(registrations)
    lane_of = clusters(registrations)
    urns = {r.urn for r in registrations}
    children: dict[str, list[Registration]] = {}
    for r in registrations:
        children.setdefault(r.parent, []).append(r)
    node_of: dict[str, str] = {}  # resource URN -> id of the node that stands for it
    counter = iter(range(1_000_000))

    def make(component: Registration) -> _Node:
        node_id = f"n{next(counter)}"
        kids = children.get(component.urn, [])
        resources = [k for k in kids if k.custom]
        node = _Node(node_id, f"{component.type.split(':')[-1]} {component.name}", lane_of[component.urn])
        by_lane: dict[str, list[Registration]] = {}
        for r in resources:
            by_lane.setdefault(lane_of[r.urn], []).append(r)
        for index, (lane, group) in enumerate(sorted(by_lane.items())):
            part = _Part(f"{node_id}p{index}", lane, tuple(group))
            node.parts.append(part)
            for r in group:
                node_of[r.urn] = part.id
        node.children = [make(k) for k in kids if not k.custom]
        if not node.is_box and node.parts:
            # A single node stands for the component and its resources.
            node_of.update({r.urn: node_id for r in node.parts[0].resources})
        node_of[component.urn] = node_id
        return node

    roots = [make(r) for r in registrations if not r.custom and r.parent not in urns]
    edges: Counter[tuple[str, str]] = Counter()
    for urn, waits in predecessors(registrations).items():
        for before in waits:
            a, b = lane_of.get(before, SHARED), lane_of.get(urn, SHARED)
            if (
                a != b
                and SHARED not in (a, b)
                and before in node_of
                and urn in node_of
                and node_of[before] != node_of[urn]
            ):
                edges[(node_of[before], node_of[urn])] += 1
    lanes = sorted({lane for lane in lane_of.values() if lane != SHARED})
    return Picture(roots, dict(edges), lanes)


def _on(lane: str) -> str:
    """A box's cluster, when all of it lands on one."""
    return "" if lane == SHARED else f" · {lane}"


def _lane_class(lane: str) -> str:
    return "c_" + "".join(ch if ch.isalnum() else "_" for ch in lane)


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")


def _tree_lines(
    roots: list[_Node],
    open_box: Callable[[_Node], list[str]],
    item: Callable[[str, str, str, str], list[str]],
    close_box: str,
) -> list[str]:
    """The component tree in one notation: each box opened, its parts and sub-components inside, closed;
    each other node as an item. `item(id, title, rest, lane)` draws a node labelled `title` + `rest`
    (`rest` is markup: resources and cluster)."""
    lines: list[str] = []

    def emit(node: _Node, depth: int) -> None:
        pad = "  " * depth
        if node.is_box:
            lines.extend(pad + line for line in open_box(node))
            for part in node.parts:
                title = _describe(list(part.resources))
                lines.extend(f"{pad}  {line}" for line in item(part.id, title, f"<br/>on {part.lane}", part.lane))
            for child in node.children:
                emit(child, depth + 1)
            lines.append(pad + close_box)
        else:
            resources = f"<br/>{_describe(list(node.parts[0].resources))}" if node.parts else ""
            lines.extend(pad + line for line in item(node.id, node.label, f"{resources}<br/>on {node.lane}", node.lane))

    for root in roots:
        emit(root, 1)
    return lines


def mermaid(registrations: Iterable[Registration]) -> str:
    picture = build(registrations)
    legend = ", ".join(picture.lanes) or "none"
    lines = ["flowchart LR", f"  %% clusters: {legend}; arrows: one cluster waiting for another"]
    for lane in [*picture.lanes, SHARED]:
        fill, stroke = picture.colours(lane)
        lines.append(f"  classDef {_lane_class(lane)} fill:{fill},stroke:{stroke},color:#111")

    def node(node_id: str, title: str, rest: str, lane: str) -> list[str]:
        return [f'{node_id}["{_escape(title)}{rest}"]', f"class {node_id} {_lane_class(lane)}"]

    lines += _tree_lines(
        picture.roots, lambda box: [f'subgraph {box.id}["{_escape(box.label)}{_on(box.lane)}"]'], node, "end"
    )
    for (a, b), count in sorted(picture.edges.items()):
        lines.append(f'  {a} -- "{count} dependenc{"y" if count == 1 else "ies"}" --> {b}')
    return "\n".join(lines) + "\n"


def dot_source(registrations: Iterable[Registration]) -> str:
    picture = build(registrations)
    lines = [
        "digraph plan {",
        "  rankdir=LR; compound=true; fontname=Helvetica;",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
    ]

    def text(label: str) -> str:
        return label.replace('"', '\\"').replace("<br/>", "\\n")

    def box(node_id: str, title: str, rest: str, lane: str) -> list[str]:
        fill, stroke = picture.colours(lane)
        return [f'{node_id} [label="{text(title + rest)}", fillcolor="{fill}", color="{stroke}"];']

    lines += _tree_lines(
        picture.roots,
        lambda node: [
            f"subgraph cluster_{node.id} {{",
            f'  label="{text(node.label)}{_on(node.lane)}"; style=rounded; color="#999999";',
        ],
        box,
        "}",
    )
    for (a, b), count in sorted(picture.edges.items()):
        lines.append(f'  {a} -> {b} [label="{count}", color="#c0392b", penwidth=1.5];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(registrations: Iterable[Registration], out_dir: Path) -> list[Path]:
    """graph.mmd always; graph.svg when graphviz `dot` is on the PATH (skipped silently otherwise)."""
    registrations = list(registrations)
    written = [out_dir / "graph.mmd"]
    written[0].write_text(mermaid(registrations))
    dot = shutil.which("dot")
    if dot is None:
        return written
    result = subprocess.run(
        [dot, "-Tsvg"], input=dot_source(registrations), capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0 or "<svg" not in result.stdout:
        print(f"graphviz dot failed, no graph.svg: {result.stderr.strip()[:300]}", file=sys.stderr)
        return written
    svg = out_dir / "graph.svg"
    svg.write_text(result.stdout)
    return [*written, svg]
