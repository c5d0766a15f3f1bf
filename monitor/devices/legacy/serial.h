/*
 * serial.h - 16550A UART model (COM1) for the guest console.
 *
 * Transmitted bytes go straight to an output fd; received bytes come from
 * serial_push_input(). Interrupts (THR empty, data ready) are signalled by
 * calling the trigger callback, which pulses the UART's interrupt line.
 * The register state is a plain struct so it can be saved in a snapshot.
 */
#ifndef FLINT_SERIAL_H
#define FLINT_SERIAL_H

#include "bus.h"
#include "snap_io.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_REG_COUNT 8
#define SERIAL_RX_FIFO   64

struct serial_regs {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t thr_empty_irq; /* THRE interrupt pending (cleared by IIR read / THR write) */
    uint8_t rx_fifo[SERIAL_RX_FIFO];
    uint32_t rx_head, rx_count;
};

struct serial {
    pthread_mutex_t lock;
    struct serial_regs regs;
    int out_fd; /* -1 discards output */
    void (*irq_trigger)(void *opaque);
    void *irq_opaque;
};

/* Reset the UART to power-on state, writing output to out_fd. */
void serial_init(struct serial *s, int out_fd, void (*irq_trigger)(void *), void *irq_opaque);

/* Queue received bytes for the guest; returns how many fit in the FIFO. */
size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len);

/* Snapshots: the registers and the bytes in the receive FIFO, as one
 * section. Load checks every value (bits the UART cannot hold, FIFO
 * cursors) and changes nothing unless it returns 0 (else -EBADMSG with
 * r->what naming the value); an interrupt the loaded state has pending is
 * raised again. Both take the lock. */
void serial_save(struct serial *s, struct snap_writer *w);
int serial_load(struct serial *s, struct snap_reader *r);
/* Write bytes to the console output as if transmitted one by one through
 * THR, under the UART's lock so they stay in order with its own output
 * (the paravirtual console, pvconsole.c). Raises no interrupt. */
void serial_write_console(struct serial *s, const uint8_t *buf, size_t len);

/* Bus ops for the 8 registers at FLINT_PORT_COM1. */
extern const struct bus_dev_ops serial_bus_ops;

#endif /* FLINT_SERIAL_H */
