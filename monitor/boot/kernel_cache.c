/*
 * kernel_cache.c - unpacked bzImage payloads kept on disk, keyed by the
 * SHA-256 of the whole bzImage, so that repeated boots of one kernel skip
 * the decompression.
 *
 * The key is a cryptographic hash because the cache may be shared by VMs
 * whose kernels come from different people: with a fast non-cryptographic
 * hash, a crafted bzImage could collide with another user's kernel and boot
 * its owner's VM with the crafted payload. Nothing in the cache is trusted:
 * the directory must belong to flint's user and be closed to others, every
 * entry is revalidated as an ELF image when it is loaded, and an entry is
 * written to a temporary file and renamed, so a reader never sees half of
 * one.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SUFFIX       ".elf"
#define CACHE_TEMP_PREFIX  ".unpack-"
#define CACHE_TEMP_MAX_AGE 3600 /* s: older temporary files are a crash's leftovers */

void kernel_cache_key(const uint8_t *data, size_t len, char key[KERNEL_CACHE_KEY_LEN])
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];

    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof(digest), digest);
    for (size_t i = 0; i < sizeof(digest); i++)
        snprintf(key + 2 * i, 3, "%02x", digest[i]);
}

/* mkdir that accepts an existing directory, which must then be ours and
 * closed to group and others. */
static int cache_mkdir(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        return -EPERM;
    return 0;
}

int kernel_cache_dir(char *buf, size_t len)
{
    const char *env = getenv("FLINT_KERNEL_CACHE"), *base;
    char parent[PATH_MAX];
    int n;

    if (env && *env) {
        if (snprintf(buf, len, "%s", env) >= (int)len)
            return -ENAMETOOLONG;
        return cache_mkdir(buf);
    }
    if (geteuid() == 0) {
        base = "/var/cache";
    } else if ((base = getenv("XDG_CACHE_HOME")) && *base) {
    } else if ((base = getenv("HOME")) && *base) {
        if (snprintf(parent, sizeof(parent), "%s/.cache", base) >= (int)sizeof(parent))
            return -ENAMETOOLONG;
        base = parent;
    } else {
        return -ENOENT; /* a jail: no home, no cache */
    }
    /* Only the last two components are created: a base that does not
     * exist (a jail has no /var/cache) means no cache. */
    n = snprintf(buf, len, "%s/flint", base);
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    if (access(base, W_OK) < 0)
        return -errno;
    n = cache_mkdir(buf);
    if (n)
        return n;
    if (strlen(buf) + sizeof("/unpacked") > len)
        return -ENAMETOOLONG;
    strcat(buf, "/unpacked");
    return cache_mkdir(buf);
}

static int entry_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int kernel_cache_open(const char *dir, const char *key)
{
    char path[PATH_MAX], name[KERNEL_CACHE_KEY_LEN + sizeof(CACHE_SUFFIX)];
    struct stat st;
    int fd;

    snprintf(name, sizeof(name), "%s%s", key, CACHE_SUFFIX);
    if (entry_path(path, sizeof(path), dir, name))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
        close(fd);
        return -EPERM;
    }
    /* Touch it: eviction drops the least recently used entries first. */
    futimens(fd, NULL);
    return fd;
}

void kernel_cache_drop(const char *dir, const char *key)
{
    char path[PATH_MAX], name[KERNEL_CACHE_KEY_LEN + sizeof(CACHE_SUFFIX)];

    snprintf(name, sizeof(name), "%s%s", key, CACHE_SUFFIX);
    if (!entry_path(path, sizeof(path), dir, name))
        unlink(path);
}

/* A temporary file a crashed flint left behind (more than an hour old) is
 * removed; true if `name` was one. */
static bool is_stale_temp(DIR *d, const char *name)
{
    struct stat st;

    if (strncmp(name, CACHE_TEMP_PREFIX, strlen(CACHE_TEMP_PREFIX)) ||
        fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    if (time(NULL) - st.st_mtime > CACHE_TEMP_MAX_AGE)
        unlinkat(dirfd(d), name, 0);
    return true;
}

/* Remove the least recently used entries until `incoming` more bytes fit
 * under `cap`. */
static void cache_evict(const char *dir, uint64_t incoming, uint64_t cap)
{
    for (;;) {
        DIR *d = opendir(dir);
        struct dirent *de;
        uint64_t total = incoming;
        struct timespec oldest = {0};
        char victim[NAME_MAX + 1] = "";

        if (!d)
            return;
        while ((de = readdir(d))) {
            struct stat st;
            size_t l = strlen(de->d_name);
            if (is_stale_temp(d, de->d_name))
                continue;
            if (l <= strlen(CACHE_SUFFIX) ||
                strcmp(de->d_name + l - strlen(CACHE_SUFFIX), CACHE_SUFFIX) ||
                fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                continue;
            total += (uint64_t)st.st_size;
            if (!victim[0] || st.st_mtim.tv_sec < oldest.tv_sec ||
                (st.st_mtim.tv_sec == oldest.tv_sec && st.st_mtim.tv_nsec < oldest.tv_nsec)) {
                oldest = st.st_mtim;
                snprintf(victim, sizeof(victim), "%s", de->d_name);
            }
        }
        if (total <= cap || !victim[0] || unlinkat(dirfd(d), victim, 0) < 0) {
            closedir(d);
            return;
        }
        closedir(d);
    }
}

int kernel_cache_store(const char *dir, const char *key, const uint8_t *data, size_t len,
                       uint64_t cap)
{
    char tmp[PATH_MAX], path[PATH_MAX], name[KERNEL_CACHE_KEY_LEN + sizeof(CACHE_SUFFIX)];
    int fd, rc = 0;

    if (len > cap)
        return -EFBIG;
    cache_evict(dir, len, cap);
    snprintf(name, sizeof(name), "%s%s", key, CACHE_SUFFIX);
    if (entry_path(path, sizeof(path), dir, name) ||
        entry_path(tmp, sizeof(tmp), dir, CACHE_TEMP_PREFIX "XXXXXX"))
        return -ENAMETOOLONG;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (size_t off = 0; off < len && !rc;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (!rc && (fchmod(fd, 0600) < 0 || fsync(fd) < 0))
        rc = -errno;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    /* The loader reads this descriptor: the bytes just written, not
     * whatever the name points at by now. */
    if (lseek(fd, 0, SEEK_SET) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}
