# fieldbill - every target installs what it needs into .venv (and .venv-sam for the SAM CLI).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMVENV := .venv-sam
export PYTHONPATH := $(CURDIR)/layers/shared/python:$(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help venv sam-venv demo serve reset token test test-unit test-integration test-e2e fuzz lint format build bench lock openapi clean node-deps

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv==0.13.8

$(VENV)/.installed: requirements/dev.txt $(BIN)/python
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned dependencies

$(SAMVENV)/.installed:
	$(PY) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8
	$(SAMVENV)/bin/uv pip install -q --python $(SAMVENV)/bin/python aws-sam-cli==1.170.0
	touch $@

sam-venv: $(SAMVENV)/.installed ## install the SAM CLI into its own venv (its pins clash with ours)

lock: $(BIN)/python ## re-export requirements from pyproject.toml (dev and the layer's runtime set)
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.txt
	$(BIN)/uv pip compile -q pyproject.toml --python-version 3.11 --no-header -o layers/shared/python/requirements.txt

demo: venv ## run a whole billing run on the embedded local stack and print the invoices
	$(BIN)/python -m local demo

serve: venv ## keep the local HTTP API and the QuickBooks emulator running; data kept in .local/state
	$(BIN)/python -m local serve

reset: venv ## delete the data `make serve` keeps (.local/state): the next serve starts empty
	$(BIN)/python -m local reset

token: venv ## mint a local JWT for a tenant: make token TENANT=acme
	@$(BIN)/python -m local token --tenant $${TENANT:-demo}

test: venv lint test-unit test-integration test-e2e fuzz build ## all tests and checks (build: the SAM package is right)

test-unit: venv ## pure domain tests
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

test-integration: venv node-deps ## adapters against moto and the QuickBooks emulator
	$(BIN)/pytest -q -p no:cacheprovider -n 2 tests/integration tests/emulator

test-e2e: venv ## the whole local stack over HTTP
	$(BIN)/pytest -q -p no:cacheprovider -n 2 -m "not solo" tests/e2e
	$(BIN)/pytest -q -p no:cacheprovider -m solo tests/e2e

fuzz: venv ## schemathesis against the served OpenAPI (fixed seed, 150 s budget): 0 server errors, 0 schema failures
	$(BIN)/python -m local.fuzz --seconds $${FUZZ_SECONDS:-150} --seed $${FUZZ_SEED:-20261202}

# issue 15: node-quickbooks, the emulator suite's second client. Node and npm from the Debian package
# when missing (sudo when not root), then exactly the locked package (npm ci).
NODE_DIR := tests/emulator/node
node-deps: $(NODE_DIR)/node_modules/.installed ## node, npm and node-quickbooks for the emulator suite
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends nodejs npm; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund
	touch $@

lint: venv sam-venv ## ruff, mypy, cfn-lint, statelint, sam validate --lint, requirements in sync
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(BIN)/statelint --ignore=URI statemachines/*.asl.json
	$(SAMVENV)/bin/sam validate --lint --template template.yaml
	$(BIN)/python -m local.check_requirements

format: venv ## apply the formatters
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

build: sam-venv ## sam build (offline), then ship compiled bytecode for faster cold starts
	@# sam needs a python3.11 executable on PATH (the runtime's version): the one that made .venv.
	PATH="$$($(PY) -c 'import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))'):$$PATH" \
		$(SAMVENV)/bin/sam build --template template.yaml
	$(BIN)/python -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build
	@# Lambda puts a layer's python/ on sys.path: the package must sit right under it.
	test -f .aws-sam/build/SharedLayer/python/fieldbill/__init__.py
	test -f .aws-sam/build/SharedLayer/python/fieldbill/__pycache__/__init__.cpython-311.pyc

bench: venv ## handler import times, compile/generate/sync throughput; writes .bench/results.json
	$(BIN)/python -m local.bench

openapi: venv ## regenerate docs/openapi.json from the code
	$(BIN)/python -m local openapi > docs/openapi.json

clean: ## remove build output and local state
	rm -rf .aws-sam .local .bench .pytest_cache .mypy_cache .ruff_cache
