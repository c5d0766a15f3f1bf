/*
 * vsock-guest: the Linux guest's side of the vsock end-to-end test, a
 * static binary in the test initramfs (busybox has no AF_VSOCK).
 *
 *   vsock-guest echo PORT            accept one connection on PORT, send
 *                                    every byte back until EOF
 *   vsock-guest send CID PORT BYTES  connect to CID:PORT, send BYTES of a
 *                                    pattern while reading the echo, check
 *                                    every byte that comes back
 *
 * Each prints one line saying what happened and exits 0 on success.
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
#include <unistd.h>

static int die(const char *what)
{
    printf("vsock-guest: %s: %s\n", what, strerror(errno));
    return 1;
}

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 131 + (i >> 9) + 7);
}

static int echo(unsigned port)
{
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    char buf[65536];
    unsigned long long total = 0;
    int s = socket(AF_VSOCK, SOCK_STREAM, 0), c;

    if (s < 0)
        return die("socket");
    if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) || listen(s, 1))
        return die("bind/listen");
    c = accept(s, NULL, NULL);
    if (c < 0)
        return die("accept");
    for (;;) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0)
            return die("read");
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c, buf + off, (size_t)(n - off));
            if (w < 0)
                return die("write");
            off += w;
        }
        total += (unsigned long long)n;
    }
    close(c);
    printf("vsock-guest: echoed %llu bytes on port %u\n", total, port);
    return 0;
}

static int send_and_check(unsigned cid, unsigned port, uint64_t bytes)
{
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    uint64_t sent = 0, got = 0;
    uint8_t out[16384], in[65536];
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);

    if (s < 0)
        return die("socket");
    if (connect(s, (struct sockaddr *)&addr, sizeof(addr)))
        return die("connect");
    while (got < bytes) {
        struct pollfd p = {.fd = s, .events = POLLIN | (sent < bytes ? POLLOUT : 0)};
        if (poll(&p, 1, 60000) <= 0)
            return die("poll (stalled for 60 s)");
        if (p.revents & POLLIN) {
            ssize_t n = read(s, in, sizeof(in));
            if (n <= 0) {
                printf("vsock-guest: the echo ended after %llu of %llu bytes\n",
                       (unsigned long long)got, (unsigned long long)bytes);
                return 1;
            }
            for (ssize_t i = 0; i < n; i++, got++) {
                if (in[i] != pattern(got)) {
                    printf("vsock-guest: byte %llu came back as 0x%02x, sent 0x%02x\n",
                           (unsigned long long)got, in[i], pattern(got));
                    return 1;
                }
            }
        }
        if ((p.revents & POLLOUT) && sent < bytes) {
            size_t len = bytes - sent < sizeof(out) ? (size_t)(bytes - sent) : sizeof(out);
            for (size_t i = 0; i < len; i++)
                out[i] = pattern(sent + i);
            ssize_t n = write(s, out, len);
            if (n < 0)
                return die("write");
            sent += (uint64_t)n;
            if (sent == bytes)
                shutdown(s, SHUT_WR);
        }
    }
    close(s);
    printf("vsock-guest: sent %llu bytes to %u:%u, all came back intact\n",
           (unsigned long long)bytes, cid, port);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "echo"))
        return echo((unsigned)strtoul(argv[2], NULL, 0));
    if (argc == 5 && !strcmp(argv[1], "send"))
        return send_and_check((unsigned)strtoul(argv[2], NULL, 0),
                              (unsigned)strtoul(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
    fprintf(stderr, "usage: vsock-guest echo PORT | send CID PORT BYTES\n");
    return 2;
}
