/* linger: start every CPU, say so, stay up for ms=N milliseconds of guest
 * time (default 3000), then exit 0. Gives a test time to look at flint's
 * threads while the guest runs. */
#include "shim.h"

#define TIMEOUT_NS 5000000000ull
#define MAX_SPINS  20000000ull

static void ap_main(unsigned cpu, void *arg)
{
    (void)cpu;
    (void)arg;
}

int main(void)
{
    unsigned want = (unsigned)shim_arg_int("cpus", 1);
    long long ms = shim_arg_int("ms", 3000);

    if (want > 1 && shim_smp_start(ap_main, NULL) != 0) {
        shim_printf("linger: cannot start APs\n");
        return 1;
    }
    uint64_t start = shim_time_ns();
    for (uint64_t spins = 0; shim_cpu_count_started() < want; spins++) {
        if (start ? shim_time_ns() - start > TIMEOUT_NS : spins > MAX_SPINS)
            break;
        __builtin_ia32_pause();
    }
    shim_printf("linger: up on %u cpus\n", shim_cpu_count_started());
    shim_delay_us((uint64_t)(ms < 0 ? 0 : ms) * 1000);
    shim_printf("linger: done\n");
    return 0;
}
