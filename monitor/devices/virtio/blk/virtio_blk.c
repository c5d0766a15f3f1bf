/*
 * virtio_blk.c - virtio block device (virtio 1.2 §5.2) on io_uring.
 */
#define _GNU_SOURCE
#include "virtio_blk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK_IOV_MAX         (VIRTIO_BLK_SEG_MAX + 2)
#define BLK_HDR_BYTES       16
#define BLK_MAX_DISCARD_SEG 1

/* An open image. The device holds one reference to its current file and
 * every request in flight one to the file it was submitted on, so a swap
 * (PATCH /drives) lets those finish on the old file, closed after the last. */
struct blk_file {
    int fd;
    unsigned refs;
    struct blk_file *next; /* on the device's list of retired files */
};

struct blk_req {
    struct ev_handler ev;
    struct virtio_blk *blk;
    struct blk_file *file; /* the file the I/O in flight uses; NULL if none */
    struct blk_req *next_free;
    uint32_t generation;
    uint16_t head;
    uint8_t type;
    uint8_t *status;
    uint32_t used_len;
    uint64_t expect;             /* bytes the I/O must transfer; 0 for flush/fallocate */
    uint64_t zero_off, zero_len; /* WRITE_ZEROES range, for the punch-hole retry */
    int falloc_mode;
    struct iovec iov[BLK_IOV_MAX];
};

struct virtio_blk {
    struct blk_file *file;
    struct blk_file *retired; /* swapped out, requests still in flight */
    bool read_only, can_discard, can_zero_range;
    char id[VIRTIO_BLK_ID_BYTES];
    uint64_t capacity; /* sectors */
    struct evloop *loop;
    struct virtio_mmio *t;
    struct blk_req *reqs, *free_reqs;
    bool stalled;
    struct ev_handler signal_ev; /* deferred: one interrupt per completion batch */
    struct virtio_blk_stats stats;
    struct log_ratelimit log_rl;
    char *path;
    /* Rate limiting: while the gate is closed, requests stay in the avail
     * ring until its timer reopens it (rate_limiter.h). */
    struct rl_gate gate;
    char snap_why[160]; /* a load's error message (r->what points here) */
};

/* §5.2.4 struct virtio_blk_config, little-endian on x86. */
struct __attribute__((packed)) blk_config {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads, sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp, alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback, unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
    uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap, unused1[3];
};

struct __attribute__((packed)) blk_discard_seg {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};
#define BLK_WZ_UNMAP 1

static uint64_t blk_features(void *dev)
{
    struct virtio_blk *b = dev;
    uint64_t f = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
                 (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);
    if (b->read_only)
        f |= 1ull << VIRTIO_BLK_F_RO;
    if (b->can_discard)
        f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    return f;
}

static void blk_read_config(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
    struct virtio_blk *b = dev;
    uint32_t max_sectors = UINT32_MAX / VIRTIO_BLK_SECTOR;
    struct blk_config c = {
        .capacity = b->capacity,
        .size_max = VIRTIO_BLK_SIZE_MAX,
        .seg_max = VIRTIO_BLK_SEG_MAX,
        .blk_size = VIRTIO_BLK_SECTOR,
        .num_queues = 1,
        .max_discard_sectors = max_sectors,
        .max_discard_seg = BLK_MAX_DISCARD_SEG,
        .discard_sector_alignment = 1,
        .max_write_zeroes_sectors = max_sectors,
        .max_write_zeroes_seg = BLK_MAX_DISCARD_SEG,
        .write_zeroes_may_unmap = 1,
    };
    memcpy(data, (uint8_t *)&c + off, len);
}

static void file_put(struct virtio_blk *b, struct blk_file *f)
{
    if (--f->refs)
        return;
    for (struct blk_file **p = &b->retired; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    close(f->fd);
    free(f);
}

static void req_free(struct virtio_blk *b, struct blk_req *r)
{
    if (r->file)
        file_put(b, r->file);
    r->file = NULL;
    r->next_free = b->free_reqs;
    b->free_reqs = r;
}

/* Finish a request: status byte, used ring. The caller signals the driver. */
static void req_complete(struct virtio_blk *b, struct virtio_mmio *t, struct blk_req *r,
                         uint8_t status)
{
    struct virtq *vq = virtio_mmio_live_queue(t, 0);

    if (status != VIRTIO_BLK_S_OK)
        b->stats.errors++;
    /* A device reset since submission makes the chain meaningless: drop it. */
    if (vq && r->generation == t->generation) {
        *(volatile uint8_t *)r->status = status;
        virtq_push(vq, r->head, status == VIRTIO_BLK_S_OK ? r->used_len : 1);
    }
    req_free(b, r);
}

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
    uint64_t sectors = bytes / VIRTIO_BLK_SECTOR, end;
    return bytes % VIRTIO_BLK_SECTOR == 0 && add_ok_u64(sector, sectors, &end) &&
           end <= b->capacity;
}

/* Drop `skip` bytes from the front of an iovec array, in place. */
static unsigned iov_skip(struct iovec *iov, unsigned n, size_t skip, struct iovec **out)
{
    while (n && skip >= iov->iov_len) {
        skip -= iov->iov_len;
        iov++;
        n--;
    }
    if (n) {
        iov->iov_base = (uint8_t *)iov->iov_base + skip;
        iov->iov_len -= skip;
    }
    *out = iov;
    return n;
}

static void on_io_done(struct ev_handler *h, int res, uint32_t flags);
static void on_signal(struct ev_handler *h, int res, uint32_t flags);

static uint8_t submit_rw(struct virtio_blk *b, struct blk_req *r, uint64_t sector,
                         struct iovec *iov, unsigned n, uint64_t bytes, bool write)
{
    struct io_uring_sqe *sqe;

    /* seg_max * size_max bounds a request; it also keeps lengths in 32 bits. */
    if (bytes > (uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX || !range_ok(b, sector, bytes))
        return VIRTIO_BLK_S_IOERR;
    if (write && b->read_only)
        return VIRTIO_BLK_S_IOERR;
    if (bytes == 0)
        return VIRTIO_BLK_S_OK;
    sqe = evloop_sqe(b->loop, &r->ev);
    if (!sqe)
        return VIRTIO_BLK_S_IOERR;
    if (write) {
        io_uring_prep_writev(sqe, r->file->fd, iov, n, sector * VIRTIO_BLK_SECTOR);
        b->stats.writes++;
    } else {
        io_uring_prep_readv(sqe, r->file->fd, iov, n, sector * VIRTIO_BLK_SECTOR);
        b->stats.reads++;
    }
    r->expect = bytes;
    return 0xff; /* in flight */
}

static uint8_t submit_flush(struct virtio_blk *b, struct blk_req *r)
{
    struct io_uring_sqe *sqe = evloop_sqe(b->loop, &r->ev);

    if (!sqe)
        return VIRTIO_BLK_S_IOERR;
    io_uring_prep_fsync(sqe, r->file->fd, IORING_FSYNC_DATASYNC);
    r->expect = 0;
    b->stats.flushes++;
    return 0xff;
}

static uint8_t submit_fallocate(struct virtio_blk *b, struct blk_req *r, int mode)
{
    struct io_uring_sqe *sqe = evloop_sqe(b->loop, &r->ev);

    if (!sqe)
        return VIRTIO_BLK_S_IOERR;
    io_uring_prep_fallocate(sqe, r->file->fd, mode, r->zero_off, r->zero_len);
    r->falloc_mode = mode;
    r->expect = 0;
    return 0xff;
}

static uint8_t submit_discard(struct virtio_blk *b, struct blk_req *r, struct iovec *iov,
                              unsigned n, uint64_t bytes)
{
    struct blk_discard_seg seg;
    int mode;

    unsigned bit =
        r->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;

    if (!virtio_mmio_has_feature(b->t, bit))
        return VIRTIO_BLK_S_UNSUPP;
    if (bytes != sizeof(seg) * BLK_MAX_DISCARD_SEG || b->read_only)
        return VIRTIO_BLK_S_IOERR;
    iov_copy_from(iov, n, 0, &seg, sizeof(seg));
    if (r->type == VIRTIO_BLK_T_DISCARD && seg.flags)
        return VIRTIO_BLK_S_UNSUPP; /* §5.2.6.2: unmap is for WRITE_ZEROES only */
    if (seg.flags & ~BLK_WZ_UNMAP)
        return VIRTIO_BLK_S_UNSUPP;
    if (!range_ok(b, seg.sector, (uint64_t)seg.num_sectors * VIRTIO_BLK_SECTOR))
        return VIRTIO_BLK_S_IOERR;
    if (seg.num_sectors == 0)
        return VIRTIO_BLK_S_OK;
    /* Without ZERO_RANGE (tmpfs), a punched hole reads back as zeroes too. */
    mode = r->type == VIRTIO_BLK_T_DISCARD || (seg.flags & BLK_WZ_UNMAP) || !b->can_zero_range
               ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
               : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    r->zero_off = seg.sector * VIRTIO_BLK_SECTOR;
    r->zero_len = (uint64_t)seg.num_sectors * VIRTIO_BLK_SECTOR;
    b->stats.discards++;
    return submit_fallocate(b, r, mode);
}

/* Parse and start one request. Returns a status to complete it with now,
 * 0xff when it is in flight, or -1 when the chain is malformed. */
static int blk_start(struct virtio_blk *b, struct blk_req *r, const struct virtq_chain *c)
{
    struct iovec *data;
    unsigned n;
    struct {
        uint32_t type;
        uint32_t reserved;
        uint64_t sector;
    } hdr;
    struct iovec *last;

    /* §5.2.6: header (16 bytes, readable) ... status (1 byte, writable, last). */
    if (c->read_bytes < BLK_HDR_BYTES || c->nwrite == 0)
        return -1;
    last = &r->iov[c->nread + c->nwrite - 1];
    if (last->iov_len == 0)
        return -1;
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    iov_copy_from(r->iov, c->nread, 0, &hdr, sizeof(hdr));
    r->type = (uint8_t)(hdr.type > 0xff ? 0xff : hdr.type);
    r->used_len = 1;

    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
        last->iov_len--; /* the status byte is not data */
        r->used_len = (uint32_t)c->write_bytes;
        return submit_rw(b, r, hdr.sector, &r->iov[c->nread], c->nwrite, c->write_bytes - 1, false);
    case VIRTIO_BLK_T_OUT:
        n = iov_skip(r->iov, c->nread, BLK_HDR_BYTES, &data);
        return submit_rw(b, r, hdr.sector, data, n, c->read_bytes - BLK_HDR_BYTES, true);
    case VIRTIO_BLK_T_FLUSH:
        return submit_flush(b, r);
    case VIRTIO_BLK_T_GET_ID: {
        uint64_t room = c->write_bytes - 1;
        size_t len = room < VIRTIO_BLK_ID_BYTES ? (size_t)room : VIRTIO_BLK_ID_BYTES;
        last->iov_len--;
        iov_copy_to(&r->iov[c->nread], c->nwrite, 0, b->id, len);
        r->used_len = (uint32_t)len + 1;
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        n = iov_skip(r->iov, c->nread, BLK_HDR_BYTES, &data);
        return submit_discard(b, r, data, n, c->read_bytes - BLK_HDR_BYTES);
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

/* What a request costs the rate limiter: 1 op and its data bytes (reads
 * and writes only). Only the header's type is looked at; blk_start checks
 * the request. */
static uint64_t blk_cost_bytes(const struct blk_req *r, const struct virtq_chain *c)
{
    uint32_t type;

    if (c->read_bytes < BLK_HDR_BYTES)
        return 0;
    iov_copy_from(r->iov, c->nread, 0, &type, sizeof(type));
    if (type == VIRTIO_BLK_T_IN && c->write_bytes > 0)
        return c->write_bytes - 1;
    if (type == VIRTIO_BLK_T_OUT)
        return c->read_bytes - BLK_HDR_BYTES;
    return 0;
}

static void blk_process(struct virtio_blk *b, struct virtio_mmio *t)
{
    struct virtq *vq = virtio_mmio_work_queue(t, 0);
    bool pushed = false;

    rl_gate_flush(&b->gate);
    if (!vq || b->gate.closed)
        return;
    b->stalled = false;
    do {
        for (;;) {
            struct blk_req *r = b->free_reqs;
            struct virtq_chain chain;
            int rc;

            if (!r) {
                /* Every slot is in flight; a completion resumes us. */
                b->stalled = true;
                goto out;
            }
            rc = virtq_pop(vq, t->mem, r->iov, BLK_IOV_MAX, &chain);
            if (rc == 0)
                break;
            if (rc < 0) {
                virtio_mmio_needs_reset(t, rc == -ELOOP    ? "descriptor loop"
                                           : rc == -EFAULT ? "buffer outside guest RAM"
                                           : rc == -E2BIG  ? "more segments than seg_max"
                                                           : "malformed ring or descriptor");
                goto out;
            }
            if (rate_limiter_enabled(&b->gate.rl)) {
                uint64_t bytes = blk_cost_bytes(r, &chain), now = rate_limiter_now_ns();
                if (!rate_limiter_consume(&b->gate.rl, 1, bytes, now)) {
                    /* Leave it in the avail ring (nothing was written to
                     * the guest for it): it is taken again on resume. */
                    virtq_unpop(vq);
                    b->stats.rate_limiter_throttled_events++;
                    if (!rl_gate_close(&b->gate, 1, bytes, now) && log_ratelimit(&b->log_rl, 5))
                        log_warn("virtio-blk %s: cannot arm the rate limiter's timer", b->path);
                    goto out;
                }
            }
            b->free_reqs = r->next_free;
            r->head = chain.head;
            r->generation = t->generation;
            r->falloc_mode = 0;
            r->file = b->file;
            r->file->refs++;
            rc = blk_start(b, r, &chain);
            if (rc < 0) {
                req_free(b, r);
                virtio_mmio_needs_reset(t, "request without a 16-byte header or a status byte");
                goto out;
            }
            if (rc != 0xff) {
                req_complete(b, t, r, (uint8_t)rc);
                pushed = true;
            }
        }
    } while (virtq_enable_notify(vq));
out:
    if (pushed)
        virtio_mmio_signal_used(t, 0);
}

static void on_io_done(struct ev_handler *h, int res, uint32_t flags)
{
    struct blk_req *r = container_of(h, struct blk_req, ev);
    struct virtio_blk *b = r->blk;
    struct virtio_mmio *t = b->t;
    uint8_t status = VIRTIO_BLK_S_OK;

    (void)flags;
    if (res == -EOPNOTSUPP && (r->falloc_mode & FALLOC_FL_ZERO_RANGE)) {
        /* No ZERO_RANGE here (tmpfs): a punched hole reads back as zeroes. */
        b->can_zero_range = false;
        if (submit_fallocate(b, r, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) == 0xff)
            return;
    }
    if (res < 0 || (r->expect && (uint64_t)res != r->expect)) {
        status = VIRTIO_BLK_S_IOERR;
        if (log_ratelimit(&b->log_rl, 5))
            log_warn("virtio-blk %s: request type %u failed: %s", b->path, r->type,
                     res < 0 ? strerror(-res) : "short transfer");
    } else if (r->type == VIRTIO_BLK_T_IN) {
        b->stats.bytes_read += (uint64_t)res;
    } else if (r->type == VIRTIO_BLK_T_OUT) {
        b->stats.bytes_written += (uint64_t)res;
    }
    pthread_mutex_lock(&t->lock);
    req_complete(b, t, r, status);
    if (b->stalled)
        blk_process(b, t);
    pthread_mutex_unlock(&t->lock);
    /* Interrupt once for every request this batch of completions finished. */
    if (evloop_defer(b->loop, &b->signal_ev))
        b->signal_ev.fn(&b->signal_ev, 0, 0);
}

static void on_signal(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_blk *b = container_of(h, struct virtio_blk, signal_ev);

    (void)res;
    (void)flags;
    pthread_mutex_lock(&b->t->lock);
    virtio_mmio_signal_used(b->t, 0);
    pthread_mutex_unlock(&b->t->lock);
}

static void on_gate_timer(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_blk *b = container_of(h, struct rl_gate, ev)->owner;

    (void)res; /* -ETIME when it expired, -ECANCELED when cancelled */
    (void)flags;
    pthread_mutex_lock(&b->t->lock);
    if (rl_gate_fired(&b->gate))
        blk_process(b, b->t);
    pthread_mutex_unlock(&b->t->lock);
}

void virtio_blk_set_rate_limiter(struct virtio_blk *b, const struct rate_limiter_config *c)
{
    if (b->t)
        pthread_mutex_lock(&b->t->lock);
    rl_gate_update(&b->gate, c);
    if (b->t)
        pthread_mutex_unlock(&b->t->lock);
}

static void blk_queue_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    struct virtio_blk *b = dev;

    if (q == 0)
        blk_process(b, t);
}

static void blk_activate(void *dev, struct virtio_mmio *t)
{
    ((struct virtio_blk *)dev)->t = t;
}

static void blk_reset(void *dev)
{
    struct virtio_blk *b = dev;

    /* In-flight requests finish on their own and are dropped by generation. */
    b->stalled = false;
    rl_gate_reset(&b->gate);
}

static void blk_attach(void *dev, struct virtio_mmio *t);

/* ---- snapshots ---- */

#define SNAP_TAG_BLK SNAP_TAG('V', 'B', 'L', 'K')

/* The negotiated state is the transport's; the device adds what must
 * match the reopened image and its rate limiter's buckets. */
static void blk_save(void *dev, struct snap_writer *w)
{
    struct virtio_blk *b = dev;
    size_t mark = snap_section_begin(w, SNAP_TAG_BLK);

    snap_put_u64(w, b->capacity);
    snap_put_u8(w, b->read_only);
    rate_limiter_save(&b->gate.rl, w);
    snap_section_end(w, mark);
}

static int blk_load(void *dev, struct virtio_mmio *t, struct snap_reader *r)
{
    struct virtio_blk *b = dev;
    struct snap_reader sec;
    struct rate_limiter rl;
    uint64_t capacity;
    uint8_t read_only;

    (void)t;
    if (snap_section_enter(r, SNAP_TAG_BLK, &sec, "virtio-blk section"))
        return -EBADMSG;
    capacity = snap_get_u64(&sec);
    read_only = snap_get_u8(&sec);
    if (!snap_error(&sec) && capacity != b->capacity) {
        /* The guest's file system knows the old size: a different image
         * would be read past its end or silently truncated. */
        snprintf(b->snap_why, sizeof(b->snap_why),
                 "drive %s has %llu sectors, the snapshot's had %llu", b->path,
                 (unsigned long long)b->capacity, (unsigned long long)capacity);
        snap_fail(&sec, b->snap_why);
    } else if (!snap_error(&sec) && read_only != b->read_only) {
        snap_fail(&sec, "drive's read-only mode differs from the snapshot's");
    }
    rate_limiter_load(&rl, &sec, rate_limiter_now_ns());
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    b->gate.rl = rl;
    return 0;
}

static bool blk_busy(void *dev)
{
    const struct virtio_blk *b = dev;
    unsigned idle = 0;

    for (const struct blk_req *r = b->free_reqs; r; r = r->next_free)
        idle++;
    return idle < VIRTQ_MAX_SIZE;
}

const struct virtio_dev_ops virtio_blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .features = blk_features,
    .config_size = sizeof(struct blk_config),
    .read_config = blk_read_config,
    .attach = blk_attach,
    .activate = blk_activate,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .save = blk_save,
    .load = blk_load,
    .busy = blk_busy,
};

/* Size through fstat and lseek only: swaps run under the VMM thread's
 * seccomp filter, which allows no ioctl (BLKGETSIZE64). */
static int image_size(int fd, uint64_t *bytes)
{
    struct stat st;
    off_t end;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        end = lseek(fd, 0, SEEK_END);
        if (end < 0)
            return -errno;
        *bytes = (uint64_t)end;
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    *bytes = (uint64_t)st.st_size;
    return 0;
}

int virtio_blk_open_image(const char *path, bool read_only, int *fd_out, uint64_t *bytes, char *err,
                          size_t errlen)
{
    int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "drive %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = image_size(fd, bytes);
    if (rc) {
        snprintf(err, errlen, "drive %s: %s", path,
                 rc == -EINVAL ? "not a regular file or block device" : strerror(-rc));
        close(fd);
        return rc;
    }
    if (*bytes % VIRTIO_BLK_SECTOR)
        log_warn("drive %s: size is not a multiple of 512; the last %llu bytes are unused", path,
                 (unsigned long long)(*bytes % VIRTIO_BLK_SECTOR));
    *fd_out = fd;
    return 0;
}

/* Punching a hole past the end is a no-op that still tells whether the file
 * system supports it. */
static bool probe_fallocate(int fd, uint64_t size, int mode)
{
    return fallocate(fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)size, 4096) == 0;
}

static void blk_attach(void *dev, struct virtio_mmio *t)
{
    ((struct virtio_blk *)dev)->t = t;
}

int virtio_blk_create(struct virtio_blk **out, const struct drive_config *drive,
                      struct evloop *loop, char *err, size_t errlen)
{
    struct virtio_blk *b = calloc(1, sizeof(*b));
    struct blk_file *f = calloc(1, sizeof(*f));
    uint64_t bytes = 0;
    int rc, fd;

    if (!b || !f) {
        free(b);
        free(f);
        snprintf(err, errlen, "drive %s: out of memory", drive->path);
        return -ENOMEM;
    }
    rc = virtio_blk_open_image(drive->path, drive->read_only, &fd, &bytes, err, errlen);
    if (rc) {
        free(b);
        free(f);
        return rc;
    }
    f->fd = fd;
    f->refs = 1;
    b->file = f;
    b->read_only = drive->read_only;
    b->capacity = bytes / VIRTIO_BLK_SECTOR;
    b->can_discard = !b->read_only && probe_fallocate(fd, bytes, FALLOC_FL_PUNCH_HOLE);
    /* ZERO_RANGE is tried on first use (probing it would allocate blocks). */
    b->can_zero_range = b->can_discard;
    b->loop = loop;
    b->signal_ev.fn = on_signal;
    rl_gate_init(&b->gate, loop, &drive->rate_limiter, on_gate_timer, b);
    b->path = strdup(drive->path);
    /* GET_ID: the drive id, NUL-padded, not necessarily NUL-terminated. */
    strncpy(b->id, drive->id ? drive->id : "", sizeof(b->id));
    b->reqs = calloc(VIRTQ_MAX_SIZE, sizeof(*b->reqs));
    if (!b->reqs || !b->path) {
        snprintf(err, errlen, "drive %s: out of memory", drive->path);
        virtio_blk_destroy(b);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++) {
        b->reqs[i].blk = b;
        b->reqs[i].ev.fn = on_io_done;
        req_free(b, &b->reqs[i]);
    }
    *out = b;
    return 0;
}

int virtio_blk_swap(struct virtio_blk *b, const char *path, char *err, size_t errlen)
{
    struct blk_file *f = calloc(1, sizeof(*f));
    char *p = strdup(path);
    uint64_t bytes = 0;
    int rc, fd;

    if (!f || !p) {
        free(f);
        free(p);
        snprintf(err, errlen, "drive %s: out of memory", path);
        return -ENOMEM;
    }
    /* Everything that can fail happens before the device changes. */
    rc = virtio_blk_open_image(path, b->read_only, &fd, &bytes, err, errlen);
    if (rc) {
        free(f);
        free(p);
        return rc;
    }
    f->fd = fd;
    f->refs = 1;
    if (b->t)
        pthread_mutex_lock(&b->t->lock);
    /* Requests in flight hold the old file; the last one closes it. */
    if (b->file->refs > 1) {
        b->file->next = b->retired;
        b->retired = b->file;
    }
    file_put(b, b->file);
    b->file = f;
    b->capacity = bytes / VIRTIO_BLK_SECTOR;
    /* The new file may sit on another file system: try ZERO_RANGE anew. */
    b->can_zero_range = b->can_discard;
    free(b->path);
    b->path = p;
    /* §4.2.2.1 / §2.5.1: ConfigGeneration changes and a configuration
     * change interrupt tells a running driver to read capacity again. */
    if (b->t) {
        virtio_mmio_config_changed(b->t);
        pthread_mutex_unlock(&b->t->lock);
    }
    log_info("drive %s: now %llu sectors", path, (unsigned long long)b->capacity);
    return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
    if (!b)
        return;
    if (b->file) {
        close(b->file->fd);
        free(b->file);
    }
    while (b->retired) {
        struct blk_file *f = b->retired;
        b->retired = f->next;
        close(f->fd);
        free(f);
    }
    free(b->reqs);
    free(b->path);
    free(b);
}

uint64_t virtio_blk_capacity(const struct virtio_blk *b)
{
    return b->capacity;
}

void virtio_blk_get_stats(const struct virtio_blk *b, struct virtio_blk_stats *out)
{
    *out = b->stats;
}
