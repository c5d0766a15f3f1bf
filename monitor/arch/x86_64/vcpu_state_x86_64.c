/*
 * vcpu_state_x86_64.c - a VM's and its vCPUs' KVM state for snapshots
 * (Documentation/virt/kvm/api.rst, section 4, for each ioctl).
 */
#include "vcpu_state.h"
#include "kvm.h"
#include "util.h"
#include "vcpu.h"
#include "vmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

_Static_assert(sizeof(((struct vcpu_state *)0)->xsave) == sizeof(struct kvm_xsave),
               "the saved XSAVE area is KVM_GET_XSAVE's");

#define PUT(w, field) snap_put_bytes((w), &(field), sizeof(field))
#define GET(r, field) snap_get_bytes((r), &(field), sizeof(field))

void vcpu_state_put(struct snap_writer *w, const struct vcpu_state *s)
{
    PUT(w, s->mp_state);
    PUT(w, s->regs);
    PUT(w, s->sregs);
    PUT(w, s->xsave);
    PUT(w, s->xcrs);
    PUT(w, s->debugregs);
    PUT(w, s->lapic);
    PUT(w, s->events);
    snap_put_u32(w, s->tsc_khz);
    snap_put_u32(w, s->nmsrs);
    snap_put_bytes(w, s->msrs, s->nmsrs * sizeof(s->msrs[0]));
    snap_put_u32(w, s->ncpuid);
    snap_put_bytes(w, s->cpuid, s->ncpuid * sizeof(s->cpuid[0]));
}

int vcpu_state_get(struct snap_reader *r, struct vcpu_state *s)
{
    GET(r, s->mp_state);
    GET(r, s->regs);
    GET(r, s->sregs);
    GET(r, s->xsave);
    GET(r, s->xcrs);
    GET(r, s->debugregs);
    GET(r, s->lapic);
    GET(r, s->events);
    s->tsc_khz = snap_get_u32(r);
    s->nmsrs = snap_get_u32(r);
    if (s->nmsrs > VCPU_STATE_MAX_MSRS) {
        snap_fail(r, "vCPU MSR count");
        return snap_error(r);
    }
    snap_get_bytes(r, s->msrs, s->nmsrs * sizeof(s->msrs[0]));
    s->ncpuid = snap_get_u32(r);
    if (s->ncpuid > VCPU_STATE_MAX_CPUID || (!snap_error(r) && s->ncpuid == 0)) {
        snap_fail(r, "vCPU CPUID entry count");
        return snap_error(r);
    }
    snap_get_bytes(r, s->cpuid, s->ncpuid * sizeof(s->cpuid[0]));
    if (!snap_error(r) && s->xcrs.nr_xcrs > KVM_MAX_XCRS)
        snap_fail(r, "vCPU XCR count");
    return snap_error(r);
}

void vm_state_put(struct snap_writer *w, const struct vm_state *s)
{
    PUT(w, s->pic_master);
    PUT(w, s->pic_slave);
    PUT(w, s->ioapic);
    PUT(w, s->pit);
    PUT(w, s->clock);
}

int vm_state_get(struct snap_reader *r, struct vm_state *s)
{
    GET(r, s->pic_master);
    GET(r, s->pic_slave);
    GET(r, s->ioapic);
    GET(r, s->pit);
    GET(r, s->clock);
    if (!snap_error(r) &&
        (s->pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER ||
         s->pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE || s->ioapic.chip_id != KVM_IRQCHIP_IOAPIC))
        snap_fail(r, "irqchip ids");
    return snap_error(r);
}

static int ioctl_fail(char *err, size_t errlen, unsigned id, const char *what)
{
    int e = errno;

    snprintf(err, errlen, "vcpu%u: %s: %s", id, what, strerror(e));
    return -e;
}

/* KVM_GET_MSRS stops at the first MSR it cannot read and returns how many
 * it read: drop that one and go on, so the list ends up as the MSRs KVM
 * both lists and reads. */
static int save_msrs(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen)
{
    struct kvm_msr_list *list;
    struct kvm_msrs *buf;
    struct kvm_msr_list probe = {.nmsrs = 0};
    uint32_t left = 0;
    int rc = 0;

    if (ioctl(v->vmm->kvm.sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_MSR_INDEX_LIST");
    if (probe.nmsrs > VCPU_STATE_MAX_MSRS) {
        snprintf(err, errlen, "vcpu%u: KVM lists %u MSRs, more than %d", v->id, probe.nmsrs,
                 VCPU_STATE_MAX_MSRS);
        return -E2BIG;
    }
    list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
    buf = calloc(1, sizeof(*buf) + VCPU_STATE_MAX_MSRS * sizeof(buf->entries[0]));
    if (!list || !buf) {
        free(list);
        free(buf);
        return -ENOMEM;
    }
    list->nmsrs = probe.nmsrs;
    if (ioctl(v->vmm->kvm.sys_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        rc = ioctl_fail(err, errlen, v->id, "KVM_GET_MSR_INDEX_LIST");
        goto out;
    }
    for (uint32_t i = 0; i < list->nmsrs && i < VCPU_STATE_MAX_MSRS; i++)
        buf->entries[left++].index = list->indices[i];
    while (left) {
        int got;
        uint32_t skip;

        buf->nmsrs = left;
        got = ioctl(v->fd, KVM_GET_MSRS, buf);
        if (got < 0 || (uint32_t)got > left) {
            rc = ioctl_fail(err, errlen, v->id, "KVM_GET_MSRS");
            goto out;
        }
        memcpy(s->msrs + s->nmsrs, buf->entries, (size_t)got * sizeof(buf->entries[0]));
        s->nmsrs += (uint32_t)got;
        skip = (uint32_t)got < left ? (uint32_t)got + 1 : left; /* and the unreadable one */
        memmove(buf->entries, buf->entries + skip, (left - skip) * sizeof(buf->entries[0]));
        left -= skip;
    }
out:
    free(list);
    free(buf);
    return rc;
}

static int save_cpuid(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen)
{
    struct kvm_cpuid2 *buf =
        calloc(1, sizeof(*buf) + VCPU_STATE_MAX_CPUID * sizeof(buf->entries[0]));
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    buf->nent = VCPU_STATE_MAX_CPUID;
    if (ioctl(v->fd, KVM_GET_CPUID2, buf) < 0) {
        rc = ioctl_fail(err, errlen, v->id, "KVM_GET_CPUID2");
    } else {
        s->ncpuid = buf->nent < VCPU_STATE_MAX_CPUID ? buf->nent : VCPU_STATE_MAX_CPUID;
        memcpy(s->cpuid, buf->entries, s->ncpuid * sizeof(buf->entries[0]));
    }
    free(buf);
    return rc;
}

int vcpu_state_save(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen)
{
    int khz;

    memset(s, 0, sizeof(*s));
    /* First: reading mp_state makes KVM deliver pending INIT/SIPI, which
     * changes the registers and LAPIC read below. */
    if (ioctl(v->fd, KVM_GET_MP_STATE, &s->mp_state) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_MP_STATE");
    if (ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_REGS");
    if (ioctl(v->fd, KVM_GET_SREGS, &s->sregs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_SREGS");
    if (ioctl(v->fd, KVM_GET_XSAVE, &s->xsave) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_XSAVE");
    if (ioctl(v->fd, KVM_GET_XCRS, &s->xcrs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_XCRS");
    if (ioctl(v->fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_DEBUGREGS");
    if (ioctl(v->fd, KVM_GET_LAPIC, &s->lapic) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_LAPIC");
    khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
    if (khz < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_TSC_KHZ");
    s->tsc_khz = (uint32_t)khz;
    int rc = save_msrs(v, s, err, errlen);
    if (!rc)
        rc = save_cpuid(v, s, err, errlen);
    if (rc)
        return rc;
    if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &s->events) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_GET_VCPU_EVENTS");
    return 0;
}

static int restore_cpuid(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + s->ncpuid * sizeof(c->entries[0]));
    int rc = 0;

    if (!c)
        return -ENOMEM;
    c->nent = s->ncpuid;
    memcpy(c->entries, s->cpuid, s->ncpuid * sizeof(c->entries[0]));
    if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
        rc = ioctl_fail(err, errlen, v->id, "KVM_SET_CPUID2");
    free(c);
    return rc;
}

/* KVM_SET_MSRS sets MSRs in order and returns how many it set: one it
 * refuses is reported by index, so the message says which. */
static int restore_msrs(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + s->nmsrs * sizeof(m->entries[0]));
    int set, rc = 0;

    if (!m)
        return -ENOMEM;
    m->nmsrs = s->nmsrs;
    memcpy(m->entries, s->msrs, s->nmsrs * sizeof(m->entries[0]));
    set = ioctl(v->fd, KVM_SET_MSRS, m);
    if (set < 0) {
        rc = ioctl_fail(err, errlen, v->id, "KVM_SET_MSRS");
    } else if ((uint32_t)set < s->nmsrs) {
        snprintf(err, errlen, "vcpu%u: KVM_SET_MSRS: this host refuses MSR 0x%x", v->id,
                 s->msrs[set].index);
        rc = -EINVAL;
    }
    free(m);
    return rc;
}

int vcpu_state_restore(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
    int rc = restore_cpuid(v, s, err, errlen);
    int khz;

    if (rc)
        return rc;
    /* Only when it differs: scaling needs KVM_CAP_TSC_CONTROL, which a host
     * of the same frequency does not need. */
    khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
    if (s->tsc_khz && khz != (int)s->tsc_khz &&
        ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0) {
        snprintf(err, errlen,
                 "vcpu%u: the snapshot's TSC runs at %u kHz, this host's at %d kHz, and KVM "
                 "cannot scale it: %s",
                 v->id, s->tsc_khz, khz, strerror(errno));
        return -ENOTSUP;
    }
    if (ioctl(v->fd, KVM_SET_MP_STATE, &s->mp_state) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_MP_STATE");
    if (ioctl(v->fd, KVM_SET_REGS, &s->regs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_REGS");
    if (ioctl(v->fd, KVM_SET_SREGS, &s->sregs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_SREGS");
    if (ioctl(v->fd, KVM_SET_XSAVE, &s->xsave) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_XSAVE");
    if (ioctl(v->fd, KVM_SET_XCRS, &s->xcrs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_XCRS");
    if (ioctl(v->fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_DEBUGREGS");
    if (ioctl(v->fd, KVM_SET_LAPIC, &s->lapic) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_LAPIC");
    if ((rc = restore_msrs(v, s, err, errlen)))
        return rc;
    if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
        return ioctl_fail(err, errlen, v->id, "KVM_SET_VCPU_EVENTS");
    return 0;
}

static int vm_fail(char *err, size_t errlen, const char *what)
{
    int e = errno;

    snprintf(err, errlen, "VM state: %s: %s", what, strerror(e));
    return -e;
}

int vm_state_save(struct kvm *kvm, struct vm_state *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    if (ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &s->pic_master) < 0 ||
        ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &s->pic_slave) < 0 ||
        ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &s->ioapic) < 0)
        return vm_fail(err, errlen, "KVM_GET_IRQCHIP");
    if (ioctl(kvm->vm_fd, KVM_GET_PIT2, &s->pit) < 0)
        return vm_fail(err, errlen, "KVM_GET_PIT2");
    if (ioctl(kvm->vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
        return vm_fail(err, errlen, "KVM_GET_CLOCK");
    return 0;
}

int vm_state_restore(struct kvm *kvm, const struct vm_state *s, bool clock_realtime, char *err,
                     size_t errlen)
{
    struct kvm_clock_data clock = s->clock;

    if (ioctl(kvm->vm_fd, KVM_SET_PIT2, &s->pit) < 0)
        return vm_fail(err, errlen, "KVM_SET_PIT2");
    /* KVM_SET_CLOCK takes only KVM_CLOCK_REALTIME: with it, KVM adds the
     * wall-clock time elapsed since clock.realtime. */
    clock.flags = clock_realtime && (s->clock.flags & KVM_CLOCK_REALTIME) ? KVM_CLOCK_REALTIME : 0;
    if (ioctl(kvm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
        return vm_fail(err, errlen, "KVM_SET_CLOCK");
    if (ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &s->pic_master) < 0 ||
        ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &s->pic_slave) < 0 ||
        ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &s->ioapic) < 0)
        return vm_fail(err, errlen, "KVM_SET_IRQCHIP");
    return 0;
}

/* The feature registers a guest tests, and the bits in them that are not
 * the host's to offer: those flint itself sets (cpuid_x86_64.c:
 * hypervisor, TSC deadline, HTT, CMP_LEGACY) and those KVM mirrors from
 * the guest's CR4 as it runs (OSXSAVE, leaf 1 ecx bit 27; OSPKE, leaf 7
 * ecx bit 4: SDM vol. 2A, CPUID), which KVM_GET_CPUID2 returns set once a
 * guest such as Linux turned them on and KVM_GET_SUPPORTED_CPUID never
 * reports. */
static const struct {
    uint32_t function, index;
    unsigned reg; /* 0 eax, 1 ebx, 2 ecx, 3 edx */
    uint32_t ignored_bits;
} feature_regs[] = {
    {1, 0, 2, 1u << 31 | 1u << 27 | 1u << 24},
    {1, 0, 3, 1u << 28},
    {7, 0, 1, 0},
    {7, 0, 2, 1u << 4},
    {7, 0, 3, 0},
    {0xd, 1, 0, 0},
    {0x80000001, 0, 2, 1u << 1},
    {0x80000001, 0, 3, 0},
};

static const struct kvm_cpuid_entry2 *find_leaf(const struct kvm_cpuid_entry2 *e, uint32_t n,
                                                uint32_t function, uint32_t index)
{
    for (uint32_t i = 0; i < n; i++)
        if (e[i].function == function && e[i].index == index)
            return &e[i];
    return NULL;
}

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, unsigned reg)
{
    return reg == 0 ? e->eax : reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
}

int vcpu_state_check_cpuid(const struct vcpu_state *s, const struct kvm_cpuid2 *supported,
                           char *err, size_t errlen)
{
    static const char *const names[] = {"eax", "ebx", "ecx", "edx"};

    for (size_t i = 0; i < ARRAY_SIZE(feature_regs); i++) {
        const struct kvm_cpuid_entry2 *saved, *host;
        uint32_t missing;

        saved = find_leaf(s->cpuid, s->ncpuid, feature_regs[i].function, feature_regs[i].index);
        if (!saved)
            continue;
        host = find_leaf(supported->entries, supported->nent, feature_regs[i].function,
                         feature_regs[i].index);
        missing = reg_of(saved, feature_regs[i].reg) & ~feature_regs[i].ignored_bits &
                  ~(host ? reg_of(host, feature_regs[i].reg) : 0);
        if (missing) {
            snprintf(err, errlen,
                     "the snapshot was taken on a CPU with features this host's KVM lacks: "
                     "CPUID leaf 0x%x.%u %s bits 0x%08x",
                     feature_regs[i].function, feature_regs[i].index, names[feature_regs[i].reg],
                     missing);
            return -ENOTSUP;
        }
    }
    return 0;
}
