/*
 * virtio_mmio.c - the virtio-mmio version 2 transport (virtio 1.2 §4.2).
 */
#include "virtio.h"
#include "util.h"

#include <errno.h>
#include <string.h>

#define TRANSPORT_FEATURES                                                                         \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX))

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                     const struct guest_mem *mem, gpa_t base, unsigned gsi,
                     void (*irq_trigger)(void *), void *irq_opaque)
{
    memset(t, 0, sizeof(*t));
    if (!ops->features || !ops->read_config || !ops->queue_notify || !ops->save || !ops->load ||
        !ops->busy || ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES)
        return -EINVAL;
    pthread_mutex_init(&t->lock, NULL);
    t->ops = ops;
    t->dev = dev;
    t->mem = mem;
    t->base = base;
    t->gsi = gsi;
    t->irq_trigger = irq_trigger;
    t->irq_opaque = irq_opaque;
    if (ops->attach)
        ops->attach(dev, t);
    return 0;
}

static uint64_t offered_features(const struct virtio_mmio *t)
{
    return t->ops->features(t->dev) | TRANSPORT_FEATURES;
}

bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit)
{
    return bit < 64 && (t->regs.driver_features & (1ull << bit));
}

static void raise_irq(struct virtio_mmio *t, uint32_t why)
{
    t->regs.interrupt_status |= why;
    t->interrupts++;
    if (t->irq_trigger)
        t->irq_trigger(t->irq_opaque);
}

void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why)
{
    if (t->regs.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    if (log_ratelimit(&t->log_rl, 5))
        log_warn("virtio-%s@0x%llx: %s; device needs reset", t->ops->name,
                 (unsigned long long)t->base, why);
    t->regs.status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* §2.1.2: tell a driver that is running. */
    if (t->regs.status & VIRTIO_STATUS_DRIVER_OK)
        raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
    t->regs.config_generation++;
    if (t->regs.status & VIRTIO_STATUS_DRIVER_OK)
        raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

struct virtq *virtio_mmio_live_queue(struct virtio_mmio *t, unsigned q)
{
    uint32_t st = t->regs.status;

    if (!(st & VIRTIO_STATUS_DRIVER_OK) || (st & VIRTIO_STATUS_DEVICE_NEEDS_RESET) ||
        (st & VIRTIO_STATUS_FAILED) || q >= t->ops->num_queues || !t->queues[q].ready)
        return NULL;
    return &t->queues[q];
}

struct virtq *virtio_mmio_work_queue(struct virtio_mmio *t, unsigned q)
{
    return t->quiesced ? NULL : virtio_mmio_live_queue(t, q);
}

void virtio_mmio_quiesce(struct virtio_mmio *t, bool on)
{
    pthread_mutex_lock(&t->lock);
    t->quiesced = on;
    for (unsigned q = 0; q < t->ops->num_queues; q++)
        if (virtio_mmio_live_queue(t, q))
            t->ops->queue_notify(t->dev, t, q);
    pthread_mutex_unlock(&t->lock);
}

bool virtio_mmio_busy(struct virtio_mmio *t)
{
    bool busy;

    pthread_mutex_lock(&t->lock);
    busy = t->ops->busy(t->dev);
    pthread_mutex_unlock(&t->lock);
    return busy;
}

void virtio_mmio_signal_used(struct virtio_mmio *t, unsigned q)
{
    /* After a reset the queue has no rings: nothing to signal. */
    struct virtq *vq = virtio_mmio_live_queue(t, q);

    if (vq && virtq_needs_interrupt(vq))
        raise_irq(t, VIRTIO_MMIO_INT_VRING);
}

static void device_reset(struct virtio_mmio *t)
{
    if (t->ops->reset)
        t->ops->reset(t->dev);
    memset(&t->regs, 0, sizeof(t->regs));
    memset(t->queues, 0, sizeof(t->queues));
    t->generation++;
}

static void queue_set_ready(struct virtio_mmio *t, struct virtq *vq, uint32_t ready)
{
    if (!ready) {
        vq->ready = 0;
        return;
    }
    if (vq->ready)
        return;
    vq->event_idx = virtio_mmio_has_feature(t, VIRTIO_F_EVENT_IDX);
    vq->indirect = virtio_mmio_has_feature(t, VIRTIO_F_INDIRECT_DESC);
    if (virtq_activate(vq, t->mem)) {
        virtio_mmio_needs_reset(t, "queue size or ring addresses are invalid");
        return;
    }
    vq->ready = 1;
}

static void write_status(struct virtio_mmio *t, uint32_t val)
{
    uint32_t old = t->regs.status;

    if (val == 0) {
        device_reset(t);
        return;
    }
    /* The driver may only add bits (§2.1.1); NEEDS_RESET is the device's. */
    val &= 0xff & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    if ((old & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) & ~val) {
        virtio_mmio_needs_reset(t, "driver cleared status bits without a reset");
        return;
    }
    if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t f = t->regs.driver_features;
        /* §3.1.1: refuse (leave FEATURES_OK clear) what we cannot honour. */
        if ((f & ~offered_features(t)) || !(f & (1ull << VIRTIO_F_VERSION_1)))
            val &= ~VIRTIO_STATUS_FEATURES_OK;
    }
    if ((val & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_FEATURES_OK)) {
        t->regs.status = old;
        virtio_mmio_needs_reset(t, "DRIVER_OK without FEATURES_OK");
        return;
    }
    t->regs.status = val | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    if ((val & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) && t->ops->activate)
        t->ops->activate(t->dev, t);
}

static uint32_t read_reg(struct virtio_mmio *t, uint32_t off)
{
    struct virtq *vq =
        t->regs.queue_sel < t->ops->num_queues ? &t->queues[t->regs.queue_sel] : NULL;

    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION:
        return 2;
    case VIRTIO_MMIO_DEVICE_ID:
        return t->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        if (t->regs.device_features_sel > 1)
            return 0;
        return (uint32_t)(offered_features(t) >> (32 * t->regs.device_features_sel));
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return vq ? VIRTQ_MAX_SIZE : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return vq ? vq->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return t->regs.interrupt_status;
    case VIRTIO_MMIO_STATUS:
        return t->regs.status;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return t->regs.config_generation;
    default:
        /* No shared memory regions: length reads as all ones (§4.2.2). */
        if (off >= VIRTIO_MMIO_SHM_LEN_LOW && off <= VIRTIO_MMIO_SHM_BASE_HIGH)
            return 0xffffffff;
        return 0;
    }
}

static void set_addr_half(gpa_t *addr, uint32_t val, bool high)
{
    if (high)
        *addr = (*addr & 0xffffffffull) | ((uint64_t)val << 32);
    else
        *addr = (*addr & ~0xffffffffull) | val;
}

static void write_queue_reg(struct virtio_mmio *t, uint32_t off, uint32_t val)
{
    struct virtq *vq;

    if (t->regs.queue_sel >= t->ops->num_queues)
        return; /* writes to a queue that does not exist are ignored */
    vq = &t->queues[t->regs.queue_sel];
    if (off == VIRTIO_MMIO_QUEUE_READY) {
        queue_set_ready(t, vq, val);
        return;
    }
    if (vq->ready) /* §4.2.2.3: the queue may not be reconfigured while ready */
        return;
    switch (off) {
    case VIRTIO_MMIO_QUEUE_NUM:
        vq->num = val > 0xffff ? 0 : (uint16_t)val;
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        set_addr_half(&vq->desc_gpa, val, off == VIRTIO_MMIO_QUEUE_DESC_HIGH);
        break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        set_addr_half(&vq->avail_gpa, val, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH);
        break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        set_addr_half(&vq->used_gpa, val, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH);
        break;
    default:
        break;
    }
}

static void write_reg(struct virtio_mmio *t, uint32_t off, uint32_t val)
{
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        t->regs.device_features_sel = val;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        /* Features are frozen once FEATURES_OK is set. */
        if (t->regs.driver_features_sel <= 1 && !(t->regs.status & VIRTIO_STATUS_FEATURES_OK))
            set_addr_half(&t->regs.driver_features, val, t->regs.driver_features_sel == 1);
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        t->regs.driver_features_sel = val;
        break;
    case VIRTIO_MMIO_QUEUE_SEL:
        t->regs.queue_sel = val;
        break;
    case VIRTIO_MMIO_QUEUE_NUM:
    case VIRTIO_MMIO_QUEUE_READY:
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        write_queue_reg(t, off, val);
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        t->regs.interrupt_status &= ~val;
        break;
    case VIRTIO_MMIO_STATUS:
        write_status(t, val);
        break;
    default:
        break; /* read-only or reserved: ignored */
    }
}

static void notify_locked(struct virtio_mmio *t, unsigned q)
{
    t->notifies++;
    if (virtio_mmio_live_queue(t, q))
        t->ops->queue_notify(t->dev, t, q);
}

void virtio_mmio_notify(struct virtio_mmio *t, unsigned q)
{
    pthread_mutex_lock(&t->lock);
    notify_locked(t, q);
    pthread_mutex_unlock(&t->lock);
}

static bool config_access(const struct virtio_mmio *t, uint64_t off, unsigned len)
{
    return off >= VIRTIO_MMIO_CONFIG && off - VIRTIO_MMIO_CONFIG < t->ops->config_size &&
           len <= t->ops->config_size - (off - VIRTIO_MMIO_CONFIG);
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct virtio_mmio *t = opaque;
    uint32_t v;

    memset(data, 0, len);
    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (config_access(t, off, len))
            t->ops->read_config(t->dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
    } else if (len == 4 && off % 4 == 0) {
        v = read_reg(t, (uint32_t)off);
        memcpy(data, &v, 4);
    } else if (log_ratelimit(&t->log_rl, 5)) {
        log_warn("virtio-%s: %u-byte read of register 0x%llx ignored (registers are 32-bit)",
                 t->ops->name, len, (unsigned long long)off);
    }
    pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct virtio_mmio *t = opaque;
    uint32_t v;

    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (config_access(t, off, len) && t->ops->write_config)
            t->ops->write_config(t->dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
    } else if (len == 4 && off % 4 == 0) {
        memcpy(&v, data, 4);
        if (off == VIRTIO_MMIO_QUEUE_NOTIFY && t->notify_hook) {
            if (v < t->ops->num_queues)
                t->notify_hook(t->notify_opaque, v);
        } else if (off == VIRTIO_MMIO_QUEUE_NOTIFY) {
            notify_locked(t, v);
        } else
            write_reg(t, (uint32_t)off, v);
    } else if (log_ratelimit(&t->log_rl, 5)) {
        log_warn("virtio-%s: %u-byte write of register 0x%llx ignored (registers are 32-bit)",
                 t->ops->name, len, (unsigned long long)off);
    }
    pthread_mutex_unlock(&t->lock);
}

const struct bus_dev_ops virtio_mmio_bus_ops = {
    .name = "virtio-mmio",
    .read = mmio_read,
    .write = mmio_write,
};

/* ---- snapshots ---- */

#define SNAP_TAG_VIRTIO SNAP_TAG('V', 'I', 'R', 'T')
#define SNAP_TAG_VQ     SNAP_TAG('V', 'Q', 'U', 'E')

static void queue_save(const struct virtq *vq, struct snap_writer *w)
{
    size_t mark = snap_section_begin(w, SNAP_TAG_VQ);

    snap_put_u16(w, vq->num);
    snap_put_u8(w, vq->ready);
    snap_put_u8(w, vq->event_idx);
    snap_put_u8(w, vq->indirect);
    snap_put_u64(w, vq->desc_gpa);
    snap_put_u64(w, vq->avail_gpa);
    snap_put_u64(w, vq->used_gpa);
    snap_put_u16(w, vq->last_avail);
    snap_put_u16(w, vq->used_idx);
    snap_put_u16(w, vq->signalled_used);
    snap_section_end(w, mark);
}

void virtio_mmio_save(struct virtio_mmio *t, struct snap_writer *w)
{
    size_t mark;

    pthread_mutex_lock(&t->lock);
    mark = snap_section_begin(w, SNAP_TAG_VIRTIO);
    snap_put_u32(w, t->ops->device_id);
    snap_put_u32(w, t->regs.status);
    snap_put_u32(w, t->regs.device_features_sel);
    snap_put_u32(w, t->regs.driver_features_sel);
    snap_put_u64(w, t->regs.driver_features);
    snap_put_u32(w, t->regs.queue_sel);
    snap_put_u32(w, t->regs.interrupt_status);
    snap_put_u32(w, t->regs.config_generation);
    snap_put_u32(w, t->ops->num_queues);
    for (unsigned q = 0; q < t->ops->num_queues; q++)
        queue_save(&t->queues[q], w);
    t->ops->save(t->dev, w);
    snap_section_end(w, mark);
    pthread_mutex_unlock(&t->lock);
}

/* Status as the transport can hold it (write_status): one byte, and
 * DRIVER_OK only with FEATURES_OK. A loader accepts every state a guest
 * can reach, or a guest could make its own snapshots unloadable. */
static bool status_legal(uint32_t st)
{
    if (st & ~0xffu)
        return false;
    return !(st & VIRTIO_STATUS_DRIVER_OK) || (st & VIRTIO_STATUS_FEATURES_OK);
}

static void regs_load(struct virtio_mmio *t, struct snap_reader *r, struct virtio_mmio_regs *g)
{
    if (snap_get_u32(r) != t->ops->device_id && !snap_error(r))
        snap_fail(r, "virtio device type differs from the configuration");
    g->status = snap_get_u32(r);
    g->device_features_sel = snap_get_u32(r);
    g->driver_features_sel = snap_get_u32(r);
    g->driver_features = snap_get_u64(r);
    g->queue_sel = snap_get_u32(r);
    g->interrupt_status = snap_get_u32(r);
    g->config_generation = snap_get_u32(r);
    if (snap_get_u32(r) != t->ops->num_queues && !snap_error(r))
        snap_fail(r, "virtio queue count differs from the device's");
    if (snap_error(r))
        return;
    /* Until FEATURES_OK the driver may write any bits (write_status
     * refuses them then, §3.1.1); after it, only what was offered. */
    if (!status_legal(g->status))
        snap_fail(r, "virtio status is not a state the device can be in");
    else if ((g->status & VIRTIO_STATUS_FEATURES_OK) && (g->driver_features & ~offered_features(t)))
        snap_fail(r, "virtio driver features include features the device does not offer");
    else if ((g->status & VIRTIO_STATUS_FEATURES_OK) &&
             !(g->driver_features & (1ull << VIRTIO_F_VERSION_1)))
        snap_fail(r, "virtio features accepted without VIRTIO_F_VERSION_1");
    else if (g->interrupt_status & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
        snap_fail(r, "virtio interrupt status has unknown bits");
}

/* One queue, checked; a ready queue's rings are activated on t->mem. */
static void queue_load(struct virtio_mmio *t, struct snap_reader *r, struct virtq *vq)
{
    struct snap_reader sec;
    uint16_t last_avail, used_idx, signalled;
    uint64_t n;

    memset(vq, 0, sizeof(*vq));
    if (snap_section_enter(r, SNAP_TAG_VQ, &sec, "virtio queue section"))
        return;
    vq->num = snap_get_u16(&sec);
    vq->ready = snap_get_u8(&sec);
    vq->event_idx = snap_get_u8(&sec);
    vq->indirect = snap_get_u8(&sec);
    vq->desc_gpa = snap_get_u64(&sec);
    vq->avail_gpa = snap_get_u64(&sec);
    vq->used_gpa = snap_get_u64(&sec);
    last_avail = snap_get_u16(&sec);
    used_idx = snap_get_u16(&sec);
    signalled = snap_get_u16(&sec);
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return;
    }
    /* A queue that is not ready may hold any size the driver wrote.
     * EVENT_IDX and INDIRECT_DESC are kept as saved: they were fixed when
     * the queue was made ready, possibly before the driver's last change
     * of features, and the ring walker is safe with either. */
    n = vq->num;
    if (vq->ready > 1 || vq->event_idx > 1 || vq->indirect > 1)
        snap_fail(r, "virtio queue flag is neither 0 nor 1");
    else if (vq->ready && (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1))))
        snap_fail(r, "virtio queue size is not a power of two up to 256");
    else if (vq->ready && virtq_activate(vq, t->mem))
        snap_fail(r, "virtio queue size or ring addresses invalid (misaligned or outside RAM)");
    else if (vq->ready && (uint16_t)(last_avail - used_idx) > vq->num)
        snap_fail(r, "virtio queue has more chains taken than it has slots");
    if (snap_error(r)) {
        memset(vq, 0, sizeof(*vq));
        return;
    }
    vq->last_avail = last_avail;
    vq->used_idx = used_idx;
    vq->signalled_used = signalled;
}

/* The restored device runs as the driver left it: its activate callback
 * (net re-applies offloads to the tap, RX reads resume), and interrupts
 * that may have been in flight when the snapshot was taken are raised
 * again; a spurious one is harmless (§4.2.3.3: the driver reads
 * InterruptStatus). */
static void make_live(struct virtio_mmio *t)
{
    if (!(t->regs.status & VIRTIO_STATUS_DRIVER_OK) ||
        (t->regs.status & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED)))
        return;
    if (t->ops->activate)
        t->ops->activate(t->dev, t);
    for (unsigned q = 0; q < t->ops->num_queues; q++) {
        struct virtq *vq = virtio_mmio_live_queue(t, q);
        if (vq && vq->used_idx != vq->signalled_used && virtq_needs_interrupt(vq))
            t->regs.interrupt_status |= VIRTIO_MMIO_INT_VRING;
    }
    if (t->regs.interrupt_status && t->irq_trigger)
        t->irq_trigger(t->irq_opaque);
}

static int load_locked(struct virtio_mmio *t, struct snap_reader *r)
{
    struct snap_reader sec;
    struct virtio_mmio_regs regs = {0};
    struct virtq queues[VIRTIO_MAX_QUEUES];
    int rc;

    if (snap_section_enter(r, SNAP_TAG_VIRTIO, &sec, "virtio device section"))
        return -EBADMSG;
    regs_load(t, &sec, &regs);
    for (unsigned q = 0; q < t->ops->num_queues && !snap_error(&sec); q++)
        queue_load(t, &sec, &queues[q]);
    if (snap_error(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    t->regs = regs;
    memset(t->queues, 0, sizeof(t->queues));
    memcpy(t->queues, queues, t->ops->num_queues * sizeof(queues[0]));
    rc = t->ops->load(t->dev, t, &sec);
    if (!rc && snap_section_leave(&sec))
        rc = -EBADMSG;
    if (rc) {
        snap_fail(r, sec.what ? sec.what : "virtio device state invalid");
        memset(&t->regs, 0, sizeof(t->regs));
        memset(t->queues, 0, sizeof(t->queues));
        return rc;
    }
    make_live(t);
    return 0;
}

int virtio_mmio_load(struct virtio_mmio *t, struct snap_reader *r)
{
    int rc;

    pthread_mutex_lock(&t->lock);
    rc = load_locked(t, r);
    pthread_mutex_unlock(&t->lock);
    return rc;
}
