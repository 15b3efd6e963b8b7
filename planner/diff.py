"""`python -m planner.diff --base REF [--stack dev] [--format text|markdown]`: what a change does to a stack's
offline plan, without cloud credentials.

The base revision is checked out in a temporary `git worktree` and its own planner runs there (with this
environment's Python); the working tree's planner runs beside it; the two plan.json documents are compared
by URN: resources added, removed and changed, with input-level differences as dotted paths (old -> new),
plus the stack outputs, policy violations, monthly cost and critical path.

Secrets never appear: plan.json holds "[secret]" in their place; a secret that changed shows as
"[secret] changed", told by the keyed digests both planners record (see `planner.digests`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.digests import raw_key
from planner.revisions import DiffError, plan_revisions
from planner.values import SECRET

ABSENT = object()
SECRET_CHANGED = "[secret] changed"
DEPENDENCIES = "(dependencies)"


# ------------------------------------------------------------------------------------------------------
# Comparing two plan documents
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any

    @property
    def secret(self) -> bool:
        return SECRET in (self.old, self.new)

    def describe(self) -> tuple[str, str]:
        """(old, new) as shown: secrets as a marker, never a value; dependencies as what left and what came."""
        if self.path == DEPENDENCIES:
            gone, came = sorted(set(self.old) - set(self.new)), sorted(set(self.new) - set(self.old))
            return " ".join(f"-{d}" for d in gone) or "-", " ".join(f"+{d}" for d in came) or "+"
        if self.old == SECRET and self.new == SECRET:
            return SECRET, SECRET_CHANGED
        if self.old == SECRET:
            return SECRET, "(no longer secret; value hidden)"
        if self.new == SECRET:
            return "(value hidden)", SECRET
        return show(self.old), show(self.new)


@dataclass
class ResourceDiff:
    urn: str
    type: str
    name: str
    changes: list[Change]


@dataclass
class PlanDiff:
    stack: str
    base_label: str
    head_label: str
    base_count: int
    head_count: int
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[ResourceDiff] = field(default_factory=list)
    outputs: list[Change] = field(default_factory=list)
    new_violations: list[str] = field(default_factory=list)
    resolved_violations: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs)


def show(value: Any, limit: int = 100) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _join(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _identity(*sides: list[Any]) -> str | None:
    """The field that identifies list items (`name`, `key`, `id`), when every item on each side has a unique one."""
    if not any(sides) or not all(isinstance(i, Mapping) for side in sides for i in side):
        return None
    for candidate in ("name", "key", "id"):
        if all(_unique_strings([i.get(candidate) for i in side]) for side in sides):
            return candidate
    return None


def _unique_strings(values: list[Any]) -> bool:
    return all(isinstance(v, str) for v in values) and len(set(values)) == len(values)


@dataclass
class _Digests:
    old: Mapping[str, str]
    new: Mapping[str, str]

    def differ(self, old_raw: tuple[str | int, ...], new_raw: tuple[str | int, ...]) -> bool:
        a, b = self.old.get(raw_key(old_raw)), self.new.get(raw_key(new_raw))
        return a is not None and b is not None and a != b

    def changed_under(self, raw: tuple[str | int, ...]) -> bool:
        """A secret below `raw` changed: equal redacted subtrees have the same raw paths on both sides."""
        for key, digest in self.old.items():
            path = tuple(json.loads(key))
            if path[: len(raw)] == raw and self.new.get(key) not in (None, digest):
                return True
        return False


def _walk(
    old: Any,
    new: Any,
    path: str,
    raw: tuple[tuple[str | int, ...], tuple[str | int, ...]],
    digests: _Digests,
    out: list[Change],
) -> None:
    if old == new and not (isinstance(old, Mapping | list) and digests.changed_under(raw[0])):
        if old == SECRET and digests.differ(*raw):
            out.append(Change(path, SECRET, SECRET))
        return
    if SECRET in (old, new) or old is ABSENT or new is ABSENT:
        out.append(Change(path, old, new))
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            _walk(
                old.get(key, ABSENT),
                new.get(key, ABSENT),
                _join(path, str(key)),
                ((*raw[0], key), (*raw[1], key)),
                digests,
                out,
            )
        return
    if isinstance(old, list) and isinstance(new, list):
        identity = _identity(old, new)
        if identity:
            old_at = {item[identity]: i for i, item in enumerate(old)}
            new_at = {item[identity]: i for i, item in enumerate(new)}
            for name in [*old_at, *[n for n in new_at if n not in old_at]]:
                i, j = old_at.get(name), new_at.get(name)
                _walk(
                    old[i] if i is not None else ABSENT,
                    new[j] if j is not None else ABSENT,
                    f"{path}[{identity}={name}]",
                    ((*raw[0], i if i is not None else -1), (*raw[1], j if j is not None else -1)),
                    digests,
                    out,
                )
            return
        for index in range(max(len(old), len(new))):
            _walk(
                old[index] if index < len(old) else ABSENT,
                new[index] if index < len(new) else ABSENT,
                f"{path}[{index}]",
                ((*raw[0], index), (*raw[1], index)),
                digests,
                out,
            )
        return
    out.append(Change(path, old, new))


def _short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _resource_changes(old: Mapping[str, Any], new: Mapping[str, Any], digests: _Digests) -> list[Change]:
    changes: list[Change] = []
    _walk(old.get("inputs", {}), new.get("inputs", {}), "", ((), ()), digests, changes)
    for key in ("protect", "ignoreChanges", "custom"):
        if old.get(key) != new.get(key):
            changes.append(Change(f"({key})", old.get(key), new.get(key)))
    if old.get("provider") != new.get("provider"):
        changes.append(Change("(provider)", _short(old.get("provider") or ""), _short(new.get("provider") or "")))
    before, after = set(old.get("dependencies") or []), set(new.get("dependencies") or [])
    if before != after:
        changes.append(Change(DEPENDENCIES, sorted(map(_short, before)), sorted(map(_short, after))))
    return changes


def _violations(document: Mapping[str, Any]) -> set[str]:
    return {
        f"[{v.get('enforcement')}] {v.get('policy')}: {v.get('message')} ({_short(v.get('urn') or '') or 'stack'})"
        for v in (document.get("policies") or {}).get("violations") or []
    }


def _figures(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    old_cost, new_cost = (base.get("cost") or {}).get("monthly"), (head.get("cost") or {}).get("monthly")
    if isinstance(old_cost, Mapping) and isinstance(new_cost, Mapping):
        parts = []
        for measure in ("idle", "serving", "peak"):
            if measure in old_cost and measure in new_cost:
                a, b = float(old_cost[measure]), float(new_cost[measure])
                parts.append(f"{measure} ${a:,.0f} → ${b:,.0f} ({b - a:+,.0f})")
        if parts:
            lines.append("Monthly cost (USD): " + "; ".join(parts))
    elif isinstance(new_cost, Mapping):
        lines.append("Monthly cost (USD): " + ", ".join(f"{k} ${float(v):,.0f}" for k, v in new_cost.items()))
    old_path, new_path = base.get("criticalPath") or {}, head.get("criticalPath") or {}
    if "seconds" in new_path:
        b = float(new_path["seconds"]) / 60
        text = f"Critical path: {b:.1f} min"
        if "seconds" in old_path:
            a = float(old_path["seconds"]) / 60
            text = f"Critical path: {a:.1f} → {b:.1f} min ({b - a:+.1f})"
        lines.append(text)
    return lines


def compare(
    base: Mapping[str, Any], head: Mapping[str, Any], base_label: str = "base", head_label: str = "head"
) -> PlanDiff:
    old = {r["urn"]: r for r in base.get("resources") or []}
    new = {r["urn"]: r for r in head.get("resources") or []}
    old_digests = base.get("secretDigests") or {}
    new_digests = head.get("secretDigests") or {}
    diff = PlanDiff(
        stack=str(head.get("stack") or base.get("stack") or ""),
        base_label=base_label,
        head_label=head_label,
        base_count=len(old),
        head_count=len(new),
        added=[new[u] for u in new if u not in old],
        removed=[old[u] for u in old if u not in new],
    )
    for urn in (u for u in new if u in old):
        digests = _Digests(old_digests.get(urn) or {}, new_digests.get(urn) or {})
        changes = _resource_changes(old[urn], new[urn], digests)
        if changes:
            diff.changed.append(ResourceDiff(urn, new[urn]["type"], new[urn]["name"], changes))
    _walk(base.get("outputs") or {}, head.get("outputs") or {}, "", ((), ()), _Digests({}, {}), diff.outputs)
    before, after = _violations(base), _violations(head)
    diff.new_violations = sorted(after - before)
    diff.resolved_violations = sorted(before - after)
    diff.figures = _figures(base, head)
    if old and ("secretDigests" not in base or "secretDigests" not in head):
        diff.notes.append("a secret whose value changed but stayed secret can't be seen: a plan has no secret digests")
    return diff


# ------------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------------


def render_text(diff: PlanDiff) -> str:
    lines = [
        f"Plan diff of stack {diff.stack}: {diff.base_label} → {diff.head_label}",
        f"Resources: {diff.base_count} → {diff.head_count} ({len(diff.added)} to add, {len(diff.removed)} to remove, "
        f"{len(diff.changed)} to change)",
    ]
    lines += [f"  {note}" for note in diff.notes]
    if diff.empty:
        lines.append("No resource or output changes.")
    lines += [f"+ {r['urn']}" for r in diff.added]
    lines += [f"- {r['urn']}" for r in diff.removed]
    for resource in diff.changed:
        lines.append(f"~ {resource.urn}")
        lines += [_change_line(c) for c in resource.changes]
    if diff.outputs:
        lines.append("~ stack outputs")
        lines += [_change_line(c) for c in diff.outputs]
    lines += diff.figures
    if diff.new_violations or diff.resolved_violations:
        lines.append(f"Policies: {len(diff.new_violations)} new violation(s), {len(diff.resolved_violations)} resolved")
        lines += _violation_lines(diff, "  + ", "  - ")
    return "\n".join(lines) + "\n"


def _change_cells(change: Change) -> tuple[str, str, str]:
    """(path, old, new) of a change as shown."""
    old, new = change.describe()
    return change.path or "(inputs)", old, new


def _change_line(change: Change) -> str:
    return "    {}: {} → {}".format(*_change_cells(change))


def _violation_lines(diff: PlanDiff, new: str, resolved: str) -> list[str]:
    return [new + v for v in diff.new_violations] + [resolved + v for v in diff.resolved_violations]


def _cell(text: str) -> str:
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def render_markdown(diff: PlanDiff) -> str:
    lines = [
        f"### Offline plan diff: `{diff.stack}`",
        "",
        f"{diff.base_label} → {diff.head_label}",
        "",
        "| resources | base | head | added | removed | changed |",
        "|---|---|---|---|---|---|",
        f"| | {diff.base_count} | {diff.head_count} | {len(diff.added)} | {len(diff.removed)} | {len(diff.changed)} |",
        "",
    ]
    lines += [f"- {figure}" for figure in diff.figures]
    lines += [f"> {note}" for note in diff.notes]
    if diff.empty:
        lines += ["", "No resource or output changes."]
    for title, resources in (("Added", diff.added), ("Removed", diff.removed)):
        if resources:
            long = len(resources) > 10
            lines += ["", f"#### {title}", ""]
            lines += [f"<details><summary>{len(resources)} resources</summary>", ""] if long else []
            lines += [f"- `{r['type']}` **{r['name']}** <sub>`{r['urn']}`</sub>" for r in resources]
            lines += ["", "</details>"] if long else []
    if diff.changed or diff.outputs:
        lines += ["", "#### Changed", ""]
    for resource in diff.changed:
        count = len(resource.changes)
        lines += [
            f"<details><summary><code>{resource.type}</code> <b>{resource.name}</b>: {count} change"
            f"{'s' if count != 1 else ''}</summary>",
            "",
            f"`{resource.urn}`",
            "",
            "| path | base | head |",
            "|---|---|---|",
        ]
        lines += [_markdown_row(c) for c in resource.changes]
        lines += ["", "</details>"]
    if diff.outputs:
        lines += ["<details><summary>stack outputs</summary>", "", "| path | base | head |", "|---|---|---|"]
        lines += [_markdown_row(c) for c in diff.outputs]
        lines += ["", "</details>"]
    if diff.new_violations or diff.resolved_violations:
        lines += ["", "#### Policies", "", *_violation_lines(diff, "- new: ", "- resolved: ")]
    return "\n".join(lines) + "\n"


def _markdown_row(change: Change) -> str:
    return "| {} | {} | {} |".format(*map(_cell, _change_cells(change)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planner.diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="git revision to compare with (branch, tag or commit)")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    parser.add_argument("--base-plan", type=Path, help="compare this plan.json instead of planning --base")
    parser.add_argument("--head-plan", type=Path, help="use this plan.json instead of planning the working tree")
    args = parser.parse_args(argv)
    if not args.base and not args.base_plan:
        parser.error("give --base REF (or --base-plan PATH)")
    try:
        if args.base_plan:
            if not args.head_plan:
                parser.error("--base-plan needs --head-plan")
            base, head = json.loads(args.base_plan.read_text()), json.loads(args.head_plan.read_text())
            notes: list[str] = []
            base_label, head_label = str(args.base_plan), str(args.head_plan)
        else:
            base, head, notes, base_label = plan_revisions(args.base, args.stack, args.head_plan)
            head_label = str(args.head_plan) if args.head_plan else "working tree"
    except DiffError as error:
        print(f"plan diff: {error}", file=sys.stderr)
        return 2
    diff = compare(base, head, base_label, head_label)
    diff.notes[:0] = notes
    print(render_markdown(diff) if args.format == "markdown" else render_text(diff), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
