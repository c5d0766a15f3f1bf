/* smp: start the APs and wait (5 s of guest time, or a bounded number of
 * iterations without a clock) until cpus=N CPUs are online. Prints
 * "cpus online: <count>"; exits 0 if the count equals N, else 1. */
#include "shim.h"

#define TIMEOUT_NS 5000000000ull
#define MAX_SPINS  20000000ull
#define SETTLE_US  20000 /* let CPUs beyond N show up before counting */

static uint64_t ap_mask;

static void ap_main(unsigned cpu, void *arg)
{
    (void)arg;
    __atomic_fetch_or(&ap_mask, 1ull << cpu, __ATOMIC_RELAXED);
}

int main(void)
{
    unsigned want = (unsigned)shim_arg_int("cpus", 1);

    if (shim_smp_start(ap_main, NULL) != 0) {
        shim_printf("smp: cannot start APs\n");
        return 1;
    }
    uint64_t start = shim_time_ns();
    for (uint64_t spins = 0; shim_cpu_count_started() < want; spins++) {
        if (start ? shim_time_ns() - start > TIMEOUT_NS : spins > MAX_SPINS)
            break;
        __builtin_ia32_pause();
    }
    shim_delay_us(SETTLE_US);
    unsigned online = shim_cpu_count_started();
    shim_printf("cpus online: %u\n", online);
    shim_printf("ap mask: %#llx\n",
                (unsigned long long)__atomic_load_n(&ap_mask, __ATOMIC_RELAXED));
    return online == want ? 0 : 1;
}
