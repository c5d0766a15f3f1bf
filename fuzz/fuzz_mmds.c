/*
 * libFuzzer target: the MMDS network stack and HTTP server (mmds_net.c,
 * mmds_http.c), fed with the frames a hostile guest sends.
 *
 * The input is a list of records: [flags] [len_hi] [len_lo] [len bytes].
 * Each record is one frame to mmds_net_tx. Flags help the fuzzer past
 * what it cannot guess: bit 0 fixes the IPv4 header (destination, total
 * length, checksum), bit 1 puts the next expected sequence number of the
 * MMDS side into the TCP acknowledgment field, bit 2 marks the TCP
 * checksum as left to the device, bits 3-4 advance the clock (0, 1 s,
 * 10 s, 60 s), bit 5 delivers every queued answer before the frame, bit 6
 * delivers one. The first byte of the input picks V1 or V2 and
 * imds_compat. Every answer must be a well-sized frame; ASan and UBSan
 * watch every access.
 */
#include "mmds.h"

#include <jansson.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t next_ack; /* the MMDS's next sequence number, from its last segment */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void fix_ip(uint8_t *f, size_t len)
{
    uint8_t *ip = f + 14;
    uint32_t sum = 0;

    if (len < 34)
        return;
    put16(f + 12, 0x0800);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(len - 14));
    put16(ip + 6, 0);
    ip[9] = 6;
    put16(ip + 16, 0xa9fe); /* 169.254.169.254 */
    put16(ip + 18, 0xa9fe);
    put16(ip + 10, 0);
    for (int i = 0; i < 20; i += 2)
        sum += get16(ip + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, (uint16_t)~sum);
}

/* Check an answer and remember where the MMDS's sequence numbers are. */
static void check_frame(const struct mmds_frame *f)
{
    const uint8_t *tcp;
    uint32_t seq;
    size_t data;

    if (f->len < 42 || f->len > MMDS_NET_FRAME_MAX)
        abort();
    if (get16(f->data + 12) != 0x0800)
        return;
    if (f->len < 54 || get16(f->data + 16) != f->len - 14)
        abort();
    tcp = f->data + 34;
    seq = (uint32_t)get16(tcp + 4) << 16 | get16(tcp + 6);
    data = f->len - 34 - (size_t)(tcp[12] >> 4) * 4;
    next_ack = seq + (uint32_t)data + ((tcp[13] & 0x03) ? 1 : 0);
}

static void deliver(struct mmds_net *n, bool all, uint64_t now)
{
    const struct mmds_frame *f;

    while ((f = mmds_net_peek(n))) {
        check_frame(f);
        mmds_net_pop(n, now);
        if (!all)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t frame[65536];
    struct mmds store;
    struct mmds_net net;
    uint64_t now = 1000000000ull;
    json_t *doc;
    size_t off = 1;

    if (size < 1 || mmds_init(&store, 4096))
        return 0;
    doc = json_loads("{\"latest\":{\"meta-data\":{\"ami-id\":\"a\",\"n\":{\"x\":\"y\"}},\"k\":7}}",
                     0, NULL);
    mmds_put(&store, doc);
    json_decref(doc);
    store.cfg.version = (data[0] & 1) ? MMDS_V2 : MMDS_V1;
    store.cfg.imds_compat = data[0] & 2;
    if (mmds_net_init(&net, &store)) {
        mmds_fini(&store);
        return 0;
    }
    next_ack = 0;
    while (off + 3 <= size) {
        uint8_t flags = data[off];
        size_t len = get16(data + off + 1);
        static const uint64_t steps[] = {0, 1000000000ull, 10000000000ull, 60000000000ull};

        off += 3;
        if (len > size - off)
            len = size - off;
        memcpy(frame, data + off, len);
        off += len;
        if (flags & 1)
            fix_ip(frame, len);
        if ((flags & 2) && len >= 42) {
            put16(frame + 42, (uint16_t)(next_ack >> 16));
            put16(frame + 44, (uint16_t)next_ack);
        }
        now += steps[(flags >> 3) & 3];
        if (flags & 0x20)
            deliver(&net, true, now);
        if (flags & 0x40)
            deliver(&net, false, now);
        mmds_net_tx(&net, frame, len, flags & 4, now);
        if (net.q_count > MMDS_NET_QUEUE)
            abort();
    }
    deliver(&net, true, now);
    mmds_net_fini(&net);
    mmds_fini(&store);
    return 0;
}
