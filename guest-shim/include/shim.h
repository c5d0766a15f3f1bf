/*
 * shim.h - the whole API of flint's guest-shim.
 *
 * The guest-shim turns a freestanding C program into a PVH ELF image that
 * boots under flint (and QEMU): the application defines `int main(void)`;
 * the shim's boot stub enters long mode, installs exception handlers, copies
 * the boot information and calls main on the boot CPU with interrupts
 * disabled. Returning from main is shim_exit(main's return value).
 *
 * Environment: 64-bit long mode, ring 0, the first 4 GiB identity-mapped
 * (0xC0000000-0xFFFFFFFF uncached, page 0 unmapped so NULL faults), SSE
 * enabled, no red zone (build with the shim's compiler flags). Everything is
 * single-threaded on the boot CPU unless the application calls
 * shim_smp_start().
 *
 * Fatal exceptions: a CPU exception (vectors 0-31) on any CPU prints the
 * vector and its name, the error code, RIP, CS, RFLAGS, RSP, CR2 for #PF and
 * the general registers, then ends the VM with SHIM_EXIT_EXCEPTION(vector),
 * i.e. status 128 + vector (142 for #PF, 141 for #GP, 134 for #UD).
 */
#ifndef SHIM_H
#define SHIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flint-abi.h"

#define SHIM_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- Console: 16550 UART on COM1, polled; output is "\n", no CR. ---- */

/* Write one byte to the serial console. */
void shim_putc(char c);

/* Write the string s followed by a newline, like puts(3). */
void shim_puts(const char *s);

/* Formatted output to the console. Supports %d %i %u %x %X %o %p %s %c %%
 * with the flags '-', '0' and '#', a field width (digits or '*'), and the
 * length modifiers l, ll and z (no precision, no floating point). Output of
 * one call is not interleaved with other CPUs' output. Returns the number of
 * bytes written. */
int shim_printf(const char *fmt, ...) SHIM_PRINTF(1, 2);

/* shim_printf with a va_list. */
int shim_vprintf(const char *fmt, va_list ap);

/* Format into buf (at most size bytes including the terminating NUL, which
 * is always written when size > 0). Returns the length the full output would
 * have had, like snprintf(3). */
int shim_snprintf(char *buf, size_t size, const char *fmt, ...) SHIM_PRINTF(3, 4);

/* shim_snprintf with a va_list. */
int shim_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- Exit ---- */

/* Status of a fatal CPU exception with vector v (0-31): 128 + v. */
#define SHIM_EXIT_EXCEPTION(v) (FLINT_EXIT_EXCEPTION_BASE + (v))

/* End the VM with `status`: a 32-bit OUT of it to FLINT_PORT_EXIT. flint
 * exits with status & 0xff; QEMU's isa-debug-exit with (status << 1) | 1. If
 * no exit device answers, the CPU stops forever (cli; hlt). Callable from any
 * CPU. */
_Noreturn void shim_exit(int status);

/* ---- Hypervisor ---- */

/* True if CPUID reports the KVM signature "KVMKVMKVM\0\0\0" (at
 * 0x40000000, or 0x40000100 behind Hyper-V leaves). */
bool shim_on_kvm(void);

/* KVM paravirtual feature bits (CPUID 0x40000001 EAX, KVM_FEATURE_*), or 0
 * when not on KVM. */
uint32_t shim_kvm_features(void);

/* ---- Time ---- */

/* Monotonic nanoseconds. With kvmclock this is KVM's guest system time
 * (nanoseconds since the VM started); with the TSC fallback it counts from
 * the shim's first instruction. Returns 0 when no time source is known (see
 * shim_time_source()). */
uint64_t shim_time_ns(void);

/* Microseconds from the shim's first instruction (TSC read at the PVH entry)
 * to now, or 0 when no time source is known. Call it first thing in main to
 * measure boot-to-main. */
uint64_t shim_us_since_entry(void);

/* Name of the time source: "kvmclock", "tsc" (frequency from CPUID leaves
 * 0x40000010, 0x15 or 0x16) or "none" (time is unavailable: the two functions
 * above return 0 and shim_delay_us spins a bounded number of iterations). */
const char *shim_time_source(void);

/* Busy-wait for at least `us` microseconds (approximately, by a bounded
 * PAUSE loop, when no time source is known). */
void shim_delay_us(uint64_t us);

/* ---- Boot arguments (the PVH command line) ---- */

/* The whole command line, never NULL ("" when the monitor passed none). */
const char *shim_cmdline(void);

/* Value of the last `key=value` word on the command line (double quotes
 * around a value are removed), "" for a bare `key`, NULL if key is absent. */
const char *shim_arg(const char *key);

/* shim_arg(key) as an integer (decimal, 0x hex or 0 octal, optional sign), or
 * def if the key is absent, malformed or out of range. */
long long shim_arg_int(const char *key, long long def);

/* Number of valid `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` entries
 * (Linux syntax: size with optional K/M/G suffix, base as in C, irq > 0).
 * Malformed entries are reported on the console at boot and skipped. */
unsigned shim_virtio_mmio_count(void);

/* Entry i in command-line order. Returns 0 and fills the non-NULL out
 * pointers, or -1 if i >= shim_virtio_mmio_count(). */
int shim_virtio_mmio_get(unsigned i, uint64_t *base, uint64_t *size, unsigned *irq);

/* ---- Memory ---- */

/* Bytes of RAM (type 1) in the PVH memory map. */
uint64_t shim_ram_bytes(void);

/* Number of PVH modules the monitor passed (flint: 1 with --initrd). */
unsigned shim_module_count(void);

/* Module i's contents and size, or NULL if i >= shim_module_count(). */
const void *shim_module_get(unsigned i, size_t *size);

/* Zeroed memory from the RAM right after the image (below 4 GiB, outside
 * PVH modules); never freed. align must be a power of two (0 means 16).
 * Returns NULL when the request does not fit. Safe on any CPU. */
void *shim_alloc(size_t size, size_t align);

/* ---- Interrupts (vectors 32-255) ---- */

typedef void (*shim_irq_handler)(unsigned vector, void *arg);

/* Run fn(vector, arg) on interrupt `vector` (32-254; 255 is reserved for the
 * local APIC's spurious vector). The shim saves all registers including SSE
 * state and sends the local APIC EOI after fn returns. An interrupt without
 * a handler is reported on the console (and EOI'd) instead of crashing.
 * fn == NULL unregisters. Returns 0, or -1 for a bad vector. */
int shim_irq_register(unsigned vector, shim_irq_handler fn, void *arg);

/* Enable (sti) / disable (cli) interrupts on the calling CPU. */
void shim_irq_enable(void);
void shim_irq_disable(void);

/* ---- SMP ---- */

#define SHIM_MAX_CPUS 32

typedef void (*shim_ap_fn)(unsigned cpu, void *arg);

/* Start every application processor with a broadcast INIT-SIPI-SIPI through
 * the local APIC. Each AP enters long mode on the shim's page tables with
 * its own stack, counts itself in shim_cpu_count_started(), runs fn(cpu,
 * arg) if fn is not NULL, then halts (cli; hlt) for good. Returns at once (0)
 * without waiting for the APs; -1 if called twice, or if the trampoline page
 * (0x1000) is not RAM or the stacks cannot be allocated. APs with APIC ID >=
 * SHIM_MAX_CPUS stay halted and uncounted. */
int shim_smp_start(shim_ap_fn fn, void *arg);

/* CPUs that have come up so far, the boot CPU included. */
unsigned shim_cpu_count_started(void);

/* Index of the calling CPU: its local APIC ID (flint: the vCPU index). */
unsigned shim_cpu_index(void);

/* ---- C library subset (the compiler may emit calls to the mem* ones) ---- */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif /* SHIM_H */
