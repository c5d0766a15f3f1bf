/* Unit tests: the MMDS network stack (ARP, IPv4, TCP) and HTTP server,
 * driven with frames as a guest would send them, hostile ones included. */
#include <criterion/criterion.h>

#include "mmds.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MMDS_IP  0xa9fea9feu
#define GUEST_IP 0xa9fe0002u
#define S        1000000000ull

static struct mmds store;
static struct mmds_net net;
static const uint8_t guest_mac[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t mmds_mac[6] = MMDS_NET_MAC;
static uint64_t now = 100 * S;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint16_t csum(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void setup(void)
{
    json_t *doc =
        json_loads("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"n\":{\"x\":\"y\"}},"
                   "\"num\":5}}",
                   0, NULL);
    cr_assert_eq(mmds_init(&store, 0), 0);
    cr_assert_eq(mmds_put(&store, doc), 0);
    json_decref(doc);
    cr_assert_eq(mmds_net_init(&net, &store), 0);
}

static void teardown(void)
{
    mmds_net_fini(&net);
    mmds_fini(&store);
}

TestSuite(mmds_net, .init = setup, .fini = teardown);

/* ---- frames from the guest ---- */

struct seg {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    const char *data;
    size_t len;
};

/* An Ethernet + IPv4 + TCP frame into buf; returns its length. */
static size_t build_tcp(uint8_t *buf, const struct seg *s)
{
    uint8_t *ip = buf + 14, *tcp = ip + 20;
    size_t tl = 20 + s->len;
    uint32_t sum;

    memset(buf, 0, 14 + 20 + tl);
    memcpy(buf, mmds_mac, 6);
    memcpy(buf + 6, guest_mac, 6);
    put16(buf + 12, 0x0800);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + tl));
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, GUEST_IP);
    put32(ip + 16, MMDS_IP);
    put16(ip + 10, csum(0, ip, 20));
    put16(tcp, s->sport);
    put16(tcp + 2, s->dport);
    put32(tcp + 4, s->seq);
    put32(tcp + 8, s->ack);
    tcp[12] = 5 << 4;
    tcp[13] = s->flags;
    put16(tcp + 14, 65535);
    if (s->len)
        memcpy(tcp + 20, s->data, s->len);
    sum = (GUEST_IP >> 16) + (GUEST_IP & 0xffff) + (MMDS_IP >> 16) + (MMDS_IP & 0xffff) + 6 +
          (uint32_t)tl;
    put16(tcp + 16, csum(sum, tcp, tl));
    return 14 + 20 + tl;
}

static bool send_seg(const struct seg *s)
{
    uint8_t buf[4096];
    size_t n = build_tcp(buf, s);
    return mmds_net_tx(&net, buf, n, false, now);
}

/* ---- frames to the guest ---- */

struct out {
    bool some;
    uint8_t flags;
    uint32_t seq, ack;
    uint16_t dport;
    char data[2048];
    size_t len;
};

/* The next queued frame, checked as a well-formed IPv4/TCP frame. */
static struct out next(void)
{
    const struct mmds_frame *f = mmds_net_peek(&net);
    struct out o = {0};
    const uint8_t *ip, *tcp;
    size_t tl;
    uint32_t sum;

    if (!f)
        return o;
    cr_assert_geq(f->len, 54);
    cr_assert_eq(memcmp(f->data, guest_mac, 6), 0);
    cr_assert_eq(memcmp(f->data + 6, mmds_mac, 6), 0);
    ip = f->data + 14;
    cr_assert_eq(csum(0, ip, 20), 0, "IP header checksum");
    cr_assert_eq(get16(ip + 2), f->len - 14);
    cr_assert_eq(get32(ip + 12), MMDS_IP);
    tcp = ip + 20;
    tl = f->len - 34;
    sum = (GUEST_IP >> 16) + (GUEST_IP & 0xffff) + (MMDS_IP >> 16) + (MMDS_IP & 0xffff) + 6 +
          (uint32_t)tl;
    cr_assert_eq(csum(sum, tcp, tl), 0, "TCP checksum");
    o.some = true;
    o.flags = tcp[13];
    o.seq = get32(tcp + 4);
    o.ack = get32(tcp + 8);
    o.dport = get16(tcp + 2);
    o.len = tl - (size_t)(tcp[12] >> 4) * 4;
    cr_assert_lt(o.len, sizeof(o.data));
    memcpy(o.data, tcp + (tcp[12] >> 4) * 4, o.len);
    mmds_net_pop(&net, now);
    return o;
}

static unsigned drain(void)
{
    unsigned n = 0;
    while (next().some)
        n++;
    return n;
}

/* A TCP client in the guest. */
struct client {
    uint16_t port;
    uint32_t seq, ack;
};

static void connect_client(struct client *c, uint16_t port)
{
    struct out o;

    c->port = port;
    c->seq = 1000;
    cr_assert(send_seg(&(struct seg){port, 80, c->seq, 0, 0x02, NULL, 0}));
    o = next();
    cr_assert(o.some);
    cr_assert_eq(o.flags, 0x12, "SYN-ACK, flags %#x", o.flags);
    cr_assert_eq(o.ack, c->seq + 1);
    c->seq++;
    c->ack = o.seq + 1;
    cr_assert(send_seg(&(struct seg){port, 80, c->seq, c->ack, 0x10, NULL, 0}));
    cr_assert_not(next().some, "nothing answers a bare ACK");
}

/* Send a request, collect the response bytes (acknowledging them). */
static void request(struct client *c, const char *req, char *resp, size_t cap)
{
    size_t got = 0;
    struct out o;

    cr_assert(send_seg(&(struct seg){c->port, 80, c->seq, c->ack, 0x18, req, strlen(req)}));
    c->seq += (uint32_t)strlen(req);
    resp[0] = '\0';
    while ((o = next()).some) {
        cr_assert_eq(o.ack, c->seq, "everything acknowledged");
        if (o.len) {
            cr_assert_eq(o.seq, c->ack);
            cr_assert_lt(got + o.len, cap);
            memcpy(resp + got, o.data, o.len);
            got += o.len;
            resp[got] = '\0';
            c->ack += (uint32_t)o.len;
        }
        if (o.flags & 0x01)
            c->ack++;
        send_seg(&(struct seg){c->port, 80, c->seq, c->ack, 0x10, NULL, 0});
    }
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(b, "no header end in %s", resp);
    return b + 4;
}

/* ---- ARP and IP ---- */

Test(mmds_net, arp_request_for_the_mmds_is_answered)
{
    uint8_t f[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const struct mmds_frame *o;

    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, 0x0806);
    put16(f + 14, 1);
    put16(f + 16, 0x0800);
    f[18] = 6;
    f[19] = 4;
    put16(f + 20, 1);
    memcpy(f + 22, guest_mac, 6);
    put32(f + 28, GUEST_IP);
    put32(f + 38, MMDS_IP);
    cr_assert(mmds_net_tx(&net, f, sizeof(f), false, now));
    o = mmds_net_peek(&net);
    cr_assert_not_null(o);
    cr_assert_eq(o->len, 42);
    cr_assert_eq(memcmp(o->data, guest_mac, 6), 0);
    cr_assert_eq(get16(o->data + 20), 2, "an ARP reply");
    cr_assert_eq(memcmp(o->data + 22, mmds_mac, 6), 0);
    cr_assert_eq(get32(o->data + 28), MMDS_IP);
    cr_assert_eq(get32(o->data + 38), GUEST_IP);
    mmds_net_pop(&net, now);
    /* Another address: the tap's business. Truncated: not taken either. */
    put32(f + 38, 0x0a000001);
    cr_assert_not(mmds_net_tx(&net, f, sizeof(f), false, now));
    cr_assert_not(mmds_net_tx(&net, f, 30, false, now));
    /* A malformed ARP for the MMDS: taken, unanswered. */
    put32(f + 38, MMDS_IP);
    f[18] = 8;
    cr_assert(mmds_net_tx(&net, f, sizeof(f), false, now));
    cr_assert_null(mmds_net_peek(&net));
}

Test(mmds_net, other_traffic_passes_to_the_tap)
{
    uint8_t f[100];
    struct seg s = {1234, 80, 1, 0, 0x02, NULL, 0};
    size_t n = build_tcp(f, &s);

    put32(f + 30, 0x08080808); /* another destination */
    cr_assert_not(mmds_net_tx(&net, f, n, false, now));
    cr_assert_not(mmds_net_tx(&net, f, 10, false, now));
    put16(f + 12, 0x86dd); /* IPv6 */
    cr_assert_not(mmds_net_tx(&net, f, n, false, now));
}

/* Each bad IPv4 or TCP header to the MMDS: taken, dropped, no answer. */
Test(mmds_net, hostile_headers_are_dropped)
{
    struct seg s = {1234, 80, 1, 0, 0x02, NULL, 0};
    uint8_t f[200], g[200];
    size_t n = build_tcp(f, &s);

    struct {
        size_t off;
        uint8_t val;
        bool fix_ip;
    } cases[] = {
        {14, 0x44, true},  /* IHL 4 */
        {14, 0x4f, true},  /* IHL 15: beyond the packet */
        {14, 0x65, true},  /* version 6 */
        {16, 0xff, true},  /* total length beyond the frame */
        {17, 10, true},    /* total length below IHL */
        {20, 0x20, true},  /* more fragments */
        {21, 0x01, true},  /* fragment offset */
        {23, 17, true},    /* UDP */
        {24, 0x12, false}, /* IP header checksum */
        {46, 0x40, false}, /* TCP data offset 4 */
        {46, 0xf0, false}, /* TCP data offset beyond the segment */
        {50, 0x12, false}, /* TCP checksum */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(g, f, n);
        g[cases[i].off] = cases[i].val;
        if (cases[i].fix_ip) {
            put16(g + 24, 0);
            put16(g + 24, csum(0, g + 14, 20));
        }
        cr_assert(mmds_net_tx(&net, g, n, false, now), "case %zu", i);
        cr_assert_null(mmds_net_peek(&net), "case %zu answered", i);
    }
    cr_assert_eq(net.stats.conns, 0);
    cr_assert(mmds_net_tx(&net, f, n - 1, false, now), "one byte short");
    cr_assert_null(mmds_net_peek(&net));
    /* The pristine frame is accepted. */
    cr_assert(mmds_net_tx(&net, f, n, false, now));
    cr_assert_eq(next().flags, 0x12);
}

Test(mmds_net, tcp_options_are_walked_safely)
{
    /* An options area of every shape: only well-formed MSS counts. */
    static const uint8_t opts[][8] = {
        {2, 4, 0x01, 0x00, 1, 1, 1, 0}, /* MSS 256: raised to 536 */
        {1, 1, 1, 1, 1, 1, 1, 1},       /* NOPs only */
        {5, 0, 0, 0, 0, 0, 0, 0},       /* zero length */
        {5, 9, 0, 0, 0, 0, 0, 0},       /* past the end */
        {2, 4, 0xff, 0xff, 0, 0, 0, 0}, /* MSS 65535: capped at 1460 */
        {8, 10, 0, 0, 0, 0, 0, 0},      /* length beyond */
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        uint8_t f[200];
        struct seg s = {(uint16_t)(2000 + i), 80, 1, 0, 0x02, NULL, 0};
        size_t n = build_tcp(f, &s);
        uint8_t *tcp = f + 34;

        memmove(tcp + 28, tcp + 20, n - 54);
        memcpy(tcp + 20, opts[i], 8);
        tcp[12] = 7 << 4;
        put16(f + 16, (uint16_t)(get16(f + 16) + 8));
        put16(f + 24, 0);
        put16(f + 24, csum(0, f + 14, 20));
        cr_assert(mmds_net_tx(&net, f, n + 8, true, now));
        cr_assert_eq(next().flags, 0x12, "case %zu", i);
    }
    cr_assert_eq(net.conns[0].mss, 536);
    cr_assert_eq(net.conns[1].mss, 536);
    cr_assert_eq(net.conns[4].mss, 1460);
}

/* ---- TCP ---- */

Test(mmds_net, data_before_the_handshake_is_reset)
{
    struct out o;

    cr_assert(send_seg(&(struct seg){4000, 80, 5, 77, 0x18, "GET / HTTP/1.1\r\n\r\n", 18}));
    o = next();
    cr_assert_eq(o.flags, 0x04, "RST, flags %#x", o.flags);
    cr_assert_eq(o.seq, 77);
    cr_assert(send_seg(&(struct seg){4000, 81, 5, 0, 0x02, NULL, 0}));
    o = next();
    cr_assert_eq(o.flags, 0x14, "RST-ACK for a closed port");
    cr_assert_eq(o.ack, 6);
    cr_assert(send_seg(&(struct seg){4000, 80, 5, 0, 0x04, NULL, 0}));
    cr_assert_not(next().some, "no answer to a stray RST");
}

Test(mmds_net, syn_flood_is_bounded)
{
    struct out o;

    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++) {
        cr_assert(send_seg(&(struct seg){(uint16_t)(5000 + i), 80, 1, 0, 0x02, NULL, 0}));
        cr_assert_eq(next().flags, 0x12);
    }
    cr_assert(send_seg(&(struct seg){6000, 80, 1, 0, 0x02, NULL, 0}));
    o = next();
    cr_assert_eq(o.flags, 0x14, "refused with a reset");
    cr_assert_eq(net.stats.conns_refused, 1);
    /* Half-open connections time out and make room. */
    now += MMDS_NET_SYN_TIMEOUT_NS + 1;
    cr_assert(send_seg(&(struct seg){6000, 80, 1, 0, 0x02, NULL, 0}));
    cr_assert_eq(next().flags, 0x12);
}

Test(mmds_net, output_queue_is_bounded)
{
    for (unsigned i = 0; i < 3 * MMDS_NET_QUEUE; i++)
        send_seg(&(struct seg){(uint16_t)(7000 + i), 81, 1, 0, 0x02, NULL, 0});
    cr_assert_eq(drain(), MMDS_NET_QUEUE);
    cr_assert_eq(net.stats.dropped_out, 2 * MMDS_NET_QUEUE);
}

Test(mmds_net, v1_get_imds_and_json)
{
    struct client c;
    char resp[4096];

    connect_client(&c, 3000);
    request(&c, "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", resp,
            sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 200", 12), "%s", resp);
    cr_assert(strstr(resp, "Content-Type: text/plain"), "%s", resp);
    cr_assert_str_eq(body_of(resp), "ami-1");
    request(&c, "GET //latest/meta-data/ HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert_str_eq(body_of(resp), "ami-id\nn/");
    request(&c, "GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n", resp,
            sizeof(resp));
    cr_assert(strstr(resp, "Content-Type: application/json"), "%s", resp);
    cr_assert_str_eq(body_of(resp), "{\"ami-id\":\"ami-1\",\"n\":{\"x\":\"y\"}}");
    request(&c, "GET /latest/num HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 501", 12), "%s", resp);
    request(&c, "GET /nope HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 404", 12), "%s", resp);
    cr_assert(strstr(resp, "/nope"), "%s", resp);
    request(&c, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n\r\n", resp,
            sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 405", 12), "%s", resp);
    cr_assert(strstr(resp, "Allow: GET\r\n"), "%s", resp);
    /* The guest closes: the MMDS answers with its FIN, then frees the slot. */
    send_seg(&(struct seg){c.port, 80, c.seq, c.ack, 0x11, NULL, 0});
    struct out o = next();
    cr_assert(o.flags & 0x01, "FIN, flags %#x", o.flags);
    cr_assert_eq(o.ack, c.seq + 1);
    send_seg(&(struct seg){c.port, 80, c.seq + 1, o.seq + 1, 0x10, NULL, 0});
    cr_assert_eq(net.conns[0].state, MMDS_CONN_FREE);
}

Test(mmds_net, imds_compat_ignores_accept)
{
    struct client c;
    char resp[4096];

    store.cfg.imds_compat = true;
    connect_client(&c, 3001);
    request(&c, "GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n", resp,
            sizeof(resp));
    cr_assert_str_eq(body_of(resp), "ami-id\nn/");
}

static void get_token(struct client *c, const char *ttl, char *resp, size_t cap)
{
    char req[256];

    snprintf(req, sizeof(req),
             "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: %s\r\n\r\n", ttl);
    request(c, req, resp, cap);
}

Test(mmds_net, v2_sessions)
{
    struct client c;
    char resp[4096], tok[64], req[256];

    store.cfg.version = MMDS_V2;
    connect_client(&c, 3002);
    request(&c, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 401", 12), "%s", resp);
    get_token(&c, "0", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    get_token(&c, "21601", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    get_token(&c, "99999999999999999999", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    get_token(&c, "abc", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    request(&c, "PUT /latest/api/token HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    request(&c,
            "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n"
            "X-Forwarded-For: 1.2.3.4\r\n\r\n",
            resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    request(&c, "PUT /latest/other HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n\r\n", resp,
            sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 404", 12), "%s", resp);
    request(&c, "GET / HTTP/1.1\r\nX-metadata-token-ttl-seconds: x\r\n\r\n", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    request(&c, "DELETE / HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert(strstr(resp, "Allow: GET, PUT\r\n"), "%s", resp);
    get_token(&c, "10", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 200", 12), "%s", resp);
    snprintf(tok, sizeof(tok), "%s", body_of(resp));
    cr_assert_eq(strlen(tok), MMDS_TOKEN_CHARS);
    snprintf(req, sizeof(req),
             "GET /latest/meta-data/ami-id HTTP/1.1\r\nx-METADATA-token: %s\r\n\r\n", tok);
    request(&c, req, resp, sizeof(resp));
    cr_assert_str_eq(body_of(resp), "ami-1", "%s", resp);
    request(&c, "GET / HTTP/1.1\r\nX-metadata-token: AAAA\r\n\r\n", resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 401", 12), "%s", resp);
    now += 11 * S;
    request(&c, req, resp, sizeof(resp));
    cr_assert(!strncmp(resp, "HTTP/1.1 401", 12), "expired: %s", resp);
}

Test(mmds_net, out_of_order_and_out_of_window_segments)
{
    struct client c;
    struct out o;

    connect_client(&c, 3003);
    /* Ahead of what is expected: only a duplicate ACK. */
    send_seg(&(struct seg){c.port, 80, c.seq + 100, c.ack, 0x18, "GET / HTTP/1.1\r\n\r\n", 18});
    o = next();
    cr_assert_eq(o.ack, c.seq);
    cr_assert_eq(o.len, 0);
    cr_assert_not(next().some);
    /* Acknowledging bytes never sent: an ACK, nothing taken. */
    send_seg(&(struct seg){c.port, 80, c.seq, c.ack + 5000, 0x18, "GET / HTTP/1.1\r\n\r\n", 18});
    o = next();
    cr_assert_eq(o.ack, c.seq);
    cr_assert_not(next().some);
    /* A RST off the expected sequence number is ignored. */
    send_seg(&(struct seg){c.port, 80, c.seq + 7, 0, 0x04, NULL, 0});
    cr_assert_neq(net.conns[0].state, MMDS_CONN_FREE);
    send_seg(&(struct seg){c.port, 80, c.seq, 0, 0x04, NULL, 0});
    cr_assert_eq(net.conns[0].state, MMDS_CONN_FREE);
}

Test(mmds_net, huge_headers_get_400_and_close)
{
    struct client c;
    char *big = malloc(1400), resp[4096];
    bool fin = false;
    struct out o;

    connect_client(&c, 3004);
    memset(big, 'a', 1399);
    big[1399] = '\0';
    memcpy(big, "GET / HTTP/1.1\r\nX-Junk: ", 24);
    send_seg(&(struct seg){c.port, 80, c.seq, c.ack, 0x18, big, 1399});
    c.seq += 1399;
    memcpy(big, "aaaaaaaaaaaaaaaaaaaaaaaa", 24);
    for (int i = 0; i < 4; i++) {
        send_seg(&(struct seg){c.port, 80, c.seq, c.ack, 0x18, big, 1399});
        c.seq += 1399;
    }
    resp[0] = '\0';
    while ((o = next()).some) {
        if (o.len) {
            memcpy(resp, o.data, o.len);
            resp[o.len] = '\0';
        }
        fin |= o.flags & 0x01;
    }
    cr_assert(!strncmp(resp, "HTTP/1.1 400", 12), "%s", resp);
    cr_assert(fin, "the connection is closed");
    free(big);
}

Test(mmds_net, idle_connections_are_reclaimed)
{
    struct client c;

    connect_client(&c, 3005);
    now += MMDS_NET_IDLE_TIMEOUT_NS + 1;
    cr_assert(
        send_seg(&(struct seg){c.port, 80, c.seq, c.ack, 0x18, "GET / HTTP/1.1\r\n\r\n", 18}));
    cr_assert_eq(next().flags, 0x04, "the old connection is gone: reset");
}

Test(mmds_net, many_connections_each_answered)
{
    struct client c[MMDS_NET_MAX_CONNS];
    char resp[4096];

    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++)
        connect_client(&c[i], (uint16_t)(8000 + i));
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++) {
        request(&c[i], "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", resp, sizeof(resp));
        cr_assert_str_eq(body_of(resp), "ami-1");
    }
}

Test(mmds_net, large_answer_spans_segments_and_window)
{
    struct client c;
    char *doc = malloc(20000), resp[32768];
    json_t *j;

    memset(doc, 'v', 19999);
    doc[19999] = '\0';
    j = json_pack("{s:s}", "big", doc);
    cr_assert_eq(mmds_put(&store, j), 0);
    json_decref(j);
    connect_client(&c, 3006);
    request(&c, "GET /big HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    cr_assert_eq(strlen(body_of(resp)), 19999);
    free(doc);
}
