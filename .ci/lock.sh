#!/usr/bin/env bash
# `make lock`: resolve every dependency set again, on purpose, and rewrite its lock. Nothing else upgrades:
# `make venv`, `make test`, the checkov environment, the Lambda layer and gitlab-ci-local install only from
# these locks. docs/dependencies.md lists them and says how to review an upgrade.
#
#   uv.lock                          the project with its extras (uv lock --upgrade)
#   lambda/layer.txt                 the Lambda layer, for the Lambda platform, at uv.lock's versions
#   .ci/locks/uv.txt                 uv itself (installed by make with pip --require-hashes)
#   .ci/locks/checkov.txt            checkov's own environment
#   .ci/node/package-lock.json       Node 22, gitlab-ci-local and the IAM simulator of tests/iam
#   terraform/**/.terraform.lock.hcl the hashicorp/aws provider, for every configuration Terraform inits
#
# Settings: UV (the uv binary; make passes its own), LOCK_ONLY (space-separated subset of
# "uv python layer checkov node terraform"), MLOPS_TF_PLUGIN_DIR (a provider mirror to lock from; by default
# the one `mlops` finds, else the registry), MLOPS_VENV (the project's environment, for that look-up).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv="${UV:-uv}"
only="${LOCK_ONLY:-uv python layer checkov node terraform}"
want() { [[ " $only " == *" $1 "* ]]; }
compile() { "$uv" pip compile --quiet --generate-hashes --custom-compile-command "make lock" "$@"; }

if want uv; then
  compile --universal --upgrade .ci/locks/uv.in -o .ci/locks/uv.txt
fi
if want python; then
  "$uv" lock --upgrade
fi
if want layer; then
  # The layer takes the versions the tests ran with: uv.lock's, as constraints.
  constraints="$(mktemp)"
  trap 'rm -f "$constraints"' EXIT
  "$uv" export --frozen --quiet --all-extras --no-hashes --no-emit-project --format requirements-txt -o "$constraints"
  # --no-annotate: the annotations would name the temporary constraints file, a path of this machine.
  compile --python-platform x86_64-manylinux2014 --python-version 3.11 --only-binary :all: --no-annotate \
    --constraints "$constraints" lambda/layer.in -o lambda/layer.txt
fi
if want checkov; then
  compile --universal --python-version 3.11 --upgrade .ci/locks/checkov.in -o .ci/locks/checkov.txt
fi
if want node; then
  npm install --prefix .ci/node --package-lock-only --save-exact --no-audit --no-fund --loglevel=error \
    node@22 gitlab-ci-local@latest @cloud-copilot/iam-simulate@latest
fi
if want terraform; then
  # The provider from where `mlops` finds it (MLOPS_TF_PLUGIN_DIR, else where Terraform looks), else the registry.
  mirror="${MLOPS_TF_PLUGIN_DIR:-$("${MLOPS_VENV:-.venv}/bin/python" -c \
    'from mlops.terraform import find_aws_provider; print(find_aws_provider() or "")' 2>/dev/null || true)}"
  # Offline, only the mirror's own platform can be hashed; with the registry, the common ones.
  if [ -n "$mirror" ]; then from=(-fs-mirror="$mirror" -platform=linux_amd64)
  else from=(-platform=linux_amd64 -platform=linux_arm64 -platform=darwin_arm64); fi
  work="$(mktemp -d)"
  for dir in terraform terraform/modules/*/; do
    dir="${dir%/}"
    grep -qs 'hashicorp/aws' "$dir/versions.tf" || continue
    # `providers lock` needs the configuration's modules; a data folder outside the checkout holds them.
    export TF_DATA_DIR="$work/${dir//\//-}"
    terraform -chdir="$dir" get >/dev/null
    terraform -chdir="$dir" providers lock "${from[@]}" >/dev/null
    echo "locked $dir/.terraform.lock.hcl"
  done
  rm -rf "$work"
fi
