#!/usr/bin/env bash
# A throwaway PostgreSQL primary + streaming standby on 127.0.0.1, for read-replica tests.
#
#   scripts/pg_replica.sh start|stop|status
#
# Why a separate pair: the shared cluster on 5432 does not allow replication connections
# and must not be reconfigured or restarted, so this script builds its own two clusters
# under $LLAMA_MAPPER_PG_REPLICA_DIR (default ${TMPDIR:-/tmp}/llama-mapper-pg-replica):
# a primary on $LLAMA_MAPPER_PG_PRIMARY_PORT (5433) and a hot standby made with
# `pg_basebackup -R` on $LLAMA_MAPPER_PG_STANDBY_PORT (5434), both trust auth, loopback
# only, database `test`. `start` is safe to repeat; every command prints one line per server.

set -euo pipefail

BASE="${LLAMA_MAPPER_PG_REPLICA_DIR:-${TMPDIR:-/tmp}/llama-mapper-pg-replica}"
PRIMARY_PORT="${LLAMA_MAPPER_PG_PRIMARY_PORT:-5433}"
STANDBY_PORT="${LLAMA_MAPPER_PG_STANDBY_PORT:-5434}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"

as_pg() { # run a command as the postgres OS user (PostgreSQL refuses to run as root)
  if [[ "$(id -u)" == "0" ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { # datadir -> 0 when its postmaster is up
  [[ -f "$1/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

configure() { # datadir port: loopback only, own socket dir, replication allowed
  cat >>"$1/postgresql.auto.conf" <<EOF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BASE'
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
EOF
}

start() {
  if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
    echo "pg_replica: PostgreSQL server binaries not found (set PG_BIN)" >&2
    exit 1
  fi
  mkdir -p "$BASE"
  [[ "$(id -u)" == "0" ]] && chown postgres: "$BASE"
  if [[ ! -f "$BASE/primary/PG_VERSION" ]]; then
    as_pg "$PG_BIN/initdb" -D "$BASE/primary" -U postgres --auth=trust >"$BASE/initdb.log" 2>&1
    configure "$BASE/primary" "$PRIMARY_PORT"
    {
      echo "host replication all 127.0.0.1/32 trust"
      echo "host all all 127.0.0.1/32 trust"
    } >>"$BASE/primary/pg_hba.conf"
  fi
  if running "$BASE/primary"; then
    echo "primary: running (port $PRIMARY_PORT)"
  else
    as_pg "$PG_BIN/pg_ctl" -D "$BASE/primary" -l "$BASE/primary.log" -w start >/dev/null
    echo "primary: started (port $PRIMARY_PORT)"
  fi
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres test
  if [[ ! -f "$BASE/standby/PG_VERSION" ]]; then
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres \
      -D "$BASE/standby" -R -X stream -c fast >"$BASE/basebackup.log" 2>&1
    echo "port = $STANDBY_PORT" >>"$BASE/standby/postgresql.auto.conf"
  fi
  if running "$BASE/standby"; then
    echo "standby: running (port $STANDBY_PORT)"
  else
    as_pg "$PG_BIN/pg_ctl" -D "$BASE/standby" -l "$BASE/standby.log" -w start >/dev/null
    echo "standby: started (port $STANDBY_PORT)"
  fi
}

stop() {
  local name
  for name in standby primary; do
    if running "$BASE/$name"; then
      as_pg "$PG_BIN/pg_ctl" -D "$BASE/$name" -m fast -w stop >/dev/null
      echo "$name: stopped"
    else
      echo "$name: not running"
    fi
  done
}

status() {
  local name port
  for name in primary standby; do
    port=$PRIMARY_PORT
    [[ "$name" == standby ]] && port=$STANDBY_PORT
    if running "$BASE/$name"; then
      echo "$name: running (port $port)"
    else
      echo "$name: not running"
    fi
  done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
