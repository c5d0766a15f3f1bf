/*
 * cpu_template_x86_64.c - Firecracker's static CPU templates as data, and
 * applying a template to a vCPU's CPUID and MSRs.
 *
 * The bit lists are the facts of Firecracker's static templates
 * (src/vmm/src/cpu_config/x86_64/static_cpu_templates/), bit numbers from
 * the Intel SDM vol. 2A (CPUID) and AMD APM vol. 3 appendix E. In short:
 * leaf 1 EAX becomes the model the template names (family 6, model 0x3f
 * stepping 2 for the T2 family, model 0x3e stepping 4 for C3); features
 * a guest could not keep across hosts (AVX-512, MPX, PKU, TSX, SGX, ...)
 * are hidden in leaves 1, 7, 0xD and 0x8000_0001/8; T2S also pins
 * IA32_ARCH_CAPABILITIES and T2CL hides its non-mitigation bits.
 */
#include "cpu_template.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_ARCH_CAPABILITIES 0x10a
#define SIG                        KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* Shorthands: B(mask, value) for one register; 0 masks leave it alone. */
#define B(m, v)                                                                                    \
    {                                                                                              \
        (m), (v)                                                                                   \
    }
#define LEAF(l, s, f, a, b, c, d)                                                                  \
    {                                                                                              \
        .leaf = (l), .subleaf = (s), .flags = (f), .regs = { a, b, c, d }                          \
    }
#define KEEP B(0, 0)

/* Leaf 1 EAX: family/model/stepping, all but the reserved bits 31-28, 15-14. */
#define FMS_MASK 0x0fff3fffu
/* Leaf 1 ECX: DTES64, MONITOR, DS-CPL, VMX, SMX, EIST, TM2, CNXT-ID, SDBG,
 * xTPR, PDCM, DCA off. */
#define T2_L1_ECX B(0x0004cdfcu, 0)
/* Leaf 1 EDX: MCE and MTRR on; PSN, DS, ACPI, SS, TM, IA64, PBE off. */
#define T2_L1_EDX B(0xe8641080u, 0x00001080u)
/* Leaf 7.0 EBX: ERMS on; SGX, HLE, RTM, RDT, MPX, AVX-512*, RDSEED, ADX,
 * CLFLUSHOPT, CLWB, PT, SHA off. ECX: AVX512_VBMI*, UMIP, PKU, OSPKE, GFNI,
 * VAES, VPCLMULQDQ, VNNI, BITALG, VPOPCNTDQ, LA57, RDPID, SGX_LC off.
 * EDX: 4VNNIW, 4FMAPS, FSRM, VP2INTERSECT off. */
#define T2_L7_EBX B(0xffefda14u, 0x00000200u)
#define T2_L7_ECX B(0x40415f5eu, 0)
#define T2_L7_EDX B(0x0000011cu, 0)
/* Leaf 0xD.0 EAX: MPX, AVX-512 and PKRU state off; 0xD.1 EAX: XSAVEC,
 * XGETBV, XSAVES off. */
#define XSTATE_L0_EAX B(0x000002f8u, 0)
#define XSTATE_L1_EAX B(0x0000000eu, 0)

/* T2 and T2S. */
static const struct cpuid_leaf_mod t2_leaves[] = {
    LEAF(0x1, 0, 0, B(FMS_MASK, 0x000306f2u), KEEP, T2_L1_ECX, T2_L1_EDX),
    LEAF(0x7, 0, SIG, KEEP, T2_L7_EBX, T2_L7_ECX, T2_L7_EDX),
    LEAF(0xd, 0, SIG, XSTATE_L0_EAX, KEEP, KEEP, KEEP),
    LEAF(0xd, 1, SIG, XSTATE_L1_EAX, KEEP, KEEP, KEEP),
    /* ECX: PREFETCHW, MONITORX off; EDX: 1 GiB pages off. */
    LEAF(0x80000001, 0, 0, KEEP, KEEP, B(0x20000100u, 0), B(0x04000000u, 0)),
    /* EBX: WBNOINVD off. */
    LEAF(0x80000008, 0, 0, KEEP, B(0x00000200u, 0), KEEP, KEEP),
};

/* T2CL: T2's leaves 1, 7 and 0xD; in 0x8000_0001 it also hides the bits
 * only AMD defines (SSE4A, MisAlignSse; MmxExt, MMX, FXSR, FFXSR), so that
 * Intel and AMD hosts (T2A) look alike. */
static const struct cpuid_leaf_mod t2cl_leaves[] = {
    LEAF(0x1, 0, 0, B(FMS_MASK, 0x000306f2u), KEEP, T2_L1_ECX, T2_L1_EDX),
    LEAF(0x7, 0, SIG, KEEP, T2_L7_EBX, T2_L7_ECX, T2_L7_EDX),
    LEAF(0xd, 0, SIG, XSTATE_L0_EAX, KEEP, KEEP, KEEP),
    LEAF(0xd, 1, SIG, XSTATE_L1_EAX, KEEP, KEEP, KEEP),
    LEAF(0x80000001, 0, 0, KEEP, KEEP, B(0x200001c0u, 0), B(0x07c00000u, 0)),
    LEAF(0x80000008, 0, 0, KEEP, B(0x00000200u, 0), KEEP, KEEP),
};

/* T2A: T2CL's view on an AMD host, so the two hosts look alike. */
static const struct cpuid_leaf_mod t2a_leaves[] = {
    LEAF(0x1, 0, 0, B(FMS_MASK, 0x000306f2u), KEEP, T2_L1_ECX, T2_L1_EDX),
    LEAF(0x7, 0, SIG, KEEP, T2_L7_EBX, T2_L7_ECX, T2_L7_EDX),
    LEAF(0xd, 0, SIG, XSTATE_L0_EAX, KEEP, KEEP, KEEP),
    LEAF(0xd, 1, SIG, XSTATE_L1_EAX, KEEP, KEEP, KEEP),
    /* ECX: SVM, SSE4A, MisAlignSse, 3DNowPrefetch, MONITORX off; EDX:
     * MmxExt, FFXSR, 1 GiB pages off (AMD APM E.4.2). */
    LEAF(0x80000001, 0, 0, KEEP, KEEP, B(0x200001c4u, 0), B(0x06400000u, 0)),
    /* EBX: RstrFpErrPtrs, IbrsPreferred, IbrsSameMode and
     * EferLmsleUnsupported on; CLZERO, WBNOINVD off (AMD APM E.4.7). */
    LEAF(0x80000008, 0, 0, KEEP, B(0x001c0205u, 0x001c0004u), KEEP, KEEP),
};

static const struct cpuid_leaf_mod c3_leaves[] = {
    /* Family 6 model 0x3e stepping 4; ECX also hides FMA and MOVBE, EDX
     * keeps IA64 (bit 30) as the host has it. */
    LEAF(0x1, 0, 0, B(FMS_MASK, 0x000306e4u), KEEP, B(0x0040dd3cu, 0), B(0xa8641080u, 0x00001080u)),
    /* EBX also hides BMI1, AVX2, BMI2, INVPCID, ERMS. */
    LEAF(0x7, 0, SIG, KEEP, B(0xffafdd3cu, 0), B(0x4041481eu, 0), B(0x0000000cu, 0)),
    LEAF(0xd, 0, SIG, XSTATE_L0_EAX, KEEP, KEEP, KEEP),
    LEAF(0xd, 1, SIG, XSTATE_L1_EAX, KEEP, KEEP, KEEP),
    /* ECX: LZCNT, PREFETCHW off; EDX: 1 GiB pages off. */
    LEAF(0x80000001, 0, 0, KEEP, KEEP, B(0x00000120u, 0), B(0x04000000u, 0)),
};

/* T2S: IA32_ARCH_CAPABILITIES pinned to the bits both Skylake and Cascade
 * Lake can honour (RSBA, SKIP_L1DFL_VMENTRY, IF_PSCHANGE_MC_NO, TAA_NO,
 * SBDR_SSDP_NO... as 0xc4c), so a snapshot may move between them. */
static const struct msr_mod t2s_msrs[] = {
    {MSR_IA32_ARCH_CAPABILITIES, ~0ull, 0x0000000000000c4cull},
};

/* T2CL: the bits that are not mitigations (MCU_CONTROL, MISC_PACKAGE_CTLS,
 * ENERGY_FILTERING_CTL, DOITM, FB_CLEAR_CTRL, BHI_NO, XAPIC_DISABLE_STATUS,
 * OVERCLOCKING_STATUS, GDS_CTRL, reserved bits) off; KVM's mitigation
 * bits pass through. */
static const struct msr_mod t2cl_msrs[] = {
    {MSR_IA32_ARCH_CAPABILITIES, 0xfffffffff2f51e00ull, 0},
};

#define TEMPLATE(l, m, nm)                                                                         \
    {                                                                                              \
        .leaves = (l), .nleaves = ARRAY_SIZE(l), .msrs = (m), .nmsrs = (nm)                        \
    }

static const struct {
    const char *name;
    enum cpu_vendor vendor;
    struct cpu_template t;
} statics[] = {
    [CPU_TEMPLATE_NONE] = {"None", CPU_VENDOR_OTHER, {0}},
    [CPU_TEMPLATE_C3] = {"C3", CPU_VENDOR_INTEL, TEMPLATE(c3_leaves, NULL, 0)},
    [CPU_TEMPLATE_T2] = {"T2", CPU_VENDOR_INTEL, TEMPLATE(t2_leaves, NULL, 0)},
    [CPU_TEMPLATE_T2S] = {"T2S", CPU_VENDOR_INTEL,
                          TEMPLATE(t2_leaves, t2s_msrs, ARRAY_SIZE(t2s_msrs))},
    [CPU_TEMPLATE_T2CL] = {"T2CL", CPU_VENDOR_INTEL,
                           TEMPLATE(t2cl_leaves, t2cl_msrs, ARRAY_SIZE(t2cl_msrs))},
    [CPU_TEMPLATE_T2A] = {"T2A", CPU_VENDOR_AMD, TEMPLATE(t2a_leaves, NULL, 0)},
    [CPU_TEMPLATE_CUSTOM] = {"Custom", CPU_VENDOR_OTHER, {0}},
};

const char *cpu_template_name(enum cpu_template_id id)
{
    return (unsigned)id < ARRAY_SIZE(statics) ? statics[id].name : "?";
}

int cpu_template_parse_name(const char *name)
{
    for (unsigned i = CPU_TEMPLATE_NONE; i < CPU_TEMPLATE_CUSTOM; i++)
        if (!strcmp(name, statics[i].name))
            return (int)i;
    return -EINVAL;
}

const struct cpu_template *cpu_template_static(enum cpu_template_id id)
{
    if (id == CPU_TEMPLATE_NONE || id >= CPU_TEMPLATE_CUSTOM)
        return NULL;
    return &statics[id].t;
}

enum cpu_vendor cpu_template_vendor(enum cpu_template_id id)
{
    return (unsigned)id < ARRAY_SIZE(statics) ? statics[id].vendor : CPU_VENDOR_OTHER;
}

enum cpu_vendor cpu_vendor_of(const struct kvm_cpuid2 *cpuid)
{
    for (unsigned i = 0; i < cpuid->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        char id[13];

        if (e->function != 0)
            continue;
        /* The vendor string is EBX, EDX, ECX (SDM vol. 2A, CPUID leaf 0). */
        memcpy(id, &e->ebx, 4);
        memcpy(id + 4, &e->edx, 4);
        memcpy(id + 8, &e->ecx, 4);
        id[12] = '\0';
        if (!strcmp(id, "GenuineIntel"))
            return CPU_VENDOR_INTEL;
        if (!strcmp(id, "AuthenticAMD"))
            return CPU_VENDOR_AMD;
        break;
    }
    return CPU_VENDOR_OTHER;
}

int cpu_template_resolve(enum cpu_template_id id, const struct cpu_template *custom,
                         const struct kvm_cpuid2 *host, const struct cpu_template **out, char *err,
                         size_t errlen)
{
    static const char *const vendors[] = {"neither Intel nor AMD", "Intel", "AMD"};
    enum cpu_vendor want = cpu_template_vendor(id), have;

    *out = NULL;
    if (id == CPU_TEMPLATE_NONE)
        return 0;
    if (id == CPU_TEMPLATE_CUSTOM) {
        *out = custom;
        return 0;
    }
    have = cpu_vendor_of(host);
    if (have != want) {
        /* Firecracker: "CPU vendor mismatched between actual CPU and CPU
         * template"; one vendor cannot pass for another. */
        snprintf(err, errlen,
                 "cpu_template %s is for %s CPUs, and this host's CPU is %s (CPU vendor "
                 "mismatched between actual CPU and CPU template)",
                 cpu_template_name(id), vendors[want], vendors[have]);
        return -EINVAL;
    }
    *out = cpu_template_static(id);
    return 0;
}

static void apply_leaf(const struct cpuid_leaf_mod *m, struct kvm_cpuid_entry2 *e)
{
    uint32_t *regs[CPUID_NREGS] = {&e->eax, &e->ebx, &e->ecx, &e->edx};

    for (unsigned r = 0; r < CPUID_NREGS; r++)
        *regs[r] = (*regs[r] & ~m->regs[r].mask) | (m->regs[r].value & m->regs[r].mask);
}

int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *cpuid,
                             unsigned max_entries)
{
    for (unsigned i = 0; t && i < t->nleaves; i++) {
        const struct cpuid_leaf_mod *m = &t->leaves[i];
        struct kvm_cpuid_entry2 *hit = NULL;

        for (unsigned j = 0; j < cpuid->nent && !hit; j++)
            if (cpuid->entries[j].function == m->leaf && cpuid->entries[j].index == m->subleaf)
                hit = &cpuid->entries[j];
        if (!hit) {
            if (cpuid->nent >= max_entries)
                return -E2BIG;
            hit = &cpuid->entries[cpuid->nent++];
            *hit = (struct kvm_cpuid_entry2){
                .function = m->leaf, .index = m->subleaf, .flags = m->flags};
        }
        apply_leaf(m, hit);
    }
    return 0;
}

uint64_t cpu_template_msr_value(const struct msr_mod *m, uint64_t current)
{
    return (current & ~m->mask) | (m->value & m->mask);
}

void cpu_template_free(struct cpu_template *t)
{
    if (!t)
        return;
    free((void *)t->leaves);
    free((void *)t->msrs);
    free((void *)t->caps);
    free(t);
}

/* KVM_GET_MSRS / KVM_SET_MSRS of one MSR: the ioctls return how many
 * entries they handled, so 0 means KVM does not know that MSR. */
static int msr_io(int vcpu_fd, unsigned long op, uint32_t index, uint64_t *data)
{
    union {
        struct kvm_msrs hdr;
        uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    } msrs;
    int n;

    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = 1;
    msrs.hdr.entries[0].index = index;
    msrs.hdr.entries[0].data = *data;
    n = ioctl(vcpu_fd, op, &msrs);
    if (n < 0)
        return -errno;
    if (n != 1)
        return -EOPNOTSUPP;
    *data = msrs.hdr.entries[0].data;
    return 0;
}

int cpu_template_apply_msrs(const struct cpu_template *t, int vcpu_fd, char *err, size_t errlen)
{
    for (unsigned i = 0; t && i < t->nmsrs; i++) {
        const struct msr_mod *m = &t->msrs[i];
        uint64_t v = 0;
        int rc = msr_io(vcpu_fd, KVM_GET_MSRS, m->addr, &v);

        if (!rc) {
            v = cpu_template_msr_value(m, v);
            rc = msr_io(vcpu_fd, KVM_SET_MSRS, m->addr, &v);
        }
        if (rc) {
            snprintf(err, errlen, "CPU template: MSR 0x%x cannot be set through KVM: %s", m->addr,
                     rc == -EOPNOTSUPP ? "KVM does not offer it" : strerror(-rc));
            return -EINVAL;
        }
    }
    return 0;
}

int cpu_template_check_caps(const struct cpu_template *t, int kvm_fd, char *err, size_t errlen)
{
    for (unsigned i = 0; t && i < t->ncaps; i++) {
        if (t->caps[i].remove)
            continue; /* flint's own required capabilities stay required */
        if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)t->caps[i].cap) <= 0) {
            snprintf(err, errlen,
                     "CPU template: kvm_capabilities: KVM does not offer capability %u",
                     t->caps[i].cap);
            return -EINVAL;
        }
    }
    return 0;
}
