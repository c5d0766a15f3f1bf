/*
 * End-to-end tests: seccomp. While a guest runs, every thread of flint is
 * in seccomp filter mode (/proc/PID/task/TID/status "Seccomp: 2") with
 * exactly one filter, its own ("Seccomp_filters: 1": a vCPU thread that
 * inherited the VMM thread's filter would show 2), or in
 * none with --no-seccomp; a thread that makes a forbidden system call ends
 * flint with status 148 and one line naming it. The trigger for that is
 * compiled into flint-test (monitor/test_hooks.c), and flint must not
 * contain it.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S   240.0 /* the nested sandbox is slow */
#define SETTLE_S    30.0  /* for every thread to reach its filter */
#define LINGER      GUEST_DIR "/linger.elf"
#define TRIGGER_ENV "FLINT_TEST_SECCOMP_TRIGGER"
/* x86_64 socket(2): what the trigger calls. */
#define SYS_SOCKET_NR "41"

extern char **environ;

static void skip_in_sanitizer_builds(void)
{
#ifdef FLINT_SANITIZED
    cr_skip_test("sanitizer builds run without seccomp filters (docs/SECURITY.md)");
#endif
}

/* ---- /proc/PID/task ---- */

/* The value of "Key:\t..." in a status file, as an int; -1 if absent. */
static int status_field(const char *status, const char *key, char *text, size_t textlen)
{
    const char *p = strstr(status, key);

    if (!p)
        return -1;
    p += strlen(key);
    while (*p == '\t' || *p == ' ')
        p++;
    if (text) {
        size_t n = strcspn(p, "\n");
        snprintf(text, textlen, "%.*s", (int)(n < textlen ? n : textlen - 1), p);
    }
    return atoi(p);
}

/* Look at every thread of pid: how many there are, how many are in seccomp
 * mode `mode` with one filter in mode 2 (kernels before 5.9 do not report
 * the count: then the mode alone); a line per thread in `desc`. */
static unsigned threads_in_mode(pid_t pid, int mode, unsigned *total, char *desc, size_t desclen)
{
    char path[64];
    unsigned in_mode = 0;
    size_t used = 0;
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    cr_assert_not_null(dir, "%s: %s", path, strerror(errno));
    *total = 0;
    desc[0] = '\0';
    while ((d = readdir(dir))) {
        char file[sizeof(path) + sizeof(d->d_name) + 8], status[4096], name[32] = "?";
        if (d->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%s/status", path, d->d_name);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* the thread just ended */
        ssize_t n = read(fd, status, sizeof(status) - 1);
        close(fd);
        if (n <= 0)
            continue;
        status[n] = '\0';
        status_field(status, "Name:", name, sizeof(name));
        int m = status_field(status, "\nSeccomp:", NULL, 0);
        int filters = status_field(status, "\nSeccomp_filters:", NULL, 0);
        (*total)++;
        in_mode += m == mode && (mode != 2 || filters == 1 || filters == -1);
        if (used < desclen)
            used += (size_t)snprintf(desc + used, desclen - used,
                                     "  tid %s %s: Seccomp %d, Seccomp_filters %d\n", d->d_name,
                                     name, m, filters);
    }
    closedir(dir);
    return in_mode;
}

/* Boot linger on 2 vCPUs and require every thread (the VMM thread and two
 * vCPU threads) to reach seccomp mode `mode`; then the guest must finish
 * normally, with `log` on stderr (NULL: nothing). */
static void every_thread_in_mode(const char *flint_bin, int mode, const char *extra_arg,
                                 const char *log)
{
    char *argv[] = {(char *)flint_bin, "run", "--kernel",  LINGER,
                    "--vcpus",         "2",   "--cmdline", "cpus=2 ms=3000",
                    (char *)extra_arg, NULL};
    struct live l;
    char desc[1024];
    unsigned total = 0, in_mode = 0;

    live_start(&l, argv);
    live_wait_for(&l, "linger: up on 2 cpus");
    /* The guest runs from vCPU 0's first KVM_RUN; the VMM thread loads
     * its filter at about the same time. Give it a moment, but stop
     * looking when the guest is done: its threads are leaving. */
    for (double end = now_s() + SETTLE_S; now_s() < end && !strstr(l.out, "linger: done");
         live_pump(&l, 50)) {
        in_mode = threads_in_mode(l.pid, mode, &total, desc, sizeof(desc));
        if (total == 3 && in_mode == total)
            break;
    }
    cr_expect_eq(total, 3, "threads: VMM + 2 vCPUs expected:\n%s", desc);
    cr_expect_eq(in_mode, total, "every thread should show Seccomp: %d:\n%s", mode, desc);
    int status = live_finish(&l);
    cr_assert_eq(status, 0, "exit status %d\nstdout:\n%s\nstderr:\n%s", status, l.out, l.err);
    cr_assert(strstr(l.out, "linger: done"), "stdout:\n%s", l.out);
    if (log)
        cr_assert(strstr(l.err, log), "stderr lacks '%s':\n%s", log, l.err);
    else
        cr_assert_eq(l.err[0], '\0', "stderr:\n%s", l.err);
}

Test(seccomp, every_thread_of_a_running_flint_is_filtered)
{
    skip_in_sanitizer_builds();
    every_thread_in_mode(FLINT_BIN, 2, NULL, NULL);
}

Test(seccomp, no_seccomp_runs_unfiltered_and_says_so)
{
    every_thread_in_mode(FLINT_BIN, 0, "--no-seccomp", "Warning: seccomp filters are off");
}

/* ---- the trigger ---- */

static struct flint_result run_triggered(const char *bin, const char *which)
{
    char *argv[] = {(char *)bin, "run", "--kernel", HELLO_ELF, NULL};

    cr_assert_eq(setenv(TRIGGER_ENV, which, 1), 0);
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    unsetenv(TRIGGER_ENV);
    cr_assert_not(r.timed_out, "flint did not finish\nstdout:\n%s\nstderr:\n%s", r.out, r.err);
    return r;
}

static void expect_bad_syscall(const char *which, const char *label)
{
    char line[160];

    skip_in_sanitizer_builds();
    struct flint_result r = run_triggered(FLINT_TEST_BIN, which);
    snprintf(line, sizeof(line),
             "flint[%s] Error: seccomp: forbidden system call " SYS_SOCKET_NR " on a %s thread",
             label, which);
    cr_assert_eq(r.status, 148, "exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, line), "stderr lacks '%s':\n%s", line, r.err);
    cr_assert_eq(count_lines(r.err), 1, "one line only:\n%s", r.err);
    flint_result_free(&r);
}

Test(seccomp, forbidden_call_on_a_vcpu_thread_exits_148)
{
    expect_bad_syscall("vcpu", "vcpu0");
}

Test(seccomp, forbidden_call_on_the_vmm_thread_exits_148)
{
    expect_bad_syscall("vmm", "vmm");
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 20, len = 0, n;
    char *buf = malloc(cap);
    bool found;

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

Test(seccomp, flint_itself_has_no_trigger)
{
    cr_assert(file_contains(FLINT_TEST_BIN, TRIGGER_ENV), "flint-test lacks the trigger");
    cr_assert_not(file_contains(FLINT_BIN, TRIGGER_ENV), "the release flint has the trigger");
    struct flint_result r = run_triggered(FLINT_BIN, "vmm");
    cr_assert_eq(r.status, 0, "exit status %d\nstderr:\n%s", r.status, r.err);
    cr_assert(strstr(r.out, "Hello from flint guest-shim"), "stdout:\n%s", r.out);
    flint_result_free(&r);
}
