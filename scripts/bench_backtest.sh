#!/usr/bin/env bash
# `make bench`, backtesting (issue 15; docs/backtesting.md). Two figures, each against a baseline of the same run:
#  1. The model strategy over the benchmark capture with tick-level fills: `tape replay BENCH --model M --trading T`
#     (model_threshold on 1m predictions, 20 ms latency, fees and slippage: fills against the capture's quotes)
#     wall time / `tape replay BENCH --model M` (the same graph and model without trading), best of RUNS each
#     (goal <= 1.2x); also against the plain replay.
#  2. An external strategy (Python, sdk/python/tape_strategy.py) subscribed to trades, quotes, bars and
#     indicators of one capture: items exchanged per second (each one a round trip: Tape waits for its answer),
#     and the wall time against the same replay without it; baseline: a bare Python echo over pipes, same run.
# Usage: scripts/bench_backtest.sh BENCH_FILE
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED:-../shared}"
TAPE="${TAPE:-.build/release/tape}"
BENCH=${1:?usage: bench_backtest.sh BENCH_FILE}
RUNS=${RUNS:-3}
WORK=reports/bench/backtest
rm -rf "$WORK"; mkdir -p "$WORK"

"$TAPE" train "$SHARED/data/bars/btc-perp-20211231-20220201_1m.csv.gz" --from 2022-01-03T00:00:00Z --to 2022-01-05T00:00:00Z \
  --timeframe 1m --rounds 20 --folds 2 --out "$WORK/train" --quiet --no-report > /dev/null
MODEL="$WORK/train/model"
cat > "$WORK/trading.yaml" <<'YAML'
trading:
  execution: {latency: 20ms, fee_bps: 1, slippage_bps: 0.5}
  strategies:
    - {type: model_threshold, timeframe: 1m, threshold: 0.0002, quantity: 0.01}
YAML

best() { # label args... -> "best_wall best_cpu" of RUNS (wall and user+system CPU seconds); each run's in $WORK/<label>.runs
  local label=$1; shift
  local walls=() cpus=()
  for _ in $(seq "$RUNS"); do
    local figures
    figures=$( { /usr/bin/time -f "%e %U %S" "$TAPE" replay "$@" --quiet --no-report --out "$WORK/$label" > /dev/null; } 2>&1 | tail -1)
    read -r wall user system <<< "$figures"
    walls+=("$wall"); cpus+=("$(echo "$user + $system" | bc)")
  done
  echo "wall ${walls[*]} cpu ${cpus[*]}" > "$WORK/$label.runs"
  echo "$(printf '%s\n' "${walls[@]}" | sort -n | head -1) $(printf '%s\n' "${cpus[@]}" | sort -n | head -1)"
}
read -r plain plain_cpu <<< "$(best plain "$BENCH" --speed max)"
read -r model model_cpu <<< "$(best model "$BENCH" --speed max --model "$MODEL")"
read -r trading trading_cpu <<< "$(best trading "$BENCH" --speed max --model "$MODEL" --trading "$WORK/trading.yaml")"
echo "backtest: model_threshold (1m predictions) on $BENCH, tick-level fills, best of $RUNS (wall, CPU = user + system)"
echo "  tape replay (no model, no trading)    ${plain} s, CPU ${plain_cpu} s   ($(cat "$WORK/plain.runs"))"
echo "  tape replay --model (baseline)        ${model} s, CPU ${model_cpu} s   ($(cat "$WORK/model.runs"))"
echo "  tape replay --model --trading         ${trading} s, CPU ${trading_cpu} s   ($(cat "$WORK/trading.runs"))"
python3 - "$WORK" "$model" "$trading" "$plain" "$model_cpu" "$trading_cpu" <<'PY'
import csv, json, sys
work = sys.argv[1]
model, trading, plain, model_cpu, trading_cpu = map(float, sys.argv[2:7])
summary = json.load(open(f"{work}/trading/summary.json"))
rules = {}
for row in csv.DictReader(open(f"{work}/trading/fills.csv")):
    rules[row["rule"]] = rules.get(row["rule"], 0) + 1
t = summary["trading"]
print(f"  backtest / replay with the model: wall {trading / model:.3f}x, CPU {trading_cpu / model_cpu:.3f}x   (goal <= 1.2);"
      f"  wall / plain replay: {trading / plain:.3f}x")
print(f"  {summary['ticks_in']:,} ticks, {summary['events_out_by_kind'].get('predictions', 0):,} predictions, "
      f"{t['fills']:,} fills by rule {rules}, {t['trade_count']:,} round trips, total return {t['total_return']:.4%}")
PY

# 2. An external strategy's round trips.
CAPTURE="$SHARED/data/binance-feed/usdm-btcusdt_20240808.gz"
cat > "$WORK/counting.py" <<PY
import sys
sys.path.insert(0, "$(pwd)/sdk/python")
from tape_strategy import Strategy, run
class Counting(Strategy):
    subscriptions = ("trades", "quotes", "bars", "indicators")
    def on_start(self, parameters):
        self.out, self.items = parameters["out"], 0
    def count(self, item, ctx):
        self.items += 1
        if self.items % 5000 == 0:
            ctx.target(0.001 if (self.items // 5000) % 2 else 0.0)
    on_trade = on_quote = on_bar = on_indicators = count
    def state(self):
        return str(self.items)
s = Counting()
try:
    run(s)
finally:
    open(s.out, "w").write(str(s.items))
PY
cat > "$WORK/external.yaml" <<YAML
timeframes: [5s, 1m]
YAML
cat > "$WORK/external-trading.yaml" <<YAML
trading:
  strategies:
    - {type: external, name: counting, command: "python3 $(pwd)/$WORK/counting.py", out: "$(pwd)/$WORK/items.txt"}
YAML
read -r alone _ <<< "$(best alone "$CAPTURE" --config "$WORK/external.yaml")"
read -r external _ <<< "$(best external "$CAPTURE" --config "$WORK/external.yaml" --trading "$WORK/external-trading.yaml")"
# Baseline in the same run: what one line-for-line round trip between two Python processes over pipes costs on
# this machine now (best of 2; the floor under a strategy that answers every item).
pipe_rate=$(python3 - <<'PY'
import subprocess, sys, time
best = 0.0
for _ in range(2):
    child = subprocess.Popen([sys.executable, "-c", "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line); sys.stdout.flush()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    n, started = 20000, time.time()
    for _ in range(n):
        child.stdin.write(b'{"type":"quote","symbol":"usdm:BTCUSDT"}\n'); child.stdout.readline()
    best = max(best, n / (time.time() - started))
    child.stdin.close(); child.wait()
print(f"{best:.0f}")
PY
)
python3 - "$WORK" "$alone" "$external" "$pipe_rate" <<'PY'
import sys
work, alone, external, pipe_rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
items = int(open(f"{work}/items.txt").read())
print(f"external strategy (Python, trades+quotes+bars+indicators of usdm-btcusdt_20240808, 5s and 1m): {items:,} items")
print(f"  replay alone {alone:.3f} s, with the external strategy {external:.3f} s: "
      f"{items / external:,.0f} items/s end to end ({items / max(external - alone, 1e-9):,.0f}/s of the strategy's own time)")
print(f"  baseline, a bare Python echo over pipes: {pipe_rate:,.0f} round trips/s; the strategy = {items / external / pipe_rate:.2f}x of it")
PY
