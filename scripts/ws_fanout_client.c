/* An independent WebSocket fan-out client of `tape serve`'s /ws for `make bench` (RFC 6455 by hand, not
 * Tape's code): N connections in one process, one epoll loop, so that the measuring side costs little CPU on a
 * machine it shares with the server (scripts/ws_updates_client.py, the Python client, spends about half a core
 * reading 100 sockets at 35,000 updates/s, and a reader that falls behind also blurs the kernel stamps).
 *
 *   ws_fanout_client HOST PORT SYMBOL CHANNELS CLIENTS SECONDS OUT
 *
 * Each client connects, subscribes to SYMBOL's CHANNELS (comma-separated), and reads until SECONDS have
 * passed. Every update is written to OUT as one JSON line, as the Python client writes them:
 *   {"client":i,"arrival_ns":…,"kernel_ns":…,"message":{"type":"update","channel":…,"symbol":…,
 *    "data":{"receive_time_ns":…}}}
 * (arrival_ns: CLOCK_REALTIME after the read; kernel_ns: SO_TIMESTAMPNS, when the data reached the socket).
 * stdout: {"connected":N} once connected, then {"clients":[{"counts":{…},"close_code":…,"reset":…,"eof":…}]}.
 * Exit 1 with a message on stderr when a connection or handshake fails. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    unsigned char *buf;
    size_t len, cap;
    long updates, snapshots, others;
    int close_code, reset, eof, done;
} client_t;

static char *out_buf;
static size_t out_len, out_cap;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void out_append(const char *text, size_t n) {
    if (out_len + n > out_cap) {
        out_cap = (out_cap + n) * 2;
        out_buf = realloc(out_buf, out_cap);
        if (!out_buf) { fprintf(stderr, "ws_fanout_client: out of memory\n"); exit(1); }
    }
    memcpy(out_buf + out_len, text, n);
    out_len += n;
}

static void send_all(int fd, const unsigned char *data, size_t n) {
    while (n > 0) {
        ssize_t sent = send(fd, data, n, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return;
        }
        data += sent;
        n -= (size_t)sent;
    }
}

/* A masked client frame (RFC 6455 §5.3: a client masks every frame). */
static void send_frame(int fd, unsigned opcode, const unsigned char *payload, size_t n) {
    unsigned char frame[16 + 1024];
    if (n > 1024) return;
    size_t at = 0;
    frame[at++] = (unsigned char)(0x80 | opcode);
    if (n < 126) frame[at++] = (unsigned char)(0x80 | n);
    else { frame[at++] = 0x80 | 126; frame[at++] = (unsigned char)(n >> 8); frame[at++] = (unsigned char)n; }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(frame + at, mask, 4); at += 4;
    for (size_t i = 0; i < n; i++) frame[at + i] = payload[i] ^ mask[i % 4];
    send_all(fd, frame, at + n);
}

static int connect_client(const char *host, const char *port, client_t *c, const char *subscribe) {
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) { freeaddrinfo(res); return -1; }
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET /ws HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host, port);
    send_all(fd, (const unsigned char *)request, (size_t)n);
    char head[4096];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == sizeof head - 1) { close(fd); return -1; }
        ssize_t r = recv(fd, head + got, sizeof head - 1 - got, 0);
        if (r <= 0) { close(fd); return -1; }
        got += (size_t)r;
        head[got] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    if (!strstr(head, " 101 ")) { fprintf(stderr, "ws_fanout_client: no upgrade: %.200s\n", head); close(fd); return -1; }
    c->fd = fd;
    c->cap = 1 << 20;
    c->buf = malloc(c->cap);
    size_t rest = got - (size_t)(end + 4 - head);
    memcpy(c->buf, end + 4, rest);
    c->len = rest;
    send_frame(fd, 1, (const unsigned char *)subscribe, strlen(subscribe));
    return 0;
}

/* The text between `"name":"` and the next quote, or NULL. */
static const char *string_member(const unsigned char *p, size_t n, const char *name, size_t *length) {
    char needle[64];
    int k = snprintf(needle, sizeof needle, "\"%s\":\"", name);
    const unsigned char *at = memmem(p, n, needle, (size_t)k);
    if (!at) return NULL;
    at += k;
    const unsigned char *close = memchr(at, '"', n - (size_t)(at - p));
    if (!close) return NULL;
    *length = (size_t)(close - at);
    return (const char *)at;
}

static void handle_text(int index, client_t *c, const unsigned char *p, size_t n, int64_t arrival, int64_t kernel) {
    size_t type_len = 0, channel_len = 0, symbol_len = 0;
    const char *type = string_member(p, n, "type", &type_len);
    if (!type || type_len != 6 || memcmp(type, "update", 6) != 0) {
        if (type && type_len == 8 && memcmp(type, "snapshot", 8) == 0) c->snapshots++; else c->others++;
        return;
    }
    c->updates++;
    const char *channel = string_member(p, n, "channel", &channel_len);
    const char *symbol = string_member(p, n, "symbol", &symbol_len);
    const unsigned char *stamp = memmem(p, n, "\"receive_time_ns\":", 18);
    if (!channel || !symbol || !stamp) return;
    long long receive = strtoll((const char *)stamp + 18, NULL, 10);
    char line[512];
    int k = snprintf(line, sizeof line,
                     "{\"client\":%d,\"arrival_ns\":%lld,\"kernel_ns\":%lld,\"message\":{\"type\":\"update\","
                     "\"channel\":\"%.*s\",\"symbol\":\"%.*s\",\"data\":{\"receive_time_ns\":%lld}}}\n",
                     index, (long long)arrival, (long long)kernel, (int)channel_len, channel, (int)symbol_len, symbol,
                     receive);
    if (k > 0 && (size_t)k < sizeof line) out_append(line, (size_t)k);
}

static void read_client(int index, client_t *c) {
    if (c->cap - c->len < 65536) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    char control[CMSG_SPACE(sizeof(struct timespec))];
    struct iovec iov = {c->buf + c->len, c->cap - c->len};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t r = recvmsg(c->fd, &msg, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        c->reset = 1; c->done = 1; return;
    }
    if (r == 0) { c->eof = 1; c->done = 1; return; }
    int64_t arrival = now_ns(), kernel = 0;
    for (struct cmsghdr *m = CMSG_FIRSTHDR(&msg); m; m = CMSG_NXTHDR(&msg, m)) {
        if (m->cmsg_level == SOL_SOCKET && m->cmsg_type == SO_TIMESTAMPNS) {
            struct timespec t;
            memcpy(&t, CMSG_DATA(m), sizeof t);
            kernel = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
        }
    }
    c->len += (size_t)r;
    size_t start = 0;
    while (c->len - start >= 2) {
        unsigned char *f = c->buf + start;
        unsigned opcode = f[0] & 0x0F;
        uint64_t length = f[1] & 0x7F;
        size_t at = 2;
        if (length == 126) {
            if (c->len - start < 4) break;
            length = ((uint64_t)f[2] << 8) | f[3]; at = 4;
        } else if (length == 127) {
            if (c->len - start < 10) break;
            length = 0;
            for (int i = 0; i < 8; i++) length = (length << 8) | f[2 + i];
            at = 10;
        }
        if (c->len - start < at + length) break;
        const unsigned char *payload = f + at;
        if (opcode == 1) handle_text(index, c, payload, (size_t)length, arrival, kernel);
        else if (opcode == 9) send_frame(c->fd, 10, payload, (size_t)length);
        else if (opcode == 8) { c->close_code = length >= 2 ? (payload[0] << 8 | payload[1]) : 1005; c->done = 1; }
        start += at + (size_t)length;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: ws_fanout_client HOST PORT SYMBOL CHANNELS CLIENTS SECONDS OUT\n");
        return 64;
    }
    const char *host = argv[1], *port = argv[2], *symbol = argv[3], *channels = argv[4], *out = argv[7];
    int count = atoi(argv[5]);
    double seconds = atof(argv[6]);
    if (count <= 0 || seconds <= 0) { fprintf(stderr, "ws_fanout_client: CLIENTS and SECONDS are positive\n"); return 64; }
    char subscribe[512], list[256] = "";
    char copy[256];
    snprintf(copy, sizeof copy, "%s", channels);
    for (char *save = NULL, *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s\"%s\"", used ? "," : "", name);
    }
    snprintf(subscribe, sizeof subscribe, "{\"op\":\"subscribe\",\"symbol\":\"%s\",\"channels\":[%s]}", symbol, list);
    client_t *clients = calloc((size_t)count, sizeof *clients);
    int epoll = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        if (connect_client(host, port, &clients[i], subscribe) != 0) {
            fprintf(stderr, "ws_fanout_client: client %d: cannot connect to %s:%s (%s)\n", i, host, port, strerror(errno));
            return 1;
        }
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epoll, EPOLL_CTL_ADD, clients[i].fd, &event);
    }
    printf("{\"connected\": %d}\n", count);
    fflush(stdout);
    out_cap = 64 << 20;
    out_buf = malloc(out_cap);
    int64_t deadline = now_ns() + (int64_t)(seconds * 1e9);
    struct epoll_event ready[128];
    while (now_ns() < deadline) {
        int n = epoll_wait(epoll, ready, 128, 100);
        for (int k = 0; k < n; k++) {
            client_t *c = &clients[ready[k].data.u32];
            if (!c->done) read_client((int)ready[k].data.u32, c);
            if (c->done) epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
        }
    }
    FILE *file = fopen(out, "w");
    if (!file || fwrite(out_buf, 1, out_len, file) != out_len || fclose(file) != 0) {
        fprintf(stderr, "ws_fanout_client: cannot write %s\n", out);
        return 1;
    }
    printf("{\"clients\": [");
    for (int i = 0; i < count; i++) {
        client_t *c = &clients[i];
        printf("%s{\"counts\": {\"update\": %ld, \"snapshot\": %ld, \"other\": %ld}, \"close_code\": %d, "
               "\"reset\": %s, \"eof\": %s}", i ? ", " : "", c->updates, c->snapshots, c->others,
               c->close_code, c->reset ? "true" : "false", c->eof ? "true" : "false");
    }
    printf("]}\n");
    return 0;
}
