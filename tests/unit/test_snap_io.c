/*
 * test_snap_io.c - the snapshot state stream: round trips, sections, and a
 * reader that never runs past what it was given.
 */
#include "snap_io.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#define TAG_A SNAP_TAG('T', 'S', 'T', 'A')
#define TAG_B SNAP_TAG('T', 'S', 'T', 'B')

Test(snap_io, integers_and_bytes_round_trip_little_endian)
{
    struct snap_writer w;
    struct snap_reader r;
    uint8_t raw[3] = {7, 8, 9}, back[3];

    snap_writer_init(&w);
    snap_put_u8(&w, 0xab);
    snap_put_u16(&w, 0x1234);
    snap_put_u32(&w, 0xdeadbeef);
    snap_put_u64(&w, 0x0102030405060708ull);
    snap_put_bytes(&w, raw, sizeof(raw));
    cr_assert_eq(w.err, 0);
    cr_assert_eq(w.len, 1 + 2 + 4 + 8 + 3);
    cr_assert_eq(w.buf[1], 0x34, "little-endian on disk");

    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(snap_get_u8(&r), 0xab);
    cr_assert_eq(snap_get_u16(&r), 0x1234);
    cr_assert_eq(snap_get_u32(&r), 0xdeadbeef);
    cr_assert_eq(snap_get_u64(&r), 0x0102030405060708ull);
    snap_get_bytes(&r, back, sizeof(back));
    cr_assert_arr_eq(back, raw, sizeof(raw));
    cr_assert_eq(snap_error(&r), 0);
    snap_writer_free(&w);
}

Test(snap_io, reading_past_the_end_is_a_sticky_error_with_zeros)
{
    uint8_t buf[3] = {1, 2, 3}, out[4] = {9, 9, 9, 9}, zero[4] = {0};
    struct snap_reader r;

    snap_reader_init(&r, buf, sizeof(buf));
    cr_assert_eq(snap_get_u32(&r), 0);
    cr_assert_eq(snap_error(&r), -EBADMSG);
    cr_assert_eq(snap_get_u8(&r), 0, "after an error every read gives zero");
    snap_get_bytes(&r, out, sizeof(out));
    cr_assert_arr_eq(out, zero, sizeof(out));
    cr_assert_str_eq(r.what, "state ends early");
}

Test(snap_io, sections_nest_and_bound_their_readers)
{
    struct snap_writer w;
    struct snap_reader r, a, b;

    snap_writer_init(&w);
    size_t ma = snap_section_begin(&w, TAG_A);
    snap_put_u32(&w, 41);
    size_t mb = snap_section_begin(&w, TAG_B);
    snap_put_u64(&w, 42);
    snap_section_end(&w, mb);
    snap_section_end(&w, ma);
    snap_put_u8(&w, 43);

    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(snap_peek_tag(&r), TAG_A);
    cr_assert_eq(snap_section_enter(&r, TAG_A, &a, "a"), 0);
    cr_assert_eq(snap_get_u32(&a), 41);
    cr_assert_eq(snap_section_enter(&a, TAG_B, &b, "b"), 0);
    cr_assert_eq(snap_get_u64(&b), 42);
    cr_assert_eq(snap_section_leave(&b), 0);
    cr_assert_eq(snap_section_leave(&a), 0);
    cr_assert_eq(snap_get_u8(&r), 43, "the outer reader moved past the whole section");
    cr_assert_eq(snap_error(&r), 0);
    snap_writer_free(&w);
}

Test(snap_io, a_section_cannot_read_into_the_next_one)
{
    struct snap_writer w;
    struct snap_reader r, a;

    snap_writer_init(&w);
    size_t m = snap_section_begin(&w, TAG_A);
    snap_put_u16(&w, 1);
    snap_section_end(&w, m);
    snap_put_u64(&w, 0x1122334455667788ull);

    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(snap_section_enter(&r, TAG_A, &a, "a"), 0);
    cr_assert_eq(snap_get_u32(&a), 0, "4 bytes from a 2-byte section");
    cr_assert_eq(snap_section_leave(&a), -EBADMSG);
    cr_assert_eq(snap_get_u64(&r), 0x1122334455667788ull, "the outer reader is unharmed");
    snap_writer_free(&w);
}

Test(snap_io, hostile_section_headers_are_refused)
{
    struct snap_writer w;
    struct snap_reader r, a;

    /* A wrong tag. */
    snap_writer_init(&w);
    snap_section_end(&w, snap_section_begin(&w, TAG_B));
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(snap_section_enter(&r, TAG_A, &a, "the a section"), -EBADMSG);
    cr_assert_str_eq(r.what, "the a section");
    cr_assert_eq(snap_get_u8(&a), 0);
    cr_assert_neq(snap_error(&a), 0, "a refused section reads as an error too");
    snap_writer_free(&w);

    /* A length beyond the buffer, the largest there is among them. */
    uint64_t lens[] = {1, 1000, UINT64_MAX, (uint64_t)SIZE_MAX - 11};
    for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        snap_writer_init(&w);
        snap_put_u32(&w, TAG_A);
        snap_put_u64(&w, lens[i]);
        snap_reader_init(&r, w.buf, w.len);
        cr_assert_eq(snap_section_enter(&r, TAG_A, &a, "a"), -EBADMSG, "length %llu",
                     (unsigned long long)lens[i]);
        snap_writer_free(&w);
    }

    /* A header cut short. */
    uint8_t half[6] = {'T', 'S', 'T', 'A', 0, 0};
    snap_reader_init(&r, half, sizeof(half));
    cr_assert_eq(snap_peek_tag(&r), TAG_A);
    cr_assert_eq(snap_section_enter(&r, TAG_A, &a, "a"), -EBADMSG);
}

Test(snap_io, semantic_failures_keep_the_first_reason)
{
    uint8_t buf[8] = {0};
    struct snap_reader r;

    snap_reader_init(&r, buf, sizeof(buf));
    snap_fail(&r, "queue size out of range");
    snap_fail(&r, "something later");
    cr_assert_eq(snap_error(&r), -EBADMSG);
    cr_assert_str_eq(r.what, "queue size out of range");
}

Test(snap_io, crc64_xz_check_value_and_chaining)
{
    const char *s = "123456789";
    /* The catalogue's check value for CRC-64/XZ. */
    cr_assert_eq(snap_crc64(0, s, 9), 0x995DC9BBDF1939FAull);
    uint64_t part = snap_crc64(0, s, 4);
    cr_assert_eq(snap_crc64(part, s + 4, 5), 0x995DC9BBDF1939FAull, "chained");
    char flipped[9];
    memcpy(flipped, s, 9);
    flipped[3] ^= 0x10;
    cr_assert_neq(snap_crc64(0, flipped, 9), 0x995DC9BBDF1939FAull, "one flipped bit");
}
