#!/usr/bin/env python3
"""RSI mean reversion as an external strategy: long `quantity` when the RSI closes below `lower`, flat (or short
with allow_short) when it closes above `upper` -- the same rule as the built-in `rsi_mean_reversion`, so the
two give the same fills (tested). Parameters: timeframe (1m), lower (30), upper (70), quantity (1),
allow_short (false)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
from tape_strategy import Strategy, run  # noqa: E402


class RSIReversion(Strategy):
    subscriptions = ("indicators",)

    def on_start(self, parameters):
        self.timeframe = parameters.get("timeframe", "1m")
        self.lower = float(parameters.get("lower", "30"))
        self.upper = float(parameters.get("upper", "70"))
        self.quantity = float(parameters.get("quantity", "1"))
        self.allow_short = parameters.get("allow_short", "false").lower() in ("true", "yes", "1")

    def on_indicators(self, item, ctx):
        rsi = item["rsi"]
        if item["timeframe"] != self.timeframe or rsi is None:
            return
        if rsi < self.lower:
            ctx.target(self.quantity)
        elif rsi > self.upper:
            ctx.target(-self.quantity if self.allow_short else 0.0)


if __name__ == "__main__":
    run(RSIReversion())
