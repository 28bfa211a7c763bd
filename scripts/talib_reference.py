#!/usr/bin/env python3
"""Independent reference for Tape's bars and indicators.

Aggregates bars from a recording in plain Python — raw Binance captures (trades by exchange trade
time `T`, UTC-aligned windows) or 1-minute bar files (`timestamp` = bar open) — and computes TA-Lib's
SMA, EMA, RSI, MACD and BBANDS over each timeframe's closes. Writes CSV rows
`timeframe,start_ns,end_ns,open,high,low,close,volume,vwap,trades,sma,ema,rsi,macd,macd_signal,macd_hist,bb_middle,bb_upper,bb_lower`
(empty = no value). Numbers are printed with repr() (shortest round trip).

usage: talib_reference.py FILE OUT.csv --timeframes 5s,15s [--sma 20 --ema 20 --rsi 14 --macd 12,26,9 --bb 20,2]
"""
import argparse, csv, gzip, io, json, math
from datetime import datetime, timezone
import numpy as np
import talib

ap = argparse.ArgumentParser()
ap.add_argument('file'); ap.add_argument('out')
ap.add_argument('--timeframes', default='1m,5m,15m')
ap.add_argument('--sma', type=int, default=20); ap.add_argument('--ema', type=int, default=20)
ap.add_argument('--rsi', type=int, default=14); ap.add_argument('--macd', default='12,26,9')
ap.add_argument('--bb', default='20,2')
a = ap.parse_args()

def tf_ns(s):
    n, u = int(s[:-1]), s[-1]
    return n * {'s': 1, 'm': 60, 'h': 3600}[u] * 1_000_000_000

def fmt(x):
    if x is None or (isinstance(x, float) and math.isnan(x)): return ''
    if isinstance(x, (int, str)): return str(x)
    if x == 0: return '0'
    r = repr(float(x))
    return r[:-2] if r.endswith('.0') else r

raw = gzip.open(a.file, 'rb').read()
first = raw[:200].lstrip()
windows = {}   # tf -> {start: [o,h,l,c,vol,pv,n,volknown]}
tfs = [tf_ns(t) for t in a.timeframes.split(',')]
names = dict(zip(tfs, a.timeframes.split(',')))
for tf in tfs: windows[tf] = {}

def add(tf, start, o, h, l, c, v, pv, n, vk):
    w = windows[tf].get(start)
    if w is None:
        windows[tf][start] = [o, h, l, c, v, pv, n, vk]
    else:
        w[1] = max(w[1], h); w[2] = min(w[2], l); w[3] = c; w[4] += v; w[5] += pv; w[6] += n; w[7] = w[7] and vk

if first[:1].isdigit() and b' ' in first[:25]:
    for line in io.BytesIO(raw):
        sp = line.find(b' ')
        try: m = json.loads(line[sp + 1:])
        except Exception: continue
        if not m.get('stream', '').endswith('@trade'): continue
        d = m['data']; t = d['T'] * 1_000_000; p = float(d['p']); q = float(d['q'])
        for tf in tfs: add(tf, t - t % tf, p, p, p, p, q, p * q, 1, True)
else:
    rows = csv.DictReader(io.StringIO(raw.decode()))
    for r in rows:
        ts = r['timestamp'].replace(' ', 'T')
        if not (ts.endswith('Z') or '+' in ts[10:]): ts += '+00:00'
        dt = datetime.fromisoformat(ts)
        start = int(dt.timestamp()) * 1_000_000_000
        o, h, l, c = float(r['open']), float(r['high']), float(r['low']), float(r['close'])
        vk = 'volume' in r and r['volume'] not in (None, '')
        v = float(r['volume']) if vk else 0.0
        typ = (h + l + c) / 3
        for tf in tfs:
            if tf >= 60_000_000_000: add(tf, start - start % tf, o, h, l, c, v, typ * v if vk else 0.0, 1, vk)

f, s, g = (int(x) for x in a.macd.split(',')); bp, bk = a.bb.split(','); bp = int(bp); bk = float(bk)
with open(a.out, 'w') as out:
    out.write('timeframe,start_ns,end_ns,open,high,low,close,volume,vwap,trades,sma,ema,rsi,macd,macd_signal,macd_hist,bb_middle,bb_upper,bb_lower\n')
    for tf in tfs:
        starts = sorted(windows[tf])
        closes = np.array([windows[tf][k][3] for k in starts], dtype=float)
        sma = talib.SMA(closes, a.sma); ema = talib.EMA(closes, a.ema); rsi = talib.RSI(closes, a.rsi)
        macd, sig, hist = talib.MACD(closes, f, s, g)
        up, mid, lo = talib.BBANDS(closes, bp, bk, bk, 0)
        for i, k in enumerate(starts):
            o, h, l, c, v, pv, n, vk = windows[tf][k]
            vol = v if vk else float('nan')
            vwap = pv / v if (vk and v > 0) else float('nan')
            vals = [names[tf], k, k + tf, o, h, l, c, vol, vwap, n, sma[i], ema[i], rsi[i], macd[i], sig[i], hist[i], mid[i], up[i], lo[i]]
            out.write(','.join(fmt(x) for x in vals) + '\n')
