/*
 * cpu_template.h - CPU templates: which CPUID bits and MSR values a guest
 * sees, whatever the host has, so a fleet of different hosts looks like
 * one CPU (and a snapshot can move between them). The static templates
 * are Firecracker's (T2, T2S, C3, T2CL for Intel hosts, T2A for AMD
 * hosts, docs/cpu_templates/cpu-templates.md in Firecracker's
 * repository); a custom template comes from PUT /cpu-config
 * (api_cpu_config.h) in Firecracker's JSON format.
 *
 * A template is a list of modifiers. Each names a register (a CPUID
 * leaf/subleaf's EAX-EDX, or an MSR) and, per bit, "force 0", "force 1"
 * or "leave as KVM has it": `mask` holds the bits the template decides,
 * `value` what they become. They apply on top of the CPUID flint builds
 * for each vCPU (cpuid_for_vcpu) and the MSRs it sets at power-on.
 */
#ifndef FLINT_CPU_TEMPLATE_H
#define FLINT_CPU_TEMPLATE_H

#include <linux/kvm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* machine-config cpu_template, plus CUSTOM for PUT /cpu-config. */
enum cpu_template_id {
    CPU_TEMPLATE_NONE = 0,
    CPU_TEMPLATE_C3,
    CPU_TEMPLATE_T2,
    CPU_TEMPLATE_T2S,
    CPU_TEMPLATE_T2CL,
    CPU_TEMPLATE_T2A,
    CPU_TEMPLATE_CUSTOM,
};

enum cpu_vendor {
    CPU_VENDOR_OTHER,
    CPU_VENDOR_INTEL, /* "GenuineIntel" */
    CPU_VENDOR_AMD,   /* "AuthenticAMD" */
};

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX, CPUID_NREGS };

/* Limits on a custom template. KVM takes at most 256 CPUID entries
 * (KVM_MAX_CPUID_ENTRIES), so more leaves could never apply. */
#define CPU_TEMPLATE_MAX_LEAVES 256
#define CPU_TEMPLATE_MAX_MSRS   64
#define CPU_TEMPLATE_MAX_CAPS   64

struct cpu_bits32 {
    uint32_t mask, value; /* value has no bit outside mask */
};

struct cpuid_leaf_mod {
    uint32_t leaf, subleaf;
    uint32_t flags;                      /* 0 or KVM_CPUID_FLAG_SIGNIFCANT_INDEX */
    struct cpu_bits32 regs[CPUID_NREGS]; /* mask 0: the register is left alone */
};

struct msr_mod {
    uint32_t addr;
    uint64_t mask, value;
};

/* kvm_capabilities: "N" (KVM must offer capability N, checked at start)
 * or "!N" (recorded only: flint still requires the capabilities it uses). */
struct kvm_cap_mod {
    uint32_t cap;
    bool remove;
};

struct cpu_template {
    const struct cpuid_leaf_mod *leaves;
    const struct msr_mod *msrs;
    const struct kvm_cap_mod *caps;
    unsigned nleaves, nmsrs, ncaps;
};

/* "None", "C3", "T2", "T2S", "T2CL", "T2A"; "Custom" for CUSTOM. */
const char *cpu_template_name(enum cpu_template_id id);

/* The id a machine-config cpu_template names, or -EINVAL. */
int cpu_template_parse_name(const char *name);

/* The static template's modifiers; NULL for NONE and CUSTOM. */
const struct cpu_template *cpu_template_static(enum cpu_template_id id);

/* The vendor a static template is for (CPU_VENDOR_OTHER for NONE/CUSTOM). */
enum cpu_vendor cpu_template_vendor(enum cpu_template_id id);

/* The host's vendor, from leaf 0 of KVM's supported CPUID. */
enum cpu_vendor cpu_vendor_of(const struct kvm_cpuid2 *cpuid);

/* The template a VM boots with: the static one `id` names (refused with
 * a line in err, -EINVAL, when it is for the other vendor, as Firecracker
 * refuses it at InstanceStart), `custom` for CUSTOM, NULL for NONE. */
int cpu_template_resolve(enum cpu_template_id id, const struct cpu_template *custom,
                         const struct kvm_cpuid2 *host, const struct cpu_template **out, char *err,
                         size_t errlen);

/* Apply the CPUID modifiers to a vCPU's CPUID (room for max_entries).
 * A leaf/subleaf the CPUID lacks is added with the template's bits over
 * zeros, as Firecracker does. Returns 0 or -E2BIG when it would not fit. */
int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *cpuid,
                             unsigned max_entries);

/* An MSR's value with the modifier applied. */
uint64_t cpu_template_msr_value(const struct msr_mod *m, uint64_t current);

/* Apply the MSR modifiers to a vCPU: read each MSR, change the template's
 * bits, write it back. An MSR KVM does not offer is refused with a line
 * in err (-EINVAL). */
int cpu_template_apply_msrs(const struct cpu_template *t, int vcpu_fd, char *err, size_t errlen);

/* Every kvm_capabilities "N" must be offered by KVM (KVM_CHECK_EXTENSION
 * on /dev/kvm's fd); 0 or -EINVAL with a line in err. */
int cpu_template_check_caps(const struct cpu_template *t, int kvm_fd, char *err, size_t errlen);

/* Free a custom template (api_cpu_config.h made it); NULL is fine. */
void cpu_template_free(struct cpu_template *t);

#endif /* FLINT_CPU_TEMPLATE_H */
