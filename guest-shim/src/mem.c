/*
 * mem.c - the PVH memory map, the bump allocator and page 0.
 */
#include "shim-internal.h"

#define MEMMAP_MAX  FLINT_PVH_MEMMAP_MAX
#define MODULES_MAX 16
#define PAGE_SIZE   4096ull

static struct hvm_memmap_table_entry memmap[MEMMAP_MAX];
static unsigned memmap_count;
static uint64_t ram_bytes;
static uintptr_t heap_next, heap_end;
static struct hvm_modlist_entry modules[MODULES_MAX];
static unsigned module_count;

uint64_t shim_ram_bytes(void)
{
    return ram_bytes;
}

bool mem_is_ram(uint64_t addr, uint64_t len)
{
    for (unsigned i = 0; i < memmap_count; i++) {
        const struct hvm_memmap_table_entry *e = &memmap[i];
        if (e->type == XEN_HVM_MEMMAP_TYPE_RAM && addr >= e->addr && len <= e->size &&
            addr - e->addr <= e->size - len)
            return true;
    }
    return false;
}

/* True if [paddr, paddr + len) is identity-mapped normal memory the shim
 * may read during boot: below the 32-bit MMIO gap. */
static bool readable(uint64_t paddr, uint64_t len)
{
    return paddr != 0 && len <= FLINT_MMIO_GAP_START && paddr <= FLINT_MMIO_GAP_START - len;
}

static void memmap_copy(const struct hvm_start_info *info)
{
    uint32_t n = info->memmap_entries;

    if (info->version < 1 || n == 0)
        return;
    if (n > MEMMAP_MAX) {
        shim_printf("shim: PVH memmap has %u entries, using the first %u\n", n, MEMMAP_MAX);
        n = MEMMAP_MAX;
    }
    if (!readable(info->memmap_paddr, n * sizeof(memmap[0]))) {
        shim_printf("shim: PVH memmap at %#llx is out of reach, ignored\n",
                    (unsigned long long)info->memmap_paddr);
        return;
    }
    memcpy(memmap, phys_ptr(info->memmap_paddr), n * sizeof(memmap[0]));
    memmap_count = n;
    for (unsigned i = 0; i < n; i++) {
        if (memmap[i].type == XEN_HVM_MEMMAP_TYPE_RAM && ram_bytes + memmap[i].size >= ram_bytes)
            ram_bytes += memmap[i].size;
    }
}

/* The heap is the RAM from the end of the image up to the end of its memmap
 * entry, below the MMIO gap, stopping short of any PVH module (an initrd
 * loaded at the top of low RAM must not be handed out). */
static void heap_init(void)
{
    uint64_t start = ((uintptr_t)_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t end = 0;

    for (unsigned i = 0; i < memmap_count; i++) {
        const struct hvm_memmap_table_entry *e = &memmap[i];
        if (e->type == XEN_HVM_MEMMAP_TYPE_RAM && start >= e->addr && start - e->addr < e->size)
            end = e->addr + e->size < e->addr ? UINT64_MAX : e->addr + e->size;
    }
    if (end > FLINT_MMIO_GAP_START)
        end = FLINT_MMIO_GAP_START;
    for (unsigned i = 0; i < module_count; i++) {
        if (modules[i].paddr >= start && modules[i].paddr < end)
            end = modules[i].paddr;
    }
    if (end > start) {
        heap_next = (uintptr_t)start;
        heap_end = (uintptr_t)end;
    }
}

/* Keep the modules (initrds) whose whole range is readable and non-empty. */
static void modules_copy(const struct hvm_start_info *info)
{
    uint32_t nmod = info->nr_modules < MODULES_MAX ? info->nr_modules : MODULES_MAX;

    if (!nmod || !readable(info->modlist_paddr, nmod * sizeof(struct hvm_modlist_entry)))
        return;
    const struct hvm_modlist_entry *mod = phys_ptr(info->modlist_paddr);
    for (uint32_t i = 0; i < nmod; i++) {
        if (mod[i].size && readable(mod[i].paddr, mod[i].size))
            modules[module_count++] = mod[i];
        else
            shim_printf("shim: PVH module %u at %#llx is out of reach, ignored\n", i,
                        (unsigned long long)mod[i].paddr);
    }
}

void mem_init(const struct hvm_start_info *info)
{
    if (!info)
        return;
    memmap_copy(info);
    modules_copy(info);
    heap_init();
}

unsigned shim_module_count(void)
{
    return module_count;
}

const void *shim_module_get(unsigned i, size_t *size)
{
    if (i >= module_count)
        return NULL;
    if (size)
        *size = (size_t)modules[i].size;
    return phys_ptr(modules[i].paddr);
}

void *mem_alloc_raw(size_t size, size_t align)
{
    if (align == 0)
        align = 16;
    if (align & (align - 1))
        return NULL;
    uintptr_t cur = __atomic_load_n(&heap_next, __ATOMIC_RELAXED), start;
    do {
        start = (cur + align - 1) & ~(uintptr_t)(align - 1);
        if (start < cur || start > heap_end || size > heap_end - start)
            return NULL;
    } while (!__atomic_compare_exchange_n(&heap_next, &cur, start + size, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return (void *)start;
}

void *shim_alloc(size_t size, size_t align)
{
    void *p = mem_alloc_raw(size, align);

    if (p)
        memset(p, 0, size);
    return p;
}

/* Once the boot information is copied nothing lives in page 0, so unmap it
 * and let NULL dereferences fault. */
void mem_unmap_null_page(void)
{
    shim_pt0[0] = 0;
    __asm__ volatile("invlpg (%0)" : : "r"(0ul) : "memory");
}
