/* Unit tests: the PVH ELF loader, with well-formed and hostile images. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "loader.h"
#include "util.h"

#include <elf.h>
#include <fcntl.h>
#include <errno.h>
#include <flint-abi.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define IMG_MAX    0x4000
#define CODE_OFF   0x1000
#define CODE_PADDR 0x100000ull

struct image {
    uint8_t bytes[IMG_MAX];
    size_t len;
    Elf64_Ehdr *eh;
    Elf64_Phdr *ph; /* [0] PT_LOAD code, [1] PT_LOAD data, [2] PT_NOTE */
};

/* A valid image: two PT_LOAD segments and a note carrying the PVH entry. */
static void build(struct image *im)
{
    memset(im, 0, sizeof(*im));
    im->eh = (Elf64_Ehdr *)im->bytes;
    im->ph = (Elf64_Phdr *)(im->bytes + sizeof(Elf64_Ehdr));
    memcpy(im->eh->e_ident, ELFMAG, SELFMAG);
    im->eh->e_ident[EI_CLASS] = ELFCLASS64;
    im->eh->e_ident[EI_DATA] = ELFDATA2LSB;
    im->eh->e_ident[EI_VERSION] = EV_CURRENT;
    im->eh->e_type = ET_EXEC;
    im->eh->e_machine = EM_X86_64;
    im->eh->e_version = EV_CURRENT;
    im->eh->e_entry = CODE_PADDR;
    im->eh->e_phoff = sizeof(Elf64_Ehdr);
    im->eh->e_ehsize = sizeof(Elf64_Ehdr);
    im->eh->e_phentsize = sizeof(Elf64_Phdr);
    im->eh->e_phnum = 3;

    im->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_flags = PF_R | PF_X,
                             .p_offset = CODE_OFF,
                             .p_vaddr = CODE_PADDR,
                             .p_paddr = CODE_PADDR,
                             .p_filesz = 0x100,
                             .p_memsz = 0x100,
                             .p_align = 0x1000};
    im->ph[1] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_flags = PF_R | PF_W,
                             .p_offset = 0x2000,
                             .p_vaddr = 0x200000,
                             .p_paddr = 0x200000,
                             .p_filesz = 0x10,
                             .p_memsz = 0x3000,
                             .p_align = 0x1000};
    memset(im->bytes + CODE_OFF, 0x90, 0x100);
    memset(im->bytes + 0x2000, 0xab, 0x10);

    /* Note: namesz 4 "Xen", descsz 4, type 18, entry = CODE_PADDR + 0x10. */
    uint32_t note[] = {4, 4, XEN_ELFNOTE_PHYS32_ENTRY, 0x006e6558, (uint32_t)CODE_PADDR + 0x10};
    memcpy(im->bytes + 0x3000, note, sizeof(note));
    im->ph[2] =
        (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = 0x3000, .p_filesz = sizeof(note), .p_align = 4};
    im->len = 0x3000 + sizeof(note);
}

static int as_fd(const void *buf, size_t len)
{
    int fd = memfd_create("elf", 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    return fd;
}

static struct guest_mem mem;
static char err[LOADER_ERR_LEN];

static void setup(void)
{
    cr_assert_eq(guest_mem_create(&mem, 4 * MIB), 0);
    /* Canary: a rejected image must leave RAM exactly as it was. */
    memset(mem.map, 0xcc, mem.size);
    err[0] = '\0';
}

static void teardown(void)
{
    guest_mem_destroy(&mem);
}

static int load(const struct image *im, struct kernel_image *ki)
{
    int fd = as_fd(im->bytes, im->len);
    int rc = elf_load(&mem, fd, ki, err, sizeof(err));
    close(fd);
    return rc;
}

static void assert_untouched(void)
{
    for (uint64_t off = 0; off < mem.size; off += 4096)
        cr_assert_eq(mem.map[off], 0xcc, "guest RAM changed at 0x%llx", (unsigned long long)off);
    cr_assert_eq(mem.map[CODE_PADDR + 0x10], 0xcc);
}

static void expect_reject(const struct image *im, const char *needle)
{
    struct kernel_image ki;
    cr_assert_neq(load(im, &ki), 0, "image accepted, expected: %s", needle);
    cr_assert(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
    assert_untouched();
}

TestSuite(elf, .init = setup, .fini = teardown);

Test(elf, loads_valid_pvh_image)
{
    struct image im;
    struct kernel_image ki;
    build(&im);
    cr_assert_eq(load(&im, &ki), 0, "%s", err);
    cr_assert_eq(ki.entry, CODE_PADDR + 0x10);
    cr_assert_eq(ki.load_start, CODE_PADDR);
    cr_assert_eq(ki.load_end, 0x203000);
    cr_assert_eq(mem.map[CODE_PADDR], 0x90);
    cr_assert_eq(mem.map[CODE_PADDR + 0xff], 0x90);
    cr_assert_eq(mem.map[CODE_PADDR + 0x100], 0xcc, "no copy past p_memsz");
    cr_assert_eq(mem.map[0x200000], 0xab);
    cr_assert_eq(mem.map[0x200010], 0, "bss zeroed");
    cr_assert_eq(mem.map[0x202fff], 0, "bss zeroed to the end");
    cr_assert_eq(mem.map[0x203000], 0xcc);
}

Test(elf, eight_byte_note_like_linux)
{
    struct image im;
    struct kernel_image ki;
    build(&im);
    uint32_t note[] = {4, 8, XEN_ELFNOTE_PHYS32_ENTRY, 0x006e6558, (uint32_t)CODE_PADDR + 4, 0};
    memcpy(im.bytes + 0x3000, note, sizeof(note));
    im.ph[2].p_filesz = sizeof(note);
    im.len = 0x3000 + sizeof(note);
    cr_assert_eq(load(&im, &ki), 0, "%s", err);
    cr_assert_eq(ki.entry, CODE_PADDR + 4);
}

Test(elf, note_after_other_notes_is_found)
{
    struct image im;
    struct kernel_image ki;
    build(&im);
    uint32_t notes[] = {4,
                        4,
                        1,
                        0x00554e47,
                        0xdeadbeef, /* GNU note first */
                        4,
                        4,
                        XEN_ELFNOTE_PHYS32_ENTRY,
                        0x006e6558,
                        (uint32_t)CODE_PADDR + 8};
    memcpy(im.bytes + 0x3000, notes, sizeof(notes));
    im.ph[2].p_filesz = sizeof(notes);
    im.len = 0x3000 + sizeof(notes);
    cr_assert_eq(load(&im, &ki), 0, "%s", err);
    cr_assert_eq(ki.entry, CODE_PADDR + 8);
}

Test(elf, rejects_non_elf)
{
    struct image im;
    build(&im);
    memcpy(im.bytes, "MZ\x90\x00", 4);
    expect_reject(&im, "not an ELF");
}

Test(elf, rejects_tiny_file)
{
    struct image im;
    build(&im);
    im.len = 10;
    expect_reject(&im, "too small");
}

Test(elf, rejects_elf32)
{
    struct image im;
    build(&im);
    im.eh->e_ident[EI_CLASS] = ELFCLASS32;
    expect_reject(&im, "64-bit");
}

Test(elf, rejects_big_endian_and_other_machines)
{
    struct image im;
    build(&im);
    im.eh->e_ident[EI_DATA] = ELFDATA2MSB;
    expect_reject(&im, "little-endian");
    build(&im);
    im.eh->e_machine = EM_AARCH64;
    expect_reject(&im, "not x86_64");
    build(&im);
    im.eh->e_type = ET_DYN;
    expect_reject(&im, "not an executable");
}

Test(elf, rejects_bad_program_header_table)
{
    struct image im;
    build(&im);
    im.eh->e_phentsize = 32;
    expect_reject(&im, "program header size");
    build(&im);
    im.eh->e_phnum = 0;
    expect_reject(&im, "program headers");
    build(&im);
    im.eh->e_phnum = 65535;
    expect_reject(&im, "program headers");
    build(&im);
    im.eh->e_phoff = UINT64_MAX - 8;
    expect_reject(&im, "beyond the end");
    build(&im);
    im.eh->e_phoff = im.len - 8;
    expect_reject(&im, "beyond the end");
}

Test(elf, rejects_truncated_segment)
{
    struct image im;
    build(&im);
    im.ph[1].p_offset = im.len - 4;
    expect_reject(&im, "beyond the end of the file");
    build(&im);
    im.ph[0].p_offset = UINT64_MAX - 0x10;
    expect_reject(&im, "beyond the end of the file");
}

Test(elf, rejects_filesz_above_memsz)
{
    struct image im;
    build(&im);
    im.ph[0].p_filesz = 0x200;
    expect_reject(&im, "more file bytes");
}

Test(elf, rejects_overlapping_segments)
{
    struct image im;
    build(&im);
    im.ph[1].p_paddr = CODE_PADDR + 0x80;
    expect_reject(&im, "overlap");
}

Test(elf, rejects_segment_in_boot_area)
{
    struct image im;
    build(&im);
    im.ph[1].p_paddr = 0x7000; /* would overwrite the PVH start info */
    expect_reject(&im, "below 1 MiB");
}

Test(elf, rejects_segment_beyond_ram)
{
    struct image im;
    build(&im);
    im.ph[1].p_paddr = 4 * MIB - 0x1000; /* memsz 0x3000 runs past 4 MiB */
    expect_reject(&im, "does not fit in guest RAM");
    build(&im);
    im.ph[1].p_paddr = FLINT_MMIO_GAP_START; /* the MMIO gap is never RAM */
    expect_reject(&im, "does not fit in guest RAM");
}

Test(elf, rejects_wrapping_segment)
{
    struct image im;
    build(&im);
    im.ph[1].p_paddr = UINT64_MAX - 0x100;
    expect_reject(&im, "wraps");
}

Test(elf, without_pvh_note_boots_linux64_at_e_entry)
{
    struct image im;
    struct kernel_image ki;
    build(&im);
    im.ph[2].p_type = PT_NULL;
    im.eh->e_entry = CODE_PADDR + 0x20;
    cr_assert_eq(load(&im, &ki), 0, "%s", err);
    cr_assert_eq(ki.protocol, BOOT_LINUX64);
    cr_assert_eq(ki.entry, CODE_PADDR + 0x20);
    cr_assert_not(ki.has_setup_header);
    cr_assert_eq(ki.cmdline_max, FLINT_CMDLINE_MAX - 1);
}

Test(elf, with_pvh_note_boots_pvh)
{
    struct image im;
    struct kernel_image ki;
    build(&im);
    cr_assert_eq(load(&im, &ki), 0, "%s", err);
    cr_assert_eq(ki.protocol, BOOT_PVH);
}

Test(elf, note_with_other_owner_is_not_pvh)
{
    struct image im;
    struct kernel_image ki;
    build(&im);
    memcpy(im.bytes + 0x300c, "Xem", 4);
    cr_assert_eq(load(&im, &ki), 0, "%s", err);
    cr_assert_eq(ki.protocol, BOOT_LINUX64);
    cr_assert_eq(ki.entry, CODE_PADDR);
}

Test(elf, rejects_e_entry_outside_segments_without_note)
{
    struct image im;
    build(&im);
    im.ph[2].p_type = PT_NULL;
    im.eh->e_entry = 0x300000;
    expect_reject(&im, "e_entry");
}

Test(elf, rejects_truncated_and_lying_notes)
{
    struct image im;
    build(&im);
    uint32_t huge_desc[] = {4, 0xfffffff0, XEN_ELFNOTE_PHYS32_ENTRY, 0x006e6558, 0};
    memcpy(im.bytes + 0x3000, huge_desc, sizeof(huge_desc));
    expect_reject(&im, "truncated ELF note");
    build(&im);
    im.ph[2].p_filesz = 0x100000; /* note segment past EOF */
    expect_reject(&im, "beyond the end");
    build(&im);
    uint32_t odd[] = {4, 2, XEN_ELFNOTE_PHYS32_ENTRY, 0x006e6558, 0};
    memcpy(im.bytes + 0x3000, odd, sizeof(odd));
    expect_reject(&im, "expected 4 or 8");
}

Test(elf, rejects_entry_above_4g_or_outside_segments)
{
    struct image im;
    build(&im);
    uint32_t high[] = {4, 8, XEN_ELFNOTE_PHYS32_ENTRY, 0x006e6558, 0x1000, 1};
    memcpy(im.bytes + 0x3000, high, sizeof(high));
    im.ph[2].p_filesz = sizeof(high);
    im.len = 0x3000 + sizeof(high);
    expect_reject(&im, "above 4 GiB");
    build(&im);
    uint32_t outside[] = {4, 4, XEN_ELFNOTE_PHYS32_ENTRY, 0x006e6558, 0x300000};
    memcpy(im.bytes + 0x3000, outside, sizeof(outside));
    expect_reject(&im, "outside every loaded segment");
}

Test(elf, rejects_image_without_loadable_segments)
{
    struct image im;
    build(&im);
    im.ph[0].p_type = PT_NULL;
    im.ph[1].p_type = PT_NULL;
    expect_reject(&im, "no loadable segments");
}

Test(elf, rejects_directory_and_empty_file)
{
    struct kernel_image ki;
    int fd = open("/", O_RDONLY);
    cr_assert_neq(elf_load(&mem, fd, &ki, err, sizeof(err)), 0);
    cr_assert(strstr(err, "not a regular file"));
    close(fd);
    fd = memfd_create("empty", 0);
    cr_assert_neq(elf_load(&mem, fd, &ki, err, sizeof(err)), 0);
    cr_assert(strstr(err, "too small"));
    close(fd);
    assert_untouched();
}

/* Random corruption of a valid image must never crash or write outside RAM;
 * when it is accepted, what it loaded stays inside the checked bounds. */
Test(elf, random_corruption_never_crashes)
{
    struct image im;
    uint32_t seed = 12345;
    for (int iter = 0; iter < 2000; iter++) {
        struct kernel_image ki;
        build(&im);
        for (int flips = 0; flips < 4; flips++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % (sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr) + 64);
            if (pos >= sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr))
                pos = 0x3000 + pos % 20;
            im.bytes[pos] = (uint8_t)(seed >> 16);
        }
        if (load(&im, &ki) == 0) {
            cr_assert_geq(ki.load_start, FLINT_HIMEM_START);
            cr_assert_leq(ki.load_end, mem.size);
            cr_assert(ki.entry >= ki.load_start && ki.entry < ki.load_end);
        }
    }
}
