/*
 * blkbench - virtio-blk throughput from inside the guest, the same image
 * under flint and under QEMU microvm (bench/blk.sh runs both).
 *
 * Command line: ops=N (random-read requests per queue depth, default 2000),
 * mib=N (bytes moved by each sequential test, default 64).
 * Prints one line per test: "blkbench: <test> ops=<n> ns=<t> iops=<x> mibps=<y>".
 */
#include "shim.h"

#define QD_MAX  32
#define RAND_BS 4096
#define SEQ_BS  (128 * 1024)

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static struct shim_blk_req reqs[QD_MAX];

/* Keep `qd` requests in flight until `ops` have completed. */
static int run(struct shim_blk *blk, const char *name, enum shim_blk_op op, unsigned qd,
               uint64_t ops, size_t bs, bool random, uint64_t capacity)
{
    uint64_t submitted = 0, done = 0, seq = 0, slots = capacity / (bs / SHIM_BLK_SECTOR);
    uint64_t t0 = shim_time_ns();

    for (unsigned i = 0; i < qd && submitted < ops; i++, submitted++) {
        reqs[i].op = op;
        reqs[i].len = bs;
        reqs[i].sector = (random ? next_rand() % slots : seq++ % slots) * (bs / SHIM_BLK_SECTOR);
        if (shim_blk_submit(blk, &reqs[i]))
            return -1;
    }
    while (done < ops) {
        struct shim_blk_req *r;
        if (shim_blk_wait(blk, &r) || r->result)
            return -1;
        done++;
        if (submitted < ops) {
            r->sector = (random ? next_rand() % slots : seq++ % slots) * (bs / SHIM_BLK_SECTOR);
            if (shim_blk_submit(blk, r))
                return -1;
            submitted++;
        }
    }
    uint64_t ns = shim_time_ns() - t0;
    if (ns == 0)
        ns = 1;
    shim_printf("blkbench: %s ops=%llu ns=%llu iops=%llu mibps=%llu\n", name,
                (unsigned long long)ops, (unsigned long long)ns,
                (unsigned long long)(ops * 1000000000ull / ns),
                (unsigned long long)(ops * bs * 1000000000ull / ns / (1024 * 1024)));
    return 0;
}

int main(void)
{
    struct shim_blk *blk = shim_blk_get(0);
    struct shim_blk_info info;
    uint64_t ops = (uint64_t)shim_arg_int("ops", 2000);
    uint64_t seq_ops = (uint64_t)shim_arg_int("mib", 64) * 1024 * 1024 / SEQ_BS;

    if (!blk) {
        shim_printf("blkbench: FAIL no block device\n");
        return 1;
    }
    shim_blk_info(blk, &info);
    if (info.max_transfer < SEQ_BS) {
        shim_printf("blkbench: FAIL max transfer %u < %u\n", info.max_transfer, SEQ_BS);
        return 1;
    }
    for (unsigned i = 0; i < QD_MAX; i++) {
        reqs[i].buf = shim_alloc(SEQ_BS, 4096);
        if (!reqs[i].buf) {
            shim_printf("blkbench: FAIL out of memory\n");
            return 1;
        }
    }
    if (run(blk, "randread-4k-qd1", SHIM_BLK_READ, 1, ops, RAND_BS, true, info.capacity) ||
        run(blk, "randread-4k-qd32", SHIM_BLK_READ, 32, ops * 4, RAND_BS, true, info.capacity) ||
        run(blk, "seqread-128k-qd8", SHIM_BLK_READ, 8, seq_ops, SEQ_BS, false, info.capacity) ||
        run(blk, "seqwrite-128k-qd8", SHIM_BLK_WRITE, 8, seq_ops, SEQ_BS, false, info.capacity)) {
        shim_printf("blkbench: FAIL request error\n");
        return 1;
    }
    shim_printf("blkbench: done\n");
    return 0;
}
