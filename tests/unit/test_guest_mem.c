/* Unit tests: guest RAM layout and the address translator. */
#include <criterion/criterion.h>

#include "guest_mem.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <flint-abi.h>

Test(guest_mem, small_vm_has_one_low_region)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_create(&m, 16 * MIB), 0);
    cr_assert_eq(m.nregions, 1);
    cr_assert_eq(guest_mem_low_end(&m), 16 * MIB);
    cr_assert_not_null(guest_mem_slice(&m, 0, 16 * MIB));
    cr_assert_not_null(guest_mem_slice(&m, 16 * MIB - 1, 1));
    cr_assert_null(guest_mem_slice(&m, 16 * MIB - 1, 2), "range crossing the end of RAM");
    cr_assert_null(guest_mem_slice(&m, 16 * MIB, 1));
    guest_mem_destroy(&m);
}

Test(guest_mem, large_vm_splits_around_mmio_gap)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_create(&m, 4 * GIB), 0);
    cr_assert_eq(m.nregions, 2);
    cr_assert_eq(guest_mem_low_end(&m), FLINT_MMIO_GAP_START);
    cr_assert_eq(m.regions[1].gpa, FLINT_MMIO_GAP_END);
    cr_assert_eq(m.regions[1].size, 1 * GIB);
    cr_assert_null(guest_mem_slice(&m, FLINT_MMIO_GAP_START, 1), "gap is not RAM");
    cr_assert_null(guest_mem_slice(&m, FLINT_MMIO_GAP_START - 4, 8), "low RAM into the gap");
    cr_assert_null(guest_mem_slice(&m, FLINT_MMIO_GAP_END - 4, 8), "gap into high RAM");
    uint8_t *hi = guest_mem_slice(&m, FLINT_MMIO_GAP_END, 4096);
    cr_assert_not_null(hi);
    /* High RAM follows low RAM in the backing file. */
    cr_assert_eq(hi, m.map + FLINT_MMIO_GAP_START);
    cr_assert_null(guest_mem_slice(&m, FLINT_MMIO_GAP_END + GIB, 1));
    guest_mem_destroy(&m);
}

Test(guest_mem, overflowing_ranges_are_rejected)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_create(&m, 8 * MIB), 0);
    cr_assert_null(guest_mem_slice(&m, 4096, UINT64_MAX));
    cr_assert_null(guest_mem_slice(&m, UINT64_MAX, 2));
    cr_assert_null(guest_mem_slice(&m, UINT64_MAX - 10, 20));
    cr_assert_null(guest_mem_slice(&m, 1, 8 * MIB));
    guest_mem_destroy(&m);
}

Test(guest_mem, read_write_round_trip_and_faults)
{
    struct guest_mem m;
    uint32_t v = 0xdeadbeef, back = 0;
    cr_assert_eq(guest_mem_create(&m, 4 * MIB), 0);
    cr_assert_eq(guest_mem_write(&m, 0x1000, &v, sizeof(v)), 0);
    cr_assert_eq(guest_mem_read(&m, 0x1000, &back, sizeof(back)), 0);
    cr_assert_eq(back, v);
    cr_assert_eq(guest_mem_write(&m, 4 * MIB - 2, &v, sizeof(v)), -EFAULT);
    cr_assert_eq(guest_mem_read(&m, 4 * MIB, &back, 1), -EFAULT);
    guest_mem_destroy(&m);
}

Test(guest_mem, bad_sizes_are_refused)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_create(&m, 1 * MIB), -EINVAL, "below the minimum");
    cr_assert_eq(guest_mem_create(&m, 4 * MIB + 1), -EINVAL, "not page aligned");
    cr_assert_eq(guest_mem_create(&m, GUEST_MEM_MAX_BYTES + 4096), -EINVAL);
    guest_mem_destroy(&m); /* safe on a failed create */
}

Test(guest_mem, huge_pages_need_whole_2m_pages)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_create_pages(&m, 5 * MIB, GUEST_MEM_PAGES_2M), -EINVAL);
    cr_assert_eq(guest_mem_create_pages(&m, 4 * MIB + 4096, GUEST_MEM_PAGES_2M), -EINVAL);
    cr_assert_eq(guest_mem_create_pages(&m, 4 * MIB, (enum guest_mem_pages)7), -EINVAL);
    guest_mem_destroy(&m);
}

/* Free 2 MiB pages in the host's pool, or -1 if unknown. */
static long free_huge_pages(void)
{
    FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
    long n = -1;

    if (f) {
        if (fscanf(f, "%ld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

Test(guest_mem, huge_pages_beyond_the_pool_are_refused_up_front)
{
    struct guest_mem m;
    long free = free_huge_pages();

    if (free < 0)
        cr_skip_test("no 2 MiB hugetlb pool on this host");
    /* One page more than the pool has: mmap's reservation fails now,
     * instead of a SIGBUS when the guest touches the last page. */
    cr_assert_eq(guest_mem_create_pages(&m, (uint64_t)(free + 1) * 2 * MIB, GUEST_MEM_PAGES_2M),
                 -ENOMEM);
    cr_assert_eq(m.fd, -1, "nothing left open");
    cr_assert_null(m.map);
    guest_mem_destroy(&m);
}

/* The VmFlags line of the smaps entry for the mapping that starts at `addr`
 * (into flags), or false when there is none. */
static bool smaps_flags(const void *addr, char *flags, size_t len)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false, found = false;

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = start == (unsigned long)addr;
        else if (in && !strncmp(line, "VmFlags:", 8)) {
            snprintf(flags, len, "%s", line + 8);
            found = true;
        }
    }
    fclose(f);
    return found;
}

static bool thp_available(void)
{
    return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
}

Test(guest_mem, transparent_is_anonymous_aligned_and_asks_for_huge_pages)
{
    struct guest_mem m;
    char flags[512];

    cr_assert_eq(guest_mem_create_pages(&m, 64 * MIB, GUEST_MEM_PAGES_THP), 0);
    cr_assert_eq(m.fd, -1, "anonymous memory has no file");
    cr_assert_eq(m.pages, GUEST_MEM_PAGES_THP);
    cr_assert_eq(m.size, 64 * MIB);
    cr_assert_eq((uintptr_t)m.map % (2 * MIB), 0, "not 2 MiB aligned: %p", (void *)m.map);
    cr_assert_eq(m.nregions, 1);
    cr_assert_eq(m.regions[0].host, m.map);
    cr_assert(smaps_flags(m.map, flags, sizeof(flags)), "no smaps entry at %p", (void *)m.map);
    if (thp_available())
        cr_assert(strstr(flags, " hg"), "no MADV_HUGEPAGE (hg) in VmFlags:%s", flags);
    /* Private: nothing else sees it (no "sh"). */
    cr_assert_null(strstr(flags, " sh"), "VmFlags:%s", flags);
    /* Zero-filled and writable, to the last byte. */
    cr_assert_eq(m.map[64 * MIB - 1], 0);
    m.map[64 * MIB - 1] = 0x5a;
    cr_assert_eq(*(uint8_t *)guest_mem_slice(&m, 64 * MIB - 1, 1), 0x5a);
    guest_mem_destroy(&m);
    cr_assert_null(m.map);
}

Test(guest_mem, memfd_backings_do_not_ask_for_huge_pages)
{
    struct guest_mem m;
    char flags[512];

    cr_assert_eq(guest_mem_create_pages(&m, 16 * MIB, GUEST_MEM_PAGES_4K), 0);
    cr_assert_geq(m.fd, 0);
    cr_assert(smaps_flags(m.map, flags, sizeof(flags)));
    cr_assert_null(strstr(flags, " hg"), "VmFlags:%s", flags);
    cr_assert(strstr(flags, " sh"), "a memfd mapping is shared: VmFlags:%s", flags);
    guest_mem_destroy(&m);
}

Test(guest_mem, transparent_takes_sizes_that_are_not_whole_huge_pages)
{
    struct guest_mem m;

    /* 2 MiB + 4 KiB: the tail gets 4 KiB pages. */
    cr_assert_eq(guest_mem_create_pages(&m, 2 * MIB + 4096, GUEST_MEM_PAGES_THP), 0);
    cr_assert_not_null(guest_mem_slice(&m, 2 * MIB, 4096));
    cr_assert_null(guest_mem_slice(&m, 2 * MIB + 4096, 1));
    guest_mem_destroy(&m);
    cr_assert_eq(guest_mem_create_pages(&m, 2 * MIB + 1, GUEST_MEM_PAGES_THP), -EINVAL);
    cr_assert_eq(guest_mem_create_pages(&m, 1 * MIB, GUEST_MEM_PAGES_THP), -EINVAL);
    cr_assert_eq(guest_mem_create_pages(&m, 16 * MIB, (enum guest_mem_pages)7), -EINVAL);
}

Test(guest_mem, transparent_large_vm_splits_around_mmio_gap)
{
    struct guest_mem m;

    cr_assert_eq(guest_mem_create_pages(&m, 4 * GIB, GUEST_MEM_PAGES_THP), 0);
    cr_assert_eq(m.nregions, 2);
    cr_assert_eq(m.regions[1].gpa, FLINT_MMIO_GAP_END);
    cr_assert_eq(m.regions[1].size, 1 * GIB);
    /* High RAM's host address keeps the guest's 2 MiB alignment too. */
    cr_assert_eq((uintptr_t)m.regions[1].host % (2 * MIB), 0);
    cr_assert_eq(m.regions[1].host, m.map + FLINT_MMIO_GAP_START);
    guest_mem_destroy(&m);
}
