#!/usr/bin/env bash
# `make bench`: measured figures, each speed as a ratio against a baseline taken in the same run.
#  1. replay ratio: `tape replay BENCH --speed max` wall time / `gzip -dc BENCH > /dev/null` wall time
#     (best of RUNS each), plus peak RSS of the replay — on a benchmark file built once from the real
#     captures (scripts/make_bench_file.py; PASSES=48 gives ~20M lines).
#  2. graph alone: events/s through the full graph with events already decoded in memory.
#  3. read loop alone (gzip -> lines -> decode -> validate) on one real capture vs gzip -dc.
#  4. model: inference cost per bar, training time.
# Then scripts/bench_live.sh, bench_store.sh, bench_bus.sh, bench_serve.sh (tape serve: wrk on REST, /ws fan-out) and bench_backtest.sh (a backtest against the replay alone; an external strategy's round trips).
set -euo pipefail
SHARED=${SHARED:-../shared}
PASSES=${PASSES:-48}
RUNS=${RUNS:-3}
TAPE=.build/release/tape
BENCH=recordings/bench/binance-x${PASSES}.gz
mkdir -p recordings/bench reports/bench
if [ ! -s "$BENCH" ]; then
  echo "bench: building $BENCH from $SHARED/data/binance-feed ($PASSES passes; once)..."
  python3 scripts/make_bench_file.py "$SHARED/data" "$PASSES" | gzip -6 > "$BENCH.tmp"
  mv "$BENCH.tmp" "$BENCH"
fi
lines=$(cat "$BENCH.lines" 2>/dev/null || (gzip -dc "$BENCH" | wc -l | tee "$BENCH.lines"))
echo "bench file: $BENCH  $(du -h "$BENCH" | cut -f1) compressed, $lines lines"

best() { sort -g | head -1; }
gz=(); rp=(); rss=()
for i in $(seq "$RUNS"); do
  s=$(date +%s.%N); gzip -dc "$BENCH" > /dev/null; e=$(date +%s.%N)
  gz+=("$(echo "$e - $s" | bc -l)")
  out=$( { /usr/bin/time -f "%e %M" $TAPE replay "$BENCH" --speed max --quiet --no-report --out reports/bench/replay > /dev/null; } 2>&1 | tail -1) || true
  rp+=("$(echo "$out" | cut -d' ' -f1)"); rss+=("$(echo "$out" | cut -d' ' -f2)")
done
g=$(printf '%s\n' "${gz[@]}" | best); r=$(printf '%s\n' "${rp[@]}" | best); m=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
echo "gzip -dc          best of $RUNS: ${g} s   (runs: ${gz[*]})"
echo "tape replay max   best of $RUNS: ${r} s   (runs: ${rp[*]})"
printf 'replay ratio      %.2f x gzip -dc   (goal <= 1.0)\n' "$(echo "$r / $g" | bc -l)"
printf 'peak RSS          %.1f MB   (goal < 200 MB)\n' "$(echo "$m / 1024" | bc -l)"
ticks=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ticks_in"])' reports/bench/replay/summary.json)
printf 'replay throughput %.2f M ticks/s (ticks_in %s)\n' "$(echo "$ticks / $r / 1000000" | bc -l)" "$ticks"
$TAPE bench --shared "$SHARED" 2>/dev/null || echo "(tape bench: graph/model figures unavailable)"
scripts/bench_live.sh || echo "(live bench failed)"
scripts/bench_store.sh "$BENCH" || echo "(store bench failed)"
scripts/bench_bus.sh || echo "(bus bench failed)"
scripts/bench_serve.sh || echo "(serve bench failed)"
scripts/bench_backtest.sh "$BENCH" || echo "(backtest bench failed)"
