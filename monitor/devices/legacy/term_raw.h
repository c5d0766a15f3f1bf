/*
 * term_raw.h - the controlling terminal in raw input mode while stdin
 * feeds the guest's console, and put back as it was on every way out.
 *
 * Raw input: no echo (the guest echoes), no line editing (the guest's tty
 * does it), no signal keys (Ctrl-C, Ctrl-Z and Ctrl-\ reach the guest as
 * bytes 0x03, 0x1a, 0x1c), no CR-to-NL mapping (Enter sends CR, as on a
 * serial line). Output processing is left on, so a guest that prints bare
 * NLs (guest-shim) still starts each line at the left margin.
 *
 * One terminal per process: the state is global. term_raw_restore runs at
 * vmm_destroy, from atexit, and is async-signal-safe; after the VMM
 * thread's seccomp filter it needs SECCOMP_FEAT_TTY (ioctl TCSETS on fd 0).
 */
#ifndef FLINT_TERM_RAW_H
#define FLINT_TERM_RAW_H

#include <stdbool.h>
#include <termios.h>

/* The raw-mode settings for a terminal now in `t` (pure; unit-tested). */
void term_raw_settings(struct termios *t);

/* Put the terminal on stdin in raw input mode. Returns 0, -ENOTTY when
 * stdin is not a terminal, -EPERM when it is flint's controlling terminal
 * and flint is not in its foreground process group (a background job:
 * SIGTTIN/SIGTTOU would stop it), or -errno; on failure nothing changed. */
int term_raw_enter(void);

/* Put stdin's terminal settings back as term_raw_enter found them; does
 * nothing if it changed nothing or they are back already. */
void term_raw_restore(void);

/* True between term_raw_enter and term_raw_restore. */
bool term_raw_active(void);

#endif /* FLINT_TERM_RAW_H */
