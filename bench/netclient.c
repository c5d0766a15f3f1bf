/*
 * netclient - the host side of the network benchmark: UDP to an echoing
 * guest (guest-shim's netecho) over a tap.
 *
 *   netclient rr ADDR PORT SIZE COUNT
 *       COUNT request/response round trips of SIZE-byte datagrams, one at
 *       a time: prints the mean and median round-trip time.
 *   netclient stream ADDR PORT SIZE COUNT WINDOW
 *       keeps WINDOW datagrams in flight until COUNT came back: prints the
 *       echoed payload throughput. A datagram not back within 200 ms counts
 *       as lost and is replaced.
 *
 * Output is one line "netclient: MODE key=value ..." for bench/net.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static int open_socket(const char *addr, const char *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
        fprintf(stderr, "netclient: %s:%s: %s\n", addr, port, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Wait up to ms for a datagram; returns its length or -1 on timeout. */
static ssize_t recv_wait(int fd, void *buf, size_t len, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    if (poll(&p, 1, ms) <= 0)
        return -1;
    return recv(fd, buf, len, 0);
}

static int run_rr(int fd, size_t size, unsigned count)
{
    char *out = calloc(1, size), *in = calloc(1, size + 1);
    double *rtt = calloc(count, sizeof(double)), sum = 0;
    unsigned got = 0, lost = 0;

    for (unsigned i = 0; i < count; i++) {
        double t0;
        ssize_t n;
        memcpy(out, &i, sizeof(i) < size ? sizeof(i) : size);
        t0 = now_us();
        if (send(fd, out, size, 0) < 0)
            return perror("send"), 1;
        do
            n = recv_wait(fd, in, size + 1, 1000);
        while (n >= 0 && (n != (ssize_t)size || memcmp(in, out, size)));
        if (n < 0) {
            lost++;
            continue;
        }
        rtt[got] = now_us() - t0;
        sum += rtt[got++];
    }
    if (!got)
        return fprintf(stderr, "netclient: no replies\n"), 1;
    qsort(rtt, got, sizeof(double), cmp_double);
    printf("netclient: rr size=%zu count=%u lost=%u mean_us=%.1f p50_us=%.1f p99_us=%.1f\n", size,
           count, lost, sum / got, rtt[got / 2], rtt[(got * 99) / 100]);
    return 0;
}

static int run_stream(int fd, size_t size, unsigned count, unsigned window)
{
    char *buf = calloc(1, size + 1);
    unsigned sent = 0, got = 0, lost = 0, inflight = 0;
    double t0 = now_us(), elapsed;

    memset(buf, 0x5a, size);
    while (got < count) {
        ssize_t n;
        while (inflight < window && sent < count + lost) {
            if (send(fd, buf, size, 0) < 0) {
                if (errno == ENOBUFS || errno == EAGAIN)
                    break;
                return perror("send"), 1;
            }
            sent++;
            inflight++;
        }
        n = recv_wait(fd, buf, size + 1, 200);
        if (n < 0) {
            lost += inflight; /* everything in flight is presumed gone */
            inflight = 0;
            if (lost > count)
                return fprintf(stderr, "netclient: too many losses\n"), 1;
            continue;
        }
        if (inflight)
            inflight--;
        if ((size_t)n == size)
            got++;
    }
    elapsed = now_us() - t0;
    printf("netclient: stream size=%zu count=%u window=%u lost=%u seconds=%.3f mbit_s=%.2f "
           "pps=%.0f\n",
           size, count, window, lost, elapsed / 1e6, (double)got * size * 8 / elapsed,
           got / (elapsed / 1e6));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && !strcmp(argv[1], "rr"))
        return run_rr(open_socket(argv[2], argv[3]), strtoul(argv[4], NULL, 0),
                      (unsigned)strtoul(argv[5], NULL, 0));
    if (argc >= 7 && !strcmp(argv[1], "stream"))
        return run_stream(open_socket(argv[2], argv[3]), strtoul(argv[4], NULL, 0),
                          (unsigned)strtoul(argv[5], NULL, 0), (unsigned)strtoul(argv[6], NULL, 0));
    fprintf(stderr, "usage: netclient rr ADDR PORT SIZE COUNT\n"
                    "       netclient stream ADDR PORT SIZE COUNT WINDOW\n");
    return 2;
}
