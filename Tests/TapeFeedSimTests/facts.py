"""Independent facts about the shared data, for the feed-sim tests (read with Python's gzip/json/csv,
not with Tape's readers).

    python3 facts.py capture FILE STREAM[,STREAM…]   -> JSON: {"messages": [raw text…], "trades": [[id, price]…]}
    python3 facts.py bars FILE                       -> JSON: [["YYYY-MM-DD HH:MM:SS" (start, US/Eastern),
                                                                 open, high, low, close, volume|null]…]
"""
import csv
import datetime
import gzip
import json
import sys
import zoneinfo


def capture(path, streams):
    wanted = {s.lower() for s in streams.split(",")}
    messages, trades = [], []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            _, _, message = line.partition(" ")
            try:
                obj = json.loads(message)
            except ValueError:
                continue
            stream = obj.get("stream") if isinstance(obj, dict) else None
            if not stream or stream.lower() not in wanted:
                continue
            messages.append(message)
            if stream.endswith("@trade"):
                trades.append([obj["data"]["t"], float(obj["data"]["p"])])
    return {"messages": messages, "trades": trades}


def bars(path):
    eastern = zoneinfo.ZoneInfo("America/New_York")
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = row["timestamp"].replace("+00:00", "")
            start = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
            local = start.astimezone(eastern).strftime("%Y-%m-%d %H:%M:%S")
            volume = float(row["volume"]) if row.get("volume") not in (None, "") else None
            rows.append([local, float(row["open"]), float(row["high"]), float(row["low"]),
                         float(row["close"]), volume])
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "capture":
        print(json.dumps(capture(sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(bars(sys.argv[2])))
