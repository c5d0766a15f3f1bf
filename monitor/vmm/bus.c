/*
 * bus.c - sorted range table with binary-search dispatch.
 */
#include "bus.h"
#include "util.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
                 void *opaque)
{
    uint64_t end;
    unsigned pos;

    if (len == 0 || !add_ok_u64(base, len, &end) || !ops)
        return -EINVAL;
    if (bus->nranges == BUS_MAX_RANGES)
        return -ENOSPC;
    for (pos = 0; pos < bus->nranges; pos++) {
        const struct bus_range *r = &bus->ranges[pos];
        if (ranges_overlap(base, len, r->base, r->len))
            return -EEXIST;
        if (r->base > base)
            break;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
            (bus->nranges - pos) * sizeof(bus->ranges[0]));
    bus->ranges[pos] = (struct bus_range){.base = base, .len = len, .ops = ops, .opaque = opaque};
    bus->nranges++;
    return 0;
}

struct bus_range *bus_find(struct bus *bus, uint64_t addr, unsigned len)
{
    unsigned lo = 0, hi = bus->nranges;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        struct bus_range *r = &bus->ranges[mid];
        if (addr < r->base) {
            hi = mid;
        } else if (addr - r->base >= r->len) {
            lo = mid + 1;
        } else {
            /* addr is inside r; the whole access must be too. */
            return len <= r->len - (addr - r->base) ? r : NULL;
        }
    }
    return NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write)
{
    struct bus_range *r = bus_find(bus, addr, len);

    if (!r) {
        __atomic_fetch_add(&bus->unhandled, 1, __ATOMIC_RELAXED);
        if (!is_write)
            memset(data, 0xff, len);
        return false;
    }
    __atomic_fetch_add(&r->accesses, 1, __ATOMIC_RELAXED);
    if (is_write) {
        if (r->ops->write)
            r->ops->write(r->opaque, addr - r->base, data, len);
    } else if (r->ops->read) {
        r->ops->read(r->opaque, addr - r->base, data, len);
    } else {
        memset(data, 0xff, len);
    }
    return true;
}
