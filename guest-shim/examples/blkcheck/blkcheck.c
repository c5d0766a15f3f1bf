/*
 * blkcheck - write, flush, read back and verify a pattern on virtio-blk
 * devices through the guest-shim driver.
 *
 * Command line:
 *   blk=N        check only block device N (default: every device)
 *   sectors=N    sectors from 0 to check (default 256, capped at capacity)
 *   seed=N       pattern seed (default 1)
 *   mode=write   write the pattern, flush, read back, verify (default)
 *   mode=read    only verify a pattern already on the disk
 *   mode=ro      expect a write to fail with -SHIM_EIO ("write refused")
 *   depth=N      asynchronous reads in flight, 1-256 (default 64)
 *
 * Pattern of 512-byte sector s: bytes 0-7 hold s and bytes 8-15 the seed
 * (little endian); byte i >= 16 is (s * 7 + seed * 13 + i) & 0xff. A host
 * test can pre-fill or check an image with the same formula.
 *
 * The read-back uses the asynchronous interface with up to `depth`
 * requests of READ_CHUNK sectors in flight (fewer if the queue fills). Output ends with
 * "blkcheck: OK <n> sectors" (exit 0) or a "blkcheck: FAIL ..." line
 * (exit 1).
 */
#include "shim.h"

#define SECTOR       SHIM_BLK_SECTOR
#define READ_CHUNK   8 /* sectors per asynchronous read */
#define READ_DEPTH   256
#define ZERO_SECTORS 8

static uint64_t seed;
static unsigned depth;

static void pattern_fill(uint8_t *p, uint64_t s)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(s >> (8 * i));
        p[8 + i] = (uint8_t)(seed >> (8 * i));
    }
    for (unsigned i = 16; i < SECTOR; i++)
        p[i] = (uint8_t)(s * 7 + seed * 13 + i);
}

/* Index of the first byte of sector s in p that differs, or -1. */
static int pattern_check(const uint8_t *p, uint64_t s)
{
    uint8_t want[SECTOR];

    pattern_fill(want, s);
    for (int i = 0; i < SECTOR; i++) {
        if (p[i] != want[i])
            return i;
    }
    return -1;
}

static int fail(unsigned idx, const char *what, int code)
{
    shim_printf("blkcheck: FAIL blk%u: %s (%d)\n", idx, what, code);
    return 1;
}

static int verify_range(unsigned idx, const uint8_t *buf, uint64_t first, uint64_t n)
{
    for (uint64_t s = 0; s < n; s++) {
        int at = pattern_check(buf + s * SECTOR, first + s);
        if (at >= 0) {
            shim_printf("blkcheck: FAIL blk%u: sector %llu byte %d is %#x\n", idx,
                        (unsigned long long)(first + s), at, buf[s * SECTOR + (unsigned)at]);
            return 1;
        }
    }
    return 0;
}

/* Read sectors [0, n) asynchronously, `depth` requests at a time, and
 * verify each as it completes (in whatever order). */
static int read_verify_async(unsigned idx, struct shim_blk *blk, uint8_t *buf, uint64_t n)
{
    static struct shim_blk_req reqs[READ_DEPTH];
    struct shim_blk_req *free_list[READ_DEPTH];
    unsigned nfree = depth, in_flight = 0, max_in_flight = 0, out_of_order = 0;
    uint64_t next = 0, done = 0, halts = shim_halt_count(), requests = 0, last_done = 0;

    for (unsigned i = 0; i < depth; i++)
        free_list[i] = &reqs[i];
    while (done < n) {
        while (next < n && nfree) {
            struct shim_blk_req *r = free_list[nfree - 1];
            uint64_t count = n - next < READ_CHUNK ? n - next : READ_CHUNK;
            *r = (struct shim_blk_req){.op = SHIM_BLK_READ,
                                       .sector = next,
                                       .buf = buf + next * SECTOR,
                                       .len = count * SECTOR};
            int ret = shim_blk_submit(blk, r);
            if (ret == -SHIM_EAGAIN)
                break;
            if (ret)
                return fail(idx, "submit", ret);
            nfree--;
            next += count;
            requests++;
            if (++in_flight > max_in_flight)
                max_in_flight = in_flight;
        }
        struct shim_blk_req *r;
        int ret = shim_blk_wait(blk, &r);
        if (ret)
            return fail(idx, "wait", ret);
        if (r->result)
            return fail(idx, "asynchronous read", r->result);
        if (r->sector < last_done)
            out_of_order++;
        last_done = r->sector;
        if (verify_range(idx, r->buf, r->sector, r->len / SECTOR))
            return 1;
        done += r->len / SECTOR;
        in_flight--;
        free_list[nfree++] = r;
    }
    shim_printf("blkcheck: blk%u: read back %llu requests, up to %u in flight, %u out of order, "
                "%llu halts\n",
                idx, (unsigned long long)requests, max_in_flight, out_of_order,
                (unsigned long long)(shim_halt_count() - halts));
    return 0;
}

/* Write-zeroes and discard on the first sectors when offered, then put the
 * pattern back. */
static int zero_and_discard(unsigned idx, struct shim_blk *blk, const struct shim_blk_info *info,
                            uint8_t *buf, uint64_t n)
{
    uint64_t z = n < ZERO_SECTORS ? n : ZERO_SECTORS;
    int ret;

    if (info->write_zeroes) {
        if ((ret = shim_blk_write_zeroes(blk, 0, z, false)))
            return fail(idx, "write zeroes", ret);
        memset(buf, 0xa5, z * SECTOR);
        if ((ret = shim_blk_read(blk, 0, buf, z * SECTOR)))
            return fail(idx, "read after write zeroes", ret);
        for (uint64_t i = 0; i < z * SECTOR; i++) {
            if (buf[i])
                return fail(idx, "write zeroes left data", (int)i);
        }
        shim_printf("blkcheck: blk%u: write zeroes ok\n", idx);
    }
    if (info->discard) {
        if ((ret = shim_blk_discard(blk, 0, z)))
            return fail(idx, "discard", ret);
        shim_printf("blkcheck: blk%u: discard ok\n", idx);
    }
    if (info->write_zeroes || info->discard) {
        for (uint64_t s = 0; s < z; s++)
            pattern_fill(buf + s * SECTOR, s);
        if ((ret = shim_blk_write(blk, 0, buf, z * SECTOR)))
            return fail(idx, "rewrite after zeroes", ret);
    }
    return 0;
}

static int check_ro(unsigned idx, struct shim_blk *blk, uint8_t *buf)
{
    pattern_fill(buf, 0);
    int ret = shim_blk_write(blk, 0, buf, SECTOR);
    if (ret != -SHIM_EIO)
        return fail(idx, "write on a read-only device did not fail with -SHIM_EIO", ret);
    shim_printf("blkcheck: write refused\n");
    if ((ret = shim_blk_read(blk, 0, buf, SECTOR)))
        return fail(idx, "read on a read-only device", ret);
    return 0;
}

static int check_write(unsigned idx, struct shim_blk *blk, const struct shim_blk_info *info,
                       uint8_t *buf, uint64_t n)
{
    int ret;

    for (uint64_t s = 0; s < n; s++)
        pattern_fill(buf + s * SECTOR, s);
    if ((ret = shim_blk_write(blk, 0, buf, n * SECTOR)))
        return fail(idx, "write", ret);
    if (zero_and_discard(idx, blk, info, buf, n))
        return 1;
    if ((ret = shim_blk_flush(blk)))
        return fail(idx, "flush", ret);
    memset(buf, 0, n * SECTOR);
    return 0;
}

static int check_device(unsigned idx, const char *mode, uint64_t sectors, uint64_t *checked)
{
    struct shim_blk *blk = shim_blk_get(idx);
    struct shim_blk_info info;
    char id[SHIM_BLK_ID_LEN + 1];

    if (!blk)
        return fail(idx, "no such device", -SHIM_ENODEV);
    shim_blk_info(blk, &info);
    if (!info.ready)
        return fail(idx, "device not ready", -SHIM_ENODEV);
    int ret = shim_blk_get_id(blk, id);
    shim_printf("blkcheck: blk%u: capacity %llu sectors, id '%s'%s, ro %d\n", idx,
                (unsigned long long)info.capacity, id, ret ? " (GET_ID failed)" : "",
                info.read_only);
    shim_printf("blkcheck: blk%u: mmio %#llx irq %u, features %#llx of %#llx, queue %u, "
                "blk_size %u, seg_max %u, size_max %u, max_transfer %u, flush %d, discard %d, "
                "write_zeroes %d, indirect %d, event_idx %d\n",
                idx, (unsigned long long)info.mmio_base, info.irq,
                (unsigned long long)info.features, (unsigned long long)info.offered,
                info.queue_size, info.blk_size, info.seg_max, info.size_max, info.max_transfer,
                info.flush, info.discard, info.write_zeroes, info.indirect, info.event_idx);

    uint64_t n = sectors < info.capacity ? sectors : info.capacity;
    uint8_t *buf = shim_alloc(n ? n * SECTOR : SECTOR, 4096);
    if (!buf)
        return fail(idx, "out of memory for the buffer", -SHIM_ENOMEM);
    if (strcmp(mode, "ro") == 0)
        return check_ro(idx, blk, buf);
    if (n == 0)
        return fail(idx, "no sectors to check", -SHIM_EINVAL);
    if (strcmp(mode, "read") != 0 && check_write(idx, blk, &info, buf, n))
        return 1;
    if (read_verify_async(idx, blk, buf, n))
        return 1;
    *checked += n;
    shim_blk_info(blk, &info);
    shim_printf("blkcheck: blk%u: %llu interrupts\n", idx, (unsigned long long)info.irqs);
    return 0;
}

int main(void)
{
    const char *mode = shim_arg("mode") ? shim_arg("mode") : "write";
    long long only = shim_arg_int("blk", -1), sectors = shim_arg_int("sectors", 256);
    unsigned count = shim_blk_count();

    seed = (uint64_t)shim_arg_int("seed", 1);
    long long d = shim_arg_int("depth", 64);
    depth = d < 1 ? 1 : d > READ_DEPTH ? READ_DEPTH : (unsigned)d;
    if (strcmp(mode, "write") && strcmp(mode, "read") && strcmp(mode, "ro")) {
        shim_printf("blkcheck: FAIL unknown mode=%s\n", mode);
        return 1;
    }
    if (sectors < 0 || count == 0 || only >= (long long)count) {
        shim_printf("blkcheck: FAIL %u block devices, blk=%lld sectors=%lld\n", count, only,
                    sectors);
        return 1;
    }
    shim_printf("blkcheck: %u block device(s), mode %s, seed %llu\n", count, mode,
                (unsigned long long)seed);
    unsigned first = only >= 0 ? (unsigned)only : 0, last = only >= 0 ? (unsigned)only : count - 1;
    uint64_t checked = 0;
    for (unsigned i = first; i <= last; i++) {
        if (check_device(i, mode, (uint64_t)sectors, &checked))
            return 1;
    }
    shim_printf("blkcheck: %llu halts in all\n", (unsigned long long)shim_halt_count());
    if (strcmp(mode, "ro") != 0)
        shim_printf("blkcheck: OK %llu sectors\n", (unsigned long long)checked);
    return 0;
}
