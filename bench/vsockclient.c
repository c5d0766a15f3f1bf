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
 *
 * Output is one line "vsockclient: MODE key=value ..." for bench/vsock.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
    fprintf(stderr, "vsockclient: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int connect_unix(const char *path, unsigned port)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char line[64];
    size_t n = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
        die(path);
    n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (write(fd, line, n) != (ssize_t)n)
        die("CONNECT");
    /* Read the answer a byte at a time: the stream data follows it. */
    for (n = 0; n < sizeof(line) - 1; n++) {
        if (read(fd, &line[n], 1) != 1)
            die("reading the OK line");
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
    return fd;
}

static void read_full(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            die(n ? "read" : "read: connection closed");
        got += (size_t)n;
    }
}

static int run_rr(int fd, size_t size, unsigned count)
{
    char *out = calloc(1, size), *in = calloc(1, size);
    double *rtt = calloc(count, sizeof(double)), sum = 0;

    for (unsigned i = 0; i < count; i++) {
        double t0 = now_us();
        memset(out, (int)i, size);
        if (write(fd, out, size) != (ssize_t)size)
            die("write");
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

static int run_stream(int fd, uint64_t bytes)
{
    static uint8_t out[65536], in[65536];
    uint64_t sent = 0, got = 0;
    uint32_t h_out = 2166136261u, h_in = 2166136261u;
    double t0 = now_us(), el;

    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 7 + 3);
    while (got < bytes) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < bytes ? POLLOUT : 0)};
        if (poll(&p, 1, 30000) <= 0)
            return fprintf(stderr, "vsockclient: stalled at %llu/%llu bytes\n",
                           (unsigned long long)got, (unsigned long long)bytes),
                   1;
        if ((p.revents & POLLOUT) && sent < bytes) {
            size_t off = sent % sizeof(out), len = sizeof(out) - off;
            ssize_t n;
            if (len > bytes - sent)
                len = bytes - sent;
            n = send(fd, out + off, len, MSG_DONTWAIT);
            if (n > 0) {
                h_out = fnv(h_out, out + off, (size_t)n);
                sent += (uint64_t)n;
            } else if (n < 0 && errno != EAGAIN) {
                die("send");
            }
        }
        if (p.revents & (POLLIN | POLLHUP)) {
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
    el = now_us() - t0;
    printf("vsockclient: stream bytes=%llu seconds=%.3f mbit_s=%.2f checksum=%s\n",
           (unsigned long long)bytes, el / 1e6, (double)bytes * 8 / el,
           h_in == h_out ? "ok" : "MISMATCH");
    return h_in == h_out ? 0 : 1;
}

int main(int argc, char **argv)
{
    unsigned port;
    int fd;

    if (argc < 4)
        goto usage;
    port = (unsigned)strtoul(argv[2], NULL, 0);
    if (!strncmp(argv[1], "unix:", 5))
        fd = connect_unix(argv[1] + 5, port);
    else if (!strncmp(argv[1], "vsock:", 6))
        fd = connect_vsock((unsigned)strtoul(argv[1] + 6, NULL, 0), port);
    else
        goto usage;
    if (argc >= 6 && !strcmp(argv[3], "rr"))
        return run_rr(fd, strtoul(argv[4], NULL, 0), (unsigned)strtoul(argv[5], NULL, 0));
    if (argc >= 5 && !strcmp(argv[3], "stream"))
        return run_stream(fd, strtoull(argv[4], NULL, 0) << 20);
usage:
    fprintf(stderr, "usage: vsockclient unix:PATH|vsock:CID PORT rr SIZE COUNT\n"
                    "       vsockclient unix:PATH|vsock:CID PORT stream MIB\n");
    return 2;
}
