/*
 * hello - the smallest useful guest-shim program.
 */
#include "shim.h"

int main(void)
{
    uint64_t boot_us = shim_us_since_entry();

    shim_printf("Hello from flint guest-shim\n");
    shim_printf("cmdline: %s\n", shim_cmdline());
    shim_printf("on KVM: %s\n", shim_on_kvm() ? "yes" : "no");
    if (*shim_time_source() == 'n')
        shim_printf("boot-to-main: unavailable (no time source)\n");
    else
        shim_printf("boot-to-main: %llu us (%s)\n", (unsigned long long)boot_us,
                    shim_time_source());
    shim_printf("ram: %llu MiB\n", (unsigned long long)(shim_ram_bytes() >> 20));
    for (unsigned i = 0; i < shim_virtio_mmio_count(); i++) {
        uint64_t base, size;
        unsigned irq;
        shim_virtio_mmio_get(i, &base, &size, &irq);
        shim_printf("virtio-mmio %u: %#llx size %#llx irq %u\n", i, (unsigned long long)base,
                    (unsigned long long)size, irq);
    }
    return 0;
}
