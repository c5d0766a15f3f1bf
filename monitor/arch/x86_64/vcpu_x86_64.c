/*
 * vcpu_x86_64.c - x86_64 vCPU state at power-on and for the PVH entry.
 */
#include "config.h"
#include "cpu_template.h"
#include "kvm.h"
#include "loader.h"
#include "vcpu.h"
#include "vmm.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* SDM vol. 4 MSR numbers; asm/msr-index.h names. */
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 0x1ull
#define MTRR_ENABLE             (1ull << 11)
#define MTRR_TYPE_WRBACK        6ull

#define X86_CR0_PE       0x1ull
#define X86_CR0_ET       0x10ull
#define X86_CR0_PG       0x80000000ull
#define X86_CR4_PAE      0x20ull
#define X86_EFER_LME     0x100ull
#define X86_EFER_LMA     0x400ull
#define X86_RFLAGS_FIXED 0x2ull
#define X86_RFLAGS_IF    0x200ull

/* LAPIC register offsets and LVT delivery modes (SDM vol. 3 §10.5.1). */
#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static int arch_fail(char *err, size_t errlen, unsigned id, const char *what)
{
    int rc = -errno;
    snprintf(err, errlen, "vcpu%u: %s: %s", id, what, strerror(errno));
    return rc ? rc : -EIO;
}

static int setup_cpuid(struct vcpu *v, unsigned nvcpus, const struct cpu_template *tmpl, char *err,
                       size_t errlen)
{
    const struct kvm_cpuid2 *base = v->vmm->kvm.cpuid;
    unsigned max = base->nent + CPUID_EXTRA_ENTRIES + (tmpl ? tmpl->nleaves : 0);
    struct kvm_cpuid2 *cpuid = malloc(sizeof(*base) + max * sizeof(base->entries[0]));
    int rc = 0;

    if (!cpuid) {
        snprintf(err, errlen, "vcpu%u: out of memory for CPUID", v->id);
        return -ENOMEM;
    }
    const struct cpu_topology topo = {
        .ncpus = nvcpus, .threads_per_core = cpu_threads_per_core(v->vmm->cfg->smt, nvcpus)};

    /* The template goes last, so it decides over flint's own fix-ups. */
    if (cpuid_for_vcpu(base, cpuid, max, v->id, &topo) ||
        cpu_template_apply_cpuid(tmpl, cpuid, max)) {
        snprintf(err, errlen, "vcpu%u: too many CPUID entries", v->id);
        free(cpuid);
        return -E2BIG;
    }
    if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
        rc = arch_fail(err, errlen, v->id, "KVM_SET_CPUID2");
    free(cpuid);
    return rc;
}

static int setup_msrs(struct vcpu *v, char *err, size_t errlen)
{
    static const struct {
        uint32_t index;
        uint64_t value;
    } boot_msrs[] = {
        {MSR_IA32_SYSENTER_CS, 0},
        {MSR_IA32_SYSENTER_ESP, 0},
        {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0},
        {MSR_CSTAR, 0},
        {MSR_KERNEL_GS_BASE, 0},
        {MSR_SYSCALL_MASK, 0},
        {MSR_LSTAR, 0},
        {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
        {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK},
    };
    /* struct kvm_msrs ends in a flexible array: give it room in a union. */
    union {
        struct kvm_msrs hdr;
        uint8_t bytes[sizeof(struct kvm_msrs) +
                      sizeof(boot_msrs) / sizeof(boot_msrs[0]) * sizeof(struct kvm_msr_entry)];
    } msrs;
    int n;

    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = ARRAY_SIZE(boot_msrs);
    for (size_t i = 0; i < ARRAY_SIZE(boot_msrs); i++) {
        msrs.hdr.entries[i].index = boot_msrs[i].index;
        msrs.hdr.entries[i].data = boot_msrs[i].value;
    }
    n = ioctl(v->fd, KVM_SET_MSRS, &msrs);
    if (n < 0)
        return arch_fail(err, errlen, v->id, "KVM_SET_MSRS");
    if ((size_t)n < ARRAY_SIZE(boot_msrs)) {
        snprintf(err, errlen, "vcpu%u: KVM refused MSR 0x%x", v->id, boot_msrs[n].index);
        return -EINVAL;
    }
    return 0;
}

static uint32_t lvt_mode(uint32_t reg, uint32_t mode)
{
    return (reg & ~0x700u) | (mode << 8);
}

/* LINT0 delivers the PIC's ExtINT, LINT1 the NMI line, as firmware sets them. */
static int setup_lapic(struct vcpu *v, char *err, size_t errlen)
{
    struct kvm_lapic_state lapic;
    uint32_t reg;

    if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
        return arch_fail(err, errlen, v->id, "KVM_GET_LAPIC");
    memcpy(&reg, &lapic.regs[APIC_LVT_LINT0], 4);
    reg = lvt_mode(reg, APIC_MODE_EXTINT);
    memcpy(&lapic.regs[APIC_LVT_LINT0], &reg, 4);
    memcpy(&reg, &lapic.regs[APIC_LVT_LINT1], 4);
    reg = lvt_mode(reg, APIC_MODE_NMI);
    memcpy(&lapic.regs[APIC_LVT_LINT1], &reg, 4);
    if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
        return arch_fail(err, errlen, v->id, "KVM_SET_LAPIC");
    return 0;
}

int vcpu_arch_init(struct vcpu *v, unsigned nvcpus, char *err, size_t errlen)
{
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    const struct vm_config *cfg = v->vmm->cfg;
    const struct cpu_template *tmpl;
    int rc;

    /* A template for the other vendor is refused here, at InstanceStart,
     * where Firecracker refuses it too. */

    rc = cpu_template_resolve(cfg->cpu_template, cfg->custom_cpu, v->vmm->kvm.cpuid, &tmpl, err,
                              errlen);
    if (!rc && v->id == 0)
        rc = cpu_template_check_caps(tmpl, v->vmm->kvm.sys_fd, err, errlen);
    if (!rc)
        rc = setup_cpuid(v, nvcpus, tmpl, err, errlen);
    if (!rc)
        rc = setup_msrs(v, err, errlen);
    if (!rc)
        rc = cpu_template_apply_msrs(tmpl, v->fd, err, errlen);
    if (!rc && ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        rc = arch_fail(err, errlen, v->id, "KVM_SET_FPU");
    if (!rc)
        rc = setup_lapic(v, err, errlen);
    return rc;
}

static struct kvm_segment gdt_segment(uint64_t desc, uint16_t selector)
{
    /* Decode a GDT descriptor into KVM's view of a loaded segment register. */
    return (struct kvm_segment){
        .base = (uint32_t)(((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000)),
        .limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000)),
        .selector = selector,
        .type = (desc >> 40) & 0xf,
        .s = (desc >> 44) & 1,
        .dpl = (desc >> 45) & 3,
        .present = (desc >> 47) & 1,
        .avl = (desc >> 52) & 1,
        .l = (desc >> 53) & 1,
        .db = (desc >> 54) & 1,
        .g = (desc >> 55) & 1,
    };
}

/* Flat segments from the boot GDT (boot_write_gdt) with code descriptor
 * `code_desc`, the given control registers, and RIP/RFLAGS. */
static int set_boot_state(struct vcpu *v, uint64_t code_desc, const struct kvm_sregs *cr,
                          struct kvm_regs *regs)
{
    struct kvm_sregs sregs;
    struct kvm_segment code = gdt_segment(code_desc, BOOT_SEL_CODE);
    struct kvm_segment data = gdt_segment(BOOT_GDT_DATA32, BOOT_SEL_DATA);
    struct kvm_segment tss = gdt_segment(BOOT_GDT_TSS, BOOT_SEL_TSS);

    if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    /* Limits in KVM segments are byte granular: expand page-granular ones. */
    code.limit = data.limit = 0xffffffff;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = tss;
    sregs.gdt.base = FLINT_GDT_ADDR;
    sregs.gdt.limit = 4 * 8 - 1;
    sregs.idt.base = FLINT_IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cr0 = cr->cr0;
    sregs.cr3 = cr->cr3;
    sregs.cr4 = cr->cr4;
    sregs.efer = cr->efer;
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
        return -errno;
    regs->rflags = X86_RFLAGS_FIXED;
    if (ioctl(v->fd, KVM_SET_REGS, regs) < 0)
        return -errno;
    return 0;
}

int vcpu_arch_set_pvh_entry(struct vcpu *v, gpa_t entry, gpa_t start_info)
{
    /* PVH: protected mode, paging off (Xen docs/misc/pvh.pandoc). */
    const struct kvm_sregs cr = {.cr0 = X86_CR0_PE | X86_CR0_ET};
    struct kvm_regs regs = {.rip = entry, .rbx = start_info};

    return set_boot_state(v, BOOT_GDT_CODE32, &cr, &regs);
}

int vcpu_arch_set_linux64_entry(struct vcpu *v, gpa_t entry, gpa_t boot_params)
{
    /* Linux boot.rst "64-bit Boot Protocol": long mode with paging, an
     * identity map covering the kernel, zero page and command line, a
     * 64-bit code segment and flat data segments, RSI = zero page. */
    const struct kvm_sregs cr = {.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG,
                                 .cr3 = FLINT_PML4_ADDR,
                                 .cr4 = X86_CR4_PAE,
                                 .efer = X86_EFER_LME | X86_EFER_LMA};
    struct kvm_regs regs = {.rip = entry,
                            .rsi = boot_params,
                            .rsp = FLINT_BOOT_STACK_ADDR,
                            .rbp = FLINT_BOOT_STACK_ADDR};

    return set_boot_state(v, BOOT_GDT_CODE64, &cr, &regs);
}

enum vcpu_activity vcpu_arch_activity(struct vcpu *v)
{
    struct kvm_mp_state mp;
    struct kvm_regs regs;

    if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
        return VCPU_ACTIVE;
    switch (mp.mp_state) {
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED:
        return VCPU_PARKED;
    case KVM_MP_STATE_HALTED:
        if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
            return VCPU_ACTIVE;
        return (regs.rflags & X86_RFLAGS_IF) ? VCPU_ACTIVE : VCPU_HALTED_IRQS_OFF;
    default:
        return VCPU_ACTIVE;
    }
}

uint64_t vcpu_arch_rip(struct vcpu *v)
{
    struct kvm_regs regs;

    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
        return 0;
    return regs.rip;
}
