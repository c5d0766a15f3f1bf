/*
 * End-to-end tests: virtio-vsock between host Unix sockets and guest-shim's
 * vsockecho (guest-shim/examples/vsockecho), through flint's hybrid scheme:
 * 64 MiB each way with a checksum, 32 connections at once, refused ports
 * both ways, half-close in both directions, a host reader that stops (the
 * credit must hold flint's memory), and a hostile driver
 * (tests/e2e/guests/vsockhostile.c) that must leave flint working.
 *
 * flint runs in the test's main thread (run_cmd); a host thread talks to
 * the guest and ends the VM through vsockecho's control port.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S    600.0
#define BOOT_S       150.0 /* for vsockecho to answer its first connection */
#define IO_S         240.0 /* for one transfer */
#define CID          "3"
#define ECHO_PORT    1234
#define SINK_PORT    1235
#define CTL_PORT     9999
#define VSOCKECHO    VSOCKECHO_ELF
#define VSOCKHOSTILE GUEST_DIR "/vsockhostile.elf"
#define BIG          (64u << 20)
#define FNV_OFFSET   0xcbf29ce484222325ull
#define FNV_PRIME    0x100000001b3ull

/* ---- helpers ---- */

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* Host -> guest data: a stream from a seed, any offset. */
static void pattern(uint8_t *p, size_t n, uint64_t off, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (off + i) * 0x9e3779b97f4a7c15ull + seed;
        p[i] = (uint8_t)(x >> 29 ^ x >> 47);
    }
}

/* vsockecho's connect= stream: byte i = (i * 2654435761) >> 24, 32-bit. */
static uint8_t guest_byte(uint64_t i)
{
    return (uint8_t)(((uint32_t)i * 2654435761u) >> 24);
}

struct host {
    char uds[64];
    char why[512];
    bool ok;
    pthread_t thread;
    void *(*fn)(void *);
    int listen_fd; /* <uds>_<port> for guest-initiated tests, or -1 */
    uint64_t a, b; /* per-test values */
};

static void fail(struct host *h, const char *fmt, ...)
{
    va_list ap;
    if (!h->ok && h->why[0])
        return; /* keep the first reason */
    va_start(ap, fmt);
    vsnprintf(h->why, sizeof(h->why), fmt, ap);
    va_end(ap);
    h->ok = false;
}

static void set_timeout(int fd, double s)
{
    struct timeval tv = {.tv_sec = (time_t)s, .tv_usec = (suseconds_t)((s - (time_t)s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* One try: connect to flint's socket, CONNECT port. Returns the fd after
 * "OK <n>\n", or -1 (no socket yet, or refused: end of stream). */
static int try_connect(const char *uds, unsigned port)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char line[32];
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t n = 0;

    if (fd < 0)
        return -1;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
    set_timeout(fd, 30);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        goto fail;
    n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n)
        goto fail;
    /* Byte by byte: what follows the line is the guest's. */
    for (n = 0; n < sizeof(line) - 1; n++) {
        if (recv(fd, line + n, 1, 0) != 1)
            goto fail;
        if (line[n] == '\n')
            break;
    }
    line[n] = 0;
    if (strncmp(line, "OK ", 3) != 0 || strtoul(line + 3, NULL, 10) < (1u << 30))
        goto fail;
    set_timeout(fd, IO_S);
    return fd;
fail:
    close(fd);
    return -1;
}

/* Connect, retrying while the guest boots. */
static int host_connect(struct host *h, unsigned port)
{
    double end = now_s() + BOOT_S;
    while (now_s() < end) {
        int fd = try_connect(h->uds, port);
        if (fd >= 0)
            return fd;
        usleep(100000);
    }
    fail(h, "no connection to guest port %u through %s within %.0f s", port, h->uds, BOOT_S);
    return -1;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

/* Read exactly n bytes (false on end of stream, error or timeout). */
static bool recv_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t k = recv(fd, b, n, 0);
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

/* Send "exit N" to vsockecho's control port: the VM ends with N. */
static void guest_exit(struct host *h, int status)
{
    char line[32];
    int fd = host_connect(h, CTL_PORT);
    if (fd < 0)
        return;
    int n = snprintf(line, sizeof(line), "exit %d\n", status);
    if (!send_all(fd, line, (size_t)n))
        fail(h, "sending the exit line failed");
    shutdown(fd, SHUT_WR);
    close(fd);
}

static int listen_at(const char *uds, unsigned port)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", uds, port);
    unlink(a.sun_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", a.sun_path,
                 strerror(errno));
    cr_assert_eq(listen(fd, 2048), 0);
    return fd;
}

static void unlisten(const char *uds, unsigned port, int fd)
{
    char p[128];
    snprintf(p, sizeof(p), "%s_%u", uds, port);
    unlink(p);
    if (fd >= 0)
        close(fd);
}

static void host_init(struct host *h)
{
    static unsigned n;
    memset(h, 0, sizeof(*h));
    h->ok = true;
    h->listen_fd = -1;
    snprintf(h->uds, sizeof(h->uds), "/tmp/flint-e2e-vsock-%d-%u.sock", getpid(), n++);
    unlink(h->uds);
}

/* Run flint with `guest` and the command line, the host side in a thread. */
static struct flint_result run_vm(struct host *h, const char *guest, const char *cmdline)
{
    char vsock[96];
    struct flint_result r;

    snprintf(vsock, sizeof(vsock), CID ",%s", h->uds);
    char *argv[] = {FLINT_BIN, "run",       "--kernel",      (char *)guest, "--vsock",
                    vsock,     "--cmdline", (char *)cmdline, "--stats",     NULL};
    cr_assert_eq(pthread_create(&h->thread, NULL, h->fn, h), 0);
    r = run_cmd(argv, TIMEOUT_S);
    pthread_join(h->thread, NULL);
    return r;
}

static void check(const struct host *h, const struct flint_result *r, int status)
{
    cr_assert_not(r->timed_out, "flint timed out\nhost: %s\nstdout:\n%s\nstderr:\n%s", h->why,
                  r->out, r->err);
    cr_assert(h->ok, "host side: %s\nstdout:\n%s\nstderr:\n%s", h->why, r->out, r->err);
    cr_assert_eq(r->status, status, "status %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status,
                 status, r->out, r->err);
    cr_assert_eq(access(h->uds, F_OK), -1, "flint left %s behind", h->uds);
}

static void has(const struct flint_result *r, const char *needle)
{
    cr_assert(strstr(r->out, needle), "missing '%s' in:\n%s\nstderr:\n%s", needle, r->out, r->err);
}

/* ---- host -> guest: 64 MiB to the sink, checked by its hash ---- */

static void *sink_main(void *arg)
{
    struct host *h = arg;
    static uint8_t buf[1 << 16];
    uint8_t reply[16];
    uint64_t hash = FNV_OFFSET, want_hash, want_count;
    int fd = host_connect(h, SINK_PORT);

    if (fd < 0)
        return NULL;
    for (uint64_t off = 0; off < BIG; off += sizeof(buf)) {
        pattern(buf, sizeof(buf), off, 1);
        hash = fnv1a(hash, buf, sizeof(buf));
        if (!send_all(fd, buf, sizeof(buf))) {
            fail(h, "send failed at %llu of %u bytes: %s", (unsigned long long)off, BIG,
                 strerror(errno));
            close(fd);
            return NULL;
        }
    }
    shutdown(fd, SHUT_WR);
    if (!recv_all(fd, reply, sizeof(reply))) {
        fail(h, "no hash from the sink");
    } else {
        memcpy(&want_hash, reply, 8);
        memcpy(&want_count, reply + 8, 8);
        if (want_count != BIG || want_hash != hash)
            fail(h, "the guest got %llu bytes with hash %016llx; sent %u with hash %016llx",
                 (unsigned long long)want_count, (unsigned long long)want_hash, BIG,
                 (unsigned long long)hash);
        if (recv(fd, buf, 1, 0) != 0)
            fail(h, "no end of stream after the sink's answer");
    }
    close(fd);
    guest_exit(h, 0);
    return NULL;
}

Test(vsock, host_to_guest_64_mib_with_checksum, .timeout = TIMEOUT_S)
{
    struct host h;
    host_init(&h);
    h.fn = sink_main;
    struct flint_result r = run_vm(&h, VSOCKECHO, "console=ttyS0");
    check(&h, &r, 0);
    has(&r, "vsockecho: ready");
    flint_result_free(&r);
}

/* ---- guest -> host: 64 MiB from connect=, checked byte by byte ---- */

static void *source_main(void *arg)
{
    struct host *h = arg;
    static uint8_t buf[1 << 16];
    static const char reply[] = "thanks, all of it";
    struct pollfd p = {.fd = h->listen_fd, .events = POLLIN};
    uint64_t got = 0;
    int fd;

    if (poll(&p, 1, (int)(BOOT_S * 1000)) != 1) {
        fail(h, "the guest did not connect to port 4000 within %.0f s", BOOT_S);
        return NULL;
    }
    fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    set_timeout(fd, IO_S);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            fail(h, "recv after %llu bytes: %s", (unsigned long long)got, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != guest_byte(got + (uint64_t)i)) {
                fail(h, "byte %llu differs", (unsigned long long)(got + (uint64_t)i));
                close(fd);
                return NULL;
            }
        got += (uint64_t)n;
    }
    if (got != BIG)
        fail(h, "the host got %llu of %u bytes", (unsigned long long)got, BIG);
    /* The guest shut down its side first; this side still sends. */
    if (!send_all(fd, reply, sizeof(reply) - 1))
        fail(h, "the reply after the guest's shutdown failed");
    close(fd);
    h->a = fnv1a(FNV_OFFSET, (const uint8_t *)reply, sizeof(reply) - 1);
    h->b = sizeof(reply) - 1;
    /* Let vsockecho print its result before it goes. */
    usleep(500000);
    guest_exit(h, 0);
    return NULL;
}

Test(vsock, guest_to_host_64_mib_with_checksum, .timeout = TIMEOUT_S)
{
    struct host h;
    char want[160];
    host_init(&h);
    h.fn = source_main;
    h.listen_fd = listen_at(h.uds, 4000);
    struct flint_result r = run_vm(&h, VSOCKECHO, "console=ttyS0 connect=4000 bytes=67108864");
    unlisten(h.uds, 4000, h.listen_fd);
    check(&h, &r, 0);
    snprintf(want, sizeof(want), "vsockecho: connect 4000: sent %u received %llu fnv %016llx", BIG,
             (unsigned long long)h.b, (unsigned long long)h.a);
    has(&r, want);
    flint_result_free(&r);
}

/* ---- 32 connections at once ---- */

#define NCONN      32
#define CONN_BYTES (512u << 10)

static void *many_main(void *arg)
{
    struct host *h = arg;
    struct conn {
        int fd;
        uint64_t sent, got;
        bool eof;
    } c[NCONN];
    static uint8_t buf[16384], want[16384];
    unsigned done = 0;
    double end;

    for (unsigned i = 0; i < NCONN; i++) {
        c[i] = (struct conn){.fd = host_connect(h, ECHO_PORT)};
        if (c[i].fd < 0)
            return NULL;
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
    }
    end = now_s() + IO_S;
    while (done < NCONN && now_s() < end) {
        struct pollfd p[NCONN];
        for (unsigned i = 0; i < NCONN; i++)
            p[i] =
                (struct pollfd){.fd = c[i].eof ? -1 : c[i].fd,
                                .events = (short)(POLLIN | (c[i].sent < CONN_BYTES ? POLLOUT : 0))};
        if (poll(p, NCONN, 1000) < 0)
            break;
        for (unsigned i = 0; i < NCONN; i++) {
            if (c[i].eof)
                continue;
            if ((p[i].revents & POLLOUT) && c[i].sent < CONN_BYTES) {
                size_t n =
                    CONN_BYTES - c[i].sent < sizeof(buf) ? CONN_BYTES - c[i].sent : sizeof(buf);
                pattern(buf, n, c[i].sent, 100 + i);
                ssize_t k = send(c[i].fd, buf, n, MSG_NOSIGNAL);
                if (k > 0)
                    c[i].sent += (uint64_t)k;
                if (c[i].sent == CONN_BYTES)
                    shutdown(c[i].fd, SHUT_WR);
            }
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t k = recv(c[i].fd, buf, sizeof(buf), 0);
                if (k > 0) {
                    pattern(want, (size_t)k, c[i].got, 100 + i);
                    if (memcmp(buf, want, (size_t)k)) {
                        fail(h, "connection %u: echoed bytes at %llu differ", i,
                             (unsigned long long)c[i].got);
                        return NULL;
                    }
                    c[i].got += (uint64_t)k;
                } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                    c[i].eof = true;
                    done++;
                    if (c[i].got != CONN_BYTES)
                        fail(h, "connection %u: end of stream after %llu of %u bytes", i,
                             (unsigned long long)c[i].got, CONN_BYTES);
                }
            }
        }
    }
    if (done < NCONN)
        fail(h, "%u of %u connections finished in time", done, NCONN);
    for (unsigned i = 0; i < NCONN; i++)
        close(c[i].fd);
    guest_exit(h, 0);
    return NULL;
}

Test(vsock, thirty_two_connections_at_once_with_half_close, .timeout = TIMEOUT_S)
{
    struct host h;
    host_init(&h);
    h.fn = many_main;
    struct flint_result r = run_vm(&h, VSOCKECHO, "console=ttyS0");
    check(&h, &r, 0);
    flint_result_free(&r);
}

/* ---- refused ports, both ways ---- */

static void *refused_main(void *arg)
{
    struct host *h = arg;
    int fd = host_connect(h, ECHO_PORT); /* the guest is up */

    if (fd < 0)
        return NULL;
    close(fd);
    /* Nobody listens on guest port 4321: RST, so flint closes without OK. */
    fd = try_connect(h->uds, 4321);
    if (fd >= 0) {
        fail(h, "a connection to a guest port nobody listens on was accepted");
        close(fd);
    }
    usleep(500000); /* vsockecho's refused connect= has printed by now */
    guest_exit(h, 0);
    return NULL;
}

Test(vsock, refused_ports_both_ways, .timeout = TIMEOUT_S)
{
    struct host h;
    host_init(&h);
    h.fn = refused_main;
    /* Nobody listens on <uds>_4001 either. */
    struct flint_result r = run_vm(&h, VSOCKECHO, "console=ttyS0 connect=4001 bytes=10");
    check(&h, &r, 0);
    has(&r, "vsockecho: connect 4001: refused");
    flint_result_free(&r);
}

/* ---- a host reader that stops: memory stays bounded ---- */

static pid_t find_flint(const char *uds)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;

    while (d && (e = readdir(d))) {
        char path[300], cmd[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            cmd[i] = cmd[i] ? cmd[i] : ' ';
        cmd[n] = 0;
        if (strstr(cmd, uds) && strstr(cmd, "flint")) {
            found = (pid_t)atoi(e->d_name);
            break;
        }
    }
    if (d)
        closedir(d);
    return found;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

#define STALL_LIMIT (32u << 20) /* what the host tries to push */
#define STALL_BOUND (8u << 20)  /* what may be in flight at most */

static void *stall_main(void *arg)
{
    struct host *h = arg;
    static uint8_t buf[65536], want[65536];
    uint64_t sent = 0, got = 0;
    double idle_since = now_s();
    int fd = host_connect(h, ECHO_PORT);
    pid_t pid = find_flint(h->uds);
    long rss0;

    if (fd < 0)
        return NULL;
    if (!pid) {
        fail(h, "cannot find flint's pid");
        close(fd);
        return NULL;
    }
    rss0 = rss_kib(pid);
    /* Write without reading until nothing moves for 3 s. */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (sent < STALL_LIMIT && now_s() - idle_since < 3.0) {
        pattern(buf, sizeof(buf), sent, 7);
        ssize_t k = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
        if (k > 0) {
            sent += (uint64_t)k;
            idle_since = now_s();
        } else {
            usleep(20000);
        }
    }
    long rss1 = rss_kib(pid);
    h->a = sent;
    h->b = (uint64_t)(rss1 - rss0);
    if (sent >= STALL_BOUND)
        fail(h, "a reader that stopped let %llu bytes in (bound %u)", (unsigned long long)sent,
             STALL_BOUND);
    if (rss1 - rss0 > 4096)
        fail(h, "flint's RSS grew by %ld KiB while the reader stalled", rss1 - rss0);
    /* Read it all back: nothing may be lost. */
    fcntl(fd, F_SETFL, 0);
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        if (k <= 0)
            break;
        pattern(want, (size_t)k, got, 7);
        if (memcmp(buf, want, (size_t)k)) {
            fail(h, "echoed bytes at %llu differ after the stall", (unsigned long long)got);
            break;
        }
        got += (uint64_t)k;
    }
    if (got != sent)
        fail(h, "sent %llu bytes, %llu came back", (unsigned long long)sent,
             (unsigned long long)got);
    close(fd);
    guest_exit(h, 0);
    return NULL;
}

Test(vsock, stalled_host_reader_keeps_memory_bounded, .timeout = TIMEOUT_S)
{
    struct host h;
    host_init(&h);
    h.fn = stall_main;
    struct flint_result r = run_vm(&h, VSOCKECHO, "console=ttyS0");
    check(&h, &r, 0);
    cr_log_info("stalled reader: %llu bytes in flight, flint RSS +%llu KiB",
                (unsigned long long)h.a, (unsigned long long)h.b);
    flint_result_free(&r);
}

/* ---- a hostile driver ---- */

/* Echo every connection to <uds>_1234 until told to stop. */
static volatile bool echo_stop;

static void *echo_server_main(void *arg)
{
    struct host *h = arg;
    enum { MAXC = 1200 };
    static struct pollfd p[MAXC + 1];
    static uint8_t buf[4096];
    unsigned n = 1;

    p[0] = (struct pollfd){.fd = h->listen_fd, .events = POLLIN};
    while (!echo_stop) {
        if (poll(p, n, 200) <= 0)
            continue;
        if ((p[0].revents & POLLIN) && n < MAXC + 1) {
            int fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0)
                p[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        for (unsigned i = 1; i < n; i++) {
            if (!p[i].revents)
                continue;
            ssize_t k = recv(p[i].fd, buf, sizeof(buf), 0);
            if (k > 0 && send(p[i].fd, buf, (size_t)k, MSG_NOSIGNAL) == k)
                continue;
            if (k < 0 && errno == EAGAIN)
                continue;
            close(p[i].fd);
            p[i--] = p[--n];
        }
    }
    for (unsigned i = 1; i < n; i++)
        close(p[i].fd);
    return NULL;
}

static void *idle_main(void *arg)
{
    (void)arg;
    return NULL;
}

Test(vsock, hostile_driver_leaves_flint_working, .timeout = TIMEOUT_S)
{
    struct host h;
    pthread_t echo;
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    host_init(&h);
    h.fn = idle_main;
    h.listen_fd = listen_at(h.uds, 1234);
    echo_stop = false;
    cr_assert_eq(pthread_create(&echo, NULL, echo_server_main, &h), 0);
    struct flint_result r = run_vm(&h, VSOCKHOSTILE, "console=ttyS0 port=1234");
    echo_stop = true;
    pthread_join(echo, NULL);
    unlisten(h.uds, 1234, h.listen_fd);
    check(&h, &r, 0);
    has(&r, "vsockhostile: OK");
    cr_assert(strstr(r.err, "bad packets") || strstr(r.out, "bad packets"),
              "no vsock stats:\n%s\n%s", r.out, r.err);
    flint_result_free(&r);
}
