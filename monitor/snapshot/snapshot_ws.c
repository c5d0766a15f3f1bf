/*
 * snapshot_ws.c - the working-set file (snapshot_ws.h): encoded, checked,
 * recorded from the page tables, prefetched.
 */
#define _GNU_SOURCE
#include "snapshot_ws.h"
#include "snap_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

#define WS_PAGE         4096u
#define PAGEMAP_PRESENT (1ull << 63) /* Documentation/admin-guide/mm/pagemap.rst */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int snapshot_ws_encode(const struct snapshot_ws *ws, void **buf, size_t *len)
{
    size_t n = SNAPSHOT_WS_HEADER_LEN + (size_t)ws->nruns * SNAPSHOT_WS_RUN_LEN + 8;
    uint8_t *p;

    if (ws->nruns > SNAPSHOT_WS_MAX_RUNS)
        return -EINVAL;
    p = calloc(1, n);
    if (!p)
        return -ENOMEM;
    memcpy(p, SNAPSHOT_WS_MAGIC, 8);
    put_le64(p + 8, SNAPSHOT_WS_VERSION | (uint64_t)ws->nruns << 32);
    put_le64(p + 16, ws->mem_size);
    for (uint32_t i = 0; i < ws->nruns; i++) {
        uint8_t *r = p + SNAPSHOT_WS_HEADER_LEN + (size_t)i * SNAPSHOT_WS_RUN_LEN;
        put_le64(r, ws->runs[i].first);
        put_le64(r + 8, ws->runs[i].npages);
    }
    put_le64(p + n - 8, snap_crc64(0, p, n - 8));
    *buf = p;
    *len = n;
    return 0;
}

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "working-set file: %s", what);
    return -EBADMSG;
}

/* Runs sorted, disjoint, non-empty, inside a memory file of `pages`. */
static int check_runs(const struct snapshot_ws_run *runs, uint32_t n, uint64_t pages, char *err,
                      size_t errlen)
{
    uint64_t next = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (!runs[i].npages)
            return bad(err, errlen, "a run of zero pages");
        if (runs[i].first < next)
            return bad(err, errlen, "runs not sorted or overlapping");
        if (runs[i].first > pages || runs[i].npages > pages - runs[i].first)
            return bad(err, errlen, "a run beyond the end of the memory file");
        next = runs[i].first + runs[i].npages;
    }
    return 0;
}

int snapshot_ws_parse(const void *buf, size_t len, uint64_t mem_size, struct snapshot_ws *ws,
                      char *err, size_t errlen)
{
    const uint8_t *p = buf;
    uint64_t word;
    uint32_t n;

    memset(ws, 0, sizeof(*ws));
    if (len < SNAPSHOT_WS_HEADER_LEN + 8 || memcmp(p, SNAPSHOT_WS_MAGIC, 8))
        return bad(err, errlen, "not a flint working-set file");
    word = get_le64(p + 8);
    n = (uint32_t)(word >> 32);
    if ((uint32_t)word != SNAPSHOT_WS_VERSION)
        return bad(err, errlen, "unknown format version");
    if (n > SNAPSHOT_WS_MAX_RUNS ||
        len != SNAPSHOT_WS_HEADER_LEN + (size_t)n * SNAPSHOT_WS_RUN_LEN + 8)
        return bad(err, errlen, "length does not match its number of runs");
    if (get_le64(p + len - 8) != snap_crc64(0, p, len - 8))
        return bad(err, errlen, "CRC mismatch (corrupt)");
    if (get_le64(p + 24))
        return bad(err, errlen, "reserved field not zero");
    if (get_le64(p + 16) != mem_size)
        return bad(err, errlen, "recorded on a memory file of another size");
    ws->runs = calloc(n ? n : 1, sizeof(*ws->runs));
    if (!ws->runs)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *r = p + SNAPSHOT_WS_HEADER_LEN + (size_t)i * SNAPSHOT_WS_RUN_LEN;
        ws->runs[i] = (struct snapshot_ws_run){get_le64(r), get_le64(r + 8)};
    }
    if (check_runs(ws->runs, n, mem_size / WS_PAGE, err, errlen)) {
        snapshot_ws_free(ws);
        return -EBADMSG;
    }
    ws->mem_size = mem_size;
    ws->nruns = n;
    return 0;
}

void snapshot_ws_free(struct snapshot_ws *ws)
{
    free(ws->runs);
    memset(ws, 0, sizeof(*ws));
}

/* Extend the last run by page `pg` or start a new one. */
static int ws_add_page(struct snapshot_ws *ws, uint32_t *cap, uint64_t pg)
{
    struct snapshot_ws_run *last = ws->nruns ? &ws->runs[ws->nruns - 1] : NULL;

    if (last && last->first + last->npages == pg) {
        last->npages++;
        return 0;
    }
    if (ws->nruns == SNAPSHOT_WS_MAX_RUNS)
        return -E2BIG;
    if (ws->nruns == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 64;
        struct snapshot_ws_run *r = realloc(ws->runs, ncap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        ws->runs = r;
        *cap = ncap;
    }
    ws->runs[ws->nruns++] = (struct snapshot_ws_run){pg, 1};
    return 0;
}

int snapshot_ws_from_pagemap(int pagemap_fd, const void *map, uint64_t size, struct snapshot_ws *ws)
{
    uint64_t entries[512];
    uint64_t pages = size / WS_PAGE, base = (uintptr_t)map / WS_PAGE;
    uint32_t cap = 0;
    int rc = 0;

    memset(ws, 0, sizeof(*ws));
    ws->mem_size = size;
    for (uint64_t pg = 0; pg < pages && !rc; pg += 512) {
        size_t want = (size_t)(pages - pg < 512 ? pages - pg : 512) * 8;
        ssize_t got = pread(pagemap_fd, entries, want, (off_t)((base + pg) * 8));
        if (got != (ssize_t)want) {
            rc = got < 0 ? -errno : -EIO;
            break;
        }
        for (size_t i = 0; i < want / 8 && !rc; i++)
            if (entries[i] & PAGEMAP_PRESENT)
                rc = ws_add_page(ws, &cap, pg + i);
    }
    if (rc)
        snapshot_ws_free(ws);
    return rc;
}

int snapshot_ws_prefetch(void *map, const struct snapshot_ws *ws)
{
    int advice = MADV_POPULATE_READ;

    for (uint32_t i = 0; i < ws->nruns; i++) {
        uint8_t *at = (uint8_t *)map + ws->runs[i].first * WS_PAGE;
        size_t len = (size_t)(ws->runs[i].npages * WS_PAGE);
        int rc = madvise(at, len, advice);
        if (rc && errno == EINVAL && advice == MADV_POPULATE_READ) {
            advice = MADV_WILLNEED; /* before Linux 5.14 */
            rc = madvise(at, len, advice);
        }
        if (rc)
            return -errno;
    }
    return 0;
}

int snapshot_ws_path(const char *state_path, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s.ws", state_path);

    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int snapshot_ws_prefetch_file(const char *state_path, void *map, uint64_t size, char *err,
                              size_t errlen)
{
    char path[4096];
    struct snapshot_ws ws;
    struct stat st;
    void *buf = NULL;
    int fd, rc;

    if (snapshot_ws_path(state_path, path, sizeof(path))) {
        snprintf(err, errlen, "working-set file: path too long");
        return -ENAMETOOLONG;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > SNAPSHOT_WS_MAX_FILE) {
        rc = fd < 0 ? -errno : -EBADMSG;
        snprintf(err, errlen, "working-set file %s: %s", path,
                 fd < 0 ? strerror(errno) : "not a regular file of a working set's size");
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    rc = -ENOMEM;
    if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        rc = buf ? -EIO : -ENOMEM;
        snprintf(err, errlen, "working-set file %s: cannot read it", path);
        goto out;
    }
    rc = snapshot_ws_parse(buf, (size_t)st.st_size, size, &ws, err, errlen);
    if (rc)
        goto out;
    rc = snapshot_ws_prefetch(map, &ws);
    if (rc)
        snprintf(err, errlen, "working-set file %s: prefetch: %s", path, strerror(-rc));
    snapshot_ws_free(&ws);
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int snapshot_ws_record_open(struct snapshot_ws_recorder *r, const char *state_path, char *err,
                            size_t errlen)
{
    char path[4096];

    r->pagemap_fd = r->out_fd = -1;
    if (snapshot_ws_path(state_path, path, sizeof(path))) {
        snprintf(err, errlen, "working-set file: path too long");
        return -ENAMETOOLONG;
    }
    r->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (r->pagemap_fd < 0) {
        snprintf(err, errlen, "/proc/self/pagemap: %s", strerror(errno));
        return -errno;
    }
    r->out_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (r->out_fd < 0) {
        int e = errno;
        snprintf(err, errlen, "working-set file %s: %s", path, strerror(e));
        close(r->pagemap_fd);
        r->pagemap_fd = -1;
        return -e;
    }
    return 0;
}

int snapshot_ws_record_write(struct snapshot_ws_recorder *r, const void *map, uint64_t size,
                             uint64_t *pages)
{
    struct snapshot_ws ws;
    void *buf = NULL;
    size_t len = 0;
    int rc;

    *pages = 0;
    rc = snapshot_ws_from_pagemap(r->pagemap_fd, map, size, &ws);
    if (!rc) {
        for (uint32_t i = 0; i < ws.nruns; i++)
            *pages += ws.runs[i].npages;
        rc = snapshot_ws_encode(&ws, &buf, &len);
        snapshot_ws_free(&ws);
    }
    errno = 0;
    if (!rc && (ftruncate(r->out_fd, 0) || pwrite(r->out_fd, buf, len, 0) != (ssize_t)len))
        rc = errno ? -errno : -EIO;
    free(buf);
    close(r->pagemap_fd);
    close(r->out_fd);
    r->pagemap_fd = r->out_fd = -1;
    return rc;
}
