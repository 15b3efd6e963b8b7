"""Planning a git revision in a temporary `git worktree` with its own planner (and this environment's
Python), beside the working tree's, both with the same one-off secret-digest key."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.digests import DIGEST_ENV

PROJECT_DIR = Path(__file__).resolve().parent.parent


class DiffError(Exception):
    pass


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


@dataclass
class _Run:
    process: subprocess.Popen[str] | None
    plan: Path
    project: Path
    stack: str
    label: str
    note: str = ""


def _start(project: Path, stack: str, out: Path, env: Mapping[str, str], label: str) -> _Run:
    """Run a revision's own planner with this environment's Python (not `uv run`, which would sync a
    second environment or rewrite this one to the base's lock file)."""
    plan = out / stack / "plan.json"
    if not (project / "planner" / "__main__.py").exists():
        return _Run(None, plan, project, stack, label, f"{label} has no offline planner: every resource shows as added")
    process = subprocess.Popen(
        [sys.executable, "-m", "planner", "--stack", stack, "--out", str(out)],
        cwd=project,
        env={**env, "PYTHONPATH": str(project)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return _Run(process, plan, project, stack, label)


def _finish(run: _Run) -> tuple[dict[str, Any], str]:
    """The plan document of a run (an empty one, with a note, when the revision has no plan to offer)."""
    empty: dict[str, Any] = {"stack": run.stack, "resources": []}
    if run.process is None:
        return empty, run.note
    _, stderr = run.process.communicate()
    if run.plan.exists():
        return json.loads(run.plan.read_text()), ""
    if not (run.project / "stacks" / f"Pulumi.{run.stack}.yaml").exists():
        return empty, f"{run.label} has no stack {run.stack!r}: every resource shows as added"
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    raise DiffError(f"the planner of {run.label} failed (exit {run.process.returncode}):\n{tail}")


def plan_revisions(
    base_ref: str, stack: str, head_plan: Path | None = None, project_dir: Path = PROJECT_DIR
) -> tuple[dict[str, Any], dict[str, Any], list[str], str]:
    """(base plan, head plan, notes, base label): the base planned in a temporary worktree, the working tree
    beside it (or `head_plan` when given). The worktree is removed afterwards."""
    toplevel = Path(_git("rev-parse", "--show-toplevel", cwd=project_dir))
    sha = _git("rev-parse", "--verify", f"{base_ref}^{{commit}}", cwd=project_dir)
    relative = project_dir.resolve().relative_to(toplevel.resolve())
    label = f"{base_ref} ({sha[:10]})"
    env = {**os.environ, DIGEST_ENV: secrets.token_hex(32)}
    with tempfile.TemporaryDirectory(prefix="plan-diff-") as temp:
        tree = Path(temp) / "base"
        _git("worktree", "add", "--detach", "--quiet", str(tree), sha, cwd=project_dir)
        head_run: _Run | None = None
        try:
            base_run = _start(tree / relative, stack, Path(temp) / "base-plan", env, label)
            if head_plan is None:
                head_run = _start(project_dir, stack, Path(temp) / "head-plan", env, "working tree")
            base, base_note = _finish(base_run)
            if head_plan is not None:
                head, head_note = json.loads(head_plan.read_text()), ""
            elif head_run is not None:
                head, head_note = _finish(head_run)
        finally:
            if head_run is not None and head_run.process is not None and head_run.process.poll() is None:
                head_run.process.kill()
                head_run.process.wait()
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=project_dir, capture_output=True)
            subprocess.run(["git", "worktree", "prune"], cwd=project_dir, capture_output=True)
    return base, head, [n for n in (base_note, head_note) if n], label
