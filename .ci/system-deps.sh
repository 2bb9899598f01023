#!/usr/bin/env bash
# Debian packages the tests need. Installed only when missing, and only where apt can run (root).
set -euo pipefail
need=()
for pkg in buildah rsync; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${need[*]} missing and cannot be installed here (not root or no apt); tests that need them will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
echo "system-deps: installing ${need[*]} (Debian packages)" >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2> >(grep -v '^debconf: ' >&2)
