/*
 * wait.c - sleep (HLT) until an interrupt handler makes a condition true.
 *
 * The condition is tested with interrupts disabled; only then does the CPU
 * execute `sti; hlt`. STI delays interrupt recognition until after the next
 * instruction (SDM vol. 2B, STI), so an interrupt that arrives between the
 * test and the HLT is taken after HLT has started and wakes it: no wake-up
 * is lost, and no cycle is spent spinning. A one-shot local APIC timer
 * bounds every HLT, so a device that never interrupts costs a timeout, not
 * a hang.
 */
#include "shim-internal.h"

#define WAIT_TIMER_VECTOR 0xef
#define WAIT_SLICE_NS     100000000ull /* a lost interrupt costs at most this */

static uint64_t halts;
static bool timer_ready;

static void wait_timer_irq(unsigned vector, void *arg)
{
    (void)vector;
    (void)arg;
}

uint64_t shim_halt_count(void)
{
    return __atomic_load_n(&halts, __ATOMIC_RELAXED);
}

static void wait_init(void)
{
    if (timer_ready)
        return;
    lapic_enable();
    shim_irq_register(WAIT_TIMER_VECTOR, wait_timer_irq, NULL);
    timer_ready = true;
}

/* Time since `start`: from the clock when there is one, else the sum of
 * the timer slices slept (`slept`, measured by the timer itself). */
static uint64_t wait_elapsed(bool clock, uint64_t start, uint64_t slept)
{
    return clock ? shim_time_ns() - start : slept;
}

int wait_until(bool (*done)(void *arg), void *arg, uint64_t timeout_ns)
{
    bool on = irq_save();
    bool clock = strcmp(shim_time_source(), "none") != 0;
    uint64_t start = shim_time_ns(), slept = 0;
    int ret;

    wait_init();
    for (;;) {
        if (done(arg)) {
            ret = 0;
            break;
        }
        uint64_t elapsed = wait_elapsed(clock, start, slept);
        if (elapsed >= timeout_ns) {
            ret = -SHIM_ETIMEDOUT;
            break;
        }
        uint64_t slice =
            timeout_ns - elapsed < WAIT_SLICE_NS ? timeout_ns - elapsed : WAIT_SLICE_NS;
        lapic_timer_oneshot(WAIT_TIMER_VECTOR, slice);
        __atomic_fetch_add(&halts, 1, __ATOMIC_RELAXED);
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        uint64_t left = lapic_timer_stop();
        slept += slice > left ? slice - left : 0;
    }
    irq_restore(on);
    return ret;
}
