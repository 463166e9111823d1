#!/usr/bin/env bash
# Installs Soketi 1.6.1 into bench/soketi/node_modules (git-ignored), separate from the root package:
# Soketi is never a dependency of the root package.json.
#
# - Soketi's own uWebSockets.js dependency points at a GitHub tarball (uNetworking/uWebSockets.js#v20.10.0)
#   that cannot be fetched here and has no build for Node 20, so package.json's `overrides` maps it to
#   the npm-published @trufflesuite/uws-js-unofficial build (the same one ripple uses).
# - --ignore-scripts: no install script is needed. The native add-ons that have one (bufferutil,
#   utf-8-validate, msgpackr-extract) either ship prebuilt binaries or have a JS fallback, and the
#   aws-sdk postinstall only prints a notice. Newer npm versions skip them anyway (allowScripts).
# - `npm ci` installs exactly what package-lock.json pins; pass --no-ci to resolve afresh (npm install).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if [ "${1:-}" = "--no-ci" ] || [ ! -f package-lock.json ]; then
  [ "${1:-}" = "--no-ci" ] && shift
  npm install --ignore-scripts --no-audit --no-fund --loglevel=warn "$@"
else
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn "$@"
fi
node -e "const p=require('$here/node_modules/@soketi/soketi/package.json'); const u=require('$here/node_modules/uWebSockets.js/package.json'); console.log('installed', p.name, p.version, 'with uWebSockets.js =', u.name, u.version)"
# Check that it starts (loopback only, free ports, stopped by its PID).
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cport=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
mport=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
log="$(mktemp)"
SOKETI_PORT=$port SOKETI_HOST=127.0.0.1 SOKETI_DEFAULT_APP_ID=app-id SOKETI_DEFAULT_APP_KEY=app-key SOKETI_DEFAULT_APP_SECRET=app-secret \
  SOKETI_CLUSTER_HOST=127.0.0.1 SOKETI_CLUSTER_PORT=$cport SOKETI_CLUSTER_UNICAST_ADDRESSES='["127.0.0.1"]' SOKETI_METRICS_SERVER_PORT=$mport \
  SOKETI_SHUTDOWN_GRACE_PERIOD=100 "$here/node_modules/.bin/soketi" start >"$log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 100); do
  if node -e "fetch('http://127.0.0.1:$port/ready').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))" 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ "$ok" = 1 ]; then
  echo "soketi start: OK (answered /ready on 127.0.0.1:$port)"
  rm -f "$log"
else
  echo "soketi start: FAILED; its output:" >&2
  cat "$log" >&2
  exit 1
fi
