/*
 * virtio.h - the guest-shim's virtio core: the virtio-mmio transport
 * (virtio_mmio.c) and split virtqueues (virtq.c), shared by the device
 * drivers (blk.c; net and vsock later).
 *
 * Spec: virtio 1.2, §2 (basic facilities), §2.7 (split virtqueues), §4.2
 * (virtio over MMIO, version 2 registers only). Guest physical addresses
 * equal the shim's virtual addresses (identity map), so a pointer is its
 * own DMA address. Everything runs on the boot CPU, which takes the device
 * interrupts; nothing here is thread-safe.
 */
#ifndef SHIM_VIRTIO_H
#define SHIM_VIRTIO_H

#include "shim-internal.h"
#include "virtio-spec.h"

/* Followed by le16 used_event when VIRTIO_F_EVENT_IDX is negotiated. */
struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

/* Followed by le16 avail_event when VIRTIO_F_EVENT_IDX is negotiated. */
struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[];
};

/* One virtio-mmio device. The interrupt handler only touches `isr`,
 * `irqs`, `config_changes` and `needs_reset`. */
struct virtio_dev {
    uintptr_t base;            /* MMIO window, from virtio_mmio.device= */
    unsigned gsi;              /* its interrupt line */
    int vector;                /* IDT vector once routed, else 0 */
    uint32_t device_id;        /* §5 */
    uint32_t vendor_id;        /* informational */
    uint64_t offered;          /* device features read at the last negotiation */
    uint64_t features;         /* negotiated features */
    uint32_t status;           /* status bits the driver has set */
    volatile uint32_t isr;     /* InterruptStatus bits acknowledged so far */
    volatile uint64_t irqs;    /* interrupts taken */
    volatile bool needs_reset; /* DEVICE_NEEDS_RESET (or FAILED) seen */
    /* Configuration change interrupts (InterruptStatus bit 1, §4.2.2)
     * from a live device: its config space may hold new values. */
    volatile uint64_t config_changes;
};

/* One split virtqueue. Driver-private shadows (`next`, `ndesc`, `avail_idx`)
 * mean nothing the device writes is ever trusted for bookkeeping. */
struct virtq {
    struct virtio_dev *dev;
    uint16_t index;              /* queue number on the device */
    uint16_t size;               /* Queue Size, a power of two */
    uint16_t capacity;           /* entries allocated (re-used by virtq_setup) */
    uint16_t indirect_max;       /* entries per indirect table, 0: no indirect */
    bool event_idx;              /* VIRTIO_F_EVENT_IDX negotiated */
    struct virtq_desc *desc;     /* Descriptor Area */
    struct virtq_avail *avail;   /* Driver Area */
    struct virtq_used *used;     /* Device Area */
    struct virtq_desc *indirect; /* capacity tables of indirect_max entries, by head */
    void **cookie;               /* by head: the caller's pointer, NULL when free */
    uint16_t *next;              /* free list and chain links (shadow of desc[].next) */
    uint16_t *ndesc;             /* by head: descriptors in its chain */
    uint16_t free_head;
    uint16_t num_free;
    uint16_t in_flight;  /* chains exposed and not yet returned */
    uint16_t avail_idx;  /* next avail->idx */
    uint16_t kicked_idx; /* avail->idx at the last notification decision */
    uint16_t last_used;  /* next used ring entry to consume */
    int error;           /* sticky -SHIM_EPROTO once the device broke the ring */
};

/* One buffer of a descriptor chain. */
struct virtq_buf {
    const void *addr;
    uint32_t len;
};

/* Fill *dev from virtio_mmio.device= entry `entry` after checking
 * MagicValue, Version 2 and a non-zero DeviceID (§4.2.3.1.1). Touches no
 * other register. Returns 0, or -SHIM_ENODEV (no entry, bad magic, legacy
 * version 1, or DeviceID 0: an empty slot). */
int virtio_mmio_probe(unsigned entry, struct virtio_dev *dev);

/* Reset the device (§4.2.2: write 0 to Status) and wait, bounded, until
 * Status reads 0. Clears needs_reset. Returns 0 or -SHIM_ETIMEDOUT. */
int virtio_reset(struct virtio_dev *dev);

/* §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, read the device features,
 * accept `wanted & offered` (VIRTIO_F_VERSION_1 is required), FEATURES_OK,
 * and check it stuck. On success dev->features holds the result. Returns
 * 0, -SHIM_ENOTSUP if the device lacks VIRTIO_F_VERSION_1, -SHIM_EIO if it
 * refused FEATURES_OK, -SHIM_ETIMEDOUT if it did not reset. On failure
 * the FAILED bit is set (except after a reset timeout). */
int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted);

/* §3.1.1 step 8: route the interrupt (first time only), then set
 * DRIVER_OK. Returns 0, -SHIM_ENODEV if the device then reports
 * DEVICE_NEEDS_RESET/FAILED, or the routing error. */
int virtio_driver_ok(struct virtio_dev *dev);

/* Give up on the device: set FAILED (§2.1). */
void virtio_fail(struct virtio_dev *dev);

/* Read Status; returns 0 if the device is live (DRIVER_OK, neither
 * DEVICE_NEEDS_RESET nor FAILED), else -SHIM_ENODEV and sets needs_reset. */
int virtio_check(struct virtio_dev *dev);

/* Device configuration space (§4.2.2: 8/16/32-bit accesses, 64-bit fields
 * as two 32-bit reads). Read a whole structure with virtio_config_begin /
 * virtio_config_retry around the reads: retry is true while the
 * ConfigGeneration changed (bounded). */
uint8_t virtio_config_read8(struct virtio_dev *dev, unsigned off);
uint16_t virtio_config_read16(struct virtio_dev *dev, unsigned off);
uint32_t virtio_config_read32(struct virtio_dev *dev, unsigned off);
uint64_t virtio_config_read64(struct virtio_dev *dev, unsigned off);
uint32_t virtio_config_begin(struct virtio_dev *dev);
bool virtio_config_retry(struct virtio_dev *dev, uint32_t *generation, unsigned *tries);

/* Select queue `index` and return its QueueNumMax, or 0 if the queue is
 * absent or already live (QueueReady reads non-zero). */
uint16_t virtio_queue_max(struct virtio_dev *dev, uint16_t index);

/* §4.2.3.2: write QueueNum and the Descriptor, Driver and Device Area
 * addresses of queue `index`, then set QueueReady and read it back.
 * Returns 0, or -SHIM_ENODEV if the device did not take the queue. */
int virtio_queue_enable(struct virtio_dev *dev, uint16_t index, uint16_t size, const void *desc,
                        const void *driver, const void *device);

/* Available buffer notification for queue `index` (§4.2.3.3). */
void virtio_notify(struct virtio_dev *dev, uint16_t index);

/* Halt until done(arg) is true (0), the device reports DEVICE_NEEDS_RESET
 * (-SHIM_ENODEV), or timeout_ns pass (-SHIM_ETIMEDOUT, or -SHIM_ENODEV if
 * Status then shows DEVICE_NEEDS_RESET without having interrupted). */
int virtio_wait(struct virtio_dev *dev, bool (*done)(void *arg), void *arg, uint64_t timeout_ns);

/* Select queue `index`, check it is not live, size it min(QueueNumMax,
 * max_size) rounded down to a power of two, allocate the rings (once;
 * later calls re-use and clear them), write QueueNum and the three area
 * addresses, set QueueReady. With indirect_max > 1 and
 * VIRTIO_F_INDIRECT_DESC negotiated, every head gets an indirect table of
 * indirect_max entries. Call between virtio_negotiate and
 * virtio_driver_ok. Returns 0, -SHIM_ENODEV (queue absent or already
 * live), -SHIM_ENOMEM. */
int virtq_setup(struct virtq *vq, struct virtio_dev *dev, uint16_t index, uint16_t max_size,
                uint16_t indirect_max);

/* Expose one chain: n_out device-readable buffers, then n_in
 * device-writable ones (§2.7.4). Uses one indirect descriptor when the
 * queue has tables and n_out + n_in fits, else a direct chain. `cookie`
 * (not NULL) comes back from virtq_get_used. Does not notify. Returns 0,
 * -SHIM_EAGAIN (not enough free descriptors now), -SHIM_EINVAL (empty, or
 * longer than the queue), or vq->error. */
int virtq_add(struct virtq *vq, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in,
              void *cookie);

/* Notify the device of the chains added since the last kick, unless it
 * suppressed notifications (VIRTQ_USED_F_NO_NOTIFY or avail_event,
 * §2.7.10). */
void virtq_kick(struct virtq *vq);

/* The next used chain: frees its descriptors and returns its cookie (and
 * the device's written length in *len), or NULL when there is none. A used
 * entry naming a descriptor that is not an outstanding head sets vq->error
 * to -SHIM_EPROTO; the queue then returns NULL until virtq_setup. */
void *virtq_get_used(struct virtq *vq, uint32_t *len);

/* True if a used entry is pending (or the queue broke). With
 * VIRTIO_F_EVENT_IDX it first asks for an interrupt at the next used entry
 * (used_event, §2.7.10), so call it right before sleeping. */
bool virtq_arm(struct virtq *vq);

/* Chains exposed and not yet returned by virtq_get_used. */
unsigned virtq_outstanding(const struct virtq *vq);

/* Forget every outstanding chain (after a device reset): calls fn(cookie,
 * arg) for each, then returns the queue to its empty state. */
void virtq_drain(struct virtq *vq, void (*fn)(void *cookie, void *arg), void *arg);

/* Memory barriers between the driver and the device (a coherent agent).
 * x86 keeps stores in order and loads in order (TSO), so publishing and
 * consuming need only a compiler barrier; a later load may pass an earlier
 * store, so store-then-check sequences need a full fence. */
static inline void virtio_wmb(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void virtio_rmb(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void virtio_mb(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif /* SHIM_VIRTIO_H */
