#!/usr/bin/env bash
# Makes sure redis-server is on PATH for the Redis-backed tests: installs it
# through apt on Debian/Ubuntu when running as root, else says what to do.
set -euo pipefail
if [ -n "${REDIS_URL:-}" ] || command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 && exit 0
fi
echo "redis-server is required by the tests: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set REDIS_URL" >&2
exit 1
