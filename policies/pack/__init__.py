"""The pack's code. Its modules import each other relatively and nothing of the project outside the
pack, so it runs both as `pack` (under the engine) and as `policies.pack` (planner, tests)."""
