/*
 * test_boot_phases.c - phase marks, the exec estimate's parser, the table.
 */
#include "boot_phases.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MS 1000000ll

/* A stat line as Linux writes it: pid, (comm), state, then fields 4..52. */
static void stat_line(char *buf, size_t len, const char *comm, unsigned long long start_ticks)
{
    snprintf(buf, len,
             "4242 (%s) R 1 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 %llu 12345678 "
             "300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
             comm, start_ticks);
}

Test(boot_phases, start_time_converts_boottime_ticks_to_monotonic)
{
    char line[512];
    int64_t start;

    /* Booted 1000 s ago (boottime 1000 s); monotonic 900 s (100 s suspended);
     * started at tick 99950 of 100/s = 999.5 s after boot: 0.5 s ago. */
    stat_line(line, sizeof(line), "flint", 99950);
    cr_assert_eq(boot_phases_parse_start(line, 100, 900000 * MS, 1000000 * MS, &start), 0);
    cr_assert_eq(start, 899500 * MS);
}

Test(boot_phases, start_time_survives_hostile_command_names)
{
    char line[512];
    int64_t start;

    /* A name may hold spaces and ") " sequences: only the last ')' ends it. */
    stat_line(line, sizeof(line), "a) R 1 2 3 (b", 500);
    cr_assert_eq(boot_phases_parse_start(line, 100, 10000 * MS, 10000 * MS, &start), 0);
    cr_assert_eq(start, 5000 * MS);
}

Test(boot_phases, start_time_rejects_malformed_lines)
{
    int64_t start = 7;

    cr_assert_eq(boot_phases_parse_start("", 100, 0, 0, &start), -EINVAL);
    cr_assert_eq(boot_phases_parse_start("1 (x R 1 2", 100, 0, 0, &start), -EINVAL);
    cr_assert_eq(boot_phases_parse_start("1 (x) R 1 2 3", 100, 0, 0, &start), -EINVAL);
    cr_assert_eq(boot_phases_parse_start("1 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12x 1", 100,
                                         0, 0, &start),
                 -EINVAL);
    cr_assert_eq(boot_phases_parse_start(
                     "1 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999 1", 100, 0,
                     0, &start),
                 -EINVAL);
    cr_assert_eq(boot_phases_parse_start("1 (x) R", 0, 0, 0, &start), -EINVAL);
    cr_assert_eq(start, 7, "a failed parse leaves the result alone");
}

Test(boot_phases, the_first_mark_wins)
{
    struct boot_phases bp = {.origin_ns = 1000 * MS};

    boot_phase_mark(&bp, BOOT_PHASE_FIRST_CONSOLE, 1001 * MS, 1002 * MS);
    boot_phase_mark(&bp, BOOT_PHASE_FIRST_CONSOLE, 1005 * MS, 1009 * MS);
    boot_phase_end(&bp, BOOT_PHASE_FIRST_CONSOLE);
    cr_assert_eq(bp.begin_ns[BOOT_PHASE_FIRST_CONSOLE], 1001 * MS);
    cr_assert_eq(bp.end_ns[BOOT_PHASE_FIRST_CONSOLE], 1002 * MS);
    boot_phase_begin(&bp, BOOT_PHASE_GUEST_EXIT);
    cr_assert_gt(bp.begin_ns[BOOT_PHASE_GUEST_EXIT], 0);
}

Test(boot_phases, table_lists_every_phase_in_order_relative_to_the_start)
{
    struct boot_phases bp = {.origin_ns = 5000 * MS};
    char buf[2048];
    const char *at = buf;
    int n;

    for (unsigned p = 0; p < BOOT_PHASES; p++)
        boot_phase_mark(&bp, p, (4990 + 10 * (int64_t)p) * MS, (4995 + 10 * (int64_t)p) * MS);
    n = boot_phases_format(&bp, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_eq((size_t)n, strlen(buf));
    for (unsigned p = 0; p < BOOT_PHASES; p++) {
        const char *line = strstr(at, boot_phase_name(p));
        long long start, took;
        cr_assert(line, "%s missing or out of order:\n%s", boot_phase_name(p), buf);
        cr_assert_eq(
            sscanf(line + strlen(boot_phase_name(p)), " start %lld us took %lld us", &start, &took),
            2, "%s", line);
        /* The exec estimate comes before the origin: a negative start. */
        cr_assert_eq(start, (-10 + 10 * (long long)p) * 1000);
        cr_assert_eq(took, 5000);
        at = line;
    }
}

Test(boot_phases, unreached_phases_say_so_and_a_short_buffer_is_refused)
{
    struct boot_phases bp = {.origin_ns = 1};
    char buf[2048], small[40];

    boot_phase_mark(&bp, BOOT_PHASE_CONFIG, 2, 3);
    /* An end without a begin (the VM ended before any console byte). */
    bp.end_ns[BOOT_PHASE_GUEST_EXIT] = 10;
    cr_assert_gt(boot_phases_format(&bp, buf, sizeof(buf)), 0);
    cr_assert(strstr(buf, "guest_exit         not reached"), "%s", buf);
    cr_assert(strstr(buf, "kvm_create_vm      not reached"), "%s", buf);
    cr_assert(strstr(buf, "config             start"), "%s", buf);
    cr_assert_eq(boot_phases_format(&bp, small, sizeof(small)), -ENOSPC);
}

Test(boot_phases, metrics_hold_durations_and_starts_of_reached_phases)
{
    struct boot_phases bp = {.origin_ns = 1000 * MS};
    json_t *gauges = json_object(), *boot;

    boot_phase_mark(&bp, BOOT_PHASE_CREATE_VM, 1002 * MS, 1003 * MS + 500000);
    cr_assert_eq(boot_phases_add_metrics(&bp, gauges), 0);
    boot = json_object_get(gauges, "boot");
    cr_assert(json_is_object(boot));
    cr_assert_eq(json_integer_value(json_object_get(boot, "kvm_create_vm_us")), 1500);
    cr_assert_eq(json_integer_value(json_object_get(boot, "kvm_create_vm_start_us")), 2000);
    cr_assert_null(json_object_get(boot, "guest_memory_us"));
    cr_assert_eq(json_object_size(boot), 2);
    json_decref(gauges);
}

Test(boot_phases, note_main_keeps_the_exec_estimate_before_the_origin)
{
    struct boot_phases bp = {0};
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    boot_phases_note_main(&bp, now);
    cr_assert_eq(bp.origin_ns, boot_phases_ts_ns(now));
    /* /proc is there in the unit tests: the estimate exists and precedes
     * the origin; main begins config after the exec phase ends. */
    cr_assert_gt(bp.begin_ns[BOOT_PHASE_EXEC], 0);
    cr_assert_leq(bp.begin_ns[BOOT_PHASE_EXEC], bp.origin_ns);
    cr_assert_geq(bp.begin_ns[BOOT_PHASE_CONFIG], bp.end_ns[BOOT_PHASE_EXEC]);
}
