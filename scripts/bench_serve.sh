#!/usr/bin/env bash
# `make bench`, serving: `tape serve` over real data, measured from outside by independent clients.
#  Stores: a fresh PostgreSQL database and Redis database 8 of `make services`, filled by `tape replay` of the 8
#  captures of ../shared/data/binance-feed (with a small model from `tape train`, so that the latest 1m state
#  has a prediction as in a live deployment). `tape serve --config` with rate limits raised to 1,000,000/s (the
#  limiter still runs on every request).
#  1. REST, `wrk` (Debian; HdrHistogram percentiles with --latency), one wrk thread and 16 connections, 8 s each:
#     `/health` of the same server (baseline in the same run), `/api/v1/latest/{symbol}`, a bars range, and two
#     mixed Lua scripts (latest over every stored symbol + bars ranges) whose Redis hit rate is the change in
#     `tape_cache_requests_total{result=hit|miss}` on `/metrics` across the run.
#  2. WebSocket fan-out: 100 clients (scripts/ws_fanout_client.c; raw sockets, not Tape's code) subscribed to usdm:BTCUSDT trades
#     and quotes while `tape feed-sim --speed 55` (~15,000 msg/s) → `tape live --store redis://…/8` publishes on
#     Redis and `tape serve` relays. Latency = client arrival (wall ns) − data.receive_time_ns (the live receive
#     stamp, wall ns), exact percentiles over every update, both when the data reached the client's socket (the
#     kernel's SO_TIMESTAMPNS) and when the client read it; baseline in the same run: a raw Redis subscriber to
#     the same pub/sub channel (receive stamp → PUBLISH seen), i.e. what is spent before `tape serve`, and a 101st
#     client in a process of its own (the 100 share one Python process, which reads their sockets one by one).
set -euo pipefail
cd "$(dirname "$0")/.."
source config/services.env
SHARED="${SHARED:-../shared}"
TAPE="${TAPE:-.build/release/tape}"
DATA="$SHARED/data/binance-feed"
WORK=reports/bench/serve
DB=tape_bench_serve
REDIS_DB=${REDIS_DB:-8}
PG="postgres://postgres@127.0.0.1:$TAPE_PG_PORT/$DB"
REDIS="redis://127.0.0.1:$TAPE_REDIS_PORT/$REDIS_DB"
WRK=(wrk -t1 -c16 -d8s --latency)
# rest,ws (default: both); `BENCH_SERVE_PARTS=ws scripts/bench_serve.sh` measures the WebSocket fan-out alone.
PARTS=${BENCH_SERVE_PARTS:-rest,ws}
command -v wrk > /dev/null || { echo "bench_serve: wrk is not installed (scripts/setup.sh)"; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"
scripts/services.sh start postgres redis > /dev/null

SERVE_PID=; SIM_PID=
cleanup() {
  for pid in $SIM_PID $SERVE_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  redis-cli -p "$TAPE_REDIS_PORT" -n "$REDIS_DB" FLUSHDB > /dev/null 2>&1 || true
  psql -q -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null 2>&1 || true
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -p "$TAPE_PG_PORT" -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>&1 | grep -v NOTICE || true
redis-cli -p "$TAPE_REDIS_PORT" -n "$REDIS_DB" FLUSHDB > /dev/null

"$TAPE" train "$SHARED/data/bars/btc-perp-20211231-20220201_1m.csv.gz" --from 2022-01-03T00:00:00Z --to 2022-01-05T00:00:00Z \
  --timeframe 1m --rounds 20 --folds 2 --out "$WORK/train" --quiet --no-report > /dev/null
"$TAPE" replay "$DATA"/*.gz --quiet --no-report --out "$WORK/replay" --model "$WORK/train/model" \
  --store "$PG" --store "$REDIS" > /dev/null

cat > "$WORK/serve.yaml" <<'YAML'
auth: {read: open, keys: []}
rate_limits:
  per_key: {rate_per_second: 1000000, burst: 1000000}
  per_ip: {rate_per_second: 1000000, burst: 1000000}
YAML
"$TAPE" serve --store "$PG" --redis "$REDIS" --listen 127.0.0.1:0 --config "$WORK/serve.yaml" \
  > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 100); do grep -q '^listening ' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^listening //p' "$WORK/serve.out" | head -1)
[ -n "$ADDR" ] || { echo "bench_serve: tape serve did not start"; cat "$WORK/serve.err"; exit 1; }
BASE="http://$ADDR"

# The stored symbols and their time spans -> the bars ranges and the mixed scripts.
curl -sf "$BASE/api/v1/symbols" > "$WORK/symbols.json"
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
items = json.load(open(f"{work}/symbols.json"))["items"]
symbols = sorted(item["symbol"] for item in items)
def bars(item):  # every 1m bar of the symbol: [first event, last event + 1 min)
    return (f"/api/v1/bars/{item['symbol']}?timeframe=1m&from={item['first_time_ns']}"
            f"&to={item['last_time_ns'] + 60_000_000_000}")
ranges = [bars(item) for item in sorted(items, key=lambda i: i["symbol"])]
open(f"{work}/bars_path", "w").write(ranges[symbols.index("spot:BTCUSDT")] if "spot:BTCUSDT" in symbols else ranges[0])
def script(name, paths):
    body = ",\n".join(f'  "{p}"' for p in paths)
    open(f"{work}/{name}.lua", "w").write(
        "-- tape bench_serve: cycles through these paths (one Lua state per wrk thread)\n"
        f"local paths = {{\n{body}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")
# A: what a dashboard asks at the model's timeframe: latest 1m of every symbol, 4 times each, and each bars range once.
script("mix_1m", [f"/api/v1/latest/{s}?timeframe=1m" for s in symbols] * 4 + ranges)
# B: the same with every stored timeframe (1m, 5m, 15m) for latest: no model runs on 5m/15m, so their prediction is absent.
script("mix_all", [f"/api/v1/latest/{s}?timeframe={tf}" for s in symbols for tf in ("1m", "5m", "15m")] * 2 + ranges)
print(" ".join(symbols))
PY
BARS_PATH=$(cat "$WORK/bars_path")

cache() { curl -sf "$BASE/metrics" | sed -n 's/^tape_cache_requests_total{result="\(hit\|miss\)"} \([0-9.]*\)$/\1 \2/p' | sort | awk '{printf "%s ", $2}'; }
wrk_run() { # name url [script]  -> "req/s p50 p99 requests non2xx errors"
  local name=$1 url=$2 script=${3:-}
  if [ -n "$script" ]; then "${WRK[@]}" -s "$script" "$url" > "$WORK/wrk-$name.txt" 2>&1
  else "${WRK[@]}" "$url" > "$WORK/wrk-$name.txt" 2>&1; fi
  python3 - "$WORK/wrk-$name.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print(f"{rate:.0f} {ms(50):.3f} {ms(99):.3f} {total} {non2xx.group(1) if non2xx else 0} {'errors:' + errors.group(1).replace(' ', '') if errors else 'ok'}")
PY
}
report() { # label figures baseline_rate
  read -r rate p50 p99 total non2xx errors <<< "$2"
  printf '%-34s %7s req/s (%.2f x /health)  p50 %s ms  p99 %s ms  (%s requests, %s non-2xx, %s)\n' \
    "$1" "$rate" "$(echo "$rate / $3" | bc -l)" "$p50" "$p99" "$total" "$non2xx" "$errors"
}
if [[ ",$PARTS," == *,rest,* ]]; then
echo "serve: $ADDR; ${WRK[*]} (wrk and tape serve on the same 2 cores)"
health=$(wrk_run health "$BASE/health"); health_rate=${health%% *}
report "/health (baseline)" "$health" "$health_rate"
latest=$(wrk_run latest "$BASE/api/v1/latest/spot:BTCUSDT")
report "/api/v1/latest/spot:BTCUSDT" "$latest" "$health_rate"
echo "  goal: >= 20,000 req/s with p99 <= 5 ms"
bars=$(wrk_run bars "$BASE$BARS_PATH")
report "bars range (spot:BTCUSDT, all 1m)" "$bars" "$health_rate"
echo "  path: $BARS_PATH"
for mix in mix_1m mix_all; do
  read -r h0 m0 <<< "$(cache)"
  figures=$(wrk_run "$mix" "$BASE" "$WORK/$mix.lua")
  read -r h1 m1 <<< "$(cache)"
  report "mixed script $mix" "$figures" "$health_rate"
  python3 -c "import sys; h, m = float(sys.argv[1]), float(sys.argv[2]); print(f'  Redis hit rate {100 * h / (h + m):.2f}% ({h:.0f} hits, {m:.0f} misses; goal >= 95%)')" \
    "$(echo "$h1 - $h0" | bc)" "$(echo "$m1 - $m0" | bc)"
done
fi

[[ ",$PARTS," == *,ws,* ]] || exit 0
# WebSocket fan-out at ~15,000 ticks/s.
python3 - "$TAPE_REDIS_PORT" "$WORK/redis_sub.jsonl" 12 > "$WORK/redis_sub.out" 2>&1 <<'PY' &
# A raw RESP subscriber to tape:updates (pub/sub channels are server-wide, whatever the database number).
import json, socket, sys, time
port, out, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$12\r\ntape:updates\r\n")
sock.settimeout(0.2)
buffer, lines, deadline = b"", [], time.time() + seconds
def parse(buf):  # -> (item, rest) or None for an incomplete RESP value
    if not buf: return None
    end = buf.find(b"\r\n")
    if end < 0: return None
    kind, head, rest = buf[:1], buf[1:end], buf[end + 2:]
    if kind == b"*":
        items = []
        for _ in range(int(head)):
            got = parse(rest)
            if got is None: return None
            item, rest = got; items.append(item)
        return items, rest
    if kind == b"$":
        n = int(head)
        if len(rest) < n + 2: return None
        return rest[:n], rest[n + 2:]
    return head, rest
while time.time() < deadline:
    try:
        data = sock.recv(1 << 20)
    except socket.timeout:
        continue
    if not data: break
    now = time.time_ns(); buffer += data
    while (got := parse(buffer)) is not None:
        item, buffer = got
        if isinstance(item, list) and item[0] == b"message":
            lines.append(json.dumps({"arrival_ns": now, "message": json.loads(item[2])}))
open(out, "w").write("\n".join(lines) + "\n")
PY
SUB_PID=$!
# The 100 clients: scripts/ws_fanout_client.c (one epoll loop in C, a few % of a core) or, with
# BENCH_WS_CLIENT=python, scripts/ws_updates_client.py (one Python process: about half a core at 35,000 updates/s,
# which it takes from the server on these 2 cores, and a reader that falls behind blurs its kernel stamps).
if [ "${BENCH_WS_CLIENT:-c}" = python ]; then
  WS_CLIENT_NAME="one Python process (scripts/ws_updates_client.py)"
  python3 scripts/ws_updates_client.py "$ADDR" --symbol usdm:BTCUSDT --channels trades,quotes --clients 100 --seconds 12 \
    --kernel-stamps --out "$WORK/ws.jsonl" > "$WORK/ws.out" 2> "$WORK/ws.err" &
else
  WS_CLIENT_NAME="one C process (scripts/ws_fanout_client.c)"
  cc -O2 -Wall -o "$WORK/ws_fanout_client" scripts/ws_fanout_client.c
  "$WORK/ws_fanout_client" "${ADDR%:*}" "${ADDR##*:}" usdm:BTCUSDT trades,quotes 100 12 "$WORK/ws.jsonl" \
    > "$WORK/ws.out" 2> "$WORK/ws.err" &
fi
WS_PID=$!
# One more client in a process of its own: its arrival stamps do not wait for 99 other sockets' reads in Python.
python3 scripts/ws_updates_client.py "$ADDR" --symbol usdm:BTCUSDT --channels trades,quotes --clients 1 --seconds 12 \
  --kernel-stamps --out "$WORK/ws1.jsonl" > "$WORK/ws1.out" 2> "$WORK/ws1.err" &
WS1_PID=$!
for _ in $(seq 100); do grep -q connected "$WORK/ws.out" 2>/dev/null && grep -q connected "$WORK/ws1.out" 2>/dev/null && break; sleep 0.1; done
clients=$(curl -sf "$BASE/metrics" | sed -n 's/^tape_ws_clients \([0-9]*\).*/\1/p')
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
serve_cpu0=$(cpu_seconds "$SERVE_PID")
"$TAPE" feed-sim "$DATA/usdm-btcusdt_20240808.gz" --protocol binance --speed 55 --port 0 --port-file "$WORK/port" \
  > "$WORK/sim.out" 2> "$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(sed 's/.*://' "$WORK/port")
"$TAPE" live --feed "binance-usdm:btcusdt=ws://127.0.0.1:$PORT" --duration 8s --out "$WORK/live" --quiet ${PUBLISH_INTERVAL:+--redis-publish-interval $PUBLISH_INTERVAL} \
  --store "$REDIS" > /dev/null 2> "$WORK/live.err" || true
serve_cpu1=$(cpu_seconds "$SERVE_PID")
kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; SIM_PID=
wait "$WS_PID" || true; wait "$WS1_PID" || true; wait "$SUB_PID" || true
echo "WebSocket: $clients clients connected (tape_ws_clients: 100 in $WS_CLIENT_NAME + 1 alone, Python) to usdm:BTCUSDT trades,quotes;"
echo "  tape feed-sim --speed 55 (~15,000 msg/s) -> tape live --store $REDIS ${PUBLISH_INTERVAL:+--redis-publish-interval $PUBLISH_INTERVAL }-> Redis pub/sub -> tape serve /ws"
echo "  tape serve CPU during the session: $(echo "$serve_cpu1 - $serve_cpu0" | bc) s (user + system)"
python3 - "$WORK" <<'PY'
import glob, gzip, json, sys
work = sys.argv[1]
# Receive stamps of this session's own recording: an update of another process publishing on the same
# server-wide channel at the same time (other tests) is not counted.
stamps = set()
for name in glob.glob(f"{work}/live/recording/binance-usdm-*.gz"):
    for line in gzip.open(name, "rb"):
        if not line.startswith(b"#"):
            stamps.add(int(line.split(b" ", 1)[0]))
def latencies(path, client_key, channels=("trades", "quotes"), at="arrival_ns"):
    values, arrivals, foreign, per_client = [], [], 0, {}
    for line in open(path):
        if not line.strip(): continue
        row = json.loads(line); message = row["message"]
        if message.get("type", "update") != "update" or message.get("channel") not in channels: continue
        if message.get("symbol") != "usdm:BTCUSDT": continue
        stamp = message["data"]["receive_time_ns"]
        if stamp not in stamps: foreign += 1; continue
        values.append(row[at] - stamp); arrivals.append(row["arrival_ns"])
        key = row.get(client_key, 0); per_client[key] = per_client.get(key, 0) + 1
    values.sort()
    return values, arrivals, foreign, per_client
def pct(values, p): return values[min(len(values) - 1, int(p * len(values)))] / 1e6
def line(values):
    return (f"p50 {pct(values, .5):.2f} ms, p90 {pct(values, .9):.2f} ms, p99 {pct(values, .99):.2f} ms, "
            f"p99.9 {pct(values, .999):.2f} ms, max {values[-1] / 1e6:.2f} ms")
redis, _, redis_foreign, _ = latencies(f"{work}/redis_sub.jsonl", None)
ws, arrivals, ws_foreign, per_client = latencies(f"{work}/ws.jsonl", "client")
alone, _, _, _ = latencies(f"{work}/ws1.jsonl", "client")
alone_kernel = latencies(f"{work}/ws1.jsonl", "client", at="kernel_ns")[0]
ws_kernel = latencies(f"{work}/ws.jsonl", "client", at="kernel_ns")[0]
closes = [c for c in json.loads(open(f"{work}/ws.out").read().splitlines()[-1])["clients"] if c["close_code"] or c["reset"] or c["eof"]]
span = (max(arrivals) - min(arrivals)) / 1e9
print(f"  session: {len(stamps)} messages received by tape live")
print(f"  receive -> Redis PUBLISH seen (raw subscriber, baseline): {len(redis)} updates; {line(redis)}")
print("    by channel: " + "; ".join(
    f"{channel} p50 {pct(v, .5):.2f} ms, p99 {pct(v, .99):.2f} ms ({len(v)})"
    for channel in ("trades", "quotes") for v in [latencies(f"{work}/redis_sub.jsonl", None, (channel,))[0]]))
print(f"  receive -> the client alone in its process: {len(alone)} updates")
print(f"    at its socket (kernel stamp): {line(alone_kernel)}")
print(f"    read by it:                   {line(alone)}")
print(f"  receive -> WebSocket client (100 clients): {len(ws)} updates (goal p99 <= 5 ms)")
print(f"    at their sockets (kernel stamp): {line(ws_kernel)}")
print(f"    read by the clients:             {line(ws)}")
print("    by channel (100 clients): " + "; ".join(
    f"{channel} p50 {pct(v, .5):.2f} ms, p99 {pct(v, .99):.2f} ms"
    for channel in ("trades", "quotes") for v in [latencies(f"{work}/ws.jsonl", "client", (channel,), "kernel_ns")[0]])
    + " (at the sockets)")
print(f"  delivered: {len(ws)} trades/quotes updates in {span:.2f} s = {len(ws) / span:,.0f} updates/s across the clients "
      f"(per client {min(per_client.values())}-{max(per_client.values())}; {len(per_client)} clients; closed or cut: {len(closes)})")
if redis_foreign or ws_foreign:
    print(f"  not counted: {redis_foreign} / {ws_foreign} updates of another publisher on the channel")
PY
