/*
 * libFuzzer target: the virtio-mmio transport, split virtqueues and the
 * virtio-blk request path, driven by a hostile "guest".
 *
 * The input is a program for the guest: register writes and reads, stores
 * into guest RAM (rings, descriptors, request headers) and queue
 * notifications, with real io_uring I/O against a memfd-backed image. ASan
 * and UBSan watch every access flint makes; the device must never touch
 * memory outside guest RAM whatever the guest writes.
 */
#define _GNU_SOURCE
#include "evloop.h"
#include "fuzz_common.h"
#include "guest_mem.h"
#include "util.h"
#include "virtio.h"
#include "virtio_blk.h"

#include <flint-abi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_BYTES (2 * MIB)
#define WINDOW    0x10000ull /* guest stores land in [WINDOW, WINDOW + 64 KiB) */
#define WINDOW_SZ 0x10000u
#define IMG_BYTES (256 * 1024)

enum op {
    OP_MMIO_WRITE,
    OP_MMIO_READ,
    OP_MEM_WRITE,
    OP_NOTIFY,
    OP_RUN,
    OP_HANDSHAKE,
    OP_COUNT,
};

static struct guest_mem mem;
static char image_path[64];
static struct evloop loop;
static struct virtio_blk *blk;

static void init_once(void)
{
    int fd;

    if (mem.size)
        return;
    log_set_level(LOG_OFF);
    if (evloop_init(&loop, 64) || guest_mem_create(&mem, RAM_BYTES))
        abort();
    fd = memfd_create("fuzz-disk", 0);
    if (fd < 0 || ftruncate(fd, IMG_BYTES))
        abort();
    snprintf(image_path, sizeof(image_path), "/proc/self/fd/%d", fd);
    /* One device for every input: a reset returns it to its initial state. */
    /* A tight ops limit (8 per ms), so inputs also reach the throttled
     * path: requests left in the ring, the timer, resume after reset. */
    struct drive_config drive = {.path = image_path,
                                 .id = "fuzz",
                                 .rate_limiter = {.ops = {.size = 8, .refill_time_ms = 1}}};
    char err[256];
    if (virtio_blk_create(&blk, &drive, &loop, err, sizeof(err)))
        abort();
}

/* A well-formed driver handshake with queue 0 at the start of the window,
 * so the fuzzer reaches the request path without rediscovering it. */
static void handshake(struct virtio_mmio *t, uint16_t qsize, uint64_t features)
{
    fuzz_mmio_write(t, VIRTIO_MMIO_STATUS, 0);
    fuzz_driver_start(t, 1, qsize, features | VIRTIO_FEATURE(VIRTIO_F_VERSION_1), (uint32_t)WINDOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct virtio_mmio t;
    size_t left = size;
    const uint8_t *p = data;

    init_once();
    memset(mem.map + WINDOW, 0, WINDOW_SZ);
    virtio_mmio_init(&t, &virtio_blk_ops, blk, &mem, FLINT_VIRTIO_MMIO_BASE, 5, NULL, NULL);

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
            virtio_mmio_notify(&t, fuzz_take(&p, &left, 1) % 2);
            break;
        case OP_RUN:
            evloop_run_once(&loop, false);
            break;
        case OP_HANDSHAKE:
            v = fuzz_take(&p, &left, 1);
            handshake(&t, (uint16_t)(1u << (v % 9)), fuzz_take(&p, &left, 4));
            break;
        }
    }
    /* Reset, then let every in-flight request finish before the next input. */
    fuzz_mmio_write(&t, VIRTIO_MMIO_STATUS, 0);
    while (loop.pending)
        if (evloop_run_once(&loop, true) < 0)
            abort();
    return 0;
}
