/*
 * kvm.c - opening KVM, capability checks and VM-wide setup
 * (Documentation/virt/kvm/api.rst).
 */
#include "kvm.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_API_EXPECTED  12
#define CPUID_MAX_ENTRIES 256

static const struct {
    int cap;
    const char *name;
} required_caps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_HLT, "KVM_CAP_HLT"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CAP_TSC_DEADLINE_TIMER"},
};

static int fail(char *err, size_t errlen, int code, const char *what)
{
    snprintf(err, errlen, "%s: %s", what, strerror(-code));
    return code;
}

static int read_supported_cpuid(struct kvm *kvm, char *err, size_t errlen)
{
    size_t bytes = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);

    kvm->cpuid = calloc(1, bytes);
    if (!kvm->cpuid)
        return fail(err, errlen, -ENOMEM, "KVM_GET_SUPPORTED_CPUID");
    kvm->cpuid->nent = CPUID_MAX_ENTRIES;
    if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, kvm->cpuid) < 0)
        return fail(err, errlen, -errno, "KVM_GET_SUPPORTED_CPUID");
    return 0;
}

int kvm_open(struct kvm *kvm, const char *path, char *err, size_t errlen)
{
    int version, rc;

    memset(kvm, 0, sizeof(*kvm));
    kvm->vm_fd = -1;
    kvm->sys_fd = open(path, O_RDWR | O_CLOEXEC);
    if (kvm->sys_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s (is KVM available on this host?)", path,
                 strerror(-rc));
        return rc;
    }
    version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_EXPECTED) {
        snprintf(err, errlen, "%s: KVM API version %d, expected %d", path, version,
                 KVM_API_EXPECTED);
        return -ENOTSUP;
    }
    for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
        if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            snprintf(err, errlen, "%s: KVM lacks required capability %s", path,
                     required_caps[i].name);
            return -ENOTSUP;
        }
    }
    kvm->max_vcpus = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    kvm->vcpu_mmap_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm->vcpu_mmap_size < (int)sizeof(struct kvm_run))
        return fail(err, errlen, -ENOTSUP, "KVM_GET_VCPU_MMAP_SIZE");
    return read_supported_cpuid(kvm, err, errlen);
}

int kvm_create_vm(struct kvm *kvm, char *err, size_t errlen)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    uint64_t identity = KVM_IDENTITY_MAP_ADDRESS;

    kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
    if (kvm->vm_fd < 0)
        return fail(err, errlen, -errno, "KVM_CREATE_VM");
    /* Both must precede vCPU creation; they live in the MMIO gap, not in RAM. */
    if (ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
        return fail(err, errlen, -errno, "KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDRESS) < 0)
        return fail(err, errlen, -errno, "KVM_SET_TSS_ADDR");
    if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return fail(err, errlen, -errno, "KVM_CREATE_IRQCHIP");
    if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return fail(err, errlen, -errno, "KVM_CREATE_PIT2");
    return 0;
}

int kvm_map_guest_mem(struct kvm *kvm, const struct guest_mem *mem, char *err, size_t errlen)
{
    for (unsigned i = 0; i < mem->nregions; i++) {
        struct kvm_userspace_memory_region region = {
            .slot = i,
            .guest_phys_addr = mem->regions[i].gpa,
            .memory_size = mem->regions[i].size,
            .userspace_addr = (uintptr_t)mem->regions[i].host,
            .flags = kvm->log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        };
        if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
            return fail(err, errlen, -errno, "KVM_SET_USER_MEMORY_REGION");
    }
    return 0;
}

int kvm_get_dirty_log(struct kvm *kvm, const struct guest_mem *mem, uint64_t *out)
{
    for (unsigned i = 0; i < mem->nregions; i++) {
        uint64_t pages = mem->regions[i].size / 4096, first = mem->regions[i].file_offset / 4096;
        uint64_t *slot = calloc((pages + 63) / 64, 8);
        struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = slot};

        if (!slot)
            return -ENOMEM;
        if (ioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
            int e = -errno;
            free(slot);
            return e;
        }
        for (uint64_t p = 0; p < pages; p++)
            if (slot[p / 64] >> (p % 64) & 1)
                out[(first + p) / 64] |= 1ull << ((first + p) % 64);
        free(slot);
    }
    return 0;
}

int kvm_irq_pulse(struct kvm *kvm, unsigned gsi)
{
    struct kvm_irq_level irq = {.irq = gsi, .level = 1};

    if (ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        return -errno;
    irq.level = 0;
    if (ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        return -errno;
    return 0;
}

int kvm_irqfd(struct kvm *kvm, int fd, unsigned gsi)
{
    struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = gsi};

    return ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int kvm_ioeventfd(struct kvm *kvm, int fd, uint64_t addr, unsigned len, uint64_t datamatch)
{
    struct kvm_ioeventfd ioev = {
        .datamatch = datamatch,
        .addr = addr,
        .len = len,
        .fd = fd,
        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
    };

    return ioctl(kvm->vm_fd, KVM_IOEVENTFD, &ioev) < 0 ? -errno : 0;
}

void kvm_close(struct kvm *kvm)
{
    if (kvm->vm_fd >= 0)
        close(kvm->vm_fd);
    if (kvm->sys_fd >= 0)
        close(kvm->sys_fd);
    free(kvm->cpuid);
    kvm->cpuid = NULL;
    kvm->vm_fd = kvm->sys_fd = -1;
}
