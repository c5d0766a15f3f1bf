/*
 * vsockecho - stream services on the guest-shim's virtio-vsock driver, for
 * the vsock end-to-end tests and bench/vsock.sh.
 *
 * Command line:
 *   port=P            echo port (default 1234): every byte comes back; once
 *                     the peer has shut down its sending side and all is
 *                     echoed, vsockecho shuts down its own and closes
 *   sink=S            sink port (default 1235): reads to the end of the
 *                     stream, then answers with 16 bytes (the 64-bit
 *                     FNV-1a hash of the bytes, then their count, both
 *                     little-endian) and closes
 *   ctl=K             control port (default 9999): "exit N\n" closes every
 *                     connection and ends the VM with status N
 *   connect=C         after start, connect to host port C, send `bytes`
 *                     bytes (byte i = (i * 2654435761) >> 24, 32-bit), shut
 *                     down the sending side, read to the end of the stream
 *                     and print what came back
 *   bytes=N           for connect= (default 0)
 *   idle=S            exit with status 2 after S seconds without any vsock
 *                     packet (default: wait for ever)
 *
 * Up to 60 connections are served at once from one loop of non-blocking
 * calls and shim_vsock_wait: a peer that stops reading holds back its own
 * connection only (its echo buffer fills, then vsockecho stops receiving
 * on it, and the driver's credit holds the peer back).
 *
 * Output: "vsockecho: ready cid X ports P S" once listening; for connect=,
 * "vsockecho: connect C: sent N received M fnv H" or "... refused"; the
 * device counters at exit.
 */
#include "shim.h"

#define MAX_SERVED      60
#define ECHO_BUF        16384
#define CTL_LINE        64
#define CONNECT_TIMEOUT 10000000ull /* microseconds */
#define FLUSH_TIMEOUT   1000000ull
#define FNV_OFFSET      0xcbf29ce484222325ull
#define FNV_PRIME       0x100000001b3ull

enum kind { K_NONE, K_ECHO, K_SINK, K_CTL, K_CONNECT };

struct app {
    enum kind kind;
    bool eof;     /* the peer's end of stream was received */
    bool shut_wr; /* our SHUTDOWN(SEND) is out */
    uint8_t *buf; /* ECHO_BUF bytes: echo ring, or the control line */
    uint32_t start, len;
    uint64_t hash, count; /* sink and connect: what came in */
    uint8_t reply[16];    /* sink: hash and count */
    uint32_t reply_sent;
    uint64_t to_send, sent; /* connect */
};

static struct app apps[SHIM_VSOCK_MAX_CONNS];
static uint8_t bufs[SHIM_VSOCK_MAX_CONNS][ECHO_BUF];
static uint8_t scratch[4096];
static unsigned served;
static long long echo_port, sink_port, ctl_port, connect_port = -1;

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void print_stats(void)
{
    struct shim_vsock_info info;

    shim_vsock_info(&info);
    shim_printf("vsockecho: rx %llu packets (%llu bytes), tx %llu packets (%llu bytes), "
                "credit updates %llu, credit requests %llu, resets %llu, transport resets %llu, "
                "bad %llu, open %u, irqs %llu, halts %llu\n",
                (unsigned long long)info.rx_packets, (unsigned long long)info.rx_bytes,
                (unsigned long long)info.tx_packets, (unsigned long long)info.tx_bytes,
                (unsigned long long)info.credit_updates_sent,
                (unsigned long long)info.credit_requests_sent,
                (unsigned long long)info.resets_received, (unsigned long long)info.transport_resets,
                (unsigned long long)info.bad_packets, info.conns_open,
                (unsigned long long)info.irqs, (unsigned long long)shim_halt_count());
}

static void app_open(int c, enum kind kind)
{
    apps[c] = (struct app){.kind = kind, .buf = bufs[c], .hash = FNV_OFFSET};
    served++;
}

static void app_close(int c)
{
    shim_vsock_close(c);
    apps[c].kind = K_NONE;
    served--;
}

/* Our sending side is done: SHUTDOWN(SEND) once. */
static void app_shut_wr(int c)
{
    if (!apps[c].shut_wr) {
        shim_vsock_shutdown(c, SHIM_VSOCK_SHUT_WR);
        apps[c].shut_wr = true;
    }
}

/* Every connection closed, counters printed, the VM ends. */
static _Noreturn void finish(int status)
{
    for (int c = 0; c < SHIM_VSOCK_MAX_CONNS; c++) {
        if (apps[c].kind == K_NONE)
            continue;
        shim_vsock_flush(c, FLUSH_TIMEOUT);
        app_close(c);
    }
    print_stats();
    shim_exit(status);
}

/* An error on c other than "try again": the connection is over. */
static bool app_failed(int c, long ret)
{
    if (ret >= 0 || ret == -SHIM_EAGAIN)
        return false;
    if (ret == -SHIM_ENODEV || ret == -SHIM_EPROTO) {
        shim_printf("vsockecho: FAIL the device stopped (%ld)\n", ret);
        finish(1);
    }
    app_close(c);
    return true;
}

/* One pass of receiving into the free part of the ring and sending from
 * the filled part; true if anything moved. */
static bool echo_step(int c)
{
    struct app *a = &apps[c];
    bool moved = false;

    if (!a->eof && a->len < ECHO_BUF) {
        uint32_t at = (a->start + a->len) % ECHO_BUF;
        uint32_t room = ECHO_BUF - a->len < ECHO_BUF - at ? ECHO_BUF - a->len : ECHO_BUF - at;
        long n = shim_vsock_recv(c, a->buf + at, room, 0);
        if (app_failed(c, n))
            return false;
        if (n >= 0) {
            a->len += (uint32_t)n;
            a->eof = n == 0;
            moved = true;
        }
    }
    if (a->len) {
        uint32_t chunk = a->len < ECHO_BUF - a->start ? a->len : ECHO_BUF - a->start;
        long n = shim_vsock_send(c, a->buf + a->start, chunk, 0);
        if (app_failed(c, n))
            return false;
        if (n > 0) {
            a->start = (a->start + (uint32_t)n) % ECHO_BUF;
            a->len -= (uint32_t)n;
            moved = true;
        }
    }
    if (a->eof && a->len == 0) {
        app_shut_wr(c);
        app_close(c);
        return false;
    }
    return moved;
}

/* Receive and hash; false when nothing came (or c ended). */
static bool hash_step(int c)
{
    struct app *a = &apps[c];

    if (a->eof)
        return false;
    long n = shim_vsock_recv(c, scratch, sizeof(scratch), 0);
    if (app_failed(c, n) || n < 0)
        return false;
    if (n == 0) {
        a->eof = true;
    } else {
        a->hash = fnv1a(a->hash, scratch, (size_t)n);
        a->count += (uint64_t)n;
    }
    return true;
}

static bool sink_step(int c)
{
    struct app *a = &apps[c];

    if (!a->eof) {
        if (!hash_step(c) || apps[c].kind == K_NONE)
            return false;
        if (!a->eof)
            return true;
        put_le64(a->reply, a->hash);
        put_le64(a->reply + 8, a->count);
    }
    long n = shim_vsock_send(c, a->reply + a->reply_sent, sizeof(a->reply) - a->reply_sent, 0);
    if (app_failed(c, n) || n < 0)
        return false;
    a->reply_sent += (uint32_t)n;
    if (a->reply_sent == sizeof(a->reply)) {
        app_shut_wr(c);
        app_close(c);
        return false;
    }
    return true;
}

/* "exit N" ends the VM; anything else is ignored. */
static void ctl_command(const uint8_t *line, uint32_t n)
{
    if (n < 5 || memcmp(line, "exit ", 5))
        return;
    int status = 0;
    for (uint32_t i = 5; i < n && line[i] >= '0' && line[i] <= '9' && status < 100000; i++)
        status = status * 10 + (line[i] - '0');
    finish(status);
}

static bool ctl_step(int c)
{
    struct app *a = &apps[c];
    long n = shim_vsock_recv(c, a->buf + a->len, CTL_LINE - a->len, 0);

    if (app_failed(c, n) || n < 0)
        return false;
    for (uint32_t i = a->len; i < a->len + (uint32_t)n; i++)
        if (a->buf[i] == '\n')
            ctl_command(a->buf, i);
    a->len += (uint32_t)n;
    if (n == 0 || a->len == CTL_LINE) {
        app_close(c);
        return false;
    }
    return true;
}

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(((uint32_t)i * 2654435761u) >> 24);
}

static bool connect_step(int c)
{
    struct app *a = &apps[c];
    bool moved = false;

    if (a->sent < a->to_send) {
        size_t n = a->to_send - a->sent < sizeof(scratch) ? a->to_send - a->sent : sizeof(scratch);
        for (size_t i = 0; i < n; i++)
            scratch[i] = pattern(a->sent + i);
        long ret = shim_vsock_send(c, scratch, n, 0);
        if (app_failed(c, ret)) {
            shim_printf("vsockecho: connect %lld: send failed (%ld)\n", connect_port, ret);
            return false;
        }
        if (ret > 0) {
            a->sent += (uint64_t)ret;
            moved = true;
        }
    }
    if (a->sent == a->to_send)
        app_shut_wr(c);
    if (hash_step(c)) {
        if (apps[c].kind == K_NONE) {
            shim_printf("vsockecho: connect %lld: receive failed\n", connect_port);
            return false;
        }
        moved = true;
    }
    if (a->eof && a->sent == a->to_send) {
        shim_printf("vsockecho: connect %lld: sent %llu received %llu fnv %016llx\n", connect_port,
                    (unsigned long long)a->sent, (unsigned long long)a->count,
                    (unsigned long long)a->hash);
        app_close(c);
        return false;
    }
    return moved;
}

/* Serve c until nothing moves on it. */
static void serve(int c)
{
    for (bool moved = true; moved && apps[c].kind != K_NONE;) {
        switch (apps[c].kind) {
        case K_ECHO:
            moved = echo_step(c);
            break;
        case K_SINK:
            moved = sink_step(c);
            break;
        case K_CTL:
            moved = ctl_step(c);
            break;
        case K_CONNECT:
            moved = connect_step(c);
            break;
        default:
            moved = false;
            break;
        }
    }
}

/* Take new connections on `port` while there is room (the control port
 * always gets in). */
static void accept_all(long long port, enum kind kind)
{
    while (served < MAX_SERVED || kind == K_CTL) {
        int c = shim_vsock_accept((uint32_t)port, 0);
        if (c == -SHIM_EAGAIN)
            return;
        if (c < 0) {
            shim_printf("vsockecho: FAIL accept on %lld (%d)\n", port, c);
            finish(1);
        }
        app_open(c, kind);
    }
}

static void start_connect(void)
{
    long long bytes = shim_arg_int("bytes", 0);
    int c = shim_vsock_connect((uint32_t)connect_port, CONNECT_TIMEOUT);

    if (c == -SHIM_ECONNREFUSED) {
        shim_printf("vsockecho: connect %lld: refused\n", connect_port);
        return;
    }
    if (c < 0) {
        shim_printf("vsockecho: connect %lld: failed (%d)\n", connect_port, c);
        return;
    }
    app_open(c, K_CONNECT);
    apps[c].to_send = bytes > 0 ? (uint64_t)bytes : 0;
}

static int listen_on(long long port)
{
    int ret = port < 0 || port > 0xffffffffll ? -SHIM_EINVAL : shim_vsock_listen((uint32_t)port);

    if (ret)
        shim_printf("vsockecho: FAIL listen on port %lld (%d)\n", port, ret);
    return ret;
}

int main(void)
{
    struct shim_vsock_info info;
    long long idle = shim_arg_int("idle", 0);

    echo_port = shim_arg_int("port", 1234);
    sink_port = shim_arg_int("sink", 1235);
    ctl_port = shim_arg_int("ctl", 9999);
    connect_port = shim_arg_int("connect", -1);
    if (shim_vsock_info(&info)) {
        shim_printf("vsockecho: FAIL no vsock device\n");
        return 1;
    }
    if (listen_on(echo_port) || listen_on(sink_port) || listen_on(ctl_port))
        return 1;
    shim_printf("vsockecho: ready cid %llu ports %lld %lld\n", (unsigned long long)info.guest_cid,
                echo_port, sink_port);
    if (connect_port >= 0)
        start_connect();
    for (;;) {
        accept_all(ctl_port, K_CTL);
        accept_all(echo_port, K_ECHO);
        accept_all(sink_port, K_SINK);
        for (int c = 0; c < SHIM_VSOCK_MAX_CONNS; c++)
            if (apps[c].kind != K_NONE)
                serve(c);
        int ret = shim_vsock_wait(idle > 0 ? (uint64_t)idle * 1000000 : SHIM_VSOCK_FOREVER);
        if (ret == -SHIM_ETIMEDOUT) {
            shim_printf("vsockecho: idle for %lld s\n", idle);
            finish(2);
        }
        if (ret) {
            shim_printf("vsockecho: FAIL wait (%d)\n", ret);
            finish(1);
        }
    }
}
