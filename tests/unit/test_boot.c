/* Unit tests: memory map, PVH start info, initrd placement, GDT, page tables. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "loader.h"
#include "util.h"

#include <errno.h>
#include <flint-abi.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char err[LOADER_ERR_LEN];

Test(memmap, small_vm)
{
    struct guest_mem m;
    struct memmap_entry e[MEMMAP_MAX];
    cr_assert_eq(guest_mem_create(&m, 128 * MIB), 0);
    unsigned n = memmap_build(&m, e, MEMMAP_MAX);
    cr_assert_eq(n, 3);
    cr_assert_eq(e[0].addr, 0);
    cr_assert_eq(e[0].size, FLINT_EBDA_START);
    cr_assert_eq(e[0].type, XEN_HVM_MEMMAP_TYPE_RAM);
    cr_assert_eq(e[1].type, XEN_HVM_MEMMAP_TYPE_RESERVED);
    cr_assert_eq(e[1].addr + e[1].size, 0xe0000);
    cr_assert_eq(e[2].addr, FLINT_HIMEM_START);
    cr_assert_eq(e[2].addr + e[2].size, 128 * MIB);
    guest_mem_destroy(&m);
}

Test(memmap, large_vm_has_ram_above_4g_and_nothing_in_gap)
{
    struct guest_mem m;
    struct memmap_entry e[MEMMAP_MAX];
    cr_assert_eq(guest_mem_create(&m, 5 * GIB), 0);
    unsigned n = memmap_build(&m, e, MEMMAP_MAX);
    cr_assert_eq(n, 4);
    cr_assert_eq(e[2].addr + e[2].size, FLINT_MMIO_GAP_START);
    cr_assert_eq(e[3].addr, FLINT_MMIO_GAP_END);
    cr_assert_eq(e[3].size, 5 * GIB - FLINT_MMIO_GAP_START);
    uint64_t ram = 0;
    for (unsigned i = 0; i < n; i++) {
        if (e[i].type == XEN_HVM_MEMMAP_TYPE_RAM)
            ram += e[i].size;
        cr_assert_not(ranges_overlap(e[i].addr, e[i].size, FLINT_MMIO_GAP_START,
                                     FLINT_MMIO_GAP_END - FLINT_MMIO_GAP_START));
    }
    /* Everything but the legacy hole [EBDA, 1 MiB) is reported as RAM. */
    cr_assert_eq(ram, 5 * GIB - (FLINT_HIMEM_START - FLINT_EBDA_START));
    cr_assert_eq(memmap_build(&m, e, 2), 2, "respects the caller's bound");
    guest_mem_destroy(&m);
}

Test(pvh, start_info_points_at_cmdline_memmap_and_module)
{
    struct guest_mem m;
    struct initrd_placement rd = {.addr = 0x700000, .size = 1234};
    struct boot_args boot = {.cmdline = "console=ttyS0 hello", .initrd = &rd};
    struct hvm_start_info info;
    struct hvm_modlist_entry mod;
    struct hvm_memmap_table_entry map[4];

    cr_assert_eq(guest_mem_create(&m, 16 * MIB), 0);
    cr_assert_eq(pvh_write_boot_info(&m, &boot, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(guest_mem_read(&m, FLINT_PVH_INFO_ADDR, &info, sizeof(info)), 0);
    cr_assert_eq(info.magic, XEN_HVM_START_MAGIC_VALUE);
    cr_assert_eq(info.version, 1);
    cr_assert_eq(info.cmdline_paddr, FLINT_CMDLINE_ADDR);
    cr_assert_str_eq((char *)guest_mem_slice(&m, FLINT_CMDLINE_ADDR, 20), "console=ttyS0 hello");
    cr_assert_eq(info.nr_modules, 1);
    cr_assert_eq(guest_mem_read(&m, info.modlist_paddr, &mod, sizeof(mod)), 0);
    cr_assert_eq(mod.paddr, 0x700000);
    cr_assert_eq(mod.size, 1234);
    cr_assert_eq(info.memmap_entries, 3);
    cr_assert_eq(guest_mem_read(&m, info.memmap_paddr, map, 3 * sizeof(map[0])), 0);
    cr_assert_eq(map[2].addr + map[2].size, 16 * MIB);
    /* The structures must not overlap each other. */
    cr_assert_not(
        ranges_overlap(FLINT_PVH_INFO_ADDR, sizeof(info), FLINT_PVH_MODLIST_ADDR, sizeof(mod)));
    cr_assert_not(ranges_overlap(FLINT_PVH_MODLIST_ADDR, sizeof(mod), FLINT_PVH_MEMMAP_ADDR,
                                 3 * sizeof(map[0])));
    guest_mem_destroy(&m);
}

Test(pvh, no_initrd_means_no_modules)
{
    struct guest_mem m;
    struct boot_args boot = {.cmdline = ""};
    struct hvm_start_info info;
    cr_assert_eq(guest_mem_create(&m, 4 * MIB), 0);
    cr_assert_eq(pvh_write_boot_info(&m, &boot, err, sizeof(err)), 0);
    guest_mem_read(&m, FLINT_PVH_INFO_ADDR, &info, sizeof(info));
    cr_assert_eq(info.nr_modules, 0);
    cr_assert_eq(info.modlist_paddr, 0);
    guest_mem_destroy(&m);
}

Test(pvh, overlong_cmdline_is_refused_before_writing)
{
    struct guest_mem m;
    char line[FLINT_CMDLINE_MAX + 1];
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    struct boot_args boot = {.cmdline = line};
    cr_assert_eq(guest_mem_create(&m, 4 * MIB), 0);
    cr_assert_eq(pvh_write_boot_info(&m, &boot, err, sizeof(err)), -E2BIG);
    cr_assert(strstr(err, "command line"));
    cr_assert_eq(m.map[FLINT_CMDLINE_ADDR], 0, "nothing written");
    /* Exactly the limit fits. */
    line[FLINT_CMDLINE_MAX - 1] = '\0';
    cr_assert_eq(pvh_write_boot_info(&m, &boot, err, sizeof(err)), 0);
    guest_mem_destroy(&m);
}

static int fd_with(size_t len)
{
    int fd = memfd_create("initrd", 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)len), 0);
    if (len)
        cr_assert_eq(pwrite(fd, "RD", 2, 0), 2);
    return fd;
}

Test(initrd, placed_page_aligned_at_top_of_low_ram)
{
    struct guest_mem m;
    struct kernel_image ki = {.load_start = 0x100000, .load_end = 0x200000};
    struct initrd_placement rd;
    int fd = fd_with(10000);
    cr_assert_eq(guest_mem_create(&m, 16 * MIB), 0);
    cr_assert_eq(initrd_load(&m, fd, &ki, &rd, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rd.addr % 4096, 0);
    cr_assert_eq(rd.size, 10000);
    cr_assert_leq(rd.addr + rd.size, 16 * MIB);
    cr_assert_gt(rd.addr + 4096 + rd.size, 16 * MIB, "as high as possible");
    cr_assert_eq(memcmp(guest_mem_slice(&m, rd.addr, 2), "RD", 2), 0);
    close(fd);
    guest_mem_destroy(&m);
}

Test(initrd, too_big_overlapping_or_empty_is_refused)
{
    struct guest_mem m;
    struct kernel_image ki = {.load_start = 0x100000, .load_end = 0x300000};
    struct initrd_placement rd;
    cr_assert_eq(guest_mem_create(&m, 4 * MIB), 0);
    int fd = fd_with(8 * MIB);
    cr_assert_eq(initrd_load(&m, fd, &ki, &rd, err, sizeof(err)), -ENOMEM);
    cr_assert(strstr(err, "larger than"), "%s", err);
    close(fd);
    fd = fd_with(2 * MIB); /* fits in RAM but would overlap the kernel */
    cr_assert_eq(initrd_load(&m, fd, &ki, &rd, err, sizeof(err)), -ENOMEM);
    cr_assert(strstr(err, "does not fit between the kernel"), "%s", err);
    close(fd);
    fd = fd_with(0);
    cr_assert_eq(initrd_load(&m, fd, &ki, &rd, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "empty"));
    close(fd);
    guest_mem_destroy(&m);
}

Test(gdt, boot_gdt_matches_segment_constants)
{
    struct guest_mem m;
    uint64_t gdt[4];
    cr_assert_eq(guest_mem_create(&m, 4 * MIB), 0);
    cr_assert_eq(boot_write_gdt(&m, BOOT_PVH), 0);
    guest_mem_read(&m, FLINT_GDT_ADDR, gdt, sizeof(gdt));
    cr_assert_eq(gdt[0], 0);
    cr_assert_eq(gdt[BOOT_SEL_CODE / 8], BOOT_GDT_CODE32);
    cr_assert_eq(gdt[BOOT_SEL_DATA / 8], BOOT_GDT_DATA32);
    cr_assert_eq(gdt[BOOT_SEL_TSS / 8], BOOT_GDT_TSS);
    /* Present, ring 0, code execute/read and data read/write. */
    cr_assert_eq((BOOT_GDT_CODE32 >> 40) & 0xff, 0x9b);
    cr_assert_eq((BOOT_GDT_DATA32 >> 40) & 0xff, 0x93);
    guest_mem_destroy(&m);
}

Test(page_tables, identity_map_first_gib_with_2m_pages)
{
    struct guest_mem m;
    cr_assert_eq(guest_mem_create(&m, 4 * MIB), 0);
    cr_assert_eq(boot_write_page_tables(&m), 0);
    uint64_t *pml4 = guest_mem_slice(&m, FLINT_PML4_ADDR, 4096);
    uint64_t *pdpt = guest_mem_slice(&m, FLINT_PDPTE_ADDR, 4096);
    uint64_t *pd = guest_mem_slice(&m, FLINT_PDE_ADDR, 4096);
    cr_assert_eq(pml4[0], FLINT_PDPTE_ADDR | 3);
    cr_assert_eq(pml4[1], 0);
    cr_assert_eq(pdpt[0], FLINT_PDE_ADDR | 3);
    cr_assert_eq(pdpt[1], 0);
    /* Walk a few addresses through the tables. */
    uint64_t addrs[] = {0, 0x1234567, 0x3fffffff, 0x200000};
    for (size_t i = 0; i < ARRAY_SIZE(addrs); i++) {
        uint64_t a = addrs[i];
        uint64_t pde = pd[(a >> 21) & 511];
        cr_assert(pde & 0x80, "2 MiB page");
        cr_assert(pde & 1, "present");
        cr_assert_eq((pde & ~0x1fffffull) | (a & 0x1fffff), a, "identity for 0x%llx",
                     (unsigned long long)a);
    }
    /* The tables do not overlap the PVH structures or the stack. */
    cr_assert_geq(FLINT_PML4_ADDR, FLINT_BOOT_STACK_ADDR);
    guest_mem_destroy(&m);
}

Test(page_tables, refuse_ram_too_small)
{
    struct guest_mem m = {.fd = -1};
    /* No regions at all: every write must fail cleanly. */
    cr_assert_eq(boot_write_page_tables(&m), -EFAULT);
    cr_assert_eq(boot_write_gdt(&m, BOOT_PVH), -EFAULT);
}
