#!/usr/bin/env python3
"""Reference data for TapeModel's end-to-end tests (independent of the Swift code).

usage: model_ref_features.py BARS.csv.gz OUT.csv [MAX_ROWS]

Reads 1-minute OHLC(V) bars (`timestamp,open,high,low,close[,volume]`, timestamp = bar end, UTC),
computes indicators with TA-Lib (SMA 20, EMA 20, RSI 14, MACD 12/26/9, Bollinger 20/2) and, with
numpy, the expected Tape feature vector of every bar (definitions in docs/model.md). Writes one CSV
row per bar: end_ns, OHLCV, indicators, then the expected features (`f_<name>`); NaN is empty.
"""
import csv, gzip, sys
from datetime import datetime, timezone
import numpy as np
import talib

FEATURES = ["ret_1", "ret_2", "ret_3", "ret_5", "ret_10", "bb_pos", "rsi", "macd_hist", "sma_dev", "ema_dev",
            "log_vol_ratio", "range", "tod_sin", "tod_cos"]

def main():
    src, dst = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    ends, o, h, l, c, v = [], [], [], [], [], []
    with gzip.open(src, "rt") as f:
        r = csv.reader(f)
        head = next(r)
        has_vol = "volume" in head
        for row in r:
            ts = datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
            ends.append(int(ts.timestamp()) * 1_000_000_000)
            o.append(float(row[1])); h.append(float(row[2])); l.append(float(row[3])); c.append(float(row[4]))
            v.append(float(row[5]) if has_vol else float("nan"))
            if limit and len(ends) >= limit:
                break
    o, h, l, c, v = map(np.array, (o, h, l, c, v))
    ends = np.array(ends, dtype=np.int64)
    n = len(c)
    sma = talib.SMA(c, 20); ema = talib.EMA(c, 20); rsi = talib.RSI(c, 14)
    macd, macds, macdh = talib.MACD(c, 12, 26, 9)
    bbu, bbm, bbl = talib.BBANDS(c, 20, 2.0, 2.0)

    feats = np.full((n, len(FEATURES)), np.nan)
    for j, k in enumerate([1, 2, 3, 5, 10]):
        feats[k:, j] = np.log(c[k:] / c[:-k])
    width = bbu - bbl
    with np.errstate(divide="ignore", invalid="ignore"):
        feats[:, 5] = np.where(width != 0, (c - bbm) / width, np.nan)
    feats[:, 6] = rsi / 100
    feats[:, 7] = macdh / c
    feats[:, 8] = (c - sma) / c
    feats[:, 9] = (c - ema) / c
    for i in range(n):
        if i >= 19 and np.isfinite(v[i]) and v[i] > 0:
            m = np.mean(v[i - 19:i + 1])
            if m > 0:
                feats[i, 10] = np.log(v[i] / m)
    feats[:, 11] = (h - l) / c
    minute = (ends // 60_000_000_000) % 1440
    feats[:, 12] = np.sin(2 * np.pi * minute / 1440)
    feats[:, 13] = np.cos(2 * np.pi * minute / 1440)

    def fmt(x):
        return "" if not np.isfinite(x) else repr(float(x))
    with open(dst, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["end_ns", "open", "high", "low", "close", "volume", "sma", "ema", "rsi", "macd", "macd_signal",
                    "macd_hist", "bb_upper", "bb_middle", "bb_lower"] + ["f_" + x for x in FEATURES])
        for i in range(n):
            w.writerow([str(ends[i])] + [fmt(x) for x in (o[i], h[i], l[i], c[i], v[i], sma[i], ema[i], rsi[i], macd[i],
                                                          macds[i], macdh[i], bbu[i], bbm[i], bbl[i])]
                       + [fmt(x) for x in feats[i]])

if __name__ == "__main__":
    main()
