#!/usr/bin/env bash
# The whole live stack in one command (docs/operations.md): `make live`, `make stop`, `make status`.
#
#   scripts/live.sh start    set-up and the local services if missing, then feed-sim (the embedded default feed),
#                            tape ingest, the tape work members, tape serve and Prometheus, each under
#                            scripts/supervise.sh; waits until every process's /ready is green (serve's, and the
#                            ingest's and each worker's on their --metrics-listen) and prints where to look
#   scripts/live.sh stop     SIGTERM to each supervisor (feed-sim, then ingest: it ends its session, the workers drain),
#                            SIGKILL after a timeout; then the services that `start` brought up (not those that
#                            were already running); no process is left behind
#   scripts/live.sh status   one line per process (pid, up/down, restarts, uptime), every /ready, each service
#
# The stack is described by config/live.yaml (TAPE_LIVE_CONFIG=FILE for another one; the tests and the soak
# write their own with free ports). TAPE=path/to/tape picks the binary (default .build/release/tape).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${TAPE_LIVE_CONFIG:-config/live.yaml}
TAPE=${TAPE:-$(pwd)/.build/release/tape}
STOP_TIMEOUT_SECONDS=${TAPE_STOP_TIMEOUT_SECONDS:-30}
PY=${PYTHON:-python3}

plan() {
  local text
  text=$("$PY" scripts/live_config.py "$CONFIG" "$TAPE") || { echo "live: $CONFIG: cannot plan the stack" >&2; exit 64; }
  eval "$text"
}

# pid of NAME's supervisor or child if it runs, else nothing.
running_pid() { # file
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2> /dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null && echo "$pid"
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2> /dev/null || true; }

# postgres://user@host:port/db -> creates db if missing, then applies the schema.
prepare_postgres() {
  local url=$1 server database
  server=${url%/*}
  database=${url##*/}
  local host_port=${server#*@}
  psql -q -h "${host_port%:*}" -p "${host_port#*:}" -U postgres -tc \
    "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
    || psql -q -h "${host_port%:*}" -p "${host_port#*:}" -U postgres -c "CREATE DATABASE $database" > /dev/null
  "$TAPE" store migrate --store "$url" > /dev/null
}

start() {
  local began
  began=$(date +%s.%N)
  if [ ! -x "$TAPE" ]; then # `make live` builds first; scripts/live.sh alone on a fresh clone
    scripts/setup.sh
    swift build -c release --product tape
  fi
  plan
  if [ "$START_SERVICES" = 1 ]; then
    # The services this start brings up (not those already running, e.g. `make services` for the tests) are
    # written down: `stop` stops them again, so that `make stop` leaves no process behind.
    local down
    down=$(scripts/services.sh status | awk '$2 == "down" {print $1}' | xargs)
    scripts/services.sh start > /dev/null
    mkdir -p "$STATE"
    if [ -n "$down" ]; then echo "$down" > "$STATE/services.started"; fi
  fi
  local name pid
  for name in "${PROCESSES[@]}"; do
    if pid=$(running_pid "$STATE/$name.supervisor.pid"); then
      echo "live: $name already runs (supervisor $pid): scripts/live.sh stop first, or status" >&2
      exit 1
    fi
  done
  prepare_postgres "$POSTGRES_URL"
  mkdir -p "$STATE/runs" "$STATE/spool"
  for name in "${PROCESSES[@]}"; do
    local -n command="CMD_${name//-/_}"
    setsid scripts/supervise.sh "$name" "$STATE" -- "${command[@]}" < /dev/null > /dev/null 2>&1 &
    for _ in $(seq 50); do [ -f "$STATE/$name.pid" ] && break; sleep 0.1; done
    echo "live: $name started (pid $(cat "$STATE/$name.pid" 2> /dev/null || echo '?'), log $STATE/$name.log)"
    if [ "$name" = feed-sim ]; then sleep 1; fi # loaded before the ingest connects (else its start is skipped)
  done
  local deadline=$(($(date +%s) + READY_TIMEOUT_SECONDS)) url waiting
  while :; do
    waiting=
    for url in $READY_URLS; do [ "$(http_code "$url")" = 200 ] || waiting="$waiting $url"; done
    [ -z "$waiting" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "live: not ready within ${READY_TIMEOUT_SECONDS}s:" >&2
      for url in $waiting; do echo "  $url: $(curl -s -m 2 "$url" || echo 'no answer')" >&2; done
      status >&2
      exit 1
    fi
    sleep 0.2
  done
  local seconds
  seconds=$(echo "$(date +%s.%N) - $began" | bc)
  printf 'live: ready in %.1f s (feeds from %s)\n' "$seconds" "$FEEDS_FROM"
  echo "  dashboard   http://$SERVE_LISTEN/"
  echo "  API docs    http://$SERVE_LISTEN/docs   (OpenAPI: http://$SERVE_LISTEN/openapi.json)"
  echo "  metrics     http://$SERVE_LISTEN/metrics$(for address in $METRICS_LISTEN; do printf '  http://%s/metrics' "$address"; done)"
  [ -n "$PROMETHEUS_LISTEN" ] && echo "  prometheus  http://$PROMETHEUS_LISTEN/   (alerts: http://$PROMETHEUS_LISTEN/alerts)"
  echo "  grafana     $(pwd)/config/grafana/tape-dashboard.json (import into your Grafana; data source: the Prometheus above)"
  echo "  state       $STATE (pid files, logs)   stop: make stop   status: make status"
}

# Stops one process: SIGTERM to its supervisor (which stops the child the same way), then SIGKILL to both.
stop_one() { # name
  local name=$1 supervisor child
  supervisor=$(running_pid "$STATE/$name.supervisor.pid") || supervisor=
  child=$(running_pid "$STATE/$name.pid") || child=
  [ -n "$supervisor$child" ] || { rm -f "$STATE/$name.pid" "$STATE/$name.supervisor.pid"; return 0; }
  [ -n "$supervisor" ] && kill -TERM "$supervisor" 2> /dev/null || true
  [ -z "$supervisor" ] && [ -n "$child" ] && kill -TERM "$child" 2> /dev/null || true
  local waited=0
  while { { [ -n "$supervisor" ] && kill -0 "$supervisor" 2> /dev/null; } \
          || { [ -n "$child" ] && kill -0 "$child" 2> /dev/null; }; } && [ $waited -lt $((STOP_TIMEOUT_SECONDS * 10 + 50)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  local left=
  for pid in $supervisor $child; do
    if kill -0 "$pid" 2> /dev/null; then kill -KILL "$pid" 2> /dev/null || true; left="$left $pid"; fi
  done
  rm -f "$STATE/$name.pid" "$STATE/$name.supervisor.pid"
  if [ -n "$left" ]; then echo "live: $name killed (SIGKILL:$left)"; else echo "live: $name stopped"; fi
}

stop() {
  plan
  # The embedded feed first (what it wrote reaches the ingest, which reads it before its own stop: every
  # message served is recorded), then the ingest (its end of session closes the windows the workers hold),
  # then the workers, then the rest.
  local name
  for name in "${PROCESSES[@]}"; do [ "$name" = feed-sim ] && { stop_one feed-sim; sleep 1; }; done
  for name in "${PROCESSES[@]}"; do [ "$name" = ingest ] && stop_one ingest; done
  for name in "${PROCESSES[@]}"; do [[ "$name" == work-* ]] && stop_one "$name"; done
  for name in "${PROCESSES[@]}"; do [[ "$name" == ingest || "$name" == work-* || "$name" == feed-sim ]] || stop_one "$name"; done
  # Anything else still naming the state folder, but never this script or its callers.
  local left ancestors=" $$ " pid=$$
  while [ "$pid" -gt 1 ]; do
    pid=$(awk '{print $4}' "/proc/$pid/stat" 2> /dev/null || echo 1)
    ancestors="$ancestors$pid "
  done
  left=$(pgrep -f -- "$STATE[/]" | while read -r pid; do [[ "$ancestors" == *" $pid "* ]] || echo "$pid"; done || true)
  if [ -n "$left" ]; then
    echo "live: processes still naming $STATE: $left (SIGKILL)" >&2
    kill -KILL $left 2> /dev/null || true
  fi
  if [ -f "$STATE/services.started" ]; then
    local started
    started=$(cat "$STATE/services.started")
    # shellcheck disable=SC2086 # one word per service
    scripts/services.sh stop $started > /dev/null && echo "live: services stopped (started by make live): $started"
    rm -f "$STATE/services.started"
  fi
  return 0
}

status() {
  plan
  local name pid supervisor restarts started uptime
  printf '%-11s %-6s %-8s %-9s %-9s %s\n' process state pid restarts uptime log
  for name in "${PROCESSES[@]}"; do
    supervisor=$(running_pid "$STATE/$name.supervisor.pid") || supervisor=
    pid=$(running_pid "$STATE/$name.pid") || pid=
    restarts=$(cat "$STATE/$name.restarts" 2> /dev/null || echo 0)
    if [ -n "$pid" ]; then
      started=$(cat "$STATE/$name.started" 2> /dev/null || date +%s)
      uptime="$(($(date +%s) - started))s"
      printf '%-11s %-6s %-8s %-9s %-9s %s\n' "$name" up "$pid" "$restarts" "$uptime" "$STATE/$name.log"
    elif [ -n "$supervisor" ]; then
      printf '%-11s %-6s %-8s %-9s %-9s %s\n' "$name" down - "$restarts" "restarting" "$STATE/$name.log"
    else
      printf '%-11s %-6s %-8s %-9s %-9s %s\n' "$name" down - "$restarts" - "$STATE/$name.log"
    fi
  done
  local url
  for url in $READY_URLS; do echo "$url: $(curl -s -m 2 "$url" || echo 'no answer')"; done
  scripts/services.sh status
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/live.sh start | stop | status" >&2; exit 64 ;;
esac
