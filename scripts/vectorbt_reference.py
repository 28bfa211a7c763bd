#!/usr/bin/env python3
"""Independent reference for Tape's backtester (TapeTrading): vectorbt's Portfolio.from_signals on a bar file.

    scripts/vectorbt_reference.py BARS.csv.gz OUTDIR [--fast 10 --slow 30 --size 1 --fees 0.001
                                   --slippage 0 --init-cash 100000 --mode both|longonly]

Signal rule (computed here from the closes with numpy, nothing from Tape): SMA(fast) and SMA(slow) of the
closes; at bar i a *long* signal when SMA_fast crosses above SMA_slow (fast[i] > slow[i] and
fast[i-1] <= slow[i-1]), a *short* signal when it crosses below (fast[i] < slow[i] and fast[i-1] >= slow[i-1]).
Mode `both`: long -> hold +size, short -> hold -size (a reversal is one order of 2 x size). Mode `longonly`:
long -> hold +size, short -> flat.

The decision is taken at bar i's close and filled at bar i+1's open: the signals are shifted by one bar and
vectorbt is given price = open (valuation at the close), `size_type='amount'`, `fees` (a fraction of the
notional), `slippage` (a fraction of the price, adverse), `init_cash`.

Writes (rows in file order, `row` = the 0-based bar index):
- signals.csv: row,close,long,short          (unshifted: the bar whose close decides)
- equity.csv:  row,close,value,position      (pf.value(): cash + position x close; pf.assets())
- orders.csv:  row,side,size,price,fees      (the fill bar's row)
- trades.csv:  entry_row,exit_row,direction,status,size,entry_price,exit_price,entry_fees,exit_fees,pnl
Floats are printed with repr (round trip).
"""
import argparse
import os
import sys
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
import vectorbt as vbt  # noqa: E402


def sma(values, period):
    out = np.full(len(values), np.nan)
    if len(values) >= period:
        cumulative = np.cumsum(np.insert(values, 0, 0.0))
        out[period - 1:] = (cumulative[period:] - cumulative[:-period]) / period
    return out


def signals(close, fast, slow):
    fast_line, slow_line = sma(close, fast), sma(close, slow)
    long_signal = np.zeros(len(close), dtype=bool)
    short_signal = np.zeros(len(close), dtype=bool)
    valid = ~np.isnan(fast_line) & ~np.isnan(slow_line)
    previous_valid = np.concatenate([[False], valid[:-1]])
    both = valid & previous_valid
    fast_previous = np.concatenate([[np.nan], fast_line[:-1]])
    slow_previous = np.concatenate([[np.nan], slow_line[:-1]])
    long_signal[both] = (fast_line[both] > slow_line[both]) & (fast_previous[both] <= slow_previous[both])
    short_signal[both] = (fast_line[both] < slow_line[both]) & (fast_previous[both] >= slow_previous[both])
    return long_signal, short_signal


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bars")
    parser.add_argument("outdir")
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--slow", type=int, default=30)
    parser.add_argument("--size", type=float, default=1.0)
    parser.add_argument("--fees", type=float, default=0.001)
    parser.add_argument("--slippage", type=float, default=0.0)
    parser.add_argument("--init-cash", type=float, default=100_000.0)
    parser.add_argument("--mode", choices=["both", "longonly"], default="both")
    args = parser.parse_args()

    frame = pd.read_csv(args.bars)
    close = frame["close"].to_numpy(dtype=float)
    open_ = frame["open"].to_numpy(dtype=float)
    long_signal, short_signal = signals(close, args.fast, args.slow)
    shift = lambda flags: np.concatenate([[False], flags[:-1]])  # noqa: E731
    entries, other = shift(long_signal), shift(short_signal)
    if args.mode == "both":
        pf = vbt.Portfolio.from_signals(close, entries=entries, exits=np.zeros_like(entries),
                                        short_entries=other, short_exits=np.zeros_like(other),
                                        price=open_, size=args.size, size_type="amount", fees=args.fees,
                                        slippage=args.slippage, init_cash=args.init_cash, freq="1min")
    else:
        pf = vbt.Portfolio.from_signals(close, entries=entries, exits=other, direction="longonly",
                                        price=open_, size=args.size, size_type="amount", fees=args.fees,
                                        slippage=args.slippage, init_cash=args.init_cash, freq="1min")
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "signals.csv"), "w") as out:
        out.write("row,close,long,short\n")
        for row in range(len(close)):
            out.write(f"{row},{float(close[row])!r},{int(long_signal[row])},{int(short_signal[row])}\n")
    values = pf.value().to_numpy()
    assets = pf.assets().to_numpy()
    with open(os.path.join(args.outdir, "equity.csv"), "w") as out:
        out.write("row,close,value,position\n")
        for row in range(len(close)):
            out.write(f"{row},{float(close[row])!r},{float(values[row])!r},{float(assets[row])!r}\n")
    orders = pf.orders.values
    with open(os.path.join(args.outdir, "orders.csv"), "w") as out:
        out.write("row,side,size,price,fees\n")
        for order in orders:
            side = "buy" if order["side"] == 0 else "sell"
            out.write(f"{order['idx']},{side},{float(order['size'])!r},{float(order['price'])!r},"
                      f"{float(order['fees'])!r}\n")
    trades = pf.trades.values
    with open(os.path.join(args.outdir, "trades.csv"), "w") as out:
        out.write("entry_row,exit_row,direction,status,size,entry_price,exit_price,entry_fees,exit_fees,pnl\n")
        for trade in trades:
            direction = "long" if trade["direction"] == 0 else "short"
            status = "open" if trade["status"] == 0 else "closed"
            out.write(f"{trade['entry_idx']},{trade['exit_idx']},{direction},{status},{float(trade['size'])!r},"
                      f"{float(trade['entry_price'])!r},{float(trade['exit_price'])!r},"
                      f"{float(trade['entry_fees'])!r},{float(trade['exit_fees'])!r},{float(trade['pnl'])!r}\n")
    print(f"{len(close)} bars, {len(orders)} orders, {len(trades)} trades, "
          f"final value {float(values[-1])!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
