#!/usr/bin/env bash
# Runs every test file with node's test runner (Node 20 does not expand globs itself).
# Files run one at a time: each starts its own servers and Redis, and the machine has 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src protocol-tests sdk-compat deploy/tests -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=180000 "${files[@]}"
