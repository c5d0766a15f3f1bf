/*
 * shim-internal.h - what the guest-shim's own files share with each other.
 *
 * Not part of the application API (that is include/shim.h). The first block
 * is also included by the assembly files, so it holds plain #defines only.
 */
#ifndef SHIM_INTERNAL_H
#define SHIM_INTERNAL_H

/* Segment selectors of the shim's GDT (boot.S). */
#define SHIM_SEL_CODE64 0x08
#define SHIM_SEL_DATA   0x10
#define SHIM_SEL_CODE32 0x18

/* Control register bits (Intel SDM vol. 3A §2.5). */
#define SHIM_CR0_PE 0x00000001
#define SHIM_CR0_MP 0x00000002
#define SHIM_CR0_NE 0x00000020
#define SHIM_CR0_WP 0x00010000
#define SHIM_CR0_PG 0x80000000
#define SHIM_CR0    (SHIM_CR0_PG | SHIM_CR0_WP | SHIM_CR0_NE | SHIM_CR0_MP | SHIM_CR0_PE)
#define SHIM_CR4    0x00000620 /* PAE | OSFXSR | OSXMMEXCPT: SSE on, FP faults native */

#define SHIM_MSR_EFER     0xc0000080
#define SHIM_EFER_LME     0x100
#define SHIM_MSR_GS_BASE  0xc0000101
#define SHIM_MSR_APICBASE 0x1b

/* Page-table entry bits (Intel SDM vol. 3A §4.5). */
#define SHIM_PTE_P    0x001
#define SHIM_PTE_RW   0x002
#define SHIM_PTE_PWT  0x008
#define SHIM_PTE_PCD  0x010
#define SHIM_PTE_PS   0x080
#define SHIM_PDE_RAM  (SHIM_PTE_P | SHIM_PTE_RW | SHIM_PTE_PS)
#define SHIM_PDE_MMIO (SHIM_PDE_RAM | SHIM_PTE_PCD | SHIM_PTE_PWT)

/* Application processors start in real mode at this page (SIPI vector
 * 0x01). It is free in flint's low-memory layout (flint-abi.h: 0x500 GDT/IDT,
 * 0x6000+ PVH info) and is checked against the PVH memmap before use. */
#define SHIM_AP_TRAMPOLINE_ADDR 0x1000

/* Same definition as in shim.h (a mismatch is a redefinition error in C). */
#define SHIM_MAX_CPUS 32

#define SHIM_BOOT_STACK_SIZE 0x8000
#define SHIM_AP_STACK_SIZE   0x4000

#ifndef __ASSEMBLER__

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "shim.h"
#include "flint-abi.h"

/* Xen public arch-x86/pvclock ABI (as KVM uses it). */
struct pvclock_vcpu_time_info {
    uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
};

/* Per-CPU state; %gs points at the owning CPU's entry. */
struct shim_cpu {
    struct shim_cpu *self; /* %gs:0 */
    unsigned index;        /* the CPU's local APIC ID */
    unsigned trap_depth;   /* nesting of the fatal exception reporter */
    bool kvmclock_on;
    struct pvclock_vcpu_time_info pvclock __attribute__((aligned(32)));
} __attribute__((aligned(64)));

/* Linker-script and boot.S symbols. */
extern char _end[];
extern uint64_t shim_pt0[];
extern const char shim_ap_trampoline[], shim_ap_trampoline_end[];
extern const char shim_isr_stubs[];
extern uint64_t shim_boot_tsc;   /* TSC at the first instruction */
extern uintptr_t shim_ap_stacks; /* SHIM_MAX_CPUS AP stacks, read by boot.S */

/* Frame built by isr.S: general registers (r15 lowest), then the vector,
 * the error code (0 when the CPU pushes none) and the CPU's interrupt frame. */
struct shim_trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* cpu.c */
void cpu_init(struct shim_cpu *cpu, unsigned index);
struct shim_cpu *cpu_self(void);
struct shim_cpu *cpu_slot(unsigned index);

/* apic.c: the calling CPU's local APIC, and the IOAPIC at
 * FLINT_IOAPIC_ADDR. */
unsigned lapic_id(void);
void lapic_eoi(void);
void lapic_send_icr(uint32_t low, uint32_t dest);
/* Once, on the boot CPU: mask the legacy 8259A PICs and LINT0, then
 * software-enable the local APIC (spurious vector 255, TPR 0). */
void lapic_enable(void);
/* Arm the one-shot timer to raise `vector` after about `ns` nanoseconds
 * (assumes the 1 GHz APIC bus of KVM and QEMU; clamped to ~68 s). */
void lapic_timer_oneshot(unsigned vector, uint64_t ns);
/* Disarm the timer; returns the nanoseconds it had left (0 if it fired). */
uint64_t lapic_timer_stop(void);
/* Route IOAPIC pin `gsi` to `vector` on the local APIC `apic_id`: fixed
 * delivery, physical destination, edge-triggered, active high, unmasked.
 * Returns 0, -SHIM_EINVAL for a bad vector or APIC ID, -SHIM_ENODEV if the
 * IOAPIC has no such pin. */
int ioapic_route(unsigned gsi, unsigned vector, unsigned apic_id);
/* A fresh vector for a device interrupt (0x30-0xdf), or -SHIM_ENOMEM. */
int irq_vector_alloc(void);

/* wait.c: on the calling CPU, halt until done(arg) returns true (0) or
 * about timeout_ns pass (-SHIM_ETIMEDOUT). done() runs with interrupts
 * disabled, before every halt and after every wake-up; interrupts are
 * enabled only inside `sti; hlt`. The caller's interrupt flag is restored.
 * Device interrupts are routed to the boot CPU, so call it there. */
int wait_until(bool (*done)(void *arg), void *arg, uint64_t timeout_ns);

/* trap.c */
void trap_load_idt(void);
void shim_trap_dispatch(struct shim_trap_frame *f);

/* time.c */
void time_init(void);
void time_init_cpu(struct shim_cpu *cpu);

/* mem.c */
void mem_init(const struct hvm_start_info *info);
bool mem_is_ram(uint64_t addr, uint64_t len);
void *mem_alloc_raw(size_t size, size_t align);
void mem_unmap_null_page(void);

/* cmdline.c */
void cmdline_init(uint64_t paddr);

/* console.c: serialise console output between CPUs. console_lock returns
 * true if the caller must call console_unlock (false when this CPU already
 * holds it, e.g. an exception raised while printing). */
bool console_lock(void);
/* Write n bytes to the console (caller holds the lock): through flint's
 * paravirtual console once console_init found it, else the 16550. */
void console_write(const char *buf, size_t n);
/* Probe for flint's paravirtual console (flint-abi.h); output before this
 * goes to the 16550, and so does all output where it is absent (QEMU). */
void console_init(void);
void console_unlock(void);

/* Inline helpers for the few privileged instructions the shim uses. */
static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

/* TSC read that is not executed ahead of earlier loads (pvclock needs it). */
static inline uint64_t rdtsc_ordered(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* Disable interrupts; returns whether they were enabled. */
static inline bool irq_save(void)
{
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    return flags & (1u << 9);
}

static inline void irq_restore(bool enabled)
{
    if (enabled)
        __asm__ volatile("sti" ::: "memory");
}

static inline void cpu_relax(void)
{
    __builtin_ia32_pause();
}

static inline _Noreturn void cpu_park(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* Hide a constant address from the compiler's object-size tracking. */
static inline void *phys_ptr(uint64_t paddr)
{
    uintptr_t p = (uintptr_t)paddr;
    __asm__("" : "+r"(p));
    return (void *)p;
}

#endif /* __ASSEMBLER__ */
#endif /* SHIM_INTERNAL_H */
