/*
 * vsockclient - the host side of the vsock benchmark: a stream to an
 * echoing guest (guest-shim's vsockecho), reached either through flint's
 * hybrid Unix socket ("CONNECT <port>\n", "OK <hostport>\n") or through
 * AF_VSOCK (QEMU's vhost-vsock).
 *
 *   vsockclient unix:PATH|vsock:CID PORT rr SIZE COUNT
 *       COUNT round trips of SIZE bytes, one at a time: mean and median.
 *   vsockclient unix:PATH|vsock:CID PORT stream MIB
 *       sends MIB MiB and reads the echo back concurrently: throughput of
 *       the echoed bytes, and a checksum comparison.
 *   vsockclient unix:PATH|vsock:CID PORT sink MIB
 *       host to guest: sends MIB MiB to vsockecho's sink port, shuts down
 *       the sending side and reads the sink's 16-byte answer (64-bit
 *       FNV-1a hash and count, little-endian): throughput from the first
 *       byte sent to the answer, and both compared.
 *   vsockclient unix:PATH|vsock:CID PORT accept MIB
 *       guest to host: listens where a guest connection to host port PORT
 *       arrives (the Unix socket PATH_PORT, flint's hybrid scheme, or
 *       AF_VSOCK port PORT from CID), prints "vsockclient: listening",
 *       accepts one connection and reads to its end: MIB MiB of
 *       vsockecho's connect= pattern are expected. Throughput from the
 *       first byte received to the end of the stream.
 *   vsockclient unix:PATH|vsock:CID PORT say TEXT
 *       writes TEXT (e.g. "exit 0\n" to vsockecho's control port) and
 *       closes.
 *
 * Every wait gives up after 60 seconds (status 1, "stalled"). Output is
 * one line "vsockclient: MODE key=value ..." for bench/vsock.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S      60
#define FNV64_START 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "vsockclient: %s: %s\n", what,
            errno == EAGAIN ? "stalled (nothing for 60 s)" : strerror(errno));
    exit(1);
}

/* Blocking I/O that gives up after WAIT_S (EAGAIN) instead of hanging a
 * benchmark on a stuck VM; AF_UNIX and AF_VSOCK both honour these. */
static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = WAIT_S};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
        die("setsockopt");
}

/* flint's hybrid scheme: a guest port P is PATH, a host port P is PATH_P. */
static struct sockaddr_un unix_addr(const char *path, const char *suffix)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s%s", path, suffix);

    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        fprintf(stderr, "vsockclient: socket path %s%s is too long\n", path, suffix);
        exit(2);
    }
    return sun;
}

static int connect_unix(const char *path, unsigned port)
{
    struct sockaddr_un sun = unix_addr(path, "");
    char line[64];
    size_t n = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
        die(path);
    set_timeouts(fd);
    n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (write(fd, line, n) != (ssize_t)n)
        die("CONNECT");
    /* Read the answer a byte at a time: the stream data follows it. */
    for (n = 0; n < sizeof(line) - 1; n++) {
        ssize_t r = read(fd, &line[n], 1);
        if (r != 1) {
            if (r == 0)
                errno = ECONNRESET;
            die("reading the OK line");
        }
        if (line[n] == '\n')
            break;
    }
    line[n] = '\0';
    if (strncmp(line, "OK ", 3)) {
        fprintf(stderr, "vsockclient: expected OK, got '%s'\n", line);
        exit(1);
    }
    return fd;
}

static int connect_vsock(unsigned cid, unsigned port)
{
    struct sockaddr_vm svm = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || connect(fd, (struct sockaddr *)&svm, sizeof(svm)))
        die("AF_VSOCK connect");
    set_timeouts(fd);
    return fd;
}

/* Listen where a guest connection to host port `port` arrives, accept one
 * (within WAIT_S). */
static int accept_one(const char *addr, unsigned port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct pollfd p = {.events = POLLIN};
    int lfd, fd;

    if (!strncmp(addr, "unix:", 5)) {
        char suffix[16];
        snprintf(suffix, sizeof(suffix), "_%u", port);
        struct sockaddr_un sun = unix_addr(addr + 5, suffix);
        unlink(sun.sun_path);
        memcpy(&ss, &sun, sizeof(sun));
        len = sizeof(sun);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    } else {
        struct sockaddr_vm svm = {
            .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
        memcpy(&ss, &svm, sizeof(svm));
        len = sizeof(svm);
        lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 1))
        die("listen");
    printf("vsockclient: listening\n");
    fflush(stdout);
    p.fd = lfd;
    if (poll(&p, 1, WAIT_S * 1000) != 1) {
        errno = EAGAIN;
        die("accept");
    }
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        die("accept");
    if (ss.ss_family == AF_UNIX)
        unlink(((struct sockaddr_un *)&ss)->sun_path);
    close(lfd);
    set_timeouts(fd);
    return fd;
}

static void read_full(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            die("read");
        }
        got += (size_t)n;
    }
}

static void write_full(int fd, const void *buf, size_t len)
{
    for (size_t put = 0; put < len;) {
        ssize_t n = send(fd, (const char *)buf + put, len - put, MSG_NOSIGNAL);
        if (n <= 0)
            die("write");
        put += (size_t)n;
    }
}

static int run_rr(int fd, size_t size, unsigned count)
{
    char *out = calloc(1, size), *in = calloc(1, size);
    double *rtt = calloc(count, sizeof(double)), sum = 0;

    if (!size || !count || !out || !in || !rtt)
        return fprintf(stderr, "vsockclient: rr needs SIZE and COUNT above 0\n"), 2;
    for (unsigned i = 0; i < count; i++) {
        double t0 = now_us();
        memset(out, (int)i, size);
        write_full(fd, out, size);
        read_full(fd, in, size);
        if (memcmp(in, out, size))
            return fprintf(stderr, "vsockclient: echo mismatch\n"), 1;
        rtt[i] = now_us() - t0;
        sum += rtt[i];
    }
    qsort(rtt, count, sizeof(double), cmp_double);
    printf("vsockclient: rr size=%zu count=%u mean_us=%.1f p50_us=%.1f p99_us=%.1f\n", size, count,
           sum / count, rtt[count / 2], rtt[(count * 99) / 100]);
    return 0;
}

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
    while (n--)
        h = (h ^ *p++) * 16777619u;
    return h;
}

static uint64_t fnv64(uint64_t h, const uint8_t *p, size_t n)
{
    while (n--)
        h = (h ^ *p++) * FNV64_PRIME;
    return h;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void fill_pattern(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
}

static void print_rate(const char *mode, uint64_t bytes, double us, const char *check, bool ok)
{
    printf("vsockclient: %s bytes=%llu seconds=%.3f mbit_s=%.2f %s=%s\n", mode,
           (unsigned long long)bytes, us / 1e6, (double)bytes * 8 / us, check,
           ok ? "ok" : "MISMATCH");
}

static int run_stream(int fd, uint64_t bytes)
{
    static uint8_t out[65536], in[65536];
    uint64_t sent = 0, got = 0;
    uint32_t h_out = 2166136261u, h_in = 2166136261u;
    double t0 = now_us();

    fill_pattern(out, sizeof(out));
    while (got < bytes) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < bytes ? POLLOUT : 0)};
        if (poll(&p, 1, WAIT_S * 1000) <= 0)
            return fprintf(stderr, "vsockclient: stalled at %llu/%llu bytes\n",
                           (unsigned long long)got, (unsigned long long)bytes),
                   1;
        if ((p.revents & POLLOUT) && sent < bytes) {
            size_t off = sent % sizeof(out), len = sizeof(out) - off;
            ssize_t n;
            if (len > bytes - sent)
                len = bytes - sent;
            n = send(fd, out + off, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                h_out = fnv(h_out, out + off, (size_t)n);
                sent += (uint64_t)n;
            } else if (n < 0 && errno != EAGAIN) {
                die("send");
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
            if (n == 0)
                return fprintf(stderr, "vsockclient: closed early\n"), 1;
            if (n > 0) {
                h_in = fnv(h_in, in, (size_t)n);
                got += (uint64_t)n;
            } else if (errno != EAGAIN) {
                die("recv");
            }
        }
    }
    print_rate("stream", bytes, now_us() - t0, "checksum", h_in == h_out);
    return h_in == h_out ? 0 : 1;
}

/* Host to guest: everything to the sink, then its hash and count back. */
static int run_sink(int fd, uint64_t bytes)
{
    static uint8_t out[65536];
    uint8_t answer[16];
    uint64_t hash = FNV64_START;
    double t0 = now_us();
    bool ok;

    fill_pattern(out, sizeof(out));
    for (uint64_t sent = 0; sent < bytes;) {
        size_t len = bytes - sent < sizeof(out) ? (size_t)(bytes - sent) : sizeof(out);
        write_full(fd, out, len);
        hash = fnv64(hash, out, len);
        sent += len;
    }
    if (shutdown(fd, SHUT_WR))
        die("shutdown");
    read_full(fd, answer, sizeof(answer));
    ok = get_le64(answer) == hash && get_le64(answer + 8) == bytes;
    print_rate("sink", bytes, now_us() - t0, "check", ok);
    if (!ok)
        fprintf(stderr,
                "vsockclient: sink answered %llu bytes hash %016llx, sent %llu hash %016llx\n",
                (unsigned long long)get_le64(answer + 8), (unsigned long long)get_le64(answer),
                (unsigned long long)bytes, (unsigned long long)hash);
    return ok ? 0 : 1;
}

/* vsockecho's connect= pattern: byte i is (i * 2654435761) >> 24, 32-bit. */
static uint8_t guest_pattern(uint64_t i)
{
    return (uint8_t)(((uint32_t)i * 2654435761u) >> 24);
}

/* Guest to host: read one accepted connection to its end. */
static int run_accept(int fd, uint64_t bytes)
{
    static uint8_t in[65536];
    uint64_t got = 0;
    double t0 = 0;
    bool ok = true;

    for (;;) {
        ssize_t n = read(fd, in, sizeof(in));
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        if (!got)
            t0 = now_us();
        for (ssize_t i = 0; i < n; i++)
            ok &= in[i] == guest_pattern(got + (uint64_t)i);
        got += (uint64_t)n;
    }
    ok &= got == bytes;
    if (!got)
        return fprintf(stderr, "vsockclient: the guest sent nothing\n"), 1;
    print_rate("accept", got, now_us() - t0, "pattern", ok);
    return ok ? 0 : 1;
}

/* Send text, close our side, wait for the peer to close (or go away). */
static int run_say(int fd, const char *text)
{
    char c;

    write_full(fd, text, strlen(text));
    shutdown(fd, SHUT_WR);
    while (read(fd, &c, 1) > 0)
        ;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: vsockclient unix:PATH|vsock:CID PORT rr SIZE COUNT\n"
                    "       vsockclient unix:PATH|vsock:CID PORT stream|sink|accept MIB\n"
                    "       vsockclient unix:PATH|vsock:CID PORT say TEXT\n");
    return 2;
}

int main(int argc, char **argv)
{
    unsigned port;
    const char *mode;
    int fd;

    if (argc < 5 || (strncmp(argv[1], "unix:", 5) && strncmp(argv[1], "vsock:", 6)))
        return usage();
    port = (unsigned)strtoul(argv[2], NULL, 0);
    mode = argv[3];
    if (!strcmp(mode, "accept"))
        return run_accept(accept_one(argv[1], port), strtoull(argv[4], NULL, 0) << 20);
    if (strcmp(mode, "say") && strcmp(mode, "stream") && strcmp(mode, "sink") &&
        (strcmp(mode, "rr") || argc < 6))
        return usage();
    if (!strncmp(argv[1], "unix:", 5))
        fd = connect_unix(argv[1] + 5, port);
    else
        fd = connect_vsock((unsigned)strtoul(argv[1] + 6, NULL, 0), port);
    if (!strcmp(mode, "rr"))
        return run_rr(fd, strtoul(argv[4], NULL, 0), (unsigned)strtoul(argv[5], NULL, 0));
    if (!strcmp(mode, "stream"))
        return run_stream(fd, strtoull(argv[4], NULL, 0) << 20);
    if (!strcmp(mode, "sink"))
        return run_sink(fd, strtoull(argv[4], NULL, 0) << 20);
    return run_say(fd, argv[4]);
}
