/*
 * virtq.c - the device side of split virtqueues (virtio 1.2 §2.7).
 *
 * Every value the driver controls is read exactly once into a local
 * (volatile loads, so the compiler cannot fetch it twice) and checked before
 * it is used.
 */
#include "virtio.h"
#include "util.h"

#include <errno.h>
#include <string.h>

static inline uint16_t load16(const uint16_t *p)
{
    return *(const volatile uint16_t *)p;
}

static inline uint16_t load16_acquire(const uint16_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void desc_read(const struct virtq_desc *src, struct virtq_desc *d)
{
    const volatile struct virtq_desc *v = src;
    d->addr = v->addr;
    d->len = v->len;
    d->flags = v->flags;
    d->next = v->next;
}

int virtq_activate(struct virtq *vq, const struct guest_mem *mem)
{
    uint64_t n = vq->num;

    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
        return -EINVAL;
    /* §2.7: alignment 16 / 2 / 4 for descriptor table, driver and device areas. */
    if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
        return -EINVAL;
    vq->desc = guest_mem_slice(mem, vq->desc_gpa, 16 * n);
    vq->avail = guest_mem_slice(mem, vq->avail_gpa, 6 + 2 * n);
    vq->used = guest_mem_slice(mem, vq->used_gpa, 6 + 8 * n);
    if (!vq->desc || !vq->avail || !vq->used) {
        vq->desc = NULL;
        vq->avail = NULL;
        vq->used = NULL;
        return -EINVAL;
    }
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    return 0;
}

bool virtq_has_avail(const struct virtq *vq)
{
    return load16_acquire(&vq->avail[1]) != vq->last_avail;
}

/* Walk one descriptor table (the ring's, or an indirect one) from `idx`. */
static int walk(const struct virtq *vq, const struct guest_mem *mem, const struct virtq_desc *table,
                unsigned table_size, unsigned idx, bool indirect, struct iovec *iov,
                unsigned iov_max, struct virtq_chain *c)
{
    for (unsigned count = 1;; count++) {
        struct virtq_desc d;

        desc_read(&table[idx], &d);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            const struct virtq_desc *sub;
            /* §2.7.5.3.1: only once, never with NEXT, whole descriptors. */
            if (indirect || !vq->indirect || (d.flags & VIRTQ_DESC_F_NEXT))
                return -EPROTO;
            if (d.len == 0 || d.len % sizeof(struct virtq_desc) ||
                d.len / sizeof(struct virtq_desc) > VIRTQ_MAX_SIZE)
                return -EPROTO;
            sub = guest_mem_slice(mem, d.addr, d.len);
            if (!sub)
                return -EFAULT;
            return walk(vq, mem, sub, d.len / sizeof(struct virtq_desc), 0, true, iov, iov_max, c);
        }
        if (d.flags & VIRTQ_DESC_F_WRITE) {
            c->nwrite++;
            c->write_bytes += d.len;
        } else {
            if (c->nwrite) /* readable after writable: §2.7.4.2 */
                return -EPROTO;
            c->nread++;
            c->read_bytes += d.len;
        }
        if (c->nread + c->nwrite > iov_max)
            return -E2BIG;
        iov[c->nread + c->nwrite - 1].iov_len = d.len;
        iov[c->nread + c->nwrite - 1].iov_base = guest_mem_slice(mem, d.addr, d.len);
        if (!iov[c->nread + c->nwrite - 1].iov_base)
            return -EFAULT;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 1;
        idx = d.next;
        if (idx >= table_size)
            return -EPROTO;
        /* A chain can hold each descriptor of its table once: more is a loop. */
        if (count >= table_size)
            return -ELOOP;
    }
}

int virtq_pop(struct virtq *vq, const struct guest_mem *mem, struct iovec *iov, unsigned iov_max,
              struct virtq_chain *chain)
{
    uint16_t avail_idx = load16_acquire(&vq->avail[1]);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    uint16_t head;
    int rc;

    if (pending == 0)
        return 0;
    if (pending > vq->num)
        return -EPROTO; /* the driver cannot have more entries than slots */
    head = load16(&vq->avail[2 + vq->last_avail % vq->num]);
    if (head >= vq->num)
        return -EPROTO;
    memset(chain, 0, sizeof(*chain));
    chain->head = head;
    rc = walk(vq, mem, vq->desc, vq->num, head, false, iov, iov_max, chain);
    if (rc < 0)
        return rc;
    vq->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *vq)
{
    vq->last_avail--;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
    volatile uint32_t *elem = (volatile uint32_t *)(vq->used + 4 + 8 * (vq->used_idx % vq->num));

    elem[0] = head;
    elem[1] = len;
    vq->used_idx++;
    /* The entry must be visible before the index that publishes it. */
    __atomic_store_n((uint16_t *)(vq->used + 2), vq->used_idx, __ATOMIC_RELEASE);
}

bool virtq_needs_interrupt(struct virtq *vq)
{
    uint16_t old = vq->signalled_used, now = vq->used_idx, event;

    /* Order the used->idx store before reading the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vq->signalled_used = now;
    if (!vq->event_idx)
        return !(load16(&vq->avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    /* §2.7.10: interrupt if used_event lies in (old, now]. */
    event = load16(&vq->avail[2 + vq->num]);
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool virtq_enable_notify(struct virtq *vq)
{
    if (vq->event_idx) {
        volatile uint16_t *avail_event = (volatile uint16_t *)(vq->used + 4 + 8 * vq->num);
        *avail_event = vq->last_avail;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return virtq_has_avail(vq);
}

/* Copy between a flat buffer and byte `off` onward of an iovec array. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, uint8_t *buf, size_t len,
                       bool to_iov)
{
    size_t done = 0;

    for (unsigned i = 0; i < n && done < len; i++) {
        size_t seg = iov[i].iov_len;
        if (off >= seg) {
            off -= seg;
            continue;
        }
        size_t take = seg - off < len - done ? seg - off : len - done;
        uint8_t *at = (uint8_t *)iov[i].iov_base + off;
        if (to_iov)
            memcpy(at, buf + done, take);
        else
            memcpy(buf + done, at, take);
        done += take;
        off = 0;
    }
    return done;
}

size_t iov_copy_from(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
    return iov_copy(iov, n, off, dst, len, false);
}

size_t iov_copy_to(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len)
{
    return iov_copy(iov, n, off, (uint8_t *)(uintptr_t)src, len, true);
}
