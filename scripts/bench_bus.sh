#!/usr/bin/env bash
# `make bench`, distributed path: tape feed-sim (loopback, Binance) -> tape ingest -> Kafka (tansu) ->
# one tape work -> PostgreSQL (every tick and output stored, exactly once with the offsets).
#  1. flat out: the 8 captures of ../shared/data served at --speed max (324,887 messages, 237,667 trades and
#     quotes kept). The worker runs beside the ingest; sustained ticks/s = ticks stored / (last commit -
#     first receive stamp), i.e. end to end. Baseline in the same run: `tape replay --store postgres://`
#     of the same captures (the single-process path into the same database).
#  2. paced at ~15,000 messages/s (usdm-btcusdt_20240808 at --speed 55): receive stamp -> PostgreSQL commit
#     latency per stored tick, p50/p99/p99.9 (HdrHistogram in the worker).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED:-../shared}"
TAPE="${TAPE:-.build/release/tape}"
DATA="$SHARED/data/binance-feed"
WORK="reports/bench/bus"
PG="postgres://postgres@127.0.0.1:55432"
rm -rf "$WORK"; mkdir -p "$WORK"
started=$(scripts/services.sh start postgres kafka | grep -c ' up$' || true)
fresh_db() { psql -q -h 127.0.0.1 -p 55432 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" > /dev/null; }
start_sim() {
  "$TAPE" feed-sim "$@" --port 0 --port-file "$WORK/port" > "$WORK/sim.out" 2> "$WORK/sim.err" &
  SIM_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  PORT=$(sed 's/.*://' "$WORK/port")
}
stop_sim() { kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; rm -f "$WORK/port"; }
run_bus() { # name speed feed duration files...
  local name=$1 speed=$2 feed=$3 duration=$4; shift 4
  local topic="bench_${name}_$$" db="tape_bench_bus_${name}"
  fresh_db "$db"
  # The topic first, and the worker in its group before the feed starts (a group forms in seconds).
  python3 -c "from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({'bootstrap.servers': '127.0.0.1:59092'}); a.create_topics([NewTopic('$topic', 3, 1)])['$topic'].result(10)"
  "$TAPE" work --topic "$topic" --group "bench-$name-$$" --store "$PG/$db" --name bench --idle-exit-seconds 5 \
    --session-timeout-ms 6000 --max-poll-interval-ms 10000 --spool "$WORK/spool" > "$WORK/$name-work.out" 2> "$WORK/$name-work.err" &
  local work_pid=$!
  for _ in $(seq 300); do grep -q " took " "$WORK/$name-work.err" 2>/dev/null && break; sleep 0.1; done
  sleep 1   # every partition assigned
  start_sim "$@" --protocol binance --speed "$speed"
  "$TAPE" ingest --feed "$feed=ws://127.0.0.1:$PORT" --duration "$duration" --out "$WORK/$name-ingest" --quiet \
    --topic "$topic" --partitions 3 > /dev/null 2> "$WORK/$name-ingest.err" || true
  stop_sim
  wait "$work_pid" || true
}

run_bus max max "binance-usdm:btcusdt,ethusdt,btcusd_perp,ethusd_perp" 12s "$DATA"/*.gz
rate=$(sed -n 's/.*: \([0-9]*\) ticks\/s$/\1/p' "$WORK/max-work.out")
n=$(sed -n 's/^stored *\([0-9]*\) ticks.*/\1/p' "$WORK/max-work.out")
fresh_db tape_bench_bus_replay
s=$(date +%s.%N)
"$TAPE" replay "$DATA"/*.gz --quiet --no-report --out "$WORK/replay" --store "$PG/tape_bench_bus_replay" > /dev/null
e=$(date +%s.%N)
replay_ticks=$(python3 -c "import json;print(json.load(open('$WORK/replay/summary.json'))['ticks_delivered'])")
replay_rate=$(echo "$replay_ticks / ($e - $s)" | bc -l)
printf 'bus, flat out       %d ticks stored, first receive stamp -> last commit: %.0f ticks/s sustained (goal >= 100000)\n' "$n" "$rate"
printf 'replay -> postgres  %.0f ticks/s (same captures, one process); bus / replay = %.2f\n' "$replay_rate" "$(echo "$rate / $replay_rate" | bc -l)"
grep -E "^(records|stored|end to end|commits)" "$WORK/max-work.out" | sed 's/^/  worker: /'

run_bus paced 55 "binance-usdm:btcusdt" 10s "$DATA/usdm-btcusdt_20240808.gz"
echo "bus at ~15,000 msg/s: $(grep -E '^end to end' "$WORK/paced-work.out" | sed 's/end to end *//') (goal p99 <= 250 ms)"
[ "$started" -gt 0 ] && scripts/services.sh stop kafka > /dev/null || true
