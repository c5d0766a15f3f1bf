/*
 * boot_x86_64.c - x86_64 boot information: memory map, GDT, page tables,
 * the PVH start-of-day structures (Xen arch-x86/hvm/start_info.h, version
 * 1) and the Linux zero page (Linux Documentation/arch/x86/zero-page.rst).
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
    ADD(FLINT_EBDA_START, FLINT_BIOS_END - FLINT_EBDA_START, XEN_HVM_MEMMAP_TYPE_RESERVED);
    if (low_end > FLINT_HIMEM_START)
        ADD(FLINT_HIMEM_START, low_end - FLINT_HIMEM_START, XEN_HVM_MEMMAP_TYPE_RAM);
    for (unsigned i = 1; i < mem->nregions; i++)
        ADD(mem->regions[i].gpa, mem->regions[i].size, XEN_HVM_MEMMAP_TYPE_RAM);
#undef ADD
    return n;
}

static int write_cmdline(const struct guest_mem *mem, const char *cmdline, size_t max, char *err,
                         size_t errlen)
{
    size_t len = strlen(cmdline);

    if (len > max) {
        snprintf(err, errlen, "kernel command line is %zu bytes; the %s is %zu", len,
                 max == FLINT_CMDLINE_MAX - 1 ? "limit" : "kernel's limit (cmdline_size)", max);
        return -E2BIG;
    }
    if (guest_mem_write(mem, FLINT_CMDLINE_ADDR, cmdline, len + 1)) {
        snprintf(err, errlen, "guest RAM too small for the boot information");
        return -EFAULT;
    }
    return 0;
}

int pvh_write_boot_info(const struct guest_mem *mem, const struct boot_args *boot, char *err,
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
    unsigned n;
    int rc;

    rc = write_cmdline(mem, boot->cmdline, FLINT_CMDLINE_MAX - 1, err, errlen);
    if (rc)
        return rc;
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
    if (guest_mem_write(mem, FLINT_PVH_MEMMAP_ADDR, xmap, n * sizeof(xmap[0])) ||
        guest_mem_write(mem, FLINT_PVH_INFO_ADDR, &info, sizeof(info)))
        goto fault;
    return 0;
fault:
    snprintf(err, errlen, "guest RAM too small for the boot information");
    return -EFAULT;
}

/* A minimal setup header for a kernel loaded without one (an ELF vmlinux
 * entered at startup_64): what its early code reads from the zero page. */
static void synthesize_setup_header(struct linux_setup_header *h)
{
    h->boot_flag = LINUX_BOOT_FLAG;
    h->header = LINUX_HDRS_MAGIC;
    h->version = LINUX_MIN_PROTOCOL;
    h->loadflags = LINUX_LOADED_HIGH;
    h->kernel_alignment = 0x1000000; /* CONFIG_PHYSICAL_ALIGN's default */
    h->cmdline_size = FLINT_CMDLINE_MAX - 1;
}

int linux_write_boot_params(const struct guest_mem *mem, const struct kernel_image *img,
                            const struct boot_args *args, char *err, size_t errlen)
{
    struct memmap_entry map[MEMMAP_MAX];
    struct linux_boot_params *bp;
    unsigned n;
    int rc;

    bp = guest_mem_slice(mem, FLINT_ZERO_PAGE_ADDR, sizeof(*bp));
    if (!bp) {
        snprintf(err, errlen, "guest RAM too small for the boot information");
        return -EFAULT;
    }
    rc = write_cmdline(mem, args->cmdline, img->cmdline_max, err, errlen);
    if (rc)
        return rc;
    memset(bp, 0, sizeof(*bp));
    if (img->has_setup_header)
        bp->hdr = img->hdr;
    else
        synthesize_setup_header(&bp->hdr);
    bp->hdr.type_of_loader = LINUX_LOADER_UNDEFINED;
    bp->hdr.cmd_line_ptr = (uint32_t)FLINT_CMDLINE_ADDR;
    if (args->initrd) {
        bp->hdr.ramdisk_image = (uint32_t)args->initrd->addr;
        bp->hdr.ramdisk_size = (uint32_t)args->initrd->size;
        bp->ext_ramdisk_image = (uint32_t)(args->initrd->addr >> 32);
        bp->ext_ramdisk_size = (uint32_t)(args->initrd->size >> 32);
    }
    n = memmap_build(mem, map, MEMMAP_MAX);
    for (unsigned i = 0; i < n; i++)
        bp->e820_table[i] = (struct linux_e820_entry){
            .addr = map[i].addr, .size = map[i].size, .type = map[i].type};
    bp->e820_entries = (uint8_t)n;
    return 0;
}

int boot_write_info(const struct guest_mem *mem, const struct kernel_image *img,
                    const struct boot_args *args, char *err, size_t errlen)
{
    int rc;

    if (img->protocol == BOOT_LINUX64)
        rc = linux_write_boot_params(mem, img, args, err, errlen);
    else if (img->has_setup_header && strlen(args->cmdline) > img->cmdline_max)
        /* A bzImage booting as its unpacked ELF through PVH: its header's
         * cmdline_size still binds, as on the zero-page path. */
        rc = write_cmdline(mem, args->cmdline, img->cmdline_max, err, errlen);
    else
        rc = pvh_write_boot_info(mem, args, err, errlen);
    if (rc)
        return rc;
    if (boot_write_gdt(mem, img->protocol) ||
        (img->protocol == BOOT_LINUX64 && boot_write_page_tables(mem))) {
        snprintf(err, errlen, "guest RAM too small for the boot information");
        return -EFAULT;
    }
    rc = mptable_write(mem, args->ncpus);
    if (rc) {
        snprintf(err, errlen, "cannot write the MP table for %u vCPUs: %s", args->ncpus,
                 strerror(-rc));
        return rc;
    }
    return 0;
}

int boot_write_gdt(const struct guest_mem *mem, enum boot_protocol protocol)
{
    const uint64_t gdt[] = {0, protocol == BOOT_LINUX64 ? BOOT_GDT_CODE64 : BOOT_GDT_CODE32,
                            BOOT_GDT_DATA32, BOOT_GDT_TSS};
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
