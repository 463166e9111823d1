#!/usr/bin/env bash
# Installs the system packages the test suite needs (redis-server for tests that start their own
# Redis, Chromium for the browser test, nginx for the deploy/ nginx test, debootstrap for the Debian 13
# root of deploy/tests/node-lts) when they are missing.
# Needs root for apt-get.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "test-deps: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
