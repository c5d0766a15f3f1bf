/*
 * hostile.h - what the hostile test guests (blkhostile, nethostile,
 * vsockhostile) share: raw virtio-mmio register access, the device
 * start-up sequence and hand-made split rings. The constants are restated
 * from the virtio 1.2 specification on purpose: this transport and ring
 * code shares nothing with guest-shim's drivers (nor with virtio-spec.h),
 * so a bug there cannot hide the same bug here.
 *
 * Every function takes the device's register base; a ring is a struct
 * hring over memory the guest owns.
 */
#ifndef FLINT_TESTS_HOSTILE_H
#define FLINT_TESTS_HOSTILE_H

#include "shim.h"

/* §4.2.2 virtio-mmio registers. */
#define REG_MAGIC         0x000
#define REG_VERSION       0x004
#define REG_DEVICE_ID     0x008
#define REG_DEV_FEATURES  0x010
#define REG_DEV_FEAT_SEL  0x014
#define REG_DRV_FEATURES  0x020
#define REG_DRV_FEAT_SEL  0x024
#define REG_QUEUE_SEL     0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM     0x038
#define REG_QUEUE_READY   0x044
#define REG_QUEUE_NOTIFY  0x050
#define REG_INT_STATUS    0x060
#define REG_INT_ACK       0x064
#define REG_STATUS        0x070
#define REG_QUEUE_DESC    0x080
#define REG_QUEUE_DRIVER  0x090
#define REG_QUEUE_DEVICE  0x0a0
#define REG_CONFIG        0x100

#define MMIO_MAGIC 0x74726976u /* "virt" */
#define INT_VRING  1
#define INT_CONFIG 2

/* §2.1 device status. */
#define ST_ACK         1
#define ST_DRIVER      2
#define ST_DRIVER_OK   4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 64

/* §6 reserved feature bits. */
#define F_INDIRECT_DESC (1ull << 28)
#define F_VERSION_1     (1ull << 32)

/* §2.7.5 descriptor flags. */
#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

/* §2.7.5 a descriptor. */
struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* A split ring the guest builds by hand (§2.7): avail is flags, idx,
 * ring[num], used_event; used is flags | idx, then (id, len) pairs.
 * avail_idx is the next avail index the guest publishes. */
struct hring {
    struct desc *desc;
    uint16_t *avail;
    uint32_t *used;
    uint32_t num;
    uint16_t avail_idx;
};

/* Memory for a ring of num entries laid out by hring_layout: descriptors
 * and the avail ring, the used ring on the next page. */
#define HRING_USED_OFF(num) (((16u * (num) + 2u * ((num) + 3)) + 4095) & ~4095u)
#define HRING_BYTES(num)    ((HRING_USED_OFF(num) + 8u * (num) + 8 + 4095) & ~4095u)

static inline uint32_t rd(uintptr_t base, unsigned off)
{
    return *(volatile uint32_t *)(base + off);
}

static inline void wr(uintptr_t base, unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(base + off) = v;
}

static inline void wr64(uintptr_t base, unsigned off, uint64_t v)
{
    wr(base, off, (uint32_t)v);
    wr(base, off + 4, (uint32_t)(v >> 32));
}

static inline bool needs_reset(uintptr_t base)
{
    return rd(base, REG_STATUS) & ST_NEEDS_RESET;
}

/* The first virtio-mmio device on the command line with this DeviceID. */
static inline bool hostile_find(uint32_t device_id, uintptr_t *base)
{
    for (unsigned i = 0; i < shim_virtio_mmio_count(); i++) {
        uint64_t addr, size;
        unsigned irq;
        if (shim_virtio_mmio_get(i, &addr, &size, &irq))
            continue;
        if (rd((uintptr_t)addr, REG_MAGIC) == MMIO_MAGIC &&
            rd((uintptr_t)addr, REG_DEVICE_ID) == device_id) {
            *base = (uintptr_t)addr;
            return true;
        }
    }
    return false;
}

/* Reset the device, then ACKNOWLEDGE, DRIVER, and negotiate VERSION_1
 * plus whatever of `want` is offered (*features); FEATURES_OK must stick.
 * Returns NULL, or what went wrong. */
static inline const char *hostile_negotiate(uintptr_t base, uint64_t want, uint64_t *features)
{
    wr(base, REG_STATUS, 0);
    for (unsigned i = 0; rd(base, REG_STATUS); i++) {
        if (i == 100000)
            return "does not finish its reset";
        shim_delay_us(10);
    }
    wr(base, REG_STATUS, ST_ACK);
    wr(base, REG_STATUS, ST_ACK | ST_DRIVER);
    wr(base, REG_DEV_FEAT_SEL, 0);
    uint64_t offered = rd(base, REG_DEV_FEATURES);
    wr(base, REG_DEV_FEAT_SEL, 1);
    offered |= (uint64_t)rd(base, REG_DEV_FEATURES) << 32;
    if (!(offered & F_VERSION_1))
        return "does not offer VIRTIO_F_VERSION_1";
    *features = offered & (F_VERSION_1 | want);
    wr(base, REG_DRV_FEAT_SEL, 0);
    wr(base, REG_DRV_FEATURES, (uint32_t)*features);
    wr(base, REG_DRV_FEAT_SEL, 1);
    wr(base, REG_DRV_FEATURES, (uint32_t)(*features >> 32));
    wr(base, REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    if (!(rd(base, REG_STATUS) & ST_FEATURES_OK))
        return "refused FEATURES_OK";
    return NULL;
}

/* Queue q with num entries and the given areas (any addresses: the
 * hostile cases pass bad ones); returns QueueReady as read back. */
static inline bool hostile_queue(uintptr_t base, unsigned q, uint32_t num, uint64_t desc,
                                 uint64_t driver, uint64_t device)
{
    wr(base, REG_QUEUE_SEL, q);
    wr(base, REG_QUEUE_NUM, num);
    wr64(base, REG_QUEUE_DESC, desc);
    wr64(base, REG_QUEUE_DRIVER, driver);
    wr64(base, REG_QUEUE_DEVICE, device);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    wr(base, REG_QUEUE_READY, 1);
    return rd(base, REG_QUEUE_READY) == 1;
}

static inline void hostile_driver_ok(uintptr_t base)
{
    wr(base, REG_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
}

/* Point r at mem (HRING_BYTES(num) bytes, page-aligned). */
static inline void hring_layout(struct hring *r, void *mem, uint32_t num)
{
    uint8_t *m = mem;

    *r = (struct hring){(struct desc *)m, (uint16_t *)(m + 16 * num),
                        (uint32_t *)(m + HRING_USED_OFF(num)), num, 0};
}

static inline void desc_set(struct desc *d, const void *addr, uint32_t len, uint16_t flags,
                            uint16_t next)
{
    *d = (struct desc){(uintptr_t)addr, len, flags, next};
}

static inline void hring_set_desc(struct hring *r, unsigned i, const void *addr, uint32_t len,
                                  uint16_t flags, uint16_t next)
{
    desc_set(&r->desc[i], addr, len, flags, next);
}

/* Put head in the avail ring and move its idx by `advance` (1, or more
 * to lie to the device); no notification. */
static inline void hring_offer(struct hring *r, uint16_t head, uint16_t advance)
{
    r->avail[2 + r->avail_idx % r->num] = head;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->avail_idx = (uint16_t)(r->avail_idx + advance);
    ((volatile uint16_t *)r->avail)[1] = r->avail_idx;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline uint16_t hring_used_idx(const struct hring *r)
{
    return __atomic_load_n((volatile uint16_t *)r->used + 1, __ATOMIC_ACQUIRE);
}

/* The used element the device wrote at used index `slot`. */
static inline void hring_used_elem(const struct hring *r, uint16_t slot, uint32_t *id,
                                   uint32_t *len)
{
    volatile uint32_t *e = &r->used[1 + 2 * (slot % r->num)];
    *id = e[0];
    *len = e[1];
}

/* A full start: negotiate, the n rings (laid out before) cleared and
 * made queues 0..n-1, DRIVER_OK, interrupts acknowledged; the device must
 * not need a reset. Returns NULL, or what went wrong. */
static inline const char *hostile_start(uintptr_t base, uint64_t want, uint64_t *features,
                                        struct hring *rings, unsigned n)
{
    const char *err = hostile_negotiate(base, want, features);

    if (err)
        return err;
    for (unsigned q = 0; q < n; q++) {
        struct hring *r = &rings[q];
        wr(base, REG_QUEUE_SEL, q);
        if (rd(base, REG_QUEUE_NUM_MAX) < r->num)
            return "offers too small a queue";
        memset(r->desc, 0, HRING_BYTES(r->num));
        r->avail_idx = 0;
        if (!hostile_queue(base, q, r->num, (uintptr_t)r->desc, (uintptr_t)r->avail,
                           (uintptr_t)r->used))
            return "refused a queue";
    }
    hostile_driver_ok(base);
    wr(base, REG_INT_ACK, rd(base, REG_INT_STATUS));
    return needs_reset(base) ? "needs a reset after DRIVER_OK" : NULL;
}

/* After a bad chain on ring r: within ms, DEVICE_NEEDS_RESET with a
 * configuration change interrupt (§2.1.2), and nothing used. Describes
 * what it saw in what. */
static inline bool hostile_saw_needs_reset(uintptr_t base, const struct hring *r, unsigned ms,
                                           char *what, size_t wlen)
{
    for (unsigned i = 0; i < 10 * ms && !needs_reset(base) && !hring_used_idx(r); i++)
        shim_delay_us(100);
    uint32_t st = rd(base, REG_STATUS), isr = rd(base, REG_INT_STATUS);
    shim_snprintf(what, wlen, "status %#x, interrupt status %#x, %u used", st, isr,
                  hring_used_idx(r));
    return (st & ST_NEEDS_RESET) && (isr & INT_CONFIG) && hring_used_idx(r) == 0;
}

#endif
