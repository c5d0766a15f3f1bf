/*
 * libFuzzer target: the virtio-mmio transport, split virtqueues and the
 * virtio-net RX and TX paths, driven by a hostile "guest" and a hostile
 * "tap".
 *
 * The input is a program: register writes and reads, stores into guest
 * RAM (rings, descriptors, headers), queue notifications, frames the host
 * side sends (any bytes, any length up to 64 KiB) and event-loop steps,
 * with real io_uring I/O on a datagram socketpair that stands in for the
 * tap (virtio_net_create_fd). ASan and UBSan watch every access flint
 * makes; the device must never touch memory outside guest RAM whatever
 * either side sends.
 */
#define _GNU_SOURCE
#include "evloop.h"
#include "fuzz_common.h"
#include "guest_mem.h"
#include "util.h"
#include "virtio.h"
#include "virtio_net.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAM_BYTES (2 * MIB)
#define WINDOW    0x10000ull /* guest stores land in [WINDOW, WINDOW + 64 KiB) */
#define WINDOW_SZ 0x10000u

enum op {
    OP_MMIO_WRITE,
    OP_MMIO_READ,
    OP_MEM_WRITE,
    OP_NOTIFY,
    OP_RUN,
    OP_HANDSHAKE,
    OP_HOST_SEND,
    OP_HOST_DRAIN,
    OP_COUNT,
};

static struct guest_mem mem;
static struct evloop loop;
static struct virtio_net *net;
static int dev_fd, host_fd;
static struct fuzz_tick tick; /* 1 ms */

static void init_once(void)
{
    int sv[2];
    char err[256];

    if (mem.size)
        return;
    log_set_level(LOG_OFF);
    if (evloop_init(&loop, 128) || guest_mem_create(&mem, RAM_BYTES))
        abort();
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
        abort();
    dev_fd = sv[0];
    host_fd = sv[1];
    fuzz_tick_init(&tick, &loop, 1000000);
    /* One device for every input: a reset returns it to its initial state. */
    /* Tight limits both ways (8 frames per ms), so inputs also reach the
     * throttled TX and RX paths. */
    struct net_config cfg = {.tap = "fuzz0",
                             .rx_rate_limiter = {.ops = {.size = 8, .refill_time_ms = 1}},
                             .tx_rate_limiter = {.ops = {.size = 8, .refill_time_ms = 1}}};
    if (virtio_net_create_fd(&net, dev_fd, false, &cfg, &loop, err, sizeof(err)))
        abort();
}

/* A well-formed driver handshake with the RX queue at the start of the
 * window and the TX queue 16 KiB in, so the fuzzer reaches the data paths
 * without rediscovering it. */
static void handshake(struct virtio_mmio *t, uint16_t qsize, uint64_t features)
{
    fuzz_mmio_write(t, VIRTIO_MMIO_STATUS, 0);
    fuzz_driver_start(t, 2, qsize, features | VIRTIO_FEATURE(VIRTIO_F_VERSION_1), (uint32_t)WINDOW);
}

static void drain(int fd)
{
    static uint8_t sink[70000];
    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) >= 0)
        ;
}

static void host_send(const uint8_t **p, size_t *left)
{
    static uint8_t frame[65600];
    uint32_t len = fuzz_take(p, left, 2);
    uint32_t have = len < *left ? len : (uint32_t)*left;

    /* The frame starts with the input's bytes; the rest is a pattern. */
    memcpy(frame, *p, have);
    for (uint32_t i = have; i < len; i++)
        frame[i] = (uint8_t)i;
    *p += have;
    *left -= have;
    if (send(host_fd, frame, len, MSG_DONTWAIT) < 0 && errno == EAGAIN) {
        drain(host_fd);
        (void)send(host_fd, frame, len, MSG_DONTWAIT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Static: the device keeps a pointer to its transport across inputs. */
    static struct virtio_mmio t;
    size_t left = size;
    const uint8_t *p = data;

    init_once();
    memset(mem.map + WINDOW, 0, WINDOW_SZ);
    virtio_mmio_init(&t, &virtio_net_ops, net, &mem, FLINT_VIRTIO_MMIO_BASE, 5, NULL, NULL);

    for (unsigned steps = 0; left && steps < 512; steps++) {
        uint32_t v;

        switch (fuzz_take(&p, &left, 1) % OP_COUNT) {
        case OP_MMIO_WRITE:
            fuzz_op_mmio_write(&t, &p, &left);
            break;
        case OP_MMIO_READ:
            fuzz_op_mmio_read(&t, &p, &left);
            break;
        case OP_MEM_WRITE:
            fuzz_op_mem_write(&p, &left, mem.map + WINDOW, WINDOW_SZ, 2);
            break;
        case OP_NOTIFY:
            virtio_mmio_notify(&t, fuzz_take(&p, &left, 1) % 3);
            break;
        case OP_RUN:
            fuzz_step(&tick, false);
            break;
        case OP_HANDSHAKE:
            v = fuzz_take(&p, &left, 1);
            handshake(&t, (uint16_t)(1u << (v % 9)), fuzz_take(&p, &left, 4));
            break;
        case OP_HOST_SEND:
            host_send(&p, &left);
            fuzz_step(&tick, false);
            break;
        case OP_HOST_DRAIN:
            drain(host_fd);
            break;
        }
    }
    /* Reset, then let every read and write finish before the next input;
     * frames either side left behind are thrown away. */
    fuzz_mmio_write(&t, VIRTIO_MMIO_STATUS, 0);
    for (unsigned i = 0; virtio_net_inflight(net); i++) {
        if (i == 10000)
            abort(); /* the device never let go of its I/O */
        drain(host_fd);
        fuzz_step(&tick, true);
    }
    drain(dev_fd);
    drain(host_fd);
    return 0;
}
