/*
 * start.c - from boot.S to main, and out again.
 */
#include "shim-internal.h"

int main(void);
_Noreturn void shim_start(uint32_t info_paddr);

uint64_t shim_boot_tsc;

/* The boot CPU's per-CPU slot is its APIC ID (0 under flint). */
static void boot_cpu_init(void)
{
    unsigned id = lapic_id();
    struct shim_cpu *cpu = cpu_slot(id);

    cpu_init(cpu ? cpu : cpu_slot(0), cpu ? id : 0);
    if (!cpu)
        shim_printf("shim: boot CPU APIC ID %u >= %u, using slot 0\n", id, SHIM_MAX_CPUS);
}

/* hvm_start_info is only trusted as far as its magic and version say; all
 * of it is copied before main so the monitor's low memory can be reused. */
static void boot_info_copy(uint32_t info_paddr)
{
    struct hvm_start_info info = {0};

    if (info_paddr && info_paddr < FLINT_MMIO_GAP_START - sizeof(info)) {
        memcpy(&info, phys_ptr(info_paddr), sizeof(info));
        if (info.magic != XEN_HVM_START_MAGIC_VALUE) {
            shim_printf("shim: bad hvm_start_info magic %#x at %#x\n", info.magic, info_paddr);
            memset(&info, 0, sizeof(info));
        }
    } else {
        shim_printf("shim: no usable hvm_start_info (EBX %#x)\n", info_paddr);
    }
    mem_init(info.magic ? &info : NULL);
    cmdline_init(info.cmdline_paddr);
}

_Noreturn void shim_start(uint32_t info_paddr)
{
    boot_cpu_init();
    console_init();
    boot_info_copy(info_paddr);
    time_init();
    mem_unmap_null_page();
    shim_exit(main());
}

_Noreturn void shim_exit(int status)
{
    outl(FLINT_PORT_EXIT, (uint32_t)status);
    cpu_park();
}
