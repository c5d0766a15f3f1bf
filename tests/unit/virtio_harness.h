/*
 * virtio_harness.h - a fake guest for virtio unit tests: guest RAM, a
 * driver that builds split rings in it, helpers to drive the MMIO
 * registers of a transport, and an event loop turned step by step.
 */
#ifndef FLINT_TEST_VIRTIO_HARNESS_H
#define FLINT_TEST_VIRTIO_HARNESS_H

#include "guest_mem.h"
#include "util.h"
#include "virtio.h"

#include <stdlib.h>
#include <string.h>

/* Guest layout used by the harness (all inside 4 MiB of RAM). */
#define H_DESC  0x10000ull
#define H_AVAIL 0x11000ull
#define H_USED  0x12000ull
#define H_IND   0x13000ull /* indirect tables */
#define H_BUF   0x20000ull /* data buffers */
#define H_QSIZE 16

/* Queue q's rings are at the harness addresses + q * H_QSTRIDE
 * (hdriver_init); queue 0's are the plain H_DESC, H_AVAIL, H_USED. */
#define H_QSTRIDE 0x4000ull

/* The fake driver: guest RAM and, for the tests that drive one queue
 * through the h* helpers, queue 0's state. Every queue has num entries. */
struct hdrv {
    struct guest_mem mem;
    uint16_t num;
    uint16_t avail_idx;
    uint16_t used_seen;
};

/* One queue of the fake driver, for tests that drive several: its rings
 * are at the harness addresses + off. */
struct hq {
    struct hdrv *h;
    uint64_t off;
    uint16_t avail_idx; /* the next avail index to publish */
    uint16_t used_seen; /* used entries the test has taken */
};

static inline void hdrv_init(struct hdrv *h, uint16_t num)
{
    memset(h, 0, sizeof(*h));
    if (guest_mem_create(&h->mem, 4 * MIB))
        abort();
    h->num = num;
}

/* Guest memory the harness itself lays out: a miss is a harness bug. */
static inline void *hmem(struct hdrv *h, uint64_t gpa, uint64_t len)
{
    void *p = guest_mem_slice(&h->mem, gpa, len);
    if (!p)
        abort();
    return p;
}

/* Queue q of h, fresh: nothing offered, nothing taken. */
static inline struct hq hq_make(struct hdrv *h, unsigned q)
{
    return (struct hq){.h = h, .off = q * H_QSTRIDE};
}

static inline void hq_set(struct hq *q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                          uint16_t next)
{
    *(struct virtq_desc *)hmem(q->h, H_DESC + q->off + 16ull * i, 16) =
        (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

/* Offer chain `head` to the device (no notification). */
static inline void hq_offer(struct hq *q, uint16_t head)
{
    uint16_t *a = hmem(q->h, H_AVAIL + q->off, 6 + 2ull * q->h->num);
    a[2 + q->avail_idx % q->h->num] = head;
    q->avail_idx++;
    __atomic_store_n(&a[1], q->avail_idx, __ATOMIC_RELEASE);
}

static inline uint16_t hq_used_idx(const struct hq *q)
{
    return __atomic_load_n((uint16_t *)hmem(q->h, H_USED + q->off + 2, 2), __ATOMIC_ACQUIRE);
}

/* The used element at used index `slot`. */
static inline void hq_used(const struct hq *q, uint16_t slot, uint32_t *id, uint32_t *len)
{
    uint32_t *e = hmem(q->h, H_USED + q->off + 4 + 8ull * (slot % q->h->num), 8);
    *id = e[0];
    *len = e[1];
}

/* Queue 0 through h's own state. */
static inline struct virtq_desc *hdesc(struct hdrv *h, unsigned i)
{
    return hmem(h, H_DESC + 16ull * i, 16);
}

static inline void hset(struct hdrv *h, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                        uint16_t next)
{
    hq_set(&(struct hq){.h = h}, i, addr, len, flags, next);
}

static inline uint16_t *havail(struct hdrv *h)
{
    return hmem(h, H_AVAIL, 6 + 2ull * h->num);
}

/* Offer chain `head` to the device. */
static inline void hoffer(struct hdrv *h, uint16_t head)
{
    struct hq q = {.h = h, .avail_idx = h->avail_idx};
    hq_offer(&q, head);
    h->avail_idx = q.avail_idx;
}

static inline uint16_t hused_idx(struct hdrv *h)
{
    return hq_used_idx(&(struct hq){.h = h});
}

static inline void hused_elem(struct hdrv *h, uint16_t slot, uint32_t *id, uint32_t *len)
{
    hq_used(&(struct hq){.h = h}, slot, id, len);
}

static inline void *hbuf(struct hdrv *h, uint64_t off, uint64_t len)
{
    return guest_mem_slice(&h->mem, H_BUF + off, len);
}

/* A struct virtq pointed at the harness rings and activated. */
static inline int hqueue(struct hdrv *h, struct virtq *vq, bool indirect, bool event_idx)
{
    memset(vq, 0, sizeof(*vq));
    vq->num = h->num;
    vq->desc_gpa = H_DESC;
    vq->avail_gpa = H_AVAIL;
    vq->used_gpa = H_USED;
    vq->indirect = indirect;
    vq->event_idx = event_idx;
    return virtq_activate(vq, &h->mem);
}

/* MMIO register access on a transport. */
static inline uint32_t mrd(struct virtio_mmio *t, uint32_t off)
{
    uint8_t b[4];
    uint32_t v;
    virtio_mmio_bus_ops.read(t, off, b, 4);
    memcpy(&v, b, 4);
    return v;
}

static inline void mwr(struct virtio_mmio *t, uint32_t off, uint32_t v)
{
    uint8_t b[4];
    memcpy(b, &v, 4);
    virtio_mmio_bus_ops.write(t, off, b, 4);
}

static inline bool mneeds_reset(struct virtio_mmio *t)
{
    return mrd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

/* The driver side of §3.1.1 for queue 0..nq-1 at the harness rings (queue
 * q's offset by q * H_QSTRIDE). Returns the final status. */
static inline uint32_t hdriver_init(struct hdrv *h, struct virtio_mmio *t, uint64_t features,
                                    unsigned nq)
{
    mwr(t, VIRTIO_MMIO_STATUS, 0);
    mwr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    mwr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    mwr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    mwr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    mwr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    mwr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    mwr(t, VIRTIO_MMIO_STATUS,
        VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(mrd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
        return mrd(t, VIRTIO_MMIO_STATUS);
    for (unsigned q = 0; q < nq; q++) {
        uint64_t off = q * H_QSTRIDE;
        mwr(t, VIRTIO_MMIO_QUEUE_SEL, q);
        mwr(t, VIRTIO_MMIO_QUEUE_NUM, h->num);
        mwr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(H_DESC + off));
        mwr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
        mwr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(H_AVAIL + off));
        mwr(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
        mwr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(H_USED + off));
        mwr(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
        mwr(t, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    mwr(t, VIRTIO_MMIO_STATUS,
        VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
            VIRTIO_STATUS_DRIVER_OK);
    return mrd(t, VIRTIO_MMIO_STATUS);
}

#ifdef FLINT_EVLOOP_H
/* For tests that include evloop.h (first: this header does not, as it
 * brings <unistd.h> to tests that do not want it): an event loop the test
 * turns by hand, each step waiting 2 ms at most (a timeout of its own
 * keeps the wait bounded). */
struct htick {
    struct evloop *loop;
    struct ev_handler ev;
    bool armed;
};

static inline void htick_fired(struct ev_handler *ev, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    container_of(ev, struct htick, ev)->armed = false;
}

static inline void htick_init(struct htick *t, struct evloop *loop)
{
    *t = (struct htick){.loop = loop, .ev = {.fn = htick_fired}};
}

/* One loop step: 0 or -errno. */
static inline int htick_step(struct htick *t)
{
    if (!t->armed) {
        int ret = evloop_timeout(t->loop, &t->ev, 2000000);
        if (ret)
            return ret;
        t->armed = true;
    }
    int ret = evloop_run_once(t->loop, true);
    return ret < 0 ? ret : 0;
}

/* Steps for up to about ms milliseconds: 0 or -errno. */
static inline int htick_pump(struct htick *t, unsigned ms)
{
    for (unsigned i = 0; i < ms / 2; i++) {
        int ret = htick_step(t);
        if (ret)
            return ret;
    }
    return 0;
}

#endif /* FLINT_EVLOOP_H */

#endif
