"""Container sizing shared by the Helm values this program writes."""

from __future__ import annotations


def requests_limits(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, dict[str, str]]:
    """A container `resources` block: requests for scheduling, limits so one noisy pod cannot starve a node."""
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}
