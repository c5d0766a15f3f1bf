/*
 * cpu.c - per-CPU state (%gs) and the interrupt flag.
 */
#include "shim-internal.h"

static struct shim_cpu cpus[SHIM_MAX_CPUS];

struct shim_cpu *cpu_slot(unsigned index)
{
    return index < SHIM_MAX_CPUS ? &cpus[index] : NULL;
}

void cpu_init(struct shim_cpu *cpu, unsigned index)
{
    cpu->self = cpu;
    cpu->index = index;
    wrmsr(SHIM_MSR_GS_BASE, (uintptr_t)cpu);
    trap_load_idt();
}

struct shim_cpu *cpu_self(void)
{
    struct shim_cpu *cpu;

    __asm__ volatile("mov %%gs:0, %0" : "=r"(cpu));
    return cpu;
}

unsigned shim_cpu_index(void)
{
    return cpu_self()->index;
}

void shim_irq_enable(void)
{
    __asm__ volatile("sti" ::: "memory");
}

void shim_irq_disable(void)
{
    __asm__ volatile("cli" ::: "memory");
}
