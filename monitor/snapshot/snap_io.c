/*
 * snap_io.c - the snapshot state stream: bounded reads, sections, CRC-64.
 */
#include "snap_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void snap_writer_init(struct snap_writer *w)
{
    memset(w, 0, sizeof(*w));
}

void snap_writer_free(struct snap_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

static uint8_t *snap_grow(struct snap_writer *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 4096;
        while (n > cap - w->len) {
            if (cap > SIZE_MAX / 2) {
                w->err = -ENOMEM;
                return NULL;
            }
            cap *= 2;
        }
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            w->err = -ENOMEM;
            return NULL;
        }
        w->buf = nb;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

static void put_le(struct snap_writer *w, uint64_t v, unsigned n)
{
    uint8_t *p = snap_grow(w, n);
    if (!p)
        return;
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void snap_put_u8(struct snap_writer *w, uint8_t v)
{
    put_le(w, v, 1);
}

void snap_put_u16(struct snap_writer *w, uint16_t v)
{
    put_le(w, v, 2);
}

void snap_put_u32(struct snap_writer *w, uint32_t v)
{
    put_le(w, v, 4);
}

void snap_put_u64(struct snap_writer *w, uint64_t v)
{
    put_le(w, v, 8);
}

void snap_put_bytes(struct snap_writer *w, const void *src, size_t len)
{
    uint8_t *p = snap_grow(w, len);
    if (p && len)
        memcpy(p, src, len);
}

size_t snap_section_begin(struct snap_writer *w, uint32_t tag)
{
    snap_put_u32(w, tag);
    size_t mark = w->len;
    snap_put_u64(w, 0); /* the length, filled in by snap_section_end */
    return mark;
}

void snap_section_end(struct snap_writer *w, size_t mark)
{
    if (w->err || mark + 8 > w->len)
        return;
    uint64_t body = w->len - mark - 8;
    for (unsigned i = 0; i < 8; i++)
        w->buf[mark + i] = (uint8_t)(body >> (8 * i));
}

void snap_reader_init(struct snap_reader *r, const void *buf, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->p = buf;
    r->len = len;
}

void snap_fail(struct snap_reader *r, const char *what)
{
    if (!r->err) {
        r->err = -EBADMSG;
        r->what = what;
    }
}

int snap_error(const struct snap_reader *r)
{
    return r->err;
}

static uint64_t get_le(struct snap_reader *r, unsigned n)
{
    uint64_t v = 0;
    if (r->err || n > r->len - r->off) {
        snap_fail(r, "state ends early");
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += n;
    return v;
}

uint8_t snap_get_u8(struct snap_reader *r)
{
    return (uint8_t)get_le(r, 1);
}

uint16_t snap_get_u16(struct snap_reader *r)
{
    return (uint16_t)get_le(r, 2);
}

uint32_t snap_get_u32(struct snap_reader *r)
{
    return (uint32_t)get_le(r, 4);
}

uint64_t snap_get_u64(struct snap_reader *r)
{
    return get_le(r, 8);
}

void snap_get_bytes(struct snap_reader *r, void *dst, size_t len)
{
    if (r->err || len > r->len - r->off) {
        snap_fail(r, "state ends early");
        if (len)
            memset(dst, 0, len);
        return;
    }
    if (len)
        memcpy(dst, r->p + r->off, len);
    r->off += len;
}

int snap_section_enter(struct snap_reader *r, uint32_t tag, struct snap_reader *sec,
                       const char *what)
{
    snap_reader_init(sec, NULL, 0);
    uint32_t t = snap_get_u32(r);
    uint64_t len = snap_get_u64(r);
    if (r->err || t != tag || len > r->len - r->off) {
        snap_fail(r, what);
        sec->err = -EBADMSG;
        sec->what = what;
        return -EBADMSG;
    }
    snap_reader_init(sec, r->p + r->off, (size_t)len);
    sec->what = NULL;
    r->off += (size_t)len;
    return 0;
}

uint32_t snap_peek_tag(const struct snap_reader *r)
{
    if (r->err || r->len - r->off < 4)
        return 0;
    const uint8_t *p = r->p + r->off;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int snap_section_leave(struct snap_reader *sec)
{
    if (!sec->err && sec->off != sec->len)
        snap_fail(sec, "section has bytes left over");
    return sec->err;
}

/* CRC-64/XZ: polynomial 0x42F0E1EBA9EA3693 reflected (0xC96C5795D7870F42). */
uint64_t snap_crc64(uint64_t crc, const void *buf, size_t len)
{
    static uint64_t table[256];
    static int ready; /* benign race: every thread computes the same table */
    const uint8_t *p = buf;

    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        for (unsigned i = 0; i < 256; i++) {
            uint64_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0xC96C5795D7870F42ull : c >> 1;
            table[i] = c;
        }
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
