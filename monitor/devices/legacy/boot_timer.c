/*
 * boot_timer.c - the boot-timer device (boot_timer.h).
 */
#include "boot_timer.h"
#include "log.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

void boot_timer_init(struct boot_timer *t, struct timespec start_wall, uint64_t start_cpu_ns)
{
    memset(t, 0, sizeof(*t));
    t->start_wall = start_wall;
    t->start_cpu_ns = start_cpu_ns;
}

int boot_timer_format(char *buf, size_t len, uint64_t wall_us, uint64_t cpu_us)
{
    return snprintf(buf, len, "Guest-boot-time = %6llu us %llu ms, %6llu CPU us %llu CPU ms",
                    (unsigned long long)wall_us, (unsigned long long)(wall_us / 1000),
                    (unsigned long long)cpu_us, (unsigned long long)(cpu_us / 1000));
}

static uint64_t ts_ns(struct timespec ts)
{
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void boot_timer_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct boot_timer *t = opaque;
    struct timespec wall, cpu;
    uint64_t wall_us, cpu_us;
    char line[128];

    if (offset != 0 || len != 1 || data[0] != FLINT_BOOT_TIMER_MAGIC)
        return;
    clock_gettime(CLOCK_MONOTONIC, &wall);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    wall_us = (ts_ns(wall) - ts_ns(t->start_wall)) / 1000;
    cpu_us = ts_ns(cpu) > t->start_cpu_ns ? (ts_ns(cpu) - t->start_cpu_ns) / 1000 : 0;
    __atomic_store_n(&t->last_wall_us, wall_us, __ATOMIC_RELAXED);
    __atomic_store_n(&t->last_cpu_us, cpu_us, __ATOMIC_RELAXED);
    if (__atomic_fetch_add(&t->marks, 1, __ATOMIC_SEQ_CST) >= BOOT_TIMER_MAX_LOGS)
        return;
    boot_timer_format(line, sizeof(line), wall_us, cpu_us);
    log_warn("%s", line);
}

static void boot_timer_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    (void)opaque;
    (void)offset;
    memset(data, 0, len);
}

const struct bus_dev_ops boot_timer_ops = {
    .name = "boot-timer", .read = boot_timer_read, .write = boot_timer_write};

/* ---- snapshots ---- */

#define SNAP_TAG_BOOT_TIMER SNAP_TAG('B', 'T', 'I', 'M')

void boot_timer_save(struct boot_timer *t, struct snap_writer *w)
{
    size_t mark = snap_section_begin(w, SNAP_TAG_BOOT_TIMER);

    snap_put_u32(w, __atomic_load_n(&t->marks, __ATOMIC_SEQ_CST));
    snap_section_end(w, mark);
}

int boot_timer_load(struct boot_timer *t, struct snap_reader *r)
{
    struct snap_reader sec;
    uint32_t marks;

    if (snap_section_enter(r, SNAP_TAG_BOOT_TIMER, &sec, "boot timer section"))
        return -EBADMSG;
    marks = snap_get_u32(&sec);
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    /* Any count is valid: only the limit on log lines depends on it, and
     * every count past the limit means the same, so it is clamped there
     * (a hostile count near the wrap gains the guest nothing). */
    if (marks > BOOT_TIMER_MAX_LOGS)
        marks = BOOT_TIMER_MAX_LOGS;
    __atomic_store_n(&t->marks, marks, __ATOMIC_SEQ_CST);
    return 0;
}
