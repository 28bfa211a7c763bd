#!/usr/bin/env python3
"""Loopback HTTP server for TapeRESTTests: answers Alpha Vantage and FMP REST calls with bodies built at
run time from a real 1-minute bar file (../shared/data/bars/*.gz; nothing of it is kept).

Each successful data answer shows the last `--window` bars up to a cursor that moves `--step` bars per
answer (so polls overlap), newest first, with times in America/New_York local time (Python's zoneinfo:
an implementation independent of Tape's). Values are the file's text as is.

  vendor_server.py --bars FILE --symbol SYM --key KEY [--window 100] [--step 40] [--faults av:2=429,...]

Faults: `<vendor>:<n>=<kind>`: the n-th request (from 1) to that vendor (`av`, `fmp`) answers `429`,
`note` (AV throttle body), `information` (AV daily-limit body) or `500` instead of data; the cursor does
not move. A wrong apikey gets the vendor's auth failure. Prints `PORT <n>` when ready.
"""
import argparse, csv, datetime, gzip, http.server, json, sys, threading, urllib.parse, zoneinfo

EASTERN = zoneinfo.ZoneInfo("America/New_York")


def read_rows(path, limit):
    rows = []
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            rows.append(row)
            if len(rows) >= limit:
                break
    return rows


def local_time(text):
    stamp = text.replace("+00:00", "").split(".")[0]
    utc = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return utc.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")


class State:
    def __init__(self, args):
        self.args = args
        self.rows = read_rows(args.bars, args.rows)
        self.requests = {"av": 0, "fmp": 0}
        self.answers = {"av": 0, "fmp": 0}
        self.faults = {}
        for item in filter(None, args.faults.split(",")):
            target, kind = item.split("=")
            vendor, number = target.split(":")
            self.faults[(vendor, int(number))] = kind
        self.lock = threading.Lock()

    def window(self, vendor):
        end = min(len(self.rows), self.args.window + self.answers[vendor] * self.args.step)
        self.answers[vendor] += 1
        return list(reversed(self.rows[max(0, end - self.args.window):end]))  # newest first


def alpha_vantage_body(state, rows):
    series = {}
    for row in rows:
        bar = {"1. open": row["open"], "2. high": row["high"], "3. low": row["low"], "4. close": row["close"]}
        if "volume" in row:
            bar["5. volume"] = row["volume"]
        series[local_time(row["timestamp"])] = bar
    meta = {"1. Information": "Intraday (1min) open, high, low, close prices and volume",
            "2. Symbol": state.args.symbol, "3. Last Refreshed": next(iter(series), ""),
            "4. Interval": "1min", "5. Output Size": "Compact", "6. Time Zone": "US/Eastern"}
    return json.dumps({"Meta Data": meta, "Time Series (1min)": series}, indent=4)


def fmp_body(rows):
    # Numbers as the file's text (json.dumps would reformat them).
    parts = []
    for row in rows:
        fields = [f'"date": "{local_time(row["timestamp"])}"'] + [f'"{name}": {row[name]}' for name in
                                                                  ("open", "low", "high", "close")]
        if "volume" in row:
            fields.append(f'"volume": {row["volume"]}')
        parts.append("  {\n    " + ",\n    ".join(fields) + "\n  }")
    return "[\n" + ",\n".join(parts) + "\n]"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        state = self.server.state
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        vendor = "av" if url.path == "/query" else "fmp"
        with state.lock:
            state.requests[vendor] += 1
            fault = state.faults.get((vendor, state.requests[vendor]))
            if query.get("apikey", [""])[0] != state.args.key:
                if vendor == "av":
                    return self.answer(200, json.dumps({"Error Message": "the parameter apikey is invalid or missing. "
                                                        "Please claim your free API key on "
                                                        "(https://www.alphavantage.co/support/#api-key)."}))
                return self.answer(401, json.dumps({"Error Message": "Invalid API KEY. Feel free to create a Free "
                                                    "API Key or visit https://site.financialmodelingprep.com/faqs"}))
            if fault == "429":
                return self.answer(429, json.dumps({"message": "Too Many Requests"}), [("Retry-After", "1")])
            if fault == "500":
                return self.answer(500, "{}")
            if fault == "note":
                return self.answer(200, json.dumps({"Note": "Thank you for using Alpha Vantage! Our standard API call "
                                                    "frequency is 5 calls per minute and 25 calls per day."}))
            if fault == "information":
                return self.answer(200, json.dumps({"Information": "Thank you for using Alpha Vantage! Our standard "
                                                    "API rate limit is 25 requests per day."}))
            if vendor == "av":
                if query.get("function") != ["TIME_SERIES_INTRADAY"] or query.get("symbol") != [state.args.symbol]:
                    return self.answer(200, json.dumps({"Error Message": "Invalid API call."}))
                return self.answer(200, alpha_vantage_body(state, state.window("av")))
            if url.path != "/api/v3/historical-chart/1min/" + state.args.symbol:
                return self.answer(404, "[]")
            return self.answer(200, fmp_body(state.window("fmp")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--step", type=int, default=40)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--faults", default="")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.state = State(args)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
