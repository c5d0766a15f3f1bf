/*
 * guest_mem.c - guest RAM (a memfd or anonymous memory) and the one address
 * translator.
 */
#define _GNU_SOURCE
#include "guest_mem.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdlib.h>
#include <linux/memfd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int guest_mem_create(struct guest_mem *mem, uint64_t size)
{
    return guest_mem_create_pages(mem, size, GUEST_MEM_PAGES_4K);
}

#define HUGE_2M (2ull << 20)

/* A memfd of 4 KiB or hugetlb pages, mapped shared. */
static int map_memfd(struct guest_mem *mem, uint64_t size, bool huge)
{
    mem->fd =
        memfd_create("flint-guest-ram", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
    if (mem->fd < 0)
        return -errno;
    if (ftruncate(mem->fd, (off_t)size) < 0)
        return -errno;
    /* 4 KiB pages: NORESERVE, so RAM the guest never touches costs the host
     * nothing. Huge pages: a shared hugetlb mapping reserves every page
     * now (mmap fails with ENOMEM if the pool is short); without that, a
     * guest touching a page the pool cannot supply would kill flint with
     * SIGBUS. Reserved pages are still only faulted in when touched. */
    mem->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? 0 : MAP_NORESERVE),
                    mem->fd, 0);
    if (mem->map == MAP_FAILED) {
        mem->map = NULL;
        return -errno;
    }
    return 0;
}

/* Private anonymous memory on a 2 MiB boundary, asking for transparent huge
 * pages. KVM maps a guest 2 MiB frame with one huge page only when the host
 * address has the same offset within 2 MiB as the guest address, and the
 * regions start at 2 MiB-aligned guest addresses: so map 2 MiB more than
 * needed and trim to an aligned start. */
static int map_anonymous_thp(struct guest_mem *mem, uint64_t size)
{
    uint8_t *raw, *start;
    uint64_t head, tail;

    raw = mmap(NULL, size + HUGE_2M, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return -errno;
    start = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
    head = (uint64_t)(start - raw);
    tail = HUGE_2M - head;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap(start + size, tail);
    mem->map = start;
    /* EINVAL: a kernel without THP. The memory still works, in 4 KiB pages. */
    if (madvise(start, size, MADV_HUGEPAGE) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

static void layout_regions(struct guest_mem *mem, uint64_t size)
{
    uint64_t low = size < FLINT_MMIO_GAP_START ? size : FLINT_MMIO_GAP_START;

    mem->regions[0] =
        (struct guest_region){.gpa = 0, .size = low, .file_offset = 0, .host = mem->map};
    mem->nregions = 1;
    if (size > low) {
        mem->regions[1] = (struct guest_region){.gpa = FLINT_MMIO_GAP_END,
                                                .size = size - low,
                                                .file_offset = low,
                                                .host = mem->map + low};
        mem->nregions = 2;
    }
}

int guest_mem_create_pages(struct guest_mem *mem, uint64_t size, enum guest_mem_pages pages)
{
    bool huge = pages == GUEST_MEM_PAGES_2M;
    int rc;

    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
    mem->pages = pages;
    if (size < GUEST_MEM_MIN_BYTES || size > GUEST_MEM_MAX_BYTES || size % 4096 ||
        (huge && size % HUGE_2M) ||
        (pages != GUEST_MEM_PAGES_4K && !huge && pages != GUEST_MEM_PAGES_THP))
        return -EINVAL;

    rc = pages == GUEST_MEM_PAGES_THP ? map_anonymous_thp(mem, size) : map_memfd(mem, size, huge);
    /* The size is set before a failure can leave a mapping to undo. */
    mem->size = size;
    if (rc) {
        guest_mem_destroy(mem);
        return rc;
    }
    layout_regions(mem, size);
    return 0;
}

/* Regions around the MMIO gap, at their offsets in the backing file. */
static void lay_out(struct guest_mem *mem, uint64_t size)
{
    uint64_t low = size < FLINT_MMIO_GAP_START ? size : FLINT_MMIO_GAP_START;

    mem->size = size;
    mem->regions[0] =
        (struct guest_region){.gpa = 0, .size = low, .file_offset = 0, .host = mem->map};
    mem->nregions = 1;
    if (size > low) {
        mem->regions[1] = (struct guest_region){.gpa = FLINT_MMIO_GAP_END,
                                                .size = size - low,
                                                .file_offset = low,
                                                .host = mem->map + low};
        mem->nregions = 2;
    }
}

int guest_mem_map_file(struct guest_mem *mem, int fd, uint64_t size)
{
    memset(mem, 0, sizeof(*mem));
    mem->fd = fd;
    mem->pages = GUEST_MEM_PAGES_4K;
    if (size < GUEST_MEM_MIN_BYTES || size > GUEST_MEM_MAX_BYTES || size % 4096) {
        guest_mem_destroy(mem);
        return -EINVAL;
    }
    /* Private: the guest's writes must never reach the snapshot, which
     * other VMs may be restored from at the same time. */
    mem->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (mem->map == MAP_FAILED) {
        int err = -errno;
        mem->map = NULL;
        guest_mem_destroy(mem);
        return err;
    }
    lay_out(mem, size);
    mem->cow = 1;
    return 0;
}

int guest_mem_map_anon(struct guest_mem *mem, uint64_t size)
{
    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
    mem->pages = GUEST_MEM_PAGES_4K;
    if (size < GUEST_MEM_MIN_BYTES || size > GUEST_MEM_MAX_BYTES || size % 4096)
        return -EINVAL;
    mem->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
    if (mem->map == MAP_FAILED) {
        mem->map = NULL;
        return -errno;
    }
    lay_out(mem, size);
    mem->cow = 1;
    return 0;
}

size_t guest_mem_bitmap_bytes(uint64_t size)
{
    return (size_t)((size / 4096 + 63) / 64 * 8);
}

int guest_mem_track_dirty(struct guest_mem *mem)
{
    if (!mem->dirty && !(mem->dirty = calloc(1, guest_mem_bitmap_bytes(mem->size))))
        return -ENOMEM;
    return 0;
}

void guest_mem_take_dirty(struct guest_mem *mem, uint64_t *out)
{
    size_t words = guest_mem_bitmap_bytes(mem->size) / 8;

    if (!mem->dirty)
        return;
    for (size_t i = 0; i < words; i++)
        out[i] |= __atomic_exchange_n(&mem->dirty[i], 0, __ATOMIC_RELAXED);
}

void guest_mem_destroy(struct guest_mem *mem)
{
    free(mem->dirty);
    if (mem->map)
        munmap(mem->map, mem->size);
    if (mem->fd >= 0)
        close(mem->fd);
    memset(mem, 0, sizeof(*mem));
    mem->fd = -1;
}

static void mark_dirty(uint64_t *bitmap, uint64_t off, uint64_t len)
{
    for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
        __atomic_fetch_or(&bitmap[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}

void *guest_mem_slice(const struct guest_mem *mem, gpa_t gpa, uint64_t len)
{
    if (len == 0)
        len = 1;
    for (unsigned i = 0; i < mem->nregions; i++) {
        const struct guest_region *r = &mem->regions[i];
        uint64_t off = gpa - r->gpa;
        /* Unsigned arithmetic: gpa below the region wraps to a huge offset. */
        if (gpa >= r->gpa && off < r->size && len <= r->size - off) {
            if (mem->dirty)
                mark_dirty(mem->dirty, r->file_offset + off, len);
            return r->host + off;
        }
    }
    return NULL;
}

int guest_mem_write(const struct guest_mem *mem, gpa_t gpa, const void *src, uint64_t len)
{
    void *dst = guest_mem_slice(mem, gpa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

int guest_mem_read(const struct guest_mem *mem, gpa_t gpa, void *dst, uint64_t len)
{
    const void *src = guest_mem_slice(mem, gpa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

gpa_t guest_mem_low_end(const struct guest_mem *mem)
{
    return mem->nregions ? mem->regions[0].size : 0;
}
