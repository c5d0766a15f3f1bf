/* reset: ask the i8042 controller to pulse the CPU reset line, as Linux does
 * with reboot=k. flint must end with status 0; if the reset were ignored the
 * guest halts with interrupts off and flint reports a crash instead. */
#include "shim.h"

int main(void)
{
    shim_puts("resetting through the i8042");
    __asm__ volatile("outb %0, %1" : : "a"((uint8_t)FLINT_I8042_RESET), "Nd"(FLINT_PORT_I8042_CMD));
    for (;;)
        __asm__ volatile("cli; hlt");
}
