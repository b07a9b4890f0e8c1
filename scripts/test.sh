#!/usr/bin/env bash
# Install everything into .venv and run every check: lint, format, strict types, the test suite.
# This is the README's test command and what CI runs (.ci/run). Any failure exits non-zero,
# and so does a pytest run that collects no tests (pytest exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,redis,anthropic]"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
