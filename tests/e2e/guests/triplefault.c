/* triplefault: with an empty IDT (limit 0) an exception cannot be
 * delivered (#GP, then #DF, then shutdown): the CPU triple-faults. */
#include "shim.h"

int main(void)
{
    static const struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) empty_idt = {0, 0};

    shim_printf("triplefault: loading an empty IDT and executing ud2\n");
    __asm__ volatile("lidt %0; ud2" : : "m"(empty_idt));
    return 0;
}
