/* ctrlaltdel: poll the i8042 for keyboard bytes until Ctrl-Alt-Del arrives
 * (set-2 scancodes 14 11 e0 71, what flint's SendCtrlAltDel queues), then
 * reboot through the i8042 as Linux does with reboot=k: flint exits 0.
 * Gives up with status 1 after ms=N milliseconds (default 120000). */
#include "shim.h"

static uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

int main(void)
{
    static const uint8_t want[] = {0x14, 0x11, 0xe0, 0x71};
    long long ms = shim_arg_int("ms", 120000);
    uint64_t start = shim_time_ns();
    unsigned got = 0;

    /* Polled: no interrupt handler needed. */
    shim_irq_disable();
    shim_printf("ctrlaltdel: waiting\n");
    while (got < sizeof(want)) {
        if (start && shim_time_ns() - start > (uint64_t)ms * 1000000ull) {
            shim_printf("ctrlaltdel: no Ctrl-Alt-Del within %lld ms\n", ms);
            return 1;
        }
        if (!(inb(FLINT_PORT_I8042_CMD) & 1)) {
            __builtin_ia32_pause();
            continue;
        }
        uint8_t b = inb(0x60);
        shim_printf("ctrlaltdel: key 0x%02x\n", b);
        got = b == want[got] ? got + 1 : b == want[0];
    }
    shim_printf("ctrlaltdel: rebooting\n");
    __asm__ volatile("outb %0, %1" : : "a"((uint8_t)FLINT_I8042_RESET), "Nd"(FLINT_PORT_I8042_CMD));
    for (;;)
        __asm__ volatile("cli; hlt");
}
