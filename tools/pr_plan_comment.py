"""The pull-request comment of the offline plan: for every stack, its verdict, what the change does to its plan
(the plan diff against the base branch) and a Mermaid graph of what changed, which GitHub draws.

`python tools/pr_plan_comment.py --base origin/main [--stacks dev staging prod] [--out build/pr-comment.md]`

Reads what `make plan-all` left in build/ (plan-<stack>.exit, plan-<stack>.txt, plan/<stack>/plan.json) and
plans the base revision of each stack through planner.diff. It always writes a comment, also when a plan
failed: that is when the verdicts matter most.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.diff import DiffError, PlanDiff, compare, plan_revisions, render_markdown  # noqa: E402

MARKER = "<!-- llmops-offline-plan -->"
# GitHub refuses comments over 65,536 characters; each stack gets an equal share of what is left.
COMMENT_LIMIT = 60_000
# Mermaid graphs beyond this many resources are unreadable: draw one box per component instead.
MAX_GRAPH_RESOURCES = 40
ADDED, REMOVED, CHANGED = "added", "removed", "changed"
STYLES = {
    ADDED: "fill:#dcfce7,stroke:#16a34a,color:#14532d",
    REMOVED: "fill:#fee2e2,stroke:#dc2626,color:#7f1d1d",
    CHANGED: "fill:#fef3c7,stroke:#d97706,color:#78350f",
}
SIGN = {ADDED: "+", REMOVED: "-", CHANGED: "~"}


def _short_type(token: str) -> str:
    return token.rsplit(":", 1)[-1]


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") + '"'


def change_graph(base: Mapping[str, Any], head: Mapping[str, Any], diff: PlanDiff) -> str | None:
    """A Mermaid flowchart of the resources a change adds, removes or changes, inside their components, with
    the dependencies between them; None when nothing changed."""
    kinds: dict[str, str] = {r["urn"]: ADDED for r in diff.added}
    kinds |= {r["urn"]: REMOVED for r in diff.removed}
    kinds |= {r.urn: CHANGED for r in diff.changed}
    if not kinds:
        return None
    documents = {r["urn"]: r for r in base.get("resources") or []} | {r["urn"]: r for r in head.get("resources") or []}
    counts = {r.urn: len(r.changes) for r in diff.changed}

    def component_of(urn: str) -> str:
        return str(documents.get(urn, {}).get("parent") or "")

    def component_title(urn: str) -> str:
        component = documents.get(urn)
        return f"{_short_type(component['type'])} {component['name']}" if component else "stack"

    lines = ["flowchart LR"]
    ids: dict[str, str] = {}
    by_component: dict[str, list[str]] = {}
    for urn in kinds:
        by_component.setdefault(component_of(urn), []).append(urn)
    groups = sorted(by_component.items(), key=lambda item: component_title(item[0]))

    if len(kinds) <= MAX_GRAPH_RESOURCES:
        for group, (component, urns) in enumerate(groups):
            lines.append(f"  subgraph g{group}[{_label(component_title(component))}]")
            for urn in sorted(urns):
                node = ids[urn] = f"r{len(ids)}"
                resource, kind = documents[urn], kinds[urn]
                detail = f" · {counts[urn]} change{'s' if counts[urn] != 1 else ''}" if kind == CHANGED else ""
                text = f"{SIGN[kind]} {_short_type(resource['type'])} {resource['name']}{detail}"
                lines.append(f"    {node}[{_label(text)}]:::{kind}")
            lines.append("  end")
        edges = sorted(
            (ids[dependency], ids[urn])
            for urn in kinds
            for dependency in documents[urn].get("dependencies") or []
            if dependency in ids
        )
        lines += [f"  {source} --> {target}" for source, target in edges]
    else:
        for group, (component, urns) in enumerate(groups):
            tally = ", ".join(
                f"{sum(1 for u in urns if kinds[u] == kind)} {kind}"
                for kind in (ADDED, REMOVED, CHANGED)
                if any(kinds[u] == kind for u in urns)
            )
            dominant = max((ADDED, REMOVED, CHANGED), key=lambda kind: sum(1 for u in urns if kinds[u] == kind))
            lines.append(f"  c{group}[{_label(component_title(component) + ': ' + tally)}]:::{dominant}")
    lines += [f"  classDef {kind} {style}" for kind, style in STYLES.items()]
    return "\n".join(lines) + "\n"


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def verdict(stack: str, build: Path) -> tuple[bool, str]:
    """(planned without a mandatory violation or error, markdown of the verdict)."""
    code_text = _read(build / f"plan-{stack}.exit")
    output = _read(build / f"plan-{stack}.txt") or ""
    if code_text is None:
        return False, "❌ not planned (the plan step did not run)"
    code = int(code_text.strip() or 1)
    if code not in (0, 1):
        tail = "\n".join(output.rstrip().splitlines()[-40:])
        return False, f"❌ the planner failed (exit {code}):\n\n```\n{tail}\n```"
    document = json.loads((build / "plan" / stack / "plan.json").read_text())
    violations = (document.get("policies") or {}).get("violations") or []
    mandatory = [v for v in violations if v.get("enforcement") == "mandatory"]
    advisory = [v for v in violations if v.get("enforcement") != "mandatory"]

    def item(v: Mapping[str, Any]) -> str:
        where = str(v.get("urn") or "").rsplit("::", 1)[-1] or "stack"
        return f"- `{v.get('policy')}` ({where}): {v.get('message')}"

    head = (
        f"❌ {len(mandatory)} mandatory policy violation(s), {len(advisory)} advisory"
        if mandatory
        else f"✅ no mandatory policy violation, {len(advisory)} advisory"
    )
    lines = [head, *(item(v) for v in mandatory)]
    if advisory:
        lines += ["", "<details><summary>advisories</summary>", "", *(item(v) for v in advisory), "", "</details>"]
    return not mandatory and code == 0, "\n".join(lines)


def _fit(text: str, limit: int, note: str) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(note) - 2)]
    # Cut at a line end, and close a <details> left open so the rest of the comment still renders.
    cut = cut[: cut.rfind("\n") + 1] if "\n" in cut else ""
    opened = len(re.findall(r"<details>", cut)) - len(re.findall(r"</details>", cut))
    if cut.count("```") % 2:
        cut += "```\n"
    return cut + "\n</details>\n" * max(opened, 0) + f"\n{note}\n"


def stack_section(stack: str, base_ref: str, build: Path, limit: int) -> str:
    ok, verdict_text = verdict(stack, build)
    parts = [f"### `{stack}` {'✅' if ok else '❌'}", "", verdict_text, ""]
    try:
        base, head, notes, label = plan_revisions(base_ref, stack)
    except DiffError as error:
        parts += [f"Plan diff against `{base_ref}`: not available ({str(error).splitlines()[0]})", ""]
        return "\n".join(parts)
    diff = compare(base, head, label, "this pull request")
    diff.notes[:0] = notes
    graph = change_graph(base, head, diff)
    if graph:
        parts += ["```mermaid", graph.rstrip(), "```", ""]
    body = render_markdown(diff).replace(f"### Offline plan diff: `{diff.stack}`", "#### Plan diff", 1)
    parts.append(
        _fit(body, max(2_000, limit - sum(map(len, parts))), "_(cut short: the full diff is in the run's artifact)_")
    )
    return "\n".join(parts)


def comment(base_ref: str, stacks: list[str], build: Path, run_url: str | None = None) -> str:
    header = [
        MARKER,
        "## Offline plan",
        "",
        f"Every stack planned offline (Pulumi mocks, policy pack) and compared with `{base_ref}`.",
    ]
    if run_url:
        header.append(f"Full summaries and plan files: [the run's artifact]({run_url}).")
    share = (COMMENT_LIMIT - sum(map(len, header))) // max(len(stacks), 1)
    return "\n".join(header) + "\n\n" + "\n".join(stack_section(s, base_ref, build, share) for s in stacks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision the pull request merges into, e.g. origin/main")
    parser.add_argument("--stacks", nargs="+", default=["dev", "staging", "prod"])
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "pr-comment.md")
    parser.add_argument("--run-url", help="link to the workflow run, for the full artifacts")
    args = parser.parse_args(argv)
    text = comment(args.base, args.stacks, args.build, args.run_url)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
