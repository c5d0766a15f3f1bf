/*
 * blkswap: watch block device 0 change under the guest (PATCH /drives on
 * the host swaps its image). Prints the capacity and the first sector's
 * text, then sleeps (interrupts, no spinning) until the device announces a
 * configuration change, and prints the new capacity and first sector; it
 * also reads the new last sector to show the new capacity is in force.
 *
 * Then it keeps watching for hold_ms more (sleeping too), printing each
 * further change, so the host can look at the VM before it ends.
 *
 * Command line: wait_s=N (default 600) bounds the first wait, hold_ms=N
 * (default 0) the watching after it. Lines:
 *   blkswap: capacity <sectors> sector0 '<first 16 bytes>'
 *   blkswap: waiting for a configuration change
 *   blkswap: changed: capacity <sectors> sector0 '<first 16 bytes>' last sector ok
 *   blkswap: done
 * Exit status 0, or 1 with a line saying what failed.
 */
#include "shim.h"

static uint8_t sector[SHIM_BLK_SECTOR] __attribute__((aligned(4096)));

/* Print the new state after a change: 0 or -1. */
static int changed(struct shim_blk *blk);

static int show(struct shim_blk *blk, const char *what)
{
    char text[17];
    int ret = shim_blk_read(blk, 0, sector, sizeof(sector));

    if (ret) {
        shim_printf("blkswap: reading sector 0 failed (%d)\n", ret);
        return ret;
    }
    for (int i = 0; i < 16; i++)
        text[i] = sector[i] >= 0x20 && sector[i] < 0x7f ? (char)sector[i] : '.';
    text[16] = '\0';
    shim_printf("blkswap: %scapacity %llu sector0 '%s'", what,
                (unsigned long long)shim_blk_capacity(blk), text);
    return 0;
}

int main(void)
{
    struct shim_blk *blk = shim_blk_count() ? shim_blk_get(0) : NULL;
    uint64_t wait_us = (uint64_t)shim_arg_int("wait_s", 600) * 1000000;
    uint64_t hold_us = (uint64_t)shim_arg_int("hold_ms", 0) * 1000;
    uint64_t seen;
    int ret;

    if (!blk) {
        shim_printf("blkswap: no block device\n");
        return 1;
    }
    seen = shim_blk_config_changes(blk);
    if (show(blk, ""))
        return 1;
    shim_printf("\nblkswap: waiting for a configuration change\n");
    ret = shim_blk_wait_config_change(blk, seen, wait_us);
    if (ret) {
        shim_printf("blkswap: no configuration change (%d)\n", ret);
        return 1;
    }
    if (changed(blk))
        return 1;
    for (;;) {
        seen = shim_blk_config_changes(blk);
        ret = shim_blk_wait_config_change(blk, seen, hold_us);
        if (ret == -SHIM_ETIMEDOUT)
            break;
        if (ret || changed(blk))
            return 1;
    }
    shim_printf("blkswap: done\n");
    return 0;
}

static int changed(struct shim_blk *blk)
{
    uint64_t cap;
    int ret;

    if (show(blk, "changed: "))
        return -1;
    cap = shim_blk_capacity(blk);
    ret = cap ? shim_blk_read(blk, cap - 1, sector, sizeof(sector)) : -1;
    shim_printf(" last sector %s\n", ret ? "failed" : "ok");
    return ret ? -1 : 0;
}
