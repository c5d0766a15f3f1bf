/*
 * console_in.c - interrupt-driven reads from COM1's 16550 receiver.
 */
#include "shim-internal.h"

#define UART_RBR      0 /* receiver buffer register */
#define UART_IER      1
#define UART_MCR      4
#define UART_LSR      5
#define UART_IER_RDA  0x01
#define UART_MCR_OUT2 0x08 /* gates the UART's interrupt onto the ISA line */
#define UART_LSR_DR   0x01

#define COM1_GSI 4 /* the ISA IRQ 4 line, identity-mapped on the IOAPIC */

static bool rx_ready;

static void uart_rx_irq(unsigned vector, void *arg)
{
    /* Waking the waiter is all: wait_until tests LSR itself. */
    (void)vector;
    (void)arg;
}

/* The FIFO stays off: turning it on empties the receiver (PC16550D, FCR
 * bit 0), and the host may have put a byte there already; one byte per
 * interrupt is plenty for a console. Without a free vector or IOAPIC pin
 * the wait still works, woken by its timer slices. */
static void uart_rx_init(void)
{
    int vector;

    if (rx_ready)
        return;
    vector = irq_vector_alloc();
    if (vector >= 0) {
        shim_irq_register((unsigned)vector, uart_rx_irq, NULL);
        lapic_enable();
        if (ioapic_route(COM1_GSI, (unsigned)vector, lapic_id()) == 0) {
            outb(FLINT_PORT_COM1 + UART_MCR, inb(FLINT_PORT_COM1 + UART_MCR) | UART_MCR_OUT2);
            outb(FLINT_PORT_COM1 + UART_IER, inb(FLINT_PORT_COM1 + UART_IER) | UART_IER_RDA);
        }
    }
    rx_ready = true;
}

static bool uart_has_byte(void *arg)
{
    (void)arg;
    return inb(FLINT_PORT_COM1 + UART_LSR) & UART_LSR_DR;
}

int shim_getc_timeout(uint64_t timeout_us)
{
    uint64_t ns = timeout_us >= UINT64_MAX / 1000 ? UINT64_MAX : timeout_us * 1000;

    uart_rx_init();
    if (wait_until(uart_has_byte, NULL, ns))
        return -SHIM_ETIMEDOUT;
    return inb(FLINT_PORT_COM1 + UART_RBR);
}

int shim_getc(void)
{
    return shim_getc_timeout(SHIM_GETC_FOREVER);
}
