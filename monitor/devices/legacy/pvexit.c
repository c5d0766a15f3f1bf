/*
 * pvexit.c - the paravirtual exit device (flint-abi.h FLINT_PORT_EXIT).
 */
#include "legacy.h"

#include <stdio.h>
#include <string.h>

static void pvexit_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct pvexit *d = opaque;
    char why[64];

    /* Only a write of 1, 2 or 4 bytes at the port itself counts. */
    if (offset != 0 || (len != 1 && len != 2 && len != 4))
        return;
    snprintf(why, sizeof(why), "guest exited with status %u", data[0]);
    d->on_exit(d->exit_opaque, data[0], why);
}

static void pvexit_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    (void)opaque;
    (void)offset;
    memset(data, 0xff, len);
}

const struct bus_dev_ops pvexit_ops = {
    .name = "pvexit", .read = pvexit_read, .write = pvexit_write};
