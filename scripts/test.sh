#!/usr/bin/env bash
# Install notebook_orch with its test dependencies in .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[test]"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
