/*
 * bzimage_unpack.c - decompressing a bzImage's payload (the compressed ELF
 * vmlinux) on the host, with the libraries Debian ships for each of the
 * compressors Linux can build it with (arch/x86/boot/compressed/Makefile).
 *
 * The payload is as hostile as any kernel image the user names: its output
 * is bounded before a byte is decompressed. Every format ends with the
 * uncompressed size as 4 little-endian bytes (gzip's ISIZE field, RFC 1952
 * section 2.3.1; the Makefile's size_append for the others), and the
 * output must be exactly that long: a stream that wants to write more is a
 * decompression bomb and is stopped at the promised size.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* xz and lzma: the kernel's streams use a dictionary of at most 32 MiB
 * (scripts/xz_wrap.sh); refusing more keeps a hostile header from making
 * the decoder allocate gigabytes. */
#define XZ_MEMLIMIT      (128ull * MIB)
#define ZSTD_WINDOW_LOG  27 /* 128 MiB; the kernel's zstd -22 uses 2^22 */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u * 1024 * 1024) /* lz4 -l: blocks of 8 MiB */
#define LZO_BLOCK_MAX    (256u * 1024)      /* lzop: blocks of at most 256 KiB */

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static const struct {
    enum bz_format fmt;
    const char *name;
    uint8_t magic[9];
    uint8_t len;
} bz_magics[] = {
    {BZ_GZIP, "gzip", {0x1f, 0x8b}, 2},
    {BZ_XZ, "xz", {0xfd, '7', 'z', 'X', 'Z', 0x00}, 6},
    {BZ_LZMA, "lzma", {0x5d, 0x00, 0x00}, 3},
    {BZ_LZO, "lzo", {0x89, 'L', 'Z', 'O', 0x00, '\r', '\n', 0x1a, '\n'}, 9},
    {BZ_LZ4, "lz4", {0x02, 0x21, 0x4c, 0x18}, 4},
    {BZ_ZSTD, "zstd", {0x28, 0xb5, 0x2f, 0xfd}, 4},
    {BZ_BZIP2, "bzip2", {'B', 'Z', 'h'}, 3},
};

enum bz_format bzimage_payload_format(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(bz_magics); i++)
        if (len >= bz_magics[i].len && !memcmp(p, bz_magics[i].magic, bz_magics[i].len))
            return bz_magics[i].fmt;
    return BZ_UNKNOWN;
}

const char *bzimage_format_name(enum bz_format fmt)
{
    for (size_t i = 0; i < ARRAY_SIZE(bz_magics); i++)
        if (bz_magics[i].fmt == fmt)
            return bz_magics[i].name;
    return "unknown";
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Each decoder fills out[0 .. cap) and returns the bytes written, or -1
 * with a reason in err. Writing past cap is never possible: each library
 * is given cap as its output size. */

static int unpack_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *done,
                       char *err, size_t errlen)
{
    z_stream z = {0};
    int zrc;

    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return loader_fail(err, errlen, -ENOMEM, "gzip: cannot set up the decoder");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    zrc = inflate(&z, Z_FINISH);
    *done = z.total_out;
    inflateEnd(&z);
    if (zrc == Z_STREAM_END)
        return 0;
    if (zrc == Z_BUF_ERROR && z.avail_out == 0)
        return loader_fail(err, errlen, -EFBIG, "gzip: decompresses to more than %zu bytes", cap);
    return loader_fail(err, errlen, -ENOEXEC, "gzip: %s",
                       zrc == Z_BUF_ERROR ? "truncated stream" : (z.msg ? z.msg : "corrupt"));
}

static int unpack_lzma_lib(enum bz_format fmt, const uint8_t *in, size_t len, uint8_t *out,
                           size_t cap, size_t *done, char *err, size_t errlen)
{
    lzma_stream s = LZMA_STREAM_INIT;
    const char *name = bzimage_format_name(fmt);
    lzma_ret r = fmt == BZ_XZ ? lzma_stream_decoder(&s, XZ_MEMLIMIT, 0)
                              : lzma_alone_decoder(&s, XZ_MEMLIMIT);

    if (r != LZMA_OK)
        return loader_fail(err, errlen, -ENOMEM, "%s: cannot set up the decoder", name);
    s.next_in = in;
    s.avail_in = len;
    s.next_out = out;
    s.avail_out = cap;
    r = lzma_code(&s, LZMA_FINISH);
    *done = s.total_out;
    lzma_end(&s);
    if (r == LZMA_STREAM_END)
        return 0;
    /* A full buffer stops the decoder with LZMA_OK (or LZMA_BUF_ERROR once
     * it can make no progress): the stream wants more than it promised. */
    if ((r == LZMA_OK || r == LZMA_BUF_ERROR) && s.avail_out == 0)
        return loader_fail(err, errlen, -EFBIG, "%s: decompresses to more than %zu bytes", name,
                           cap);
    if (r == LZMA_MEMLIMIT_ERROR)
        return loader_fail(err, errlen, -ENOEXEC, "%s: the stream needs more than %llu MiB", name,
                           XZ_MEMLIMIT / MIB);
    return loader_fail(err, errlen, -ENOEXEC, "%s: %s", name,
                       r == LZMA_BUF_ERROR || r == LZMA_OK ? "truncated stream" : "corrupt stream");
}

static int unpack_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *done,
                       char *err, size_t errlen)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in, len, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    size_t r;

    if (!d || ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG))) {
        ZSTD_freeDCtx(d);
        return loader_fail(err, errlen, -ENOMEM, "zstd: cannot set up the decoder");
    }
    do {
        r = ZSTD_decompressStream(d, &ob, &ib);
    } while (!ZSTD_isError(r) && r != 0 && ob.pos < ob.size && ib.pos < ib.size);
    ZSTD_freeDCtx(d);
    *done = ob.pos;
    if (ZSTD_isError(r))
        return loader_fail(err, errlen, -ENOEXEC, "zstd: %s", ZSTD_getErrorName(r));
    if (r == 0)
        return 0;
    if (ob.pos == ob.size)
        return loader_fail(err, errlen, -EFBIG, "zstd: decompresses to more than %zu bytes", cap);
    return loader_fail(err, errlen, -ENOEXEC, "zstd: truncated stream");
}

/* The legacy LZ4 format of `lz4 -l`: the magic, then blocks each preceded
 * by its compressed length (4 bytes, little-endian), each decompressing to
 * at most 8 MiB. */
static int unpack_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *done,
                      char *err, size_t errlen)
{
    size_t pos = 4;

    *done = 0;
    while (pos < len) {
        uint32_t clen;
        int n;

        if (len - pos < 4)
            return loader_fail(err, errlen, -ENOEXEC, "lz4: truncated block header");
        clen = le32(in + pos);
        pos += 4;
        if (clen == LZ4_LEGACY_MAGIC) /* concatenated archives */
            continue;
        if (clen > len - pos || clen > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
            return loader_fail(err, errlen, -ENOEXEC, "lz4: block of %u bytes overruns the stream",
                               clen);
        if (*done == cap)
            return loader_fail(err, errlen, -EFBIG, "lz4: decompresses to more than %zu bytes",
                               cap);
        n = LZ4_decompress_safe((const char *)in + pos, (char *)out + *done, (int)clen,
                                (int)MIN(cap - *done, (size_t)LZ4_LEGACY_BLOCK));
        if (n < 0)
            return loader_fail(err, errlen, -ENOEXEC,
                               "lz4: corrupt block at offset %zu (or more than %zu bytes)", pos,
                               cap);
        *done += (size_t)n;
        pos += clen;
    }
    return 0;
}

/* Past the lzop file header (lzop's format, as Linux's lib/decompress_unlzo.c
 * reads it); returns the header's flags, or -1 if it is truncated. */
static int64_t lzo_skip_header(const uint8_t *in, size_t len, size_t *pos)
{
    size_t p = 9; /* the magic */
    uint16_t version;
    uint32_t flags;

    if (len < p + 2 + 2)
        return -1;
    version = (uint16_t)(in[p] << 8 | in[p + 1]);
    p += 4;                                 /* version, library version */
    p += version >= 0x0940 ? 2 + 1 + 1 : 1; /* version needed, method, level */
    if (len < p + 4)
        return -1;
    flags = be32(in + p);
    p += (flags & 0x800) ? 8 : 4;                /* flags (+ filter) */
    p += 4 + (version >= 0x0940 ? 8 : 4);        /* mode, mtime */
    if (len < p + 1 || len - p - 1 < in[p] + 4u) /* name length, name, checksum */
        return -1;
    p += 1u + in[p] + 4u;
    *pos = p;
    return flags;
}

static int unpack_lzo(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *done,
                      char *err, size_t errlen)
{
    const uint32_t adler_d = 0x1, adler_c = 0x2, crc_d = 0x100, crc_c = 0x200;
    int64_t flags;
    size_t pos;

    *done = 0;
    if (lzo_init() != LZO_E_OK || (flags = lzo_skip_header(in, len, &pos)) < 0)
        return loader_fail(err, errlen, -ENOEXEC, "lzo: truncated header");
    for (;;) {
        uint32_t dlen, clen, dsum = 0;
        lzo_uint n;

        if (len - pos < 4)
            return loader_fail(err, errlen, -ENOEXEC, "lzo: truncated stream");
        dlen = be32(in + pos);
        pos += 4;
        if (dlen == 0)
            return 0;
        if (dlen > LZO_BLOCK_MAX || len - pos < 4)
            return loader_fail(err, errlen, -ENOEXEC, "lzo: bad block header");
        clen = be32(in + pos);
        pos += 4;
        if (flags & (adler_d | crc_d)) {
            if (len - pos < 4)
                return loader_fail(err, errlen, -ENOEXEC, "lzo: truncated stream");
            dsum = be32(in + pos);
            pos += 4;
        }
        if (clen < dlen && (flags & (adler_c | crc_c)))
            pos += 4;
        if (clen > dlen || pos > len || clen > len - pos)
            return loader_fail(err, errlen, -ENOEXEC, "lzo: block overruns the stream");
        if (dlen > cap - *done)
            return loader_fail(err, errlen, -EFBIG, "lzo: decompresses to more than %zu bytes",
                               cap);
        n = dlen;
        if (clen == dlen)
            memcpy(out + *done, in + pos, dlen); /* stored: did not compress */
        else if (lzo1x_decompress_safe(in + pos, clen, out + *done, &n, NULL) != LZO_E_OK ||
                 n != dlen)
            return loader_fail(err, errlen, -ENOEXEC, "lzo: corrupt block at offset %zu", pos);
        if ((flags & adler_d) && adler32(1, out + *done, dlen) != dsum)
            return loader_fail(err, errlen, -ENOEXEC, "lzo: checksum mismatch at offset %zu", pos);
        *done += dlen;
        pos += clen;
    }
}

int bzimage_unpack(const uint8_t *payload, size_t len, size_t out_max, uint8_t **out,
                   size_t *out_len, char *err, size_t errlen)
{
    enum bz_format fmt = bzimage_payload_format(payload, len);
    const char *name = bzimage_format_name(fmt);
    size_t want, done = 0, in_len;
    uint8_t *buf;
    int rc;

    if (fmt == BZ_UNKNOWN)
        return loader_fail(err, errlen, -ENOEXEC,
                           "payload is in no known format (magic %02x %02x %02x %02x)",
                           len > 0 ? payload[0] : 0, len > 1 ? payload[1] : 0,
                           len > 2 ? payload[2] : 0, len > 3 ? payload[3] : 0);
    if (fmt == BZ_BZIP2)
        return loader_fail(err, errlen, -EOPNOTSUPP, "bzip2 payloads are not unpacked");
    if (len < 16)
        return loader_fail(err, errlen, -ENOEXEC, "%s payload of %zu bytes is truncated", name,
                           len);
    want = le32(payload + len - 4);
    if (want < sizeof(Elf64_Ehdr) || want > out_max)
        return loader_fail(err, errlen, -EFBIG,
                           "%s payload promises %zu bytes of kernel (at most %zu allowed)", name,
                           want, out_max);
    /* gzip's size is its own trailer; the others carry it appended. */
    in_len = fmt == BZ_GZIP ? len : len - 4;
    buf = malloc(want);
    if (!buf)
        return loader_fail(err, errlen, -ENOMEM, "cannot allocate %zu bytes to unpack into", want);
    switch (fmt) {
    case BZ_GZIP:
        rc = unpack_gzip(payload, in_len, buf, want, &done, err, errlen);
        break;
    case BZ_XZ:
    case BZ_LZMA:
        rc = unpack_lzma_lib(fmt, payload, in_len, buf, want, &done, err, errlen);
        break;
    case BZ_ZSTD:
        rc = unpack_zstd(payload, in_len, buf, want, &done, err, errlen);
        break;
    case BZ_LZ4:
        rc = unpack_lz4(payload, in_len, buf, want, &done, err, errlen);
        break;
    default:
        rc = unpack_lzo(payload, in_len, buf, want, &done, err, errlen);
        break;
    }
    if (!rc && done != want)
        rc = loader_fail(err, errlen, -ENOEXEC,
                         "%s payload decompresses to %zu bytes, its trailer promises %zu", name,
                         done, want);
    if (!rc && memcmp(buf, ELFMAG, SELFMAG) != 0)
        rc = loader_fail(err, errlen, -ENOEXEC, "%s payload does not decompress to an ELF image",
                         name);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = want;
    return 0;
}
