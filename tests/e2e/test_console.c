/*
 * End-to-end tests: the serial console's input and output. flint's stdin
 * (a pipe, a pty) feeds the guest's 16550 and the echoline guest
 * (guests/echoline.c, shim_getc) answers each line upper-cased; a
 * terminal is in raw mode while flint runs and restored however it ends;
 * a config file's "serial" section sends the guest's output to a file.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define ECHOLINE GUEST_DIR "/echoline.elf"

static void start_echoline(struct live *l, int stdin_fd, const char *extra)
{
    char *argv[] = {FLINT_BIN, "run", "--kernel", ECHOLINE, (char *)extra, NULL};

    live_start_stdin(l, argv, stdin_fd);
}

static void type(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(write(fd, s, n), (ssize_t)n, "write: %s", strerror(errno));
}

Test(console, guest_reads_what_is_written_to_stdin, .timeout = 600)
{
    struct live l;
    char line[300], want[320];
    int p[2];

    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    start_echoline(&l, p[0], NULL);
    close(p[0]);
    live_wait_for(&l, "echoline: ready");
    type(p[1], "hello flint\n");
    live_wait_for(&l, "echo: HELLO FLINT\n");
    /* Longer than the 16-byte FIFO many times over: flow control, no loss. */
    for (int i = 0; i < 120; i++)
        line[i] = (char)('a' + i % 26);
    line[120] = '\n';
    line[121] = '\0';
    type(p[1], line);
    for (int i = 0; i < 120; i++)
        line[i] = (char)('A' + i % 26);
    line[120] = '\0';
    snprintf(want, sizeof(want), "echo: %s\n", line);
    live_wait_for(&l, want);
    type(p[1], "quit\n");
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "echoline: 2 lines"), "%s", l.out);
    close(p[1]);
}

Test(console, input_written_before_boot_waits_for_the_guest, .timeout = 600)
{
    struct live l;
    int p[2];

    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    /* All of it, then the end of input, before the guest has booted. */
    type(p[1], "one\ntwo\nthree\nquit\n");
    close(p[1]);
    start_echoline(&l, p[0], NULL);
    close(p[0]);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "echo: ONE\necho: TWO\necho: THREE\n"), "%s", l.out);
    cr_assert(strstr(l.out, "echoline: 3 lines"), "%s", l.out);
}

Test(console, end_of_input_leaves_the_guest_running_and_sigterm_ends_it, .timeout = 600)
{
    struct live l;
    int p[2];

    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    start_echoline(&l, p[0], NULL);
    close(p[0]);
    type(p[1], "last\n");
    close(p[1]);
    live_wait_for(&l, "echo: LAST\n");
    /* The guest now waits for input that never comes: no spin, no exit. */
    for (int i = 0; i < 20; i++)
        live_pump(&l, 50);
    cr_assert_not(l.done);
    kill(l.pid, SIGTERM);
    cr_assert_eq(live_finish(&l), 128 + SIGTERM, "stderr:\n%s", l.err);
}

Test(console, no_console_input_leaves_stdin_alone, .timeout = 600)
{
    struct live l;
    char rest[16];
    int p[2];

    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    start_echoline(&l, p[0], "--no-console-input");
    type(p[1], "quit\n");
    live_wait_for(&l, "echoline: ready");
    for (int i = 0; i < 20; i++)
        live_pump(&l, 50);
    cr_assert_not(l.done, "the guest got input it must not: %s", l.out);
    kill(l.pid, SIGTERM);
    cr_assert_eq(live_finish(&l), 128 + SIGTERM, "stderr:\n%s", l.err);
    close(p[1]);
    cr_assert_eq(read(p[0], rest, sizeof(rest)), 5, "the bytes are still in the pipe");
    close(p[0]);
}

/* A pty as flint's controlling terminal. */
static void open_pty(int *master, int *slave)
{
    cr_assert_eq(openpty(master, slave, NULL, NULL, NULL), 0, "openpty: %s", strerror(errno));
    fcntl(*master, F_SETFD, FD_CLOEXEC);
    fcntl(*slave, F_SETFD, FD_CLOEXEC);
}

static tcflag_t lflags(int fd)
{
    struct termios t;
    cr_assert_eq(tcgetattr(fd, &t), 0);
    return t.c_lflag;
}

static void wait_raw(struct live *l, int slave)
{
    for (int i = 0; i < 2000 && (lflags(slave) & ICANON); i++)
        live_pump(l, 50);
}

Test(console, terminal_raw_while_running_and_restored_at_exit, .timeout = 600)
{
    struct live l;
    int master, slave;

    open_pty(&master, &slave);
    cr_assert(lflags(slave) & ECHO);
    start_echoline(&l, slave, NULL);
    live_wait_for(&l, "echoline: ready");
    wait_raw(&l, slave);
    cr_assert_eq(lflags(slave) & (ECHO | ICANON | ISIG), 0, "raw mode while the guest runs");
    /* Ctrl-C is a byte for the guest, not a signal; Enter is CR. */
    type(master, "\x03x\r");
    live_wait_for(&l, "echo: \x03X\n");
    type(master, "quit\r");
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert_eq(lflags(slave) & (ECHO | ICANON | ISIG), ECHO | ICANON | ISIG,
                 "the terminal is back as it was");
    close(master);
    close(slave);
}

Test(console, terminal_restored_after_sigterm, .timeout = 600)
{
    struct live l;
    int master, slave;

    open_pty(&master, &slave);
    start_echoline(&l, slave, NULL);
    live_wait_for(&l, "echoline: ready");
    wait_raw(&l, slave);
    cr_assert_eq(lflags(slave) & ICANON, 0);
    kill(l.pid, SIGTERM);
    cr_assert_eq(live_finish(&l), 128 + SIGTERM, "stderr:\n%s", l.err);
    cr_assert_eq(lflags(slave) & (ECHO | ICANON | ISIG), ECHO | ICANON | ISIG);
    close(master);
    close(slave);
}

Test(console, serial_out_path_gets_the_guest_output, .timeout = 600)
{
    char cfg[] = "/tmp/flint-e2e-serial-cfg-XXXXXX", out[] = "/tmp/flint-e2e-serial-XXXXXX";
    char json[1024], text[8192] = {0};
    int fd = mkstemp(cfg), ofd = mkstemp(out);

    cr_assert_geq(fd, 0);
    cr_assert_geq(ofd, 0);
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"},"
             " \"serial\": {\"serial_out_path\": \"%s\"}}",
             HELLO_ELF, out);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", cfg, NULL};
    struct flint_result r = run_cmd(argv, 240.0);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_assert_null(strstr(r.out, "Hello from flint guest-shim"), "not on stdout: %s", r.out);
    cr_assert_geq(read(ofd, text, sizeof(text) - 1), 0);
    cr_assert(strstr(text, "Hello from flint guest-shim"), "the file has: %s", text);
    flint_result_free(&r);
    close(ofd);
    unlink(cfg);
    unlink(out);
}
