/*
 * mmds_net.c - the MMDS's network stack: ARP (RFC 826), IPv4 (RFC 791) and
 * a minimal TCP (RFC 9293) server on port 80, fed with the frames one
 * virtio-net interface sends to the MMDS address.
 *
 * Deliberately small, like Firecracker's: no IP options or fragments
 * (dropped), no TCP options but MSS, a fixed receive window, in-order data
 * only (anything else is answered with an ACK of what was taken), at most
 * one request taken per segment, one response per connection in flight.
 * No retransmission timer: answers travel a lossless queue into the
 * guest's receive ring, and a connection that stalls is reclaimed after
 * its timeout. Every field below comes from the guest and is checked
 * before use.
 */
#define _GNU_SOURCE
#include "mmds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ETH_HLEN     14
#define ETH_P_IP     0x0800
#define ETH_P_ARP    0x0806
#define ARP_LEN      28
#define IP_HLEN      20
#define TCP_HLEN     20
#define IPPROTO_TCP_ 6
#define IP_MF        0x2000
#define IP_OFFMASK   0x1fff
#define TCP_FIN      0x01
#define TCP_SYN      0x02
#define TCP_RST      0x04
#define TCP_PSH      0x08
#define TCP_ACK      0x10
#define TCP_OPT_END  0
#define TCP_OPT_NOP  1
#define TCP_OPT_MSS  2
#define TCP_MSS_MIN  536 /* RFC 9293 §3.7.1: the default without the option */

static const uint8_t mmds_mac[6] = MMDS_NET_MAC;

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

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

/* RFC 1071 one's-complement sum, to be folded by csum_fold. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* The TCP checksum over the pseudo-header (RFC 9293 §3.1). */
static uint16_t tcp_csum(uint32_t src, uint32_t dst, const uint8_t *seg, size_t len)
{
    uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);

    sum += IPPROTO_TCP_ + (uint32_t)len;
    return csum_fold(csum_add(sum, seg, len));
}

/* Serial-number order of sequence numbers (RFC 1982). */
static bool seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(b - a) >= 0;
}

/* ---- the output queue ---- */

static uint8_t *queue_slot(struct mmds_net *n)
{
    if (n->q_count == MMDS_NET_QUEUE) {
        n->stats.dropped_out++;
        return NULL;
    }
    return n->queue[(n->q_head + n->q_count) % MMDS_NET_QUEUE].data;
}

static void queue_commit(struct mmds_net *n, size_t len)
{
    n->queue[(n->q_head + n->q_count) % MMDS_NET_QUEUE].len = (uint16_t)len;
    n->q_count++;
    n->stats.frames_out++;
}

static unsigned queue_room(const struct mmds_net *n)
{
    return MMDS_NET_QUEUE - n->q_count;
}

const struct mmds_frame *mmds_net_peek(const struct mmds_net *n)
{
    return n->q_count ? &n->queue[n->q_head] : NULL;
}

/* ---- ARP ---- */

/* RFC 826: answer a request for the MMDS address from the MMDS MAC. */
static void arp_input(struct mmds_net *n, const uint8_t *eth, size_t len)
{
    const uint8_t *a = eth + ETH_HLEN;
    uint8_t *o;

    if (len < ETH_HLEN + ARP_LEN || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 ||
        a[5] != 4 || get16(a + 6) != 1 || (a[8] & 1)) {
        n->stats.dropped_in++;
        return;
    }
    o = queue_slot(n);
    if (!o)
        return;
    memcpy(o, a + 8, 6); /* to the asker's hardware address */
    memcpy(o + 6, mmds_mac, 6);
    put16(o + 12, ETH_P_ARP);
    memcpy(o + ETH_HLEN, a, 6); /* htype, ptype, hlen, plen */
    put16(o + ETH_HLEN + 6, 2);
    memcpy(o + ETH_HLEN + 8, mmds_mac, 6);
    put32(o + ETH_HLEN + 14, n->store->cfg.ipv4);
    memcpy(o + ETH_HLEN + 18, a + 8, 10); /* sha, spa of the request */
    queue_commit(n, ETH_HLEN + ARP_LEN);
}

/* ---- TCP output ---- */

struct tcp_tuple {
    uint8_t mac[6];
    uint32_t ip;
    uint16_t port;
};

/* One segment from the MMDS to `to`: queued, or dropped when the queue is
 * full (the peer's retransmission or the timeout recovers). */
static void tcp_emit(struct mmds_net *n, const struct tcp_tuple *to, uint8_t flags, uint32_t seq,
                     uint32_t ack, const void *data, size_t len, bool mss)
{
    size_t thl = TCP_HLEN + (mss ? 4 : 0), total = IP_HLEN + thl + len;
    uint8_t *o = queue_slot(n), *ip, *tcp;

    if (!o)
        return;
    memcpy(o, to->mac, 6);
    memcpy(o + 6, mmds_mac, 6);
    put16(o + 12, ETH_P_IP);
    ip = o + ETH_HLEN;
    memset(ip, 0, IP_HLEN);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)total);
    put16(ip + 4, n->ip_id++);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = IPPROTO_TCP_;
    put32(ip + 12, n->store->cfg.ipv4);
    put32(ip + 16, to->ip);
    put16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN)));
    tcp = ip + IP_HLEN;
    memset(tcp, 0, thl);
    put16(tcp, MMDS_NET_PORT);
    put16(tcp + 2, to->port);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = (uint8_t)((thl / 4) << 4);
    tcp[13] = flags;
    put16(tcp + 14, MMDS_NET_WINDOW);
    if (mss) {
        tcp[20] = TCP_OPT_MSS;
        tcp[21] = 4;
        put16(tcp + 22, MMDS_NET_MSS);
    }
    if (len)
        memcpy(tcp + thl, data, len);
    put16(tcp + 16, tcp_csum(n->store->cfg.ipv4, to->ip, tcp, thl + len));
    queue_commit(n, ETH_HLEN + total);
}

static struct tcp_tuple conn_tuple(const struct mmds_conn *c)
{
    struct tcp_tuple t = {.ip = c->peer_ip, .port = c->peer_port};

    memcpy(t.mac, c->peer_mac, 6);
    return t;
}

static void conn_free(struct mmds_conn *c)
{
    free(c->out);
    memset(c, 0, sizeof(*c));
}

/* Send what the peer's window and the queue allow: response bytes, then
 * our FIN once they are all sent and the connection should end. Returns
 * whether anything went out. */
static bool conn_push(struct mmds_net *n, struct mmds_conn *c)
{
    struct tcp_tuple to = conn_tuple(c);
    bool sent = false;

    while (queue_room(n) > 0) {
        uint32_t wnd_end = c->snd_una + c->peer_wnd;
        size_t off = c->snd_nxt - c->out_seq;
        /* The peer may have shrunk its window below what is in flight. */
        size_t wnd_left = seq_le(c->snd_nxt, wnd_end) ? wnd_end - c->snd_nxt : 0;
        size_t seg = c->out_len > off ? c->out_len - off : 0;

        if (seg > c->mss)
            seg = c->mss;
        if (seg > wnd_left)
            seg = wnd_left;
        if (seg) {
            tcp_emit(n, &to, TCP_ACK | TCP_PSH, c->snd_nxt, c->rcv_nxt, c->out + off, seg, false);
            c->snd_nxt += (uint32_t)seg;
        } else if (off >= c->out_len && c->close_after && !c->fin_sent) {
            tcp_emit(n, &to, TCP_FIN | TCP_ACK, c->snd_nxt, c->rcv_nxt, NULL, 0, false);
            c->snd_nxt++;
            c->fin_sent = true;
        } else {
            break;
        }
        sent = true;
    }
    return sent;
}

static void conn_ack(struct mmds_net *n, struct mmds_conn *c)
{
    struct tcp_tuple to = conn_tuple(c);

    if (!conn_push(n, c))
        tcp_emit(n, &to, TCP_ACK, c->snd_nxt, c->rcv_nxt, NULL, 0, false);
}

/* RFC 9293 §3.10.7.1: a reset for a segment that has no connection. */
static void tcp_reset(struct mmds_net *n, const struct tcp_tuple *to, uint8_t flags, uint32_t seq,
                      uint32_t ack, size_t seg_len)
{
    n->stats.rst_sent++;
    if (flags & TCP_ACK)
        tcp_emit(n, to, TCP_RST, ack, 0, NULL, 0, false);
    else
        tcp_emit(n, to, TCP_RST | TCP_ACK, 0, seq + (uint32_t)seg_len, NULL, 0, false);
}

/* ---- TCP input ---- */

struct tcp_seg {
    struct tcp_tuple from;
    uint16_t dport;
    uint8_t flags;
    uint32_t seq, ack;
    uint16_t wnd;
    uint16_t mss; /* from the options; 0: none */
    const uint8_t *data;
    size_t len;
};

/* The MSS option of a SYN (RFC 9293 §3.2); other options are skipped. The
 * walk is bounded by the option bytes and each option's length. */
static uint16_t parse_mss(const uint8_t *opt, size_t len)
{
    size_t i = 0;

    while (i < len && opt[i] != TCP_OPT_END) {
        if (opt[i] == TCP_OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= len || opt[i + 1] < 2 || opt[i + 1] > len - i)
            return 0;
        if (opt[i] == TCP_OPT_MSS && opt[i + 1] == 4)
            return get16(opt + i + 2);
        i += opt[i + 1];
    }
    return 0;
}

static struct mmds_conn *conn_find(struct mmds_net *n, const struct tcp_seg *s)
{
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++) {
        struct mmds_conn *c = &n->conns[i];
        if (c->state != MMDS_CONN_FREE && c->peer_ip == s->from.ip && c->peer_port == s->from.port)
            return c;
    }
    return NULL;
}

static bool conn_expired(const struct mmds_conn *c, uint64_t now_ns)
{
    if (c->state == MMDS_CONN_SYN_RCVD)
        return now_ns - c->born_ns > MMDS_NET_SYN_TIMEOUT_NS;
    return now_ns - c->last_ns > MMDS_NET_IDLE_TIMEOUT_NS;
}

static void conns_sweep(struct mmds_net *n, uint64_t now_ns)
{
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++)
        if (n->conns[i].state != MMDS_CONN_FREE && conn_expired(&n->conns[i], now_ns))
            conn_free(&n->conns[i]);
}

/* A SYN for port 80 with no connection: a slot, or a reset when all are
 * taken (a SYN flood costs one slot per 5 s, never memory). */
static void tcp_accept(struct mmds_net *n, const struct tcp_seg *s, uint64_t now_ns)
{
    struct mmds_conn *c = NULL;

    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS && !c; i++)
        if (n->conns[i].state == MMDS_CONN_FREE)
            c = &n->conns[i];
    if (!c) {
        n->stats.conns_refused++;
        tcp_reset(n, &s->from, s->flags, s->seq, s->ack, s->len + 1);
        return;
    }
    n->stats.conns++;
    c->state = MMDS_CONN_SYN_RCVD;
    memcpy(c->peer_mac, s->from.mac, 6);
    c->peer_ip = s->from.ip;
    c->peer_port = s->from.port;
    c->iss = mmds_random_u32(n->store);
    c->snd_una = c->iss;
    c->snd_nxt = c->iss + 1;
    c->out_seq = c->iss + 1;
    c->rcv_nxt = s->seq + 1;
    c->peer_wnd = s->wnd;
    c->mss = s->mss >= TCP_MSS_MIN && s->mss < MMDS_NET_MSS ? s->mss
             : s->mss >= MMDS_NET_MSS                       ? MMDS_NET_MSS
                                                            : TCP_MSS_MIN;
    c->born_ns = c->last_ns = now_ns;
    mmds_http_init(&c->http);
    tcp_emit(n, &s->from, TCP_SYN | TCP_ACK, c->iss, c->rcv_nxt, NULL, 0, true);
}

/* The answer to the request the reader just completed (or refused),
 * appended to what the connection sends. */
static void conn_answer(struct mmds_net *n, struct mmds_conn *c, uint64_t now_ns)
{
    bool close = true;
    size_t len = 0;
    char *resp = mmds_http_answer(n->store, &c->http, now_ns, &close, &len);
    char *grown;

    if (close)
        c->close_after = true;
    if (!resp)
        return;
    grown = len <= MMDS_NET_OUT_MAX(n->store) ? realloc(c->out, c->out_len + len) : NULL;
    if (grown) {
        memcpy(grown + c->out_len, resp, len);
        c->out = grown;
        c->out_len += len;
    } else {
        c->close_after = true;
    }
    free(resp);
}

/* In-order data: feed the HTTP reader, at most one request per segment
 * (the rest is not acknowledged and comes again). Returns bytes taken. */
static size_t conn_take_data(struct mmds_net *n, struct mmds_conn *c, const struct tcp_seg *s,
                             uint64_t now_ns)
{
    size_t used = 0;
    enum mmds_http_result r;

    if (c->close_after)
        return s->len; /* after a refusal or close: swallow */
    r = mmds_http_feed(&c->http, s->data, s->len, &used);
    if (r == MMDS_HTTP_MORE)
        return s->len;
    conn_answer(n, c, now_ns);
    return r == MMDS_HTTP_ERROR ? s->len : used;
}

/* An acceptable ACK (RFC 9293 §3.10.7.4): advance snd_una, drop the
 * response bytes it covers. False when it acknowledges unsent data. */
static bool conn_take_ack(struct mmds_conn *c, const struct tcp_seg *s)
{
    size_t acked;

    if (!seq_le(s->ack, c->snd_nxt))
        return false;
    if (!seq_le(c->snd_una, s->ack))
        return true; /* old: ignore */
    c->snd_una = s->ack;
    c->peer_wnd = s->wnd;
    if (!seq_le(c->out_seq, s->ack))
        return true; /* only the SYN so far */
    acked = s->ack - c->out_seq;
    if (acked > c->out_len)
        acked = c->out_len; /* the FIN's sequence number */
    if (acked) {
        memmove(c->out, c->out + acked, c->out_len - acked);
        c->out_len -= acked;
        c->out_seq += (uint32_t)acked;
    }
    return true;
}

static void conn_input(struct mmds_net *n, struct mmds_conn *c, const struct tcp_seg *s,
                       uint64_t now_ns)
{
    struct tcp_tuple to = conn_tuple(c);
    size_t taken = 0;

    if (s->flags & TCP_RST) {
        /* RFC 5961 §3.2: only an exact match resets. */
        if (s->seq == c->rcv_nxt)
            conn_free(c);
        return;
    }
    c->last_ns = now_ns;
    if (s->flags & TCP_SYN) {
        if (c->state == MMDS_CONN_SYN_RCVD && s->seq + 1 == c->rcv_nxt)
            tcp_emit(n, &to, TCP_SYN | TCP_ACK, c->iss, c->rcv_nxt, NULL, 0, true);
        else
            conn_ack(n, c); /* RFC 5961 §4.2: a challenge ACK */
        return;
    }
    if (!(s->flags & TCP_ACK))
        return;
    if (c->state == MMDS_CONN_SYN_RCVD) {
        if (s->ack != c->iss + 1) {
            tcp_reset(n, &s->from, s->flags, s->seq, s->ack, s->len);
            return;
        }
        c->state = MMDS_CONN_OPEN;
    }
    if (!conn_take_ack(c, s)) {
        conn_ack(n, c);
        return;
    }
    if (c->fin_sent && c->peer_fin && c->snd_una == c->snd_nxt) {
        conn_free(c);
        return;
    }
    if (!s->len && !(s->flags & TCP_FIN)) {
        conn_push(n, c);
        return;
    }
    /* Data or FIN: only in order, and not while an answer is pending. */
    if (s->seq == c->rcv_nxt && !c->peer_fin && (c->out_len == 0 || !s->len)) {
        taken = s->len ? conn_take_data(n, c, s, now_ns) : 0;
        c->rcv_nxt += (uint32_t)taken;
        if ((s->flags & TCP_FIN) && taken == s->len) {
            c->rcv_nxt++;
            c->peer_fin = c->close_after = true;
        }
    }
    conn_ack(n, c);
    /* Both FINs sent and ours acknowledged: nothing is left to say. */
    if (c->fin_sent && c->peer_fin && c->snd_una == c->snd_nxt)
        conn_free(c);
}

/* Check the TCP header of an IPv4 packet to the MMDS and act on it. */
static void tcp_input(struct mmds_net *n, struct tcp_seg *s, const uint8_t *tcp, size_t len,
                      uint32_t src_ip, bool csum_partial, uint64_t now_ns)
{
    size_t thl;
    struct mmds_conn *c;

    if (len < TCP_HLEN || (thl = (size_t)(tcp[12] >> 4) * 4) < TCP_HLEN || thl > len ||
        (!csum_partial && tcp_csum(src_ip, n->store->cfg.ipv4, tcp, len) != 0)) {
        n->stats.dropped_in++;
        return;
    }
    s->from.ip = src_ip;
    s->from.port = get16(tcp);
    s->dport = get16(tcp + 2);
    s->seq = get32(tcp + 4);
    s->ack = get32(tcp + 8);
    s->flags = tcp[13] & 0x3f;
    s->wnd = get16(tcp + 14);
    s->mss = (s->flags & TCP_SYN) ? parse_mss(tcp + TCP_HLEN, thl - TCP_HLEN) : 0;
    s->data = tcp + thl;
    s->len = len - thl;
    c = conn_find(n, s);
    if (c && conn_expired(c, now_ns)) {
        conn_free(c);
        c = NULL;
    }
    if (c)
        return conn_input(n, c, s, now_ns);
    if (s->flags & TCP_RST)
        return;
    if (s->dport == MMDS_NET_PORT && (s->flags & (TCP_SYN | TCP_ACK | TCP_FIN)) == TCP_SYN) {
        conns_sweep(n, now_ns);
        return tcp_accept(n, s, now_ns);
    }
    tcp_reset(n, &s->from, s->flags, s->seq, s->ack,
              s->len + !!(s->flags & TCP_SYN) + !!(s->flags & TCP_FIN));
}

/* ---- IPv4 ---- */

/* RFC 791: a packet to the MMDS. Options are allowed by IHL, fragments
 * are dropped (no reassembly), the header checksum must hold. */
static void ip_input(struct mmds_net *n, const uint8_t *eth, size_t len, bool csum_partial,
                     uint64_t now_ns)
{
    const uint8_t *ip = eth + ETH_HLEN;
    size_t avail = len - ETH_HLEN, ihl, total;
    struct tcp_seg s = {0};

    ihl = (size_t)(ip[0] & 0x0f) * 4;
    total = get16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < IP_HLEN || ihl > avail || total < ihl || total > avail ||
        (get16(ip + 6) & (IP_MF | IP_OFFMASK)) || csum_fold(csum_add(0, ip, ihl)) != 0 ||
        ip[9] != IPPROTO_TCP_) {
        n->stats.dropped_in++;
        return;
    }
    memcpy(s.from.mac, eth + 6, 6);
    tcp_input(n, &s, ip + ihl, total - ihl, get32(ip + 12), csum_partial, now_ns);
}

bool mmds_net_tx(struct mmds_net *n, const uint8_t *frame, size_t len, bool csum_partial,
                 uint64_t now_ns)
{
    uint32_t addr = n->store->cfg.ipv4;
    uint16_t type;

    if (len < ETH_HLEN)
        return false;
    type = get16(frame + 12);
    if (type == ETH_P_ARP) {
        /* The target protocol address of an IPv4-over-Ethernet ARP. */
        if (len < ETH_HLEN + ARP_LEN || get32(frame + ETH_HLEN + 24) != addr)
            return false;
        n->stats.frames_in++;
        arp_input(n, frame, len);
        return true;
    }
    if (type != ETH_P_IP || len < ETH_HLEN + IP_HLEN || get32(frame + ETH_HLEN + 16) != addr)
        return false;
    n->stats.frames_in++;
    ip_input(n, frame, len, csum_partial, now_ns);
    return true;
}

void mmds_net_pop(struct mmds_net *n, uint64_t now_ns)
{
    (void)now_ns;
    if (!n->q_count)
        return;
    n->q_head = (n->q_head + 1) % MMDS_NET_QUEUE;
    n->q_count--;
    /* Room again: connections with bytes waiting send them. */
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS && queue_room(n); i++)
        if (n->conns[i].state == MMDS_CONN_OPEN)
            conn_push(n, &n->conns[i]);
}

int mmds_net_init(struct mmds_net *n, struct mmds *store)
{
    memset(n, 0, sizeof(*n));
    n->store = store;
    n->queue = calloc(MMDS_NET_QUEUE, sizeof(*n->queue));
    return n->queue ? 0 : -ENOMEM;
}

void mmds_net_fini(struct mmds_net *n)
{
    for (unsigned i = 0; i < MMDS_NET_MAX_CONNS; i++)
        conn_free(&n->conns[i]);
    free(n->queue);
    n->queue = NULL;
}
