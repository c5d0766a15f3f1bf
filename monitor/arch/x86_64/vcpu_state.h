/*
 * vcpu_state.h - the KVM state of a VM and of each vCPU, as a snapshot
 * stores it: read from KVM while the VM is paused, written into the state
 * stream, read back (every count checked) and given to a fresh VM's KVM.
 *
 * The kernel's own structures (<linux/kvm.h>, fixed layouts on x86_64) are
 * stored byte for byte: the state file's format version pins them, and KVM
 * checks every value again when it is set.
 */
#ifndef FLINT_VCPU_STATE_H
#define FLINT_VCPU_STATE_H

#include "snap_io.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;
struct kvm;

/* Bounds on what a state file may hold (KVM reports a few hundred MSRs
 * and well under a hundred CPUID entries). */
#define VCPU_STATE_MAX_MSRS  1024
#define VCPU_STATE_MAX_CPUID 256

struct vcpu_state {
    struct kvm_mp_state mp_state;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    /* struct kvm_xsave's 4 KiB (its flexible tail, for KVM_GET_XSAVE2, is
     * not used): a plain array keeps this struct standard C. */
    struct {
        uint32_t region[1024];
    } xsave;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs debugregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    uint32_t tsc_khz;
    uint32_t nmsrs;
    struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
    uint32_t ncpuid;
    struct kvm_cpuid_entry2 cpuid[VCPU_STATE_MAX_CPUID];
};

struct vm_state {
    struct kvm_irqchip pic_master, pic_slave, ioapic;
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
};

/* Append / read one vCPU's or the VM's state (the body of a section).
 * The getters return 0 or -EBADMSG with r->what naming the bad field. */
void vcpu_state_put(struct snap_writer *w, const struct vcpu_state *s);
int vcpu_state_get(struct snap_reader *r, struct vcpu_state *s);
void vm_state_put(struct snap_writer *w, const struct vm_state *s);
int vm_state_get(struct snap_reader *r, struct vm_state *s);

/* Read vCPU v's state from KVM. The vCPU must be outside KVM_RUN with no
 * exit left to complete (vcpu.c re-enters KVM_RUN with immediate_exit
 * before it holds for a pause). Returns 0 or -errno with one line in err. */
int vcpu_state_save(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen);

/* Give a created, never run vCPU the saved state, in the order KVM needs:
 * CPUID, TSC frequency, mp_state, regs, sregs, XSAVE, XCRs, debug
 * registers, LAPIC, MSRs, and the pending events last (they depend on
 * all the rest). Returns 0 or -errno with one line in err. */
int vcpu_state_restore(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen);

/* The VM-wide part: PIC master and slave, IOAPIC, PIT, kvmclock. */
int vm_state_save(struct kvm *kvm, struct vm_state *s, char *err, size_t errlen);
/* clock_realtime: move kvmclock forward by the wall-clock time since the
 * snapshot (KVM_CLOCK_REALTIME), rather than resume it where it stopped. */
int vm_state_restore(struct kvm *kvm, const struct vm_state *s, bool clock_realtime, char *err,
                     size_t errlen);

/* Refuse (-ENOTSUP, naming the CPUID leaf, register and bits) a saved CPUID
 * that has feature bits `supported` (KVM_GET_SUPPORTED_CPUID of this host)
 * lacks: the guest would find them gone mid-run. */
int vcpu_state_check_cpuid(const struct vcpu_state *s, const struct kvm_cpuid2 *supported,
                           char *err, size_t errlen);

#endif /* FLINT_VCPU_STATE_H */
