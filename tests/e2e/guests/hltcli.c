/* hltcli: print a line, then halt with interrupts disabled, forever. */
#include "shim.h"

int main(void)
{
    shim_printf("hltcli: halting with interrupts disabled\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}
