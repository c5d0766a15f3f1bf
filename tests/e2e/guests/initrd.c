/* initrd: report each PVH module's size and a checksum of its bytes, so the
 * test can compare them with the file it passed as --initrd. */
#include "shim.h"

int main(void)
{
    unsigned n = shim_module_count();

    shim_printf("modules: %u\n", n);
    for (unsigned i = 0; i < n; i++) {
        size_t size;
        const uint8_t *p = shim_module_get(i, &size);
        uint32_t sum = 0;
        for (size_t k = 0; k < size; k++)
            sum = sum * 31 + p[k];
        shim_printf("module %u: %zu bytes, sum %08x\n", i, size, sum);
    }
    return n ? 0 : 1;
}
