/*
 * vcpu.h - virtual CPUs: one thread each, running KVM_RUN and dispatching
 * exits to the port-I/O and MMIO buses.
 *
 * A vCPU is stopped or asked a question by setting a flag and "kicking" its
 * thread with a signal; the kvm_run immediate_exit field closes the race
 * with a signal that lands just before KVM_RUN.
 */
#ifndef FLINT_VCPU_H
#define FLINT_VCPU_H

#include "guest_mem.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm;

enum vcpu_exit_kind {
    VCPU_EXIT_IO_IN,
    VCPU_EXIT_IO_OUT,
    VCPU_EXIT_MMIO_READ,
    VCPU_EXIT_MMIO_WRITE,
    VCPU_EXIT_INTR, /* a kick, or a signal */
    VCPU_EXIT_HLT,
    VCPU_EXIT_SHUTDOWN,
    VCPU_EXIT_SYSTEM_EVENT,
    VCPU_EXIT_FAIL_ENTRY,
    VCPU_EXIT_INTERNAL_ERROR,
    VCPU_EXIT_OTHER,
    VCPU_EXIT_KINDS,
};

/* Printable name of an exit kind ("io-out", ...). */
const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind);

/* What the halt watchdog last saw this vCPU doing. */
enum vcpu_activity {
    VCPU_ACTIVE = 0,      /* running, or halted with interrupts enabled */
    VCPU_PARKED,          /* waiting for INIT/SIPI; cannot run on its own */
    VCPU_HALTED_IRQS_OFF, /* HLT with RFLAGS.IF = 0: only NMI/INIT can wake it */
};

struct vcpu {
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
    struct vmm *vmm;
    uint64_t exits[VCPU_EXIT_KINDS]; /* written only by the vCPU thread */
    int check_activity;              /* atomic: watchdog asks for a sample */
    int activity;                    /* atomic: enum vcpu_activity */
    uint64_t watchdog_cpu_ns;        /* thread CPU time at the last watchdog tick */
    unsigned job_gen;                /* the last vmm_on_held_vcpus job it ran */
};

/* CPU time the vCPU thread has used, in ns (0 if unknown). A halted vCPU
 * sleeps in KVM and uses none, so the watchdog only kicks idle ones. */
uint64_t vcpu_thread_cpu_ns(struct vcpu *v);

/* Create vCPU `id` (APIC ID = id) of `nvcpus`, with CPUID, MSRs, FPU and
 * LAPIC set up. Returns 0 or -errno with a line in err. */
int vcpu_create(struct vcpu *v, struct vmm *vmm, unsigned id, unsigned nvcpus, char *err,
                size_t errlen);

/* Point the boot vCPU at a PVH entry: 32-bit flat protected mode, paging off,
 * EBX = start_info. Returns 0 or -errno. */
int vcpu_set_pvh_entry(struct vcpu *v, gpa_t entry, gpa_t start_info);

/* Point the boot vCPU at a Linux 64-bit boot protocol entry: long mode,
 * identity page tables at FLINT_PML4_ADDR, RSI = boot_params (the zero
 * page), stack at FLINT_BOOT_STACK_ADDR. Returns 0 or -errno. */
int vcpu_set_linux64_entry(struct vcpu *v, gpa_t entry, gpa_t boot_params);

/* Start the vCPU thread. Returns 0 or -errno. */
int vcpu_start(struct vcpu *v);

/* Interrupt KVM_RUN so the thread looks at its flags. */
void vcpu_kick(struct vcpu *v);

/* Wait for the thread to finish (after the VMM asked everyone to stop). */
void vcpu_join(struct vcpu *v);

/* Unmap and close. */
void vcpu_destroy(struct vcpu *v);

/* Install the kick signal handler; once per process before vcpu_start. */
int vcpu_signals_init(void);

/* Entries cpuid_for_vcpu may add to KVM's supported set: leaves 0xB and
 * 0x1F (three subleaves each) and, with smt on AMD, 8000_001E. */
#define CPUID_EXTRA_ENTRIES 7

/* The VM's CPU topology: one package of ncpus logical CPUs, threads_per_core
 * (1, or 2 with smt) to a core; vCPU i has APIC ID i. */
struct cpu_topology {
    unsigned ncpus;
    unsigned threads_per_core;
};

/* Threads per core for machine-config's smt: 2 when asked for and there is
 * more than one vCPU (Firecracker's rule), else 1. */
static inline unsigned cpu_threads_per_core(bool smt, unsigned ncpus)
{
    return smt && ncpus > 1 ? 2 : 1;
}

/* The CPUID of vCPU `id` (cpuid_x86_64.c): KVM's supported set `base` with
 * the APIC ID and `topo` in leaves 1, 4, 0xB, 0x1F and AMD's
 * 0x8000_0001/8/1D/1E. `out` has room for max_entries entries (base->nent +
 * CPUID_EXTRA_ENTRIES is always enough). Returns 0, or -1 when they would
 * not fit. */
int cpuid_for_vcpu(const struct kvm_cpuid2 *base, struct kvm_cpuid2 *out, unsigned max_entries,
                   unsigned id, const struct cpu_topology *topo);

/* Architecture hooks (vcpu_x86_64.c). */
int vcpu_arch_init(struct vcpu *v, unsigned nvcpus, char *err, size_t errlen);
int vcpu_arch_set_pvh_entry(struct vcpu *v, gpa_t entry, gpa_t start_info);
int vcpu_arch_set_linux64_entry(struct vcpu *v, gpa_t entry, gpa_t boot_params);
enum vcpu_activity vcpu_arch_activity(struct vcpu *v);
/* Instruction pointer for messages, or 0 when it cannot be read. */
uint64_t vcpu_arch_rip(struct vcpu *v);

#endif /* FLINT_VCPU_H */
