#!/usr/bin/env python3
"""Independent check of Tape's tick-level fills against the raw Binance capture they were made on.

Usage: check_fills.py CAPTURE RUN_DIR LATENCY_NS

Reads the capture itself (bookTicker quotes and trade prints, in file order, with their receive stamps),
and the run's orders.csv and fills.csv, and checks each scripted order (tag = its name) by the fill rules
of docs/backtesting.md, computed here from the file:
  - market buy "m_buy" / market sell "m_sell": arrives at submission + latency and takes the quote in force
    then (the last quote received at or before the arrival), up to its displayed size, then each later
    quote's displayed size at that quote's price and receive time, until filled: every fill equal
    (time, price, quantity), including the partial ones;
  - limit buy "never" far below the market: no fill, and no quote ask <= limit nor trade < limit after it
    arrived (it was right never to fill);
  - IOC limit buy "ioc" at the bid: no fill, canceled at its arrival;
  - resting limit sell "rest" above the ask: its first fill is at the limit price, at the first event after
    arrival whose bid >= limit (rule quote, size <= the bid size) or whose trade prints above the limit
    (rule trade, size <= the print).
Prints a line per check; exits 1 on the first mismatch.
"""
import csv, gzip, json, sys


def main():
    capture, run_dir, latency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    events = []   # (receive_ns, kind, price fields)
    with gzip.open(capture, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            stamp, _, raw = line.partition(" ")
            try:
                data = json.loads(raw).get("data", {})
            except ValueError:
                continue
            kind = data.get("e")
            if kind == "bookTicker":
                events.append((int(stamp), "quote", float(data["b"]), float(data["B"]), float(data["a"]), float(data["A"])))
            elif kind == "trade" and data.get("X", "MARKET") == "MARKET":
                events.append((int(stamp), "trade", float(data["p"]), float(data["q"])))
    orders = {}
    for row in csv.DictReader(open(f"{run_dir}/orders.csv")):
        orders.setdefault(row["tag"], []).append(row)
    fills = {}
    for row in csv.DictReader(open(f"{run_dir}/fills.csv")):
        fills.setdefault(row["tag"], []).append(row)

    def fail(message):
        print("MISMATCH", message)
        sys.exit(1)

    def submitted(tag):
        rows = [r for r in orders.get(tag, []) if r["status"] == "submitted"]
        if len(rows) != 1:
            fail(f"{tag}: {len(rows)} submissions")
        return rows[0]

    def in_force(at):
        last = None
        for event in events:
            if event[0] > at:
                break
            if event[1] == "quote":
                last = event
        return last

    for tag, side in (("m_buy", "buy"), ("m_sell", "sell")):
        order = submitted(tag)
        arrival = int(order["time_ns"]) + latency
        remaining = float(order["quantity"])
        expected = []
        quote = in_force(arrival)
        candidates = [quote] + [e for e in events if e[0] > arrival and e[1] == "quote"]
        for q in candidates:
            if remaining <= 1e-12:
                break
            price, size = (q[4], q[5]) if side == "buy" else (q[2], q[3])
            take = min(remaining, size)
            expected.append((max(q[0], arrival), price, take))
            remaining -= take
        got = [(int(f["time_ns"]), float(f["price"]), float(f["quantity"])) for f in fills.get(tag, [])]
        if len(got) != len(expected):
            fail(f"{tag}: {len(got)} fills, expected {len(expected)}: {got[:3]} vs {expected[:3]}")
        for g, e in zip(got, expected):
            if g[0] != e[0] or g[1] != e[1] or abs(g[2] - e[2]) > 1e-9:
                fail(f"{tag}: fill {g} expected {e}")
        if any(int(f["arrival_ns"]) != arrival for f in fills[tag]) or any(f["rule"] != "quote" for f in fills[tag]):
            fail(f"{tag}: arrival or rule")
        print(f"ok {tag}: {len(got)} fills ({sum(1 for g in got if g[2] < float(order['quantity']))} partial) at the quotes after {latency} ns")

    order = submitted("never")
    arrival, limit = int(order["time_ns"]) + latency, float(order["limit_price"])
    if fills.get("never"):
        fail("never: filled")
    crossed = [e for e in events if e[0] >= arrival and ((e[1] == "quote" and e[4] <= limit) or (e[1] == "trade" and e[2] < limit))]
    if crossed:
        fail(f"never: the market crossed {limit} at {crossed[0]}")
    print(f"ok never: limit {limit} never filled and the file never crossed it")

    order = submitted("ioc")
    arrival = int(order["time_ns"]) + latency
    if fills.get("ioc"):
        fail("ioc: filled")
    canceled = [r for r in orders["ioc"] if r["status"] == "canceled"]
    if len(canceled) != 1 or int(canceled[0]["time_ns"]) != arrival:
        fail(f"ioc: canceled rows {canceled}")
    print("ok ioc: canceled at its arrival, no fill")

    order = submitted("rest")
    arrival, limit = int(order["time_ns"]) + latency, float(order["limit_price"])
    first = None
    for e in events:
        if e[0] <= arrival:
            continue
        if e[1] == "quote" and e[2] >= limit:
            first = (e[0], limit, "quote", e[3]); break
        if e[1] == "trade" and e[2] > limit:
            first = (e[0], limit, "trade", e[3]); break
    got = fills.get("rest", [])
    if first is None:
        if got:
            fail("rest: filled but the market never reached it")
        print("ok rest: the market never reached it")
    else:
        f = got[0] if got else fail("rest: never filled")
        if int(f["time_ns"]) != first[0] or float(f["price"]) != first[1] or f["rule"] != first[2] or float(f["quantity"]) > first[3] + 1e-12:
            fail(f"rest: first fill {dict(f)} expected {first}")
        print(f"ok rest: first fill at the limit {limit} by {first[2]} at {first[0]}")


if __name__ == "__main__":
    main()
