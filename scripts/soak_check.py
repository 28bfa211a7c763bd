#!/usr/bin/env python3
"""The soak's checks (scripts/soak.sh), printed one per line, `PASS`/`FAIL` first; exit 1 on any FAIL.

  soak_check.py SOAK_DIR TAPE POSTGRES_URL SOAK_SECONDS LEFT_PIDS

1. feed-sim -> recording: every message feed-sim served is in the ingest's recording (count, and every recorded
   (stream, id) is a message of the served capture, none twice);
2. recording -> PostgreSQL: every tick of `tape replay` of the recording is stored once (count, no duplicate key);
3. PostgreSQL = replay: bars, indicators and anomalies (every symbol) equal the replay's CSVs, row by row;
4. RSS flat: per process (per pid), after a warm-up of 30 s, the growth outside the faults (each fault's start - 1 s
   .. its recovery + 30 s: a worker that takes over a killed member's partition holds a second graph, and the
   allocator keeps what it grew to) <= max(64 MB, 50% of the warm-up RSS); the whole growth is printed beside it;
5. API: no error (non-200) outside the fault windows (fault start - 1 s .. recovered + 5 s), after the warm-up
   (20 s, and until the first 200: before the first tick is stored the symbol is unknown, a 404 by the spec);
6. /ws: the bars:1m of spot:BTCUSDT received over all connections (snapshot + updates) leave no gap: every
   stored bar between the first and the last one received was received;
7. no process of the stack left.
"""
import csv, glob, gzip, json, os, re, subprocess, sys

folder, tape, postgres, soak_seconds, left = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
state = f"{folder}/state"
failures = 0


def report(ok, text):
    global failures
    failures += 0 if ok else 1
    print(f"{'PASS' if ok else 'FAIL'}  {text}", flush=True)


def sql(query):
    server, database = postgres.rsplit("/", 1)
    host, port = server.rsplit("@", 1)[1].split(":")
    text = subprocess.run(["psql", "-h", host, "-p", port, "-U", "postgres", "-d", database, "-AtF", ",", "-c", query],
                          check=True, capture_output=True, text=True).stdout
    return [line.split(",") for line in text.splitlines()]


ID = re.compile(rb'"stream":"([^"]+)".*?"([tu])":(\d+)')


def keys(lines):
    found = []
    for line in lines:
        if line.rstrip().endswith(b"#garbled"):
            continue  # cut in half by feed-sim: counted, rejected by the ingest, its id may be cut too
        match = ID.search(line)
        if match:
            found.append((match.group(1), match.group(3)))
    return found


# Faults and recovery times.
faults = [line.split() for line in open(f"{folder}/faults.log") if line.strip()]
print("faults injected (name, recovery s):", ", ".join(f"{name} {recovery}" for name, _, _, recovery in faults))
stats = json.load(open(f"{state}/feed-sim.stats.json"))
totals = stats["totals"]
print(f"feed-sim: {totals['messages_served']} messages served over {totals['connections']} connections, "
      f"{totals['drops']} drops, {totals['garbled']} garbled, {totals['messages_skipped_disconnected']} skipped while "
      f"disconnected (a real feed's gap), of {stats['recording']['messages']}")

# 1. Served -> recorded.
runs = sorted(glob.glob(f"{state}/runs/ingest-*"))
exits = [line.split("ended ", 1)[1].split(";")[0] for line in open(f"{state}/ingest.log") if line.startswith("supervise:")
         and " ended (" in line]
report(len(runs) == 1, f"one ingest session ({len(runs)} run folders; the ingest {'ended ' + ', '.join(exits) if exits else 'never ended'}"
                       " before the soak stopped it)")
recordings = [sorted(glob.glob(f"{run}/recording/*.gz")) for run in runs]
recording = recordings[-1]
recorded = [line.split(b" ", 1)[1] for files in recordings for path in files if "clock-" not in path
            for line in gzip.open(path, "rb") if line[:1].isdigit()]
report(len(recorded) == totals["messages_served"],
       f"every message served is in the recording: {len(recorded)} recorded, {totals['messages_served']} served")
served_keys = set(keys(line for line in gzip.open(f"{folder}/feed.gz", "rb")))
recorded_keys = keys(recorded)
report(len(recorded_keys) == len(set(recorded_keys)) and set(recorded_keys) <= served_keys,
       f"recorded messages are the capture's, none twice ({len(recorded_keys)} with ids, "
       f"{len(recorded_keys) - len(set(recorded_keys))} twice, {len(set(recorded_keys) - served_keys)} foreign)")

# 2 and 3. Replay of the recording against PostgreSQL.
if len(runs) != 1:
    report(False, "PostgreSQL against `tape replay`: not comparable, the ingest's session was cut in "
                  f"{len(runs)} (a crashed session sends no end mark)")
    print(f"soak: {failures} check(s) FAILED")
    sys.exit(1)
replay = f"{folder}/replay"
subprocess.run([tape, "replay", *recording, "--out", replay, "--quiet", "--no-report", "--config", "config/pipeline.yaml",
                "--trading", "config/trading.yaml"], check=False, capture_output=True)
summary = json.load(open(f"{replay}/summary.json"))
delivered = summary["ticks_delivered"]
stored = int(sql("SELECT count(*) FROM ticks")[0][0])
twice = int(sql("SELECT count(*) FROM (SELECT symbol, receive_ns, sequence, kind FROM ticks "
                "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d")[0][0])
report(stored == delivered and twice == 0, f"every recorded tick in PostgreSQL once: {stored} stored, {delivered} "
                                           f"in the replay, {twice} twice")


def nanos(column):
    return f"(extract(epoch from {column}) * 1000000000)::bigint"


def seconds(timeframe):
    return int(timeframe[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[timeframe[-1]]


def compare(name, query, numeric, key):
    rows = list(csv.reader(open(f"{replay}/{name}.csv")))[1:]
    rows.sort(key=key)
    table = sql(query)
    if len(rows) != len(table):
        return f"{name}: {len(table)} stored, {len(rows)} in the replay"
    for index, (got, want) in enumerate(zip(table, rows)):
        for column, (a, b) in enumerate(zip(got, want)):
            same = ((float(a) if a else None) == (float(b) if b else None)) if column in numeric else a == b
            if not same:
                return f"{name} row {index} column {column}: stored {a!r}, replay {b!r}"
    return None


differences = [compare("bars", f"SELECT symbol, timeframe, {nanos('time')}, {nanos('end_time')}, open, high, low, close, "
                               "volume, vwap, trades FROM bars ORDER BY symbol, time, end_time - time",
                       {4, 5, 6, 7, 8, 9}, lambda r: (r[0], int(r[2]), seconds(r[1]))),
               compare("indicators", f"SELECT symbol, timeframe, {nanos('time')}, sma, ema, rsi, macd, macd_signal, "
                                     "macd_hist, bb_middle, bb_upper, bb_lower, session_vwap FROM indicators i ORDER BY "
                                     "symbol, time, (SELECT end_time - time FROM bars b WHERE b.symbol = i.symbol AND "
                                     "b.timeframe = i.timeframe AND b.end_time = i.time)",
                       set(range(3, 13)), lambda r: (r[0], int(r[2]), seconds(r[1]))),
               compare("anomalies", "SELECT symbol, time_ns, rule, value, threshold, severity FROM anomalies "
                                    "ORDER BY time_ns, symbol, rule", {3, 4}, lambda r: (int(r[1]), r[0], r[2]))]
bars = int(sql("SELECT count(*) FROM bars")[0][0])
report(not any(differences), f"PostgreSQL outputs equal `tape replay` of the recording (every symbol; {bars} bars): "
                             + ("; ".join(d for d in differences if d) or "bars, indicators, anomalies equal"))

# 4. RSS.
series = {}
for line in open(f"{folder}/rss.log"):
    wall, name, pid, rss = line.split()
    series.setdefault((name, pid), []).append((int(wall), int(rss)))
flat = True
lines = []
rss_windows = [(float(start) - 1, float(end) + (float(recovery) if recovery != "timeout" else 60) + 30)
               for _, start, end, recovery in faults]
for (name, pid), points in sorted(series.items()):
    warm = [(wall, rss) for wall, rss in points if wall - points[0][0] >= 30e9]
    peak = max(rss for _, rss in points)
    if len(warm) < 2:
        lines.append(f"{name}[{pid}] max {peak // 1024} MB ({len(points)} samples, too short to judge)")
        continue
    growth = max(rss for _, rss in warm) - warm[0][1]
    # Increases between two samples, unless that interval touches a fault's window.
    steady = sum(max(0, b - a) for (ta, a), (tb, b) in zip(warm, warm[1:])
                 if not any(low <= tb / 1e9 and ta / 1e9 <= high for low, high in rss_windows))
    bound = max(64 * 1024, warm[0][1] // 2)
    flat &= steady <= bound
    lines.append(f"{name}[{pid}] max {peak // 1024} MB, +{growth // 1024} MB after warm-up, "
                 f"+{steady // 1024} MB outside the faults (bound {bound // 1024} MB)")
report(flat, "RSS flat: " + "; ".join(lines))

# 5. API errors outside the fault windows.
windows = [(float(start) - 1, float(end) + (float(recovery) if recovery != "timeout" else 60) + 5)
           for _, start, end, recovery in faults]
calls = [line.split() for line in open(f"{folder}/api.log")]
first = int(calls[0][0]) / 1e9 if calls else 0
answered = [int(call[0]) / 1e9 for call in calls if call[2] == "200"]
warmed = max(first + 20, answered[0] if answered else float("inf"))
outside = [call for call in calls if int(call[0]) / 1e9 > warmed
           and not any(low <= int(call[0]) / 1e9 <= high for low, high in windows)]
errors = [call for call in outside if call[2] != "200"]
inside = len(calls) - len(outside)
report(calls and not errors, f"API: {len(calls)} calls, {len(outside)} outside fault windows with {len(errors)} errors "
                             f"({inside} in the windows or the warm-up: "
                             f"{sum(1 for c in calls if c[2] != '200')} non-200 in all)"
       + (f"; first errors {errors[:3]}" if errors else ""))

# 6. WS bars without a gap.
seen, connections = set(), set()
for line in open(f"{folder}/ws.jsonl"):
    row = json.loads(line)
    connections.add(row["connection"])
    message = row["message"]
    if message.get("channel") != "bars:1m":
        continue
    data = message.get("data")
    for bar in data if isinstance(data, list) else [data]:
        if bar and "end_ns" in bar:
            seen.add(int(bar["end_ns"]))
if seen:
    stored_bars = {int(row[0]) for row in sql(f"SELECT {nanos('end_time')} FROM bars WHERE symbol = 'spot:BTCUSDT' "
                                              f"AND timeframe = '1m' AND end_time >= to_timestamp({min(seen)} / 1e9) "
                                              f"AND end_time <= to_timestamp({max(seen)} / 1e9)")}
    missing = sorted(stored_bars - seen)
    report(not missing, f"/ws: {len(seen)} bars:1m over {len(connections)} connections, {len(missing)} stored bars "
                        f"in between never received" + (f" (first {missing[:3]})" if missing else ""))
else:
    report(False, f"/ws: no bar received over {len(connections)} connections")

# 7. Crashes: the supervisors' exits other than the two kill -9 the soak made (work-1, serve: exit 137 once each).
ended = []
for log in sorted(glob.glob(f"{state}/*.log")):
    name = os.path.basename(log)[:-4]
    for line in open(log, errors="replace"):
        if line.startswith("supervise:") and " ended (exit " in line:
            ended.append((name, line.split(" ended (exit ", 1)[1].split(" ", 1)[0]))
unexpected = list(ended)
for killed in (("work-1", "137"), ("serve", "137")):
    if killed in unexpected:
        unexpected.remove(killed)
signals = {"134": "SIGABRT", "137": "SIGKILL", "139": "SIGSEGV"}
report(not unexpected, "no process ended on its own (restarted by its supervisor): "
       + (", ".join(f"{name} exit {code}{' ' + signals[code] if code in signals else ''}" for name, code in unexpected)
          if unexpected else "none besides the two kill -9"))

report(left == "none", f"no process of the stack left ({left})")
print(f"soak: {'PASSED' if failures == 0 else f'{failures} check(s) FAILED'}")
sys.exit(1 if failures else 0)
