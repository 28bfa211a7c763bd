#!/usr/bin/env python3
"""A longer Binance raw capture for the soak (scripts/soak.sh): the inputs' trade and bookTicker messages
(depth dropped: the connectors do not subscribe to it), merged by receive time and played LOOPS times in a row.
Loop k moves receive times and the E/T event times by k spans, and every id (t, u, U, a, f, l) by k x 10^9 so
that ids stay unique and increasing per symbol (each loop boundary is one counted id gap). After loop QUIET_AFTER
(0 = none) a quiet stretch of QUIET_SECONDS of stream time follows: the soak restarts the broker there, at zero lag.

  loop_capture.py OUT.gz LOOPS QUIET_AFTER QUIET_SECONDS INPUT.gz…     prints: messages span_seconds
"""
import gzip, re, sys

out_path, loops, quiet_after, quiet_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
lines = []
header = None
for path in sys.argv[5:]:
    for line in gzip.open(path, "rb"):
        if line.startswith(b"#"):
            header = header or line
            continue
        if b'@trade"' in line or b'@bookTicker"' in line:
            stamp, rest = line.split(b" ", 1)
            lines.append((int(stamp), rest))
lines.sort(key=lambda item: item[0])
first, last = lines[0][0], lines[-1][0]
span_ns = last - first + 1_000_000_000
FIELDS = re.compile(rb'"([ETtuUafl])":(\d+)')  # E/T: event times (ms); the others: ids
written = 0
with gzip.open(out_path, "wb", compresslevel=1) as out:
    if header:
        out.write(header)
    offset_ns = 0
    for loop in range(loops):
        shift_ms, shift_id = offset_ns // 1_000_000, loop * 1_000_000_000
        for stamp, rest in lines:
            if loop:
                rest = FIELDS.sub(lambda m: b'"%s":%d' % (m.group(1), int(m.group(2))
                                                           + (shift_ms if m.group(1) in b"ET" else shift_id)), rest)
            out.write(b"%d %s" % (stamp + offset_ns, rest))
            written += 1
        offset_ns += span_ns
        if loop + 1 == quiet_after:
            offset_ns += int(quiet_seconds * 1e9)
print(written, offset_ns / 1e9)
