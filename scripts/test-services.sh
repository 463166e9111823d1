#!/usr/bin/env bash
# Starts the databases the app-store tests use when they are not answering: PostgreSQL on
# 127.0.0.1:5432 (trust) and MariaDB on 127.0.0.1:3306 (root without a password), as the machine
# starts them before a session. Waits until both answer; fails if one does not.
set -euo pipefail

wait_for() { # what, check command...
  local what=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "test-services: $what does not answer" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432

if ! mariadb-admin -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; then
  echo "test-services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for MariaDB mariadb-admin -h 127.0.0.1 -P 3306 -uroot ping
