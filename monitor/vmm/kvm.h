/*
 * kvm.h - the KVM system and VM file descriptors.
 *
 * kvm_open() checks the API version and every capability flint relies on, so
 * a host that lacks one fails at start with the capability's name instead of
 * misbehaving later.
 */
#ifndef FLINT_KVM_H
#define FLINT_KVM_H

#include "guest_mem.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvm {
    int sys_fd;               /* /dev/kvm */
    int vm_fd;                /* KVM_CREATE_VM */
    int vcpu_mmap_size;       /* size of each vCPU's struct kvm_run mapping */
    int max_vcpus;            /* KVM_CAP_MAX_VCPUS */
    struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, for every vCPU */
    bool log_dirty;           /* memory slots log dirty pages (track_dirty_pages) */
};

/* Open `path` (normally /dev/kvm), check KVM_GET_API_VERSION == 12 and the
 * required capabilities, read the supported CPUID. Returns 0 or -errno with
 * one line in err. */
int kvm_open(struct kvm *kvm, const char *path, char *err, size_t errlen);

/* Create the VM: TSS and identity-map addresses, in-kernel irqchip (PIC,
 * IOAPIC, LAPICs) and PIT with a dummy speaker port. */
int kvm_create_vm(struct kvm *kvm, char *err, size_t errlen);

/* Register every RAM region of `mem` as a memory slot (slot i = region i),
 * with KVM_MEM_LOG_DIRTY_PAGES when kvm->log_dirty. */
int kvm_map_guest_mem(struct kvm *kvm, const struct guest_mem *mem, char *err, size_t errlen);

/* OR the pages the guest wrote since the last call (KVM_GET_DIRTY_LOG of
 * every slot, which also clears it) into `out`, one bit per 4 KiB page in
 * the memory file's order. Returns 0 or -errno. */
int kvm_get_dirty_log(struct kvm *kvm, const struct guest_mem *mem, uint64_t *out);

/* Pulse interrupt line `gsi` (level 1 then 0): an edge for ISA devices. */
int kvm_irq_pulse(struct kvm *kvm, unsigned gsi);

/* Route eventfd `fd` to interrupt line `gsi` (KVM_IRQFD): a write to the
 * eventfd injects an edge without a vCPU exit. Returns 0 or -errno. */
int kvm_irqfd(struct kvm *kvm, int fd, unsigned gsi);

/* Make a `len`-byte MMIO write of `datamatch` at `addr` signal eventfd `fd`
 * inside KVM (KVM_IOEVENTFD) instead of exiting to user space. */
int kvm_ioeventfd(struct kvm *kvm, int fd, uint64_t addr, unsigned len, uint64_t datamatch);

/* Close everything; safe on a partially opened struct (fds < 0 skipped). */
void kvm_close(struct kvm *kvm);

/* Address of the three-page TSS region (KVM_SET_TSS_ADDR) and the identity
 * map page just below it, both inside the 32-bit MMIO gap. */
#define KVM_TSS_ADDRESS          0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDRESS 0xfffbc000ull

#endif /* FLINT_KVM_H */
