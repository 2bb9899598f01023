# Two commands: `make demo` and `make test`. Both set up what they need first, from the locks only.
#
# Settings (environment variables, all optional):
#   PYTHON                 the Python 3.11 interpreter the virtual environment is made with (python3.11 or python3)
#   MLOPS_VENV             where the virtual environment lives (.venv)
#   UV_CACHE_DIR           uv's download cache (.mlops/cache/uv, inside the clone)
#   MLOPS_TF_PLUGIN_DIR    a Terraform provider mirror holding registry.terraform.io/hashicorp/aws; when
#                          unset, `mlops` looks where Terraform looks (docs/local-aws.md)
#   PYTEST_ARGS            extra arguments for pytest (e.g. -m "not slow" -x)
#   PYTEST_WORKERS         parallel pytest workers (pytest-xdist, one test file per worker at a time; default 3:
#                          the slow tests mostly wait on Terraform and moto)
#
# Every dependency set installs from a lock (docs/dependencies.md); `make lock` upgrades them on purpose.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
MLOPS_VENV ?= .venv
VENV_BIN := $(MLOPS_VENV)/bin
STAMP := $(MLOPS_VENV)/.installed
UV_DIR := .ci/uv
UV := $(CURDIR)/$(UV_DIR)/bin/uv
export UV
export UV_CACHE_DIR ?= $(CURDIR)/.mlops/cache/uv
export UV_PROJECT_ENVIRONMENT := $(MLOPS_VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# Compile every module at install, as pip does: the first import then warns about nothing (some packages carry
# invalid escape sequences, an error under the tests' -W error) and starts faster.
export UV_COMPILE_BYTECODE := 1
# The machine's pip configuration may list extra indexes that do not exist; keep pip quiet about them.
export PIP_EXTRA_INDEX_URL :=
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAGEMAKER_SUPPRESS_V2_WARNING := 1
# A TF_CLI_CONFIG_FILE naming a file that does not exist makes every Terraform run print a warning box:
# such a setting means "none", so it is dropped (mlops writes its own CLI configuration when it needs one).
ifneq ($(TF_CLI_CONFIG_FILE),)
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif
endif
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 3
# Seconds since the epoch, with a fraction: the set-up figures each target prints.
NOW = date +%s.%N

.PHONY: help venv lock test demo lint pylint fmt-check hadolint checkov unit clean system-deps

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# uv itself, from its hashed lock, into the clone (pip is the one installer every Python brings).
$(UV): .ci/locks/uv.txt
	@rm -rf $(UV_DIR)
	@$(PYTHON) -m pip install --quiet --no-deps --require-hashes --root-user-action=ignore --target $(UV_DIR) \
	  -r .ci/locks/uv.txt 2> >(grep -v '^WARNING: Location' >&2)
	@touch $(UV)

$(STAMP): pyproject.toml uv.lock lambda/layer.txt $(UV)
	@started=$$($(NOW)); \
	$(UV) sync --locked --quiet --extra examples --extra dev --extra local --extra lint; \
	$(VENV_BIN)/python -m mlops.packaging; \
	touch $(STAMP); \
	awk -v s="$$started" -v e="$$($(NOW))" 'BEGIN {printf "venv: $(MLOPS_VENV) installed from uv.lock in %.1f s\n", e - s}'

venv: $(STAMP) ## Create the virtual environment from uv.lock (and the Lambda layer from lambda/layer.txt).
	@echo "venv: $(MLOPS_VENV) matches uv.lock"

lock: venv ## Resolve every dependency set again and rewrite the locks (an upgrade, on purpose).
	@MLOPS_VENV=$(MLOPS_VENV) bash .ci/lock.sh

system-deps: ## Install the Debian packages the tests use (buildah, rsync), when running as root with apt.
	@bash .ci/system-deps.sh

test: venv system-deps fmt-check pylint hadolint checkov ## Run every check and every test.
	@started=$$($(NOW)); status=0; \
	$(VENV_BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS) || status=$$?; \
	awk -v s="$$started" -v e="$$($(NOW))" 'BEGIN {printf "pytest: %.0f s with $(PYTEST_WORKERS) workers\n", e - s}'; \
	exit $$status

unit: venv ## Run the fast tests only.
	$(VENV_BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

demo: venv ## Run the whole story on the embedded local AWS and print a summary.
	$(VENV_BIN)/python -m mlops.demo

pylint: venv ## pylint on the project itself (must stay clean).
	$(VENV_BIN)/pylint --rcfile=.pylintrc --recursive=y mlops lambda tests bench examples

fmt-check: ## terraform fmt -check on every Terraform file.
	terraform fmt -check -recursive terraform

# The source here; a plan's JSON (`.ci/checkov.sh --plan FILE`) in pytest, by tests/terraform/test_data_guard.py.
checkov: $(UV) ## checkov on terraform/ (its own venv in .ci/checkov-venv, from .ci/locks/checkov.txt): no failed check.
	@bash .ci/checkov.sh

hadolint: venv ## hadolint on every Dockerfile.
	@find docker examples -name Dockerfile -print0 2>/dev/null | xargs -0 --no-run-if-empty $(VENV_BIN)/hadolint

clean: ## Remove the virtual environment and local state.
	rm -rf $(MLOPS_VENV) .mlops
