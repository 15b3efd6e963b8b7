"""Benchmark: wall time of the offline plan per stack, next to its floor (`make bench`).

Each measurement is a fresh process, as `make plan` is. The floor is what no planner can beat:
importing exactly the SDK modules the plan imported, plus registering as many bare resources
under the same mocks. What remains above the floor is the program and the planner's own work.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3

PLAN = """
import json, sys, time
start = time.perf_counter()
from planner.__main__ import main
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["--stack", sys.argv[1], "--out", sys.argv[2]])
elapsed = time.perf_counter() - start
SDKS = ("pulumi", "pulumi_azure_native", "pulumi_kubernetes", "pulumi_policy")
modules = sorted(m for m in sys.modules if m.split(".")[0] in SDKS)
plan = json.load(open(f"{sys.argv[2]}/{sys.argv[1]}/plan.json"))
print(json.dumps({"seconds": elapsed, "code": code, "modules": modules, "resources": len(plan["resources"])}))
"""

FLOOR = """
import asyncio, importlib, json, sys, time
start = time.perf_counter()
for module in json.loads(sys.argv[1]):
    importlib.import_module(module)
import pulumi
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_in_stack
from planner.mocks import CapturingMonitor, PlanMocks

class Bare(pulumi.CustomResource):
    def __init__(self, name):
        super().__init__("bench:index:Bare", name, {"value": name})

plan_mocks = PlanMocks()
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
mocks.set_mocks(plan_mocks, project="bench", stack="bench", preview=True, monitor=CapturingMonitor(plan_mocks))
settings.ROOT.set(None)
loop.run_until_complete(run_in_stack(lambda: [Bare(f"r{i}") for i in range(int(sys.argv[2]))] and None))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _run(script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{'stack':8} {'resources':>9} {'plan s':>8} {'floor s':>8} {'overhead s':>10}   (median of {REPEATS})")
    with tempfile.TemporaryDirectory() as out:
        for stack in ("dev", "staging", "prod"):
            plans = [_run(PLAN, stack, out) for _ in range(REPEATS)]
            plan = plans[-1]
            floors = [_run(FLOOR, json.dumps(plan["modules"]), str(plan["resources"])) for _ in range(REPEATS)]
            plan_s = statistics.median(p["seconds"] for p in plans)
            floor_s = statistics.median(f["seconds"] for f in floors)
            print(f"{stack:8} {plan['resources']:9d} {plan_s:8.2f} {floor_s:8.2f} {plan_s - floor_s:10.2f}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
