#!/usr/bin/env python3
"""An independent WebSocket client of `tape serve`'s /ws (raw sockets, RFC 6455 by hand: not Tape's code),
for the tests and `make bench`.

  ws_updates_client.py HOST:PORT --symbol S --channels bars:1m,trades [--clients N] [--seconds T]
                       [--until-bars K] [--out FILE] [--never-read] [--rcvbuf BYTES] [--kernel-stamps]

Each client connects, subscribes, and reads until T seconds have passed (or, with --until-bars, until it
holds K distinct bars of its bars channel). With --out, every message each client received is written as
one JSON line: {"client": i, "arrival_ns": wall ns, "message": {...}}. At the end one JSON summary line goes
to stdout: per client the counts by type, the close code the server sent (if any), whether the
connection was reset or ended without a close frame (eof). --kernel-stamps (Linux): each line also gets
"kernel_ns", the kernel's wall-clock receive time of the data read (SO_TIMESTAMPNS), i.e. when it reached the
socket rather than when this process got to read it. --never-read: the clients subscribe and then never read (a small receive buffer),
until T; then they read what is there, to see how the server closed them.
"""
import argparse, base64, json, os, selectors, socket, struct, sys, time


SO_TIMESTAMPNS = 35  # Linux; also the ancillary message type (SCM_TIMESTAMPNS)


def handshake(host, port, rcvbuf, kernel_stamps=False):
    sock = socket.create_connection((host, port), timeout=10)
    if kernel_stamps:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed during the handshake")
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        raise SystemExit(f"no upgrade: {head.decode(errors='replace')}")
    return sock, head.split(b"\r\n\r\n", 1)[1]


def send_text(sock, text):
    payload = text.encode()
    mask = os.urandom(4)
    header = bytearray([0x81])
    n = len(payload)
    if n < 126:
        header.append(0x80 | n)
    elif n < 65536:
        header.append(0x80 | 126); header += struct.pack(">H", n)
    else:
        header.append(0x80 | 127); header += struct.pack(">Q", n)
    sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def send_pong(sock, payload):
    mask = os.urandom(4)
    sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


class Client:
    def __init__(self, index, host, port, symbol, channels, rcvbuf, kernel_stamps=False):
        self.index = index
        self.kernel_stamps = kernel_stamps
        self.sock, self.buffer = handshake(host, port, rcvbuf, kernel_stamps)
        self.counts = {}
        self.close_code = None
        self.reset = False
        self.eof = False
        self.done = False
        self.bars = set()
        self.messages = []
        self.lazy = False
        self.raw = []
        send_text(self.sock, json.dumps({"op": "subscribe", "symbol": symbol, "channels": channels}))

    def frames(self):
        """Complete frames in the buffer: (opcode, payload). Walks the buffer by offset and cuts it once (a
        read of many frames is not copied once per frame)."""
        buffer, start, end = self.buffer, 0, len(self.buffer)
        try:
            while end - start >= 2:
                opcode, length = buffer[start] & 0x0F, buffer[start + 1] & 0x7F
                at = start + 2
                if length == 126:
                    if end - start < 4: return
                    length = struct.unpack_from(">H", buffer, start + 2)[0]; at = start + 4
                elif length == 127:
                    if end - start < 10: return
                    length = struct.unpack_from(">Q", buffer, start + 2)[0]; at = start + 10
                if end < at + length:
                    return
                start = at + length
                yield opcode, buffer[at:start]
        finally:
            self.buffer = buffer[start:]

    def read(self, keep, bars_channel, until_bars):
        kernel_ns = None
        try:
            if self.kernel_stamps:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(16))
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                        seconds, nanoseconds = struct.unpack("qq", value[:16])
                        kernel_ns = seconds * 1_000_000_000 + nanoseconds
            else:
                data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True; self.done = True; return
        except BlockingIOError:
            return
        if not data:
            self.eof = True; self.done = True; return
        self.buffer += data
        now = time.time_ns()
        for opcode, payload in self.frames():
            if opcode == 0x8:
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.done = True
            elif opcode == 0x9:
                send_pong(self.sock, payload)
            elif opcode == 0x1 and self.lazy:
                # Parsed after the run: a reader that keeps up measures the server, not Python's JSON.
                self.raw.append((payload, now, kernel_ns))
            elif opcode == 0x1:
                message = json.loads(payload)
                kind = message.get("type")
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if keep:
                    line = {"client": self.index, "arrival_ns": now, "message": message}
                    if self.kernel_stamps:
                        line["kernel_ns"] = kernel_ns
                    self.messages.append(line)
                if bars_channel is not None and message.get("channel") == bars_channel:
                    data = message.get("data")
                    for bar in (data if isinstance(data, list) else [data]):
                        self.bars.add(bar.get("end_ns"))
                    if until_bars and len(self.bars) >= until_bars:
                        self.done = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--channels", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--until-bars", type=int, default=0)
    parser.add_argument("--out")
    parser.add_argument("--never-read", action="store_true")
    parser.add_argument("--rcvbuf", type=int, default=0)
    parser.add_argument("--kernel-stamps", action="store_true")
    args = parser.parse_args()
    host, port = args.address.rsplit(":", 1)
    channels = args.channels.split(",")
    bars_channel = next((c for c in channels if c.startswith("bars:")), None)
    clients = [Client(i, host, int(port), args.symbol, channels, args.rcvbuf or (4096 if args.never_read else 0),
                      args.kernel_stamps)
               for i in range(args.clients)]
    for client in clients:
        # Without a bars channel to watch, the text frames are kept raw and parsed at the end.
        client.lazy = bars_channel is None and not args.never_read
    print(json.dumps({"connected": len(clients)}), flush=True)
    deadline = time.time() + args.seconds
    if args.never_read:
        time.sleep(args.seconds)
        for client in clients:
            client.sock.settimeout(2)
            while not client.done:
                try:
                    client.read(False, bars_channel, 0)
                except socket.timeout:
                    break
    else:
        selector = selectors.DefaultSelector()
        for client in clients:
            client.sock.setblocking(False)
            selector.register(client.sock, selectors.EVENT_READ, client)
        while time.time() < deadline and not all(c.done for c in clients):
            for key, _ in selector.select(timeout=0.2):
                client = key.data
                if not client.done:
                    client.read(args.out is not None, bars_channel, args.until_bars)
    for client in clients:
        for payload, now, kernel_ns in client.raw:
            message = json.loads(payload)
            kind = message.get("type")
            client.counts[kind] = client.counts.get(kind, 0) + 1
            if args.out is not None:
                line = {"client": client.index, "arrival_ns": now, "message": message}
                if client.kernel_stamps:
                    line["kernel_ns"] = kernel_ns
                client.messages.append(line)
        client.raw = []
    if args.out:
        with open(args.out, "w") as handle:
            for client in clients:
                for line in client.messages:
                    handle.write(json.dumps(line) + "\n")
    print(json.dumps({"clients": [{"counts": c.counts, "close_code": c.close_code, "reset": c.reset, "eof": c.eof,
                                   "bars": len(c.bars)} for c in clients]}), flush=True)


if __name__ == "__main__":
    main()
