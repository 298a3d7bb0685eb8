#!/usr/bin/env bash
# Rebuild the lineage widget's front-end bundle (cytoscape.js + our render code) from npm with esbuild.
# The bundle is committed (notebook_orch/widgets/static/lineage.js), so users and CI need no node and no CDN;
# run this only after changing notebook_orch/widgets/js/lineage.js or to move to newer pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
CYTOSCAPE_VERSION=3.33.4
ESBUILD_VERSION=0.25.9
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cp notebook_orch/widgets/js/lineage.js "$build/lineage.js"
(
  cd "$build"
  npm init -y >/dev/null
  npm install --silent --no-audit --no-fund "cytoscape@$CYTOSCAPE_VERSION" "esbuild@$ESBUILD_VERSION"
  npx esbuild lineage.js --bundle --format=esm --minify --target=es2020 \
    --legal-comments=eof --outfile=out.js
)
mkdir -p notebook_orch/widgets/static
cp "$build/out.js" notebook_orch/widgets/static/lineage.js
echo "wrote notebook_orch/widgets/static/lineage.js ($(wc -c < notebook_orch/widgets/static/lineage.js) bytes)"
