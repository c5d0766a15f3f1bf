/* snapmem: a guest whose memory a snapshot must carry exactly. It fills
 * `mib` MiB (default 4) with a pattern, then for `rounds` rounds (default
 * 20) waits `ms` ms (default 300), rewrites a quarter of the pages with
 * the round's pattern and checks every page against what it must hold.
 * A restored copy goes on where the snapshot was taken: it prints no
 * "filled" line, and its rounds still check out only if every page
 * (including those written between a Full and a Diff snapshot) came back.
 * Exit 0 after the last round, 1 at the first page that is wrong. */
#include "shim.h"

#define PAGE 4096u

static uint64_t word(uint64_t page, uint64_t round, uint64_t i)
{
    return (page * 0x9e3779b97f4a7c15ull) ^ (round << 48) ^ (i * 0x100000001b3ull);
}

static void fill(uint64_t *buf, uint64_t page, uint64_t round)
{
    for (uint64_t i = 0; i < PAGE / 8; i += 8)
        buf[page * (PAGE / 8) + i] = word(page, round, i);
}

/* The last round (<= now) that rewrote `page`; 0 is the first fill. */
static uint64_t last_round(uint64_t page, uint64_t now)
{
    uint64_t back = (now + 4 - page % 4) % 4;
    return now >= back && now - back > 0 ? now - back : 0;
}

int main(void)
{
    uint64_t pages = (uint64_t)shim_arg_int("mib", 4) * (1u << 20) / PAGE;
    long long rounds = shim_arg_int("rounds", 20), ms = shim_arg_int("ms", 300);
    uint64_t *buf = shim_alloc(pages * PAGE, PAGE);
    volatile uint64_t counter = 0;

    if (!buf) {
        shim_printf("snapmem: cannot allocate\n");
        return 2;
    }
    for (uint64_t p = 0; p < pages; p++)
        fill(buf, p, 0);
    shim_printf("snapmem: filled %llu pages\n", (unsigned long long)pages);
    for (long long r = 1; r <= rounds; r++) {
        shim_delay_us((uint64_t)ms * 1000);
        for (uint64_t p = (uint64_t)r % 4; p < pages; p += 4)
            fill(buf, p, (uint64_t)r);
        for (uint64_t p = 0; p < pages; p++) {
            uint64_t want = last_round(p, (uint64_t)r);
            for (uint64_t i = 0; i < PAGE / 8; i += 8)
                if (buf[p * (PAGE / 8) + i] != word(p, want, i)) {
                    shim_printf("snapmem: round %lld: page %llu is wrong\n", r,
                                (unsigned long long)p);
                    return 1;
                }
        }
        counter++;
        shim_printf("snapmem: round %lld ok, counter %llu\n", r, (unsigned long long)counter);
    }
    shim_printf("snapmem: done\n");
    return 0;
}
