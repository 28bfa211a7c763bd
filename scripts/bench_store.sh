#!/usr/bin/env bash
# `make bench`, store path: `tape replay BENCH --store postgres://…` (every tick and output into the
# PostgreSQL of `make services`, a fresh database) against, in the same run, `tape replay BENCH` alone
# and `gzip -dc BENCH`. Figures: tick rows/s into PostgreSQL, ratio store / replay alone (goal <= ~2),
# PostgreSQL's own time (write_ns), back-pressure, peak RSS (goal < 200 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
source config/services.env
TAPE="${TAPE:-.build/release/tape}"
BENCH="${1:?usage: scripts/bench_store.sh BENCH_FILE}"
WORK=reports/bench/store
rm -rf "$WORK"; mkdir -p "$WORK"
# Stop afterwards what this script started (servers already up stay up).
started=$(scripts/services.sh status | grep -c ' down ' || true)
scripts/services.sh start > /dev/null
[ "$started" -gt 0 ] && trap 'scripts/services.sh stop > /dev/null' EXIT
DB=tape_bench
psql -q -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>&1 | grep -v NOTICE || true
URL="postgres://postgres@127.0.0.1:$TAPE_PG_PORT/$DB"

s=$(date +%s.%N); gzip -dc "$BENCH" > /dev/null; e=$(date +%s.%N); gz=$(echo "$e - $s" | bc -l)
alone=$( { /usr/bin/time -f "%e %M" "$TAPE" replay "$BENCH" --speed max --quiet --no-report --out "$WORK/alone" > /dev/null; } 2>&1 | tail -1)
store=$( { /usr/bin/time -f "%e %M" "$TAPE" replay "$BENCH" --speed max --quiet --no-report --out "$WORK/store" --store "$URL" > /dev/null; } 2>&1 | tail -1)
a=${alone%% *}; w=${store%% *}; rss=${store##* }
python3 - "$WORK/store/summary.json" "$gz" "$a" "$w" "$rss" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1])); gz, alone, wall, rss = map(float, sys.argv[2:])
pg = summary["stores"]["postgres"]; ticks = pg["rows"]["ticks"]
print(f"gzip -dc               {gz:.2f} s")
print(f"tape replay alone      {alone:.2f} s   ({summary['ticks_in'] / alone:,.0f} ticks/s)")
print(f"tape replay --store    {wall:.2f} s   {ticks / wall:,.0f} tick rows/s into PostgreSQL (goal >= 500,000)")
print(f"store / replay alone   {wall / alone:.2f} x   (goal <= ~2);  store / gzip -dc {wall / gz:.2f} x")
print(f"PostgreSQL time        {pg['write_ns'] / 1e9:.2f} s in {pg['batches']} batches; engine blocked {pg['blocked_ns'] / 1e9:.2f} s ({pg['blocked_handoffs']} hand-offs)")
print(f"peak RSS with store    {rss / 1024:.0f} MB   (goal < 200 MB)")
PY
psql -q -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null 2>&1 || true
