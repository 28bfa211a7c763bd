"""Write a Tape strategy in Python: the helper for Tape's external strategy protocol, version 1.

Tape starts your program, sends it what it subscribed to as JSON lines on stdin, and waits for its orders
before the stream moves on (docs/backtesting.md, "Your own strategy"). With this module a strategy is a class:

    from tape_strategy import Strategy, run

    class Cross(Strategy):
        subscriptions = ("indicators",)
        def on_start(self, parameters):
            self.quantity = float(parameters.get("quantity", "1"))
        def on_indicators(self, item, ctx):
            if item["macd"] is not None and item["macd"] > item["macd_signal"]:
                ctx.target(self.quantity)

    run(Cross())

Every callback gets the item (a dict: the line Tape sent, `null` as None) and a `Context` for the item's
symbol: `ctx.now` (stream time, ns), `ctx.symbol`, `ctx.position` (filled, signed), `ctx.open_quantity`,
`ctx.cash`, `ctx.equity`, and the actions `submit`, `target`, `cancel`, `replace`. Never read the clock or
anything that changes between runs: the same input must give the same orders.

Standard library only; Python 3.8+.
"""
import json
import sys

PROTOCOL = 1
CHANNELS = ("bars", "indicators", "anomalies", "predictions", "trades", "quotes")


class Context:
    """The account as Tape saw it when it sent the item, and order entry for the reply."""

    def __init__(self, item, actions):
        self.now = item.get("now")
        self.symbol = item.get("symbol")
        self.position = item.get("position") or 0.0
        self.open_quantity = item.get("open_quantity") or 0.0
        self.cash = item.get("cash")
        self.equity = item.get("equity")
        self._actions = actions

    def submit(self, side, quantity, order_type="market", limit_price=None, stop_price=None, tif="gtc",
               tag=None, ref=None, symbol=None):
        """Sends an order (side "buy" or "sell", positive quantity). `ref` names it for cancel and replace."""
        action = {"op": "submit", "side": side, "quantity": quantity, "order_type": order_type, "tif": tif}
        for key, value in (("limit_price", limit_price), ("stop_price", stop_price), ("tag", tag), ("ref", ref),
                           ("symbol", symbol)):
            if value is not None:
                action[key] = value
        self._actions.append(action)

    def target(self, position, symbol=None):
        """A market order for the difference between `position` and position + open orders (none if equal)."""
        action = {"op": "target", "position": position}
        if symbol is not None:
            action["symbol"] = symbol
        self._actions.append(action)

    def cancel(self, ref=None, order_id=None):
        self._actions.append({"op": "cancel", **({"ref": ref} if ref is not None else {"order_id": order_id})})

    def replace(self, ref, quantity, limit_price=None, stop_price=None):
        """Cancel and replace (docs/backtesting.md): the new order keeps the ref."""
        action = {"op": "replace", "ref": ref, "quantity": quantity}
        if limit_price is not None:
            action["limit_price"] = limit_price
        if stop_price is not None:
            action["stop_price"] = stop_price
        self._actions.append(action)


class Strategy:
    """Override what you need. `subscriptions`: any of bars, indicators, anomalies, predictions, trades,
    quotes. `state()`/`restore(text)`: what a snapshot keeps (text; default: this object's JSON-able fields)."""

    subscriptions = ("bars",)

    def on_start(self, parameters):
        pass

    def on_bar(self, item, ctx):
        pass

    def on_indicators(self, item, ctx):
        pass

    def on_anomaly(self, item, ctx):
        pass

    def on_prediction(self, item, ctx):
        pass

    def on_trade(self, item, ctx):
        pass

    def on_quote(self, item, ctx):
        pass

    def state(self):
        return json.dumps({k: v for k, v in vars(self).items() if not k.startswith("_")}, sort_keys=True)

    def restore(self, text):
        if text:
            vars(self).update(json.loads(text))


def run(strategy, stdin=None, stdout=None):
    """Speaks the protocol until Tape sends `end` or closes stdin."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    handlers = {"bar": strategy.on_bar, "indicators": strategy.on_indicators, "anomaly": strategy.on_anomaly,
                "prediction": strategy.on_prediction, "trade": strategy.on_trade, "quote": strategy.on_quote}
    done = '{"type":"done"}\n'
    for line in stdin:
        item = json.loads(line)
        kind = item.get("type")
        handler = handlers.get(kind)
        if handler is not None:
            actions = []
            handler(item, Context(item, actions))
            stdout.write("".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions) + done)
        elif kind == "hello":
            if item.get("protocol") != PROTOCOL:
                sys.stderr.write(f"tape_strategy: Tape speaks protocol {item.get('protocol')}, this helper {PROTOCOL}\n")
            strategy.on_start(item.get("parameters") or {})
            unknown = [c for c in strategy.subscriptions if c not in CHANNELS]
            if unknown:
                raise ValueError(f"unknown subscriptions {unknown} (known: {', '.join(CHANNELS)})")
            stdout.write(json.dumps({"type": "ready", "protocol": PROTOCOL,
                                     "subscriptions": list(strategy.subscriptions)}) + "\n")
        elif kind == "snapshot":
            stdout.write(json.dumps({"type": "state", "state": strategy.state()}) + "\n")
        elif kind == "restore":
            strategy.restore(item.get("state") or "")
            stdout.write(done)
        elif kind == "end":
            stdout.flush()
            return
        else:
            stdout.write(done)   # an item of a newer protocol: no action
        stdout.flush()
