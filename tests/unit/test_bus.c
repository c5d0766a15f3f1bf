/* Unit tests: port-I/O / MMIO range dispatch. */
#include <criterion/criterion.h>

#include "bus.h"

#include <errno.h>
#include <string.h>

struct probe {
    uint64_t last_offset;
    unsigned last_len, reads, writes;
    uint8_t last_data[8];
};

static void probe_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct probe *p = opaque;
    p->reads++;
    p->last_offset = offset;
    p->last_len = len;
    memset(data, 0x5a, len);
}

static void probe_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct probe *p = opaque;
    p->writes++;
    p->last_offset = offset;
    p->last_len = len;
    memcpy(p->last_data, data, len);
}

static const struct bus_dev_ops probe_ops = {
    .name = "probe", .read = probe_read, .write = probe_write};

Test(bus, dispatches_with_relative_offset)
{
    struct bus b;
    struct probe p = {0};
    uint8_t data[4] = {1, 2, 3, 4};

    bus_init(&b, "pio");
    cr_assert_eq(bus_register(&b, 0x3f8, 8, &probe_ops, &p), 0);
    cr_assert(bus_access(&b, 0x3fb, data, 1, true));
    cr_assert_eq(p.writes, 1);
    cr_assert_eq(p.last_offset, 3);
    cr_assert_eq(p.last_data[0], 1);
    cr_assert(bus_access(&b, 0x3f8, data, 4, false));
    cr_assert_eq(p.reads, 1);
    cr_assert_eq(data[3], 0x5a);
    cr_assert_eq(b.ranges[0].accesses, 2);
}

Test(bus, overlapping_and_empty_ranges_are_refused)
{
    struct bus b;
    struct probe p = {0};

    bus_init(&b, "mmio");
    cr_assert_eq(bus_register(&b, 0x1000, 0x1000, &probe_ops, &p), 0);
    cr_assert_eq(bus_register(&b, 0x1fff, 1, &probe_ops, &p), -EEXIST);
    cr_assert_eq(bus_register(&b, 0x0800, 0x801, &probe_ops, &p), -EEXIST);
    cr_assert_eq(bus_register(&b, 0x0, 0x2000 + 0x10, &probe_ops, &p), -EEXIST);
    cr_assert_eq(bus_register(&b, 0x3000, 0, &probe_ops, &p), -EINVAL);
    cr_assert_eq(bus_register(&b, UINT64_MAX - 1, 4, &probe_ops, &p), -EINVAL);
    cr_assert_eq(bus_register(&b, 0x2000, 0x1000, &probe_ops, &p), 0, "adjacent is fine");
    cr_assert_eq(bus_register(&b, 0x0, 0x1000, &probe_ops, &p), 0, "adjacent below too");
    cr_assert_eq(b.nranges, 3);
    cr_assert(b.ranges[0].base < b.ranges[1].base && b.ranges[1].base < b.ranges[2].base);
}

Test(bus, access_straddling_a_range_end_is_unhandled)
{
    struct bus b;
    struct probe p = {0};
    uint8_t data[8];

    bus_init(&b, "pio");
    cr_assert_eq(bus_register(&b, 0x60, 1, &probe_ops, &p), 0);
    cr_assert_not(bus_access(&b, 0x60, data, 2, false));
    cr_assert_eq(p.reads, 0);
    cr_assert_eq(data[0], 0xff);
    cr_assert_eq(data[1], 0xff);
    cr_assert_not(bus_access(&b, 0x5f, data, 2, true));
    cr_assert_eq(p.writes, 0);
    cr_assert_eq(b.unhandled, 2);
}

Test(bus, lookup_finds_each_of_many_ranges)
{
    struct bus b;
    struct probe p[40];

    memset(p, 0, sizeof(p));
    bus_init(&b, "mmio");
    /* Register out of order; lookups must still find each one. */
    for (int i = 39; i >= 0; i--)
        cr_assert_eq(bus_register(&b, 0x10000 + (uint64_t)i * 0x100, 0x80, &probe_ops, &p[i]), 0);
    for (int i = 0; i < 40; i++) {
        struct bus_range *r = bus_find(&b, 0x10000 + (uint64_t)i * 0x100 + 0x7f, 1);
        cr_assert_not_null(r);
        cr_assert_eq(r->opaque, &p[i]);
        cr_assert_null(bus_find(&b, 0x10000 + (uint64_t)i * 0x100 + 0x80, 1), "hole %d", i);
    }
}

Test(bus, full_bus_reports_enospc)
{
    struct bus b;
    struct probe p = {0};

    bus_init(&b, "pio");
    for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
        cr_assert_eq(bus_register(&b, i * 2, 1, &probe_ops, &p), 0);
    cr_assert_eq(bus_register(&b, 0x1000, 1, &probe_ops, &p), -ENOSPC);
}
