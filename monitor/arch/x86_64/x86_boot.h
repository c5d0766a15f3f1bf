/*
 * x86_boot.h - the Linux x86 boot protocol's data structures (Linux
 * Documentation/arch/x86/boot.rst and zero-page.rst) and the Intel
 * MultiProcessor Specification 1.4 tables, as flint writes and reads them.
 *
 * Layouts are spelled out with their documented offsets; the static
 * asserts below keep the structs honest.
 */
#ifndef FLINT_X86_BOOT_H
#define FLINT_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

/* --- Linux boot protocol ------------------------------------------------ */

#define LINUX_SETUP_HEADER_OFFSET 0x1f1
#define LINUX_BOOT_FLAG           0xaa55
#define LINUX_HDRS_MAGIC          0x53726448u /* "HdrS" */
#define LINUX_MIN_PROTOCOL        0x020c      /* 2.12: xloadflags */
#define LINUX_DEFAULT_SETUP_SECTS 4           /* setup_sects == 0 means 4 */
#define LINUX_LOADER_UNDEFINED    0xff        /* type_of_loader: no assigned id */
#define LINUX_ENTRY64_OFFSET      0x200       /* 64-bit entry: load address + 0x200 */

/* loadflags */
#define LINUX_LOADED_HIGH  0x01
#define LINUX_CAN_USE_HEAP 0x80
/* xloadflags */
#define LINUX_XLF_KERNEL_64              0x01
#define LINUX_XLF_CAN_BE_LOADED_ABOVE_4G 0x02

/* The setup header: offset 0x1f1 of both a bzImage file and the zero page.
 * Fields up to kernel_info_offset (protocol 2.15). */
struct linux_setup_header {
    uint8_t setup_sects;            /* 0x1f1 */
    uint16_t root_flags;            /* 0x1f2 */
    uint32_t syssize;               /* 0x1f4: protected-mode code, 16-byte units */
    uint16_t ram_size;              /* 0x1f8 */
    uint16_t vid_mode;              /* 0x1fa */
    uint16_t root_dev;              /* 0x1fc */
    uint16_t boot_flag;             /* 0x1fe: 0xaa55 */
    uint16_t jump;                  /* 0x200: its second byte + 0x202 = header end */
    uint32_t header;                /* 0x202: "HdrS" */
    uint16_t version;               /* 0x206 */
    uint32_t realmode_swtch;        /* 0x208 */
    uint16_t start_sys_seg;         /* 0x20c */
    uint16_t kernel_version;        /* 0x20e */
    uint8_t type_of_loader;         /* 0x210 */
    uint8_t loadflags;              /* 0x211 */
    uint16_t setup_move_size;       /* 0x212 */
    uint32_t code32_start;          /* 0x214 */
    uint32_t ramdisk_image;         /* 0x218 */
    uint32_t ramdisk_size;          /* 0x21c */
    uint32_t bootsect_kludge;       /* 0x220 */
    uint16_t heap_end_ptr;          /* 0x224 */
    uint8_t ext_loader_ver;         /* 0x226 */
    uint8_t ext_loader_type;        /* 0x227 */
    uint32_t cmd_line_ptr;          /* 0x228 */
    uint32_t initrd_addr_max;       /* 0x22c: highest address an initrd byte may use */
    uint32_t kernel_alignment;      /* 0x230 */
    uint8_t relocatable_kernel;     /* 0x234 */
    uint8_t min_alignment;          /* 0x235 */
    uint16_t xloadflags;            /* 0x236 */
    uint32_t cmdline_size;          /* 0x238: longest command line, NUL excluded */
    uint32_t hardware_subarch;      /* 0x23c */
    uint64_t hardware_subarch_data; /* 0x240 */
    uint32_t payload_offset;        /* 0x248 */
    uint32_t payload_length;        /* 0x24c */
    uint64_t setup_data;            /* 0x250 */
    uint64_t pref_address;          /* 0x258 */
    uint32_t init_size;             /* 0x260: bytes needed from the run address */
    uint32_t handover_offset;       /* 0x264 */
    uint32_t kernel_info_offset;    /* 0x268 */
} __attribute__((packed));

#define LINUX_E820_MAX 128

struct linux_e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

/* The zero page ("struct boot_params"): only the fields flint fills. */
struct linux_boot_params {
    uint8_t pad0[0x0c0];
    uint32_t ext_ramdisk_image; /* 0x0c0 */
    uint32_t ext_ramdisk_size;  /* 0x0c4 */
    uint32_t ext_cmd_line_ptr;  /* 0x0c8 */
    uint8_t pad1[0x1e8 - 0x0cc];
    uint8_t e820_entries; /* 0x1e8 */
    uint8_t pad2[LINUX_SETUP_HEADER_OFFSET - 0x1e9];
    struct linux_setup_header hdr; /* 0x1f1 */
    uint8_t pad3[0x2d0 - LINUX_SETUP_HEADER_OFFSET - sizeof(struct linux_setup_header)];
    struct linux_e820_entry e820_table[LINUX_E820_MAX]; /* 0x2d0 */
    uint8_t pad4[0x1000 - 0x2d0 - LINUX_E820_MAX * sizeof(struct linux_e820_entry)];
} __attribute__((packed));

_Static_assert(sizeof(struct linux_setup_header) == 0x26c - 0x1f1, "setup header layout");
_Static_assert(offsetof(struct linux_boot_params, hdr) +
                       offsetof(struct linux_setup_header, cmd_line_ptr) ==
                   0x228,
               "cmd_line_ptr offset");
_Static_assert(offsetof(struct linux_boot_params, hdr) +
                       offsetof(struct linux_setup_header, init_size) ==
                   0x260,
               "init_size offset");
_Static_assert(offsetof(struct linux_boot_params, e820_table) == 0x2d0, "e820 table offset");
_Static_assert(sizeof(struct linux_boot_params) == 4096, "the zero page is one page");

/* --- MultiProcessor Specification 1.4 ------------------------------------ */

#define MP_FLOATING_SIGNATURE "_MP_"
#define MP_CONFIG_SIGNATURE   "PCMP"
#define MP_SPEC_REV           4
#define MP_APIC_VERSION       0x14
#define MP_IOAPIC_VERSION     0x11

enum mp_entry_type {
    MP_PROCESSOR = 0,
    MP_BUS = 1,
    MP_IOAPIC = 2,
    MP_IOINTERRUPT = 3,
    MP_LOCALINTERRUPT = 4,
};

enum mp_irq_type {
    MP_INT = 0,
    MP_NMI = 1,
    MP_SMI = 2,
    MP_EXTINT = 3,
};

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP     0x02

struct mp_floating_pointer {
    char signature[4];
    uint32_t config_table; /* physical address of the configuration table */
    uint8_t length;        /* in 16-byte units: 1 */
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t feature[5]; /* feature[0] 0: a configuration table is present */
} __attribute__((packed));

struct mp_config_header {
    char signature[4];
    uint16_t length; /* the base table: header and entries */
    uint8_t spec_rev;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_addr;
    uint16_t ext_length;
    uint8_t ext_checksum;
    uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
    uint8_t type;
    uint8_t apic_id;
    uint8_t apic_version;
    uint8_t flags;
    uint32_t signature; /* CPUID 1 EAX: stepping, model, family */
    uint32_t features;  /* CPUID 1 EDX */
    uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
    uint8_t type;
    uint8_t bus_id;
    char bus_type[6];
} __attribute__((packed));

struct mp_ioapic {
    uint8_t type;
    uint8_t apic_id;
    uint8_t apic_version;
    uint8_t flags;
    uint32_t addr;
} __attribute__((packed));

/* I/O and local interrupt assignments share a layout. */
struct mp_interrupt {
    uint8_t type;
    uint8_t irq_type;
    uint16_t irq_flags; /* 0: polarity and trigger conform to the bus */
    uint8_t src_bus;
    uint8_t src_irq;
    uint8_t dst_apic; /* 0xff: every local APIC */
    uint8_t dst_pin;  /* IOAPIC INTIN# or LINT# */
} __attribute__((packed));

_Static_assert(sizeof(struct mp_floating_pointer) == 16, "MP floating pointer");
_Static_assert(sizeof(struct mp_config_header) == 44, "MP config header");
_Static_assert(sizeof(struct mp_processor) == 20, "MP processor entry");
_Static_assert(sizeof(struct mp_bus) == 8 && sizeof(struct mp_ioapic) == 8 &&
                   sizeof(struct mp_interrupt) == 8,
               "MP 8-byte entries");

#endif /* FLINT_X86_BOOT_H */
