/*
 * flint-abi.h - the contract between the flint monitor and its guests.
 *
 * This header is shared verbatim by the host (monitor/) and the freestanding
 * guest-shim, so it may only use <stdint.h>. Addresses follow Firecracker's
 * x86_64 layout (docs/ARCHITECTURE.md); the PVH structures follow the Xen
 * public header arch-x86/hvm/start_info.h (version 1).
 */
#ifndef FLINT_ABI_H
#define FLINT_ABI_H

#include <stdint.h>

/* Paravirtual exit device: an OUT of 1, 2 or 4 bytes to this port ends the
 * VM; flint exits with the low 8 bits of the value as its status. The port is
 * QEMU's isa-debug-exit port, so the same image can run under QEMU with
 * `-device isa-debug-exit,iobase=0xf4,iosize=4`, where the status becomes
 * (value << 1) | 1 instead. */
#define FLINT_PORT_EXIT 0xf4

/* guest-shim convention: a fatal CPU exception with vector v (0-31) ends the
 * VM with exit status FLINT_EXIT_EXCEPTION_BASE + v (142 for #PF). */
#define FLINT_EXIT_EXCEPTION_BASE 128

/* 16550 UART, COM1. */
#define FLINT_PORT_COM1 0x3f8
#define FLINT_GSI_COM1  4

/* Paravirtual console: one exit per write instead of one per byte.
 *
 * A 32-bit IN from FLINT_PORT_PVCONSOLE returns FLINT_PVCONSOLE_MAGIC when
 * flint offers the console (under QEMU an unclaimed port reads as all
 * ones, and the guest keeps the 16550). A 32-bit OUT of the guest-physical
 * address of a struct flint_pvconsole_desc (below 4 GiB, 8-byte aligned)
 * writes desc.len bytes from desc.buf to the console, in order with the
 * 16550's output. len is at most FLINT_PVCONSOLE_MAX; a descriptor or
 * buffer outside guest RAM, a longer len or a nonzero reserved field is
 * dropped (flint logs it, rate-limited). Any other access is ignored. */
#define FLINT_PORT_PVCONSOLE  0x4f0
#define FLINT_PVCONSOLE_MAGIC 0x464c4e43u /* "CNLF": flint console */
#define FLINT_PVCONSOLE_MAX   4096u

struct flint_pvconsole_desc {
    uint64_t buf;      /* guest-physical address of the bytes */
    uint32_t len;      /* number of bytes, at most FLINT_PVCONSOLE_MAX */
    uint32_t reserved; /* 0 */
};

/* i8042 command port: writing 0xFE pulses the CPU reset line. */
#define FLINT_PORT_I8042_CMD 0x64
#define FLINT_I8042_RESET    0xfe

/* Boot-timer device (Firecracker-compatible): a 1-byte write of 123 at
 * offset 0 marks "guest booted". */
#define FLINT_BOOT_TIMER_ADDR  0xc0000000ull
#define FLINT_BOOT_TIMER_MAGIC 123

/* virtio-mmio slots: 4 KiB each from FLINT_VIRTIO_MMIO_BASE, GSI 5, 6, ... */
#define FLINT_VIRTIO_MMIO_BASE 0xc0001000ull
#define FLINT_VIRTIO_MMIO_SIZE 0x1000ull
#define FLINT_VIRTIO_FIRST_GSI 5
#define FLINT_VIRTIO_LAST_GSI  23

/* 32-bit MMIO gap: no RAM between these addresses. */
#define FLINT_MMIO_GAP_START 0xc0000000ull
#define FLINT_MMIO_GAP_END   0x100000000ull

#define FLINT_IOAPIC_ADDR 0xfec00000ull
#define FLINT_LAPIC_ADDR  0xfee00000ull

/* Low-memory layout written by the monitor before the first instruction. */
#define FLINT_GDT_ADDR         0x500ull
#define FLINT_IDT_ADDR         0x520ull
#define FLINT_PVH_INFO_ADDR    0x6000ull
#define FLINT_PVH_MODLIST_ADDR 0x6040ull
#define FLINT_PVH_MEMMAP_ADDR  0x7000ull
#define FLINT_ZERO_PAGE_ADDR   0x7000ull
#define FLINT_BOOT_STACK_ADDR  0x8ff0ull
#define FLINT_PML4_ADDR        0x9000ull
#define FLINT_PDPTE_ADDR       0xa000ull
#define FLINT_PDE_ADDR         0xb000ull
#define FLINT_CMDLINE_ADDR     0x20000ull
#define FLINT_CMDLINE_MAX      2048
#define FLINT_EBDA_START       0x9fc00ull /* MP table; reserved up to FLINT_BIOS_END */
#define FLINT_BIOS_END         0xe0000ull
#define FLINT_HIMEM_START      0x100000ull
#define FLINT_PVH_MEMMAP_MAX   128

/* Xen PVH boot ABI: ELF note type XEN_ELFNOTE_PHYS32_ENTRY in a note named
 * "Xen" carries the 32-bit entry point; on entry EBX holds the physical
 * address of struct hvm_start_info. */
#define XEN_ELFNOTE_PHYS32_ENTRY  18
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578u

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

/* Types as in the e820 map. */
#define XEN_HVM_MEMMAP_TYPE_RAM      1
#define XEN_HVM_MEMMAP_TYPE_RESERVED 2

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

#endif /* FLINT_ABI_H */
