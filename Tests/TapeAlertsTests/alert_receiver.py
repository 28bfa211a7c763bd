#!/usr/bin/env python3
"""Real loopback receivers for the alert tests (no mocks in Swift: real sockets, real protocols).

  alert_receiver.py webhook --record FILE [--fail-first N] [--status S] [--sleep SECONDS]
      An HTTP server standing in for a Slack incoming webhook. Every POST is appended to FILE as one
      JSON line {"path", "status", "body", "content_type"} (after the answer is decided, before it is
      sent). The first N requests are answered 500 (--fail-first), every request sleeps SECONDS before
      answering (--sleep: a slow receiver), and S is the status of the others (default 200, "ok").

  alert_receiver.py smtp --record FILE
      An SMTP server (PyPI aiosmtpd) that accepts every message and appends one JSON line per message:
      {"mail_from", "rcpt_tos", "data"}.

Both listen on 127.0.0.1 on a free port and print "PORT <n>" on stdout once ready; they run until
terminated.
"""
import argparse
import json
import sys
import threading
import time


def append(path, record):
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def webhook(args):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()
    state = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8", "replace")
            with lock:
                state["requests"] += 1
                number = state["requests"]
            status = 500 if number <= args.fail_first else args.status
            append(args.record, {"path": self.path, "status": status, "body": body,
                                 "content_type": self.headers.get("Content-Type", "")})
            if args.sleep > 0:
                time.sleep(args.sleep)
            reply = b"ok" if status == 200 else b"error"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


def smtp(args):
    import asyncio
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            append(args.record, {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                 "data": envelope.content.decode("utf-8", "replace")})
            return "250 Message accepted for delivery"

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="localhost"), "127.0.0.1", 0)
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["webhook", "smtp"])
    parser.add_argument("--record", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0)
    args = parser.parse_args()
    open(args.record, "w").close()
    if args.kind == "webhook":
        webhook(args)
    else:
        smtp(args)


if __name__ == "__main__":
    sys.exit(main())
