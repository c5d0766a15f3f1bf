/*
 * trap.c - the IDT, the fatal exception report and interrupt dispatch.
 */
#include "shim-internal.h"

#define IDT_GATE_INTR        0x8e /* present, DPL 0, 64-bit interrupt gate */
#define VECTOR_PF            14
#define VECTOR_SPURIOUS      255
#define UNHANDLED_REPORT_MAX 16

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
};

struct irq_slot {
    shim_irq_handler fn;
    void *arg;
};

static struct idt_gate idt[256] __attribute__((aligned(16)));
static bool idt_ready;
static struct irq_slot irq_slots[256];
static unsigned unhandled_irqs;

static const char *const exception_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

static void idt_fill(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uintptr_t a = (uintptr_t)shim_isr_stubs + 16 * v;
        idt[v] = (struct idt_gate){
            .offset_lo = (uint16_t)a,
            .selector = SHIM_SEL_CODE64,
            .type = IDT_GATE_INTR,
            .offset_mid = (uint16_t)(a >> 16),
            .offset_hi = (uint32_t)(a >> 32),
        };
    }
}

void trap_load_idt(void)
{
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) ptr = {sizeof(idt) - 1, (uintptr_t)idt};

    if (!idt_ready) { /* the boot CPU fills it before any AP exists */
        idt_fill();
        idt_ready = true;
    }
    __asm__ volatile("lidt %0" : : "m"(ptr));
}

/* Follow the %rbp chain (the shim builds with frame pointers) while it
 * stays in mapped, aligned memory; a bad link ends the walk. */
static void report_backtrace(uint64_t rbp)
{
    for (int i = 0; i < 8; i++) {
        if (rbp < 0x1000 || rbp > FLINT_MMIO_GAP_START - 16 || (rbp & 7))
            return;
        const uint64_t *fp = (const uint64_t *)rbp;
        if (fp[1] == 0)
            return;
        shim_printf("  frame %d: %#018llx\n", i, (unsigned long long)fp[1]);
        rbp = fp[0];
    }
}

static _Noreturn void report_exception(struct shim_trap_frame *f)
{
    struct shim_cpu *cpu = cpu_self();
    unsigned vector = (unsigned)f->vector;
    int status = SHIM_EXIT_EXCEPTION(vector);

    /* A fault while reporting a fault: just leave with the status. */
    if (cpu->trap_depth++ > 0)
        shim_exit(status);

    shim_printf("\nshim: exception %u %s on cpu %u, error code %#llx\n", vector,
                exception_names[vector], cpu->index, (unsigned long long)f->error);
    shim_printf("  rip %016llx cs %04llx rflags %016llx\n", (unsigned long long)f->rip,
                (unsigned long long)f->cs, (unsigned long long)f->rflags);
    shim_printf("  rsp %016llx ss %04llx", (unsigned long long)f->rsp, (unsigned long long)f->ss);
    if (vector == VECTOR_PF) {
        uint64_t cr2;
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
        shim_printf(" cr2 %016llx", (unsigned long long)cr2);
    }
    shim_printf("\n  rax %016llx rbx %016llx rcx %016llx\n", (unsigned long long)f->rax,
                (unsigned long long)f->rbx, (unsigned long long)f->rcx);
    shim_printf("  rdx %016llx rsi %016llx rdi %016llx\n", (unsigned long long)f->rdx,
                (unsigned long long)f->rsi, (unsigned long long)f->rdi);
    shim_printf("  rbp %016llx r8  %016llx r9  %016llx\n", (unsigned long long)f->rbp,
                (unsigned long long)f->r8, (unsigned long long)f->r9);
    shim_printf("  r10 %016llx r11 %016llx r12 %016llx\n", (unsigned long long)f->r10,
                (unsigned long long)f->r11, (unsigned long long)f->r12);
    shim_printf("  r13 %016llx r14 %016llx r15 %016llx\n", (unsigned long long)f->r13,
                (unsigned long long)f->r14, (unsigned long long)f->r15);
    report_backtrace(f->rbp);
    shim_printf("shim: exit status %d (128 + vector %u)\n", status, vector);
    shim_exit(status);
}

void shim_trap_dispatch(struct shim_trap_frame *f)
{
    unsigned vector = (unsigned)f->vector & 0xff;

    if (vector < 32)
        report_exception(f);

    shim_irq_handler fn = __atomic_load_n(&irq_slots[vector].fn, __ATOMIC_ACQUIRE);
    if (fn) {
        fn(vector, irq_slots[vector].arg);
    } else {
        unsigned n = __atomic_fetch_add(&unhandled_irqs, 1, __ATOMIC_RELAXED);
        if (n < UNHANDLED_REPORT_MAX)
            shim_printf("shim: unhandled interrupt, vector %u on cpu %u\n", vector,
                        shim_cpu_index());
    }
    /* The spurious vector sets no ISR bit, so it takes no EOI (SDM vol. 3A
     * §10.9); an EOI with no interrupt in service is ignored. */
    if (vector != VECTOR_SPURIOUS)
        lapic_eoi();
}

int shim_irq_register(unsigned vector, shim_irq_handler fn, void *arg)
{
    if (vector < 32 || vector >= VECTOR_SPURIOUS)
        return -1;
    /* Clear fn first so a concurrent interrupt never pairs fn with a stale arg. */
    __atomic_store_n(&irq_slots[vector].fn, NULL, __ATOMIC_RELEASE);
    irq_slots[vector].arg = arg;
    __atomic_store_n(&irq_slots[vector].fn, fn, __ATOMIC_RELEASE);
    return 0;
}
