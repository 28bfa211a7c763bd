#!/usr/bin/env python3
"""MACD signal-line cross as an external strategy: long `quantity` when MACD - signal goes from <= 0 to > 0,
short (or flat without allow_short) when it goes from >= 0 to < 0; the first finite value only sets the
reference -- the same rule as the built-in `macd_cross` (tested: identical fills). Keeps its per-symbol state
in snapshots. Parameters: timeframe (1m), quantity (1), allow_short (true)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
from tape_strategy import Strategy, run  # noqa: E402


class MACDCross(Strategy):
    subscriptions = ("indicators",)

    def on_start(self, parameters):
        self.timeframe = parameters.get("timeframe", "1m")
        self.quantity = float(parameters.get("quantity", "1"))
        self.allow_short = parameters.get("allow_short", "true").lower() in ("true", "yes", "1")
        self.previous = {}   # symbol -> previous MACD - signal

    def on_indicators(self, item, ctx):
        if item["timeframe"] != self.timeframe or item["macd"] is None or item["macd_signal"] is None:
            return
        difference = item["macd"] - item["macd_signal"]
        previous = self.previous.get(ctx.symbol)
        self.previous[ctx.symbol] = difference
        if previous is None:
            return
        if previous <= 0 < difference:
            ctx.target(self.quantity)
        elif previous >= 0 > difference:
            ctx.target(-self.quantity if self.allow_short else 0.0)


if __name__ == "__main__":
    run(MACDCross())
