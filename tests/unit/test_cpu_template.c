/* Unit tests: the static CPU templates applied to a known CPUID table,
 * the vendor check, and MSR modifiers (cpu_template.h). */
#include <criterion/criterion.h>

#include "cpu_template.h"
#include "vcpu.h"

#include <errno.h>
#include <string.h>

#define ROOM 32

struct cpuid_buf {
    struct kvm_cpuid2 hdr;
    struct kvm_cpuid_entry2 e[ROOM];
};

static void add(struct cpuid_buf *b, uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx,
                uint32_t ecx, uint32_t edx)
{
    b->e[b->hdr.nent++] = (struct kvm_cpuid_entry2){
        .function = fn, .index = idx, .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx};
}

/* Every register of every leaf a template touches all ones, so each bit
 * the template forces to 0 shows, and each it leaves alone stays 1. */
static void all_ones(struct cpuid_buf *b, const char vendor[13])
{
    uint32_t v[3];

    memset(b, 0, sizeof(*b));
    memcpy(v, vendor, 12);
    add(b, 0, 0, 0xd, v[0], v[2], v[1]);
    add(b, 1, 0, ~0u, ~0u, ~0u, ~0u);
    add(b, 7, 0, ~0u, ~0u, ~0u, ~0u);
    add(b, 0xd, 0, ~0u, ~0u, ~0u, ~0u);
    add(b, 0xd, 1, ~0u, ~0u, ~0u, ~0u);
    add(b, 0x80000001, 0, ~0u, ~0u, ~0u, ~0u);
    add(b, 0x80000008, 0, ~0u, ~0u, ~0u, ~0u);
}

static const struct kvm_cpuid_entry2 *find(const struct cpuid_buf *b, uint32_t fn, uint32_t idx)
{
    for (unsigned i = 0; i < b->hdr.nent; i++)
        if (b->e[i].function == fn && b->e[i].index == idx)
            return &b->e[i];
    cr_assert_fail("leaf 0x%x.%u missing", fn, idx);
    return NULL;
}

static struct cpuid_buf applied(enum cpu_template_id id, const char *vendor)
{
    struct cpuid_buf b;

    all_ones(&b, vendor);
    cr_assert_eq(cpu_template_apply_cpuid(cpu_template_static(id), &b.hdr, ROOM), 0);
    cr_assert_eq(b.hdr.nent, 7, "a static template adds no leaf to this table");
    return b;
}

#define BIT(n) (1u << (n))

Test(cpu_template, t2a_on_all_ones)
{
    struct cpuid_buf b = applied(CPU_TEMPLATE_T2A, "AuthenticAMD");
    const struct kvm_cpuid_entry2 *e;

    e = find(&b, 1, 0);
    /* Family 6, model 0x3f, stepping 2 (the reserved bits stay KVM's). */
    cr_assert_eq(e->eax, ~0x0fff3fffu | 0x000306f2u, "0x%08x", e->eax);
    cr_assert_eq(e->ebx, ~0u);
    cr_assert_eq(e->ecx & BIT(3), 0, "MONITOR hidden");
    cr_assert_eq(e->ecx & BIT(5), 0, "VMX hidden");
    cr_assert_neq(e->ecx & BIT(23), 0, "POPCNT passed through");
    cr_assert_eq(e->edx, ~0xe8641080u | 0x1080u, "0x%08x", e->edx);
    e = find(&b, 7, 0);
    cr_assert_eq(e->eax, ~0u);
    cr_assert_eq(e->ebx & BIT(16), 0, "AVX512F hidden");
    cr_assert_neq(e->ebx & BIT(9), 0, "ERMS forced on");
    cr_assert_neq(e->ebx & BIT(5), 0, "AVX2 passed through");
    cr_assert_eq(e->ecx & BIT(3), 0, "PKU hidden");
    cr_assert_eq(e->edx & 0x11cu, 0);
    cr_assert_eq(find(&b, 0xd, 0)->eax, ~0x2f8u);
    cr_assert_eq(find(&b, 0xd, 1)->eax, ~0xeu);
    e = find(&b, 0x80000001, 0);
    cr_assert_eq(e->ecx & BIT(6), 0, "SSE4A hidden");
    cr_assert_eq(e->ecx & BIT(2), 0, "SVM hidden");
    cr_assert_eq(e->ecx, ~0x200001c4u);
    cr_assert_eq(e->edx, ~0x06400000u);
    e = find(&b, 0x80000008, 0);
    cr_assert_eq(e->ebx, ~0x201u, "CLZERO, WBNOINVD off; RstrFpErrPtrs, IBRS bits on");
}

Test(cpu_template, t2a_sets_bits_that_were_zero)
{
    struct cpuid_buf b;

    all_ones(&b, "AuthenticAMD");
    for (unsigned i = 1; i < b.hdr.nent; i++)
        b.e[i].eax = b.e[i].ebx = b.e[i].ecx = b.e[i].edx = 0;
    cr_assert_eq(cpu_template_apply_cpuid(cpu_template_static(CPU_TEMPLATE_T2A), &b.hdr, ROOM), 0);
    cr_assert_eq(find(&b, 1, 0)->eax, 0x000306f2u);
    cr_assert_eq(find(&b, 1, 0)->edx, 0x1080u, "MCE and MTRR forced on");
    cr_assert_eq(find(&b, 7, 0)->ebx, BIT(9));
    cr_assert_eq(find(&b, 0x80000008, 0)->ebx, 0x1c0004u);
    cr_assert_eq(find(&b, 0x80000001, 0)->ecx, 0);
}

Test(cpu_template, intel_templates_on_all_ones)
{
    struct cpuid_buf b = applied(CPU_TEMPLATE_T2, "GenuineIntel");

    cr_assert_eq(find(&b, 1, 0)->eax & 0x0fff3fffu, 0x000306f2u);
    cr_assert_eq(find(&b, 7, 0)->ebx, ~0xffefda14u | BIT(9), "0x%08x", find(&b, 7, 0)->ebx);
    cr_assert_eq(find(&b, 0x80000001, 0)->ecx, ~0x20000100u);
    cr_assert_eq(find(&b, 0x80000001, 0)->edx & BIT(26), 0, "1 GiB pages hidden");
    cr_assert_eq(find(&b, 0x80000008, 0)->ebx, ~BIT(9));

    b = applied(CPU_TEMPLATE_T2S, "GenuineIntel");
    cr_assert_eq(find(&b, 7, 0)->ebx, ~0xffefda14u | BIT(9));
    cr_assert_eq(find(&b, 0x80000001, 0)->ecx, ~0x20000100u);
    b = applied(CPU_TEMPLATE_T2CL, "GenuineIntel");
    cr_assert_eq(find(&b, 7, 0)->ebx, ~0xffefda14u | BIT(9));
    cr_assert_eq(find(&b, 0x80000001, 0)->ecx, ~0x200001c0u, "T2CL also hides AMD's bits");
    cr_assert_eq(find(&b, 0x80000001, 0)->edx, ~0x07c00000u);

    b = applied(CPU_TEMPLATE_C3, "GenuineIntel");
    cr_assert_eq(find(&b, 1, 0)->eax & 0x0fff3fffu, 0x000306e4u);
    cr_assert_eq(find(&b, 1, 0)->ecx & BIT(12), 0, "FMA hidden");
    cr_assert_neq(find(&b, 1, 0)->edx & BIT(30), 0, "C3 leaves bit 30 alone");
    cr_assert_eq(find(&b, 7, 0)->ebx & BIT(5), 0, "AVX2 hidden");
    cr_assert_eq(find(&b, 0x80000001, 0)->ecx, ~0x120u);
    cr_assert_eq(find(&b, 0x80000008, 0)->ebx, ~0u, "C3 leaves 0x80000008 alone");
}

Test(cpu_template, msr_modifiers)
{
    const struct cpu_template *t2s = cpu_template_static(CPU_TEMPLATE_T2S);
    const struct cpu_template *t2cl = cpu_template_static(CPU_TEMPLATE_T2CL);

    cr_assert_eq(t2s->nmsrs, 1);
    cr_assert_eq(t2s->msrs[0].addr, 0x10a);
    cr_assert_eq(cpu_template_msr_value(&t2s->msrs[0], ~0ull), 0xc4cull);
    cr_assert_eq(cpu_template_msr_value(&t2s->msrs[0], 0), 0xc4cull);
    cr_assert_eq(t2cl->msrs[0].addr, 0x10a);
    /* Mitigation bits (RDCL_NO, IBRS_ALL, ..., RFDS_NO) pass through. */
    cr_assert_eq(cpu_template_msr_value(&t2cl->msrs[0], ~0ull), 0x0d0ae1ffull);
    cr_assert_eq(cpu_template_static(CPU_TEMPLATE_T2A)->nmsrs, 0);
    cr_assert_null(cpu_template_static(CPU_TEMPLATE_NONE));
    cr_assert_null(cpu_template_static(CPU_TEMPLATE_CUSTOM));
}

Test(cpu_template, names)
{
    static const char *const names[] = {"None", "C3", "T2", "T2S", "T2CL", "T2A"};

    for (int i = 0; i < 6; i++) {
        cr_assert_eq(cpu_template_parse_name(names[i]), i);
        cr_assert_str_eq(cpu_template_name((enum cpu_template_id)i), names[i]);
    }
    cr_assert_eq(cpu_template_parse_name("t2"), -EINVAL);
    cr_assert_eq(cpu_template_parse_name("Custom"), -EINVAL);
    cr_assert_eq(cpu_template_parse_name(""), -EINVAL);
}

Test(cpu_template, vendor_mismatch_is_refused)
{
    const struct cpu_template *t = (const void *)1;
    struct cpuid_buf amd, intel, other;
    char err[256];

    all_ones(&amd, "AuthenticAMD");
    all_ones(&intel, "GenuineIntel");
    all_ones(&other, "HygonGenuine");
    cr_assert_eq(cpu_vendor_of(&amd.hdr), CPU_VENDOR_AMD);
    cr_assert_eq(cpu_vendor_of(&intel.hdr), CPU_VENDOR_INTEL);
    cr_assert_eq(cpu_vendor_of(&other.hdr), CPU_VENDOR_OTHER);
    cr_assert_eq(cpu_template_resolve(CPU_TEMPLATE_T2A, NULL, &amd.hdr, &t, err, sizeof(err)), 0);
    cr_assert_eq(t, cpu_template_static(CPU_TEMPLATE_T2A));
    cr_assert_eq(cpu_template_resolve(CPU_TEMPLATE_T2A, NULL, &intel.hdr, &t, err, sizeof(err)),
                 -EINVAL);
    cr_assert_null(t);
    cr_assert(strstr(err, "cpu_template T2A is for AMD CPUs, and this host's CPU is Intel"), "%s",
              err);
    for (int id = CPU_TEMPLATE_C3; id <= CPU_TEMPLATE_T2CL; id++) {
        cr_assert_eq(cpu_template_resolve(id, NULL, &amd.hdr, &t, err, sizeof(err)), -EINVAL);
        cr_assert(strstr(err, "CPU vendor mismatched"), "%s", err);
        cr_assert_eq(cpu_template_resolve(id, NULL, &intel.hdr, &t, err, sizeof(err)), 0);
        cr_assert_eq(cpu_template_resolve(id, NULL, &other.hdr, &t, err, sizeof(err)), -EINVAL);
    }
    cr_assert_eq(cpu_template_resolve(CPU_TEMPLATE_NONE, NULL, &amd.hdr, &t, err, sizeof(err)), 0);
    cr_assert_null(t);
    /* A custom template applies on any vendor. */
    struct cpu_template custom = {0};
    cr_assert_eq(
        cpu_template_resolve(CPU_TEMPLATE_CUSTOM, &custom, &other.hdr, &t, err, sizeof(err)), 0);
    cr_assert_eq(t, &custom);
}

Test(cpu_template, custom_leaf_missing_from_cpuid_is_added)
{
    static const struct cpuid_leaf_mod leaves[] = {
        {.leaf = 0x1, .regs = {[CPUID_ECX] = {BIT(23), 0}}},
        {.leaf = 0x14, .subleaf = 1, .flags = 1, .regs = {[CPUID_EBX] = {0xff, 0x5a}}},
    };
    struct cpu_template t = {.leaves = leaves, .nleaves = 2};
    struct cpuid_buf b;

    all_ones(&b, "AuthenticAMD");
    cr_assert_eq(cpu_template_apply_cpuid(&t, &b.hdr, ROOM), 0);
    cr_assert_eq(find(&b, 1, 0)->ecx, ~BIT(23));
    const struct kvm_cpuid_entry2 *e = find(&b, 0x14, 1);
    cr_assert_eq(e->ebx, 0x5a);
    cr_assert_eq(e->eax, 0);
    cr_assert_eq(e->flags, 1);
    /* No room for the new leaf: refused (and the vCPU is not started). */
    all_ones(&b, "AuthenticAMD");
    cr_assert_eq(cpu_template_apply_cpuid(&t, &b.hdr, b.hdr.nent), -E2BIG);
}

/* The template applies after flint's own topology fix-ups. */
Test(cpu_template, applies_over_cpuid_for_vcpu)
{
    struct cpuid_buf base, out;
    static const struct cpuid_leaf_mod leaves[] = {
        {.leaf = 0x1, .regs = {[CPUID_ECX] = {BIT(31), 0}}}, /* the hypervisor bit */
    };
    struct cpu_template t = {.leaves = leaves, .nleaves = 1};

    all_ones(&base, "AuthenticAMD");
    base.e[1].ecx = 0;
    const struct cpu_topology one = {.ncpus = 1, .threads_per_core = 1};
    cr_assert_eq(cpuid_for_vcpu(&base.hdr, &out.hdr, ROOM, 0, &one), 0);
    cr_assert_neq(find(&out, 1, 0)->ecx & BIT(31), 0, "flint sets the hypervisor bit");
    cr_assert_eq(cpu_template_apply_cpuid(&t, &out.hdr, ROOM), 0);
    cr_assert_eq(find(&out, 1, 0)->ecx & BIT(31), 0, "and a template can clear it");
}
