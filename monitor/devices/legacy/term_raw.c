/*
 * term_raw.c - raw input mode on stdin's terminal (termios(3)).
 *
 * The settings are read and written with the TCGETS and TCSETS ioctls
 * themselves rather than tcgetattr/tcsetattr: glibc's tcsetattr follows
 * its TCSETS with a TCGETS (to check the speed bits), and the VMM
 * thread's filter allows TCSETS alone. glibc's struct termios starts with
 * the kernel's (flags, line discipline, c_cc: VMIN and VTIME at the same
 * indices), so it holds what TCGETS writes.
 */
#include "term_raw.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

static struct termios saved;
static volatile int active; /* saved holds the settings to put back */

void term_raw_settings(struct termios *t)
{
    t->c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t->c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    /* A read returns as soon as one byte is there. */
    t->c_cc[VMIN] = 1;
    t->c_cc[VTIME] = 0;
}

static void restore_at_exit(void)
{
    term_raw_restore();
}

int term_raw_enter(void)
{
    static bool registered;
    struct termios t;
    pid_t pgrp;

    if (active)
        return 0;
    if (!isatty(STDIN_FILENO))
        return -ENOTTY;
    /* A background job reading or setting its controlling terminal is
     * stopped (SIGTTIN, SIGTTOU). A terminal that is not the controlling
     * one (tcgetpgrp fails: /dev/console, say) has no such rule. */
    pgrp = tcgetpgrp(STDIN_FILENO);
    if (pgrp >= 0 && pgrp != getpgrp())
        return -EPERM;
    if (ioctl(STDIN_FILENO, TCGETS, &saved) < 0)
        return -errno;
    if (!registered && atexit(restore_at_exit))
        return -ENOMEM;
    registered = true;
    t = saved;
    term_raw_settings(&t);
    if (ioctl(STDIN_FILENO, TCSETS, &t) < 0)
        return -errno;
    active = 1;
    return 0;
}

void term_raw_restore(void)
{
    if (!active)
        return;
    active = 0;
    /* TCSETS (TCSANOW): the one request the VMM thread's filter allows. */
    (void)ioctl(STDIN_FILENO, TCSETS, &saved);
}

bool term_raw_active(void)
{
    return active;
}
