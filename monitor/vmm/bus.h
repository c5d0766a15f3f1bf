/*
 * bus.h - address-range dispatch for port I/O and MMIO exits.
 *
 * Devices register a range with a const ops table before the first vCPU
 * runs; after that the bus is read-only, so lookups take no lock. Handlers
 * run on vCPU threads and do their own locking. An access must lie entirely
 * inside one range, otherwise it is unhandled.
 */
#ifndef FLINT_BUS_H
#define FLINT_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_dev_ops {
    const char *name;
    /* `offset` is relative to the registered base; data is little-endian,
     * 1 <= len <= 8. A read must fill all `len` bytes. */
    void (*read)(void *opaque, uint64_t offset, uint8_t *data, unsigned len);
    void (*write)(void *opaque, uint64_t offset, const uint8_t *data, unsigned len);
};

struct bus_range {
    uint64_t base;
    uint64_t len;
    const struct bus_dev_ops *ops;
    void *opaque;
    uint64_t accesses; /* updated atomically, for --stats */
};

#define BUS_MAX_RANGES 64

struct bus {
    const char *name; /* "pio" or "mmio" */
    unsigned nranges;
    struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by base, disjoint */
    uint64_t unhandled;                      /* updated atomically */
};

/* Initialise an empty bus. */
void bus_init(struct bus *bus, const char *name);

/* Register [base, base + len). Returns 0, -EINVAL for an empty or wrapping
 * range, -EEXIST if it overlaps a registered one, -ENOSPC when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
                 void *opaque);

/* The range containing all of [addr, addr + len), or NULL. */
struct bus_range *bus_find(struct bus *bus, uint64_t addr, unsigned len);

/* Dispatch one access. Returns true if a device handled it; an unhandled
 * read is filled with 0xff bytes (what an empty ISA/MMIO slot returns). */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write);

#endif /* FLINT_BUS_H */
