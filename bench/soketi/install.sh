#!/usr/bin/env bash
# Installs Soketi 1.6.1 into bench/soketi/node_modules (git-ignored), separate from the root package.
# Soketi's own uWebSockets.js dependency points at a GitHub tarball that cannot be fetched here, so
# package.json's `overrides` maps it to the npm-published @trufflesuite/uws-js-unofficial build
# (the same one the server uses).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
npm install --prefix bench/soketi --no-audit --no-fund --loglevel=warn "$@"
node -e "const p=require('$here/node_modules/@soketi/soketi/package.json'); console.log('installed', p.name, p.version)"
