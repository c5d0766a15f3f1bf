/*
 * smp.c - bringing up the application processors.
 */
#include "shim-internal.h"

/* ICR values, Intel SDM vol. 3A §10.6.1: destination shorthand "all
 * excluding self", level assert, delivery mode INIT or Start-Up. */
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_ASSERT       (1u << 14)
#define ICR_INIT         (5u << 8)
#define ICR_STARTUP      (6u << 8)

uintptr_t shim_ap_stacks; /* boot.S: the stack of APIC ID i ends at + (i + 1) * size */
static unsigned cpus_started = 1;
static bool smp_started;
static shim_ap_fn ap_fn;
static void *ap_arg;

unsigned shim_cpu_count_started(void)
{
    return __atomic_load_n(&cpus_started, __ATOMIC_ACQUIRE);
}

/* Called by boot.S on each AP, on its own stack, in long mode. */
_Noreturn void shim_ap_start(unsigned index);

_Noreturn void shim_ap_start(unsigned index)
{
    struct shim_cpu *cpu = cpu_slot(index);

    cpu_init(cpu, index);
    time_init_cpu(cpu);
    __atomic_fetch_add(&cpus_started, 1, __ATOMIC_ACQ_REL);
    shim_ap_fn fn = __atomic_load_n(&ap_fn, __ATOMIC_ACQUIRE);
    if (fn)
        fn(index, ap_arg);
    cpu_park();
}

int shim_smp_start(shim_ap_fn fn, void *arg)
{
    size_t tramp_len = (size_t)(shim_ap_trampoline_end - shim_ap_trampoline);

    if (__atomic_exchange_n(&smp_started, true, __ATOMIC_ACQ_REL))
        return -1;
    if (!mem_is_ram(SHIM_AP_TRAMPOLINE_ADDR, 4096)) {
        shim_printf("shim: page %#x is not RAM, cannot start APs\n", SHIM_AP_TRAMPOLINE_ADDR);
        return -1;
    }
    /* Stacks need no zeroing; slot 0 belongs to APIC ID 0, the boot CPU. */
    void *stacks = mem_alloc_raw((size_t)SHIM_MAX_CPUS * SHIM_AP_STACK_SIZE, 4096);
    if (!stacks) {
        shim_printf("shim: no memory for AP stacks\n");
        return -1;
    }
    memcpy(phys_ptr(SHIM_AP_TRAMPOLINE_ADDR), shim_ap_trampoline, tramp_len);
    ap_arg = arg;
    __atomic_store_n(&ap_fn, fn, __ATOMIC_RELEASE);
    __atomic_store_n(&shim_ap_stacks, (uintptr_t)stacks, __ATOMIC_RELEASE);

    /* INIT, then two SIPIs (SDM vol. 3A §8.4.4.1). The 10 ms wait after INIT
     * is only needed by pre-integrated APICs; like Linux on modern CPUs we
     * wait 10 us around each SIPI. A second SIPI is ignored by APs that
     * already left wait-for-SIPI. */
    unsigned sipi = ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (SHIM_AP_TRAMPOLINE_ADDR >> 12);
    lapic_send_icr(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT, 0);
    shim_delay_us(10);
    for (int i = 0; i < 2; i++) {
        lapic_send_icr(sipi, 0);
        shim_delay_us(10);
    }
    return 0;
}
