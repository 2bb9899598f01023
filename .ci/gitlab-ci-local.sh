#!/usr/bin/env bash
# Install Node 22 and gitlab-ci-local into .ci/node (inside this clone, once) and run gitlab-ci-local.
#
#   .ci/gitlab-ci-local.sh --install-only        install if missing, print the binary's path
#   .ci/gitlab-ci-local.sh [gitlab-ci-local args] run it with the Node 22 it was installed with
#
# The machine's node may be older than gitlab-ci-local needs; the npm package `node` ships a Node 22
# binary, so nothing outside the clone changes. The versions are those of .ci/node/package-lock.json,
# installed with `npm ci`; `make lock` upgrades them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="$here/node"
bin="$prefix/node_modules/.bin"
lock_hash="$(sha256sum "$prefix/package-lock.json" | cut -c1-16)"
stamp="$prefix/node_modules/.mlops-installed-$lock_hash"

if [ ! -f "$stamp" ]; then
  command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to install gitlab-ci-local (apt-get install npm)" >&2; exit 2; }
  npm ci --prefix "$prefix" --no-audit --no-fund --loglevel=error >&2
  touch "$stamp"
fi

if [ "${1:-}" = "--install-only" ]; then
  echo "$bin/gitlab-ci-local"
  exit 0
fi
# gitlab-ci-local's shebang is `/usr/bin/env node`: put the pinned Node first on PATH.
export PATH="$bin:$PATH"
exec "$bin/gitlab-ci-local" "$@"
