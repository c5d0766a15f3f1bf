/*
 * virtq.c - split virtqueues, driver side (virtio 1.2 §2.7).
 *
 * The descriptor free list and the chain links live in driver-private
 * shadow arrays; the shared rings are only written (descriptors, avail)
 * or read once into locals and checked (used).
 */
#include "virtio.h"

#define PAGE_SIZE 4096

static uintptr_t dma(const void *p)
{
    return (uintptr_t)p;
}

/* used_event sits after the avail ring, avail_event after the used ring
 * (§2.7.6, §2.7.8). */
static volatile uint16_t *used_event(const struct virtq *vq)
{
    return &vq->avail->ring[vq->size];
}

static volatile uint16_t *avail_event(const struct virtq *vq)
{
    return (volatile uint16_t *)&vq->used->ring[vq->size];
}

static int virtq_alloc(struct virtq *vq, uint16_t size, uint16_t indirect_max)
{
    if (!vq->desc || size > vq->capacity) {
        /* The sizes of §2.7 (Alignment/Size table), plus the event words. */
        vq->desc = shim_alloc(sizeof(struct virtq_desc) * size, PAGE_SIZE);
        vq->avail = shim_alloc(sizeof(struct virtq_avail) + sizeof(uint16_t) * (size + 1u), 2);
        vq->used = shim_alloc(sizeof(struct virtq_used) + sizeof(struct virtq_used_elem) * size +
                                  sizeof(uint16_t),
                              PAGE_SIZE);
        vq->cookie = shim_alloc(sizeof(void *) * size, 0);
        vq->next = shim_alloc(sizeof(uint16_t) * size, 0);
        vq->ndesc = shim_alloc(sizeof(uint16_t) * size, 0);
        vq->indirect = NULL;
        vq->capacity = size;
        if (!vq->desc || !vq->avail || !vq->used || !vq->cookie || !vq->next || !vq->ndesc) {
            vq->desc = NULL;
            return -SHIM_ENOMEM;
        }
    }
    if (indirect_max && (!vq->indirect || indirect_max > vq->indirect_max)) {
        size_t bytes = sizeof(struct virtq_desc) * indirect_max * vq->capacity;
        vq->indirect = shim_alloc(bytes, 16);
        if (!vq->indirect)
            indirect_max = 0; /* direct chains still work */
    }
    vq->indirect_max = indirect_max;
    return 0;
}

/* Empty rings, every descriptor on the free list, indices at 0. */
static void virtq_clear(struct virtq *vq)
{
    uint16_t size = vq->size;

    memset(vq->desc, 0, sizeof(struct virtq_desc) * size);
    memset(vq->avail, 0, sizeof(struct virtq_avail) + sizeof(uint16_t) * (size + 1u));
    memset(vq->used, 0,
           sizeof(struct virtq_used) + sizeof(struct virtq_used_elem) * size + sizeof(uint16_t));
    for (uint16_t i = 0; i < size; i++) {
        vq->next[i] = (uint16_t)(i + 1);
        vq->cookie[i] = NULL;
        vq->ndesc[i] = 0;
    }
    vq->free_head = 0;
    vq->num_free = size;
    vq->in_flight = 0;
    vq->avail_idx = vq->kicked_idx = vq->last_used = 0;
    vq->error = 0;
}

int virtq_setup(struct virtq *vq, struct virtio_dev *dev, uint16_t index, uint16_t max_size,
                uint16_t indirect_max)
{
    uint16_t max = virtio_queue_max(dev, index);

    if (max == 0)
        return -SHIM_ENODEV;
    if (max > max_size)
        max = max_size;
    /* §2.7: Queue Size is a power of two. */
    uint16_t size = 1;
    while (size <= max / 2)
        size = (uint16_t)(size * 2);
    if (!(dev->features & VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC)) || indirect_max < 2)
        indirect_max = 0;
    int ret = virtq_alloc(vq, size, indirect_max);
    if (ret)
        return ret;
    vq->dev = dev;
    vq->index = index;
    vq->size = size;
    vq->event_idx = dev->features & VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);
    virtq_clear(vq);
    return virtio_queue_enable(dev, index, size, vq->desc, vq->avail, vq->used);
}

/* One descriptor of a chain: `last` ends it, `writable` makes the buffer
 * device-writable. */
static void desc_fill(struct virtq_desc *d, uint16_t next, const struct virtq_buf *b, bool writable,
                      bool last)
{
    d->addr = dma(b->addr);
    d->len = b->len;
    d->flags = (uint16_t)((writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT));
    d->next = next;
}

static uint16_t add_indirect(struct virtq *vq, const struct virtq_buf *bufs, unsigned n_out,
                             unsigned n)
{
    uint16_t head = vq->free_head;
    struct virtq_desc *table = vq->indirect + (size_t)head * vq->indirect_max;

    for (unsigned i = 0; i < n; i++)
        desc_fill(&table[i], (uint16_t)(i + 1), &bufs[i], i >= n_out, i == n - 1);
    vq->desc[head] = (struct virtq_desc){
        .addr = dma(table),
        .len = (uint32_t)(n * sizeof(struct virtq_desc)),
        .flags = VIRTQ_DESC_F_INDIRECT,
    };
    vq->free_head = vq->next[head];
    vq->num_free--;
    vq->ndesc[head] = 1;
    return head;
}

static uint16_t add_direct(struct virtq *vq, const struct virtq_buf *bufs, unsigned n_out,
                           unsigned n)
{
    uint16_t head = vq->free_head, i = head;

    for (unsigned k = 0; k < n; k++) {
        desc_fill(&vq->desc[i], vq->next[i], &bufs[k], k >= n_out, k == n - 1);
        i = vq->next[i];
    }
    vq->free_head = i;
    vq->num_free = (uint16_t)(vq->num_free - n);
    vq->ndesc[head] = (uint16_t)n;
    return head;
}

int virtq_add(struct virtq *vq, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in,
              void *cookie)
{
    unsigned n = n_out + n_in;
    uint16_t head;

    if (vq->error)
        return vq->error;
    if (n == 0 || !cookie)
        return -SHIM_EINVAL;
    if (n > 1 && n <= vq->indirect_max) {
        if (vq->num_free == 0)
            return -SHIM_EAGAIN;
        head = add_indirect(vq, bufs, n_out, n);
    } else {
        if (n > vq->size)
            return -SHIM_EINVAL;
        if (n > vq->num_free)
            return -SHIM_EAGAIN;
        head = add_direct(vq, bufs, n_out, n);
    }
    vq->cookie[head] = cookie;
    vq->in_flight++;
    /* §2.7.13: descriptors and ring entry before the index that exposes
     * them. */
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    virtio_wmb();
    vq->avail_idx++;
    __atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELAXED);
    return 0;
}

void virtq_kick(struct virtq *vq)
{
    uint16_t old = vq->kicked_idx, now = vq->avail_idx;
    bool need;

    if (old == now)
        return;
    vq->kicked_idx = now;
    /* §2.7.13.4: the avail idx store must be visible before we read the
     * device's suppression state, or both sides may skip the kick. */
    virtio_mb();
    if (vq->event_idx) {
        uint16_t event = *avail_event(vq);
        need = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
    } else {
        need = !(*(volatile uint16_t *)&vq->used->flags & VIRTQ_USED_F_NO_NOTIFY);
    }
    if (need)
        virtio_notify(vq->dev, vq->index);
}

static void chain_free(struct virtq *vq, uint16_t head)
{
    uint16_t last = head;

    for (uint16_t k = 1; k < vq->ndesc[head]; k++)
        last = vq->next[last];
    vq->next[last] = vq->free_head;
    vq->free_head = head;
    vq->num_free = (uint16_t)(vq->num_free + vq->ndesc[head]);
    vq->ndesc[head] = 0;
    vq->cookie[head] = NULL;
    vq->in_flight--;
}

void *virtq_get_used(struct virtq *vq, uint32_t *len)
{
    if (vq->error)
        return NULL;
    uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED);
    if (used_idx == vq->last_used)
        return NULL;
    /* The device can not have used more chains than were exposed. */
    if ((uint16_t)(used_idx - vq->last_used) > vq->in_flight) {
        vq->error = -SHIM_EPROTO;
        return NULL;
    }
    virtio_rmb(); /* the entry is read after the index that published it */
    volatile struct virtq_used_elem *e = &vq->used->ring[vq->last_used & (vq->size - 1)];
    uint32_t id = e->id, written = e->len;
    if (id >= vq->size || !vq->cookie[id]) {
        vq->error = -SHIM_EPROTO;
        return NULL;
    }
    void *cookie = vq->cookie[id];
    chain_free(vq, (uint16_t)id);
    vq->last_used++;
    if (len)
        *len = written;
    return cookie;
}

bool virtq_arm(struct virtq *vq)
{
    if (vq->error)
        return true;
    if (vq->event_idx) {
        /* §2.7.10: interrupt once the device writes entry last_used. */
        *used_event(vq) = vq->last_used;
        virtio_mb();
    }
    return __atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED) != vq->last_used;
}

unsigned virtq_outstanding(const struct virtq *vq)
{
    return vq->in_flight;
}

void virtq_drain(struct virtq *vq, void (*fn)(void *cookie, void *arg), void *arg)
{
    if (!vq->desc)
        return;
    for (uint16_t i = 0; i < vq->size; i++) {
        if (vq->cookie[i] && fn)
            fn(vq->cookie[i], arg);
    }
    virtq_clear(vq);
}
