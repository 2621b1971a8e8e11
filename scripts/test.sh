#!/usr/bin/env bash
# Set up everything and run the whole test suite (ruff + pytest), PostgreSQL included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# A PostgreSQL server for the storage tests: the one on 127.0.0.1:5432 if it answers, else the local
# Debian cluster (started if needed) through its socket with a superuser role for this user.
if [ -z "${GENEMILL_TEST_POSTGRES_URL:-}" ]; then
  if psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1" >/dev/null 2>&1; then
    export GENEMILL_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
  else
    if command -v pg_lsclusters >/dev/null && ! pg_lsclusters -h | grep -q online; then
      ver=$(ls /etc/postgresql | sort -V | tail -1)
      ${SUDO:-$( [ "$(id -u)" -ne 0 ] && echo sudo )} pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    fi
    me=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then runas=(su postgres -c); else runas=(sudo -u postgres sh -c); fi
    "${runas[@]}" "psql -tAc \"select 1 from pg_roles where rolname='$me'\" | grep -q 1 || createuser -s $me" || true
    export GENEMILL_TEST_POSTGRES_URL="postgresql://$me@/postgres?host=/var/run/postgresql"
  fi
fi
echo "==> PostgreSQL for tests: $GENEMILL_TEST_POSTGRES_URL"

.venv/bin/ruff check src tests bench
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "no tests collected"; exit 1; fi
exit "$status"
