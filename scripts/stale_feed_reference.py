#!/usr/bin/env python3
"""Independent reference for the stale_feed rule over a 1-minute bar file, with or without the FX calendar.

usage: stale_feed_reference.py BAR_FILE CALENDAR AFTER_SECONDS

BAR_FILE: timestamp,open,high,low,close[,volume], timestamp = bar OPEN (UTC); Tape delivers each bar at
its end (open + 1 minute), and that is the clock time of the event. CALENDAR: `crypto` (always open) or
`fx` (Sunday 17:00 to Friday 17:00 America/New_York, from Python's zoneinfo, not from Tape's code).

The rule as documented in docs/graph.md: after an event at time L the feed is stale at the first
instant D = S + AFTER with D strictly before the close of the open stretch, where S = max(L, the stretch's
open), trying the stretch that contains L (or the next one) and then later stretches. It fires at D when
no event arrives before D (an event at exactly D comes after the timer). Once per gap.

Prints one line per anomaly: `<time ns> <value seconds> <open|closed>`, where the last word says
whether the FX market is open at that instant (a crypto run's weekend anomalies are `closed`).
"""
import datetime as dt
import gzip
import sys
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def fx_stretch(t):
    """The FX week (open, close) containing t, or the next one: Sunday 17:00 to Friday 17:00 New York."""
    local = t.astimezone(NEW_YORK)
    sunday = local.date() - dt.timedelta(days=(local.date().weekday() + 1) % 7)
    for week in (-1, 0, 1):
        start = sunday + dt.timedelta(days=7 * week)
        open_ = dt.datetime.combine(start, dt.time(17), tzinfo=NEW_YORK)
        close = dt.datetime.combine(start + dt.timedelta(days=5), dt.time(17), tzinfo=NEW_YORK)
        if t < close:
            return open_, close
    raise AssertionError(t)


def fx_open(t):
    open_, close = fx_stretch(t)
    return open_ <= t < close


def deadline(last, after, calendar):
    if calendar == "crypto":
        return last + after, last
    start_from = last
    for _ in range(64):
        open_, close = fx_stretch(start_from)
        start = max(last, open_)
        if start + after < close:
            return start + after, start
        start_from = close
    return None


def main():
    path, calendar, after_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    assert calendar in ("crypto", "fx"), calendar
    after = dt.timedelta(seconds=after_seconds)
    with gzip.open(path, "rt") as f:
        next(f)
        ends = [dt.datetime.fromisoformat(line.split(",")[0]).replace(tzinfo=UTC) + dt.timedelta(minutes=1)
                for line in f if line.strip()]
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    for last, following in zip(ends, ends[1:]):
        found = deadline(last, after, calendar)
        if found is None:
            continue
        due, start = found
        if due <= following:
            ns = (due - epoch) // dt.timedelta(microseconds=1) * 1000
            value = (due - start).total_seconds()
            print(ns, f"{value:g}", "open" if fx_open(due) else "closed")


if __name__ == "__main__":
    main()
