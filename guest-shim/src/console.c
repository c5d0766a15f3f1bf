/*
 * console.c - the console: flint's paravirtual console when it offers one,
 * else a polled 16550 UART on COM1; and the console lock.
 */
#include "shim-internal.h"

#define UART_THR      0 /* transmit holding register */
#define UART_LSR      5 /* line status register */
#define UART_LSR_THRE 0x20

/* The UART is emulated: THRE is normally set at once. The bound keeps a
 * missing or wedged UART (LSR stuck at 0) from hanging the guest. */
#define UART_POLL_MAX 100000

#define CONSOLE_SPIN_MAX (1u << 24)

static unsigned console_owner; /* 0 free, else owning CPU index + 1 */
static bool console_pv;        /* flint's paravirtual console answered the probe */

void console_init(void)
{
    console_pv = inl(FLINT_PORT_PVCONSOLE) == FLINT_PVCONSOLE_MAGIC;
}

/* One exit per chunk: the port write carries the descriptor's address. The
 * shim's memory is identity-mapped, so a pointer is a guest-physical
 * address; the "memory" clobber makes the descriptor and the bytes visible
 * before the OUT. Returns false when the descriptor is not addressable in
 * 32 bits (then the UART takes the output). */
static bool pv_write(const char *buf, size_t n)
{
    struct flint_pvconsole_desc desc __attribute__((aligned(8)));
    uintptr_t at = (uintptr_t)&desc;

    if (at > UINT32_MAX)
        return false;
    while (n) {
        uint32_t chunk = n > FLINT_PVCONSOLE_MAX ? FLINT_PVCONSOLE_MAX : (uint32_t)n;
        desc = (struct flint_pvconsole_desc){.buf = (uintptr_t)buf, .len = chunk};
        __asm__ volatile("outl %0, %1"
                         :
                         : "a"((uint32_t)at), "Nd"((uint16_t)FLINT_PORT_PVCONSOLE)
                         : "memory");
        buf += chunk;
        n -= chunk;
    }
    return true;
}

/* Write a whole chunk with one string OUT: the emulated UART (flint's or
 * QEMU's) takes every byte at once, and KVM turns `rep outsb` into a single
 * exit for up to a page, where byte-by-byte output with an LSR poll costs
 * two exits per character. A real 16550 would need THRE polled per FIFO
 * load; the shim only runs on emulated ones. */
void console_write(const char *buf, size_t n)
{
    if (console_pv && pv_write(buf, n))
        return;
    for (unsigned i = 0; i < UART_POLL_MAX; i++) {
        if (inb(FLINT_PORT_COM1 + UART_LSR) & UART_LSR_THRE)
            break;
        cpu_relax();
    }
    __asm__ volatile("rep outsb"
                     : "+S"(buf), "+c"(n)
                     : "d"((uint16_t)(FLINT_PORT_COM1 + UART_THR))
                     : "memory");
}

void shim_putc(char c)
{
    console_write(&c, 1);
}

/* Serialise output between CPUs. Re-entry on the owning CPU (an exception
 * raised while printing) proceeds without the lock, and a lock held for too
 * long (its owner died) is taken over: the console must keep working on
 * the way to a fatal report. Returns true if the caller must unlock. */
bool console_lock(void)
{
    unsigned me = shim_cpu_index() + 1;

    if (__atomic_load_n(&console_owner, __ATOMIC_RELAXED) == me)
        return false;
    for (unsigned spins = 0; spins < CONSOLE_SPIN_MAX; spins++) {
        unsigned expected = 0;
        if (__atomic_compare_exchange_n(&console_owner, &expected, me, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return true;
        cpu_relax();
    }
    __atomic_store_n(&console_owner, me, __ATOMIC_RELAXED);
    return true;
}

void console_unlock(void)
{
    __atomic_store_n(&console_owner, 0, __ATOMIC_RELEASE);
}

void shim_puts(const char *s)
{
    bool locked = console_lock();

    console_write(s, strlen(s));
    shim_putc('\n');
    if (locked)
        console_unlock();
}
