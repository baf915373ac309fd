#!/usr/bin/env bash
# Lints an OpenAPI document with Redocly CLI and Spectral (spectral:oas),
# the versions pinned in this directory's package-lock.json. Installs them
# into .ci/openapi/node_modules with `npm ci` when missing or stale, and
# Node.js and npm through apt when they are missing and we run as root on
# Debian/Ubuntu (as CI does). Any error or warning fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
doc="${1:?usage: lint.sh OPENAPI.json}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "node/npm not found: installing nodejs and npm with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "Node.js >= 18.18 and npm are required to lint the OpenAPI document (Debian/Ubuntu: sudo apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>18||(a==18&&b>=18)?0:1)'; then
  echo "Node.js >= 18.18 is required to lint the OpenAPI document (found $(node --version))" >&2
  exit 1
fi

# npm ci writes node_modules/.package-lock.json: reinstall when the
# committed lock is newer (a version bump) or the install is missing.
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
  echo "installing the OpenAPI linters (npm ci in .ci/openapi)" >&2
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
"$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --format=stylish "$doc"
"$here/node_modules/.bin/spectral" lint --ruleset "$here/.spectral.yaml" --fail-severity=warn --display-only-failures "$doc"
