#!/usr/bin/env bash
# One long-running process of the live stack, kept running (docs/operations.md): started by scripts/live.sh,
# one supervisor per process, no Docker, no systemd (this container has no systemd user session).
#
#   scripts/supervise.sh NAME STATE_DIR -- COMMAND [ARG…]
#
# Files under STATE_DIR (all rewritten, never appended, except the log):
#   NAME.supervisor.pid   this supervisor's pid
#   NAME.pid              the running child's pid (removed while it is down)
#   NAME.restarts         how many times the child was restarted after it ended on its own
#   NAME.started          the child's last start, epoch seconds
#   NAME.log              the child's stdout and stderr, and one `supervise:` line per start, exit, restart
#
# A child that ends on its own (crash, kill -9, any exit code) is started again after a backoff of 1, 2, 4, 8, 16,
# 30, 30 … seconds; a child that ran at least BACKOFF_RESET_SECONDS (60) starts the sequence again at 1 s.
# SIGTERM or SIGINT to the supervisor: SIGTERM to the child, wait STOP_TIMEOUT_SECONDS (default 30, environment
# TAPE_STOP_TIMEOUT_SECONDS), then SIGKILL; the supervisor exits once the child is gone and never restarts it.
set -uo pipefail
[ $# -ge 4 ] && [ "$3" = "--" ] || { echo "usage: scripts/supervise.sh NAME STATE_DIR -- COMMAND [ARG…]" >&2; exit 64; }
NAME=$1
STATE=$2
shift 3
BACKOFF_SECONDS_MAX=30
BACKOFF_RESET_SECONDS=60
STOP_TIMEOUT_SECONDS=${TAPE_STOP_TIMEOUT_SECONDS:-30}
LOG="$STATE/$NAME.log"
mkdir -p "$STATE"
echo $$ > "$STATE/$NAME.supervisor.pid"
echo 0 > "$STATE/$NAME.restarts"

say() { echo "supervise: $(date -u +%Y-%m-%dT%H:%M:%SZ) $NAME $*" >> "$LOG"; }

child=
sleeper=
stopping=0
stop() {
  stopping=1
  [ -n "$sleeper" ] && kill "$sleeper" 2> /dev/null
  if [ -z "$child" ]; then
    say "stopped (while waiting to restart)"
    rm -f "$STATE/$NAME.pid" "$STATE/$NAME.supervisor.pid"
    exit 0
  fi
  say "stopping pid $child (SIGTERM, SIGKILL after ${STOP_TIMEOUT_SECONDS}s)"
  kill -TERM "$child" 2> /dev/null
  local waited=0
  while kill -0 "$child" 2> /dev/null && [ "$waited" -lt $((STOP_TIMEOUT_SECONDS * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$child" 2> /dev/null; then
    say "pid $child did not stop within ${STOP_TIMEOUT_SECONDS}s: SIGKILL"
    kill -KILL "$child" 2> /dev/null
  fi
  wait "$child" 2> /dev/null
  say "stopped (exit $?)"
  rm -f "$STATE/$NAME.pid" "$STATE/$NAME.supervisor.pid"
  exit 0
}
trap stop TERM INT

restarts=0
backoff=1
while :; do
  "$@" >> "$LOG" 2>&1 < /dev/null &
  child=$!
  echo "$child" > "$STATE/$NAME.pid"
  started=$(date +%s)
  echo "$started" > "$STATE/$NAME.started"
  say "started pid $child: $*"
  # `wait` returns early when a trapped signal arrives; the trap then stops the child and exits.
  wait "$child"
  code=$?
  [ "$stopping" = 1 ] && continue
  rm -f "$STATE/$NAME.pid"
  ran=$(($(date +%s) - started))
  [ "$ran" -ge "$BACKOFF_RESET_SECONDS" ] && backoff=1
  restarts=$((restarts + 1))
  echo "$restarts" > "$STATE/$NAME.restarts"
  say "pid $child ended (exit $code after ${ran}s); restart $restarts in ${backoff}s"
  child=
  sleep "$backoff" &
  sleeper=$!
  wait "$sleeper" 2> /dev/null
  sleeper=
  [ "$stopping" = 1 ] && exit 0
  backoff=$((backoff * 2 > BACKOFF_SECONDS_MAX ? BACKOFF_SECONDS_MAX : backoff * 2))
done
