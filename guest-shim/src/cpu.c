/*
 * cpu.c - per-CPU state (%gs) and the local APIC accessors.
 */
#include "shim-internal.h"

#define LAPIC_ID       0x020
#define LAPIC_EOI      0x0b0
#define LAPIC_ICR_LOW  0x300
#define LAPIC_ICR_HI   0x310
#define LAPIC_ICR_BUSY (1u << 12)

#define X2APIC_MSR_ID  0x802
#define X2APIC_MSR_EOI 0x80b
#define X2APIC_MSR_ICR 0x830

#define APICBASE_X2APIC (1u << 10)

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

/* The APIC base MSR says whether the local APIC is in x2APIC mode (MSR
 * access) or xAPIC mode (MMIO at the base address, 0xFEE00000 by default,
 * mapped uncached). Intel SDM vol. 3A §10.4.4, §10.12. */
static volatile uint32_t *lapic_reg(uint32_t reg)
{
    uint64_t base = rdmsr(SHIM_MSR_APICBASE) & 0xfffff000ull;
    return phys_ptr(base + reg);
}

static bool lapic_x2apic(void)
{
    return rdmsr(SHIM_MSR_APICBASE) & APICBASE_X2APIC;
}

unsigned lapic_id(void)
{
    if (lapic_x2apic())
        return (uint32_t)rdmsr(X2APIC_MSR_ID);
    return *lapic_reg(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
    if (lapic_x2apic())
        wrmsr(X2APIC_MSR_EOI, 0);
    else
        *lapic_reg(LAPIC_EOI) = 0;
}

void lapic_send_icr(uint32_t low, uint32_t dest)
{
    if (lapic_x2apic()) {
        wrmsr(X2APIC_MSR_ICR, ((uint64_t)dest << 32) | low);
        return;
    }
    *lapic_reg(LAPIC_ICR_HI) = dest << 24;
    *lapic_reg(LAPIC_ICR_LOW) = low;
    /* Bounded: a local APIC that never clears the busy bit must not hang us. */
    for (unsigned i = 0; i < 1000000 && (*lapic_reg(LAPIC_ICR_LOW) & LAPIC_ICR_BUSY); i++)
        cpu_relax();
}

void shim_irq_enable(void)
{
    __asm__ volatile("sti" ::: "memory");
}

void shim_irq_disable(void)
{
    __asm__ volatile("cli" ::: "memory");
}
