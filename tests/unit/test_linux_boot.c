/* Unit tests: the bzImage loader (valid and hostile headers), format
 * detection, the Linux zero page and the MP table. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "loader.h"
#include "util.h"
#include "vcpu.h"
#include "x86_boot.h"

#include <elf.h>
#include <errno.h>
#include <flint-abi.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SETUP_SECTS 4
#define SETUP_BYTES ((SETUP_SECTS + 1) * 512)
#define PM_BYTES    0x1000
#define IMG_BYTES   (SETUP_BYTES + PM_BYTES)

static struct guest_mem mem;
static char err[LOADER_ERR_LEN];

struct bzimage {
    uint8_t bytes[IMG_BYTES + 512];
    size_t len;
    struct linux_setup_header *h;
};

/* A well-formed 64-bit relocatable bzImage: 4 setup sectors, 4 KiB of
 * "kernel" that the decompressor would spread over 4 MiB at 16 MiB. */
static void build_bz(struct bzimage *bz)
{
    memset(bz, 0, sizeof(*bz));
    bz->len = IMG_BYTES;
    bz->h = (struct linux_setup_header *)(bz->bytes + LINUX_SETUP_HEADER_OFFSET);
    bz->h->setup_sects = SETUP_SECTS;
    bz->h->syssize = PM_BYTES / 16;
    bz->h->boot_flag = LINUX_BOOT_FLAG;
    bz->h->jump = 0xeb | (0x6a << 8); /* header ends at 0x26c */
    bz->h->header = LINUX_HDRS_MAGIC;
    bz->h->version = 0x020f;
    bz->h->loadflags = LINUX_LOADED_HIGH;
    bz->h->initrd_addr_max = 0x7fffffff;
    bz->h->kernel_alignment = 0x200000;
    bz->h->relocatable_kernel = 1;
    bz->h->xloadflags = LINUX_XLF_KERNEL_64 | LINUX_XLF_CAN_BE_LOADED_ABOVE_4G;
    bz->h->cmdline_size = 2047;
    bz->h->pref_address = 0x1000000;
    bz->h->init_size = 0x400000;
    memset(bz->bytes + SETUP_BYTES, 0x90, PM_BYTES);
    bz->bytes[SETUP_BYTES + LINUX_ENTRY64_OFFSET] = 0xf4;
}

static int as_fd(const void *buf, size_t len)
{
    int fd = memfd_create("kernel", 0);
    cr_assert_geq(fd, 0);
    if (len)
        cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    return fd;
}

static int load_bz(const struct bzimage *bz, struct kernel_image *ki)
{
    int fd = as_fd(bz->bytes, bz->len);
    int rc = kernel_load(&mem, fd, ki, err, sizeof(err));
    close(fd);
    return rc;
}

static void setup(void)
{
    cr_assert_eq(guest_mem_create(&mem, 64 * MIB), 0);
    memset(mem.map, 0xcc, mem.size);
    err[0] = '\0';
}

static void teardown(void)
{
    guest_mem_destroy(&mem);
}

static void assert_untouched(void)
{
    for (uint64_t off = 0; off < mem.size; off += 4096)
        cr_assert_eq(mem.map[off], 0xcc, "guest RAM changed at 0x%llx", (unsigned long long)off);
}

static void expect_reject(const struct bzimage *bz, int code, const char *needle)
{
    struct kernel_image ki;
    int rc = load_bz(bz, &ki);
    cr_assert_eq(rc, code, "rc %d, expected %d (%s); message: %s", rc, code, needle, err);
    cr_assert(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
    assert_untouched();
}

TestSuite(bzimage, .init = setup, .fini = teardown);

Test(bzimage, loads_protected_mode_part_at_1mib)
{
    struct bzimage bz;
    struct kernel_image ki;
    build_bz(&bz);
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(ki.protocol, BOOT_LINUX64);
    cr_assert_eq(ki.entry, 0x100000 + 0x200);
    cr_assert_eq(ki.load_start, 0x100000);
    cr_assert_eq(ki.load_end, 0x1000000 + 0x400000, "the decompression buffer counts");
    cr_assert_eq(ki.cmdline_max, 2047);
    cr_assert(ki.has_setup_header);
    cr_assert_eq(ki.hdr.init_size, 0x400000);
    cr_assert_eq(mem.map[0x100000], 0x90);
    cr_assert_eq(mem.map[0x100200], 0xf4);
    cr_assert_eq(mem.map[0x100000 + PM_BYTES], 0xcc, "nothing past syssize");
    cr_assert_eq(mem.map[0x7000], 0xcc, "the setup code is not loaded");
}

Test(bzimage, run_address_follows_alignment_and_pref_address)
{
    struct bzimage bz;
    struct kernel_image ki;
    build_bz(&bz);
    bz.h->pref_address = 0x100000;
    bz.h->kernel_alignment = 0x400000;
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(ki.load_end, 0x400000 + 0x400000, "1 MiB rounded up to 4 MiB");
    build_bz(&bz);
    bz.h->relocatable_kernel = 0;
    bz.h->pref_address = 0x2000000;
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(ki.load_end, 0x2000000 + 0x400000, "non-relocatable: runs at pref_address");
}

Test(bzimage, initrd_limit_comes_from_the_header)
{
    struct bzimage bz;
    struct kernel_image ki;
    build_bz(&bz);
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(ki.initrd_end_max, FLINT_MMIO_GAP_START);
    bz.h->xloadflags = LINUX_XLF_KERNEL_64;
    bz.h->initrd_addr_max = 0x37ffffff;
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(ki.initrd_end_max, 0x38000000);
}

Test(bzimage, zero_setup_sects_means_four)
{
    struct bzimage bz;
    struct kernel_image ki;
    build_bz(&bz);
    bz.h->setup_sects = 0;
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(mem.map[0x100200], 0xf4);
}

Test(bzimage, rejects_bad_magic_and_old_protocols)
{
    struct bzimage bz;
    build_bz(&bz);
    bz.h->boot_flag = 0x1234;
    expect_reject(&bz, -ENOEXEC, "not a bzImage");
    build_bz(&bz);
    bz.h->version = 0x020b;
    expect_reject(&bz, -ENOEXEC, "older than 2.12");
    build_bz(&bz);
    bz.h->loadflags = 0;
    expect_reject(&bz, -ENOEXEC, "zImage");
    build_bz(&bz);
    bz.h->xloadflags = 0;
    expect_reject(&bz, -ENOEXEC, "XLF_KERNEL_64");
}

Test(bzimage, rejects_nonsense_fields)
{
    struct bzimage bz;
    build_bz(&bz);
    bz.h->kernel_alignment = 0x300000;
    expect_reject(&bz, -ENOEXEC, "kernel_alignment");
    build_bz(&bz);
    bz.h->kernel_alignment = 0;
    expect_reject(&bz, -ENOEXEC, "kernel_alignment");
    build_bz(&bz);
    bz.h->init_size = 0;
    expect_reject(&bz, -ENOEXEC, "init_size");
    build_bz(&bz);
    bz.h->syssize = 0;
    expect_reject(&bz, -ENOEXEC, "syssize");
    build_bz(&bz);
    bz.h->syssize = 0x10; /* 256 bytes: no room for the entry at +0x200 */
    expect_reject(&bz, -ENOEXEC, "64-bit entry");
    build_bz(&bz);
    bz.h->jump = 0xeb | (0x20 << 8); /* header ends at 0x222 */
    expect_reject(&bz, -ENOEXEC, "before the 2.12 fields");
    build_bz(&bz);
    bz.h->relocatable_kernel = 0;
    bz.h->pref_address = 0x1000;
    expect_reject(&bz, -ENOEXEC, "below 1 MiB");
    build_bz(&bz);
    bz.h->relocatable_kernel = 0;
    bz.h->pref_address = UINT64_MAX - 0x1000;
    expect_reject(&bz, -ENOEXEC, "wrapping");
}

Test(bzimage, rejects_truncated_images)
{
    struct bzimage bz;
    build_bz(&bz);
    bz.len = IMG_BYTES - 16;
    expect_reject(&bz, -ENOEXEC, "truncated");
    build_bz(&bz);
    bz.len = SETUP_BYTES;
    expect_reject(&bz, -ENOEXEC, "setup code alone");
    build_bz(&bz);
    bz.h->setup_sects = 200; /* setup claims more than the file holds */
    expect_reject(&bz, -ENOEXEC, "truncated");
    build_bz(&bz);
    bz.h->syssize = 0xffffffff;
    expect_reject(&bz, -ENOEXEC, "truncated");
}

Test(bzimage, kernel_that_does_not_fit_in_ram_is_refused)
{
    struct bzimage bz;
    build_bz(&bz);
    bz.h->init_size = 0xffffffff;
    expect_reject(&bz, -ENOMEM, "give the VM more memory");
    build_bz(&bz);
    bz.h->init_size = 48 * MIB + 1; /* 16 MiB + that is one byte past 64 MiB */
    expect_reject(&bz, -ENOMEM, "init_size");
    build_bz(&bz);
    bz.h->init_size = 48 * MIB;
    struct kernel_image ki;
    cr_assert_eq(load_bz(&bz, &ki), 0, "exactly all of RAM is enough: %s", err);
}

Test(bzimage, random_corruption_never_crashes_or_escapes_ram)
{
    struct bzimage bz;
    uint32_t seed = 4242;
    for (int iter = 0; iter < 3000; iter++) {
        struct kernel_image ki;
        build_bz(&bz);
        for (int flips = 0; flips < 3; flips++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = LINUX_SETUP_HEADER_OFFSET + (seed >> 8) % sizeof(*bz.h);
            bz.bytes[pos] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        if (seed % 8 == 0)
            bz.len = (seed >> 8) % (IMG_BYTES + 1);
        if (load_bz(&bz, &ki) == 0) {
            cr_assert_geq(ki.load_start, FLINT_HIMEM_START);
            cr_assert_leq(ki.load_end, mem.size);
            cr_assert(ki.entry >= ki.load_start && ki.entry < ki.load_end);
            cr_assert_leq(ki.cmdline_max, FLINT_CMDLINE_MAX - 1);
        } else {
            cr_assert_neq(err[0], '\0', "a rejection names its reason");
        }
    }
}

TestSuite(kernel_format, .init = setup, .fini = teardown);

Test(kernel_format, garbage_is_neither_elf_nor_bzimage)
{
    uint8_t junk[4096];
    struct kernel_image ki;
    memset(junk, 0x5a, sizeof(junk));
    int fd = as_fd(junk, sizeof(junk));
    cr_assert_eq(kernel_load(&mem, fd, &ki, err, sizeof(err)), -ENOEXEC);
    cr_assert(strstr(err, "neither an ELF kernel"), "%s", err);
    close(fd);
    fd = as_fd(junk, 100);
    cr_assert_eq(kernel_load(&mem, fd, &ki, err, sizeof(err)), -ENOEXEC);
    cr_assert(strstr(err, "neither an ELF kernel"), "%s", err);
    close(fd);
    fd = as_fd(junk, 3);
    cr_assert_eq(kernel_load(&mem, fd, &ki, err, sizeof(err)), -ENOEXEC);
    cr_assert(strstr(err, "too small"), "%s", err);
    close(fd);
    assert_untouched();
}

Test(kernel_format, elf_magic_goes_to_the_elf_loader)
{
    uint8_t img[256] = {0};
    struct kernel_image ki;
    memcpy(img, ELFMAG, SELFMAG);
    int fd = as_fd(img, sizeof(img));
    cr_assert_eq(kernel_load(&mem, fd, &ki, err, sizeof(err)), -ENOEXEC);
    cr_assert(strstr(err, "64-bit ELF"), "%s", err);
    close(fd);
}

/* --- zero page --- */

TestSuite(zero_page, .init = setup, .fini = teardown);

static const struct linux_boot_params *zero_page(void)
{
    return guest_mem_slice(&mem, FLINT_ZERO_PAGE_ADDR, sizeof(struct linux_boot_params));
}

Test(zero_page, bzimage_header_cmdline_initrd_and_e820)
{
    struct bzimage bz;
    struct kernel_image ki;
    struct initrd_placement rd = {.addr = 0x3000000, .size = 12345};
    struct boot_args args = {.cmdline = "console=ttyS0 root=/dev/vda", .initrd = &rd, .ncpus = 2};

    build_bz(&bz);
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), 0, "%s", err);
    const struct linux_boot_params *bp = zero_page();
    cr_assert_eq(bp->hdr.boot_flag, LINUX_BOOT_FLAG);
    cr_assert_eq(bp->hdr.header, LINUX_HDRS_MAGIC);
    cr_assert_eq(bp->hdr.version, 0x020f);
    cr_assert_eq(bp->hdr.init_size, 0x400000, "the kernel's own header is passed on");
    cr_assert_eq(bp->hdr.kernel_alignment, 0x200000);
    cr_assert_eq(bp->hdr.type_of_loader, LINUX_LOADER_UNDEFINED);
    cr_assert_eq(bp->hdr.cmd_line_ptr, FLINT_CMDLINE_ADDR);
    cr_assert_str_eq((const char *)guest_mem_slice(&mem, FLINT_CMDLINE_ADDR, 28),
                     "console=ttyS0 root=/dev/vda");
    cr_assert_eq(bp->hdr.ramdisk_image, 0x3000000);
    cr_assert_eq(bp->hdr.ramdisk_size, 12345);
    cr_assert_eq(bp->ext_ramdisk_image, 0);
    cr_assert_eq(bp->e820_entries, 3);
    cr_assert_eq(bp->e820_table[0].addr, 0);
    cr_assert_eq(bp->e820_table[0].size, FLINT_EBDA_START);
    cr_assert_eq(bp->e820_table[0].type, 1);
    cr_assert_eq(bp->e820_table[1].type, 2);
    cr_assert_eq(bp->e820_table[2].addr, FLINT_HIMEM_START);
    cr_assert_eq(bp->e820_table[2].addr + bp->e820_table[2].size, 64 * MIB);
    cr_assert_eq(bp->e820_table[3].size, 0, "the rest of the table is zero");
    /* Long-mode GDT and identity page tables for the 64-bit entry. */
    uint64_t code;
    cr_assert_eq(guest_mem_read(&mem, FLINT_GDT_ADDR + 8, &code, 8), 0);
    cr_assert_eq(code, BOOT_GDT_CODE64);
    uint64_t pml4;
    cr_assert_eq(guest_mem_read(&mem, FLINT_PML4_ADDR, &pml4, 8), 0);
    cr_assert_eq(pml4 & ~0xfffull, FLINT_PDPTE_ADDR);
    cr_assert_eq(memcmp(guest_mem_slice(&mem, FLINT_EBDA_START, 4), "_MP_", 4), 0);
}

Test(zero_page, elf_vmlinux_gets_a_minimal_header)
{
    struct kernel_image ki = {.protocol = BOOT_LINUX64,
                              .entry = 0x1000000,
                              .load_start = 0x1000000,
                              .load_end = 0x2000000,
                              .cmdline_max = FLINT_CMDLINE_MAX - 1};
    struct boot_args args = {.cmdline = "panic=1", .ncpus = 1};
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), 0, "%s", err);
    const struct linux_boot_params *bp = zero_page();
    cr_assert_eq(bp->hdr.boot_flag, LINUX_BOOT_FLAG);
    cr_assert_eq(bp->hdr.header, LINUX_HDRS_MAGIC);
    cr_assert_geq(bp->hdr.version, LINUX_MIN_PROTOCOL);
    cr_assert_eq(bp->hdr.type_of_loader, LINUX_LOADER_UNDEFINED);
    cr_assert_eq(bp->hdr.cmd_line_ptr, FLINT_CMDLINE_ADDR);
    cr_assert_eq(bp->hdr.ramdisk_image, 0);
    cr_assert_eq(bp->e820_entries, 3);
}

Test(zero_page, cmdline_longer_than_the_kernels_limit_is_refused)
{
    struct bzimage bz;
    struct kernel_image ki;
    struct boot_args args = {.cmdline = "0123456789abcdef", .ncpus = 1};
    build_bz(&bz);
    bz.h->cmdline_size = 15;
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), -E2BIG);
    cr_assert(strstr(err, "cmdline_size"), "%s", err);
    cr_assert_eq(mem.map[FLINT_CMDLINE_ADDR], 0xcc, "nothing written");
    bz.h->cmdline_size = 16;
    cr_assert_eq(load_bz(&bz, &ki), 0, "%s", err);
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), 0, "%s", err);
}

Test(zero_page, pvh_keeps_the_32bit_gdt)
{
    struct kernel_image ki = {.protocol = BOOT_PVH, .entry = 0x100000};
    struct boot_args args = {.cmdline = "", .ncpus = 1};
    uint64_t code;
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(guest_mem_read(&mem, FLINT_GDT_ADDR + 8, &code, 8), 0);
    cr_assert_eq(code, BOOT_GDT_CODE32);
}

/* --- MP table --- */

TestSuite(mptable, .init = setup, .fini = teardown);

static uint8_t sum_bytes(const void *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + ((const uint8_t *)p)[i]);
    return s;
}

static void check_mptable(unsigned ncpus)
{
    const struct mp_floating_pointer *fp = guest_mem_slice(&mem, FLINT_EBDA_START, sizeof(*fp));
    cr_assert_eq(memcmp(fp->signature, "_MP_", 4), 0);
    cr_assert_eq(fp->length, 1);
    cr_assert_eq(fp->spec_rev, 4);
    cr_assert_eq(sum_bytes(fp, sizeof(*fp)), 0, "floating pointer checksum");
    cr_assert_eq(fp->feature[0], 0, "a configuration table follows");

    const struct mp_config_header *h = guest_mem_slice(&mem, fp->config_table, sizeof(*h));
    cr_assert_not_null(h);
    cr_assert_eq(memcmp(h->signature, "PCMP", 4), 0);
    cr_assert_eq(sum_bytes(h, h->length), 0, "configuration table checksum");
    cr_assert_eq(h->entry_count, ncpus + 2 + MPTABLE_IRQS + 2);
    cr_assert_eq(h->lapic_addr, FLINT_LAPIC_ADDR);
    cr_assert_leq(fp->config_table + h->length, FLINT_BIOS_END);

    const uint8_t *e = (const uint8_t *)(h + 1);
    unsigned cpus = 0, bsps = 0, ioapics = 0, irqs = 0, lints = 0;
    for (unsigned i = 0; i < h->entry_count; i++) {
        switch (e[0]) {
        case MP_PROCESSOR: {
            const struct mp_processor *p = (const void *)e;
            cr_assert_eq(p->apic_id, cpus, "APIC IDs 0..n-1 in order");
            cr_assert(p->flags & MP_CPU_ENABLED);
            bsps += !!(p->flags & MP_CPU_BSP);
            cpus++;
            e += sizeof(*p);
            break;
        }
        case MP_IOAPIC: {
            const struct mp_ioapic *io = (const void *)e;
            cr_assert_eq(io->apic_id, ncpus, "the IOAPIC ID follows the CPUs'");
            cr_assert_eq(io->addr, FLINT_IOAPIC_ADDR);
            ioapics++;
            e += 8;
            break;
        }
        case MP_IOINTERRUPT: {
            const struct mp_interrupt *in = (const void *)e;
            cr_assert_eq(in->src_irq, in->dst_pin);
            cr_assert_eq(in->dst_apic, ncpus);
            irqs++;
            e += 8;
            break;
        }
        case MP_LOCALINTERRUPT:
            lints++;
            e += 8;
            break;
        case MP_BUS:
            cr_assert_eq(memcmp(((const struct mp_bus *)e)->bus_type, "ISA   ", 6), 0);
            e += 8;
            break;
        default:
            cr_assert_fail("unknown MP entry type %u", e[0]);
        }
    }
    cr_assert_eq(e, (const uint8_t *)h + h->length, "entries fill the table exactly");
    cr_assert_eq(cpus, ncpus);
    cr_assert_eq(bsps, 1);
    cr_assert_eq(ioapics, 1);
    cr_assert_eq(irqs, MPTABLE_IRQS);
    cr_assert_eq(lints, 2);
}

Test(mptable, one_to_thirty_two_cpus)
{
    for (unsigned n = 1; n <= 32; n++) {
        cr_assert_eq(mptable_write(&mem, n), 0);
        check_mptable(n);
    }
}

/* The MP table lists one processor entry per logical CPU; with smt the
 * guest pairs them into cores from the APIC IDs, which must be the ones
 * CPUID gives each vCPU: thread in the low bit, core above, as hardware
 * numbers them. */
Test(mptable, apic_ids_agree_with_the_cpuid_topology_with_and_without_smt)
{
    union {
        struct kvm_cpuid2 hdr;
        uint8_t bytes[sizeof(struct kvm_cpuid2) + 16 * sizeof(struct kvm_cpuid_entry2)];
    } base = {0}, out;
    const struct kvm_cpuid_entry2 leaves[] = {
        {.function = 0, .eax = 0xb, .ebx = 0x68747541},
        {.function = 1},
        {.function = 0x80000000, .eax = 0x8000001e},
        {.function = 0x80000001},
        {.function = 0x8000001e},
    };

    base.hdr.nent = ARRAY_SIZE(leaves);
    memcpy(base.hdr.entries, leaves, sizeof(leaves));
    for (int smt = 0; smt < 2; smt++) {
        for (unsigned n = 1; n <= 32; n += (smt && n > 1) ? 2 : 1) {
            const struct cpu_topology topo = {n, cpu_threads_per_core(smt, n)};
            cr_assert_eq(mptable_write(&mem, n), 0);
            check_mptable(n);
            const struct mp_floating_pointer *fp = guest_mem_slice(&mem, FLINT_EBDA_START, 16);
            const struct mp_processor *p = guest_mem_slice(
                &mem, fp->config_table + sizeof(struct mp_config_header), n * sizeof(*p));
            for (unsigned i = 0; i < n; i++) {
                cr_assert_eq(cpuid_for_vcpu(&base.hdr, &out.hdr, 16, i, &topo), 0);
                const struct kvm_cpuid_entry2 *l1 = NULL, *smt_level = NULL, *amd = NULL;
                for (unsigned k = 0; k < out.hdr.nent; k++) {
                    const struct kvm_cpuid_entry2 *e = &out.hdr.entries[k];
                    l1 = e->function == 1 ? e : l1;
                    smt_level = e->function == 0xb && e->index == 0 ? e : smt_level;
                    amd = e->function == 0x8000001e ? e : amd;
                }
                cr_assert_eq(p[i].type, MP_PROCESSOR);
                cr_assert_eq(p[i].apic_id, l1->ebx >> 24, "smt %d, %u CPUs, vCPU %u", smt, n, i);
                cr_assert_eq(p[i].apic_id, smt_level->edx);
                cr_assert_eq(p[i].apic_id >> smt_level->eax, i / topo.threads_per_core,
                             "vCPU %u is a thread of core %u", i, i / topo.threads_per_core);
                cr_assert_eq(amd->ebx & 0xff, i / topo.threads_per_core);
            }
        }
    }
}

Test(mptable, thirty_two_cpus_fit_in_the_last_kib_of_base_memory)
{
    const struct mp_floating_pointer *fp;
    const struct mp_config_header *h;
    cr_assert_eq(mptable_write(&mem, 32), 0);
    fp = guest_mem_slice(&mem, FLINT_EBDA_START, sizeof(*fp));
    h = guest_mem_slice(&mem, fp->config_table, sizeof(*h));
    cr_assert_leq(fp->config_table + h->length, 0xa0000);
}

Test(mptable, refuses_zero_and_too_many_cpus)
{
    cr_assert_eq(mptable_write(&mem, 0), -EINVAL);
    cr_assert_eq(mptable_write(&mem, MPTABLE_MAX_CPUS + 1), -EINVAL);
    assert_untouched();
    cr_assert_eq(mptable_write(&mem, MPTABLE_MAX_CPUS), 0);
    check_mptable(MPTABLE_MAX_CPUS);
}
