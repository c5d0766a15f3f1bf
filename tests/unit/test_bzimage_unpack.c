/* Unit tests: a bzImage's payload unpacked on the host (every compressor,
 * hostile streams), the ELF inside loaded with the bzImage's setup header,
 * the fallback to the bzImage as it is, and the cache of unpacked images. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "loader.h"
#include "util.h"
#include "x86_boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <flint-abi.h>
#include <ftw.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define SETUP_BYTES (5 * 512)
#define ELF_PADDR   0x1000000u
#define ELF_CODE    0x3000u /* bytes of "kernel" in the test ELF */
#define INIT_SIZE   0x400000u

static struct guest_mem mem;
static char err[LOADER_ERR_LEN], note[KERNEL_NOTE_LEN];

struct buf {
    uint8_t *p;
    size_t len;
};

/* An ELF vmlinux as elf_load wants one: one PT_LOAD at 16 MiB, entry in
 * it, no PVH note (so the Linux 64-bit entry). */
static struct buf test_elf(void)
{
    size_t off = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
    struct buf b = {calloc(1, off + ELF_CODE), off + ELF_CODE};
    Elf64_Ehdr *eh = (Elf64_Ehdr *)b.p;
    Elf64_Phdr *ph = (Elf64_Phdr *)(b.p + sizeof(*eh));

    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = ELF_PADDR + 0x200;
    eh->e_phoff = sizeof(*eh);
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(*ph);
    eh->e_phnum = 1;
    ph->p_type = PT_LOAD;
    ph->p_offset = off;
    ph->p_paddr = ph->p_vaddr = ELF_PADDR;
    ph->p_filesz = ELF_CODE;
    ph->p_memsz = 0x10000;
    for (size_t i = 0; i < ELF_CODE; i++)
        b.p[off + i] = (uint8_t)(i * 7 + i / 13);
    return b;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* The kernel's size_append: the uncompressed size, 4 bytes little-endian. */
static void append_size(struct buf *c, size_t size)
{
    put_le32(c->p + c->len, (uint32_t)size);
    c->len += 4;
}

static struct buf compress_gzip(const struct buf *in)
{
    struct buf c = {malloc(in->len * 2 + 256), 0};
    z_stream z = {0};

    cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = in->p;
    z.avail_in = (uInt)in->len;
    z.next_out = c.p;
    z.avail_out = (uInt)(in->len * 2 + 256);
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    c.len = z.total_out;
    deflateEnd(&z);
    return c;
}

static struct buf compress_xz(const struct buf *in)
{
    struct buf c = {malloc(in->len * 2 + 256), 0};
    cr_assert_eq(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in->p, in->len, c.p, &c.len,
                                         in->len * 2 + 252),
                 LZMA_OK);
    append_size(&c, in->len);
    return c;
}

static struct buf compress_lzma(const struct buf *in)
{
    struct buf c = {malloc(in->len * 2 + 256), 0};
    lzma_stream s = LZMA_STREAM_INIT;
    lzma_options_lzma opt;

    cr_assert_not(lzma_lzma_preset(&opt, 6));
    cr_assert_eq(lzma_alone_encoder(&s, &opt), LZMA_OK);
    s.next_in = in->p;
    s.avail_in = in->len;
    s.next_out = c.p;
    s.avail_out = in->len * 2 + 252;
    cr_assert_eq(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
    c.len = s.total_out;
    lzma_end(&s);
    append_size(&c, in->len);
    return c;
}

static struct buf compress_zstd(const struct buf *in)
{
    size_t cap = ZSTD_compressBound(in->len) + 4;
    struct buf c = {malloc(cap), 0};
    c.len = ZSTD_compress(c.p, cap - 4, in->p, in->len, 19);
    cr_assert_not(ZSTD_isError(c.len));
    append_size(&c, in->len);
    return c;
}

/* lz4 -l: the legacy format's magic, then length-prefixed blocks. */
static struct buf compress_lz4(const struct buf *in)
{
    size_t cap = (size_t)LZ4_compressBound((int)in->len) + 16;
    struct buf c = {malloc(cap), 0};
    int n;

    put_le32(c.p, 0x184c2102u);
    n = LZ4_compress_default((const char *)in->p, (char *)c.p + 8, (int)in->len, (int)cap - 16);
    cr_assert_gt(n, 0);
    put_le32(c.p + 4, (uint32_t)n);
    c.len = 8 + (size_t)n;
    append_size(&c, in->len);
    return c;
}

/* lzop's file format: header, then blocks of {size, compressed size,
 * Adler-32 of the data, data}, then a zero. */
static struct buf compress_lzo(const struct buf *in)
{
    static const uint8_t magic[9] = {0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n'};
    struct buf c = {calloc(1, in->len * 2 + 512), 0};
    uint8_t *wrk = malloc(LZO1X_1_MEM_COMPRESS), *p = c.p;
    lzo_uint clen;

    cr_assert_eq(lzo_init(), LZO_E_OK);
    memcpy(p, magic, 9);
    p += 9;
    *p++ = 0x10, *p++ = 0x30; /* version 1.030 */
    *p++ = 0x20, *p++ = 0xa0; /* library version */
    *p++ = 0x09, *p++ = 0x40; /* version needed */
    *p++ = 1, *p++ = 5;       /* method LZO1X-1, level */
    put_be32(p, 0x1), p += 4; /* flags: Adler-32 of the data */
    p += 4 + 8;               /* mode, mtime */
    *p++ = 0;                 /* no name */
    p += 4;                   /* header checksum */
    put_be32(p, (uint32_t)in->len);
    cr_assert_eq(lzo1x_1_compress(in->p, in->len, p + 12, &clen, wrk), LZO_E_OK);
    put_be32(p + 4, (uint32_t)clen);
    put_be32(p + 8, (uint32_t)adler32(1, in->p, (uInt)in->len));
    p += 12 + clen;
    p += 4; /* end marker */
    c.len = (size_t)(p - c.p);
    append_size(&c, in->len);
    free(wrk);
    return c;
}

typedef struct buf (*compressor)(const struct buf *);
static const struct {
    const char *name;
    compressor fn;
} formats[] = {
    {"gzip", compress_gzip}, {"xz", compress_xz},   {"lzma", compress_lzma},
    {"zstd", compress_zstd}, {"lz4", compress_lz4}, {"lzo", compress_lzo},
};

/* A bzImage (as test_linux_boot.c builds one) whose protected-mode part is
 * 0x400 bytes of code followed by `payload`. */
static struct buf make_bz(const struct buf *payload)
{
    size_t pm = ALIGN_UP(0x400 + payload->len, 16);
    struct buf b = {calloc(1, SETUP_BYTES + pm), SETUP_BYTES + pm};
    struct linux_setup_header *h = (void *)(b.p + LINUX_SETUP_HEADER_OFFSET);

    h->setup_sects = 4;
    h->syssize = (uint32_t)(pm / 16);
    h->boot_flag = LINUX_BOOT_FLAG;
    h->jump = 0xeb | (0x6a << 8);
    h->header = LINUX_HDRS_MAGIC;
    h->version = 0x020f;
    h->loadflags = LINUX_LOADED_HIGH;
    h->initrd_addr_max = 0x7fffffff;
    h->kernel_alignment = 0x200000;
    h->relocatable_kernel = 1;
    h->xloadflags = LINUX_XLF_KERNEL_64 | LINUX_XLF_CAN_BE_LOADED_ABOVE_4G;
    h->cmdline_size = 1000;
    h->pref_address = ELF_PADDR;
    h->init_size = INIT_SIZE;
    h->payload_offset = 0x400;
    h->payload_length = (uint32_t)payload->len;
    memset(b.p + SETUP_BYTES, 0x90, 0x400);
    memcpy(b.p + SETUP_BYTES + 0x400, payload->p, payload->len);
    return b;
}

static int as_fd(const struct buf *b)
{
    int fd = memfd_create("kernel", 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, b->p, b->len), (ssize_t)b->len);
    return fd;
}

static int load(const struct buf *bz, const char *cache_dir, struct kernel_image *ki)
{
    struct kernel_load_opts o = {
        .unpack_bzimage = true, .cache_dir = cache_dir, .cache_max = KERNEL_CACHE_MAX_SIZE};
    int fd = as_fd(bz), rc;

    err[0] = note[0] = '\0';
    rc = kernel_load_with(&mem, fd, &o, ki, note, sizeof(note), err, sizeof(err));
    close(fd);
    return rc;
}

static void setup(void)
{
    cr_assert_eq(guest_mem_create(&mem, 64 * MIB), 0);
    memset(mem.map, 0xcc, mem.size);
}

static void teardown(void)
{
    guest_mem_destroy(&mem);
}

static void assert_untouched(void)
{
    for (uint64_t off = 0; off < mem.size; off += 4096)
        cr_assert_eq(mem.map[off], 0xcc, "guest RAM changed at 0x%llx", (unsigned long long)off);
}

/* The payload refused as a bad kernel: -errno, a message, RAM untouched. */
static void expect_refused(const struct buf *payload, const char *needle)
{
    struct buf bz = make_bz(payload);
    struct kernel_image ki;
    int rc = load(&bz, NULL, &ki);

    cr_assert_lt(rc, 0, "accepted (%s); note: %s", needle, note);
    cr_assert(strstr(err, needle), "message '%s' lacks '%s'", err, needle);
    assert_untouched();
    free(bz.p);
}

static void expect_loaded_elf(const struct kernel_image *ki, const struct buf *elf)
{
    cr_assert(ki->unpacked);
    cr_assert_eq(ki->protocol, BOOT_LINUX64);
    cr_assert_eq(ki->entry, ELF_PADDR + 0x200);
    cr_assert(ki->has_setup_header, "the zero page must get the bzImage's header");
    cr_assert_eq(ki->hdr.cmdline_size, 1000);
    cr_assert_eq(ki->cmdline_max, 1000);
    /* The initrd goes where it would for the bzImage: above init_size. */
    cr_assert_eq(ki->load_end, ELF_PADDR + INIT_SIZE);
    cr_assert_arr_eq(guest_mem_slice(&mem, ELF_PADDR, ELF_CODE),
                     elf->p + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), ELF_CODE);
}

TestSuite(bzimage_unpack, .init = setup, .fini = teardown);

Test(bzimage_unpack, every_format_boots_the_elf_inside)
{
    struct buf elf = test_elf();

    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        struct buf c = formats[i].fn(&elf), bz = make_bz(&c);
        struct kernel_image ki;
        cr_assert_eq(load(&bz, NULL, &ki), 0, "%s: %s", formats[i].name, err);
        cr_assert(strstr(note, formats[i].name), "%s: note '%s'", formats[i].name, note);
        cr_assert(strstr(note, "no cache"), "%s", note);
        expect_loaded_elf(&ki, &elf);
        free(c.p);
        free(bz.p);
    }
    free(elf.p);
}

Test(bzimage_unpack, truncated_streams_are_refused)
{
    struct buf elf = test_elf();

    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        struct buf c = formats[i].fn(&elf);
        /* Cut the middle out but keep the trailing size. */
        size_t cut = c.len / 2;
        memmove(c.p + cut, c.p + c.len - 4, 4);
        c.len = cut + 4;
        expect_refused(&c, formats[i].name);
        free(c.p);
    }
    free(elf.p);
}

Test(bzimage_unpack, more_output_than_promised_is_a_bomb)
{
    struct buf elf = test_elf();

    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        struct buf c = formats[i].fn(&elf);
        put_le32(c.p + c.len - 4, (uint32_t)(elf.len / 2)); /* lie: half the size */
        if (i == 0) { /* gzip's trailer is inside its stream: the CRC check catches it too */
            expect_refused(&c, "gzip");
        } else {
            expect_refused(&c, "more than");
        }
        free(c.p);
    }
    free(elf.p);
}

Test(bzimage_unpack, sizes_beyond_the_bound_are_refused_before_decompressing)
{
    struct buf elf = test_elf();
    struct buf c = compress_zstd(&elf);

    put_le32(c.p + c.len - 4, INIT_SIZE + 1); /* more than init_size */
    expect_refused(&c, "promises");
    put_le32(c.p + c.len - 4, 0xffffffffu);
    expect_refused(&c, "promises");
    put_le32(c.p + c.len - 4, 3); /* less than an ELF header */
    expect_refused(&c, "promises");
    free(c.p);
    free(elf.p);
}

Test(bzimage_unpack, output_that_is_not_elf_is_refused)
{
    struct buf junk = {malloc(4096), 4096};
    memset(junk.p, 'A', junk.len);

    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        struct buf c = formats[i].fn(&junk);
        expect_refused(&c, "not decompress to an ELF");
        free(c.p);
    }
    free(junk.p);
}

Test(bzimage_unpack, unknown_magic_is_refused_and_bzip2_falls_back)
{
    uint8_t bad[64] = {0xde, 0xad, 0xbe, 0xef}, bz2[64] = {'B', 'Z', 'h', '9'};
    struct buf p = {bad, sizeof(bad)}, q = {bz2, sizeof(bz2)};
    struct kernel_image ki;

    expect_refused(&p, "no known format");
    struct buf bz = make_bz(&q);
    cr_assert_eq(load(&bz, NULL, &ki), 0, "%s", err);
    cr_assert_not(ki.unpacked);
    cr_assert_eq(ki.entry, FLINT_HIMEM_START + LINUX_ENTRY64_OFFSET, "the bzImage as it is");
    cr_assert(strstr(note, "as it is") && strstr(note, "bzip2"), "note: %s", note);
    free(bz.p);
}

Test(bzimage_unpack, payload_outside_the_kernel_is_refused)
{
    struct buf elf = test_elf(), c = compress_gzip(&elf), bz = make_bz(&c);
    struct linux_setup_header *h = (void *)(bz.p + LINUX_SETUP_HEADER_OFFSET);
    struct kernel_image ki;

    h->payload_length = 0xfffffff0u;
    cr_assert_lt(load(&bz, NULL, &ki), 0);
    cr_assert(strstr(err, "payload"), "%s", err);
    h->payload_length = 0;
    cr_assert_lt(load(&bz, NULL, &ki), 0);
    assert_untouched();
    free(bz.p);
    free(c.p);
    free(elf.p);
}

Test(bzimage_unpack, an_unloadable_elf_falls_back_to_the_bzimage)
{
    struct buf elf = test_elf();
    Elf64_Phdr *ph = (Elf64_Phdr *)(elf.p + sizeof(Elf64_Ehdr));
    ph->p_paddr = 0x1000; /* in the boot area: elf_load refuses it */
    struct buf c = compress_xz(&elf), bz = make_bz(&c);
    struct kernel_image ki;

    cr_assert_eq(load(&bz, NULL, &ki), 0, "%s", err);
    cr_assert_not(ki.unpacked);
    cr_assert(strstr(note, "cannot be loaded"), "note: %s", note);
    free(bz.p);
    free(c.p);
    free(elf.p);
}

Test(bzimage_unpack, without_the_option_the_bzimage_boots_as_it_is)
{
    struct buf elf = test_elf(), c = compress_gzip(&elf), bz = make_bz(&c);
    struct kernel_image ki;
    int fd = as_fd(&bz);

    cr_assert_eq(kernel_load(&mem, fd, &ki, err, sizeof(err)), 0, "%s", err);
    cr_assert_not(ki.unpacked);
    cr_assert_eq(ki.entry, FLINT_HIMEM_START + LINUX_ENTRY64_OFFSET);
    close(fd);
    free(bz.p);
    free(c.p);
    free(elf.p);
}

/* ---- the cache ---- */

static char cache[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cache_setup(void)
{
    setup();
    snprintf(cache, sizeof(cache), "/tmp/flint-unit-cache-XXXXXX");
    cr_assert_not_null(mkdtemp(cache));
}

static void cache_teardown(void)
{
    nftw(cache, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    teardown();
}

static char *entry_of(const struct buf *bz)
{
    char key[KERNEL_CACHE_KEY_LEN], *path;
    kernel_cache_key(bz->p, bz->len, key);
    cr_assert_geq(asprintf(&path, "%s/%s.elf", cache, key), 0);
    return path;
}

TestSuite(kernel_cache, .init = cache_setup, .fini = cache_teardown);

Test(kernel_cache, miss_then_hit)
{
    struct buf elf = test_elf(), c = compress_lzma(&elf), bz = make_bz(&c);
    struct kernel_image ki;
    char *path = entry_of(&bz);
    struct stat st;

    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert(strstr(note, "cache miss, stored"), "%s", note);
    cr_assert_eq(stat(path, &st), 0, "no entry at %s", path);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq((size_t)st.st_size, elf.len);
    memset(mem.map, 0xcc, mem.size);
    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert(strstr(note, "cache hit"), "%s", note);
    expect_loaded_elf(&ki, &elf);
    free(path);
    free(bz.p);
    free(c.p);
    free(elf.p);
}

Test(kernel_cache, corrupt_entry_is_dropped_and_rebuilt)
{
    struct buf elf = test_elf(), c = compress_gzip(&elf), bz = make_bz(&c);
    struct kernel_image ki;
    char *path = entry_of(&bz);
    struct stat st;
    FILE *f;

    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    f = fopen(path, "r+");
    cr_assert_not_null(f);
    fputs("garbage", f); /* breaks the ELF magic */
    fclose(f);
    memset(mem.map, 0xcc, mem.size);
    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert(strstr(note, "corrupt cache entry"), "%s", note);
    expect_loaded_elf(&ki, &elf);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((size_t)st.st_size, elf.len);
    /* Truncated: a segment beyond the end of the file. */
    cr_assert_eq(truncate(path, 100), 0);
    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert(strstr(note, "corrupt cache entry"), "%s", note);
    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert(strstr(note, "cache hit"), "%s", note);
    free(path);
    free(bz.p);
    free(c.p);
    free(elf.p);
}

Test(kernel_cache, entry_writable_by_others_is_not_trusted)
{
    struct buf elf = test_elf(), c = compress_zstd(&elf), bz = make_bz(&c);
    struct kernel_image ki;
    char *path = entry_of(&bz);

    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert_eq(chmod(path, 0666), 0);
    cr_assert_eq(load(&bz, cache, &ki), 0, "%s", err);
    cr_assert_not(strstr(note, "cache hit"), "%s", note);
    free(path);
    free(bz.p);
    free(c.p);
    free(elf.p);
}

Test(kernel_cache, least_recently_used_entries_go_beyond_the_cap)
{
    uint8_t data[1000] = {0x7f, 'E', 'L', 'F'};
    char path[128];
    int fd;

    fd = kernel_cache_store(cache, "aaaa", data, sizeof(data), 2500);
    cr_assert_geq(fd, 0);
    close(fd);
    sleep(1); /* distinct mtimes even on coarse file systems */
    fd = kernel_cache_store(cache, "bbbb", data, sizeof(data), 2500);
    cr_assert_geq(fd, 0);
    close(fd);
    fd = kernel_cache_store(cache, "cccc", data, sizeof(data), 2500);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/aaaa.elf", cache);
    cr_assert_neq(access(path, F_OK), 0, "the oldest entry should be gone");
    snprintf(path, sizeof(path), "%s/cccc.elf", cache);
    cr_assert_eq(access(path, F_OK), 0);
    cr_assert_eq(kernel_cache_store(cache, "dddd", data, sizeof(data), 999), -EFBIG);
}

Test(kernel_cache, directory_from_the_environment_is_made_private)
{
    char dir[PATH_MAX], want[128];
    struct stat st;

    snprintf(want, sizeof(want), "%s/sub", cache);
    setenv("FLINT_KERNEL_CACHE", want, 1);
    cr_assert_eq(kernel_cache_dir(dir, sizeof(dir)), 0);
    cr_assert_str_eq(dir, want);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(chmod(dir, 0777), 0);
    cr_assert_eq(kernel_cache_dir(dir, sizeof(dir)), -EPERM, "a directory open to others");
    unsetenv("FLINT_KERNEL_CACHE");
}

/* The unpacked ELF here boots through the Linux 64-bit entry; with a PVH
 * note it would get hvm_start_info. Either way the bzImage's cmdline_size
 * binds, as it does for the bzImage. */
Test(bzimage_unpack, the_bzimage_cmdline_limit_still_binds)
{
    struct buf elf = test_elf(), c = compress_gzip(&elf), bz = make_bz(&c);
    struct kernel_image ki;
    char line[1200];
    struct boot_args args = {.cmdline = line, .ncpus = 1};

    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    cr_assert_eq(load(&bz, NULL, &ki), 0, "%s", err);
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), -E2BIG);
    ki.protocol = BOOT_PVH;
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), -E2BIG);
    cr_assert(strstr(err, "cmdline_size"), "%s", err);
    line[900] = '\0';
    cr_assert_eq(boot_write_info(&mem, &ki, &args, err, sizeof(err)), 0, "%s", err);
    free(bz.p);
    free(c.p);
    free(elf.p);
}

/* Without a directory given, the default one ($FLINT_KERNEL_CACHE here) is
 * looked up, and only for a bzImage. */
Test(kernel_cache, default_directory_is_used_for_a_bzimage_only)
{
    struct buf elf = test_elf(), c = compress_lz4(&elf), bz = make_bz(&c);
    struct kernel_load_opts o = {
        .unpack_bzimage = true, .cache_default = true, .cache_max = KERNEL_CACHE_MAX_SIZE};
    struct kernel_image ki;
    char sub[128];
    int fd;

    snprintf(sub, sizeof(sub), "%s/default", cache);
    setenv("FLINT_KERNEL_CACHE", sub, 1);
    fd = as_fd(&elf);
    cr_assert_eq(kernel_load_with(&mem, fd, &o, &ki, note, sizeof(note), err, sizeof(err)), 0, "%s",
                 err);
    close(fd);
    cr_assert_neq(access(sub, F_OK), 0, "an ELF kernel must not create the cache");
    fd = as_fd(&bz);
    cr_assert_eq(kernel_load_with(&mem, fd, &o, &ki, note, sizeof(note), err, sizeof(err)), 0, "%s",
                 err);
    close(fd);
    cr_assert(strstr(note, "cache miss, stored"), "%s", note);
    cr_assert_eq(access(sub, F_OK), 0);
    unsetenv("FLINT_KERNEL_CACHE");
    free(bz.p);
    free(c.p);
    free(elf.p);
}

Test(kernel_cache, a_crashed_writers_temporary_file_is_removed)
{
    uint8_t data[100] = {0x7f, 'E', 'L', 'F'};
    char stale[128], fresh[128];
    struct timespec old[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};
    int fd;

    snprintf(stale, sizeof(stale), "%s/.unpack-abcdef", cache);
    snprintf(fresh, sizeof(fresh), "%s/.unpack-123456", cache);
    close(open(stale, O_CREAT | O_WRONLY, 0600));
    close(open(fresh, O_CREAT | O_WRONLY, 0600));
    cr_assert_eq(utimensat(AT_FDCWD, stale, old, 0), 0);
    fd = kernel_cache_store(cache, "eeee", data, sizeof(data), KERNEL_CACHE_MAX_SIZE);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_neq(access(stale, F_OK), 0, "the stale temporary file should be gone");
    cr_assert_eq(access(fresh, F_OK), 0, "a fresh one may belong to a running flint");
}
