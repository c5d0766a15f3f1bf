/*
 * serial.h - 16550A UART model (COM1) for the guest console.
 *
 * Transmitted bytes go straight to an output fd; received bytes come from
 * serial_push_input() (the console input, serial_input.h) into the
 * receiver: a 16-byte FIFO when the guest enables it with FCR bit 0, else
 * the one-byte receiver buffer register, as on the PC16550D. Interrupts
 * (line status, received data, character timeout, THR empty) are signalled
 * by calling the trigger callback, which pulses the UART's interrupt line.
 * The register state is a plain struct so it can be saved in a snapshot.
 */
#ifndef FLINT_SERIAL_H
#define FLINT_SERIAL_H

#include "bus.h"
#include "snap_io.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_REG_COUNT 8
#define SERIAL_FIFO_LEN  16 /* the 16550A's receiver FIFO */

struct serial_regs {
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    uint8_t fcr;           /* FIFO enable and receiver trigger level bits */
    uint8_t lsr_err;       /* overrun error, cleared by reading LSR */
    uint8_t thr_empty_irq; /* THRE interrupt pending (cleared by IIR read / THR write) */
    uint8_t rx_fifo[SERIAL_FIFO_LEN];
    uint32_t rx_head, rx_count;
};

struct serial {
    pthread_mutex_t lock;
    struct serial_regs regs;
    int out_fd; /* -1 discards output */
    void (*irq_trigger)(void *opaque);
    void *irq_opaque;
    /* Flow control for the input side: called (without the lock) once the
     * receiver has room again after serial_rx_space() found none. */
    void (*rx_ready)(void *opaque);
    void *rx_opaque;
    bool rx_waiting;    /* serial_rx_space() returned 0 */
    bool rx_notify_due; /* call rx_ready when the lock is dropped */
};

/* Reset the UART to power-on state, writing output to out_fd. */
void serial_init(struct serial *s, int out_fd, void (*irq_trigger)(void *), void *irq_opaque);

/* Who to tell when the receiver has room again (see struct serial). */
void serial_set_rx_ready(struct serial *s, void (*rx_ready)(void *), void *opaque);

/* How many bytes the receiver takes now: the FIFO's free entries, 1 or 0
 * for the holding register, 0 in loopback mode (where the 16550
 * disconnects its serial input). When 0, rx_ready is called once there
 * is room. */
size_t serial_rx_space(struct serial *s);

/* Queue received bytes for the guest; returns how many were taken, at
 * most serial_rx_space(): input never overruns the receiver, what does
 * not fit stays with the caller (rx_ready tells it when to retry). */
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
