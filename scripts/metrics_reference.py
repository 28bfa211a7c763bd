#!/usr/bin/env python3
"""Independent reference for Tape's PerformanceMetrics (TapeTrading), in numpy, from vectorbt's run.

    scripts/metrics_reference.py VBT_OUTDIR --init-cash 100000 --periods-per-year 525600

Reads what scripts/vectorbt_reference.py wrote (equity.csv: value and position per bar; orders.csv;
trades.csv) and writes VBT_OUTDIR/metrics.csv (`name,value`), each metric by the formula of
docs/backtesting.md, computed here with numpy from vectorbt's numbers (nothing from Tape):

  r_t = E_t / E_{t-1} - 1 (t = 1..N, E_0 = initial cash); total = E_N / E_0 - 1;
  annualised = (1 + total)^(P/N) - 1; volatility = std(r, ddof=1) sqrt(P); Sharpe = mean(r) / std(r, ddof=1) sqrt(P);
  Sortino = mean(r) / sqrt(mean(min(r, 0)^2)) sqrt(P); max drawdown = max(1 - E / cummax(E)) over E_0..E_N;
  its duration = bars from that drawdown's peak to the first bar back at or above the peak (or to the end);
  Calmar = annualised / max drawdown; turnover = sum |size x price| over orders / mean(E_1..E_N);
  trades = closed trades; hit rate = wins / closed; average win / loss = mean PnL of winners / losers;
  profit factor = sum wins / |sum losses|; exposure = bars with a position / N; fees = sum of order fees.
"""
import argparse
import os

import numpy as np
import pandas as pd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir")
    parser.add_argument("--init-cash", type=float, required=True)
    parser.add_argument("--periods-per-year", type=float, required=True)
    args = parser.parse_args()
    equity = pd.read_csv(os.path.join(args.outdir, "equity.csv"))
    orders = pd.read_csv(os.path.join(args.outdir, "orders.csv"))
    trades = pd.read_csv(os.path.join(args.outdir, "trades.csv"))

    values = equity["value"].to_numpy(dtype=float)
    count = len(values)
    periods_per_year = args.periods_per_year
    series = np.concatenate([[args.init_cash], values])
    returns = series[1:] / series[:-1] - 1
    total = values[-1] / args.init_cash - 1
    annualised = -1.0 if 1 + total <= 0 else (1 + total) ** (periods_per_year / count) - 1
    deviation = np.std(returns, ddof=1)
    volatility = deviation * np.sqrt(periods_per_year)
    sharpe = np.mean(returns) / deviation * np.sqrt(periods_per_year) if deviation > 0 else np.nan
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    sortino = np.mean(returns) / downside * np.sqrt(periods_per_year) if downside > 0 else np.nan
    running_peak = np.maximum.accumulate(series)
    drawdowns = 1 - series / running_peak
    trough = int(np.argmax(drawdowns))
    max_drawdown = float(drawdowns[trough])
    duration = 0
    calmar = np.nan
    if max_drawdown > 0:
        peak_value = running_peak[trough]
        peak_index = int(np.nonzero(series[: trough + 1] == peak_value)[0][-1])
        later = np.nonzero(series[trough:] >= peak_value)[0]
        recovery = trough + int(later[0]) if len(later) else count
        duration = recovery - peak_index
        calmar = annualised / max_drawdown
    turnover = np.sum(np.abs(orders["size"].to_numpy() * orders["price"].to_numpy())) / np.mean(values)
    closed = trades[trades["status"] == "closed"]
    pnl = closed["pnl"].to_numpy(dtype=float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    hit_rate = len(wins) / len(pnl) if len(pnl) else np.nan
    average_win = np.mean(wins) if len(wins) else np.nan
    average_loss = np.mean(losses) if len(losses) else np.nan
    if len(losses):
        profit_factor = np.sum(wins) / abs(np.sum(losses))
    else:
        profit_factor = np.inf if len(wins) else np.nan
    exposure = np.count_nonzero(equity["position"].to_numpy(dtype=float) != 0) / count
    fees = float(np.sum(orders["fees"].to_numpy(dtype=float)))
    metrics = {
        "periods": count, "total_return": total, "annualized_return": annualised, "volatility": volatility,
        "sharpe": sharpe, "sortino": sortino, "max_drawdown": max_drawdown,
        "max_drawdown_duration_periods": duration, "calmar": calmar, "turnover": turnover,
        "trade_count": len(pnl), "hit_rate": hit_rate, "average_win": average_win, "average_loss": average_loss,
        "profit_factor": profit_factor, "exposure": exposure, "fees_paid": fees,
    }
    with open(os.path.join(args.outdir, "metrics.csv"), "w") as out:
        out.write("name,value\n")
        for name, value in metrics.items():
            out.write(f"{name},{float(value)!r}\n")


if __name__ == "__main__":
    main()
