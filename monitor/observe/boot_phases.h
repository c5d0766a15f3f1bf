/*
 * boot_phases.h - where the time from exec to the guest's exit goes.
 *
 * One process runs one VM, so the phases are process-wide: each phase has a
 * begin and an end mark, CLOCK_MONOTONIC, taken by whichever thread reaches
 * that point first (later marks are ignored, so a mark on a hot path such
 * as a console byte costs one atomic load after the first time). They are
 * printed by `--stats` and put in the metrics as the "boot" gauges, both
 * relative to the process start that vmm_process_start() records.
 *
 * The phases, in the order the monitor passes through them (main.c and
 * vmm.c mark them; the enum order is the chronological order):
 */
#ifndef FLINT_BOOT_PHASES_H
#define FLINT_BOOT_PHASES_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum boot_phase {
    BOOT_PHASE_EXEC,          /* exec -> main (estimated, see boot_phases_note_main) */
    BOOT_PHASE_CONFIG,        /* main -> arguments, config file and config checked */
    BOOT_PHASE_GUEST_MEM,     /* guest_mem_create_pages */
    BOOT_PHASE_KERNEL_LOAD,   /* kernel, initrd and boot information into RAM */
    BOOT_PHASE_CREATE_VM,     /* open /dev/kvm, KVM_CREATE_VM, memory slots */
    BOOT_PHASE_VCPUS,         /* KVM_CREATE_VCPU and register state, every vCPU */
    BOOT_PHASE_SECCOMP,       /* preparing the filters (each thread loads its own later) */
    BOOT_PHASE_FIRST_RUN,     /* vmm_start -> vCPU 0's first KVM_RUN */
    BOOT_PHASE_FIRST_CONSOLE, /* guest entry -> first console byte */
    BOOT_PHASE_GUEST_EXIT,    /* first console byte -> the VM ends */
    BOOT_PHASES
};

/* Marks in nanoseconds of CLOCK_MONOTONIC; 0 = not reached. */
struct boot_phases {
    int64_t origin_ns; /* process start: what printed times are relative to */
    int64_t begin_ns[BOOT_PHASES];
    int64_t end_ns[BOOT_PHASES];
};

/* The process's phases. */
extern struct boot_phases boot_phases;

/* Short name of a phase ("kvm_create_vm"): the --stats label and the
 * metrics key (with "_us"). */
const char *boot_phase_name(enum boot_phase p);

/* Mark the begin / end of phase p in `bp` now (or at `ns`), unless it was
 * marked before. Safe from any thread. */
void boot_phase_begin(struct boot_phases *bp, enum boot_phase p);
void boot_phase_end(struct boot_phases *bp, enum boot_phase p);
void boot_phase_mark(struct boot_phases *bp, enum boot_phase p, int64_t begin_ns, int64_t end_ns);

/* First thing in main(): set the origin to `process_start`, end the exec
 * phase and begin the config phase. The exec phase begins at the time the
 * kernel records for the task's creation (/proc/self/stat field 22, in
 * 1/CLK_TCK units on CLOCK_BOOTTIME), converted to CLOCK_MONOTONIC: that is
 * the fork before the exec, at 10 ms resolution, so on hardware it says only
 * "under 10 ms"; in the nested sandbox, where exec and the dynamic loader
 * take tens of ms, it is a usable estimate. Never later than process_start. */
void boot_phases_note_main(struct boot_phases *bp, struct timespec process_start);

/* Convert a /proc/<pid>/stat line's start time to CLOCK_MONOTONIC ns, given
 * the clocks read now and the ticks per second. Returns 0 or -EINVAL for a
 * line that does not parse (kept separate to be testable). */
int boot_phases_parse_start(const char *stat_line, long ticks_per_s, int64_t mono_now_ns,
                            int64_t boot_now_ns, int64_t *start_ns);

/* Write the phase table (one line per phase, "    <name> start <us> us
 * took <us> us", or "not reached") into buf. Returns the length, or
 * -ENOSPC when buf is too small. */
int boot_phases_format(const struct boot_phases *bp, char *buf, size_t len);

/* Set "boot": {"<name>_us": duration, ..., "<name>_start_us": ...} in a
 * metrics gauges object (gauges: these are not counters). Phases not
 * reached are left out. Returns 0 or -ENOMEM. */
int boot_phases_add_metrics(const struct boot_phases *bp, json_t *gauges);

static inline int64_t boot_phases_ts_ns(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#endif /* FLINT_BOOT_PHASES_H */
