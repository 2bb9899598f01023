# Two commands: `make demo` and `make test`. Both set up what they need first.
#
# Settings (environment variables, all optional):
#   PYTHON                 the Python 3.11 interpreter used to make the virtual environment (python3.11 or python3)
#   MLOPS_VENV             where the virtual environment lives (.venv)
#   MLOPS_TF_PLUGIN_DIR    a Terraform provider mirror holding registry.terraform.io/hashicorp/aws;
#                          when unset, `make` looks for one on this machine and otherwise lets
#                          Terraform download providers as usual.
#   PYTEST_ARGS            extra arguments for pytest (e.g. -m "not slow" -x)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
MLOPS_VENV ?= .venv
VENV_BIN := $(MLOPS_VENV)/bin
STAMP := $(MLOPS_VENV)/.installed
MLOPS_TF_PLUGIN_DIR ?= $(shell find / -maxdepth 6 -type d -path '*/registry.terraform.io/hashicorp/aws' -not -path '/proc/*' 2>/dev/null | head -n 1 | sed 's#/registry.terraform.io/hashicorp/aws$$##')
export MLOPS_TF_PLUGIN_DIR
# The machine's pip configuration may list extra indexes that do not exist; keep pip quiet about them.
export PIP_EXTRA_INDEX_URL :=
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAGEMAKER_SUPPRESS_V2_WARNING := 1
PYTEST_ARGS ?=

.PHONY: help venv test demo lint pylint fmt-check hadolint checkov unit clean system-deps

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x "$(VENV_BIN)/python" || $(PYTHON) -m venv $(MLOPS_VENV)
	@$(VENV_BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(VENV_BIN)/python -m pip install --quiet -e '.[examples,dev]' 2> >(grep -v '^WARNING: Location' >&2)
	@$(VENV_BIN)/python -m mlops.packaging
	@touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment and install the project with its extras.

system-deps: ## Install the Debian packages the tests use (buildah), when running as root with apt.
	@bash .ci/system-deps.sh

test: venv system-deps fmt-check pylint hadolint checkov ## Run every check and every test.
	$(VENV_BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv ## Run the fast tests only.
	$(VENV_BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

demo: venv ## Run the whole story on the embedded local AWS and print a summary.
	$(VENV_BIN)/python -m mlops.demo

pylint: venv ## pylint on the project itself (must stay clean).
	$(VENV_BIN)/pylint --rcfile=.pylintrc --recursive=y mlops lambda tests bench examples

fmt-check: ## terraform fmt -check on every Terraform file.
	terraform fmt -check -recursive terraform

checkov: ## checkov on terraform/ (its own venv in .ci/checkov-venv): no failed check.
	@bash .ci/checkov.sh

hadolint: venv ## hadolint on every Dockerfile.
	@find docker examples -name Dockerfile -print0 2>/dev/null | xargs -0 --no-run-if-empty $(VENV_BIN)/hadolint

clean: ## Remove the virtual environment and local state.
	rm -rf $(MLOPS_VENV) .mlops
