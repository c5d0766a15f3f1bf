/*
 * virtio_harness.h - a fake guest for virtio unit tests: guest RAM, a
 * driver that builds split rings in it, and helpers to drive the MMIO
 * registers of a transport.
 */
#ifndef FLINT_TEST_VIRTIO_HARNESS_H
#define FLINT_TEST_VIRTIO_HARNESS_H

#include "guest_mem.h"
#include "util.h"
#include "virtio.h"

#include <string.h>

/* Guest layout used by the harness (all inside 4 MiB of RAM). */
#define H_DESC  0x10000ull
#define H_AVAIL 0x11000ull
#define H_USED  0x12000ull
#define H_IND   0x13000ull /* indirect tables */
#define H_BUF   0x20000ull /* data buffers */
#define H_QSIZE 16

struct hdrv {
    struct guest_mem mem;
    uint16_t num;
    uint16_t avail_idx;
    uint16_t used_seen;
};

static inline void hdrv_init(struct hdrv *h, uint16_t num)
{
    memset(h, 0, sizeof(*h));
    if (guest_mem_create(&h->mem, 4 * MIB))
        abort();
    h->num = num;
}

static inline struct virtq_desc *hdesc(struct hdrv *h, unsigned i)
{
    return (struct virtq_desc *)guest_mem_slice(&h->mem, H_DESC + 16ull * i, 16);
}

static inline void hset(struct hdrv *h, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                        uint16_t next)
{
    *hdesc(h, i) = (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static inline uint16_t *havail(struct hdrv *h)
{
    return guest_mem_slice(&h->mem, H_AVAIL, 6 + 2ull * h->num);
}

/* Offer chain `head` to the device. */
static inline void hoffer(struct hdrv *h, uint16_t head)
{
    uint16_t *a = havail(h);
    a[2 + h->avail_idx % h->num] = head;
    h->avail_idx++;
    a[1] = h->avail_idx;
}

static inline uint16_t hused_idx(struct hdrv *h)
{
    return *(uint16_t *)guest_mem_slice(&h->mem, H_USED + 2, 2);
}

static inline void hused_elem(struct hdrv *h, uint16_t slot, uint32_t *id, uint32_t *len)
{
    uint32_t *e = guest_mem_slice(&h->mem, H_USED + 4 + 8ull * (slot % h->num), 8);
    *id = e[0];
    *len = e[1];
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

/* The driver side of §3.1.1 for queue 0..nq-1 at the harness rings (queue
 * q's rings are offset by q * 0x4000). Returns the final status. */
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
        uint64_t off = q * 0x4000ull;
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

#endif
