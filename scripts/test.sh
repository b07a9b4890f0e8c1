#!/usr/bin/env bash
# Install everything into .venv and run every check: lint, format, strict types, the test suite.
# This is the README's test command and what CI runs (.ci/run). Any failure exits non-zero,
# and so does a pytest run that collects no tests (pytest exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Redis cache store is tested against a real redis-server, which the tests start themselves.
if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
    else
        echo "scripts/test.sh: redis-server is missing; install it (apt-get install -y redis-server)" >&2
        exit 1
    fi
fi

# The MCP interop tests run clients nobody here wrote (the Inspector, the conformance suite) on
# the Node 22 they need, all pinned by tests/mcp_server/interop/package-lock.json. npm is only the
# installer; any npm >= 7 will do.
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
    else
        echo "scripts/test.sh: npm is missing; install it (apt-get install -y npm)" >&2
        exit 1
    fi
fi
# Not `npm ci`: it refuses this lockfile because vite (an Inspector dependency) names an optional
# package the registry does not have. `npm install --no-save` installs exactly the locked
# versions and leaves the lockfile alone. Skipped while the installed tree matches the lockfile.
interop=tests/mcp_server/interop
if ! cmp -s "$interop/package-lock.json" "$interop/node_modules/.installed-lock.json"; then
    npm install --prefix "$interop" --no-save --no-audit --no-fund --loglevel=error
    cp "$interop/package-lock.json" "$interop/node_modules/.installed-lock.json"
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,redis,anthropic]"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# A hung test must not hold CI for its whole budget: stop pytest (printing where it was) at 40 min.
timeout --signal=INT --kill-after=60 2400 .venv/bin/python -m pytest "$@"
