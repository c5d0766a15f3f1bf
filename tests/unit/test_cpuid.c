/* Unit tests: per-vCPU CPUID topology (one package of ncpus logical CPUs,
 * one or two threads per core). */
#include <criterion/criterion.h>

#include "vcpu.h"

#include <stdlib.h>

#define BASE_MAX 32

struct cpuid_buf {
    struct kvm_cpuid2 hdr;
    struct kvm_cpuid_entry2 e[BASE_MAX + CPUID_EXTRA_ENTRIES];
};

static void add(struct cpuid_buf *b, uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx,
                uint32_t ecx, uint32_t edx)
{
    b->e[b->hdr.nent++] = (struct kvm_cpuid_entry2){
        .function = fn, .index = idx, .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx};
}

/* A host-like set, with the host's own (wrong for the VM) topology. */
static void host_base(struct cpuid_buf *b, uint32_t max_basic)
{
    memset(b, 0, sizeof(*b));
    add(b, 0, 0, max_basic, 0x68747541, 0x444d4163, 0x69746e65);
    add(b, 1, 0, 0x00a00f11, 0x07400800, 0x7ed8320b, 0x178bfbff);
    add(b, 4, 0, 0x1c004121, 0, 0, 0); /* L1d, 8 sharing, 8 cores */
    add(b, 4, 1, 0x1c004143, 0, 0, 0); /* L2 */
    add(b, 4, 2, 0x1c03c163, 0, 0, 0); /* L3, 16 sharing */
    add(b, 4, 3, 0, 0, 0, 0);
    add(b, 0xb, 0, 1, 2, 0x100, 7);
    add(b, 0xb, 1, 7, 128, 0x201, 7);
    add(b, 0x1f, 0, 1, 2, 0x100, 7);
    add(b, 0x80000000, 0, 0x8000001f, 0x68747541, 0x444d4163, 0x69746e65);
    add(b, 0x80000001, 0, 0, 0, 0x75c237ff & ~(1u << 22), 0);
    add(b, 0x80000008, 0, 0x3030, 0, 0x707f, 0);
    add(b, 0x8000001d, 0, 0x00004121, 0, 0, 0);
    add(b, 0x8000001d, 1, 0x0001c163, 0, 0, 0);
    add(b, 0x8000001e, 0, 7, 0x103, 0x300, 0);
}

static const struct kvm_cpuid_entry2 *find(const struct cpuid_buf *b, uint32_t fn, uint32_t idx)
{
    const struct kvm_cpuid_entry2 *hit = NULL;
    for (unsigned i = 0; i < b->hdr.nent; i++) {
        if (b->e[i].function == fn && b->e[i].index == idx) {
            cr_assert_null(hit, "leaf 0x%x.%u appears twice", fn, idx);
            hit = &b->e[i];
        }
    }
    return hit;
}

static int run(const struct cpuid_buf *base, struct cpuid_buf *out, unsigned max, unsigned id,
               unsigned ncpus, bool smt)
{
    const struct cpu_topology t = {ncpus, cpu_threads_per_core(smt, ncpus)};
    return cpuid_for_vcpu(&base->hdr, &out->hdr, max, id, &t);
}

static void check(unsigned id, unsigned ncpus, bool smt)
{
    unsigned threads = smt && ncpus > 1 ? 2 : 1;
    struct cpuid_buf base, out;
    host_base(&base, 0x1f);
    memset(&out, 0, sizeof(out));
    cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, id, ncpus, smt), 0);

    const struct kvm_cpuid_entry2 *l1 = find(&out, 1, 0);
    cr_assert_eq(l1->ebx >> 24, id, "leaf 1 APIC ID");
    unsigned addressable = (l1->ebx >> 16) & 0xff;
    cr_assert_geq(addressable, ncpus);
    cr_assert_lt(addressable, 2 * ncpus, "a power of two, not more");
    cr_assert_eq(!!(l1->edx & (1u << 28)), ncpus > 1, "HTT only with more than one CPU");
    cr_assert(l1->ecx & (1u << 31), "hypervisor bit");
    cr_assert(l1->ecx & (1u << 24), "TSC-deadline timer (KVM emulates it; the host set lacks it)");

    for (unsigned lvl = 0; lvl < 3; lvl++) {
        const struct kvm_cpuid_entry2 *t = find(&out, 0xb, lvl);
        cr_assert_not_null(t, "leaf 0xb.%u", lvl);
        cr_assert_eq(t->edx, id, "x2APIC ID");
        cr_assert_eq(t->ecx & 0xff, lvl);
        cr_assert(t->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    }
    cr_assert_eq(find(&out, 0xb, 0)->ebx, threads, "threads per core");
    cr_assert_eq(find(&out, 0xb, 0)->eax, threads == 2, "the thread is the APIC ID's low bit");
    cr_assert_eq((find(&out, 0xb, 0)->ecx >> 8) & 0xff, 1, "SMT level");
    cr_assert_eq(find(&out, 0xb, 1)->ebx, ncpus, "ncpus in the package");
    cr_assert_eq((find(&out, 0xb, 1)->ecx >> 8) & 0xff, 2, "core level");
    cr_assert_geq(1u << find(&out, 0xb, 1)->eax, ncpus, "APIC ID shift covers every core");
    cr_assert_eq((find(&out, 0xb, 2)->ecx >> 8) & 0xff, 0, "then the list ends");
    cr_assert_not_null(find(&out, 0x1f, 1), "leaf 0x1f mirrors 0xb");
    cr_assert_eq(find(&out, 0x1f, 1)->ebx, ncpus);

    cr_assert_eq((find(&out, 4, 0)->eax >> 14) & 0xfff, threads - 1,
                 "L1 shared by a core's threads");
    cr_assert_eq((find(&out, 4, 1)->eax >> 14) & 0xfff, threads - 1, "L2 too");
    cr_assert_eq((find(&out, 4, 2)->eax >> 14) & 0xfff, ncpus - 1, "L3 shared by all");
    unsigned cores = ((find(&out, 4, 0)->eax >> 26) & 0x3f) + 1;
    cr_assert_geq(cores * threads, ncpus, "addressable cores times threads cover every CPU");
    cr_assert_lt(cores * threads, 2 * ncpus, "a power of two, not more");
    cr_assert_eq(find(&out, 4, 3)->eax, 0, "the null cache entry stays null");

    cr_assert_eq(find(&out, 0x80000008, 0)->ecx & 0xff, ncpus - 1, "AMD NC");
    cr_assert_eq(find(&out, 0x8000001e, 0)->eax, id, "AMD extended APIC ID");
    cr_assert_eq((find(&out, 0x8000001e, 0)->ebx >> 8) & 0xff, threads - 1, "threads per core");
    cr_assert_eq(find(&out, 0x8000001e, 0)->ebx & 0xff, id / threads, "core id");
    cr_assert_eq((find(&out, 0x8000001d, 0)->eax >> 14) & 0xfff, threads - 1);
    cr_assert_eq((find(&out, 0x8000001d, 1)->eax >> 14) & 0xfff, ncpus - 1);
    cr_assert_eq(!!(find(&out, 0x80000001, 0)->ecx & 2), ncpus > 1, "CmpLegacy");
}

Test(cpuid, topology_for_1_to_32_cpus)
{
    for (unsigned n = 1; n <= 32; n++)
        for (unsigned id = 0; id < n; id++)
            check(id, n, false);
}

Test(cpuid, smt_topology_for_1_and_2_to_32_cpus)
{
    check(0, 1, true);
    for (unsigned n = 2; n <= 32; n += 2)
        for (unsigned id = 0; id < n; id++)
            check(id, n, true);
}

/* What Linux derives (arch/x86/kernel/cpu/topology.c): a vCPU's core is its
 * x2APIC ID shifted right by leaf 0xB level 0's EAX; with smt vCPUs 2k and
 * 2k+1 share core k, as thread_siblings_list "0-1" shows in the guest. */
Test(cpuid, smt_pairs_neighbouring_vcpus_into_cores)
{
    struct cpuid_buf base, out;
    host_base(&base, 0x1f);
    for (unsigned id = 0; id < 8; id++) {
        cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, id, 8, true), 0);
        const struct kvm_cpuid_entry2 *smt = find(&out, 0xb, 0);
        cr_assert_eq(smt->edx >> smt->eax, id / 2, "vCPU %u is a thread of core %u", id, id / 2);
        cr_assert_eq(find(&out, 0x8000001e, 0)->ebx & 0xff, id / 2);
        cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, id, 8, false), 0);
        smt = find(&out, 0xb, 0);
        cr_assert_eq(smt->edx >> smt->eax, id, "without smt every vCPU is a core");
    }
}

/* Linux before 6.9 reads AMD topology from leaves 0xB and 8000_001E only
 * with TOPOEXT; a host set without them gets them with smt. */
Test(cpuid, smt_on_amd_sets_topoext_and_adds_leaf_8000001e)
{
    struct cpuid_buf base, out;
    host_base(&base, 0x1f);
    base.hdr.nent--; /* drop 8000_001E */
    base.e[9].eax = 0x8000001d;
    cr_assert_eq(base.e[9].function, 0x80000000);
    cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, 3, 4, true), 0);
    cr_assert(find(&out, 0x80000001, 0)->ecx & (1u << 22), "TOPOEXT");
    cr_assert_eq(find(&out, 0x80000000, 0)->eax, 0x8000001e, "max extended leaf raised");
    cr_assert_not_null(find(&out, 0x8000001e, 0));
    cr_assert_eq(find(&out, 0x8000001e, 0)->ebx, 0x101, "core 1, two threads");
    cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, 3, 4, false), 0);
    cr_assert_not(find(&out, 0x80000001, 0)->ecx & (1u << 22), "without smt: as KVM gave it");
    cr_assert_null(find(&out, 0x8000001e, 0));
    /* Not on Intel. */
    base.e[0].ebx = 0x756e6547; /* "Genu" */
    cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, 3, 4, true), 0);
    cr_assert_null(find(&out, 0x8000001e, 0));
}

Test(cpuid, no_leaf_b_when_the_max_basic_leaf_is_below_it)
{
    struct cpuid_buf base, out;
    host_base(&base, 0xa);
    cr_assert_eq(run(&base, &out, BASE_MAX + CPUID_EXTRA_ENTRIES, 1, 4, false), 0);
    cr_assert_null(find(&out, 0xb, 0));
    cr_assert_null(find(&out, 0x1f, 0));
    cr_assert_eq(find(&out, 1, 0)->ebx >> 24, 1);
}

Test(cpuid, refuses_when_the_output_is_too_small)
{
    struct cpuid_buf base, out;
    host_base(&base, 0x1f);
    cr_assert_eq(run(&base, &out, 4, 0, 2, false), -1);
    cr_assert_eq(run(&base, &out, base.hdr.nent - 3, 0, 2, true), -1,
                 "no room for the topology leaves");
}
