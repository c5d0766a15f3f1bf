/*
 * legacy.h - the small port-I/O devices besides the UART: the i8042
 * keyboard controller (used by Linux guests to reset with reboot=k), and the
 * paravirtual exit and console devices used by guest-shim.
 *
 * Both report to the VMM through an action callback rather than calling it,
 * so they can be unit-tested alone.
 */
#ifndef FLINT_LEGACY_H
#define FLINT_LEGACY_H

#include "bus.h"
#include "snap_io.h"
#include "guest_mem.h"
#include "log.h"
#include "serial.h"

#include <pthread.h>
#include <stdint.h>

/* What a device asks the VMM to do: end the VM with `status`. */
typedef void (*vm_exit_fn)(void *opaque, int status, const char *why);

#define I8042_OUTBUF 16

struct i8042_regs {
    uint8_t cmd_byte;    /* controller configuration byte */
    uint8_t pending_cmd; /* command waiting for its data byte on port 0x60, or 0 */
    uint8_t last_was_cmd;
    uint8_t outbuf[I8042_OUTBUF];
    uint32_t out_head, out_count;
};

struct i8042 {
    pthread_mutex_t lock;
    struct i8042_regs regs;
    vm_exit_fn on_reset;
    void *exit_opaque;
    void (*irq_trigger)(void *opaque); /* IRQ 1 */
    void *irq_opaque;
};

void i8042_init(struct i8042 *k, vm_exit_fn on_reset, void *exit_opaque,
                void (*irq_trigger)(void *), void *irq_opaque);

/* Register the data port (0x60) and the command/status port (0x64). */
int i8042_register(struct i8042 *k, struct bus *pio);

/* Queue keyboard scancodes for the guest, all or none, raising IRQ 1.
 * Returns 0 or -ENOSPC when the output buffer has no room for all n. Safe
 * from any thread. */
int i8042_push_keys(struct i8042 *k, const uint8_t *codes, unsigned n);

/* Snapshots: the controller's registers and the bytes queued for the
 * guest, as one section. Load checks every value and changes nothing
 * unless it returns 0 (else -EBADMSG with r->what naming the value); queued
 * bytes raise IRQ 1 again. Both take the lock. The exit device (pvexit)
 * has no state. */
void i8042_save(struct i8042 *k, struct snap_writer *w);
int i8042_load(struct i8042 *k, struct snap_reader *r);

/* Ops for the two ports, exposed for unit tests. */
extern const struct bus_dev_ops i8042_data_ops, i8042_cmd_ops;

/* Paravirtual exit device at FLINT_PORT_EXIT: a 1, 2 or 4-byte write at
 * offset 0 ends the VM with the low 8 bits of the value as exit status. */
struct pvexit {
    vm_exit_fn on_exit;
    void *exit_opaque;
};

extern const struct bus_dev_ops pvexit_ops;

/* Paravirtual console at FLINT_PORT_PVCONSOLE (flint-abi.h): a 32-bit read
 * returns FLINT_PVCONSOLE_MAGIC; a 32-bit write of a descriptor's address
 * sends the descriptor's buffer to the serial console's output. Bad
 * descriptors are counted, logged (rate-limited) and dropped. */
struct pvconsole {
    const struct guest_mem *mem;
    struct serial *serial;
    struct log_ratelimit log_rl;
    uint64_t writes, dropped;
};

void pvconsole_init(struct pvconsole *c, const struct guest_mem *mem, struct serial *serial);

extern const struct bus_dev_ops pvconsole_ops;

#endif /* FLINT_LEGACY_H */
