/* pagefault: read an unmapped canonical address (PML4 entry 1 is not
 * present), so the shim reports #PF and exits with 128 + 14. */
#include "shim.h"

int main(void)
{
    volatile uint64_t *p = (volatile uint64_t *)0x8000000000ull;

    shim_printf("pagefault: reading %p\n", (void *)p);
    return (int)*p;
}
