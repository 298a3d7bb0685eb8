#!/usr/bin/env bash
# Install notebook_orch with its test dependencies in .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The store suite starts its own PostgreSQL server (initdb in a temporary folder): it needs the server binaries.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${NBO_PG_BIN:-}" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "test.sh: PostgreSQL server binaries missing and cannot apt-get them here; the PostgreSQL store tests" \
      "will be SKIPPED (install Debian's postgresql package or set NBO_PG_BIN)" >&2
  fi
fi
# The Mermaid export is checked by Mermaid's own parser (npm packages of tests/fixtures/mermaid, installed into a
# cache folder outside the repository): it needs node and npm.
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "test.sh: node/npm missing and cannot apt-get them here; the Mermaid parser tests will be SKIPPED" >&2
  fi
fi
# The browser tests (tests/browser) drive Debian's Chromium; install it only when missing.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "test.sh: /usr/bin/chromium missing and cannot apt-get it here; the browser tests will be SKIPPED" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[test]"
.venv/bin/ruff check .
.venv/bin/python tests/mermaid_check.py  # installs Mermaid's parser once (says so loudly when it cannot)
# Two workers: most of the suite waits on kernels, servers and subprocesses; a file's tests stay on one worker so
# module-scoped servers (JupyterLab, Dask, PostgreSQL) start once per file.
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"
