/*
 * bzimage.c - Linux bzImage loader (Linux Documentation/arch/x86/boot.rst,
 * boot protocol 2.12 and later, 64-bit entry).
 *
 * A bzImage is the real-mode setup code, whose first sector carries the
 * setup header, followed by the protected-mode part: a self-decompressing
 * kernel. flint skips the real-mode code, loads the protected-mode part at
 * 1 MiB and enters it at +0x200 in long mode, as 64-bit boot loaders do.
 * The decompressor then needs init_size bytes from the address it runs at
 * (the load address rounded up to kernel_alignment, at least pref_address
 * for a relocatable kernel; pref_address otherwise): that whole buffer
 * must be RAM.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define BZIMAGE_LOAD_ADDR FLINT_HIMEM_START
#define SECTOR_SIZE       512u

/* Header checks that need no file size: magic numbers, version, flags. */
static int check_header(const struct linux_setup_header *h, char *err, size_t errlen)
{
    if (h->boot_flag != LINUX_BOOT_FLAG || h->header != LINUX_HDRS_MAGIC)
        return loader_fail(err, errlen, -ENOEXEC, "not a bzImage (boot_flag 0x%04x, header 0x%08x)",
                           h->boot_flag, h->header);
    if (h->version < LINUX_MIN_PROTOCOL)
        return loader_fail(err, errlen, -ENOEXEC,
                           "boot protocol %u.%02u is older than 2.12, the first with a 64-bit "
                           "entry flag",
                           h->version >> 8, h->version & 0xff);
    if (!(h->loadflags & LINUX_LOADED_HIGH))
        return loader_fail(err, errlen, -ENOEXEC,
                           "a zImage (loaded low), not a bzImage; flint boots bzImage");
    if (!(h->xloadflags & LINUX_XLF_KERNEL_64))
        return loader_fail(err, errlen, -ENOEXEC,
                           "no 64-bit entry point (XLF_KERNEL_64 is clear): a 32-bit kernel?");
    if (h->relocatable_kernel &&
        (h->kernel_alignment < 4096 || (h->kernel_alignment & (h->kernel_alignment - 1))))
        return loader_fail(err, errlen, -ENOEXEC,
                           "kernel_alignment 0x%x is not a power of two of at least 4 KiB",
                           h->kernel_alignment);
    if (h->init_size == 0)
        return loader_fail(err, errlen, -ENOEXEC, "init_size is 0");
    if (h->syssize == 0)
        return loader_fail(err, errlen, -ENOEXEC, "syssize is 0: no protected-mode code");
    return 0;
}

/* Where the decompressor will run, and so where init_size bytes must be
 * free: arch/x86/boot/compressed/head_64.S rounds the load address up to
 * kernel_alignment and never goes below LOAD_PHYSICAL_ADDR, which is what
 * pref_address holds. */
static bool run_address(const struct linux_setup_header *h, uint64_t *run)
{
    uint64_t a = BZIMAGE_LOAD_ADDR;

    if (!h->relocatable_kernel) {
        *run = h->pref_address;
        return true;
    }
    if (!add_ok_u64(a, h->kernel_alignment - 1, &a))
        return false;
    a &= ~((uint64_t)h->kernel_alignment - 1);
    *run = a > h->pref_address ? a : h->pref_address;
    return true;
}

int bzimage_check(const struct guest_mem *mem, int fd, struct bzimage_info *bz, char *err,
                  size_t errlen)
{
    struct linux_setup_header h;
    struct stat st;
    uint64_t fsize, setup_bytes, pm_bytes, run, run_end, low_end = guest_mem_low_end(mem);
    unsigned hdr_len;
    uint8_t jump_len;
    int rc;

    if (fstat(fd, &st) < 0)
        return loader_fail(err, errlen, -errno, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return loader_fail(err, errlen, -EINVAL, "not a regular file");
    fsize = (uint64_t)st.st_size;
    if (fsize < LINUX_SETUP_HEADER_OFFSET + sizeof(h))
        return loader_fail(err, errlen, -ENOEXEC, "too small to be a bzImage (%llu bytes)",
                           (unsigned long long)fsize);
    memset(&h, 0, sizeof(h));
    rc = loader_read(fd, &h, sizeof(h), LINUX_SETUP_HEADER_OFFSET);
    if (rc)
        return loader_fail(err, errlen, rc, "cannot read the setup header: %s", strerror(-rc));
    rc = check_header(&h, err, errlen);
    if (rc)
        return rc;
    /* The header ends at 0x202 + the jump's offset byte; fields beyond it
     * belong to a newer protocol than the kernel speaks and must read as 0
     * (boot.rst "Details of header fields"). */
    jump_len = (uint8_t)(h.jump >> 8);
    hdr_len = 0x202u + jump_len - LINUX_SETUP_HEADER_OFFSET;
    if (hdr_len < offsetof(struct linux_setup_header, kernel_info_offset))
        return loader_fail(err, errlen, -ENOEXEC,
                           "setup header ends at 0x%x, before the 2.12 fields", 0x202u + jump_len);
    if (hdr_len < sizeof(h))
        memset((uint8_t *)&h + hdr_len, 0, sizeof(h) - hdr_len);

    setup_bytes =
        ((uint64_t)(h.setup_sects ? h.setup_sects : LINUX_DEFAULT_SETUP_SECTS) + 1) * SECTOR_SIZE;
    if (fsize <= setup_bytes)
        return loader_fail(err, errlen, -ENOEXEC,
                           "truncated: %llu bytes, but the setup code alone takes %llu",
                           (unsigned long long)fsize, (unsigned long long)setup_bytes);
    pm_bytes = fsize - setup_bytes;
    if ((uint64_t)h.syssize * 16 > pm_bytes)
        return loader_fail(err, errlen, -ENOEXEC,
                           "truncated: the header promises %llu bytes of kernel after the setup "
                           "code, the file has %llu",
                           (unsigned long long)h.syssize * 16, (unsigned long long)pm_bytes);
    pm_bytes = (uint64_t)h.syssize * 16;
    if (pm_bytes <= LINUX_ENTRY64_OFFSET)
        return loader_fail(err, errlen, -ENOEXEC,
                           "%llu bytes of kernel cannot hold the 64-bit entry at +0x%x",
                           (unsigned long long)pm_bytes, LINUX_ENTRY64_OFFSET);

    if (!run_address(&h, &run) || run < FLINT_HIMEM_START ||
        !add_ok_u64(run, h.init_size, &run_end))
        return loader_fail(err, errlen, -ENOEXEC,
                           "the kernel would run at 0x%llx, below 1 MiB or wrapping",
                           (unsigned long long)run);
    if (run_end > low_end || BZIMAGE_LOAD_ADDR + pm_bytes > low_end)
        return loader_fail(err, errlen, -ENOMEM,
                           "the kernel needs RAM up to 0x%llx (init_size %u bytes from 0x%llx), "
                           "but RAM below 4 GiB ends at 0x%llx; give the VM more memory",
                           (unsigned long long)(run_end > BZIMAGE_LOAD_ADDR + pm_bytes
                                                    ? run_end
                                                    : BZIMAGE_LOAD_ADDR + pm_bytes),
                           h.init_size, (unsigned long long)run, (unsigned long long)low_end);

    bz->hdr = h;
    bz->file_size = fsize;
    bz->setup_bytes = setup_bytes;
    bz->pm_bytes = pm_bytes;
    bz->run_end = run_end;
    return 0;
}

void bzimage_describe(const struct bzimage_info *bz, struct kernel_image *img)
{
    const struct linux_setup_header *h = &bz->hdr;
    uint64_t pm_end = BZIMAGE_LOAD_ADDR + bz->pm_bytes;

    img->load_end = bz->run_end > pm_end ? bz->run_end : pm_end;
    img->initrd_end_max = (h->xloadflags & LINUX_XLF_CAN_BE_LOADED_ABOVE_4G)
                              ? FLINT_MMIO_GAP_START
                              : (uint64_t)h->initrd_addr_max + 1;
    img->cmdline_max =
        h->cmdline_size < FLINT_CMDLINE_MAX - 1 ? h->cmdline_size : FLINT_CMDLINE_MAX - 1;
    img->has_setup_header = true;
    img->hdr = *h;
}

int bzimage_load(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
                 size_t errlen)
{
    struct bzimage_info bz;
    int rc = bzimage_check(mem, fd, &bz, err, errlen);

    if (rc)
        return rc;
    /* Validated: load the protected-mode part. */
    rc = loader_read(fd, guest_mem_slice(mem, BZIMAGE_LOAD_ADDR, bz.pm_bytes), bz.pm_bytes,
                     bz.setup_bytes);
    if (rc)
        return loader_fail(err, errlen, rc, "cannot read the kernel: %s", strerror(-rc));

    memset(img, 0, sizeof(*img));
    img->protocol = BOOT_LINUX64;
    img->entry = BZIMAGE_LOAD_ADDR + LINUX_ENTRY64_OFFSET;
    img->load_start = BZIMAGE_LOAD_ADDR;
    bzimage_describe(&bz, img);
    return 0;
}
