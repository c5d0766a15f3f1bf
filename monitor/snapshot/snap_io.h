/*
 * snap_io.h - the byte stream a snapshot's state is written to and read
 * from, and the checksum that guards it.
 *
 * A snapshot's state is a sequence of sections, each a 32-bit tag and a
 * 64-bit length followed by that many bytes; a device writes its state as
 * one section and reads it back from a reader bounded to that section, so a
 * device can never read past its own part, and a part that does not end
 * where it said it would is an error. Integers are little-endian.
 *
 * The state file is untrusted input (it may be truncated, corrupted or
 * crafted): every read is bounds-checked. Errors are sticky: after the
 * first one every get returns zeros and snap_error() reports it, so a
 * loader may read a whole struct and check once.
 */
#ifndef FLINT_SNAP_IO_H
#define FLINT_SNAP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable buffer the state is appended to. */
struct snap_writer {
    uint8_t *buf;
    size_t len, cap;
    int err; /* 0 or -ENOMEM, sticky */
};

/* A bounded cursor over state read from a file. */
struct snap_reader {
    const uint8_t *p;
    size_t len, off;
    int err;          /* 0 or -EBADMSG, sticky */
    const char *what; /* what was being read at the first error (for messages) */
};

/* Section tags: four ASCII characters, so a hex dump of a file reads. */
#define SNAP_TAG(a, b, c, d)                                                                       \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

void snap_writer_init(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);

void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_bytes(struct snap_writer *w, const void *src, size_t len);

/* Open a section with `tag`; returns a mark for snap_section_end, which
 * writes the section's length. Sections nest. */
size_t snap_section_begin(struct snap_writer *w, uint32_t tag);
void snap_section_end(struct snap_writer *w, size_t mark);

void snap_reader_init(struct snap_reader *r, const void *buf, size_t len);

uint8_t snap_get_u8(struct snap_reader *r);
uint16_t snap_get_u16(struct snap_reader *r);
uint32_t snap_get_u32(struct snap_reader *r);
uint64_t snap_get_u64(struct snap_reader *r);
/* Copy len bytes out; on overrun dst is zeroed and the error set. */
void snap_get_bytes(struct snap_reader *r, void *dst, size_t len);

/* Read the next section header, which must carry `tag`, and bound `sec` to
 * its body; r moves past the whole section. Returns 0 or -EBADMSG (wrong
 * tag, or a length beyond what is left). `what` names the section in
 * messages. */
int snap_section_enter(struct snap_reader *r, uint32_t tag, struct snap_reader *sec,
                       const char *what);
/* Peek at the next section's tag without consuming it; 0 at the end. */
uint32_t snap_peek_tag(const struct snap_reader *r);
/* After reading a section: 0 if it was read without error and to its last
 * byte, else -EBADMSG (and r->what says why). */
int snap_section_leave(struct snap_reader *sec);

/* Record a semantic error (a value out of range) found by the caller. */
void snap_fail(struct snap_reader *r, const char *what);
/* 0 or the sticky error. */
int snap_error(const struct snap_reader *r);

/* CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones).
 * Pass 0 as `crc` to start, the previous result to continue. */
uint64_t snap_crc64(uint64_t crc, const void *buf, size_t len);

#endif /* FLINT_SNAP_IO_H */
