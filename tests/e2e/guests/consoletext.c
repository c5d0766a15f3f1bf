/* consoletext: deterministic console output for the byte-for-byte check
 * of the paravirtual console (test_boot.c console_text_*): short lines, a
 * line longer than one paravirtual write (FLINT_PVCONSOLE_MAX), every
 * printable character, and output from printf and puts interleaved. */
#include "shim.h"

#include <flint-abi.h>

#define LONG_LINE 5000

static char long_line[LONG_LINE + 1];

int main(void)
{
    shim_puts("consoletext: begin");
    for (int i = 0; i < 20; i++)
        shim_printf("line %02d: %s %d %x\n", i, i % 2 ? "odd" : "even", i * i, i * 4099);
    for (int i = 0; i < LONG_LINE; i++)
        long_line[i] = (char)('a' + i % 26);
    shim_puts(long_line);
    for (int c = 32; c < 127; c++)
        shim_printf("%c", c);
    shim_printf("\n");
    shim_puts("consoletext: end");
    return 0;
}
