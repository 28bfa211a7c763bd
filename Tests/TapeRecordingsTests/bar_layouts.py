#!/usr/bin/env python3
"""Writes one real bar file in the layouts of vendors and platforms, with Python's own csv and datetime
(independent of Tape's parsers), for the bar-layout tests.

usage: bar_layouts.py SOURCE.csv.gz OUTDIR ROWS

SOURCE is a Tape bar file (`timestamp,open,high,low,close[,volume]`, timestamp = the bar's open, UTC);
its first ROWS rows are written to OUTDIR as:
  canonical.csv            the rows as they are (the reference every other layout must read the same as)
  aliases-order-extra.csv  mixed-case aliases, columns in another order, two extra columns
  letters.tsv              tab, `time,o,h,l,c,v`
  semicolon.csv            `;`, `timestamp_utc`
  crlf-bom.csv             UTF-8 BOM, CRLF line ends, `Date` + `Time` columns
  iso-zone.csv             `ts_event` = `2021-12-31T23:01:00Z`
  iso-offset.csv           `datetime` = local time at +02:00 (`2022-01-01T01:01:00+02:00`)
  plain-seconds.csv        `YYYY-MM-DD HH:MM:SS`
  histdata.csv             no header, `;`, `YYYYMMDD HHMMSS` (HistData)
  metatrader.csv           no header, `YYYY.MM.DD,HH:MM` (MetaTrader 4 export)
  mt5.tsv                  MetaTrader 5 export: `<DATE>\t<TIME>\t…<TICKVOL>\t<VOL>\t<SPREAD>`
  epoch-s.csv … epoch-ns.csv   `open_time` as integer seconds, ms, µs, ns
  binance-klines.csv       no header, the 12 columns of Binance klines (ms open and close times)
  bar-close.csv            the bar's CLOSE time (`--bar-time close`)
  columns-named.csv        header `a,b,c,d,e[,f]` (`--columns time=a,…`)
  columns-numbered.csv     no header, `[volume,]close,low,high,open,time` (`--columns` by number)
  a.csv, b.csv, two-symbols.csv   symbol A (the rows) and B (prices doubled), apart and in one file with
                           a `symbol` column, rows interleaved by time
  bars-5m.csv, bars-1d.csv bars aggregated to 5 minutes / one day (`date` column only), and
  bars-5m.expected.json, bars-1d.expected.json   their events as Tape must read them, as text:
                           [end ns, open, high, low, close, volume ("" when none)]
"""
import csv
import datetime
import gzip
import json
import os
import sys

UTC = datetime.timezone.utc


def main():
    source, outdir, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(outdir, exist_ok=True)
    with gzip.open(source, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for _, r in zip(range(limit), reader)]
    has_volume = len(header) == 6
    bars = []
    for r in rows:
        opened = datetime.datetime.fromisoformat(r[0])
        if opened.tzinfo is None:
            opened = opened.replace(tzinfo=UTC)
        bars.append((opened.astimezone(UTC), r[1], r[2], r[3], r[4], r[5] if has_volume else ""))

    def write(name, head, lines, delimiter=",", newline="\n", bom=False):
        with open(os.path.join(outdir, name), "w", newline="", encoding="utf-8") as out:
            if bom:
                out.write("\ufeff")
            w = csv.writer(out, delimiter=delimiter, lineterminator=newline)
            if head:
                w.writerow(head)
            w.writerows(lines)

    def volume(b):
        return [b[5]] if has_volume else []

    vhead = ["volume"] if has_volume else []
    seconds = lambda t: int(t.timestamp())
    write("canonical.csv", header, rows)
    write("aliases-order-extra.csv", (["Volume"] if has_volume else []) + ["CLOSE", "x_extra", "Low", "High", "Open",
                                                                           "DateTime", "Adj Close"],
          [volume(b) + [b[4], "7", b[3], b[2], b[1], b[0].strftime("%Y-%m-%d %H:%M:%S"), "0"] for b in bars])
    write("letters.tsv", ["time", "o", "h", "l", "c"] + (["v"] if has_volume else []),
          [[b[0].strftime("%Y-%m-%dT%H:%M:%S"), b[1], b[2], b[3], b[4]] + volume(b) for b in bars], delimiter="\t")
    write("semicolon.csv", ["timestamp_utc", "open", "high", "low", "close"] + vhead,
          [[b[0].isoformat(), b[1], b[2], b[3], b[4]] + volume(b) for b in bars], delimiter=";")
    write("crlf-bom.csv", ["Date", "Time", "Open", "High", "Low", "Close"] + (["Volume"] if has_volume else []),
          [[b[0].strftime("%Y-%m-%d"), b[0].strftime("%H:%M:%S"), b[1], b[2], b[3], b[4]] + volume(b) for b in bars],
          newline="\r\n", bom=True)
    write("iso-zone.csv", ["ts_event", "open", "high", "low", "close"] + vhead,
          [[b[0].strftime("%Y-%m-%dT%H:%M:%SZ"), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    write("iso-offset.csv", ["datetime", "open", "high", "low", "close"] + vhead,
          [[b[0].astimezone(plus2).isoformat(), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    write("plain-seconds.csv", ["timestamp", "open", "high", "low", "close"] + vhead,
          [[b[0].strftime("%Y-%m-%d %H:%M:%S"), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    write("histdata.csv", None,
          [[b[0].strftime("%Y%m%d %H%M%S"), b[1], b[2], b[3], b[4], b[5]] for b in bars], delimiter=";")
    write("metatrader.csv", None,
          [[b[0].strftime("%Y.%m.%d"), b[0].strftime("%H:%M"), b[1], b[2], b[3], b[4], b[5]] for b in bars])
    write("mt5.tsv", ["<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>"],
          [[b[0].strftime("%Y.%m.%d"), b[0].strftime("%H:%M:%S"), b[1], b[2], b[3], b[4], "123", b[5], "2"]
           for b in bars], delimiter="\t")
    for unit, scale in [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)]:
        write(f"epoch-{unit}.csv", ["open_time", "open", "high", "low", "close"] + vhead,
              [[str(seconds(b[0]) * scale), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    write("binance-klines.csv", None,
          [[str(seconds(b[0]) * 1000), b[1], b[2], b[3], b[4], b[5], str(seconds(b[0]) * 1000 + 59999),
            "1.5", "10", "0.5", "0.7", "0"] for b in bars])
    minute = datetime.timedelta(minutes=1)
    write("bar-close.csv", ["timestamp", "open", "high", "low", "close"] + vhead,
          [[(b[0] + minute).strftime("%Y-%m-%dT%H:%M:%SZ"), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    write("columns-named.csv", ["a", "b", "c", "d", "e"] + (["f"] if has_volume else []),
          [[b[0].strftime("%Y-%m-%d %H:%M:%S"), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    write("columns-numbered.csv", None,
          [volume(b) + [b[4], b[3], b[2], b[1], b[0].strftime("%Y-%m-%dT%H:%M:%SZ")] for b in bars])

    doubled = lambda text: repr(float(text) * 2)
    canonical_time = lambda t: t.strftime("%Y-%m-%d %H:%M:%S")
    write("a.csv", ["timestamp", "open", "high", "low", "close"] + vhead,
          [[canonical_time(b[0]), b[1], b[2], b[3], b[4]] + volume(b) for b in bars])
    write("b.csv", ["timestamp", "open", "high", "low", "close"] + vhead,
          [[canonical_time(b[0])] + [doubled(x) for x in b[1:5]] + volume(b) for b in bars])
    two = []
    for b in bars:
        two.append(["A", canonical_time(b[0]), b[1], b[2], b[3], b[4]] + volume(b))
        two.append(["B", canonical_time(b[0])] + [doubled(x) for x in b[1:5]] + volume(b))
    write("two-symbols.csv", ["symbol", "timestamp", "open", "high", "low", "close"] + vhead, two)

    for name, period, date_only in [("bars-5m", 300, False), ("bars-1d", 86400, True)]:
        groups = {}
        for b in bars:
            groups.setdefault(seconds(b[0]) // period * period, []).append(b)
        lines, expected = [], []
        for start in sorted(groups):
            g = groups[start]
            o, c = float(g[0][1]), float(g[-1][4])
            h, l = max(float(b[2]) for b in g), min(float(b[3]) for b in g)
            v = sum(float(b[5]) for b in g) if has_volume else None
            opened = datetime.datetime.fromtimestamp(start, UTC)
            text = opened.strftime("%Y-%m-%d") if date_only else opened.strftime("%Y-%m-%d %H:%M:%S")
            lines.append([text, repr(o), repr(h), repr(l), repr(c)] + ([repr(v)] if has_volume else []))
            expected.append([str((start + period) * 10**9), repr(o), repr(h), repr(l), repr(c),
                             repr(v) if has_volume else ""])
        write(name + ".csv", ["date" if date_only else "timestamp", "open", "high", "low", "close"] + vhead, lines)
        with open(os.path.join(outdir, name + ".expected.json"), "w") as out:
            json.dump(expected, out)


if __name__ == "__main__":
    main()
