/*
 * vmm_virtio.c - wiring virtio devices into the VM: slot addresses, the
 * kernel command line, irqfd/ioeventfd and the event loop.
 */
#include "util.h"
#include "vmm.h"

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

int vmm_build_cmdline(const struct vm_config *cfg, char *buf, size_t len)
{
    size_t n =
        (size_t)snprintf(buf, len, "%s", cfg->cmdline ? cfg->cmdline : CONFIG_DEFAULT_CMDLINE);

    /* Linux's virtio_mmio driver (and guest-shim) find devices here. */
    for (unsigned i = 0; i < cfg->ndrives && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " virtio_mmio.device=4K@0x%llx:%u",
                              (unsigned long long)slot_base(i), slot_gsi(i));
    return n < len ? 0 : -E2BIG;
}

int vmm_create_drives(struct vmm *vmm)
{
    char err[512];

    if (vmm->cfg->ndrives > VMM_MAX_VIRTIO) {
        log_error("drives: %u devices exceed the %d virtio slots", vmm->cfg->ndrives,
                  VMM_MAX_VIRTIO);
        return FLINT_EXIT_BAD_CONFIG;
    }
    for (unsigned i = 0; i < vmm->cfg->ndrives; i++) {
        if (virtio_blk_create(&vmm->blks[i], &vmm->cfg->drives[i], &vmm->loop, err, sizeof(err))) {
            log_error("%s", err);
            return FLINT_EXIT_BAD_CONFIG;
        }
        vmm->nblks = i + 1;
    }
    return 0;
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
    return evloop_read(&vmm->loop, &n->ev, n->fd, &n->buf, sizeof(n->buf));
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
    virtio_mmio_init(&s->t, ops, dev, &vmm->mem, slot_base(i), slot_gsi(i), slot_irq, s);
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

int vmm_attach_virtio(struct vmm *vmm)
{
    for (unsigned i = 0; i < vmm->nblks; i++) {
        int rc = attach_one(vmm, &virtio_blk_ops, vmm->blks[i]);
        if (rc) {
            log_error("virtio-blk %s: cannot attach: %s", vmm->cfg->drives[i].path, strerror(-rc));
            return FLINT_EXIT_GENERIC;
        }
    }
    return 0;
}

void vmm_print_virtio_stats(struct vmm *vmm, int fd)
{
    for (unsigned i = 0; i < vmm->nblks; i++) {
        struct virtio_blk_stats st;
        virtio_blk_get_stats(vmm->blks[i], &st);
        dprintf(fd,
                "  virtio-blk %u: %llu reads (%llu bytes), %llu writes (%llu bytes), %llu flushes, "
                "%llu discards, %llu errors, %llu notifies, %llu interrupts\n",
                i, (unsigned long long)st.reads, (unsigned long long)st.bytes_read,
                (unsigned long long)st.writes, (unsigned long long)st.bytes_written,
                (unsigned long long)st.flushes, (unsigned long long)st.discards,
                (unsigned long long)st.errors, (unsigned long long)vmm->virtio[i].t.notifies,
                (unsigned long long)vmm->virtio[i].t.interrupts);
    }
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
    vmm->nvirtio = vmm->nblks = 0;
}
