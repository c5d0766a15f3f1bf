/*
 * blk.c - virtio-blk driver (virtio 1.2 §5.2) and the shim_blk_* API.
 *
 * One request queue per device. A request is a header (device-readable),
 * the data segments, and a status byte (device-writable); with
 * VIRTIO_F_INDIRECT_DESC it takes one ring descriptor, otherwise 2 +
 * segments. Requests are the caller's structs; their addresses are the
 * virtqueue cookies, so completions can come back in any order.
 */
#include "virtio.h"

#define BLK_MAX_DEVICES  16
#define BLK_QUEUE_MAX    256
#define BLK_SEGS_MAX     16         /* data descriptors per request */
#define BLK_TRANSFER_MAX (1u << 20) /* bytes per request, our choice */
#define BLK_INDIRECT_MAX (BLK_SEGS_MAX + 2)

/* §5.2.6 request types, status values, write-zeroes flag. */
#define BLK_STATUS_UNSET 0xff /* no device writes this */

struct shim_blk {
    struct virtio_dev dev;
    struct virtq vq;
    bool ready;
    uint64_t capacity;
    uint64_t config_seen; /* dev.config_changes when the config was last read */
    uint32_t blk_size, size_max, seg_max;
    uint32_t max_discard_sectors, max_wz_sectors;
    uint32_t seg_len;      /* bytes per data descriptor */
    uint32_t max_transfer; /* bytes per request */
    uint64_t timeout_ns;
    unsigned pending; /* submitted, not yet handed back */
    struct shim_blk_req *done_head, *done_tail;
    struct shim_blk_req *sync_req; /* the request blk_sync waits for */
    bool sync_done;
};

static struct shim_blk blks[BLK_MAX_DEVICES];
static unsigned nblk;
static bool probed;

static bool has(const struct shim_blk *blk, unsigned bit)
{
    return blk->dev.features & VIRTIO_FEATURE(bit);
}

static void blk_read_config(struct shim_blk *blk)
{
    struct virtio_dev *dev = &blk->dev;
    unsigned tries = 0;
    /* Taken before the reads: a change announced while they run makes
     * the next refresh read again. */
    blk->config_seen = dev->config_changes;
    uint32_t gen = virtio_config_begin(dev);

    do {
        blk->capacity = virtio_config_read64(dev, VIRTIO_BLK_CFG_CAPACITY);
        blk->size_max = has(blk, VIRTIO_BLK_F_SIZE_MAX)
                            ? virtio_config_read32(dev, VIRTIO_BLK_CFG_SIZE_MAX)
                            : 0;
        blk->seg_max =
            has(blk, VIRTIO_BLK_F_SEG_MAX) ? virtio_config_read32(dev, VIRTIO_BLK_CFG_SEG_MAX) : 0;
        blk->blk_size = has(blk, VIRTIO_BLK_F_BLK_SIZE)
                            ? virtio_config_read32(dev, VIRTIO_BLK_CFG_BLK_SIZE)
                            : SHIM_BLK_SECTOR;
        blk->max_discard_sectors = has(blk, VIRTIO_BLK_F_DISCARD)
                                       ? virtio_config_read32(dev, VIRTIO_BLK_CFG_MAX_DISCARD_SECT)
                                       : 0;
        blk->max_wz_sectors = has(blk, VIRTIO_BLK_F_WRITE_ZEROES)
                                  ? virtio_config_read32(dev, VIRTIO_BLK_CFG_MAX_WZ_SECT)
                                  : 0;
    } while (virtio_config_retry(dev, &gen, &tries));
}

/* Request size limits from size_max / seg_max (§5.2.3) and our queue:
 * segments of seg_len bytes, at most `segs` of them. */
static int blk_limits(struct shim_blk *blk)
{
    uint32_t segs = BLK_SEGS_MAX;

    blk->seg_len =
        blk->size_max && blk->size_max < BLK_TRANSFER_MAX ? blk->size_max : BLK_TRANSFER_MAX;
    if (blk->seg_max && blk->seg_max < segs)
        segs = blk->seg_max;
    if (!blk->vq.indirect_max && blk->vq.size - 2u < segs)
        segs = blk->vq.size > 2 ? blk->vq.size - 2u : 0;
    uint64_t max = (uint64_t)blk->seg_len * segs;
    if (max > BLK_TRANSFER_MAX)
        max = BLK_TRANSFER_MAX;
    blk->max_transfer = (uint32_t)(max & ~(uint64_t)(SHIM_BLK_SECTOR - 1));
    return blk->max_transfer ? 0 : -SHIM_ENODEV;
}

static uint64_t blk_wanted_features(void)
{
    static const unsigned bits[] = {
        VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX,   VIRTIO_BLK_F_SIZE_MAX,
        VIRTIO_BLK_F_SEG_MAX,   VIRTIO_BLK_F_RO,      VIRTIO_BLK_F_BLK_SIZE,
        VIRTIO_BLK_F_FLUSH,     VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
    };
    uint64_t features = 0;

    for (unsigned i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
        features |= VIRTIO_FEATURE(bits[i]);
    return features;
}

/* §3.1.1 for a block device; virtio_negotiate sets FAILED on its own
 * errors, the later steps here. */
static int blk_start(struct shim_blk *blk)
{
    const char *what = "feature negotiation";

    blk->ready = false;
    int ret = virtio_negotiate(&blk->dev, blk_wanted_features());
    if (ret == 0) {
        blk_read_config(blk);
        what = "queue setup";
        ret = virtq_setup(&blk->vq, &blk->dev, 0, BLK_QUEUE_MAX, BLK_INDIRECT_MAX);
        if (ret == 0) {
            what = "request size limits";
            ret = blk_limits(blk);
        }
        if (ret == 0) {
            what = "DRIVER_OK";
            ret = virtio_driver_ok(&blk->dev);
        }
        if (ret)
            virtio_fail(&blk->dev);
    }
    if (ret) {
        shim_printf("shim: virtio-blk at %#llx: %s failed (%d)\n",
                    (unsigned long long)blk->dev.base, what, ret);
        return ret;
    }
    blk->ready = true;
    return 0;
}

static void blk_probe(void)
{
    if (probed)
        return;
    probed = true;
    for (unsigned i = 0; i < shim_virtio_mmio_count() && nblk < BLK_MAX_DEVICES; i++) {
        struct virtio_dev dev;
        if (virtio_mmio_probe(i, &dev) || dev.device_id != VIRTIO_ID_BLOCK)
            continue;
        struct shim_blk *blk = &blks[nblk++];
        blk->dev = dev;
        blk->timeout_ns = SHIM_BLK_TIMEOUT_DEFAULT * 1000;
        blk_start(blk);
    }
}

unsigned shim_blk_count(void)
{
    blk_probe();
    return nblk;
}

struct shim_blk *shim_blk_get(unsigned i)
{
    blk_probe();
    return i < nblk ? &blks[i] : NULL;
}

void shim_blk_info(const struct shim_blk *blk, struct shim_blk_info *info)
{
    *info = (struct shim_blk_info){
        .capacity = blk->capacity,
        .blk_size = blk->blk_size,
        .size_max = blk->size_max,
        .seg_max = blk->seg_max,
        .max_transfer = blk->max_transfer,
        .max_discard_sectors = blk->max_discard_sectors,
        .max_write_zeroes_sectors = blk->max_wz_sectors,
        .queue_size = blk->vq.size,
        .read_only = has(blk, VIRTIO_BLK_F_RO),
        .flush = has(blk, VIRTIO_BLK_F_FLUSH),
        .discard = has(blk, VIRTIO_BLK_F_DISCARD),
        .write_zeroes = has(blk, VIRTIO_BLK_F_WRITE_ZEROES),
        .indirect = blk->vq.indirect_max != 0,
        .event_idx = blk->vq.event_idx,
        .ready = blk->ready,
        .mmio_base = blk->dev.base,
        .irq = blk->dev.gsi,
        .offered = blk->dev.offered,
        .features = blk->dev.features,
        .irqs = blk->dev.irqs,
        .config_changes = blk->dev.config_changes,
    };
}

void shim_blk_set_timeout(struct shim_blk *blk, uint64_t us)
{
    blk->timeout_ns = (us ? us : SHIM_BLK_TIMEOUT_DEFAULT) * 1000;
}

/* After a configuration change interrupt: the capacity again (§5.2.4;
 * the limits the driver sized its requests with are kept). */
static void blk_refresh(struct shim_blk *blk)
{
    if (!blk->ready || blk->config_seen == blk->dev.config_changes)
        return;
    uint32_t size_max = blk->size_max, seg_max = blk->seg_max;
    blk_read_config(blk);
    blk->size_max = size_max;
    blk->seg_max = seg_max;
}

uint64_t shim_blk_capacity(struct shim_blk *blk)
{
    blk_refresh(blk);
    return blk->capacity;
}

uint64_t shim_blk_config_changes(const struct shim_blk *blk)
{
    return blk->dev.config_changes;
}

struct change_ctx {
    struct shim_blk *blk;
    uint64_t seen;
};

static bool config_changed(void *arg)
{
    struct change_ctx *c = arg;
    return c->blk->dev.config_changes != c->seen;
}

int shim_blk_wait_config_change(struct shim_blk *blk, uint64_t seen, uint64_t timeout_us)
{
    struct change_ctx c = {blk, seen};

    if (!blk->ready)
        return -SHIM_ENODEV;
    int ret = virtio_wait(&blk->dev, config_changed, &c, timeout_us * 1000);
    if (ret == 0)
        blk_refresh(blk);
    return ret;
}

unsigned shim_blk_pending(const struct shim_blk *blk)
{
    return blk->pending;
}

static void done_push(struct shim_blk *blk, struct shim_blk_req *req)
{
    req->priv.next = NULL;
    if (blk->done_tail)
        blk->done_tail->priv.next = req;
    else
        blk->done_head = req;
    blk->done_tail = req;
}

static struct shim_blk_req *done_pop(struct shim_blk *blk)
{
    struct shim_blk_req *req = blk->done_head;

    if (req) {
        blk->done_head = req->priv.next;
        if (!blk->done_head)
            blk->done_tail = NULL;
    }
    return req;
}

struct stop_ctx {
    struct shim_blk *blk;
    int err;
};

static void stop_one(void *cookie, void *arg)
{
    struct stop_ctx *c = arg;
    struct shim_blk_req *req = cookie;

    req->result = c->err;
    if (req == c->blk->sync_req)
        c->blk->sync_done = true;
    else
        done_push(c->blk, req);
}

/* Stop a device that failed: reset it first so it no longer touches any
 * buffer (§2.4.2), then fail everything in flight with err. */
static void blk_stop(struct shim_blk *blk, int err)
{
    struct stop_ctx c = {blk, err};

    virtio_reset(&blk->dev);
    blk->ready = false;
    virtq_drain(&blk->vq, stop_one, &c);
}

/* §5.2.6: the status byte the device wrote. */
static int blk_status(uint8_t status)
{
    switch (status) {
    case VIRTIO_BLK_S_OK:
        return 0;
    case VIRTIO_BLK_S_IOERR:
        return -SHIM_EIO;
    case VIRTIO_BLK_S_UNSUPP:
        return -SHIM_ENOTSUP;
    default:
        return -SHIM_EPROTO;
    }
}

/* The next request the device has used, with its result set. */
static struct shim_blk_req *blk_reap(struct shim_blk *blk)
{
    struct shim_blk_req *req = virtq_get_used(&blk->vq, NULL);

    if (req)
        req->result = blk_status(__atomic_load_n(&req->priv.status, __ATOMIC_RELAXED));
    return req;
}

static bool blk_arm(void *arg)
{
    return virtq_arm(&((struct shim_blk *)arg)->vq);
}

/* Sleep until the used ring moves. On a timeout, DEVICE_NEEDS_RESET or a
 * broken ring the device is stopped and the error returned. */
static int blk_sleep(struct shim_blk *blk)
{
    int ret = virtio_wait(&blk->dev, blk_arm, blk, blk->timeout_ns);

    if (ret == 0 && blk->vq.error)
        ret = blk->vq.error;
    if (ret)
        blk_stop(blk, ret);
    return ret;
}

static bool in_ram(const void *p, size_t len)
{
    return len == 0 || mem_is_ram((uintptr_t)p, len);
}

/* Header, data and status buffers of a read or write. */
static int blk_prepare_rw(struct shim_blk *blk, struct shim_blk_req *req, struct virtq_buf *bufs,
                          unsigned *n_out, unsigned *n_in)
{
    uint64_t sectors = req->len / SHIM_BLK_SECTOR;
    unsigned n = 1;

    if (req->len == 0 || req->len % SHIM_BLK_SECTOR || req->len > blk->max_transfer ||
        req->sector > blk->capacity || sectors > blk->capacity - req->sector ||
        !in_ram(req->buf, req->len))
        return -SHIM_EINVAL;
    req->priv.hdr.type = req->op == SHIM_BLK_READ ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
    req->priv.hdr.sector = req->sector;
    for (size_t off = 0; off < req->len; off += blk->seg_len, n++) {
        size_t left = req->len - off;
        bufs[n].addr = (const char *)req->buf + off;
        bufs[n].len = (uint32_t)(left < blk->seg_len ? left : blk->seg_len);
    }
    bufs[n++] = (struct virtq_buf){&req->priv.status, 1};
    *n_out = req->op == SHIM_BLK_READ ? 1 : n - 1;
    *n_in = n - *n_out;
    return 0;
}

/* One range segment for discard / write zeroes (§5.2.6). */
static int blk_prepare_range(struct shim_blk *blk, struct shim_blk_req *req, struct virtq_buf *bufs)
{
    bool discard = req->op == SHIM_BLK_DISCARD;
    uint32_t max = discard ? blk->max_discard_sectors : blk->max_wz_sectors;
    uint64_t sectors = req->len / SHIM_BLK_SECTOR;

    if (!has(blk, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
        return -SHIM_ENOTSUP;
    if (max == 0)
        max = UINT32_MAX; /* no limit stated */
    if (req->len == 0 || req->len % SHIM_BLK_SECTOR || sectors > max ||
        req->sector > blk->capacity || sectors > blk->capacity - req->sector)
        return -SHIM_EINVAL;
    req->priv.hdr.type = discard ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
    req->priv.range.sector = req->sector;
    req->priv.range.num_sectors = (uint32_t)sectors;
    req->priv.range.flags = req->op == SHIM_BLK_WRITE_ZEROES_UNMAP ? VIRTIO_BLK_WZ_UNMAP : 0;
    bufs[1] = (struct virtq_buf){&req->priv.range, sizeof(req->priv.range)};
    return 0;
}

static int blk_prepare(struct shim_blk *blk, struct shim_blk_req *req, struct virtq_buf *bufs,
                       unsigned *n_out, unsigned *n_in)
{
    int ret = 0;

    if (!in_ram(req, sizeof(*req)))
        return -SHIM_EINVAL;
    memset(&req->priv.hdr, 0, sizeof(req->priv.hdr));
    req->priv.status = BLK_STATUS_UNSET;
    bufs[0] = (struct virtq_buf){&req->priv.hdr, sizeof(req->priv.hdr)};
    *n_out = 1;
    *n_in = 1;
    switch (req->op) {
    case SHIM_BLK_READ:
    case SHIM_BLK_WRITE:
        return blk_prepare_rw(blk, req, bufs, n_out, n_in);
    case SHIM_BLK_FLUSH:
        if (!has(blk, VIRTIO_BLK_F_FLUSH))
            return -SHIM_ENOTSUP;
        req->priv.hdr.type = VIRTIO_BLK_T_FLUSH;
        break;
    case SHIM_BLK_GET_ID:
        if (req->len != SHIM_BLK_ID_LEN || !in_ram(req->buf, req->len))
            return -SHIM_EINVAL;
        req->priv.hdr.type = VIRTIO_BLK_T_GET_ID;
        bufs[1] = (struct virtq_buf){req->buf, SHIM_BLK_ID_LEN};
        *n_in = 2;
        break;
    case SHIM_BLK_DISCARD:
    case SHIM_BLK_WRITE_ZEROES:
    case SHIM_BLK_WRITE_ZEROES_UNMAP:
        ret = blk_prepare_range(blk, req, bufs);
        *n_out = 2;
        break;
    default:
        return -SHIM_EINVAL;
    }
    bufs[*n_out + *n_in - 1] = (struct virtq_buf){&req->priv.status, 1};
    return ret;
}

int shim_blk_submit(struct shim_blk *blk, struct shim_blk_req *req)
{
    struct virtq_buf bufs[BLK_SEGS_MAX + 2];
    unsigned n_out, n_in;

    if (!blk->ready)
        return -SHIM_ENODEV;
    if (blk->dev.needs_reset) {
        blk_stop(blk, -SHIM_ENODEV);
        return -SHIM_ENODEV;
    }
    blk_refresh(blk); /* requests are checked against the current capacity */
    int ret = blk_prepare(blk, req, bufs, &n_out, &n_in);
    if (ret)
        return ret;
    ret = virtq_add(&blk->vq, bufs, n_out, n_in, req);
    if (ret == -SHIM_EPROTO)
        blk_stop(blk, ret);
    if (ret)
        return ret;
    blk->pending++;
    virtq_kick(&blk->vq);
    return 0;
}

struct shim_blk_req *shim_blk_poll(struct shim_blk *blk)
{
    struct shim_blk_req *req = done_pop(blk);

    if (!req && blk->ready && (blk->vq.error || blk->dev.needs_reset)) {
        blk_stop(blk, blk->vq.error ? blk->vq.error : -SHIM_ENODEV);
        req = done_pop(blk);
    }
    if (!req)
        req = blk_reap(blk);
    if (req)
        blk->pending--;
    return req;
}

int shim_blk_wait(struct shim_blk *blk, struct shim_blk_req **done)
{
    for (;;) {
        struct shim_blk_req *req = shim_blk_poll(blk);
        if (req) {
            *done = req;
            return 0;
        }
        if (blk->pending == 0)
            return -SHIM_EINVAL;
        blk_sleep(blk); /* on failure every request is now on the done list */
    }
}

/* Submit req and sleep until it, specifically, completes; completions of
 * the caller's asynchronous requests are kept for shim_blk_poll. */
static int blk_sync(struct shim_blk *blk, struct shim_blk_req *req)
{
    int ret;

    while ((ret = shim_blk_submit(blk, req)) == -SHIM_EAGAIN) {
        struct shim_blk_req *other = blk_reap(blk);
        if (other)
            done_push(blk, other);
        else if ((ret = blk_sleep(blk)))
            return ret;
    }
    if (ret)
        return ret;
    blk->sync_req = req;
    blk->sync_done = false;
    for (;;) {
        struct shim_blk_req *r = blk_reap(blk);
        if (r == req || (!r && blk->sync_done))
            break;
        if (r)
            done_push(blk, r);
        else
            blk_sleep(blk);
    }
    blk->sync_req = NULL;
    blk->pending--;
    return req->result;
}

static int blk_transfer(struct shim_blk *blk, enum shim_blk_op op, uint64_t sector, void *buf,
                        size_t len)
{
    if (len % SHIM_BLK_SECTOR)
        return -SHIM_EINVAL;
    while (len) {
        size_t chunk = len < blk->max_transfer ? len : blk->max_transfer;
        struct shim_blk_req req = {.op = op, .sector = sector, .buf = buf, .len = chunk};
        int ret = blk_sync(blk, &req);
        if (ret)
            return ret;
        sector += chunk / SHIM_BLK_SECTOR;
        buf = (char *)buf + chunk;
        len -= chunk;
    }
    return 0;
}

int shim_blk_read(struct shim_blk *blk, uint64_t sector, void *buf, size_t len)
{
    return blk_transfer(blk, SHIM_BLK_READ, sector, buf, len);
}

int shim_blk_write(struct shim_blk *blk, uint64_t sector, const void *buf, size_t len)
{
    return blk_transfer(blk, SHIM_BLK_WRITE, sector, (void *)(uintptr_t)buf, len);
}

int shim_blk_flush(struct shim_blk *blk)
{
    struct shim_blk_req req = {.op = SHIM_BLK_FLUSH};

    if (blk->ready && !has(blk, VIRTIO_BLK_F_FLUSH))
        return 0;
    return blk_sync(blk, &req);
}

int shim_blk_get_id(struct shim_blk *blk, char out[SHIM_BLK_ID_LEN + 1])
{
    struct shim_blk_req req = {.op = SHIM_BLK_GET_ID, .buf = out, .len = SHIM_BLK_ID_LEN};

    memset(out, 0, SHIM_BLK_ID_LEN + 1);
    int ret = blk_sync(blk, &req);
    if (ret)
        out[0] = '\0';
    return ret;
}

static int blk_ranges(struct shim_blk *blk, enum shim_blk_op op, uint64_t sector, uint64_t sectors)
{
    uint32_t max = op == SHIM_BLK_DISCARD ? blk->max_discard_sectors : blk->max_wz_sectors;

    if (max == 0)
        max = UINT32_MAX;
    do {
        uint64_t n = sectors < max ? sectors : max;
        struct shim_blk_req req = {.op = op, .sector = sector, .len = n * SHIM_BLK_SECTOR};
        int ret = blk_sync(blk, &req);
        if (ret)
            return ret;
        sector += n;
        sectors -= n;
    } while (sectors);
    return 0;
}

int shim_blk_discard(struct shim_blk *blk, uint64_t sector, uint64_t sectors)
{
    return blk_ranges(blk, SHIM_BLK_DISCARD, sector, sectors);
}

int shim_blk_write_zeroes(struct shim_blk *blk, uint64_t sector, uint64_t sectors, bool unmap)
{
    return blk_ranges(blk, unmap ? SHIM_BLK_WRITE_ZEROES_UNMAP : SHIM_BLK_WRITE_ZEROES, sector,
                      sectors);
}

int shim_blk_reset(struct shim_blk *blk)
{
    blk_stop(blk, -SHIM_ENODEV);
    return blk_start(blk);
}
