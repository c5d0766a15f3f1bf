/*
 * vmm_virtio.c - wiring virtio devices into the VM: slot addresses, the
 * kernel command line, irqfd/ioeventfd and the event loop.
 *
 * Slots are handed out in a fixed order, drives first, then network
 * interfaces, then vsock, so a guest sees the same layout for the same
 * configuration.
 */
#include "mmds.h"
#include "util.h"
#include "vmm.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static gpa_t slot_base(unsigned i)
{
    return FLINT_VIRTIO_MMIO_BASE + i * FLINT_VIRTIO_MMIO_SIZE;
}

static unsigned slot_gsi(unsigned i)
{
    return FLINT_VIRTIO_FIRST_GSI + i;
}

static unsigned count_devices(const struct vm_config *cfg)
{
    return cfg->ndrives + cfg->nnets + (cfg->vsock.enabled ? 1 : 0);
}

int vmm_build_cmdline(const struct vm_config *cfg, char *buf, size_t len)
{
    size_t n =
        (size_t)snprintf(buf, len, "%s", cfg->cmdline ? cfg->cmdline : CONFIG_DEFAULT_CMDLINE);
    unsigned ndev = count_devices(cfg);

    /* The API's root device is drives[0], the first virtio device: vda
     * (Firecracker's convention). */
    if (cfg->ndrives && cfg->drives[0].root_device && n < len) {
        const struct drive_config *d = &cfg->drives[0];
        if (d->partuuid)
            n += (size_t)snprintf(buf + n, len - n, " root=PARTUUID=%s", d->partuuid);
        else
            n += (size_t)snprintf(buf + n, len - n, " root=/dev/vda");
        if (n < len)
            n += (size_t)snprintf(buf + n, len - n, " %s", d->read_only ? "ro" : "rw");
    }
    /* Linux's virtio_mmio driver (and guest-shim) find devices here. */
    for (unsigned i = 0; i < ndev && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " virtio_mmio.device=4K@0x%llx:%u",
                              (unsigned long long)slot_base(i), slot_gsi(i));
    return n < len ? 0 : -E2BIG;
}

int vmm_create_devices(struct vmm *vmm)
{
    const struct vm_config *cfg = vmm->cfg;
    char err[512];

    if (count_devices(cfg) > VMM_MAX_VIRTIO) {
        log_error("devices: %u virtio devices exceed the %d slots", count_devices(cfg),
                  VMM_MAX_VIRTIO);
        return FLINT_EXIT_BAD_CONFIG;
    }
    for (unsigned i = 0; i < cfg->ndrives; i++) {
        if (virtio_blk_create(&vmm->blks[i], &cfg->drives[i], vmm->loop, err, sizeof(err)))
            goto fail;
        vmm->nblks = i + 1;
    }
    for (unsigned i = 0; i < cfg->nnets; i++) {
        if (virtio_net_create(&vmm->nets[i], &cfg->nets[i], vmm->loop, err, sizeof(err)))
            goto fail;
        vmm->nnets = i + 1;
        if (cfg->mmds && mmds_serves_iface(cfg->mmds, cfg->nets[i].id) &&
            virtio_net_set_mmds(vmm->nets[i], cfg->mmds)) {
            snprintf(err, sizeof(err), "network interface %s: MMDS: out of memory",
                     cfg->nets[i].id);
            goto fail;
        }
    }
    if (cfg->vsock.enabled &&
        virtio_vsock_create(&vmm->vsock, &cfg->vsock, vmm->loop, err, sizeof(err)))
        goto fail;
    return 0;
fail:
    log_error("%s", err);
    return FLINT_EXIT_BAD_CONFIG;
}

static void slot_irq(void *opaque)
{
    struct virtio_slot *s = opaque;
    uint64_t one = 1;

    if (write(s->irq_fd, &one, sizeof(one)) < 0)
        log_warn("virtio irqfd write failed: %s", strerror(errno));
}

/* A QueueNotify that trapped to a vCPU: hand it to the VMM thread. */
static void slot_notify_hook(void *opaque, unsigned q)
{
    struct virtio_slot *s = opaque;
    uint64_t one = 1;

    if (q < VIRTIO_MAX_QUEUES && s->notify[q].fd >= 0 &&
        write(s->notify[q].fd, &one, sizeof(one)) < 0)
        log_warn("virtio notify write failed: %s", strerror(errno));
}

static int arm_notify(struct vmm *vmm, struct virtio_notify *n)
{
    return evloop_read(vmm->loop, &n->ev, n->fd, &n->buf, sizeof(n->buf));
}

static void on_notify(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_notify *n = container_of(h, struct virtio_notify, ev);

    (void)flags;
    if (res < 0)
        return; /* ring torn down */
    virtio_mmio_notify(&n->slot->t, n->q);
    if (arm_notify(n->slot->vmm, n))
        log_error("virtio: cannot re-arm queue notification");
}

static int attach_one(struct vmm *vmm, const struct virtio_dev_ops *ops, void *dev)
{
    unsigned i = vmm->nvirtio;
    struct virtio_slot *s = &vmm->virtio[i];
    int rc;

    s->vmm = vmm;
    s->irq_fd = -1;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        s->notify[q].fd = -1;
    vmm->nvirtio = i + 1;
    rc = virtio_mmio_init(&s->t, ops, dev, &vmm->mem, slot_base(i), slot_gsi(i), slot_irq, s);
    if (rc)
        return rc;
    s->t.notify_hook = slot_notify_hook;
    s->t.notify_opaque = s;

    s->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->irq_fd < 0)
        return -errno;
    if ((rc = kvm_irqfd(&vmm->kvm, s->irq_fd, slot_gsi(i))))
        return rc;
    for (unsigned q = 0; q < ops->num_queues; q++) {
        struct virtio_notify *n = &s->notify[q];
        n->slot = s;
        n->q = q;
        n->ev.fn = on_notify;
        n->fd = eventfd(0, EFD_CLOEXEC);
        if (n->fd < 0)
            return -errno;
        rc = kvm_ioeventfd(&vmm->kvm, n->fd, slot_base(i) + VIRTIO_MMIO_QUEUE_NOTIFY, 4, q);
        if (!rc)
            rc = arm_notify(vmm, n);
        if (rc)
            return rc;
    }
    return bus_register(&vmm->mmio, slot_base(i), FLINT_VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops,
                        &s->t);
}

static int attach_or_fail(struct vmm *vmm, const struct virtio_dev_ops *ops, void *dev,
                          const char *what)
{
    int rc = attach_one(vmm, ops, dev);

    if (rc)
        log_error("%s %s: cannot attach: %s", ops->name, what, strerror(-rc));
    return rc ? FLINT_EXIT_GENERIC : 0;
}

int vmm_attach_virtio(struct vmm *vmm)
{
    int rc = 0;

    for (unsigned i = 0; i < vmm->nblks && !rc; i++)
        rc = attach_or_fail(vmm, &virtio_blk_ops, vmm->blks[i], vmm->cfg->drives[i].path);
    for (unsigned i = 0; i < vmm->nnets && !rc; i++)
        rc = attach_or_fail(vmm, &virtio_net_ops, vmm->nets[i], vmm->cfg->nets[i].tap);
    if (vmm->vsock && !rc)
        rc = attach_or_fail(vmm, &virtio_vsock_ops, vmm->vsock, vmm->cfg->vsock.uds_path);
    return rc;
}

void vmm_quiesce_virtio(struct vmm *vmm, bool on)
{
    for (unsigned i = 0; i < vmm->nvirtio; i++)
        virtio_mmio_quiesce(&vmm->virtio[i].t, on);
}

static unsigned long long ull(uint64_t v)
{
    return (unsigned long long)v;
}

void vmm_print_virtio_stats(struct vmm *vmm, int fd)
{
    unsigned slot = 0;

    for (unsigned i = 0; i < vmm->nblks; i++, slot++) {
        struct virtio_blk_stats st;
        virtio_blk_get_stats(vmm->blks[i], &st);
        dprintf(fd,
                "  virtio-blk %u: %llu reads (%llu bytes), %llu writes (%llu bytes), %llu flushes, "
                "%llu discards, %llu errors, %llu notifies, %llu interrupts\n",
                i, ull(st.reads), ull(st.bytes_read), ull(st.writes), ull(st.bytes_written),
                ull(st.flushes), ull(st.discards), ull(st.errors),
                ull(vmm->virtio[slot].t.notifies), ull(vmm->virtio[slot].t.interrupts));
    }
    for (unsigned i = 0; i < vmm->nnets; i++, slot++) {
        struct virtio_net_stats st;
        virtio_net_get_stats(vmm->nets[i], &st);
        dprintf(fd,
                "  virtio-net %u: rx %llu frames (%llu bytes), tx %llu frames (%llu bytes), "
                "%llu rx dropped, %llu tx dropped, %llu rx pauses, %llu rx errors, "
                "%llu tx errors, %llu notifies, %llu interrupts\n",
                i, ull(st.rx_frames), ull(st.rx_bytes), ull(st.tx_frames), ull(st.tx_bytes),
                ull(st.rx_dropped), ull(st.tx_dropped), ull(st.rx_no_buffers), ull(st.rx_errors),
                ull(st.tx_errors), ull(vmm->virtio[slot].t.notifies),
                ull(vmm->virtio[slot].t.interrupts));
    }
    if (vmm->vsock) {
        struct virtio_vsock_stats st;
        virtio_vsock_get_stats(vmm->vsock, &st);
        dprintf(fd,
                "  virtio-vsock: %llu connections opened, %llu refused, %llu reset, %u open; "
                "to guest %llu packets (%llu bytes), from guest %llu packets (%llu bytes), "
                "%llu bad packets, %llu notifies, %llu interrupts\n",
                ull(st.conns_opened), ull(st.conns_refused), ull(st.conns_reset), st.conns_live,
                ull(st.rx_packets), ull(st.rx_bytes), ull(st.tx_packets), ull(st.tx_bytes),
                ull(st.bad_packets), ull(vmm->virtio[slot].t.notifies),
                ull(vmm->virtio[slot].t.interrupts));
    }
}

/* ---- metrics (metrics.h) ---- */

static json_int_t load64(const uint64_t *p)
{
    return (json_int_t)__atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Add a device block; takes the reference. */
static int add_block(json_t *obj, const char *prefix, const char *id, unsigned index, json_t *b)
{
    char key[96];

    if (id)
        snprintf(key, sizeof(key), "%s_%s", prefix, id);
    else
        snprintf(key, sizeof(key), "%s_%u", prefix, index);
    return !b || json_object_set_new(obj, key, b) ? -ENOMEM : 0;
}

int vmm_add_metrics(struct vmm *vmm, json_t *obj)
{
    json_t *vcpu = json_object();
    unsigned slot = 0;

    if (!vcpu || json_object_set_new(obj, "vcpu", vcpu))
        return -ENOMEM;
    for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
        char key[48];
        json_int_t sum = 0;
        size_t at;

        for (unsigned i = 0; i < vmm->nvcpus; i++)
            sum += load64(&vmm->vcpus[i].exits[k]);
        at = (size_t)snprintf(key, sizeof(key), "exits_%s", vcpu_exit_kind_name(k));
        for (size_t i = 0; i < at && i < sizeof(key); i++)
            if (key[i] == '-')
                key[i] = '_';
        if (json_object_set_new(vcpu, key, json_integer(sum)))
            return -ENOMEM;
    }
    for (unsigned i = 0; i < vmm->nblks; i++, slot++) {
        struct virtio_blk_stats st;
        struct virtio_mmio *t = &vmm->virtio[slot].t;

        virtio_blk_get_stats(vmm->blks[i], &st);
        if (add_block(obj, "block", vmm->cfg->drives[i].id, i,
                      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "read_count",
                                (json_int_t)st.reads, "read_bytes", (json_int_t)st.bytes_read,
                                "write_count", (json_int_t)st.writes, "write_bytes",
                                (json_int_t)st.bytes_written, "flush_count", (json_int_t)st.flushes,
                                "discard_count", (json_int_t)st.discards, "failures",
                                (json_int_t)st.errors, "queue_notifies", load64(&t->notifies),
                                "interrupts", load64(&t->interrupts),
                                "rate_limiter_throttled_events",
                                (json_int_t)st.rate_limiter_throttled_events)))
            return -ENOMEM;
    }
    for (unsigned i = 0; i < vmm->nnets; i++, slot++) {
        struct virtio_net_stats st;
        struct virtio_mmio *t = &vmm->virtio[slot].t;

        virtio_net_get_stats(vmm->nets[i], &st);
        if (add_block(
                obj, "net", vmm->cfg->nets[i].id, i,
                json_pack(
                    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_count",
                    (json_int_t)st.rx_frames, "rx_bytes_count", (json_int_t)st.rx_bytes, "tx_count",
                    (json_int_t)st.tx_frames, "tx_bytes_count", (json_int_t)st.tx_bytes,
                    "rx_dropped", (json_int_t)st.rx_dropped, "tx_dropped",
                    (json_int_t)st.tx_dropped, "no_rx_avail_buffer", (json_int_t)st.rx_no_buffers,
                    "rx_fails", (json_int_t)st.rx_errors, "tx_fails", (json_int_t)st.tx_errors,
                    "queue_notifies", load64(&t->notifies), "interrupts", load64(&t->interrupts),
                    "rx_rate_limiter_throttled", (json_int_t)st.rx_rate_limiter_throttled,
                    "tx_rate_limiter_throttled", (json_int_t)st.tx_rate_limiter_throttled)))
            return -ENOMEM;
    }
    if (vmm->vsock) {
        struct virtio_vsock_stats st;
        struct virtio_mmio *t = &vmm->virtio[slot].t;
        json_t *b;

        virtio_vsock_get_stats(vmm->vsock, &st);
        b = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "conns_added",
                      (json_int_t)st.conns_opened, "conns_refused", (json_int_t)st.conns_refused,
                      "conns_reset", (json_int_t)st.conns_reset, "rx_packets_count",
                      (json_int_t)st.rx_packets, "rx_bytes_count", (json_int_t)st.rx_bytes,
                      "tx_packets_count", (json_int_t)st.tx_packets, "tx_bytes_count",
                      (json_int_t)st.tx_bytes, "bad_packets", (json_int_t)st.bad_packets,
                      "queue_notifies", load64(&t->notifies), "interrupts", load64(&t->interrupts));
        if (!b || json_object_set_new(obj, "vsock", b))
            return -ENOMEM;
    }
    return 0;
}

void vmm_destroy_virtio(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nvirtio; i++) {
        struct virtio_slot *s = &vmm->virtio[i];
        if (s->irq_fd >= 0)
            close(s->irq_fd);
        for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
            if (s->notify[q].fd >= 0)
                close(s->notify[q].fd);
    }
    for (unsigned i = 0; i < vmm->nblks; i++)
        virtio_blk_destroy(vmm->blks[i]);
    for (unsigned i = 0; i < vmm->nnets; i++)
        virtio_net_destroy(vmm->nets[i]);
    virtio_vsock_destroy(vmm->vsock);
    vmm->vsock = NULL;
    vmm->nvirtio = vmm->nblks = vmm->nnets = 0;
}

int vmm_set_drive_rate_limiter(struct vmm *vmm, unsigned index,
                               const struct rate_limiter_config *rl)
{
    if (index >= vmm->nblks)
        return -ENODEV;
    virtio_blk_set_rate_limiter(vmm->blks[index], rl);
    return 0;
}

int vmm_set_net_rate_limiters(struct vmm *vmm, unsigned index, const struct rate_limiter_config *rx,
                              const struct rate_limiter_config *tx)
{
    if (index >= vmm->nnets)
        return -ENODEV;
    virtio_net_set_rate_limiters(vmm->nets[index], rx, tx);
    return 0;
}
