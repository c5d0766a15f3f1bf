/*
 * test_coldstart.c - the cold-start work: the boot phase table that
 * `--stats` prints, and the guest memory backends, on the hello guest.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <stdio.h>
#include <string.h>

#define COLDSTART_TIMEOUT_S 240.0

static const char *const phase_names[] = {
    "exec_to_main", "config",  "guest_memory",  "kernel_load",        "kvm_create_vm",
    "vcpu_create",  "seccomp", "first_kvm_run", "first_console_byte", "guest_exit",
};
#define NPHASES (sizeof(phase_names) / sizeof(phase_names[0]))

static struct flint_result run_hello(char *const extra[])
{
    char *args[16] = {"--stats"};
    unsigned n = 1;

    while (extra && *extra && n < 15)
        args[n++] = *extra++;
    args[n] = NULL;
    return flint_run_args(FLINT_BIN, COLDSTART_TIMEOUT_S, args);
}

/* Check the phase table in a --stats report: every phase reached, each
 * beginning no earlier than the one before, none longer than the run. */
static void check_phases(const char *err)
{
    const char *table = strstr(err, "boot phases (from process start):");
    const char *total = strstr(err, "process start -> exit:");
    long long prev_start = -1000000000, exit_us;

    cr_assert(table, "no phase table:\n%s", err);
    cr_assert(total && sscanf(total, "process start -> exit: %lld us", &exit_us) == 1, "%s", err);
    for (unsigned i = 0; i < NPHASES; i++) {
        char needle[64];
        const char *line;
        long long start, took;

        snprintf(needle, sizeof(needle), "\n    %s ", phase_names[i]);
        line = strstr(table, needle);
        cr_assert(line, "phase %s missing:\n%s", phase_names[i], err);
        cr_assert_eq(sscanf(line + strlen(needle), " start %lld us took %lld us", &start, &took), 2,
                     "phase %s not reached:\n%s", phase_names[i], err);
        cr_assert_geq(start, prev_start, "phase %s starts before the one above it:\n%s",
                      phase_names[i], err);
        cr_assert_geq(took, 0);
        cr_assert_leq(start + took, exit_us + 1, "phase %s ends after the exit:\n%s",
                      phase_names[i], err);
        /* Only the exec estimate lies before the process start. */
        if (i > 0)
            cr_assert_geq(start, 0, "phase %s before the start:\n%s", phase_names[i], err);
        prev_start = start;
    }
}

Test(coldstart, stats_print_every_boot_phase_in_order)
{
    struct flint_result r = run_hello(NULL);

    check_status(&r, 0);
    check_has(r.out, "Hello from flint guest-shim");
    check_phases(r.err);
    flint_result_free(&r);
}

/* Firecracker's huge_pages "Transparent": anonymous memory with
 * MADV_HUGEPAGE boots the guest, with every phase still reported. */
Test(coldstart, transparent_huge_pages_boot_the_guest)
{
    char *extra[] = {"--huge-pages", "transparent", "--mem", "63", NULL};
    struct flint_result r = run_hello(extra);

    check_status(&r, 0);
    check_has(r.out, "Hello from flint guest-shim");
    check_has(r.err, "memory: 63 MiB (huge pages: Transparent)");
    check_has(r.err, "peak resident memory:");
    check_phases(r.err);
    flint_result_free(&r);
}

/* "None" stays a 4 KiB memfd, and says so. */
Test(coldstart, no_huge_pages_boot_the_guest)
{
    char *extra[] = {"--huge-pages", "none", NULL};
    struct flint_result r = run_hello(extra);

    check_status(&r, 0);
    check_has(r.out, "Hello from flint guest-shim");
    check_has(r.err, "(huge pages: None)");
    flint_result_free(&r);
}
