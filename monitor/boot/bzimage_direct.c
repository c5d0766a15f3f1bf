/*
 * bzimage_direct.c - booting a bzImage without its own decompressor.
 *
 * A bzImage's protected-mode part carries the ELF vmlinux, compressed, at
 * payload_offset for payload_length bytes (boot protocol 2.08 and later,
 * Linux Documentation/arch/x86/boot.rst). In a nested sandbox the guest
 * decompressing it is a large part of its boot; flint unpacks it on the
 * host instead (bzimage_unpack.c), keeps the result in a cache keyed by the
 * bzImage's hash (kernel_cache.c), and loads the ELF as it loads any
 * vmlinux (elf_load: its PVH note, or the 64-bit entry at e_entry). The
 * zero page still gets the bzImage's setup header, and the initrd goes
 * where it would go for the bzImage, so the kernel sees the same boot
 * information either way.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* The payload, bounds-checked against the protected-mode part. */
static int find_payload(const struct bzimage_info *bz, const uint8_t *file, const uint8_t **p,
                        size_t *len, char *err, size_t errlen)
{
    uint64_t off = bz->hdr.payload_offset, plen = bz->hdr.payload_length, end;

    if (plen == 0 || !add_ok_u64(off, plen, &end) || end > bz->pm_bytes)
        return loader_fail(
            err, errlen, -ENOEXEC, "payload [0x%llx, +%llu) lies outside the %llu bytes of kernel",
            (unsigned long long)off, (unsigned long long)plen, (unsigned long long)bz->pm_bytes);
    *p = file + bz->setup_bytes + off;
    *len = (size_t)plen;
    return 0;
}

/* An fd holding the unpacked ELF: a new cache entry, or a memfd when there
 * is no cache or it cannot be written. */
static int elf_fd(const struct kernel_load_opts *opts, const char *key, const uint8_t *elf,
                  size_t len, bool *stored)
{
    int fd;

    *stored = false;
    if (opts->cache_dir) {
        fd = kernel_cache_store(opts->cache_dir, key, elf, len, opts->cache_max);
        if (fd >= 0) {
            *stored = true;
            return fd;
        }
    }
    fd = memfd_create("flint-vmlinux", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, elf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int rc = n < 0 ? -errno : -EIO;
            close(fd);
            return rc;
        }
        off += (size_t)n;
    }
    return fd;
}

/* A cache hit: the entry, revalidated by elf_load. A corrupt entry is
 * dropped (and rebuilt by the caller). Returns 0 on a hit. */
static int try_cache(const struct guest_mem *mem, const struct kernel_load_opts *opts,
                     const char *key, struct kernel_image *img, bool *dropped)
{
    char err[LOADER_ERR_LEN];
    int fd, rc;

    *dropped = false;
    if (!opts->cache_dir || (fd = kernel_cache_open(opts->cache_dir, key)) < 0)
        return -ENOENT;
    rc = elf_load(mem, fd, img, err, sizeof(err));
    close(fd);
    if (rc) {
        kernel_cache_drop(opts->cache_dir, key);
        *dropped = true;
    }
    return rc;
}

/* Unpack the payload and load the ELF; 1 to fall back (note says why). */
static int unpack_and_load(const struct guest_mem *mem, const struct bzimage_info *bz,
                           const uint8_t *file, const struct kernel_load_opts *opts,
                           const char *key, struct kernel_image *img, char *note, size_t notelen,
                           char *err, size_t errlen)
{
    size_t out_max = MIN((size_t)bz->hdr.init_size, (size_t)BZIMAGE_UNPACK_MAX), plen = 0;
    size_t elf_len = 0;
    const uint8_t *payload = NULL;
    uint8_t *elf = NULL;
    char why[LOADER_ERR_LEN];
    bool stored;
    int fd, rc;

    if ((rc = find_payload(bz, file, &payload, &plen, err, errlen)))
        return rc;
    if (out_max > mem->size)
        out_max = (size_t)mem->size;
    rc = bzimage_unpack(payload, plen, out_max, &elf, &elf_len, err, errlen);
    if (rc == -EOPNOTSUPP) {
        snprintf(note, notelen, "%s", err);
        return 1;
    }
    if (rc)
        return rc;
    fd = elf_fd(opts, key, elf, elf_len, &stored);
    free(elf);
    if (fd < 0) {
        snprintf(note, notelen, "cannot hold the unpacked vmlinux: %s", strerror(-fd));
        return 1;
    }
    rc = elf_load(mem, fd, img, why, sizeof(why));
    close(fd);
    if (rc) {
        if (stored)
            kernel_cache_drop(opts->cache_dir, key);
        snprintf(note, notelen, "the unpacked vmlinux cannot be loaded: %s", why);
        return 1;
    }
    snprintf(note, notelen, "booting the unpacked ELF vmlinux (%s payload, %zu bytes; %s)",
             bzimage_format_name(bzimage_payload_format(payload, plen)), elf_len,
             !opts->cache_dir ? "unpacked in memory, no cache"
             : stored         ? "cache miss, stored"
                              : "cache miss, not stored");
    return 0;
}

static int read_whole(int fd, uint64_t size, uint8_t **out, char *err, size_t errlen)
{
    int rc;

    if (size > BZIMAGE_UNPACK_MAX)
        return loader_fail(err, errlen, -EFBIG, "a bzImage of %llu bytes is too large",
                           (unsigned long long)size);
    *out = malloc(size);
    if (!*out)
        return loader_fail(err, errlen, -ENOMEM, "cannot allocate %llu bytes",
                           (unsigned long long)size);
    rc = loader_read(fd, *out, size, 0);
    if (rc) {
        free(*out);
        return loader_fail(err, errlen, rc, "cannot read the kernel: %s", strerror(-rc));
    }
    return 0;
}

static int load_unpacked(const struct guest_mem *mem, int fd, const struct kernel_load_opts *opts,
                         struct kernel_image *img, char *note, size_t notelen, char *err,
                         size_t errlen)
{
    struct bzimage_info bz;
    char key[KERNEL_CACHE_KEY_LEN] = "";
    uint8_t *file = NULL;
    bool dropped = false;
    gpa_t elf_end;
    int rc;

    note[0] = '\0';
    if ((rc = bzimage_check(mem, fd, &bz, err, errlen)) ||
        (rc = read_whole(fd, bz.file_size, &file, err, errlen)))
        return rc;
    if (opts->cache_dir)
        kernel_cache_key(file, bz.file_size, key);
    if (try_cache(mem, opts, key, img, &dropped) == 0) {
        snprintf(note, notelen, "booting the unpacked ELF vmlinux (cache hit %s)", key);
    } else {
        rc = unpack_and_load(mem, &bz, file, opts, key, img, note, notelen, err, errlen);
        if (rc == 0 && dropped)
            strncat(note, "; replaced a corrupt cache entry", notelen - strlen(note) - 1);
    }
    free(file);
    if (rc)
        return rc;
    elf_end = img->load_end;
    bzimage_describe(&bz, img);
    if (elf_end > img->load_end)
        img->load_end = elf_end;
    img->unpacked = true;
    return 0;
}

int bzimage_load_unpacked(const struct guest_mem *mem, int fd, const struct kernel_load_opts *o,
                          struct kernel_image *img, char *note, size_t notelen, char *err,
                          size_t errlen)
{
    /* The default directory is looked up (and created) only for a
     * bzImage: an ELF kernel never touches it. */
    char dir[PATH_MAX];
    struct kernel_load_opts resolved = *o, *opts = &resolved;

    if (!opts->cache_dir && opts->cache_default && kernel_cache_dir(dir, sizeof(dir)) == 0)
        opts->cache_dir = dir;
    return load_unpacked(mem, fd, opts, img, note, notelen, err, errlen);
}
