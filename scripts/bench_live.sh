#!/usr/bin/env bash
# `make bench`, live path: tape feed-sim (loopback, Binance protocol) -> one WebSocket -> tape live -> run folder.
#  1. messages/s through one WebSocket: the 8 captures of ../shared/data served at --speed max, the trade and
#     bookTicker streams of their 4 symbols (324,887 messages); rate = messages / (last - first receive stamp)
#     in the session's recording. Baseline in the same run: `tape replay` of the same captures (ticks/s).
#     The same messages pre-framed and sent in one go by scripts/ws_blast.py (a minimal WebSocket server):
#     what the WebSocket client path itself takes in, without the simulator's per-message awaited write.
#  2. latency at 15,000 messages/s: usdm-btcusdt_20240808 (93,954 lines over 345 s) at --speed 55;
#     receive stamp -> hand-over to the graph, p50/p99/p99.9 from summary.json (HdrHistogram).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED:-../shared}"
TAPE="${TAPE:-.build/release/tape}"
DATA="$SHARED/data/binance-feed"
WORK="reports/bench/live"
rm -rf "$WORK"; mkdir -p "$WORK"

start_sim() { # args...; sets SIM_PID and PORT
  "$TAPE" feed-sim "$@" --port 0 --port-file "$WORK/port" --stats "$WORK/sim-stats.json" > "$WORK/sim.out" 2> "$WORK/sim.err" &
  SIM_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  PORT=$(sed 's/.*://' "$WORK/port")
}
stop_sim() { kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; rm -f "$WORK/port"; }

# Baseline: replay of the same captures in this run.
out=$( { /usr/bin/time -f "%e" "$TAPE" replay "$DATA"/*.gz --speed max --quiet --no-report --out "$WORK/replay" > /dev/null; } 2>&1 | tail -1)
replay_ticks=$(python3 -c "import json;print(json.load(open('$WORK/replay/summary.json'))['ticks_in'])")
replay_rate=$(echo "$replay_ticks / $out" | bc -l)

start_sim "$DATA"/*.gz --protocol binance --speed max
"$TAPE" live --feed "binance-usdm:btcusdt,ethusdt,btcusd_perp,ethusd_perp=ws://127.0.0.1:$PORT" \
  --duration 12s --out "$WORK/max" --quiet > /dev/null 2> "$WORK/live-max.err" || true
stop_sim
rate_of() { # recording folder -> "count seconds"
  python3 - "$1" <<'PY'
import gzip, os, sys
folder = sys.argv[1]
name = [f for f in os.listdir(folder) if f.startswith('binance-usdm-')][0]
first = last = None; count = 0
for line in gzip.open(os.path.join(folder, name), 'rb'):
    if line.startswith(b'#'): continue
    t = int(line.split(b' ', 1)[0]); first = first or t; last = t; count += 1
print(count, (last - first) / 1e9)
PY
}
read -r count seconds < <(rate_of "$WORK/max/recording")
live_rate=$(echo "$count / $seconds" | bc -l)
printf 'live via feed-sim    %d messages in %.3f s: %.0f messages/s (goal >= 300000; tape feed-sim --speed max)\n' \
  "$count" "$seconds" "$live_rate"

python3 scripts/ws_blast.py "$WORK/port" "$DATA"/*.gz > /dev/null &
BLAST_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(sed 's/.*://' "$WORK/port")
"$TAPE" live --feed "binance-usdm:btcusdt,ethusdt,btcusd_perp,ethusd_perp=ws://127.0.0.1:$PORT" \
  --duration 12s --out "$WORK/blast" --quiet > /dev/null 2> "$WORK/live-blast.err" || true
kill "$BLAST_PID" 2>/dev/null || true; wait "$BLAST_PID" 2>/dev/null || true; rm -f "$WORK/port"
read -r count seconds < <(rate_of "$WORK/blast/recording")
blast_rate=$(echo "$count / $seconds" | bc -l)
printf 'live, one WebSocket  %d messages in %.3f s: %.0f messages/s (goal >= 300000; pre-framed sender)\n' \
  "$count" "$seconds" "$blast_rate"
printf 'replay, same data    %.0f ticks/s; live / replay = %.2f\n' "$replay_rate" "$(echo "$blast_rate / $replay_rate" | bc -l)"

start_sim "$DATA/usdm-btcusdt_20240808.gz" --protocol binance --speed 55
"$TAPE" live --feed "binance-usdm:btcusdt=ws://127.0.0.1:$PORT" --duration 9s --out "$WORK/paced" --quiet \
  > /dev/null 2> "$WORK/live-paced.err" || true
stop_sim
python3 - "$WORK/paced/summary.json" <<'PY'
import json, sys
feed = json.load(open(sys.argv[1]))['live']['feeds'][0]
latency = feed['latency_ns']; events = feed['counters']['events']
print('live at ~15,000 msg/s  %d events; stamp -> graph p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms (goal p99 <= 1 ms)'
      % (events, latency['p50'] / 1e6, latency['p99'] / 1e6, latency['p99.9'] / 1e6, latency['max'] / 1e6))
PY
