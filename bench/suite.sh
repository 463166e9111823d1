#!/usr/bin/env bash
# Runs every scenario in paired mode (targets alternately, --rounds rounds, default 3) and keeps each
# scenario's full output in bench/results/suite-<stamp>/<name>.log; the Markdown tables printed at the
# end of each log are the ones in bench/RESULTS.md. About 30 minutes on the 2-core machine.
#   bash bench/suite.sh [rounds] [scenario-name ...]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
rounds="${1:-3}"
shift || true
# one ripple revision for the whole suite (override with RIPPLE_REV=<rev>), even if HEAD moves meanwhile
rev="$(git rev-parse --short "${RIPPLE_REV:-HEAD}^{commit}")"
out="bench/results/suite-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
run() {
  local name="$1"
  shift
  if [ "${#only[@]}" -gt 0 ] && [[ ! " ${only[*]} " == *" $name "* ]]; then return; fi
  echo "=== $name: node --import tsx bench/run.ts $* --paired --rounds $rounds --ripple-rev $rev" | tee -a "$out/summary.md"
  node --import tsx bench/run.ts "$@" --paired --rounds "$rounds" --ripple-rev "$rev" >"$out/$name.log" 2>&1
  # the Markdown table: everything after the last JSON summary line
  awk '/^\{"paired":true/{found=NR} {lines[NR]=$0} END{for(i=found+1;i<=NR;i++) print lines[i]}' "$out/$name.log" >>"$out/summary.md"
  echo >>"$out/summary.md"
}
only=("$@")
run fanout-1k fanout --subs 1000
run fanout-5k fanout --subs 5000
run cross-node cross-node --subs 1000
run memory memory --connections 5000
run rest rest
run client-events client-events
run presence presence
echo "done: $out/summary.md"
