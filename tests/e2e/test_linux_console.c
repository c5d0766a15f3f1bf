/*
 * End-to-end tests: a Linux guest driven through flint's stdin. flint's
 * init (tools/initramfs/init) runs flint.cmd="...": a command reading a
 * line from the console, and an interactive busybox shell on ttyS0. The
 * test types into a pipe, sees the output, then `exit`: init reboots and
 * flint exits 0.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMDLINE_BASE "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd"
#define ANSWER_S     180.0

static char *kernel_path(void)
{
    const char *dir = getenv("FLINT_LINUX_KERNEL_DIR");
    char *path;

    cr_assert(dir && *dir, "FLINT_LINUX_KERNEL_DIR is not set (tools/build-kernel, tools/test)");
    cr_assert_geq(asprintf(&path, "%s/vmlinux", dir), 0);
    cr_assert_eq(access(path, R_OK), 0, "%s: %s", path, strerror(errno));
    return path;
}

static void type(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(write(fd, s, n), (ssize_t)n, "write: %s", strerror(errno));
}

/* Wait for needle; if it does not come, end flint with SIGTERM so that
 * --stats shows what the console input did, and fail. */
static void expect_output(struct live *l, const char *needle)
{
    double end = now_s() + ANSWER_S;

    while (!strstr(l->out, needle) && now_s() < end && live_pump(l, 100)) {
    }
    if (strstr(l->out, needle))
        return;
    kill(l->pid, SIGTERM);
    live_finish(l);
    cr_assert_fail("no '%s' from the guest\nstdout:\n%s\nstderr:\n%s", needle, l->out, l->err);
}

static void start(struct live *l, int *in, const char *cmdline)
{
    static char *kernel;
    int p[2];

    if (!kernel)
        kernel = kernel_path();
    char *argv[] = {FLINT_BIN,       "run",     "--kernel",  kernel,          "--initrd",
                    LINUX_INITRAMFS, "--stats", "--cmdline", (char *)cmdline, NULL};

    cr_assert_eq(access(LINUX_INITRAMFS, R_OK), 0, "%s is missing", LINUX_INITRAMFS);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    live_start_stdin(l, argv, p[0]);
    close(p[0]);
    *in = p[1];
}

Test(linux_console, command_reads_a_line_from_stdin, .timeout = 900)
{
    struct live l;
    int in;

    start(&l, &in,
          CMDLINE_BASE " flint.cmd=\"echo flint-typing-ready; read x; echo got-$x-$((6*7))\"");
    expect_output(&l, "flint-typing-ready");
    type(in, "hello\n");
    expect_output(&l, "got-hello-42");
    expect_output(&l, "flint-init: command exited with status 0");
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    close(in);
}

Test(linux_console, shell_driven_through_stdin, .timeout = 900)
{
    struct live l;
    int in;

    start(&l, &in, CMDLINE_BASE " flint.cmd=\"echo flint-typing-ready; sh\"");
    /* The console is open once init prints: the tty keeps what is typed. */
    expect_output(&l, "flint-typing-ready");
    /* The echo of the command line shows "$((6*7))", only its output 42. */
    type(in, "echo typed-$((6*7))-$(cat /proc/sys/kernel/ostype)\n");
    expect_output(&l, "typed-42-Linux");
    type(in, "exit\n");
    expect_output(&l, "flint-init: command exited with status 0");
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    close(in);
}
