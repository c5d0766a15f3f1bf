/*
 * loader.c - what every kernel format shares: telling formats apart, the
 * initrd, and the helpers the loaders use.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <flint-abi.h>

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int loader_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

int loader_read(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int kernel_load(const struct guest_mem *mem, int fd, struct kernel_image *img, char *err,
                size_t errlen)
{
    const struct kernel_load_opts none = {0};
    char note[KERNEL_NOTE_LEN];

    return kernel_load_with(mem, fd, &none, img, note, sizeof(note), err, errlen);
}

/* A bzImage: unpacked on the host when asked, else (or when its payload
 * cannot boot that way) as it is. */
static int load_bzimage(const struct guest_mem *mem, int fd, const struct kernel_load_opts *opts,
                        struct kernel_image *img, char *note, size_t notelen, char *err,
                        size_t errlen)
{
    char why[KERNEL_NOTE_LEN];
    int rc;

    if (!opts->unpack_bzimage)
        return bzimage_load(mem, fd, img, err, errlen);
    rc = bzimage_load_unpacked(mem, fd, opts, img, note, notelen, err, errlen);
    if (rc != 1)
        return rc;
    snprintf(why, sizeof(why), "%s", note);
    snprintf(note, notelen, "booting the bzImage as it is (its decompressor runs in the guest): %s",
             why);
    return bzimage_load(mem, fd, img, err, errlen);
}

int kernel_load_with(const struct guest_mem *mem, int fd, const struct kernel_load_opts *opts,
                     struct kernel_image *img, char *note, size_t notelen, char *err, size_t errlen)
{
    uint8_t magic[SELFMAG];
    struct linux_setup_header hdr;
    struct stat st;

    note[0] = '\0';

    if (fstat(fd, &st) < 0)
        return loader_fail(err, errlen, -errno, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return loader_fail(err, errlen, -EINVAL, "not a regular file");
    if (st.st_size >= SELFMAG && loader_read(fd, magic, SELFMAG, 0) == 0 &&
        memcmp(magic, ELFMAG, SELFMAG) == 0)
        return elf_load(mem, fd, img, err, errlen);
    if ((uint64_t)st.st_size >= LINUX_SETUP_HEADER_OFFSET + sizeof(hdr) &&
        loader_read(fd, &hdr, sizeof(hdr), LINUX_SETUP_HEADER_OFFSET) == 0 &&
        hdr.header == LINUX_HDRS_MAGIC)
        return load_bzimage(mem, fd, opts, img, note, notelen, err, errlen);
    if (st.st_size < SELFMAG)
        return loader_fail(err, errlen, -ENOEXEC, "too small to be a kernel (%lld bytes)",
                           (long long)st.st_size);
    return loader_fail(err, errlen, -ENOEXEC,
                       "neither an ELF kernel (no ELF magic) nor a bzImage (no \"HdrS\" setup "
                       "header at 0x202)");
}

int initrd_load(const struct guest_mem *mem, int fd, const struct kernel_image *img,
                struct initrd_placement *out, char *err, size_t errlen)
{
    struct stat st;
    uint64_t size, top = guest_mem_low_end(mem), addr;
    int rc;

    if (img->initrd_end_max && img->initrd_end_max < top)
        top = img->initrd_end_max;
    if (fstat(fd, &st) < 0)
        return loader_fail(err, errlen, -errno, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return loader_fail(err, errlen, -EINVAL, "not a regular file");
    size = (uint64_t)st.st_size;
    if (size == 0)
        return loader_fail(err, errlen, -EINVAL, "initrd is empty");
    if (size > top)
        return loader_fail(err, errlen, -ENOMEM, "initrd (%llu bytes) is larger than low guest RAM",
                           (unsigned long long)size);
    addr = ALIGN_DOWN(top - size, 4096);
    if (addr < img->load_end || addr < FLINT_HIMEM_START)
        return loader_fail(err, errlen, -ENOMEM,
                           "initrd (%llu bytes) does not fit between the kernel (ends at 0x%llx) "
                           "and the top of low RAM (0x%llx); give the VM more memory",
                           (unsigned long long)size, (unsigned long long)img->load_end,
                           (unsigned long long)top);
    rc = loader_read(fd, guest_mem_slice(mem, addr, size), size, 0);
    if (rc)
        return loader_fail(err, errlen, rc, "cannot read initrd: %s", strerror(-rc));
    out->addr = addr;
    out->size = size;
    return 0;
}
