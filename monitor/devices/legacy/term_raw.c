/*
 * term_raw.c - raw input mode on stdin's terminal (termios(3)).
 */
#include "term_raw.h"

#include <errno.h>
#include <stdlib.h>
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

    if (active)
        return 0;
    if (!isatty(STDIN_FILENO))
        return -ENOTTY;
    if (tcgetpgrp(STDIN_FILENO) != getpgrp())
        return -EPERM;
    if (tcgetattr(STDIN_FILENO, &saved) < 0)
        return -errno;
    if (!registered && atexit(restore_at_exit))
        return -ENOMEM;
    registered = true;
    t = saved;
    term_raw_settings(&t);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
        return -errno;
    active = 1;
    return 0;
}

void term_raw_restore(void)
{
    if (!active)
        return;
    active = 0;
    /* TCSANOW: one TCSETS, the request the VMM thread's filter allows. */
    (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved);
}

bool term_raw_active(void)
{
    return active;
}
