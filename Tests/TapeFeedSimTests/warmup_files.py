"""Builds the files of the warm-up test from a real Binance capture, at run time (never committed).

  warmup_files.py slice CAPTURE FIRST LAST OUT        lines [FIRST, LAST) of CAPTURE, unchanged
  warmup_files.py shifted CAPTURE FIRST LAST SHIFT_NS OUT
                                                     the same lines with receive times moved by SHIFT_NS
                                                     and the exchange times E/T by SHIFT_NS/1e6 ms (as
                                                     `tape feed-sim --shift now` moves what it serves)
  warmup_files.py count CAPTURE FIRST LAST            events (trade + bookTicker messages) in those lines
  warmup_files.py head-seconds CAPTURE SECONDS OUT    the lines of the first SECONDS of receive time
  warmup_files.py last-trade RECORDING                exchange time (ms) of the last trade message in it
  warmup_files.py first-bar BARS.csv.gz                the first row: open time ns UTC,open,high,low,close,volume
"""
import calendar
import csv
import io
import gzip
import re
import sys

TIME_FIELD = re.compile(rb'"([ET])":(\d+)')


def lines(path, first, last):
    with gzip.open(path, 'rb') as handle:
        for index, line in enumerate(handle):
            if index >= last:
                break
            if index >= first:
                yield line


def main():
    command, path = sys.argv[1], sys.argv[2]
    if command == 'head-seconds':
        limit = float(sys.argv[3]) * 1e9
        first = None
        with gzip.open(sys.argv[4], 'wb') as out:
            for line in lines(path, 0, 1 << 62):
                receive = int(line.split(b' ', 1)[0])
                first = receive if first is None else first
                if receive - first >= limit:
                    break
                out.write(line)
        return
    if command == 'first-bar':
        with gzip.open(path, 'rt') as handle:
            row = next(csv.DictReader(handle))
        seconds = calendar.timegm(__import__('time').strptime(row['timestamp'][:19], '%Y-%m-%d %H:%M:%S'))
        print('%d,%s,%s,%s,%s,%s' % (seconds * 1_000_000_000, row['open'], row['high'], row['low'], row['close'],
                                     row['volume']))
        return
    if command == 'last-trade':
        last = None
        for line in lines(path, 0, 1 << 62):
            if b'@trade"' in line:
                last = int(re.search(rb'"T":(\d+)', line).group(1))
        print(last)
        return
    first, last = int(sys.argv[3]), int(sys.argv[4])
    if command == 'slice':
        with gzip.open(sys.argv[5], 'wb') as out:
            for line in lines(path, first, last):
                out.write(line)
    elif command == 'shifted':
        shift_ns = int(sys.argv[5])
        assert shift_ns % 1_000_000 == 0, 'feed-sim shifts by whole milliseconds'
        shift_ms = shift_ns // 1_000_000
        with gzip.open(sys.argv[6], 'wb') as out:
            for line in lines(path, first, last):
                receive, message = line.split(b' ', 1)
                message = TIME_FIELD.sub(lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + shift_ms), message)
                out.write(b'%d %s' % (int(receive) + shift_ns, message))
    elif command == 'count':
        count = 0
        for line in lines(path, first, last):
            if b'@trade"' in line or b'@bookTicker"' in line:
                count += 1
        print(count)


main()
