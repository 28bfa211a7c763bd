#!/usr/bin/env python3
"""Monthly and yearly returns of a backtest's total equity, from the run folder's files alone (the report's
oracle: Tests/TapeReportsTests, docs/reports.md "Backtest").

Usage: monthly_returns_reference.py RUN_DIR  ->  lines `year,month,return` (month 0 = the year), in time order.

Definition: the total rows of equity.csv (scope == total), the last row per time_ns; a mark belongs to the UTC
month of (time_ns - 1 ns), so the mark at 00:00 on the 1st closes the month before. A month's return is its
last equity over the last equity of the month before (summary.json trading.initial_cash before the first
month) minus 1; a year's, its last equity over the previous year's last equity (or the initial cash) minus 1.
"""
import csv
import json
import sys
from datetime import datetime, timezone

import numpy as np


def main(run_dir):
    with open(f"{run_dir}/summary.json") as f:
        initial_cash = float(json.load(f)["trading"]["initial_cash"])
    times, equity = [], []
    with open(f"{run_dir}/equity.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["scope"] != "total":
                continue
            t = int(row["time_ns"])
            if times and times[-1] == t:
                equity[-1] = float(row["equity"])  # the last row at an instant counts
            else:
                times.append(t)
                equity.append(float(row["equity"]))
    times = np.array(times, dtype=np.int64)
    equity = np.array(equity, dtype=np.float64)
    assert np.all(np.diff(times) > 0)
    # month key of each mark: UTC month of (t - 1 ns), in whole seconds (floor)
    seconds = (times - 1) // 1_000_000_000
    keys = np.array([(d.year, d.month) for d in (datetime.fromtimestamp(int(s), tz=timezone.utc) for s in seconds)])
    month_id = keys[:, 0] * 12 + keys[:, 1]
    last_of_month = np.flatnonzero(np.append(month_id[1:] != month_id[:-1], True))
    ends = equity[last_of_month]
    starts = np.concatenate(([initial_cash], ends[:-1]))
    monthly = ends / starts - 1
    years = keys[last_of_month, 0]
    out = []
    year_start = initial_cash
    for i, index in enumerate(last_of_month):
        year, month = keys[index]
        out.append((int(year), int(month), float(monthly[i])))
        if i == len(last_of_month) - 1 or years[i + 1] != year:
            out.append((int(year), 0, float(ends[i] / year_start - 1)))
            year_start = ends[i]
    for year, month, value in out:
        print(f"{year},{month},{value!r}")


if __name__ == "__main__":
    main(sys.argv[1])
