/*
 * time.c - KVM detection, kvmclock and the TSC fallback.
 */
#include "shim-internal.h"

/* Linux Documentation/virt/kvm/x86/cpuid.rst and msr.rst. */
#define KVM_FEATURE_CLOCKSOURCE  (1u << 0)
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define MSR_KVM_SYSTEM_TIME      0x12
#define MSR_KVM_SYSTEM_TIME_NEW  0x4b564d01
#define PVCLOCK_TSC_STABLE_BIT   (1u << 0)

#define CPUID_HYPERVISOR_BIT (1u << 31)
#define CPUID_TIMING_LEAF    0x40000010 /* EAX: TSC kHz (VMware/QEMU convention) */

enum time_source { TIME_NONE, TIME_TSC, TIME_KVMCLOCK };

static enum time_source source;
static bool on_kvm;
static uint32_t kvm_features;
static uint32_t kvm_time_msr;
static uint32_t hv_max_leaf; /* highest hypervisor leaf, 0 if none */
static uint32_t tsc_mul;     /* TSC fallback: ns = scale(ticks, tsc_mul, tsc_shift) */
static int8_t tsc_shift;
static uint64_t last_ns; /* keeps kvmclock monotonic across CPUs without TSC_STABLE */

bool shim_on_kvm(void)
{
    return on_kvm;
}

uint32_t shim_kvm_features(void)
{
    return kvm_features;
}

const char *shim_time_source(void)
{
    static const char *const names[] = {"none", "tsc", "kvmclock"};
    return names[source];
}

/* pvclock scaling: (ticks << shift or >> -shift) * mul / 2^32. */
static uint64_t pvclock_scale(uint64_t ticks, uint32_t mul, int8_t shift)
{
    if (shift < 0)
        ticks >>= -shift;
    else
        ticks <<= shift;
    return (uint64_t)(((unsigned __int128)ticks * mul) >> 32);
}

/* Express 10^9 / hz as a pvclock (mul, shift) pair with mul < 2^32: choose
 * the smallest shift with hz * 2^shift > 10^9, then mul = 10^9 * 2^(32 -
 * shift) / hz, computed with a 128/64-bit divide. */
static void tsc_scale_from_hz(uint64_t hz)
{
    int shift = -32;

    while (shift < 31 && (shift < 0 ? (hz >> -shift) : (hz << shift)) <= 1000000000ull)
        shift++;
    unsigned __int128 num = (unsigned __int128)1000000000ull << (32 - shift);
    uint64_t hi = (uint64_t)(num >> 64), lo = (uint64_t)num, q, r;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(hz));
    tsc_mul = (uint32_t)q;
    tsc_shift = (int8_t)shift;
}

static void kvm_detect(void)
{
    uint32_t r[4];

    cpuid(1, 0, r);
    if (!(r[2] & CPUID_HYPERVISOR_BIT))
        return;
    /* KVM's leaves move to 0x40000100 when it also offers Hyper-V's. */
    for (uint32_t base = 0x40000000; base <= 0x40000100; base += 0x100) {
        cpuid(base, 0, r);
        if (base == 0x40000000)
            hv_max_leaf = r[0];
        if (r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x4d) {
            on_kvm = true;
            cpuid(base + 1, 0, r);
            kvm_features = r[0];
            return;
        }
    }
}

/* TSC frequency from CPUID when the platform states it. */
static uint64_t tsc_hz_from_cpuid(void)
{
    uint32_t r[4];

    if (hv_max_leaf >= CPUID_TIMING_LEAF && hv_max_leaf < 0x40000100) {
        cpuid(CPUID_TIMING_LEAF, 0, r);
        if (r[0])
            return (uint64_t)r[0] * 1000;
    }
    cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    if (max_leaf >= 0x15) { /* TSC / crystal ratio, crystal Hz: SDM vol. 2A CPUID */
        cpuid(0x15, 0, r);
        if (r[0] && r[1] && r[2])
            return (uint64_t)r[2] * r[1] / r[0];
    }
    if (max_leaf >= 0x16) { /* base frequency in MHz: the TSC rate on Intel */
        cpuid(0x16, 0, r);
        if (r[0] & 0xffff)
            return (uint64_t)(r[0] & 0xffff) * 1000000;
    }
    return 0;
}

void time_init_cpu(struct shim_cpu *cpu)
{
    if (!kvm_time_msr)
        return;
    wrmsr(kvm_time_msr, (uintptr_t)&cpu->pvclock | 1);
    /* KVM fills the structure before the WRMSR returns to the guest. */
    cpu->kvmclock_on = __atomic_load_n(&cpu->pvclock.version, __ATOMIC_ACQUIRE) != 0;
}

void time_init(void)
{
    kvm_detect();
    if (kvm_features & KVM_FEATURE_CLOCKSOURCE2)
        kvm_time_msr = MSR_KVM_SYSTEM_TIME_NEW;
    else if (kvm_features & KVM_FEATURE_CLOCKSOURCE)
        kvm_time_msr = MSR_KVM_SYSTEM_TIME;
    time_init_cpu(cpu_self());
    if (cpu_self()->kvmclock_on) {
        source = TIME_KVMCLOCK;
        return;
    }
    kvm_time_msr = 0;
    uint64_t hz = tsc_hz_from_cpuid();
    if (hz) {
        tsc_scale_from_hz(hz);
        source = TIME_TSC;
    }
}

/* A consistent copy of this CPU's pvclock record: the hypervisor makes the
 * version odd while it updates the record (pvclock ABI). */
static void pvclock_read(const struct shim_cpu *cpu, struct pvclock_vcpu_time_info *out,
                         uint64_t *tsc)
{
    const volatile struct pvclock_vcpu_time_info *p = &cpu->pvclock;
    uint32_t version;

    do {
        version = p->version;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        *tsc = rdtsc_ordered();
        out->tsc_timestamp = p->tsc_timestamp;
        out->system_time = p->system_time;
        out->tsc_to_system_mul = p->tsc_to_system_mul;
        out->tsc_shift = p->tsc_shift;
        out->flags = p->flags;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((version & 1) || version != p->version);
}

static uint64_t kvmclock_ns(const struct shim_cpu *cpu)
{
    struct pvclock_vcpu_time_info t;
    uint64_t tsc;

    pvclock_read(cpu, &t, &tsc);
    uint64_t ns =
        t.system_time + pvclock_scale(tsc - t.tsc_timestamp, t.tsc_to_system_mul, t.tsc_shift);
    if (t.flags & PVCLOCK_TSC_STABLE_BIT)
        return ns;
    uint64_t last = __atomic_load_n(&last_ns, __ATOMIC_RELAXED);
    do {
        if (ns <= last)
            return last;
    } while (!__atomic_compare_exchange_n(&last_ns, &last, ns, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return ns;
}

uint64_t shim_time_ns(void)
{
    struct shim_cpu *cpu = cpu_self();

    if (source == TIME_KVMCLOCK && cpu->kvmclock_on)
        return kvmclock_ns(cpu);
    if (source == TIME_TSC)
        return pvclock_scale(rdtsc_ordered() - shim_boot_tsc, tsc_mul, tsc_shift);
    return 0;
}

uint64_t shim_us_since_entry(void)
{
    struct shim_cpu *cpu = cpu_self();

    if (source == TIME_KVMCLOCK && cpu->kvmclock_on) {
        struct pvclock_vcpu_time_info t;
        uint64_t tsc;
        pvclock_read(cpu, &t, &tsc);
        return pvclock_scale(tsc - shim_boot_tsc, t.tsc_to_system_mul, t.tsc_shift) / 1000;
    }
    if (source == TIME_TSC)
        return pvclock_scale(rdtsc_ordered() - shim_boot_tsc, tsc_mul, tsc_shift) / 1000;
    return 0;
}

/* Without a clock: a PAUSE costs at least a few ns, so 100 per microsecond
 * bounds the wait without promising its length. */
#define PAUSES_PER_US 100

void shim_delay_us(uint64_t us)
{
    if (source == TIME_NONE || (source == TIME_KVMCLOCK && !cpu_self()->kvmclock_on)) {
        for (uint64_t i = 0; i < us * PAUSES_PER_US; i++)
            cpu_relax();
        return;
    }
    uint64_t end = shim_time_ns() + us * 1000;
    while (shim_time_ns() < end)
        cpu_relax();
}
