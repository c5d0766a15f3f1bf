/*
 * End-to-end tests: working-set prefetch (snapshot_ws.h). A snapmem guest
 * is snapshotted from the command line after its first round; a restore
 * with --record-working-set runs it to its last round and writes
 * STATE.ws; a restore with --prefetch maps those pages first and the
 * guest still checks every page; a corrupt or missing STATE.ws is refused
 * with one line before the guest runs.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TIMEOUT_S 240.0
#define SNAPMEM   GUEST_DIR "/snapmem.elf"
#define ROUNDS    "4"

static void tmp_path(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "/tmp/flint-e2e-ws-%d-%s", (int)getpid(), what);
    unlink(buf);
}

static struct flint_result restore(const char *state, const char *mem, const char *flag)
{
    char *args[] = {"--restore", (char *)state, "--mem-file", (char *)mem, (char *)flag, NULL};

    return flint_run_args(FLINT_BIN, TIMEOUT_S, args);
}

static void restore_runs(const char *state, const char *mem, const char *flag)
{
    struct flint_result r = restore(state, mem, flag);

    cr_assert_eq(r.status, 0, "%s: stdout:\n%s\nstderr:\n%s", flag, r.out, r.err);
    cr_assert_null(strstr(r.out, "filled"), "%s", r.out);
    check_has(r.out, "snapmem: round " ROUNDS " ok");
    check_has(r.out, "snapmem: done");
    flint_result_free(&r);
}

static void prefetch_refused(const char *state, const char *mem, const char *needle)
{
    struct flint_result r = restore(state, mem, "--prefetch");

    cr_assert_eq(r.status, 152, "status %d\nstderr:\n%s", r.status, r.err);
    cr_assert(strstr(r.err, needle), "no '%s' in:\n%s", needle, r.err);
    cr_assert_eq(count_lines(r.err), 1, "more than one line:\n%s", r.err);
    cr_assert_null(strstr(r.out, "snapmem: round"), "the guest ran:\n%s", r.out);
    flint_result_free(&r);
}

Test(snapshot_ws, record_then_prefetch, .timeout = 900)
{
    char state[108], mem[108], ws[120], spec[256];
    struct stat st;
    struct live l;

    tmp_path(state, sizeof(state), "state");
    tmp_path(mem, sizeof(mem), "mem");
    snprintf(ws, sizeof(ws), "%s.ws", state);
    unlink(ws);
    snprintf(spec, sizeof(spec), "%s,%s", state, mem);
    char *argv[] = {FLINT_BIN, "run",       "--kernel",
                    SNAPMEM,   "--cmdline", "console=ttyS0 mib=8 rounds=" ROUNDS " ms=200",
                    "--mem",   "64",        "--snapshot-on-signal",
                    spec,      NULL};
    live_start(&l, argv);
    live_wait_for(&l, "snapmem: round 1 ok");
    kill(l.pid, SIGUSR1);
    cr_assert_eq(live_finish(&l), 0, "stderr:\n%s", l.err);

    prefetch_refused(state, mem, "No such file");
    restore_runs(state, mem, "--record-working-set");
    /* The guest read and rewrote its 8 MiB: at least that many pages, and
     * far fewer than the 64 MiB of RAM (header 32, 16 a run, CRC 8). */
    cr_assert_eq(stat(ws, &st), 0, "no %s", ws);
    cr_assert_gt(st.st_size, 40, "an empty working set");
    restore_runs(state, mem, "--prefetch");

    int fd = open(ws, O_RDWR | O_CLOEXEC);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, 33), 1);
    b ^= 0x10;
    cr_assert_eq(pwrite(fd, &b, 1, 33), 1);
    close(fd);
    prefetch_refused(state, mem, "CRC mismatch");
    unlink(ws);
    unlink(state);
    unlink(mem);
}
