/*
 * guest_mem.h - guest physical memory.
 *
 * Guest RAM is one mapping with one of three backings:
 *  - GUEST_MEM_PAGES_4K: a memfd of 4 KiB pages mapped shared (huge_pages
 *    "None"). Shared memory (shmem) gets no transparent huge pages on a
 *    host with shmem_enabled "never" (Debian's default), so KVM maps the
 *    guest 4 KiB at a time: one nested page fault per page it touches.
 *  - GUEST_MEM_PAGES_2M: a memfd of 2 MiB hugetlb pages (huge_pages "2M"),
 *    which the host must have reserved (vm.nr_hugepages): they are claimed
 *    when the memory is created, so a guest never finds a page missing.
 *  - GUEST_MEM_PAGES_THP: private anonymous memory with MADV_HUGEPAGE
 *    (huge_pages "Transparent", as Firecracker names it; QEMU's default
 *    RAM is the same), 2 MiB aligned so the host's transparent huge pages
 *    line up with the guest's 2 MiB frames and KVM can map them whole. No
 *    reservation: the kernel gives a huge page where it has one and 4 KiB
 *    pages otherwise, and (MAP_NORESERVE) nothing is claimed up front.
 * Snapshots: a snapshot writes guest RAM out from `map`, page by page, so
 * every backing serves; only a memfd backing also has `fd` (anonymous
 * memory has fd -1), so nothing may assume a file behind the memory.
 * The x86_64 layout puts RAM at [0, min(size, 3 GiB)) and the rest above
 * 4 GiB, leaving the 32-bit MMIO gap empty (docs/ARCHITECTURE.md).
 *
 * Every access to guest memory goes through guest_mem_slice(), which checks
 * address *and* length against the RAM regions, overflow included. Nothing in
 * the monitor dereferences a guest physical address any other way.
 */
#ifndef FLINT_GUEST_MEM_H
#define FLINT_GUEST_MEM_H

#include <stdint.h>
#include <stddef.h>

/* A guest physical address. Not a pointer: translate it with guest_mem_slice. */
typedef uint64_t gpa_t;

#define GUEST_MEM_MAX_REGIONS 2

struct guest_region {
    gpa_t gpa;
    uint64_t size;
    uint64_t file_offset; /* offset of this region in the mapping (and the memfd) */
    uint8_t *host;
};

enum guest_mem_pages {
    GUEST_MEM_PAGES_4K,
    GUEST_MEM_PAGES_2M,  /* hugetlb; size a multiple of 2 MiB */
    GUEST_MEM_PAGES_THP, /* anonymous, MADV_HUGEPAGE, 2 MiB aligned */
};

struct guest_mem {
    int fd; /* memfd backing all regions, or -1 (anonymous memory) */
    enum guest_mem_pages pages;
    uint8_t *map;  /* whole mapping of fd */
    uint64_t size; /* bytes of RAM */
    unsigned nregions;
    struct guest_region regions[GUEST_MEM_MAX_REGIONS];
    /* With dirty-page tracking (guest_mem_track_dirty): one bit per 4 KiB
     * page in file order, set (atomically) for every page a device may
     * have written through guest_mem_slice. NULL: not tracking. */
    uint64_t *dirty;
    /* Mapped MAP_PRIVATE from a file (guest_mem_map_file): the guest's
     * pages are not all in fd, so fd's holes say nothing about them. */
    int cow;
};

/* Smallest and largest RAM a VM may have. */
#define GUEST_MEM_MIN_BYTES (2ull << 20)
#define GUEST_MEM_MAX_BYTES (1ull << 40)

/* Allocate `size` bytes of guest RAM (a multiple of 4 KiB within the limits
 * above) and lay it out around the MMIO gap. Returns 0 or -errno. */
int guest_mem_create(struct guest_mem *mem, uint64_t size);

/* The same with a choice of backing. For GUEST_MEM_PAGES_2M, size must be
 * a multiple of 2 MiB (-EINVAL), and -ENOMEM means the host has too few free
 * 2 MiB huge pages. GUEST_MEM_PAGES_THP takes any size the 4 KiB backing
 * takes (a tail short of 2 MiB just gets 4 KiB pages); a host without
 * transparent huge pages (madvise fails with EINVAL) gets plain anonymous
 * memory rather than an error. */
int guest_mem_create_pages(struct guest_mem *mem, uint64_t size, enum guest_mem_pages pages);

/* Map the memory file `fd` (a snapshot's, holding `size` bytes of RAM laid
 * out as guest_mem_create would) MAP_PRIVATE: pages are read from the file
 * when first touched, writes stay private to this VM, nothing is read now.
 * Takes fd (closed by guest_mem_destroy, or here on error). Returns 0 or
 * -errno; -EINVAL for a bad size. */
int guest_mem_map_file(struct guest_mem *mem, int fd, uint64_t size);

/* Anonymous private RAM of `size` bytes laid out as guest_mem_create
 * would, for a restore whose pages a userfaultfd handler supplies (the
 * Uffd backend). Returns 0 or -errno. */
int guest_mem_map_anon(struct guest_mem *mem, uint64_t size);

/* Start recording the pages devices write (mem->dirty). 0 or -ENOMEM. */
int guest_mem_track_dirty(struct guest_mem *mem);

/* Copy the device-dirty bitmap into `out` (OR'ed in) and clear it; on the
 * VMM thread while the VM is paused. */
void guest_mem_take_dirty(struct guest_mem *mem, uint64_t *out);

/* Bytes in a bitmap of one bit per 4 KiB page of `size` bytes of RAM. */
size_t guest_mem_bitmap_bytes(uint64_t size);

/* Unmap and close; safe on a zeroed or already destroyed struct. */
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer to [gpa, gpa + len) if the whole range is RAM inside a single
 * region, otherwise NULL. len == 0 is treated as len == 1. When tracking
 * dirty pages, the range is marked dirty (a read marks too: over-marking
 * only makes a Diff snapshot larger, a missed write would corrupt it). */
void *guest_mem_slice(const struct guest_mem *mem, gpa_t gpa, uint64_t len);

/* Copy into / out of guest RAM. Return 0 or -EFAULT when the range is not RAM. */
int guest_mem_write(const struct guest_mem *mem, gpa_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, gpa_t gpa, void *dst, uint64_t len);

/* End (exclusive) of the RAM region that starts at 0: the top of low memory. */
gpa_t guest_mem_low_end(const struct guest_mem *mem);

#endif /* FLINT_GUEST_MEM_H */
