#!/usr/bin/env python3
"""Independent reference for Tape's graph tests.

usage: graph_reference.py INPUT OUTDIR --timeframes 5s,15s [--sma 20 --ema 20 --rsi 14 --macd 12,26,9 --bb 20,2]

INPUT is a bar file (timestamp,open,high,low,close[,volume]; timestamp = bar OPEN, UTC, as TapeRecordings reads it) or a raw Binance
capture (`<recv ns> <json>` lines; `@trade` messages decoded here with json). Bars are aggregated in
UTC-aligned windows (trades by trade time T ms; 1-minute bars by their open time); every trade is
used (no late rule: the Swift test uses a lateness that makes no trade late). Writes OUTDIR/bars.csv,
OUTDIR/indicators.csv and, for captures, OUTDIR/trades.csv (event_ns,receive_ns,price,size).
"""
import argparse, gzip, json, math, os, datetime
import numpy as np, talib

def tf_ns(s):
    n, u = int(s[:-1]), s[-1]
    return n * {"s": 1, "m": 60, "h": 3600}[u] * 10**9

def parse_ts(s):
    d = datetime.datetime.fromisoformat(s.strip()).replace(tzinfo=datetime.timezone.utc)
    return int(round(d.timestamp())) * 10**9 + (d.microsecond * 1000 if False else 0)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input"); ap.add_argument("outdir")
    ap.add_argument("--timeframes", default="1m,5m,15m")
    ap.add_argument("--sma", type=int, default=20); ap.add_argument("--ema", type=int, default=20)
    ap.add_argument("--rsi", type=int, default=14); ap.add_argument("--macd", default="12,26,9")
    ap.add_argument("--bb", default="20,2")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    items = []  # (key_time_ns, o, h, l, c, v, pq, n)
    with gzip.open(a.input, "rt") as f:
        first = f.readline()
        if first.startswith("timestamp"):
            cols = first.strip().split(",")
            hasv = "volume" in cols
            for line in f:
                p = line.strip().split(",")
                if len(p) < 5: continue
                d = datetime.datetime.fromisoformat(p[0]).replace(tzinfo=datetime.timezone.utc)
                start = (int(d.timestamp()) // 60 * 60) * 10**9   # timestamp = bar OPEN (docs/formats.md)
                o, h, l, c = map(float, p[1:5])
                v = float(p[5]) if hasv else float("nan")
                items.append((start, o, h, l, c, v, (h + l + c) / 3 * v, 1))
        else:
            tr = open(os.path.join(a.outdir, "trades.csv"), "w")
            tr.write("event_ns,receive_ns,price,size\n")
            for line in [first] + list(f):
                sp = line.find(" ")
                if sp < 0 or "@trade" not in line[:sp + 80]: continue
                try: msg = json.loads(line[sp + 1:])
                except Exception: continue
                if not str(msg.get("stream", "")).endswith("@trade"): continue
                d = msg["data"]
                t = int(d["T"]) * 10**6; pr = float(d["p"]); q = float(d["q"])
                tr.write(f"{t},{int(line[:sp])},{d['p']},{d['q']}\n")
                items.append((t, pr, pr, pr, pr, q, pr * q, 1))
            tr.close()
    fast, slow, sig = map(int, a.macd.split(","))
    bbp, bbk = a.bb.split(","); bbp = int(bbp); bbk = float(bbk)
    bars_out = open(os.path.join(a.outdir, "bars.csv"), "w")
    ind_out = open(os.path.join(a.outdir, "indicators.csv"), "w")
    bars_out.write("timeframe,start_ns,end_ns,open,high,low,close,volume,vwap,trades\n")
    ind_out.write("timeframe,end_ns,sma,ema,rsi,macd,macd_signal,macd_hist,bb_middle,bb_upper,bb_lower\n")
    for tfs in a.timeframes.split(","):
        T = tf_ns(tfs)
        wins = {}
        order = []
        for (t, o, h, l, c, v, pq, n) in sorted(items, key=lambda x: x[0]) if False else items:
            k = t // T
            w = wins.get(k)
            if w is None:
                wins[k] = [o, h, l, c, v, pq, n]; order.append(k)
            else:
                w[1] = max(w[1], h); w[2] = min(w[2], l); w[3] = c; w[4] += v; w[5] += pq; w[6] += n
        keys = sorted(wins)
        closes = []
        for k in keys:
            o, h, l, c, v, pq, n = wins[k]
            vw = float("nan") if (math.isnan(v) or v == 0) else pq / v
            bars_out.write(f"{tfs},{k*T},{(k+1)*T},{o!r},{h!r},{l!r},{c!r},{v!r},{vw!r},{n}\n")
            closes.append(c)
        x = np.array(closes, dtype=float)
        sma = talib.SMA(x, a.sma); ema = talib.EMA(x, a.ema); rsi = talib.RSI(x, a.rsi)
        m, ms, mh = talib.MACD(x, fast, slow, sig)
        bu, bm, bl = talib.BBANDS(x, bbp, bbk, bbk, 0)
        for i, k in enumerate(keys):
            vals = [sma[i], ema[i], rsi[i], m[i], ms[i], mh[i], bm[i], bu[i], bl[i]]
            ind_out.write(f"{tfs},{(k+1)*T}," + ",".join("" if math.isnan(z) else repr(float(z)) for z in vals) + "\n")
    bars_out.close(); ind_out.close()

if __name__ == "__main__":
    main()
