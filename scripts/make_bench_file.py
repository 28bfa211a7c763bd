#!/usr/bin/env python3
"""Builds the benchmark recording: the real Binance captures of ../shared/data/binance-feed merged by
receive time and repeated PASSES times, each pass shifted forward in time (receive ns, E/T ms) and in
ids (t, u, U, lastUpdateId) so it reads as one long, valid, monotone session. Writes plain text to
stdout; the caller pipes it through gzip. Usage: make_bench_file.py SHARED_DATA_DIR PASSES"""
import gzip, heapq, os, re, sys

data, passes = sys.argv[1], int(sys.argv[2])
files = sorted(os.path.join(data, 'binance-feed', f) for f in os.listdir(os.path.join(data, 'binance-feed')) if f.endswith('.gz'))
lines = []
for i, f in enumerate(files):
    # One merged file has no per-file venue: keep markets apart by prefixing the symbol with the
    # market of the file name (spot-/usdm-/cm-), e.g. "s":"SPOT_BTCUSDT".
    market = os.path.basename(f).split('-')[0].upper().encode()
    with gzip.open(f, 'rb') as fh:
        for n, line in enumerate(fh):
            sp = line.index(b' ')
            line = line.replace(b'"s":"', b'"s":"' + market + b'_')
            lines.append((int(line[:sp]), i, n, line))
lines.sort(key=lambda x: (x[0], x[1], x[2]))
t0, t1 = lines[0][0], lines[-1][0]
span_ns = (t1 - t0) + 60_000_000_000            # one minute of quiet between passes
span_ms = span_ns // 1_000_000
span_ns = span_ms * 1_000_000
times = re.compile(rb'"([ET])":(\d{13})')
ids = re.compile(rb'"(t|u|U|lastUpdateId)":(\d+)')
out = sys.stdout.buffer
for p in range(passes):
    dms, dns, did = p * span_ms, p * span_ns, p * 100_000_000_000
    tsub = (lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + dms)) if p else None
    isub = (lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + did)) if p else None
    buf = []
    for t, _, _, line in lines:
        if p:
            sp = line.index(b' ')
            body = ids.sub(isub, times.sub(tsub, line[sp + 1:]))
            line = b'%d ' % (t + dns) + body
        buf.append(line)
        if len(buf) >= 20000:
            out.write(b''.join(buf)); buf.clear()
    out.write(b''.join(buf))
