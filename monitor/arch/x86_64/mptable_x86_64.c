/*
 * mptable_x86_64.c - the MP table (Intel MultiProcessor Specification 1.4,
 * chapter 4) that tells a guest without ACPI how many CPUs it has and how
 * the IOAPIC is wired.
 *
 * Linux looks for the floating pointer in the last KiB of base memory
 * (639 KiB, FLINT_EBDA_START), among other places. The configuration table
 * follows it; with 32 CPUs both fit in that KiB, with more they run on into
 * the reserved BIOS area, which ends at 0xe0000.
 */
#include "loader.h"
#include "util.h"

#include <flint-abi.h>

#include <errno.h>
#include <string.h>

#define MP_ISA_BUS_ID 0

static uint8_t mp_checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + b[i]);
    return (uint8_t)-sum;
}

static size_t mptable_size(unsigned ncpus)
{
    return sizeof(struct mp_floating_pointer) + sizeof(struct mp_config_header) +
           ncpus * sizeof(struct mp_processor) + sizeof(struct mp_bus) + sizeof(struct mp_ioapic) +
           (MPTABLE_IRQS + 2) * sizeof(struct mp_interrupt);
}

/* Appends entries to the configuration table, counting them. */
struct mp_writer {
    uint8_t *base;
    size_t off;
    unsigned count;
};

static void mp_put(struct mp_writer *w, const void *entry, size_t len)
{
    memcpy(w->base + w->off, entry, len);
    w->off += len;
    w->count++;
}

static void put_processors(struct mp_writer *w, unsigned ncpus)
{
    for (unsigned id = 0; id < ncpus; id++) {
        struct mp_processor cpu = {
            .type = MP_PROCESSOR,
            .apic_id = (uint8_t)id,
            .apic_version = MP_APIC_VERSION,
            .flags = MP_CPU_ENABLED | (id == 0 ? MP_CPU_BSP : 0),
            .signature = 0x600, /* family 6; the guest reads CPUID anyway */
            .features = 0x201,  /* CPUID 1 EDX: FPU, APIC */
        };
        mp_put(w, &cpu, sizeof(cpu));
    }
}

static void put_wiring(struct mp_writer *w, uint8_t ioapic_id)
{
    const struct mp_bus isa = {.type = MP_BUS, .bus_id = MP_ISA_BUS_ID, .bus_type = "ISA   "};
    const struct mp_ioapic ioapic = {.type = MP_IOAPIC,
                                     .apic_id = ioapic_id,
                                     .apic_version = MP_IOAPIC_VERSION,
                                     .flags = MP_CPU_ENABLED,
                                     .addr = (uint32_t)FLINT_IOAPIC_ADDR};

    mp_put(w, &isa, sizeof(isa));
    mp_put(w, &ioapic, sizeof(ioapic));
    /* KVM's default routing sends GSI n to IOAPIC pin n (the PIT on 0). */
    for (unsigned irq = 0; irq < MPTABLE_IRQS; irq++) {
        struct mp_interrupt e = {.type = MP_IOINTERRUPT,
                                 .irq_type = MP_INT,
                                 .src_bus = MP_ISA_BUS_ID,
                                 .src_irq = (uint8_t)irq,
                                 .dst_apic = ioapic_id,
                                 .dst_pin = (uint8_t)irq};
        mp_put(w, &e, sizeof(e));
    }
    /* As vcpu_x86_64.c programs the LAPICs: LINT0 ExtINT, LINT1 NMI. */
    struct mp_interrupt extint = {.type = MP_LOCALINTERRUPT,
                                  .irq_type = MP_EXTINT,
                                  .src_bus = MP_ISA_BUS_ID,
                                  .dst_apic = 0xff,
                                  .dst_pin = 0};
    struct mp_interrupt nmi = extint;
    nmi.irq_type = MP_NMI;
    nmi.dst_pin = 1;
    mp_put(w, &extint, sizeof(extint));
    mp_put(w, &nmi, sizeof(nmi));
}

int mptable_write(const struct guest_mem *mem, unsigned ncpus)
{
    struct mp_floating_pointer *fp;
    struct mp_config_header *hdr;
    struct mp_writer w;
    size_t size;
    uint8_t *area;

    if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
        return -EINVAL;
    size = mptable_size(ncpus);
    if (FLINT_EBDA_START + size > FLINT_BIOS_END)
        return -EINVAL;
    area = guest_mem_slice(mem, FLINT_EBDA_START, size);
    if (!area)
        return -EFAULT;
    memset(area, 0, size);

    fp = (struct mp_floating_pointer *)area;
    hdr = (struct mp_config_header *)(area + sizeof(*fp));
    w = (struct mp_writer){.base = (uint8_t *)hdr, .off = sizeof(*hdr)};
    put_processors(&w, ncpus);
    put_wiring(&w, (uint8_t)ncpus);

    memcpy(hdr->signature, MP_CONFIG_SIGNATURE, 4);
    hdr->length = (uint16_t)w.off;
    hdr->spec_rev = MP_SPEC_REV;
    memcpy(hdr->oem_id, "FLINT   ", 8);
    memcpy(hdr->product_id, "MICROVM     ", 12);
    hdr->entry_count = (uint16_t)w.count;
    hdr->lapic_addr = (uint32_t)FLINT_LAPIC_ADDR;
    hdr->checksum = mp_checksum(hdr, w.off);

    memcpy(fp->signature, MP_FLOATING_SIGNATURE, 4);
    fp->config_table = (uint32_t)(FLINT_EBDA_START + sizeof(*fp));
    fp->length = 1;
    fp->spec_rev = MP_SPEC_REV;
    fp->checksum = mp_checksum(fp, sizeof(*fp));
    return 0;
}
