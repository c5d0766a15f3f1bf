/*
 * apic.c - the local APIC (EOI, IPIs, one-shot timer) and the IOAPIC that
 * routes device interrupts (GSIs) to it.
 *
 * Intel SDM vol. 3A chapter 10 (local APIC), Intel 82093AA datasheet
 * (IOAPIC). The local APIC is used in whatever mode the platform left it:
 * xAPIC (MMIO at the APIC base, mapped uncached) or x2APIC (MSRs).
 */
#include "shim-internal.h"

/* Local APIC register offsets (SDM vol. 3A table 10-1); x2APIC MSR =
 * X2APIC_MSR_BASE + offset / 16 (SDM vol. 3A §10.12.1.2). */
#define LAPIC_ID         0x020
#define LAPIC_TPR        0x080
#define LAPIC_EOI        0x0b0
#define LAPIC_SVR        0x0f0
#define LAPIC_ICR_LOW    0x300
#define LAPIC_ICR_HI     0x310
#define LAPIC_LVT_TIMER  0x320
#define LAPIC_LVT_LINT0  0x350
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR  0x390
#define LAPIC_TIMER_DIV  0x3e0

#define LAPIC_SVR_ENABLE  (1u << 8)
#define LAPIC_SPURIOUS    0xff
#define LAPIC_LVT_MASKED  (1u << 16)
#define LAPIC_ICR_BUSY    (1u << 12)
#define LAPIC_TIMER_DIV16 0x3 /* divide configuration 0b0011: bus clock / 16 */

#define X2APIC_MSR_BASE  0x800
#define X2APIC_MSR_ICR   0x830
#define APICBASE_ENABLE  (1u << 11)
#define APICBASE_X2APIC  (1u << 10)
#define APICBASE_ADDRESS 0xfffff000ull

/* KVM's and QEMU's emulated APIC bus runs at 1 GHz; with divide-by-16 a
 * timer tick is 16 ns. On a slower bus timeouts only get longer. */
#define LAPIC_TIMER_NS_PER_TICK 16

/* 8259A programmable interrupt controllers (Intel 8259A datasheet). */
#define PIC_MASTER_CMD  0x20
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_CMD   0xa0
#define PIC_SLAVE_DATA  0xa1
#define PIC_ICW1_INIT   0x11 /* edge, cascade, ICW4 follows */
#define PIC_ICW4_8086   0x01
#define PIC_VECTOR_BASE 0x20 /* below the device vectors: never a CPU exception */

/* IOAPIC: two indirect registers at its base (82093AA §3.0). */
#define IOAPIC_REGSEL        0x00
#define IOAPIC_WINDOW        0x10
#define IOAPIC_REG_VERSION   0x01
#define IOAPIC_REG_REDIR     0x10 /* + 2 * pin: low dword, + 1: high dword */
#define IOAPIC_REDIR_MASKED  (1u << 16)
#define IOAPIC_REDIR_DEST_SH 24 /* in the high dword: physical APIC ID */

static bool lapic_x2apic(void)
{
    return rdmsr(SHIM_MSR_APICBASE) & APICBASE_X2APIC;
}

static volatile uint32_t *lapic_mmio(uint32_t reg)
{
    return phys_ptr((rdmsr(SHIM_MSR_APICBASE) & APICBASE_ADDRESS) + reg);
}

static uint32_t lapic_read(uint32_t reg)
{
    if (lapic_x2apic())
        return (uint32_t)rdmsr(X2APIC_MSR_BASE + reg / 16);
    return *lapic_mmio(reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
    if (lapic_x2apic())
        wrmsr(X2APIC_MSR_BASE + reg / 16, v);
    else
        *lapic_mmio(reg) = v;
}

unsigned lapic_id(void)
{
    uint32_t id = lapic_read(LAPIC_ID);

    return lapic_x2apic() ? id : id >> 24;
}

void lapic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

void lapic_send_icr(uint32_t low, uint32_t dest)
{
    if (lapic_x2apic()) {
        wrmsr(X2APIC_MSR_ICR, ((uint64_t)dest << 32) | low);
        return;
    }
    *lapic_mmio(LAPIC_ICR_HI) = dest << 24;
    *lapic_mmio(LAPIC_ICR_LOW) = low;
    /* Bounded: a local APIC that never clears the busy bit must not hang us. */
    for (unsigned i = 0; i < 1000000 && (*lapic_mmio(LAPIC_ICR_LOW) & LAPIC_ICR_BUSY); i++)
        cpu_relax();
}

/* KVM and QEMU start the boot CPU with LINT0 in ExtINT mode, unmasked
 * (as a BIOS would leave it), and the 8259As unmasked with vector base 0:
 * a device line shared with the PIC (GSI 0-15) would then also arrive as
 * vector 0-15, i.e. as a CPU exception. Move the PICs' vectors to 0x20-0x2f,
 * mask all their lines, and mask LINT0: device interrupts come only through
 * the IOAPIC. */
static void legacy_pic_disable(void)
{
    outb(PIC_MASTER_CMD, PIC_ICW1_INIT);
    outb(PIC_SLAVE_CMD, PIC_ICW1_INIT);
    outb(PIC_MASTER_DATA, PIC_VECTOR_BASE);    /* ICW2 */
    outb(PIC_SLAVE_DATA, PIC_VECTOR_BASE + 8); /* ICW2 */
    outb(PIC_MASTER_DATA, 1u << 2);            /* ICW3: slave on IRQ 2 */
    outb(PIC_SLAVE_DATA, 2);                   /* ICW3: cascade identity */
    outb(PIC_MASTER_DATA, PIC_ICW4_8086);
    outb(PIC_SLAVE_DATA, PIC_ICW4_8086);
    outb(PIC_MASTER_DATA, 0xff); /* OCW1: mask everything */
    outb(PIC_SLAVE_DATA, 0xff);
}

/* After reset the local APIC is globally enabled but software-disabled
 * (SVR bit 8 clear), which blocks every interrupt but NMI/INIT/SIPI
 * (SDM vol. 3A §10.4.7.2). The timer LVT stays masked until programmed. */
void lapic_enable(void)
{
    static bool done;

    if (done)
        return;
    done = true;
    legacy_pic_disable();
    uint64_t base = rdmsr(SHIM_MSR_APICBASE);
    if (!(base & APICBASE_ENABLE))
        wrmsr(SHIM_MSR_APICBASE, base | APICBASE_ENABLE);
    lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS);
}

void lapic_timer_oneshot(unsigned vector, uint64_t ns)
{
    uint64_t ticks = ns / LAPIC_TIMER_NS_PER_TICK;

    if (ticks == 0)
        ticks = 1;
    if (ticks > UINT32_MAX)
        ticks = UINT32_MAX;
    lapic_write(LAPIC_TIMER_DIV, LAPIC_TIMER_DIV16);
    lapic_write(LAPIC_LVT_TIMER, vector & 0xff); /* one-shot, unmasked */
    lapic_write(LAPIC_TIMER_INIT, (uint32_t)ticks);
}

uint64_t lapic_timer_stop(void)
{
    uint64_t left = (uint64_t)lapic_read(LAPIC_TIMER_CUR) * LAPIC_TIMER_NS_PER_TICK;

    lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
    lapic_write(LAPIC_TIMER_INIT, 0);
    return left;
}

static uint32_t ioapic_read(uint32_t reg)
{
    *(volatile uint32_t *)phys_ptr(FLINT_IOAPIC_ADDR + IOAPIC_REGSEL) = reg;
    return *(volatile uint32_t *)phys_ptr(FLINT_IOAPIC_ADDR + IOAPIC_WINDOW);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)phys_ptr(FLINT_IOAPIC_ADDR + IOAPIC_REGSEL) = reg;
    *(volatile uint32_t *)phys_ptr(FLINT_IOAPIC_ADDR + IOAPIC_WINDOW) = v;
}

/* Number of redirection entries: bits 16-23 of the version register hold
 * the highest entry's index. */
static unsigned ioapic_pins(void)
{
    return ((ioapic_read(IOAPIC_REG_VERSION) >> 16) & 0xff) + 1;
}

int ioapic_route(unsigned gsi, unsigned vector, unsigned apic_id)
{
    if (vector < 32 || vector > 254 || apic_id > 255)
        return -SHIM_EINVAL;
    bool on = irq_save();
    int ret = -SHIM_ENODEV;
    if (gsi < ioapic_pins()) {
        uint32_t reg = IOAPIC_REG_REDIR + 2 * gsi;
        /* Mask while the entry is half-written; the low dword goes last.
         * Fixed delivery, physical destination, active high, edge. */
        ioapic_write(reg, IOAPIC_REDIR_MASKED);
        ioapic_write(reg + 1, apic_id << IOAPIC_REDIR_DEST_SH);
        ioapic_write(reg, vector);
        ret = 0;
    }
    irq_restore(on);
    return ret;
}

/* Device vectors count up from 0x30, below the shim's own (wait.c's timer
 * vector and the spurious vector). */
#define VECTOR_FIRST_DEVICE 0x30
#define VECTOR_LAST_DEVICE  0xdf

int irq_vector_alloc(void)
{
    static unsigned next = VECTOR_FIRST_DEVICE;
    unsigned v = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);

    return v <= VECTOR_LAST_DEVICE ? (int)v : -SHIM_ENOMEM;
}
