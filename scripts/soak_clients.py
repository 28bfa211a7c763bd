#!/usr/bin/env python3
"""The soak's outside observers (scripts/soak.sh), each until DEADLINE (epoch seconds):

  soak_clients.py api  HOST:PORT DEADLINE OUT     GET /api/v1/latest and a bars range every 0.25 s: `wall_ns path status`
  soak_clients.py ws   HOST:PORT DEADLINE OUT     a /ws subscriber to spot:BTCUSDT bars:1m that reconnects (0.5 s)
                                                   after every close: `{"connection", "arrival_ns", "message"}` lines
  soak_clients.py rss  STATE DEADLINE OUT         every 2 s the RSS of each supervised process: `wall_ns name pid rss_kb`
"""
import json, os, socket, sys, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
mode, target, deadline, out_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
out = open(out_path, "a", buffering=1)

if mode == "api":
    paths = ["/api/v1/latest/spot:BTCUSDT", "/api/v1/bars/spot:BTCUSDT?timeframe=1m&limit=5"]
    while time.time() < deadline:
        for path in paths:
            try:
                with urllib.request.urlopen(f"http://{target}{path}", timeout=5) as reply:
                    reply.read(); status = reply.status
            except urllib.error.HTTPError as error:
                status = error.code
            except Exception:
                status = 0  # refused, reset, timed out
            out.write(f"{time.time_ns()} {path} {status}\n")
        time.sleep(0.25)
elif mode == "ws":
    from ws_updates_client import Client
    host, port = target.rsplit(":", 1)
    connection = 0
    while time.time() < deadline:
        try:
            client = Client(0, host, int(port), "spot:BTCUSDT", ["bars:1m"], 0)
        except (OSError, SystemExit):
            time.sleep(0.5); continue
        connection += 1
        out.write(json.dumps({"connection": connection, "arrival_ns": time.time_ns(), "message": {"type": "connected"}}) + "\n")
        client.sock.settimeout(0.5)
        while time.time() < deadline and not client.done:
            try:
                client.read(True, "bars:1m", 0)
            except socket.timeout:
                pass
            except OSError:
                client.done = True
            for line in client.messages:
                line["connection"] = connection
                out.write(json.dumps(line) + "\n")
            client.messages = []
        try: client.sock.close()
        except OSError: pass
        time.sleep(0.5)
elif mode == "rss":
    while time.time() < deadline:
        for name in sorted(os.listdir(target)):
            if not name.endswith(".pid") or name.endswith(".supervisor.pid"):
                continue
            try:
                pid = open(os.path.join(target, name)).read().strip()
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        out.write(f"{time.time_ns()} {name[:-4]} {pid} {line.split()[1]}\n")
            except (OSError, ValueError):
                pass
        time.sleep(2)
