/*
 * fuzz_common.h - what the virtio libFuzzer targets share: reading the
 * input, the ops that every target decodes the same way (MMIO register
 * writes and reads, stores into a window of guest RAM), a well-formed
 * driver start, and event-loop steps bounded by a tick.
 *
 * The byte layout of each op is part of the corpus format: changing it
 * changes what every seed in fuzz/corpus/ means.
 */
#ifndef FLINT_FUZZ_COMMON_H
#define FLINT_FUZZ_COMMON_H

#include "evloop.h"
#include "util.h"
#include "virtio.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The next n (at most 4) input bytes, little-endian; missing bytes at the
 * end of the input read as 0. */
static inline uint32_t fuzz_take(const uint8_t **p, size_t *left, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n && *left; i++, (*p)++, (*left)--)
        v |= (uint32_t) * *p << (8 * i);
    return v;
}

static inline void fuzz_mmio_write(struct virtio_mmio *t, uint32_t off, uint32_t v)
{
    uint8_t b[4];
    memcpy(b, &v, 4);
    virtio_mmio_bus_ops.write(t, off, b, 4);
}

/* Op: a register write, off:2 value:4. The width comes from bits the
 * offset does not use, 9-10 (masking first made every write 1 byte wide,
 * which the transport ignores). */
static inline void fuzz_op_mmio_write(struct virtio_mmio *t, const uint8_t **p, size_t *left)
{
    static const unsigned widths[4] = {4, 4, 1, 2};
    uint32_t raw = fuzz_take(p, left, 2);
    uint32_t v = fuzz_take(p, left, 4);
    uint8_t b[4];

    memcpy(b, &v, 4);
    virtio_mmio_bus_ops.write(t, raw & 0x1ff, b, widths[raw >> 9 & 3]);
}

/* Op: a 4-byte register read, off:2. */
static inline void fuzz_op_mmio_read(struct virtio_mmio *t, const uint8_t **p, size_t *left)
{
    uint8_t b[4];

    virtio_mmio_bus_ops.read(t, fuzz_take(p, left, 2) & 0x1ff, b, 4);
}

/* Op: a store into guest RAM, at:at_bytes (modulo window_sz) len:1
 * bytes[len], cut at the end of the input and of the window. */
static inline void fuzz_op_mem_write(const uint8_t **p, size_t *left, uint8_t *window,
                                     uint32_t window_sz, unsigned at_bytes)
{
    uint32_t at = fuzz_take(p, left, at_bytes) % window_sz;
    uint32_t len = fuzz_take(p, left, 1);

    if (len > *left)
        len = (uint32_t)*left;
    if (len > window_sz - at)
        len = window_sz - at;
    memcpy(window + at, *p, len);
    *p += len;
    *left -= len;
}

/* The driver side of §3.1.1 after a reset: ACKNOWLEDGE, DRIVER, the
 * features as given, FEATURES_OK, queues 0..nq-1 of qsize entries with
 * queue q's rings at rings + q * 0x4000 (descriptors +0, avail +0x1000,
 * used +0x2000), DRIVER_OK. */
static inline void fuzz_driver_start(struct virtio_mmio *t, unsigned nq, uint16_t qsize,
                                     uint64_t features, uint32_t rings)
{
    const uint32_t ack = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

    fuzz_mmio_write(t, VIRTIO_MMIO_STATUS, ack);
    fuzz_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    fuzz_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    fuzz_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    fuzz_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    fuzz_mmio_write(t, VIRTIO_MMIO_STATUS, ack | VIRTIO_STATUS_FEATURES_OK);
    for (uint32_t q = 0; q < nq; q++) {
        uint32_t base = rings + q * 0x4000;
        fuzz_mmio_write(t, VIRTIO_MMIO_QUEUE_SEL, q);
        fuzz_mmio_write(t, VIRTIO_MMIO_QUEUE_NUM, qsize);
        fuzz_mmio_write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, base);
        fuzz_mmio_write(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, base + 0x1000);
        fuzz_mmio_write(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, base + 0x2000);
        fuzz_mmio_write(t, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    fuzz_mmio_write(t, VIRTIO_MMIO_STATUS,
                    ack | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Event-loop steps that wait a tick at most: a timeout of the harness's
 * own bounds every wait. */
struct fuzz_tick {
    struct evloop *loop;
    struct ev_handler ev;
    uint64_t ns;
    bool armed;
    unsigned fired; /* ticks that fired */
};

static inline void fuzz_tick_fired(struct ev_handler *ev, int res, uint32_t flags)
{
    struct fuzz_tick *t = container_of(ev, struct fuzz_tick, ev);

    (void)res;
    (void)flags;
    t->armed = false;
    t->fired++;
}

static inline void fuzz_tick_init(struct fuzz_tick *t, struct evloop *loop, uint64_t ns)
{
    *t = (struct fuzz_tick){.loop = loop, .ev = {.fn = fuzz_tick_fired}, .ns = ns};
}

/* One loop step; `wait`: block for a completion, a tick at most. Returns
 * how many completions other than the tick it dispatched; a loop error
 * aborts. */
static inline int fuzz_step(struct fuzz_tick *t, bool wait)
{
    unsigned before = t->fired;

    if (wait && !t->armed && evloop_timeout(t->loop, &t->ev, t->ns) == 0)
        t->armed = true;
    int n = evloop_run_once(t->loop, wait);
    if (n < 0)
        abort();
    return n - (int)(t->fired - before);
}

#endif
