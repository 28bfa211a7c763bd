"""A minimal WebSocket server for `make bench`: answers one upgrade request, then sends every message of
a raw Binance capture whose stream is requested, pre-framed, as fast as the socket takes them (one big
sendall), then keeps the connection open until the client closes it. It measures how fast `tape live`'s
WebSocket client path takes messages in, without the simulator's per-message async write in the way.
Not a feed simulator: no pacing, no faults, no ping answers (use `tape feed-sim` for those).

  ws_blast.py PORT_FILE CAPTURE.gz [CAPTURE.gz ...]
"""
import base64, gzip, hashlib, re, socket, sys

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


def frame(payload):
    header = bytearray([0x81])  # FIN + text
    length = len(payload)
    if length < 126:
        header.append(length)
    elif length < 65536:
        header.append(126); header += length.to_bytes(2, 'big')
    else:
        header.append(127); header += length.to_bytes(8, 'big')
    return bytes(header) + payload


def main():
    port_file, captures = sys.argv[1], sys.argv[2:]
    server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', 0)); server.listen(1)
    with open(port_file, 'w') as handle:
        handle.write('127.0.0.1:%d\n' % server.getsockname()[1])
    connection, _ = server.accept()
    request = b''
    while b'\r\n\r\n' not in request:
        request += connection.recv(4096)
    key = re.search(rb'Sec-WebSocket-Key: *(\S+)', request, re.I).group(1)
    streams = set(re.search(rb'streams=([^ &]+)', request).group(1).lower().split(b'/'))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    connection.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                       b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
    lines = []
    for capture in captures:
        for line in gzip.open(capture, 'rb'):
            receive, message = line.rstrip(b'\n').split(b' ', 1)
            stream = re.search(rb'"stream":"([^"]+)"', message)
            if stream and stream.group(1).lower() in streams:
                lines.append((int(receive), message))
    lines.sort(key=lambda item: item[0])
    payload = b''.join(frame(message) for _, message in lines)
    print(len(lines), flush=True)
    connection.sendall(payload)
    try:
        while connection.recv(65536):
            pass
    except OSError:
        pass


main()
