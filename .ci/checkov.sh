#!/usr/bin/env bash
# checkov on terraform/ in a virtual environment of its own: checkov pins an old boto3 that the project's
# environment must not get. The venv lives in .ci/checkov-venv (git-ignored).
# `.ci/checkov.sh` checks the source; `.ci/checkov.sh --plan FILE` checks a plan as `terraform show -json` prints
# it (tests/terraform/test_data_guard.py passes the plan `mlops infra apply` made), mapped back to terraform/ so
# that the source's `checkov:skip` comments, each with its reason, count for the plan's resources too.
# The venv is installed from .ci/locks/checkov.txt (hashes required) with uv, and made again when the lock
# changes; `make lock` upgrades it. Settings: PYTHON (interpreter for the venv), UV (the uv binary; make
# passes its own).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/checkov-venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
uv="${UV:-uv}"
lock="$here/locks/checkov.txt"
stamp="$venv/.installed-$(sha256sum "$lock" | cut -c1-16)"

if [[ ! -f "$stamp" ]]; then
  echo "checkov: installing $venv from ${lock#"$root"/}" >&2
  rm -rf "$venv"
  "$uv" venv --quiet --python "$python" "$venv"
  "$uv" pip sync --quiet --require-hashes --python "$venv/bin/python" "$lock"
  touch "$stamp"
fi

# Offline: no Bridgecrew platform, no guideline download (BC_SKIP_MAPPING quiets its traceback).
# checkov gives up parsing a file after 10 s and reports it as a "parsing error" without failing; on a busy
# machine that happens, so wait longer, and fail on any parsing error (an unparsed file is an unchecked one).
# LOG_LEVEL=ERROR: checkov warns that it cannot name a for_each key built from yamldecode (harmless).
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false HCL_PARSE_TIMEOUT_SEC=120 LOG_LEVEL=ERROR
if [[ "${1:-}" == "--plan" ]]; then
  [[ -f "${2:-}" ]] || { echo "checkov: --plan needs a plan file (terraform show -json)" >&2; exit 2; }
  target=(--file "$2" --framework terraform_plan --repo-root-for-plan-enrichment "$root/terraform")
  shift 2
else
  target=(--directory "$root/terraform" --framework terraform)
fi
status=0
report="$("$venv/bin/checkov" "${target[@]}" --quiet --compact \
  --skip-download --download-external-modules false "$@")" || status=$?
echo "$report"
if grep -Eq 'Parsing errors: [1-9]' <<<"$report"; then
  echo "checkov: some files could not be parsed (see above)" >&2
  exit 1
fi
exit "$status"
