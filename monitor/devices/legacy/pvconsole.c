/*
 * pvconsole.c - the paravirtual console (flint-abi.h FLINT_PORT_PVCONSOLE):
 * one port write carries the guest-physical address of a descriptor
 * {buffer, length}, as Solo5's hypercalls carry the address of their
 * argument structures, so a whole write costs one exit instead of one per
 * byte through the 16550.
 *
 * The descriptor and the buffer are guest memory: both are read through
 * guest_mem_slice, and anything malformed is dropped with a rate-limited
 * line. The bytes go through the UART's own output path
 * (serial_write_console), so they stay in order with its output.
 */
#include "legacy.h"
#include "log.h"

#include <flint-abi.h>

#include <string.h>

/* Refusals a guest can cause: at most this many log lines per second. */
#define PVCONSOLE_LOG_BURST 5

static void pvconsole_drop(struct pvconsole *c, const char *why, uint64_t a, uint64_t b)
{
    c->dropped++;
    if (log_ratelimit(&c->log_rl, PVCONSOLE_LOG_BURST))
        log_warn("pvconsole: write dropped: %s (0x%llx, 0x%llx)", why, (unsigned long long)a,
                 (unsigned long long)b);
}

static void pvconsole_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct pvconsole *c = opaque;
    struct flint_pvconsole_desc desc;
    const void *src;
    uint32_t gpa;

    if (offset != 0 || len != 4)
        return; /* only a 32-bit OUT at the port is a write */
    memcpy(&gpa, data, sizeof(gpa));
    src = (gpa & 7) ? NULL : guest_mem_slice(c->mem, gpa, sizeof(desc));
    if (!src) {
        pvconsole_drop(c, "descriptor outside guest RAM or misaligned", gpa, 0);
        return;
    }
    /* One copy: the guest may change the descriptor while it is read. */
    memcpy(&desc, src, sizeof(desc));
    if (desc.len > FLINT_PVCONSOLE_MAX || desc.reserved) {
        pvconsole_drop(c, "length above 4096 or reserved field set", desc.len, desc.reserved);
        return;
    }
    if (!desc.len)
        return;
    src = guest_mem_slice(c->mem, desc.buf, desc.len);
    if (!src) {
        pvconsole_drop(c, "buffer outside guest RAM", desc.buf, desc.len);
        return;
    }
    c->writes++;
    serial_write_console(c->serial, src, desc.len);
}

static void pvconsole_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    const uint32_t magic = FLINT_PVCONSOLE_MAGIC;

    (void)opaque;
    memset(data, 0xff, len);
    if (offset == 0 && len == 4)
        memcpy(data, &magic, sizeof(magic));
}

void pvconsole_init(struct pvconsole *c, const struct guest_mem *mem, struct serial *serial)
{
    memset(c, 0, sizeof(*c));
    c->mem = mem;
    c->serial = serial;
}

const struct bus_dev_ops pvconsole_ops = {
    .name = "pvconsole", .read = pvconsole_read, .write = pvconsole_write};
