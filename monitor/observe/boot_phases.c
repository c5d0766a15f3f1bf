/*
 * boot_phases.c - the phase marks, the exec estimate and their report.
 */
#define _GNU_SOURCE
#include "boot_phases.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct boot_phases boot_phases;

static const char *const phase_names[BOOT_PHASES] = {
    [BOOT_PHASE_EXEC] = "exec_to_main",
    [BOOT_PHASE_CONFIG] = "config",
    [BOOT_PHASE_GUEST_MEM] = "guest_memory",
    [BOOT_PHASE_KERNEL_LOAD] = "kernel_load",
    [BOOT_PHASE_CREATE_VM] = "kvm_create_vm",
    [BOOT_PHASE_VCPUS] = "vcpu_create",
    [BOOT_PHASE_SECCOMP] = "seccomp",
    [BOOT_PHASE_FIRST_RUN] = "first_kvm_run",
    [BOOT_PHASE_FIRST_CONSOLE] = "first_console_byte",
    [BOOT_PHASE_GUEST_EXIT] = "guest_exit",
};

const char *boot_phase_name(enum boot_phase p)
{
    return (unsigned)p < BOOT_PHASES ? phase_names[p] : "?";
}

static int64_t now_ns(clockid_t clk)
{
    struct timespec t;

    clock_gettime(clk, &t);
    return boot_phases_ts_ns(t);
}

/* First mark wins; a plain load first keeps the common "already marked"
 * case on hot paths to one read. */
static void mark_once(int64_t *slot, int64_t ns)
{
    int64_t expected = 0;

    if (__atomic_load_n(slot, __ATOMIC_RELAXED))
        return;
    __atomic_compare_exchange_n(slot, &expected, ns, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void boot_phase_begin(struct boot_phases *bp, enum boot_phase p)
{
    if (!__atomic_load_n(&bp->begin_ns[p], __ATOMIC_RELAXED))
        mark_once(&bp->begin_ns[p], now_ns(CLOCK_MONOTONIC));
}

void boot_phase_end(struct boot_phases *bp, enum boot_phase p)
{
    if (!__atomic_load_n(&bp->end_ns[p], __ATOMIC_RELAXED))
        mark_once(&bp->end_ns[p], now_ns(CLOCK_MONOTONIC));
}

void boot_phase_mark(struct boot_phases *bp, enum boot_phase p, int64_t begin_ns, int64_t end_ns)
{
    mark_once(&bp->begin_ns[p], begin_ns);
    mark_once(&bp->end_ns[p], end_ns);
}

int boot_phases_parse_start(const char *stat_line, long ticks_per_s, int64_t mono_now_ns,
                            int64_t boot_now_ns, int64_t *start_ns)
{
    /* Field 2, the command name, is in parentheses and may hold spaces and
     * parentheses itself: count fields from the last ')'. */
    const char *p = strrchr(stat_line, ')');
    unsigned long long ticks;
    char *end;

    if (!p || ticks_per_s <= 0)
        return -EINVAL;
    p++;
    /* Fields 3..21 precede starttime (field 22). */
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -EINVAL;
        if (field == 22)
            break;
        p += strcspn(p, " ");
    }
    errno = 0;
    ticks = strtoull(p, &end, 10);
    if (errno || end == p || (*end && *end != ' ' && *end != '\n') ||
        ticks > (unsigned long long)INT64_MAX / 1000000000)
        return -EINVAL;
    *start_ns = mono_now_ns - (boot_now_ns - (int64_t)(ticks * 1000000000ull / ticks_per_s));
    return 0;
}

/* The kernel's record of this task's start, on CLOCK_MONOTONIC; 0 when it
 * cannot be read (no /proc): the exec phase is then "not reached". */
static int64_t kernel_start_ns(void)
{
    char line[1024];
    int64_t start = 0;
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    line[n] = '\0';
    if (boot_phases_parse_start(line, sysconf(_SC_CLK_TCK), now_ns(CLOCK_MONOTONIC),
                                now_ns(CLOCK_BOOTTIME), &start))
        return 0;
    return start;
}

void boot_phases_note_main(struct boot_phases *bp, struct timespec process_start)
{
    int64_t origin = boot_phases_ts_ns(process_start);
    int64_t exec = kernel_start_ns();

    bp->origin_ns = origin;
    /* Ticks round down, but the two clocks are read a moment apart: an
     * estimate after the constructor ran is only that noise. */
    if (exec > origin)
        exec = origin;
    if (exec)
        boot_phase_mark(bp, BOOT_PHASE_EXEC, exec, now_ns(CLOCK_MONOTONIC));
    boot_phase_begin(bp, BOOT_PHASE_CONFIG);
}

static long long rel_us(const struct boot_phases *bp, int64_t ns)
{
    return (long long)((ns - bp->origin_ns) / 1000);
}

int boot_phases_format(const struct boot_phases *bp, char *buf, size_t len)
{
    size_t off = 0;

    for (unsigned p = 0; p < BOOT_PHASES; p++) {
        int64_t b = bp->begin_ns[p], e = bp->end_ns[p];
        int k;

        if (b && e && e >= b)
            k = snprintf(buf + off, len - off, "    %-18s start %9lld us  took %9lld us\n",
                         phase_names[p], rel_us(bp, b), (long long)((e - b) / 1000));
        else
            k = snprintf(buf + off, len - off, "    %-18s not reached\n", phase_names[p]);
        if (k < 0 || (size_t)k >= len - off)
            return -ENOSPC;
        off += (size_t)k;
    }
    return (int)off;
}

int boot_phases_add_metrics(const struct boot_phases *bp, json_t *gauges)
{
    json_t *obj = json_object();
    char key[48];

    if (!obj)
        return -ENOMEM;
    for (unsigned p = 0; p < BOOT_PHASES; p++) {
        int64_t b = bp->begin_ns[p], e = bp->end_ns[p];
        if (!b || !e || e < b)
            continue;
        snprintf(key, sizeof(key), "%s_us", phase_names[p]);
        if (json_object_set_new(obj, key, json_integer((e - b) / 1000)))
            goto nomem;
        snprintf(key, sizeof(key), "%s_start_us", phase_names[p]);
        if (json_object_set_new(obj, key, json_integer(rel_us(bp, b))))
            goto nomem;
    }
    if (json_object_set_new(gauges, "boot", obj))
        return -ENOMEM;
    return 0;
nomem:
    json_decref(obj);
    return -ENOMEM;
}
