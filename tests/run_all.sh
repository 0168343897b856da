#!/usr/bin/env bash
# The whole test suite, from nothing: installs the Python deps, Debian's PostgreSQL, Redis, Chromium and
# nginx (when run as root with apt), starts a throwaway PostgreSQL and Redis on 127.0.0.1, and runs pytest
# so that every DB test runs on both SQLite and PostgreSQL and the job queue on both its storages.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  if ! command -v /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v chromium >/dev/null \
     || ! command -v redis-server >/dev/null || ! command -v /usr/sbin/nginx >/dev/null; then
    apt-get update -qq
    # The tests start their own PostgreSQL, Redis and nginx: keep apt from starting the system services.
    NO_START=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && NO_START=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium redis-server nginx >/dev/null
    if [ -n "$NO_START" ]; then rm -f /usr/sbin/policy-rc.d; fi
  fi
fi
$PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e '.[dev,metrics,demo,postgres,production,parquet]'
# reference implementations the metrics tests compare with (they import torchvision, see hype/metrics/reference.py)
$PY -m pip install -q --no-deps pytorch-fid==0.3.0 prdc==0.2 torch-fidelity==0.4.0

PGDIR="" REDISDIR="" RUNAS=()
cleanup() {
  if [ -n "$PGDIR" ]; then "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"; fi
  if [ -n "$REDISDIR" ]; then kill "$(cat "$REDISDIR/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$REDISDIR"; fi
}
trap cleanup EXIT

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -n "${PGBIN}" ] && [ -z "${HYPE_TEST_POSTGRES_URL:-}" ]; then
  PGDIR=$(mktemp -d /tmp/hype-pg.XXXXXX)
  PGPORT=${HYPE_TEST_PGPORT:-54329}
  if [ "$(id -u)" = "0" ]; then chown postgres "$PGDIR"; RUNAS=(runuser -u postgres --); fi
  "${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U hype -A trust >/dev/null
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-h 127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c max_connections=300" start >/dev/null
  export HYPE_TEST_POSTGRES_URL="postgresql+psycopg://hype@127.0.0.1:$PGPORT/postgres"
fi
if command -v redis-server >/dev/null && [ -z "${HYPE_TEST_REDIS_URL:-}" ]; then
  REDISDIR=$(mktemp -d /tmp/hype-redis.XXXXXX)
  REDISPORT=${HYPE_TEST_REDISPORT:-56379}
  redis-server --bind 127.0.0.1 --port "$REDISPORT" --dir "$REDISDIR" --save '' --appendonly no \
    --daemonize yes --pidfile "$REDISDIR/redis.pid" --logfile "$REDISDIR/redis.log"
  for _ in $(seq 50); do [ -s "$REDISDIR/redis.pid" ] && break; sleep 0.1; done
  export HYPE_TEST_REDIS_URL="redis://127.0.0.1:$REDISPORT/0"
fi
if [ "${CI:-}" = "true" ]; then export HYPE_TEST_REQUIRE_POSTGRES=1 HYPE_TEST_REQUIRE_REDIS=1; fi

# Two pytest runs. First every test that does not time itself, on two processes (pytest-xdist): while
# one waits for a database, a browser or a server it started, the other computes. Then the tests marked
# `serial` alone (they measure frame timing, latency or wall time, which a neighbour's load would spoil;
# `grep -rn mark.serial tests` lists them). Each run lists its 25 slowest tests, so a CI log shows where
# the 30-minute budget goes. A run that selects nothing (arguments naming only one kind) is no failure.
status=0 ran=0
run_pytest() {
  local rc=0
  $PY -m pytest -q --durations=25 "$@" || rc=$?
  if [ "$rc" != 5 ]; then ran=1; if [ "$rc" != 0 ]; then status=$rc; fi; fi
}
# One thread of torch / BLAS per process in the parallel run: two processes with two threads each on two
# cores leave torch's parallel regions waiting for a descheduled thread (the metrics tests took several
# times as long); the serial run keeps the default.
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 run_pytest -n 2 -m "not serial" "$@"
run_pytest -m serial "$@"
if [ "$ran" = 0 ]; then echo "no test selected" >&2; exit 5; fi
exit "$status"
