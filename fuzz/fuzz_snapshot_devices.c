/*
 * libFuzzer target: the device loaders of a snapshot (UART, i8042, boot
 * timer, and the virtio-mmio transport with blk, net and vsock behind it)
 * fed hostile state.
 *
 * Input: one byte choosing the loader (low 3 bits) and how the rest is
 * used (bit 7): as the state itself, or XORed onto a valid state the
 * harness saved from a live device (the input's length is the state's,
 * so truncations are covered too), which lets the fuzzer reach every
 * field's check without rediscovering the section layout. A load must
 * never crash or touch memory outside guest RAM; one that succeeds must
 * save a state that loads again, and the device is then reset for the
 * next input.
 */
#define _GNU_SOURCE
#include "boot_timer.h"
#include "evloop.h"
#include "fuzz_common.h"
#include "guest_mem.h"
#include "legacy.h"
#include "serial.h"
#include "snap_io.h"
#include "util.h"
#include "virtio.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "virtio_vsock.h"

#include <flint-abi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAM_BYTES (2 * MIB)
#define RINGS     0x10000u

enum target { T_SERIAL, T_I8042, T_BOOT_TIMER, T_BLK, T_NET, T_VSOCK, T_COUNT };

static struct guest_mem mem;
static struct evloop loop;
static struct serial uart;
static struct i8042 kbd;
static struct boot_timer btimer;
static struct virtio_mmio tr[3]; /* blk, net, vsock */
static struct snap_writer valid[T_COUNT];
static char uds[64];

static void make_devices(void)
{
    struct virtio_blk *blk;
    struct virtio_net *net;
    struct virtio_vsock *vs;
    char err[256], img[64];
    int fd = memfd_create("fuzz-disk", 0), sv[2];

    if (fd < 0 || ftruncate(fd, 256 * 1024) ||
        socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
        abort();
    snprintf(img, sizeof(img), "/proc/self/fd/%d", fd);
    snprintf(uds, sizeof(uds), "/tmp/flint-fuzz-snap-%d.sock", getpid());
    unlink(uds);
    struct drive_config drive = {
        .path = img, .id = "fuzz", .rate_limiter = {.ops = {.size = 8, .refill_time_ms = 1}}};
    struct net_config ncfg = {
        .tap = "fuzz0", .rx_rate_limiter = {.bandwidth = {.size = 1000, .refill_time_ms = 5}}};
    struct vsock_config vcfg = {.enabled = true, .guest_cid = 3, .uds_path = uds};
    if (virtio_blk_create(&blk, &drive, &loop, err, sizeof(err)) ||
        virtio_net_create_fd(&net, sv[0], false, &ncfg, &loop, err, sizeof(err)) ||
        virtio_vsock_create(&vs, &vcfg, &loop, err, sizeof(err)))
        abort();
    if (virtio_mmio_init(&tr[0], &virtio_blk_ops, blk, &mem, FLINT_VIRTIO_MMIO_BASE, 5, NULL,
                         NULL) ||
        virtio_mmio_init(&tr[1], &virtio_net_ops, net, &mem, FLINT_VIRTIO_MMIO_BASE + 0x1000, 6,
                         NULL, NULL) ||
        virtio_mmio_init(&tr[2], &virtio_vsock_ops, vs, &mem, FLINT_VIRTIO_MMIO_BASE + 0x2000, 7,
                         NULL, NULL))
        abort();
}

static void run_loop(void)
{
    for (int i = 0; i < 4; i++)
        evloop_run_once(&loop, false);
}

/* Live devices, and the valid states the XOR mode starts from. */
static void init_once(void)
{
    static const unsigned nq[3] = {1, 2, 3};
    static const uint64_t features[3] = {
        VIRTIO_FEATURE(VIRTIO_BLK_F_FLUSH) | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX),
        VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC), 0};

    if (mem.size)
        return;
    log_set_level(LOG_OFF);
    if (evloop_init(&loop, 128) || guest_mem_create(&mem, RAM_BYTES))
        abort();
    serial_init(&uart, -1, NULL, NULL);
    i8042_init(&kbd, NULL, NULL, NULL, NULL);
    make_devices();
    serial_push_input(&uart, (const uint8_t *)"state", 5);
    i8042_push_keys(&kbd, (const uint8_t *)"\x14\x11", 2);
    for (unsigned i = 0; i < T_COUNT; i++)
        snap_writer_init(&valid[i]);
    serial_save(&uart, &valid[T_SERIAL]);
    i8042_save(&kbd, &valid[T_I8042]);
    boot_timer_save(&btimer, &valid[T_BOOT_TIMER]);
    for (unsigned d = 0; d < 3; d++) {
        fuzz_driver_start(&tr[d], nq[d], 16, features[d] | VIRTIO_FEATURE(VIRTIO_F_VERSION_1),
                          RINGS + d * 0x10000u);
        run_loop();
        virtio_mmio_quiesce(&tr[d], true);
        run_loop();
        virtio_mmio_save(&tr[d], &valid[T_BLK + d]);
        fuzz_mmio_write(&tr[d], VIRTIO_MMIO_STATUS, 0);
        virtio_mmio_quiesce(&tr[d], false);
    }
    run_loop();
}

static int load(enum target which, struct snap_reader *r)
{
    switch (which) {
    case T_SERIAL:
        return serial_load(&uart, r);
    case T_I8042:
        return i8042_load(&kbd, r);
    case T_BOOT_TIMER:
        return boot_timer_load(&btimer, r);
    default:
        return virtio_mmio_load(&tr[which - T_BLK], r);
    }
}

static void save(enum target which, struct snap_writer *w)
{
    switch (which) {
    case T_SERIAL:
        serial_save(&uart, w);
        break;
    case T_I8042:
        i8042_save(&kbd, w);
        break;
    case T_BOOT_TIMER:
        boot_timer_save(&btimer, w);
        break;
    default:
        virtio_mmio_save(&tr[which - T_BLK], w);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[4096];
    struct snap_reader r;
    struct snap_writer again;
    enum target which;
    size_t n;

    init_once();
    if (size < 1)
        return 0;
    which = (enum target)((data[0] & 7) % T_COUNT);
    n = size - 1 < sizeof(buf) ? size - 1 : sizeof(buf);
    memcpy(buf, data + 1, n);
    if (data[0] & 0x80)
        for (size_t i = 0; i < n && i < valid[which].len; i++)
            buf[i] ^= valid[which].buf[i];
    snap_reader_init(&r, buf, n);
    if (load(which, &r) == 0) {
        /* What was accepted is a state flint itself could have saved. */
        snap_writer_init(&again);
        save(which, &again);
        snap_reader_init(&r, again.buf, again.len);
        if (again.err || load(which, &r))
            abort();
        snap_writer_free(&again);
    } else if (!r.what) {
        abort(); /* every refusal names its reason */
    }
    if (which >= T_BLK) {
        run_loop();
        fuzz_mmio_write(&tr[which - T_BLK], VIRTIO_MMIO_STATUS, 0);
        run_loop();
    }
    return 0;
}
