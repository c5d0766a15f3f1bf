/*
 * boot_timer.h - the boot-timer device (Firecracker-compatible): a guest
 * marks "booted" with a 1-byte write of FLINT_BOOT_TIMER_MAGIC (123) at
 * offset 0 of its MMIO window (FLINT_BOOT_TIMER_ADDR), and flint logs
 *
 *   Guest-boot-time = N us N ms, N CPU us N CPU ms
 *
 * measured from `start`: wall time on CLOCK_MONOTONIC and this process's
 * CPU time. `flint run --boot-timer` starts it at process start; the API
 * will start it at InstanceStart. The line is logged at Warning level, as
 * Firecracker first did, so the default log level shows it.
 */
#ifndef FLINT_BOOT_TIMER_H
#define FLINT_BOOT_TIMER_H

#include "bus.h"
#include "snap_io.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BOOT_TIMER_MMIO_SIZE 0x1000
/* Marks logged at most: a guest writing the magic in a loop cannot flood
 * the log. */
#define BOOT_TIMER_MAX_LOGS 16

struct boot_timer {
    struct timespec start_wall; /* CLOCK_MONOTONIC */
    uint64_t start_cpu_ns;      /* CLOCK_PROCESS_CPUTIME_ID */
    unsigned marks;             /* atomic: magic writes seen */
    uint64_t last_wall_us;      /* atomic: the last mark's times */
    uint64_t last_cpu_us;
};

/* Start counting from the given instants. */
void boot_timer_init(struct boot_timer *t, struct timespec start_wall, uint64_t start_cpu_ns);

/* Write the log line for a mark into buf; returns snprintf's result. */
int boot_timer_format(char *buf, size_t len, uint64_t wall_us, uint64_t cpu_us);

/* Snapshots: the number of marks seen, so a restored guest cannot log
 * more than BOOT_TIMER_MAX_LOGS lines in all. The start instants and the
 * last mark's times are readings of this process's clocks, meaningless in
 * another: a restored timer keeps the start it was given. Load returns 0
 * or -EBADMSG with r->what set, changing nothing then. */
void boot_timer_save(struct boot_timer *t, struct snap_writer *w);
int boot_timer_load(struct boot_timer *t, struct snap_reader *r);

/* Bus ops for the MMIO window; reads return zeros. */
extern const struct bus_dev_ops boot_timer_ops;

#endif /* FLINT_BOOT_TIMER_H */
