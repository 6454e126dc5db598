# The two commands of the README's Quick start. Both set everything up on a fresh
# machine (Python 3.11+, Go and make are the only prerequisites).
# Python packages come from uv.lock only (uv sync --locked); uv itself is pinned here.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOWEST := .venv-lowest

.PHONY: demo test test-lowest e2e image lint typecheck unit bench bench-peers lock clean

demo: $(STAMP)
	@bash scripts/system-deps.sh
	@$(BIN)/policy-reconciler local-cluster build >/dev/null
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP) lint typecheck
	bash scripts/system-deps.sh
	$(BIN)/policy-reconciler local-cluster build
	$(BIN)/pytest

# The image from ./Dockerfile, built with podman (from a debootstrap-made base when no registry
# is reachable); prints its reference.
image: $(STAMP)
	bash scripts/system-deps.sh
	bash scripts/node-deps.sh
	bash scripts/build-image.sh

# The shipped artefacts for real: the image as the Helm chart's pod on a real node (root).
e2e: $(STAMP)
	bash scripts/system-deps.sh
	bash scripts/node-deps.sh
	$(BIN)/policy-reconciler local-cluster build
	$(BIN)/pytest -o addopts="-ra --strict-markers" --durations=0 tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/ruff format --check reconciler tests bench
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not cluster"

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.templates
	$(BIN)/python -m bench.heal --full 10

# Ours, Flux's apply engine (a Go driver, bench/peers/flux, built once) and kubectl SSA, each
# on a fresh local control plane; requests from the audit log. PEERS_ARGS="--sizes 10000 --runs 3"
bench-peers: $(STAMP)
	$(BIN)/python -m bench.peers $(PEERS_ARGS)

# The oldest versions pyproject.toml admits, proven by the unit tests (CI runs this too).
test-lowest: $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(UV) pip install --quiet --resolution lowest-direct -e . --group test
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider tests/unit

# Refresh uv.lock within pyproject.toml's ranges (a one-line change to review and commit).
lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --quiet --python $(PYTHON)
	@touch $@

clean:
	rm -rf $(VENV) $(LOWEST) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
