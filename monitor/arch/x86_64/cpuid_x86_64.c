/*
 * cpuid_x86_64.c - the CPUID a vCPU sees: KVM's supported set, with a CPU
 * topology that matches the VM: one package of `ncpus` logical CPUs, one
 * or (with smt) two threads per core, APIC ID = vCPU index (Intel SDM vol.
 * 2A CPUID leaves 1, 4, 0xB, 0x1F; AMD APM vol. 3 E.4 leaves 8000_0001,
 * 8000_0008, 8000_001D, 8000_001E). As hardware numbers them, the thread
 * is the APIC ID's low bit(s) and the core the bits above, so vCPUs 2k and
 * 2k+1 are the two threads of core k. A guest that counts its CPUs from
 * CPUID then agrees with the MP table, which lists every APIC ID.
 */
#include "vcpu.h"

#include <string.h>

#define CPUID_HYPERVISOR_BIT   (1u << 31)
#define CPUID_TSC_DEADLINE_BIT (1u << 24) /* leaf 1 ECX */
#define CPUID_HTT_BIT          (1u << 28)
#define CPUID_CMP_LEGACY_BIT   (1u << 1)
#define CPUID_TOPOEXT_BIT      (1u << 22)  /* leaf 8000_0001 ECX */
#define CPUID_VENDOR_AMD_EBX   0x68747541u /* "Auth" of "AuthenticAMD" */
#define TOPOLOGY_LEVEL_SMT     1u
#define TOPOLOGY_LEVEL_CORE    2u
#define CACHE_TYPE(eax)        ((eax)&0x1fu)
#define CACHE_LEVEL(eax)       (((eax) >> 5) & 0x7u)
#define CACHE_SHARING_SHIFT    14
#define CACHE_SHARING_MASK     (0xfffu << CACHE_SHARING_SHIFT)
#define INTEL_CORES_SHIFT      26
#define INTEL_CORES_MASK       (0x3fu << INTEL_CORES_SHIFT)
#define AMD_APIC_ID_SIZE_SHIFT 12

/* Bits an APIC ID needs to number `ncpus` cores: ceil(log2(ncpus)). */
static unsigned core_bits(unsigned ncpus)
{
    unsigned bits = 0;

    while ((1u << bits) < ncpus)
        bits++;
    return bits;
}

/* Threads sharing a cache, minus one: one core's for L1 and L2, the
 * package's for L3. */
static uint32_t with_cache_sharing(uint32_t eax, const struct cpu_topology *t)
{
    uint32_t sharing = CACHE_LEVEL(eax) >= 3 ? t->ncpus - 1 : t->threads_per_core - 1;

    return (eax & ~CACHE_SHARING_MASK) | (sharing << CACHE_SHARING_SHIFT);
}

static void fix_entry(struct kvm_cpuid_entry2 *e, unsigned id, const struct cpu_topology *t)
{
    unsigned ncpus = t->ncpus, bits = core_bits(ncpus);
    unsigned thread_bits = core_bits(t->threads_per_core);

    switch (e->function) {
    case 0x1:
        /* EBX: initial APIC ID, addressable logical processors. */
        e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | ((1u << bits) << 16);
        e->ecx |= CPUID_HYPERVISOR_BIT;
        /* KVM emulates the TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER,
         * which flint requires) but leaves the bit to userspace. Without
         * it Linux runs its LAPIC timer in one-shot mode, which it first
         * calibrates for ~100 ms, and which hung about one nested boot in
         * fifteen in the sandbox. */
        e->ecx |= CPUID_TSC_DEADLINE_BIT;
        if (ncpus > 1)
            e->edx |= CPUID_HTT_BIT;
        else
            e->edx &= ~CPUID_HTT_BIT;
        break;
    case 0x4:
        /* EAX[31:26]: addressable cores in the package, minus one. */
        if (CACHE_TYPE(e->eax)) {
            e->eax = with_cache_sharing(e->eax, t);
            e->eax = (e->eax & ~INTEL_CORES_MASK) |
                     (((1u << (bits - thread_bits)) - 1) << INTEL_CORES_SHIFT);
        }
        break;
    case 0x80000001:
        if (ncpus > 1)
            e->ecx |= CPUID_CMP_LEGACY_BIT;
        else
            e->ecx &= ~CPUID_CMP_LEGACY_BIT;
        break;
    case 0x80000008:
        /* ECX: NC (cores - 1) and ApicIdSize. */
        e->ecx = (e->ecx & ~0xf0ffu) | (ncpus - 1) | (bits << AMD_APIC_ID_SIZE_SHIFT);
        break;
    case 0x8000001d:
        if (CACHE_TYPE(e->eax))
            e->eax = with_cache_sharing(e->eax, t);
        break;
    case 0x8000001e:
        e->eax = id; /* extended APIC ID */
        /* EBX: core id, and threads per core - 1 in bits 15:8. */
        e->ebx = (id >> thread_bits) | ((t->threads_per_core - 1) << 8);
        e->ecx = 0; /* node 0, one node per package */
        break;
    default:
        break;
    }
}

/* Leaf 0xB / 0x1F: SMT level (threads per core, shifted out by their
 * bits), core level (every logical CPU of the package), then the invalid
 * level that ends the list. */
static unsigned add_topology_leaf(struct kvm_cpuid_entry2 *out, uint32_t function, unsigned id,
                                  const struct cpu_topology *t)
{
    const struct {
        uint32_t shift, count, type;
    } levels[] = {
        {core_bits(t->threads_per_core), t->threads_per_core, TOPOLOGY_LEVEL_SMT},
        {core_bits(t->ncpus), t->ncpus, TOPOLOGY_LEVEL_CORE},
        {0, 0, 0},
    };

    for (unsigned i = 0; i < 3; i++)
        out[i] = (struct kvm_cpuid_entry2){
            .function = function,
            .index = i,
            .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            .eax = levels[i].shift,
            .ebx = levels[i].count,
            .ecx = i | (levels[i].type << 8),
            .edx = id,
        };
    return 3;
}

static struct kvm_cpuid_entry2 *find_leaf(struct kvm_cpuid2 *c, unsigned n, uint32_t function)
{
    for (unsigned i = 0; i < n; i++)
        if (c->entries[i].function == function && c->entries[i].index == 0)
            return &c->entries[i];
    return NULL;
}

/* On AMD, Linux reads threads per core from leaf 8000_001E, and before
 * 6.9 reads leaf 0xB only, when TOPOEXT (8000_0001 ECX bit 22) is set:
 * without it every vCPU is a core of its own. As Firecracker does on AMD,
 * set TOPOEXT, here only with smt (the single-thread topology needs no
 * change), adding leaf 8000_001E and raising the maximum extended leaf to
 * it when KVM's set lacks them. Returns the new entry count, or -1. */
static int add_amd_smt_leaves(struct kvm_cpuid2 *out, unsigned n, unsigned max_entries, unsigned id,
                              const struct cpu_topology *topo)
{
    struct kvm_cpuid_entry2 *vendor = find_leaf(out, n, 0), *ext = find_leaf(out, n, 0x80000000);
    struct kvm_cpuid_entry2 *features = find_leaf(out, n, 0x80000001);

    if (topo->threads_per_core < 2 || !vendor || vendor->ebx != CPUID_VENDOR_AMD_EBX || !ext ||
        !features)
        return (int)n;
    features->ecx |= CPUID_TOPOEXT_BIT;
    if (!find_leaf(out, n, 0x8000001e)) {
        if (n == max_entries)
            return -1;
        out->entries[n] = (struct kvm_cpuid_entry2){.function = 0x8000001e};
        fix_entry(&out->entries[n++], id, topo);
    }
    if (ext->eax < 0x8000001e)
        ext->eax = 0x8000001e;
    return (int)n;
}

int cpuid_for_vcpu(const struct kvm_cpuid2 *base, struct kvm_cpuid2 *out, unsigned max_entries,
                   unsigned id, const struct cpu_topology *topo)
{
    uint32_t max_basic = 0;
    bool had_1f = false;
    unsigned n = 0;

    for (unsigned i = 0; i < base->nent; i++) {
        if (base->entries[i].function == 0)
            max_basic = base->entries[i].eax;
        had_1f |= base->entries[i].function == 0x1f;
    }
    for (unsigned i = 0; i < base->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &base->entries[i];
        if (e->function == 0xb || e->function == 0x1f)
            continue; /* replaced below */
        if (n == max_entries)
            return -1;
        out->entries[n] = *e;
        fix_entry(&out->entries[n], id, topo);
        n++;
    }
    if (max_basic >= 0xb) {
        if (n + 3 > max_entries)
            return -1;
        n += add_topology_leaf(&out->entries[n], 0xb, id, topo);
    }
    if (max_basic >= 0x1f && had_1f) {
        if (n + 3 > max_entries)
            return -1;
        n += add_topology_leaf(&out->entries[n], 0x1f, id, topo);
    }
    int with_amd = add_amd_smt_leaves(out, n, max_entries, id, topo);
    if (with_amd < 0)
        return -1;
    out->nent = (unsigned)with_amd;
    return 0;
}
