# Two entry points: `make plan` (offline plan of a stack) and `make test` (lint, types, tests).
# Both install what they need: uv (through pip when missing), then the locked environment.

STACK ?= dev
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen

.PHONY: setup plan plan-all test lint typecheck pytest bench facts docs clean

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.8"
	@$(UV) sync --frozen --quiet

plan: setup
	$(RUN) python -m planner --stack $(STACK)

# What a change does to a stack's offline plan: `make plan-diff BASE=origin/main STACK=dev FORMAT=markdown`.
# The base revision is planned in a temporary git worktree; secrets show only as "[secret] changed".
# Silent recipe: the output is the report (CI tees the markdown into a PR comment).
BASE ?= origin/main
FORMAT ?= text
.PHONY: plan-diff
plan-diff: setup
	@$(RUN) python -m planner.diff --base $(BASE) --stack $(STACK) --format $(FORMAT)

plan-all: setup
	@for stack in dev staging prod; do $(RUN) python -m planner --stack $$stack >/dev/null || exit $$?; echo "planned $$stack"; done

test: setup lint typecheck pytest

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck:
	$(RUN) mypy

pytest:
	$(RUN) pytest

bench: setup
	$(RUN) python tools/bench_plan.py

facts: setup
	$(RUN) python tools/derive_reference_facts.py

docs: setup
	$(RUN) python tools/gen_config_reference.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
