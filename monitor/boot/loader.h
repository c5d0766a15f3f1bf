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
#include "x86_boot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOADER_ERR_LEN 256
#define ELF_MAX_PHDRS  64

enum boot_protocol {
    BOOT_PVH,     /* 32-bit entry, paging off, EBX = hvm_start_info */
    BOOT_LINUX64, /* Linux 64-bit boot protocol: long mode, RSI = zero page */
};

struct kernel_image {
    enum boot_protocol protocol;
    gpa_t entry;          /* PVH: 32-bit entry; Linux: 64-bit entry */
    gpa_t load_start;     /* lowest guest address the kernel occupies */
    gpa_t load_end;       /* exclusive end of what it needs before it manages memory itself
                           * (a bzImage: the decompression buffer of init_size bytes) */
    gpa_t initrd_end_max; /* an initrd must end at or below this (exclusive) */
    uint32_t cmdline_max; /* longest command line the kernel accepts, NUL excluded */
    bool has_setup_header;
    struct linux_setup_header hdr; /* bzImage: its setup header, for the zero page */
    bool unpacked;                 /* a bzImage booting as its unpacked payload */
};

/* Load a kernel of any supported format: an ELF vmlinux (elf_load) or a
 * bzImage (bzimage_load), told apart by their magic numbers. Returns 0 or
 * -errno with one line in err. */
int kernel_load(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
                size_t errlen);

/* Validate the ELF64 x86_64 image in `fd` and load its PT_LOAD segments at
 * their physical addresses. With a Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY
 * the kernel boots through that PVH entry; without one, through the Linux
 * 64-bit boot protocol at e_entry (a vmlinux's is physical). Segments must
 * lie in RAM at or above 1 MiB, must not overlap, and the entry must lie
 * inside one of them. Returns 0 or -errno. */
int elf_load(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
             size_t errlen);

/* Validate a bzImage (boot protocol 2.12 or later, XLF_KERNEL_64) and load
 * its protected-mode part at 1 MiB. The image is refused unless every
 * header field flint relies on is sane, the file holds the syssize bytes
 * its header promises, and RAM below the MMIO gap holds the decompression
 * buffer (init_size bytes from the address the kernel will run at).
 * Returns 0 or -errno. */
int bzimage_load(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
                 size_t errlen);

/* What bzimage_check learnt about a bzImage. */
struct bzimage_info {
    struct linux_setup_header hdr; /* fields beyond the kernel's protocol zeroed */
    uint64_t file_size;
    uint64_t setup_bytes; /* real-mode part: the protected-mode part starts here */
    uint64_t pm_bytes;    /* protected-mode part, syssize * 16 */
    uint64_t run_end;     /* end of the decompression buffer (init_size bytes) */
};

/* Every check bzimage_load makes, without loading anything. Returns 0 or
 * -errno with one line in err. */
int bzimage_check(const struct guest_mem *mem, int fd, struct bzimage_info *bz, char *err,
                  size_t errlen);

/* Fill img's load_end, initrd_end_max, cmdline_max and setup header from a
 * checked bzImage: what the zero page and the initrd placement need, the
 * same whether the bzImage or its unpacked payload boots. */
void bzimage_describe(const struct bzimage_info *bz, struct kernel_image *img);

/* ---- a bzImage's payload unpacked on the host (bzimage_unpack.c) ---- */

/* The compressors Linux builds a payload with, told apart by magic bytes. */
enum bz_format { BZ_GZIP, BZ_XZ, BZ_LZMA, BZ_LZO, BZ_LZ4, BZ_ZSTD, BZ_BZIP2, BZ_UNKNOWN };

enum bz_format bzimage_payload_format(const uint8_t *payload, size_t len);
const char *bzimage_format_name(enum bz_format fmt);

/* Largest unpacked payload flint accepts, whatever the header says. */
#define BZIMAGE_UNPACK_MAX (256u * 1024 * 1024)

/* Decompress `payload` (its last 4 bytes: the uncompressed size, which
 * must be at most out_max) into a malloc'd buffer that must hold exactly
 * that many bytes, starting with the ELF magic. Returns 0 with *out and
 * *out_len, -EOPNOTSUPP for a format flint does not unpack (bzip2), or
 * -errno with one line in err (unknown magic, corrupt or truncated stream,
 * more output than promised, not an ELF image). */
int bzimage_unpack(const uint8_t *payload, size_t len, size_t out_max, uint8_t **out,
                   size_t *out_len, char *err, size_t errlen);

/* ---- the cache of unpacked payloads (kernel_cache.c) ---- */

#define KERNEL_CACHE_KEY_LEN  65 /* SHA-256 in hex, NUL */
#define KERNEL_CACHE_MAX_SIZE (512ull * 1024 * 1024)

/* The cache directory: $FLINT_KERNEL_CACHE, else /var/cache/flint/unpacked
 * for root, else $XDG_CACHE_HOME/flint/unpacked or ~/.cache/flint/unpacked,
 * created mode 0700 (only its last two components). Returns 0, or -errno
 * when there is none usable (no base directory, as in a jail; not ours;
 * open to others). */
int kernel_cache_dir(char *buf, size_t len);

/* The cache key of a bzImage: the SHA-256 of all its bytes, in hex. */
void kernel_cache_key(const uint8_t *data, size_t len, char key[KERNEL_CACHE_KEY_LEN]);

/* Open the entry for key read-only; refuses one not owned by flint's user
 * or writable by others. Returns the fd or -errno (-ENOENT: a miss). */
int kernel_cache_open(const char *dir, const char *key);

/* Write an entry atomically (a temporary file renamed), first evicting the
 * least recently used entries so the directory stays under cap bytes.
 * Returns a readable fd of the new entry or -errno. */
int kernel_cache_store(const char *dir, const char *key, const uint8_t *data, size_t len,
                       uint64_t cap);

/* Remove the entry for key (a corrupt one). */
void kernel_cache_drop(const char *dir, const char *key);

/* ---- loading a bzImage through its unpacked payload (bzimage_direct.c) ---- */

struct kernel_load_opts {
    bool unpack_bzimage;   /* boot a bzImage's payload as an ELF vmlinux */
    const char *cache_dir; /* unpacked payloads kept here; NULL: see below */
    bool cache_default;    /* no cache_dir: use kernel_cache_dir's, if any */
    uint64_t cache_max;    /* bytes the cache directory may hold */
};

#define KERNEL_NOTE_LEN 320

/* Load a bzImage by unpacking its payload and loading the ELF vmlinux
 * inside, with the bzImage's setup header (bzimage_describe) for the zero
 * page. Returns 0 (note: how it went, for the log), 1 when the payload
 * cannot be booted this way and the bzImage must boot as it is (note: why),
 * or -errno with one line in err for a bad image. */
int bzimage_load_unpacked(const struct guest_mem *mem, int fd, const struct kernel_load_opts *opts,
                          struct kernel_image *img, char *note, size_t notelen, char *err,
                          size_t errlen);

/* kernel_load with options: a bzImage goes through bzimage_load_unpacked
 * when opts->unpack_bzimage, falling back to bzimage_load. note (may be
 * empty) says which path was taken. */
int kernel_load_with(const struct guest_mem *mem, int fd, const struct kernel_load_opts *opts,
                     struct kernel_image *img, char *note, size_t notelen, char *err,
                     size_t errlen);

struct initrd_placement {
    gpa_t addr;
    uint64_t size;
};

/* Load the initrd in `fd` page-aligned at the top of low RAM (or below the
 * kernel's initrd_end_max), above the kernel. Returns 0 or -errno (too big,
 * empty, overlapping the kernel). */
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

struct boot_args {
    const char *cmdline;                   /* NUL-terminated, < FLINT_CMDLINE_MAX bytes */
    const struct initrd_placement *initrd; /* or NULL */
    unsigned ncpus;                        /* vCPUs, APIC IDs 0 .. ncpus - 1 */
};

/* Write everything the kernel reads at its entry, for img's protocol: the
 * command line, hvm_start_info or the zero page, the GDT, for Linux the
 * identity page tables, and the MP table. Returns 0 or -errno with one line
 * in err (command line too long for the kernel, too many CPUs). */
int boot_write_info(const struct guest_mem *mem, const struct kernel_image *img,
                    const struct boot_args *args, char *err, size_t errlen);

/* Write the command line, memory map, module list and hvm_start_info at the
 * addresses of flint-abi.h. Returns 0 or -errno (command line too long). */
int pvh_write_boot_info(const struct guest_mem *mem, const struct boot_args *args, char *err,
                        size_t errlen);

/* Write the command line and the zero page (at FLINT_ZERO_PAGE_ADDR): the
 * image's setup header (or, for an ELF vmlinux, a minimal one), loader type
 * 0xff, command line pointer, initrd and e820 map. Returns 0 or -errno
 * (command line longer than the kernel's cmdline_size). */
int linux_write_boot_params(const struct guest_mem *mem, const struct kernel_image *img,
                            const struct boot_args *args, char *err, size_t errlen);

/* Write an MP table (MultiProcessor Specification 1.4) at FLINT_EBDA_START:
 * the floating pointer, then processors with APIC IDs 0 .. ncpus - 1 (0
 * the boot processor), one ISA bus, the IOAPIC (ID ncpus) with IRQ n wired
 * to its pin n, ExtINT on LINT0 and NMI on LINT1. Returns 0 or -EINVAL
 * (ncpus 0 or above MPTABLE_MAX_CPUS) / -EFAULT. */
int mptable_write(const struct guest_mem *mem, unsigned ncpus);

#define MPTABLE_MAX_CPUS 254 /* 8-bit APIC IDs, one left for the IOAPIC */
#define MPTABLE_IRQS     24  /* IOAPIC pins */

/* Write the boot GDT (null, code 0x08, data 0x10, TSS 0x18) at
 * FLINT_GDT_ADDR and an empty IDT at FLINT_IDT_ADDR. The code segment is
 * 32-bit for PVH and 64-bit for the Linux 64-bit entry. Returns 0 or
 * -EFAULT. */
int boot_write_gdt(const struct guest_mem *mem, enum boot_protocol protocol);

/* The GDT entries written by boot_write_gdt, for building matching segment
 * registers. */
#define BOOT_GDT_CODE32 0x00cf9b000000ffffull
#define BOOT_GDT_CODE64 0x00af9b000000ffffull
#define BOOT_GDT_DATA32 0x00cf93000000ffffull
#define BOOT_GDT_TSS    0x00008b0000000067ull
#define BOOT_SEL_CODE   0x08
#define BOOT_SEL_DATA   0x10
#define BOOT_SEL_TSS    0x18

/* Identity-map the first 1 GiB with 2 MiB pages: PML4 at FLINT_PML4_ADDR,
 * PDPT at FLINT_PDPTE_ADDR, PD at FLINT_PDE_ADDR, for kernels entered in
 * 64-bit mode (Linux boot protocol). Returns 0 or -EFAULT. */
int boot_write_page_tables(const struct guest_mem *mem);

/* Helpers shared by the loaders. */
/* Format one line into err and return code. */
int loader_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* pread exactly len bytes at off; a short file is -EIO (a truncated image). */
int loader_read(int fd, void *buf, size_t len, uint64_t off);

#endif /* FLINT_LOADER_H */
