#!/usr/bin/env bash
# A local multi-process Ray cluster for hdc-ray: the same `hdc-ray sweep SPEC --address HOST:PORT` and
# `ray job submit` workflow as a cloud cluster, on one machine. See clusters/local.md for the walk-through.
#
#   clusters/local-cluster.sh start [--cpus N] [--gpus N] [--driver-slots N] [--port P] [--dashboard-port P]
#                                   [--client-port P] [--agent-port P] [--auth token]
#                                   [--lan IP|auto --workers N --worker-cpus N]
#   clusters/local-cluster.sh status
#   clusters/local-cluster.sh sweep  SPEC [sweep flags...]   # runs the sweep here, driver connects with --address
#   clusters/local-cluster.sh submit SPEC [sweep flags...]   # runs the sweep as a Ray job (ray job submit)
#   clusters/local-cluster.sh env                            # exports for your own ray / hdc-ray commands
#   clusters/local-cluster.sh stop
#
# Default (loopback) mode: one head process group on 127.0.0.1 only. Every Ray port (GCS, raylet, object
# manager, dashboard + job server, client server, metrics) binds to 127.0.0.1; nothing is reachable from
# another machine. Ray on Linux rewrites loopback addresses to the machine's network address unless
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is set in every process that starts or joins the cluster (this script
# sets it; `env` prints it for your shell). That same switch refuses extra worker nodes, so loopback mode is a
# single Ray node: give it the CPUs (and GPUs) you want to use.
#
# --lan mode: several Ray nodes (the head plus --workers N worker processes on this machine; more machines can
# join with the printed command). The nodes advertise the given private address, the Ray client server binds
# to it, and Ray's cluster-internal ports (GCS, raylets, object manager, metrics) listen on all interfaces, as
# in any multi-node Ray cluster: use it only on a machine without a public interface or behind a firewall.
# The dashboard and job server still listen on 127.0.0.1 only (use an SSH tunnel from other machines).
#
# `stop` ends only the processes this script started: each node is started in its own session (setsid), the
# session ids are recorded under the state directory, and `stop` signals exactly those sessions. It never runs
# `ray stop`, which would kill every Ray process on the machine (other users' clusters, test clusters).
#
# Linux (bash, util-linux setsid, procps ps). Environment: HDC_RAY_LOCAL_DIR (state, logs and Ray's temp dir;
# default /tmp/hdc-ray-local; keep it short, Ray's socket paths must fit in 107 characters), RAY (the ray
# executable), HDC_RAY (the hdc-ray command).
set -euo pipefail

STATE_DIR="${HDC_RAY_LOCAL_DIR:-/tmp/hdc-ray-local}"
STATE_FILE="$STATE_DIR/cluster.env"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAY_BIN="${RAY:-ray}"

die() { echo "local-cluster: $*" >&2; exit 1; }
say() { echo "local-cluster: $*"; }

hdc_cmd() {
  # The hdc-ray console script if installed, else the module (a source checkout on PYTHONPATH).
  if [[ -n "${HDC_RAY:-}" ]]; then echo "$HDC_RAY"
  elif command -v hdc-ray >/dev/null 2>&1; then echo "hdc-ray"
  else echo "python -m hdc_ray.cli"; fi
}

load_state() {
  [[ -f "$STATE_FILE" ]] || die "no cluster recorded in $STATE_DIR (run: $0 start)"
  # shellcheck disable=SC1090
  source "$STATE_FILE"
  export RAY_AUTH_MODE="$AUTH_MODE"
  if [[ "$AUTH_MODE" == "token" ]]; then export RAY_AUTH_TOKEN_PATH="$STATE_DIR/auth_token"; fi
  if [[ "$MODE" == "loopback" ]]; then export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0; fi
  export RAY_USAGE_STATS_ENABLED=0
}

session_pids() {  # live (non-zombie) processes of one session id
  ps -e -o pid= -o sid= -o stat= | awk -v s="$1" '$2 == s && $3 !~ /^Z/ {print $1}'
}

alive_sessions() {
  local sid n=0
  for sid in $SESSIONS; do
    if [[ -n "$(session_pids "$sid")" ]]; then n=$((n + 1)); fi
  done
  echo "$n"
}

start_node() {  # start_node NAME ray-start-args... ; records the node's session id
  local name="$1"; shift
  local sidfile="$STATE_DIR/$name.sid" log="$STATE_DIR/$name.log"
  rm -f "$sidfile"
  # setsid --wait: the new session's leader is `ray start` itself ($$ before exec); Ray's daemons inherit
  # the session, `ray start` exits once they are up, and we wait for that.
  if ! setsid --wait bash -c 'echo $$ > "$0"; exec "$@"' "$sidfile" "$RAY_BIN" start "$@" >"$log" 2>&1; then
    cat "$log" >&2
    if [[ -f "$sidfile" ]]; then SESSIONS="$SESSIONS $(cat "$sidfile")"; fi
    write_state  # so that `stop` can end whatever did start
    die "ray start failed for $name (log: $log; clean up with: $0 stop)"
  fi
  SESSIONS="$SESSIONS $(cat "$sidfile")"
}

wait_for_port() {  # wait_for_port HOST PORT WHAT: until something accepts TCP connections there
  local i
  for i in $(seq 1 90); do
    if python - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
PY
    then return 0; fi
    sleep 1
  done
  die "$3 did not come up on $1:$2 within 90 s (logs: $STATE_DIR/ray/session_latest/logs)"
}

wait_for_dashboard() {
  local url="http://127.0.0.1:$1/api/version" i
  for i in $(seq 1 60); do
    if python - "$url" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).read()
except urllib.error.HTTPError:
    pass  # it answered (401 when token authentication is on)
PY
    then return 0; fi
    sleep 1
  done
  die "the job server did not answer at $url within 60 s (logs: $STATE_DIR/ray/session_latest/logs)"
}

write_state() {
  {
    echo "MODE=$MODE"
    echo "HEAD_IP=$HEAD_IP"
    echo "PORT=$PORT"
    echo "DASHBOARD_PORT=$DASHBOARD_PORT"
    echo "CLIENT_PORT=$CLIENT_PORT"
    echo "AGENT_PORT=$AGENT_PORT"
    echo "AUTH_MODE=$AUTH_MODE"
    echo "SESSIONS=\"${SESSIONS# }\""
  } >"$STATE_FILE"
}

cmd_start() {
  local cpus driver_slots=4 workers=0 worker_cpus=2 lan="" auth="disabled" gpus=""
  cpus="$(nproc 2>/dev/null || echo 2)"
  PORT=6379; DASHBOARD_PORT=8265; CLIENT_PORT=10001; AGENT_PORT=52365
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --cpus) cpus="$2"; shift 2 ;;
      --gpus) gpus="$2"; shift 2 ;;
      --driver-slots) driver_slots="$2"; shift 2 ;;
      --port) PORT="$2"; shift 2 ;;
      --dashboard-port) DASHBOARD_PORT="$2"; shift 2 ;;
      --client-port) CLIENT_PORT="$2"; shift 2 ;;
      --agent-port) AGENT_PORT="$2"; shift 2 ;;
      --workers) workers="$2"; shift 2 ;;
      --worker-cpus) worker_cpus="$2"; shift 2 ;;
      --lan) lan="$2"; shift 2 ;;
      --auth) auth="$2"; shift 2 ;;
      *) die "unknown option for start: $1" ;;
    esac
  done
  if [[ -f "$STATE_FILE" ]] && (
    # shellcheck disable=SC1090
    source "$STATE_FILE"; [[ "$(alive_sessions)" -gt 0 ]]
  ); then
    die "a cluster is already running from $STATE_DIR (run: $0 stop)"
  fi
  [[ "$auth" == "disabled" || "$auth" == "token" ]] || die "--auth takes token (default: disabled)"
  mkdir -p "$STATE_DIR/ray"
  SESSIONS=""
  AUTH_MODE="$auth"
  export RAY_AUTH_MODE="$auth" RAY_USAGE_STATS_ENABLED=0
  # Ray workers (trial drivers, Train workers) must import hdc_ray even from a plain source checkout.
  export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
  if [[ "$auth" == "token" ]]; then
    (umask 077; python -c 'import secrets; print(secrets.token_hex(32))' >"$STATE_DIR/auth_token")
    export RAY_AUTH_TOKEN_PATH="$STATE_DIR/auth_token"
  fi

  if [[ -z "$lan" ]]; then
    [[ "$workers" -eq 0 ]] || die "--workers needs --lan: Ray cannot run several nodes on loopback only (see the header of $0)"
    MODE=loopback; HEAD_IP=127.0.0.1
    export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
  else
    MODE=lan
    if [[ "$lan" == "auto" ]]; then HEAD_IP="$(hostname -I | awk '{print $1}')"; else HEAD_IP="$lan"; fi
    [[ -n "$HEAD_IP" ]] || die "could not find this machine's address; pass --lan IP"
    python - "$HEAD_IP" <<'PY' || die "--lan $HEAD_IP is not a private address; refusing to expose Ray on it"
import ipaddress, sys
ip = ipaddress.ip_address(sys.argv[1])
sys.exit(0 if ip.is_private and not ip.is_loopback and not ip.is_unspecified else 1)
PY
  fi

  local head_args=(--head --node-ip-address="$HEAD_IP" --port="$PORT" --num-cpus="$cpus"
    --resources="{\"driver_slots\": $driver_slots}"
    --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT"
    --ray-client-server-port="$CLIENT_PORT" --dashboard-agent-listen-port="$AGENT_PORT"
    --temp-dir="$STATE_DIR/ray" --disable-usage-stats)
  [[ -n "$gpus" ]] && head_args+=(--num-gpus="$gpus")
  say "starting the head on $HEAD_IP:$PORT ($MODE mode, $cpus CPUs, driver_slots=$driver_slots)"
  start_node head "${head_args[@]}"
  write_state
  local i
  for ((i = 1; i <= workers; i++)); do
    say "starting worker $i ($worker_cpus CPUs)"
    start_node "worker$i" --address="$HEAD_IP:$PORT" --num-cpus="$worker_cpus" --temp-dir="$STATE_DIR/ray" --disable-usage-stats
    write_state
  done
  wait_for_dashboard "$DASHBOARD_PORT"
  # Jobs are accepted once the head's dashboard agent is up (it registers itself as it starts listening).
  wait_for_port "$HEAD_IP" "$AGENT_PORT" "the head's dashboard agent"
  say "up. Dashboard and job server: http://127.0.0.1:$DASHBOARD_PORT   GCS: $HEAD_IP:$PORT"
  say "next: $0 sweep smoke --results results/local   or   $0 submit smoke"
  if [[ "$MODE" == "lan" ]]; then
    say "more machines on this network join with: ray start --address=$HEAD_IP:$PORT"
  fi
}

cmd_env() {
  load_state
  echo "export RAY_API_SERVER_ADDRESS=http://127.0.0.1:$DASHBOARD_PORT"
  echo "export RAY_AUTH_MODE=$AUTH_MODE"
  if [[ "$AUTH_MODE" == "token" ]]; then echo "export RAY_AUTH_TOKEN_PATH=$STATE_DIR/auth_token"; fi
  if [[ "$MODE" == "loopback" ]]; then echo "export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"; fi
  echo "# the sweep driver in this shell:"
  echo "#   hdc-ray sweep SPEC --address $HEAD_IP:$PORT --results DIR --set resources.driver_resource=driver_slots"
  echo "# or as a Ray job (runs in a copy of the repository, so give an absolute results folder):"
  echo "#   ray job submit --address http://127.0.0.1:$DASHBOARD_PORT --working-dir . -- hdc-ray sweep SPEC --address auto --results ABSOLUTE_DIR --set resources.driver_resource=driver_slots"
}

cmd_status() {
  load_state
  say "$MODE mode, GCS $HEAD_IP:$PORT, dashboard http://127.0.0.1:$DASHBOARD_PORT, $(alive_sessions) node(s) alive"
  "$RAY_BIN" status --address "$HEAD_IP:$PORT" || true
  "$RAY_BIN" job list --address "http://127.0.0.1:$DASHBOARD_PORT" 2>/dev/null | tail -n 20 || true
}

has_results_flag() {
  local a
  for a in "$@"; do [[ "$a" == --results || "$a" == --results=* ]] && return 0; done
  return 1
}

cmd_sweep() {
  [[ $# -ge 1 ]] || die "usage: $0 sweep SPEC [sweep flags...]"
  load_state
  local spec="$1"; shift
  local extra=()
  has_results_flag "$@" || extra+=(--results "$PWD/results/local")
  export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
  # shellcheck disable=SC2046
  exec $(hdc_cmd) sweep "$spec" --address "$HEAD_IP:$PORT" --set resources.driver_resource=driver_slots "${extra[@]}" "$@"
}

cmd_submit() {
  [[ $# -ge 1 ]] || die "usage: $0 submit SPEC [sweep flags...]"
  load_state
  local spec="$1"; shift
  local extra=()
  # The job runs in a copy of the repository (working_dir): relative --results would land in that copy.
  has_results_flag "$@" || extra+=(--results "$PWD/results/local")
  local runtime_env
  runtime_env="$(python - "$REPO_ROOT" <<'PY'
import json, sys
print(json.dumps({"working_dir": sys.argv[1], "excludes": [".git", ".venv", "results", "runs", "**/__pycache__", "*.parquet"]}))
PY
)"
  exec "$RAY_BIN" job submit --address "http://127.0.0.1:$DASHBOARD_PORT" --runtime-env-json "$runtime_env" -- \
    $(hdc_cmd) sweep "$spec" --address auto --set resources.driver_resource=driver_slots "${extra[@]}" "$@"
}

cmd_stop() {
  load_state
  local sid pids i
  for sid in $SESSIONS; do
    pids="$(session_pids "$sid")"
    [[ -n "$pids" ]] && kill -TERM $pids 2>/dev/null || true
  done
  for i in $(seq 1 20); do
    [[ "$(alive_sessions)" -eq 0 ]] && break
    sleep 0.5
  done
  for sid in $SESSIONS; do
    pids="$(session_pids "$sid")"
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
  done
  for i in $(seq 1 20); do
    [[ "$(alive_sessions)" -eq 0 ]] && break
    sleep 0.5
  done
  [[ "$(alive_sessions)" -eq 0 ]] || die "some processes of sessions $SESSIONS did not exit; state kept in $STATE_FILE"
  rm -f "$STATE_FILE" "$STATE_DIR/auth_token"
  say "stopped (logs kept in $STATE_DIR)"
}

main() {
  local cmd="${1:-help}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    env) cmd_env ;;
    status) cmd_status ;;
    sweep) cmd_sweep "$@" ;;
    submit) cmd_submit "$@" ;;
    stop) cmd_stop ;;
    help|-h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command: $cmd (try: $0 help)" ;;
  esac
}

main "$@"
