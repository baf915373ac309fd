#!/usr/bin/env bash
# Makes sure redis-server (unless REDIS_URL is set) and redis-sentinel are on
# PATH for the Redis-backed tests: installs what is missing through apt on
# Debian/Ubuntu when running as root, else says what to do. Outside CI a
# missing redis-sentinel only warns (the Sentinel tests fall back to
# redis-server --sentinel, or skip); with CI=true it fails, so CI cannot pass
# by skipping them.
set -euo pipefail
missing=()
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if ! command -v redis-sentinel >/dev/null 2>&1; then
  missing+=(redis-sentinel)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "${missing[*]} not found: installing with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
status=0
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is required by the tests: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set REDIS_URL" >&2
  status=1
fi
if ! command -v redis-sentinel >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "redis-sentinel is required on CI (CI=true): install it (Debian/Ubuntu: sudo apt-get install redis-sentinel; macOS: brew install redis)" >&2
    status=1
  else
    echo "warning: redis-sentinel not found (Debian/Ubuntu: sudo apt-get install redis-sentinel); the Sentinel tests use redis-server --sentinel instead, or skip" >&2
  fi
fi
exit $status
