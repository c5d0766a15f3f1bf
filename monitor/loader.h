/*
 * loader.h - putting a kernel, an initrd and boot information into guest RAM.
 *
 * Kernel images come from the user and are checked as strictly as guest
 * input: every offset, size and address is validated before a byte is
 * copied, and a rejected image leaves guest memory untouched. Errors come
 * back as -errno plus one line of text in `err` naming what is wrong.
 */
#ifndef FLINT_LOADER_H
#define FLINT_LOADER_H

#include "guest_mem.h"

#include <stddef.h>
#include <stdint.h>

#define LOADER_ERR_LEN 256
#define ELF_MAX_PHDRS  64

struct kernel_image {
    gpa_t entry;      /* 32-bit PVH entry point */
    gpa_t load_start; /* lowest guest address the kernel occupies */
    gpa_t load_end;   /* exclusive end of the highest segment */
};

/* Validate the ELF64 x86_64 image in `fd` and, if it is a PVH kernel (Xen
 * ELF note XEN_ELFNOTE_PHYS32_ENTRY), load its PT_LOAD segments at their
 * physical addresses. Segments must lie in RAM at or above 1 MiB, must not
 * overlap, and the entry must lie inside one of them. Returns 0 or -errno. */
int elf_load_pvh(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
                 size_t errlen);

struct initrd_placement {
    gpa_t addr;
    uint64_t size;
};

/* Load the initrd in `fd` page-aligned at the top of low RAM, above the
 * kernel. Returns 0 or -errno (too big, empty, overlapping the kernel). */
int initrd_load(const struct guest_mem *mem, int fd, const struct kernel_image *img,
                struct initrd_placement *out, char *err, size_t errlen);

/* One entry of the guest's physical memory map (e820 types). */
struct memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

#define MEMMAP_MAX 8

/* The x86_64 memory map of `mem`: conventional RAM below the EBDA, the
 * reserved BIOS area, RAM from 1 MiB to the MMIO gap and RAM above 4 GiB.
 * Returns the number of entries written (at most `max`). */
unsigned memmap_build(const struct guest_mem *mem, struct memmap_entry *out, unsigned max);

struct pvh_boot {
    const char *cmdline;                   /* NUL-terminated, < FLINT_CMDLINE_MAX bytes */
    const struct initrd_placement *initrd; /* or NULL */
};

/* Write the command line, memory map, module list and hvm_start_info at the
 * addresses of flint-abi.h. Returns 0 or -errno (command line too long). */
int pvh_write_boot_info(const struct guest_mem *mem, const struct pvh_boot *boot, char *err,
                        size_t errlen);

/* Write the boot GDT (null, 32-bit code 0x08, 32-bit data 0x10, TSS 0x18) at
 * FLINT_GDT_ADDR and an empty IDT at FLINT_IDT_ADDR. Returns 0 or -EFAULT. */
int boot_write_gdt(const struct guest_mem *mem);

/* The GDT entries written by boot_write_gdt, for building matching segment
 * registers. */
#define BOOT_GDT_CODE32 0x00cf9b000000ffffull
#define BOOT_GDT_DATA32 0x00cf93000000ffffull
#define BOOT_GDT_TSS    0x00008b0000000067ull
#define BOOT_SEL_CODE   0x08
#define BOOT_SEL_DATA   0x10
#define BOOT_SEL_TSS    0x18

/* Identity-map the first 1 GiB with 2 MiB pages: PML4 at FLINT_PML4_ADDR,
 * PDPT at FLINT_PDPTE_ADDR, PD at FLINT_PDE_ADDR, for kernels entered in
 * 64-bit mode (Linux boot protocol). Returns 0 or -EFAULT. */
int boot_write_page_tables(const struct guest_mem *mem);

#endif /* FLINT_LOADER_H */
