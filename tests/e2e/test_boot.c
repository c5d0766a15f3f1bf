/*
 * End-to-end tests: real guests under KVM (run through tests/kvm-run).
 * Each test boots one guest-shim image and checks flint's exit status and
 * what the guest and flint printed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Generous: the nested sandbox is 50-200x slower than hardware. */
#define BOOT_TIMEOUT_S 240.0

/* Run flint with a NULL-terminated argument list. */
static struct flint_result flint(const char *first, ...)
{
    char *argv[32];
    int n = 0;
    va_list ap;

    argv[n++] = FLINT_BIN;
    argv[n++] = (char *)first;
    va_start(ap, first);
    while (n < 31 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    return run_cmd(argv, BOOT_TIMEOUT_S);
}

#define GUEST(name) GUEST_DIR "/" name ".elf"

static void expect_status(const struct flint_result *r, int status)
{
    cr_assert_not(r->timed_out, "flint did not finish in %.0f s\nstdout:\n%s\nstderr:\n%s",
                  BOOT_TIMEOUT_S, r->out, r->err);
    cr_assert_eq(r->status, status, "exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s",
                 r->status, status, r->out, r->err);
}

static void expect_one_line_error(const struct flint_result *r, int status, const char *needle);

static void expect_in(const char *haystack, const char *needle, const char *which)
{
    cr_assert(strstr(haystack, needle) != NULL, "%s lacks '%s':\n%s", which, needle, haystack);
}

Test(boot, default_guest_says_hello_and_exits_zero)
{
    struct flint_result r = flint("run", NULL);
    expect_status(&r, 0);
    expect_in(r.out, "Hello from flint guest-shim", "stdout");
    expect_in(r.out, "boot-to-main:", "stdout");
    expect_in(r.out, "on KVM: yes", "stdout");
    cr_assert_eq(r.err[0], '\0', "no log lines on a clean run: %s", r.err);
    flint_result_free(&r);
}

Test(boot, guest_sees_its_command_line)
{
    struct flint_result r =
        flint("run", "--kernel", HELLO_ELF, "--cmdline", "flint-e2e marker=42 x", NULL);
    expect_status(&r, 0);
    expect_in(r.out, "cmdline: flint-e2e marker=42 x", "stdout");
    flint_result_free(&r);
}

Test(boot, exit_status_is_the_guests)
{
    static const char *const statuses[][2] = {
        {NULL, "7"}, {"status=0", "0"}, {"status=42", "42"}, {"status=255", "255"}};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        struct flint_result r =
            statuses[i][0]
                ? flint("run", "--kernel", GUEST("exitstatus"), "--cmdline", statuses[i][0], NULL)
                : flint("run", "--kernel", GUEST("exitstatus"), NULL);
        expect_status(&r, atoi(statuses[i][1]));
        flint_result_free(&r);
    }
}

Test(boot, triple_fault_ends_flint_with_a_message)
{
    struct flint_result r = flint("run", "--kernel", GUEST("triplefault"), NULL);
    expect_status(&r, 3);
    expect_in(r.err, "triple fault", "stderr");
    flint_result_free(&r);
}

Test(boot, page_fault_is_reported_by_the_guest)
{
    struct flint_result r = flint("run", "--kernel", GUEST("pagefault"), NULL);
    expect_status(&r, 128 + 14);
    expect_in(r.out, "#PF", "stdout");
    flint_result_free(&r);
}

Test(boot, halt_with_interrupts_off_is_detected)
{
    struct flint_result r = flint("run", "--kernel", GUEST("hltcli"), NULL);
    expect_status(&r, 3);
    expect_in(r.err, "halted with interrupts disabled", "stderr");
    flint_result_free(&r);
}

Test(boot, i8042_reset_ends_flint_with_zero)
{
    struct flint_result r = flint("run", "--kernel", GUEST("reset"), NULL);
    expect_status(&r, 0);
    expect_in(r.out, "resetting through the i8042", "stdout");
    flint_result_free(&r);
}

static char *write_temp(const void *data, size_t len);

Test(boot, initrd_reaches_the_guest_intact)
{
    /* An odd size, so the page-aligned placement and the length both matter. */
    size_t size = 300001;
    uint8_t *data = malloc(size);
    uint32_t sum = 0, seed = 7;
    for (size_t i = 0; i < size; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (uint8_t)(seed >> 16);
        sum = sum * 31 + data[i];
    }
    char *path = write_temp(data, size);
    char expect[96];
    snprintf(expect, sizeof(expect), "module 0: %zu bytes, sum %08x", size, sum);
    struct flint_result r = flint("run", "--kernel", GUEST("initrd"), "--initrd", path, NULL);
    expect_status(&r, 0);
    expect_in(r.out, "modules: 1", "stdout");
    expect_in(r.out, expect, "stdout");
    flint_result_free(&r);

    r = flint("run", "--kernel", GUEST("initrd"), NULL);
    expect_status(&r, 1);
    expect_in(r.out, "modules: 0", "stdout");
    flint_result_free(&r);
    unlink(path);
    free(path);
    free(data);
}

Test(config, initrd_too_big_for_memory)
{
    size_t size = 9u << 20;
    char *zeros = calloc(1, size);
    char *path = write_temp(zeros, size);
    struct flint_result r = flint("run", "--mem", "8", "--initrd", path, NULL);
    expect_one_line_error(&r, 152, "larger than low guest RAM");
    flint_result_free(&r);
    unlink(path);
    free(path);
    free(zeros);
}

static void boot_smp(const char *vcpus, const char *expect_line)
{
    char cmdline[32];
    snprintf(cmdline, sizeof(cmdline), "cpus=%s", vcpus);
    struct flint_result r = flint("run", "--kernel", GUEST("smp"), "--vcpus", vcpus, "--cmdline",
                                  cmdline, "--stats", NULL);
    expect_status(&r, 0);
    expect_in(r.out, expect_line, "stdout");
    char stat_line[32];
    snprintf(stat_line, sizeof(stat_line), "vcpus: %s,", vcpus);
    expect_in(r.err, stat_line, "stats");
    flint_result_free(&r);
}

Test(smp, one_vcpu)
{
    boot_smp("1", "cpus online: 1");
}

Test(smp, two_vcpus_all_start)
{
    boot_smp("2", "cpus online: 2");
}

Test(smp, four_vcpus_all_start)
{
    boot_smp("4", "cpus online: 4");
}

Test(smp, guest_notices_missing_cpus)
{
    /* The guest waits for 4 CPUs but only 2 exist: it must say so and fail. */
    struct flint_result r =
        flint("run", "--kernel", GUEST("smp"), "--vcpus", "2", "--cmdline", "cpus=4", NULL);
    expect_status(&r, 1);
    expect_in(r.out, "cpus online: 2", "stdout");
    flint_result_free(&r);
}

Test(stats, exits_and_startup_time_are_reported)
{
    struct flint_result r = flint("run", "--stats", NULL);
    expect_status(&r, 0);
    expect_in(r.err, "process start -> first KVM_RUN:", "stats");
    expect_in(r.err, "vm exits:", "stats");
    expect_in(r.err, "io-out", "stats");
    expect_in(r.err, "pvconsole", "stats");
    expect_in(r.err, "pvexit", "stats");
    flint_result_free(&r);
}

/* The hello guest's console goes through the paravirtual console: one exit
 * per write, not one per byte (132 of its 133 exits through the 16550). */
Test(stats, hello_console_costs_a_few_exits)
{
    struct flint_result r = flint("run", "--stats", NULL);
    const char *line;
    unsigned long long exits = 0, io_out = ~0ull;

    expect_status(&r, 0);
    expect_in(r.out, "Hello from flint guest-shim", "stdout");
    line = strstr(r.err, "vm exits:");
    cr_assert(line && sscanf(line, "vm exits: %llu", &exits) == 1, "%s", r.err);
    line = strstr(r.err, "io-out");
    cr_assert(line && sscanf(line, "io-out %llu", &io_out) == 1, "%s", r.err);
    cr_assert_lt(io_out, 10, "port writes: %llu\n%s", io_out, r.err);
    cr_assert_lt(exits, 20, "exits: %llu\n%s", exits, r.err);
    cr_assert_null(strstr(r.err, "serial"), "the 16550 should not be used:\n%s", r.err);
    flint_result_free(&r);
}

/* What the guest writes through the paravirtual console reaches stdout
 * byte for byte, in order, long lines included. */
Test(boot, paravirtual_console_output_is_byte_identical)
{
    struct flint_result r = flint("run", "--kernel", GUEST("consoletext"), "--stats", NULL);
    char *want = console_text_expected();

    expect_status(&r, 0);
    cr_assert_str_eq(r.out, want, "stdout differs from the guest's text");
    expect_in(r.err, "pvconsole", "stats");
    cr_assert_null(strstr(r.err, "pvconsole: write dropped"), "%s", r.err);
    free(want);
    flint_result_free(&r);
}

Test(stats, debug_level_prints_stats_and_exit_reason)
{
    struct flint_result r = flint("run", "--level", "Debug", NULL);
    expect_status(&r, 0);
    expect_in(r.err, "guest exited with status 0", "stderr");
    expect_in(r.err, "vm exits:", "stderr");
    flint_result_free(&r);
}

/* --- configuration errors: exit 152 with one line naming the problem --- */

static void expect_one_line_error(const struct flint_result *r, int status, const char *needle)
{
    expect_status(r, status);
    cr_assert_eq(count_lines(r->err), 1, "expected one line, got:\n%s", r->err);
    expect_in(r->err, needle, "stderr");
    cr_assert_eq(r->out[0], '\0', "no guest output: %s", r->out);
}

Test(config, missing_kernel_file)
{
    struct flint_result r = flint("run", "--kernel", "/nonexistent/vmlinux", NULL);
    expect_one_line_error(&r, 152, "/nonexistent/vmlinux");
    expect_in(r.err, "No such file", "stderr");
    flint_result_free(&r);
}

static char *write_temp(const void *data, size_t len)
{
    char *path = strdup("/tmp/flint-e2e-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(config, corrupt_and_truncated_kernels)
{
    char head[200];
    FILE *f = fopen(HELLO_ELF, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(head, 1, sizeof(head), f), sizeof(head));
    fclose(f);

    char *truncated = write_temp(head, sizeof(head));
    struct flint_result r = flint("run", "--kernel", truncated, NULL);
    expect_one_line_error(&r, 152, truncated);
    expect_in(r.err, "beyond the end of the file", "stderr");
    flint_result_free(&r);

    static const char script[] = "#!/bin/sh\n# a shell script is not a kernel, however long it is\n"
                                 "echo hello\n";
    char *text = write_temp(script, sizeof(script) - 1);
    r = flint("run", "--kernel", text, NULL);
    expect_one_line_error(&r, 152, "neither an ELF kernel");
    flint_result_free(&r);
    unlink(truncated);
    unlink(text);
    free(truncated);
    free(text);
}

Test(config, memory_size_out_of_range)
{
    struct flint_result r = flint("run", "--mem", "1", NULL);
    expect_one_line_error(&r, 152, "mem: 1 MiB is out of range");
    flint_result_free(&r);
}

Test(config, missing_initrd)
{
    struct flint_result r = flint("run", "--initrd", "/nonexistent/initrd", NULL);
    expect_one_line_error(&r, 152, "initrd /nonexistent/initrd");
    flint_result_free(&r);
}

Test(config, too_many_vcpus)
{
    struct flint_result r = flint("run", "--vcpus", "33", NULL);
    expect_one_line_error(&r, 152, "vcpus: 33 is out of range");
    flint_result_free(&r);
}

Test(cli, bad_argument_exits_153)
{
    struct flint_result r = flint("run", "--vcpus", "two", NULL);
    expect_one_line_error(&r, 153, "--vcpus");
    flint_result_free(&r);
    r = flint("launch", NULL);
    expect_one_line_error(&r, 153, "unknown command 'launch'");
    flint_result_free(&r);
}

Test(cli, help_and_version)
{
    struct flint_result r = flint("--help", NULL);
    expect_status(&r, 0);
    expect_in(r.out, "Usage: flint run", "stdout");
    flint_result_free(&r);
    r = flint("--version", NULL);
    expect_status(&r, 0);
    expect_in(r.out, "flint v", "stdout");
    flint_result_free(&r);
}

/* ---- guest memory on 2 MiB huge pages ---- */

#define NR_HUGEPAGES   "/proc/sys/vm/nr_hugepages"
#define FREE_HUGEPAGES "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = -1;

    if (f) {
        if (fscanf(f, "%ld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static bool write_long(const char *path, long n)
{
    FILE *f = fopen(path, "w");
    bool ok = f && fprintf(f, "%ld\n", n) > 0;

    if (f)
        ok = (fclose(f) == 0) && ok;
    return ok;
}

Test(boot, huge_pages_back_guest_memory_or_flint_says_why)
{
    long total = read_long(NR_HUGEPAGES), free = read_long(FREE_HUGEPAGES);
    char mem[32];
    struct flint_result r;

    if (total < 0 || free < 0)
        cr_skip_test("no 2 MiB hugetlb pool on this host");
    /* More than the pool holds: refused before the guest runs, naming the
     * cause, instead of a SIGBUS later. */
    if (free < 1024) {
        snprintf(mem, sizeof(mem), "%ld", (free + 1) * 2);
        r = flint("run", "--huge-pages", "2M", "--mem", mem, NULL);
        expect_status(&r, 1);
        expect_in(r.err, "huge pages: the host cannot reserve", "stderr");
        expect_in(r.err, "vm.nr_hugepages", "stderr");
        flint_result_free(&r);
    }
    /* 32 more pages (64 MiB) for a 64 MiB guest; the pool goes back after. */
    cr_assert(write_long(NR_HUGEPAGES, total + 32), "cannot grow %s (root?)", NR_HUGEPAGES);
    if (read_long(FREE_HUGEPAGES) < 32) {
        write_long(NR_HUGEPAGES, total);
        cr_skip_test("the host could not find 32 free 2 MiB pages");
    }
    r = flint("run", "--huge-pages", "2M", "--mem", "64", NULL);
    write_long(NR_HUGEPAGES, total);
    expect_status(&r, 0);
    expect_in(r.out, "Hello from flint guest-shim", "stdout");
    expect_in(r.out, "ram: 63 MiB", "stdout");
    flint_result_free(&r);
}
