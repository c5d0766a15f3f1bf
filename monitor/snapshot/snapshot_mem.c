/*
 * snapshot_mem.c - guest RAM into a memory file: the RAM regions back to
 * back (their file_offset), a page at its own offset, so a restore maps
 * the file as it is and a Diff lands over a Full at the same places.
 */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;

    for (unsigned i = 0; i < SNAPSHOT_PAGE / sizeof(*w); i++)
        if (w[i])
            return false;
    return true;
}

static int write_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : (size_t)len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static bool page_wanted(const struct guest_region *g, uint64_t page, enum snapshot_type type,
                        const uint64_t *dirty)
{
    uint64_t bit = (g->file_offset / SNAPSHOT_PAGE) + page;

    if (type == SNAPSHOT_DIFF)
        /* Zero or not: a Diff must carry a page the guest cleared. */
        return dirty[bit / 64] >> (bit % 64) & 1;
    return !page_is_zero(g->host + page * SNAPSHOT_PAGE);
}

/* The first page at or after `page` that may hold data: RAM backed by a
 * memfd (not a snapshot's file mapped copy-on-write) has holes where the
 * guest never wrote, and reading them through the mapping would allocate
 * every page of RAM. */
static uint64_t next_data(const struct guest_mem *mem, const struct guest_region *g, uint64_t page)
{
    off_t at;

    if (mem->cow || mem->fd < 0)
        return page;
    at = lseek(mem->fd, (off_t)(g->file_offset + page * SNAPSHOT_PAGE), SEEK_DATA);
    if (at < 0) /* ENXIO: no data after it */
        return errno == ENXIO ? g->size / SNAPSHOT_PAGE : page;
    if ((uint64_t)at < g->file_offset)
        return page;
    return ((uint64_t)at - g->file_offset) / SNAPSHOT_PAGE;
}

/* Runs of wanted pages, one pwrite each. */
static int write_region(const struct guest_mem *mem, const struct guest_region *g, int fd,
                        enum snapshot_type type, const uint64_t *dirty)
{
    uint64_t pages = g->size / SNAPSHOT_PAGE, start = 0;
    int rc;

    while (start < pages) {
        if (type == SNAPSHOT_FULL && (start = next_data(mem, g, start)) >= pages)
            break;
        uint64_t end;
        if (!page_wanted(g, start, type, dirty)) {
            start++;
            continue;
        }
        for (end = start + 1; end < pages && page_wanted(g, end, type, dirty); end++) {
        }
        rc = write_all(fd, g->host + start * SNAPSHOT_PAGE, (end - start) * SNAPSHOT_PAGE,
                       g->file_offset + start * SNAPSHOT_PAGE);
        if (rc)
            return rc;
        start = end;
    }
    return 0;
}

int snapshot_mem_write(const struct guest_mem *mem, int fd, enum snapshot_type type,
                       const uint64_t *dirty)
{
    int rc;

    if (type == SNAPSHOT_DIFF && !dirty)
        return -EINVAL;
    /* The file's size is the RAM's, whatever was written into it. */
    if (ftruncate(fd, (off_t)mem->size) < 0)
        return -errno;
    for (unsigned i = 0; i < mem->nregions; i++)
        if ((rc = write_region(mem, &mem->regions[i], fd, type, dirty)))
            return rc;
    return 0;
}
