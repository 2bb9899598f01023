#!/usr/bin/env bash
# Install Node 22 and gitlab-ci-local into .ci/node (inside this clone, once) and run gitlab-ci-local.
#
#   .ci/gitlab-ci-local.sh --install-only        install if missing, print the binary's path
#   .ci/gitlab-ci-local.sh [gitlab-ci-local args] run it with the Node 22 it was installed with
#
# The machine's node may be older than gitlab-ci-local needs; the npm package `node` ships a Node 22
# binary, so nothing outside the clone changes. Versions are pinned; bump them here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${MLOPS_GCL_PREFIX:-$here/node}"
node_version="22.23.3"
gcl_version="4.75.1"
bin="$prefix/node_modules/.bin"
stamp="$prefix/node_modules/.mlops-installed-$node_version-$gcl_version"

if [ ! -f "$stamp" ]; then
  command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to install gitlab-ci-local (apt-get install npm)" >&2; exit 2; }
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "node@$node_version" "gitlab-ci-local@$gcl_version" >&2
  touch "$stamp"
fi

if [ "${1:-}" = "--install-only" ]; then
  echo "$bin/gitlab-ci-local"
  exit 0
fi
# gitlab-ci-local's shebang is `/usr/bin/env node`: put the pinned Node first on PATH.
export PATH="$bin:$PATH"
exec "$bin/gitlab-ci-local" "$@"
