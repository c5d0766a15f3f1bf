/* clonemem: the guest of the clone and prefetch benchmarks (bench/clones.sh).
 * It fills `mib` MiB (default 32) with a pattern and says "clonemem:
 * filled", then waits `ms` ms (default 3000) while a snapshot is taken.
 * A restored copy then writes the first `write` KiB (default 1024) of that
 * memory, reads all of it, says "clonemem: touched N pages, wrote M in
 * T us" (its first answer after the restore; T is the guest's own time
 * for the writes and reads, which page faults dominate), and then sleeps
 * for good with interrupts on (`stay`, default 1, so its memory can be
 * measured) or exits 0 (stay=0) after `after` ms more (default 0; time to
 * read the VM's counters). Exit 1 if a page read back is not what was written. */
#include "shim.h"

#define PAGE 4096u

static uint64_t word(uint64_t page, uint64_t pass)
{
    return page * 0x9e3779b97f4a7c15ull + pass;
}

int main(void)
{
    uint64_t pages = (uint64_t)shim_arg_int("mib", 32) * (1u << 20) / PAGE;
    uint64_t wrote = (uint64_t)shim_arg_int("write", 1024) * 1024 / PAGE;
    long long ms = shim_arg_int("ms", 3000), stay = shim_arg_int("stay", 1);
    long long after = shim_arg_int("after", 0);
    volatile uint64_t *buf = shim_alloc(pages * PAGE, PAGE);
    uint64_t sum = 0;

    if (!buf || wrote > pages) {
        shim_printf("clonemem: cannot allocate\n");
        return 2;
    }
    for (uint64_t p = 0; p < pages; p++)
        buf[p * (PAGE / 8)] = word(p, 0);
    shim_printf("clonemem: filled %llu pages\n", (unsigned long long)pages);
    shim_delay_us((uint64_t)ms * 1000);
    uint64_t t0 = shim_time_ns();
    for (uint64_t p = 0; p < wrote; p++)
        buf[p * (PAGE / 8)] = word(p, 1);
    for (uint64_t p = 0; p < pages; p++) {
        uint64_t v = buf[p * (PAGE / 8)];
        if (v != word(p, p < wrote)) {
            shim_printf("clonemem: page %llu is wrong\n", (unsigned long long)p);
            return 1;
        }
        sum += v;
    }
    shim_printf("clonemem: touched %llu pages, wrote %llu in %llu us (sum %llx)\n",
                (unsigned long long)pages, (unsigned long long)wrote,
                (unsigned long long)((shim_time_ns() - t0) / 1000), (unsigned long long)sum);
    if (!stay) {
        shim_delay_us((uint64_t)after * 1000);
        return 0;
    }
    for (;;)
        __asm__ volatile("sti; hlt");
}
