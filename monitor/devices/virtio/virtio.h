/*
 * virtio.h - virtio 1.2 over MMIO (version 2) and split virtqueues.
 *
 * The transport (struct virtio_mmio) owns the registers, the feature
 * negotiation, the status state machine and the queues; a device (block,
 * net, vsock) plugs in through a const struct virtio_dev_ops and sees only
 * queues, chains of guest buffers and its config space.
 *
 * Threads: register accesses come from vCPU threads, queue notifications
 * and I/O completions run on the VMM thread; both hold the transport lock,
 * so device callbacks always run with it held.
 *
 * The guest is the adversary: ring indices are read once and checked,
 * chains are bounded by count and by queue size, every buffer is translated
 * with guest_mem_slice(), and any malformed ring or chain puts the device in
 * DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2) until the driver resets it.
 */
#ifndef FLINT_VIRTIO_H
#define FLINT_VIRTIO_H

#include "bus.h"
#include "guest_mem.h"
#include "log.h"
#include "snap_io.h"
#include <virtio-spec.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* Spec constants live in <virtio-spec.h>, shared with guest-shim. */
#define VIRTIO_MMIO_VENDOR 0x544e4c46u /* "FLNT" */
#define VIRTQ_MAX_SIZE     256         /* QueueNumMax of every flint device */
#define VIRTIO_MAX_QUEUES  3

/* A split virtqueue as the driver configured it, plus the device's cursor.
 * Plain data, so it can be saved in a snapshot; the host pointers are
 * derived from the guest addresses when the queue is made ready. */
struct virtq {
    uint16_t num;
    uint8_t ready;
    uint8_t event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
    uint8_t indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
    gpa_t desc_gpa, avail_gpa, used_gpa;
    uint16_t last_avail;     /* next avail ring slot the device will take */
    uint16_t used_idx;       /* next used ring slot the device will fill */
    uint16_t signalled_used; /* used_idx when the driver was last interrupted */
    struct virtq_desc *desc; /* host views, valid while ready */
    uint16_t *avail;         /* flags, idx, ring[num], used_event */
    uint8_t *used;           /* flags, idx, ring[num] of {id, len}, avail_event */
};

/* One chain taken from the avail ring: device-readable buffers first, then
 * device-writable ones (the order §2.7.4.2 requires). */
struct virtq_chain {
    uint16_t head;
    unsigned nread;  /* iov[0 .. nread) are readable */
    unsigned nwrite; /* iov[nread .. nread + nwrite) are writable */
    uint64_t read_bytes, write_bytes;
};

/* Check the ring addresses and size and compute the host views. Returns 0,
 * or -EINVAL (size not a power of two <= VIRTQ_MAX_SIZE, misaligned, or a
 * ring outside RAM). */
int virtq_activate(struct virtq *vq, const struct guest_mem *mem);

/* Take the next available chain into iov (capacity iov_max). Returns 1 with
 * *chain filled, 0 if the ring is empty, or a negative errno when the ring
 * or chain is malformed: -EPROTO bad index or descriptor, -ELOOP chain
 * longer than the queue, -EFAULT buffer outside RAM, -E2BIG more buffers
 * than iov_max. On error the queue must not be used until reset. */
int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct iovec *iov, unsigned iov_max,
              struct virtq_chain *chain);

/* Give back the chain the last successful virtq_pop took, untouched (no
 * used entry written): the next virtq_pop returns it again. For a device
 * that can only tell after popping that it must wait (a rate limiter). */
void virtq_unpop(struct virtq *vq);

/* Return a chain: used ring entry {head, len}, then publish used->idx. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);

/* After pushing: does the driver want an interrupt now (§2.7.10)? */
bool virtq_needs_interrupt(struct virtq *vq);

/* With EVENT_IDX, ask for a notification at the next avail entry; returns
 * true if more entries arrived meanwhile (process them before sleeping). */
bool virtq_enable_notify(struct virtq *vq);

/* True if the avail ring holds entries the device has not taken. */
bool virtq_has_avail(const struct virtq *vq);

/* Copy up to `len` bytes starting at byte `off` of the concatenated iov. */
size_t iov_copy_from(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len);
size_t iov_copy_to(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len);

struct virtio_mmio;

/* A device type. All callbacks run with the transport lock held. */
struct virtio_dev_ops {
    const char *name;
    uint32_t device_id;
    unsigned num_queues;
    /* Feature bits the device offers (transport bits are added). */
    uint64_t (*features)(void *dev);
    /* Config space access; offset and length already bounds-checked against
     * config_size. write_config may be NULL (read-only config). */
    uint32_t config_size;
    void (*read_config)(void *dev, uint32_t offset, uint8_t *data, unsigned len);
    void (*write_config)(void *dev, uint32_t offset, const uint8_t *data, unsigned len);
    /* Optional: virtio_mmio_init tells the device its transport (whose
     * lock guards it), before any other callback. */
    void (*attach)(void *dev, struct virtio_mmio *t);
    /* The driver set DRIVER_OK: queues are ready, features final. */
    void (*activate)(void *dev, struct virtio_mmio *t);
    /* The driver notified queue `q` (or a completion wants a retry). */
    void (*queue_notify)(void *dev, struct virtio_mmio *t, unsigned q);
    /* The device was reset: forget queue state, drop in-flight work. */
    void (*reset)(void *dev);
    /* Snapshots (mandatory: virtio_mmio_init refuses a table without
     * them, so a new device cannot forget its state). save writes the
     * device's own state (not the transport's) as one section; load reads
     * it back into a device created from the same configuration, checking
     * every value, and changes nothing unless it returns 0 (else -EBADMSG
     * with r->what set, or -errno). load runs after the transport's state
     * is in place, so it may look at the negotiated features and status.
     * busy: I/O in flight whose completion would write guest memory or a
     * ring (vmm_devices_busy). */
    void (*save)(void *dev, struct snap_writer *w);
    int (*load)(void *dev, struct virtio_mmio *t, struct snap_reader *r);
    bool (*busy)(void *dev);
};

struct virtio_mmio_regs {
    uint32_t status;
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint64_t driver_features;
    uint32_t queue_sel;
    uint32_t interrupt_status;
    uint32_t config_generation;
};

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_dev_ops *ops;
    void *dev;
    const struct guest_mem *mem;
    gpa_t base;
    unsigned gsi;
    struct virtio_mmio_regs regs;
    struct virtq queues[VIRTIO_MAX_QUEUES];
    uint32_t generation; /* bumped on every reset: stale completions are dropped */
    /* Raise the device's interrupt line (an irqfd write in the VMM). */
    void (*irq_trigger)(void *opaque);
    void *irq_opaque;
    /* Hand a QueueNotify that trapped to the VMM thread (an eventfd write);
     * NULL calls the device directly (unit tests, fuzzing). */
    void (*notify_hook)(void *opaque, unsigned q);
    void *notify_opaque;
    struct log_ratelimit log_rl;
    uint64_t notifies, interrupts; /* counters for stats/metrics */
    /* While the VM is paused: devices start no new work (see
     * virtio_mmio_work_queue), so once what is in flight has finished
     * nothing writes guest memory until the VM runs again. */
    bool quiesced;
};

/* Initialise a transport for `dev` at `base` with interrupt line `gsi`.
 * Returns 0, or -EINVAL when the ops table lacks a mandatory callback
 * (features, read_config, queue_notify, save, load, busy). */
int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                     const struct guest_mem *mem, gpa_t base, unsigned gsi,
                     void (*irq_trigger)(void *), void *irq_opaque);

/* Bus ops for the 4 KiB register window. */
extern const struct bus_dev_ops virtio_mmio_bus_ops;

/* A queue notification (from an ioeventfd or a QueueNotify write). Takes
 * the lock. */
void virtio_mmio_notify(struct virtio_mmio *t, unsigned q);

/* The queue if the device is live (DRIVER_OK, not NEEDS_RESET) and q ready. */
struct virtq *virtio_mmio_live_queue(struct virtio_mmio *t, unsigned q);
/* The queue to take new work from: the live queue, or NULL while the
 * transport is quiesced. Completions of work already started use
 * virtio_mmio_live_queue, so they still reach the guest. */
struct virtq *virtio_mmio_work_queue(struct virtio_mmio *t, unsigned q);

/* Stop (on) or restart (off) new work: sets the flag, then calls the
 * device's queue_notify for every live queue, so a device gives back what
 * it holds and cancels what waits (on) or picks up what the guest posted
 * meanwhile (off). Takes the lock; VMM thread. */
void virtio_mmio_quiesce(struct virtio_mmio *t, bool on);
/* The device has I/O in flight that would write guest memory (ops->busy). */
bool virtio_mmio_busy(struct virtio_mmio *t);

/* Snapshots. save: the registers, every queue (configuration and
 * cursors) and then the device's own state, as one section; the device
 * must be quiesced with nothing in flight. load: the same into a transport
 * whose device was created from the same configuration, on the new
 * process's guest memory. Every value is checked as hostile, and every
 * state a guest can put the transport in is accepted (status one byte with
 * DRIVER_OK only after FEATURES_OK, features a subset of the offer once
 * FEATURES_OK is set, a ready queue's size a power of two up to
 * VIRTQ_MAX_SIZE and its rings inside RAM through virtq_activate, which
 * also re-derives the host pointers); on error -EBADMSG with r->what naming the value, and the
 * transport is left as after a reset. A device the driver had running is
 * live again at once: its activate callback runs, and pending interrupts
 * are raised again. Both take the lock. */
void virtio_mmio_save(struct virtio_mmio *t, struct snap_writer *w);
int virtio_mmio_load(struct virtio_mmio *t, struct snap_reader *r);
/* Set DEVICE_NEEDS_RESET, log `why`, and tell the driver (config interrupt). */
void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why);
/* Raise a used-buffer interrupt for queue q if the driver wants one. */
void virtio_mmio_signal_used(struct virtio_mmio *t, unsigned q);
/* Announce a config space change (bumps ConfigGeneration). */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* True when feature `bit` was negotiated. */
bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit);

#endif /* FLINT_VIRTIO_H */
