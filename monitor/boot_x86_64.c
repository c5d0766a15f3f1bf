/*
 * boot_x86_64.c - x86_64 boot information: memory map, GDT and the PVH
 * start-of-day structures (Xen arch-x86/hvm/start_info.h, version 1).
 */
#include "loader.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

unsigned memmap_build(const struct guest_mem *mem, struct memmap_entry *out, unsigned max)
{
    unsigned n = 0;
    gpa_t low_end = guest_mem_low_end(mem);

#define ADD(a, s, t)                                                                               \
    do {                                                                                           \
        if (n < max)                                                                               \
            out[n++] = (struct memmap_entry){.addr = (a), .size = (s), .type = (t)};               \
    } while (0)

    /* Conventional memory, then the EBDA/BIOS area that real firmware keeps. */
    ADD(0, FLINT_EBDA_START, XEN_HVM_MEMMAP_TYPE_RAM);
    ADD(FLINT_EBDA_START, 0xe0000 - FLINT_EBDA_START, XEN_HVM_MEMMAP_TYPE_RESERVED);
    if (low_end > FLINT_HIMEM_START)
        ADD(FLINT_HIMEM_START, low_end - FLINT_HIMEM_START, XEN_HVM_MEMMAP_TYPE_RAM);
    for (unsigned i = 1; i < mem->nregions; i++)
        ADD(mem->regions[i].gpa, mem->regions[i].size, XEN_HVM_MEMMAP_TYPE_RAM);
#undef ADD
    return n;
}

int pvh_write_boot_info(const struct guest_mem *mem, const struct pvh_boot *boot, char *err,
                        size_t errlen)
{
    struct memmap_entry map[MEMMAP_MAX];
    struct hvm_memmap_table_entry xmap[MEMMAP_MAX];
    struct hvm_start_info info = {
        .magic = XEN_HVM_START_MAGIC_VALUE,
        .version = 1,
        .cmdline_paddr = FLINT_CMDLINE_ADDR,
        .memmap_paddr = FLINT_PVH_MEMMAP_ADDR,
    };
    size_t cmdlen = strlen(boot->cmdline) + 1;
    unsigned n;

    if (cmdlen > FLINT_CMDLINE_MAX) {
        snprintf(err, errlen, "kernel command line is %zu bytes; the limit is %d", cmdlen - 1,
                 FLINT_CMDLINE_MAX - 1);
        return -E2BIG;
    }
    n = memmap_build(mem, map, MEMMAP_MAX);
    for (unsigned i = 0; i < n; i++)
        xmap[i] = (struct hvm_memmap_table_entry){
            .addr = map[i].addr, .size = map[i].size, .type = map[i].type};
    info.memmap_entries = n;

    if (boot->initrd) {
        struct hvm_modlist_entry mod = {.paddr = boot->initrd->addr, .size = boot->initrd->size};
        if (guest_mem_write(mem, FLINT_PVH_MODLIST_ADDR, &mod, sizeof(mod)))
            goto fault;
        info.nr_modules = 1;
        info.modlist_paddr = FLINT_PVH_MODLIST_ADDR;
    }
    if (guest_mem_write(mem, FLINT_CMDLINE_ADDR, boot->cmdline, cmdlen) ||
        guest_mem_write(mem, FLINT_PVH_MEMMAP_ADDR, xmap, n * sizeof(xmap[0])) ||
        guest_mem_write(mem, FLINT_PVH_INFO_ADDR, &info, sizeof(info)))
        goto fault;
    return 0;
fault:
    snprintf(err, errlen, "guest RAM too small for the boot information");
    return -EFAULT;
}

int boot_write_gdt(const struct guest_mem *mem)
{
    const uint64_t gdt[] = {0, BOOT_GDT_CODE32, BOOT_GDT_DATA32, BOOT_GDT_TSS};
    const uint64_t idt = 0;

    if (guest_mem_write(mem, FLINT_GDT_ADDR, gdt, sizeof(gdt)) ||
        guest_mem_write(mem, FLINT_IDT_ADDR, &idt, sizeof(idt)))
        return -EFAULT;
    return 0;
}

int boot_write_page_tables(const struct guest_mem *mem)
{
    uint64_t *pml4 = guest_mem_slice(mem, FLINT_PML4_ADDR, 4096);
    uint64_t *pdpt = guest_mem_slice(mem, FLINT_PDPTE_ADDR, 4096);
    uint64_t *pd = guest_mem_slice(mem, FLINT_PDE_ADDR, 4096);
    const uint64_t present_rw = 0x3, page_size = 0x80;

    if (!pml4 || !pdpt || !pd)
        return -EFAULT;
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = FLINT_PDPTE_ADDR | present_rw;
    pdpt[0] = FLINT_PDE_ADDR | present_rw;
    for (uint64_t i = 0; i < 512; i++)
        pd[i] = (i << 21) | present_rw | page_size;
    return 0;
}
