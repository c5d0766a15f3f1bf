/*
 * serial_input.h - flint's standard input feeds the guest's 16550.
 *
 * On the VMM thread's event loop: wait until stdin is readable (an
 * io_uring poll), read at most what the UART's receiver has room for
 * (an io_uring read), hand it to serial_push_input. When the receiver is
 * full, stop: nothing is read until the guest drains it, and the UART's
 * rx_ready callback (on the vCPU thread that read RBR) wakes this side
 * through an eventfd. Nothing is dropped and nothing spins.
 *
 * At end of input (a pipe's writer closed, the end of a file, /dev/null)
 * input simply stops: the guest sees no more bytes. A terminal is put in
 * raw input mode (term_raw.h) for the VM's life.
 */
#ifndef FLINT_SERIAL_INPUT_H
#define FLINT_SERIAL_INPUT_H

#include "evloop.h"
#include "serial.h"

#include <stdbool.h>
#include <stdint.h>

enum serial_input_state {
    SERIAL_INPUT_OFF,     /* no input: disabled, stdin closed, or ended */
    SERIAL_INPUT_POLLING, /* waiting for stdin to be readable */
    SERIAL_INPUT_READING, /* a read is in flight */
    SERIAL_INPUT_FULL,    /* waiting for the guest to make room */
};

struct serial_input {
    struct serial *serial;
    struct evloop *loop;
    int fd;       /* stdin, or -1 */
    int ready_fd; /* eventfd written by the UART's rx_ready */
    uint64_t ready_buf;
    bool raw; /* the terminal is in raw mode */
    enum serial_input_state state;
    struct ev_handler poll_ev, read_ev, ready_ev;
    uint8_t buf[SERIAL_FIFO_LEN];
    unsigned off, len; /* buf[off, len): read, not yet taken by the UART */
    uint64_t bytes;    /* handed to the guest */
};

/* Decide whether fd feeds the serial: not when it is closed or /dev/null
 * (nothing happens then); a terminal goes into raw mode. Call before the
 * seccomp filters are built (serial_input_tty says whether the VMM thread
 * must be allowed to restore the terminal). Returns 0 or -errno. */
int serial_input_init(struct serial_input *in, struct serial *s, int fd);

/* Whether the terminal is in raw mode (SECCOMP_FEAT_TTY needed). */
bool serial_input_tty(const struct serial_input *in);

/* Start reading on the VMM thread's loop. Returns 0 or -errno. */
int serial_input_start(struct serial_input *in, struct evloop *loop);

/* Restore the terminal and close the eventfd, once the ring is gone. */
void serial_input_fini(struct serial_input *in);

#endif /* FLINT_SERIAL_INPUT_H */
