/*
 * vsockhostile: a malicious virtio-vsock driver. It drives the vsock
 * device by hand (its own rings, no guest-shim driver) through one bad case
 * after another; after each it resets the device and checks that a clean
 * REQUEST to the host still gets its RESPONSE and that data still flows.
 * At the end the guest-shim driver takes the device over and exchanges a
 * few bytes with the host, to show the device still works.
 *
 * The host must listen on the Unix socket "<uds_path>_<port>" (port=P on
 * the command line, default 1234), accept every connection (the flood
 * case makes up to 1023) and echo every byte back.
 *
 * Command line: port=P, case=NAME (or case=all; default all). One line per
 * case; "vsockhostile: OK" and exit status 0 if every case matched, 1
 * otherwise.
 *
 * Expected device reactions (virtio 1.2 §5.10, §2.7):
 *   tx_oob        TX header in the MMIO gap: DEVICE_NEEDS_RESET, config
 *                 interrupt, no used entry.
 *   tx_loop       TX chain 0 -> 1 -> 0: NEEDS_RESET.
 *   tx_writable   TX chain with a device-writable buffer: NEEDS_RESET.
 *   rx_oob        RX buffer in the MMIO gap, then something for the
 *                 guest (an RST owed): NEEDS_RESET.
 *   rx_tiny       RX buffer of 16 bytes (less than the 44-byte header),
 *                 then an RST owed: NEEDS_RESET.
 *   tx_short      TX chain of 20 bytes (no whole header): dropped, the
 *                 chain comes back used, the device stays live.
 *   len_beyond    on a connection, RW whose len (1000) is beyond its
 *                 100-byte buffer: dropped; nothing of it reaches the
 *                 host (the echo of the next, good RW is exactly its own
 *                 bytes).
 *   src_cid       REQUEST with a src_cid that is not the guest's: dropped,
 *                 no answer at all.
 *   dst_cid       REQUEST to CID 5 instead of 2: dropped, no answer.
 *   bad_type      REQUEST of type 9: RST (ports swapped), no RESPONSE.
 *   bad_op        op 42 for no connection: RST.
 *   rw_no_conn    RW for no connection: RST.
 *   bad_op_conn   op 42 on a connection: the device may reset it (RST)
 *                 or ignore it; either way it stays live.
 *   overrun       on a connection whose RESPONSE granted buf_alloc bytes,
 *                 RW packets of 40000 bytes in one notification, one more
 *                 than buf_alloc holds: the last is beyond the credit, the
 *                 connection is reset (RST), and no more than buf_alloc
 *                 bytes come back.
 *   credit_wild   on a connection, CREDIT_UPDATE (and RW) with fwd_cnt
 *                 0x80000000, far ahead of what the device sent: no credit,
 *                 so the host's echo must not come for 700 ms; after a
 *                 sane CREDIT_UPDATE it arrives.
 *   flood         1100 REQUESTs: at most 1023 RESPONSEs, the rest RST
 *                 (at least 77), the device stays live.
 */
#include "hostile.h"
#include "virtio-spec.h" /* the vsock packet header */

#define RXQ       0
#define TXQ       1
#define EVQ       2
#define NQUEUES   3
#define QSIZE     64
#define TX_SLOTS  (QSIZE / 2) /* a packet takes two descriptors */
#define HDR       VIRTIO_VSOCK_HDR_BYTES
#define RX_BYTES  (HDR + 4096)
#define BUF_ALLOC 65536u
#define OOB_ADDR  0xd0000000ull /* in the MMIO gap, not RAM */
#define WAIT_MS   150000 /* for what must come: the nested sandbox has been seen to stall ~100 s */
#define QUIET_MS  500
#define FLOOD     1100
#define MAX_CONNS 1023 /* the device's limit (Firecracker's) */

static uint8_t ring_mem[NQUEUES][HRING_BYTES(QSIZE)] __attribute__((aligned(4096)));
static struct hring rings[NQUEUES];
static uint8_t rx_bufs[QSIZE][RX_BYTES] __attribute__((aligned(64)));
static uint8_t tx_bufs[TX_SLOTS][HDR + 65536] __attribute__((aligned(64)));
static uint32_t ev_bufs[4];
static uintptr_t base;
static uint64_t guest_cid;
static uint32_t host_port = 1234;
static uint16_t used_seen[NQUEUES];
static uint16_t tx_sent; /* TX packets offered since the start */
static unsigned failures;

static void notify(unsigned q)
{
    wr(base, REG_QUEUE_NOTIFY, q);
}

/* Reset, negotiate VERSION_1 only, three queues, DRIVER_OK; NULL, or
 * what went wrong. */
static const char *raw_start(void)
{
    uint64_t features;
    const char *err = hostile_start(base, 0, &features, rings, NQUEUES);

    if (err)
        return err;
    guest_cid = (uint64_t)rd(base, REG_CONFIG) | (uint64_t)rd(base, REG_CONFIG + 4) << 32;
    for (unsigned q = 0; q < NQUEUES; q++)
        used_seen[q] = 0;
    tx_sent = 0;
    return NULL;
}

/* Post all RX buffers (or none, for the RX cases) and the event buffers. */
static void post_buffers(bool rx)
{
    for (unsigned i = 0; rx && i < QSIZE; i++) {
        hring_set_desc(&rings[RXQ], i, rx_bufs[i], RX_BYTES, D_WRITE, 0);
        hring_offer(&rings[RXQ], (uint16_t)i, 1);
    }
    for (unsigned i = 0; i < 4; i++) {
        hring_set_desc(&rings[EVQ], i, &ev_bufs[i], sizeof(ev_bufs[i]), D_WRITE, 0);
        hring_offer(&rings[EVQ], (uint16_t)i, 1);
    }
    notify(RXQ);
    notify(EVQ);
}

/* ---- packets ---- */

struct pkt {
    struct virtio_vsock_hdr h;
    uint32_t used_len;
    uint8_t data[4096];
};

static void hdr_make(struct virtio_vsock_hdr *h, uint32_t src_port, uint32_t dst_port, uint16_t op,
                     uint32_t len)
{
    *h = (struct virtio_vsock_hdr){
        .src_cid = guest_cid,
        .dst_cid = SHIM_VSOCK_HOST_CID,
        .src_port = src_port,
        .dst_port = dst_port,
        .len = len,
        .type = VIRTIO_VSOCK_TYPE_STREAM,
        .op = op,
        .buf_alloc = BUF_ALLOC,
    };
}

/* Poll up to ms for NEEDS_RESET or queue q's used index reaching want. */
static bool observe(unsigned q, uint16_t want, unsigned ms)
{
    for (unsigned i = 0; i <= ms * 10; i++) {
        if (needs_reset(base))
            return false;
        if ((uint16_t)(hring_used_idx(&rings[q]) - want) < 0x8000)
            return true;
        shim_delay_us(100);
    }
    return false;
}

/* Wait until a TX slot is free (the device used the packet that had it). */
static bool tx_slot(unsigned *slot)
{
    /* The device uses TX chains in order (it passes each on at once). */
    if (tx_sent >= TX_SLOTS && !observe(TXQ, (uint16_t)(tx_sent - TX_SLOTS + 1), WAIT_MS))
        return false;
    *slot = tx_sent % TX_SLOTS;
    return true;
}

/* Offer one TX packet: header h, `len` payload bytes in a second
 * descriptor (none if len is 0); notify unless batching. */
static bool tx_packet(const struct virtio_vsock_hdr *h, const void *payload, uint32_t len,
                      bool kick)
{
    unsigned slot;

    if (!tx_slot(&slot))
        return false;
    uint8_t *b = tx_bufs[slot];
    memcpy(b, h, HDR);
    if (len)
        memcpy(b + HDR, payload, len);
    uint16_t d = (uint16_t)(2 * slot);
    hring_set_desc(&rings[TXQ], d, b, HDR, len ? D_NEXT : 0, (uint16_t)(d + 1));
    if (len)
        hring_set_desc(&rings[TXQ], d + 1u, b + HDR, len, 0, 0);
    hring_offer(&rings[TXQ], d, 1);
    tx_sent++;
    if (kick)
        notify(TXQ);
    return true;
}

static bool tx_ctl(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t fwd_cnt)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, src_port, dst_port, op, 0);
    h.fwd_cnt = fwd_cnt;
    return tx_packet(&h, NULL, 0, true);
}

/* The next packet from the device within ms; its buffer goes back. */
static bool rx_next(struct pkt *p, unsigned ms)
{
    if (!observe(RXQ, (uint16_t)(used_seen[RXQ] + 1), ms))
        return false;
    uint32_t id, len;
    hring_used_elem(&rings[RXQ], used_seen[RXQ]++, &id, &len);
    if (id >= QSIZE || len < HDR || len > RX_BYTES) {
        shim_printf("vsockhostile: device returned RX id %u len %u\n", id, len);
        memset(p, 0, sizeof(*p));
        p->h.op = 0xffff;
        return true;
    }
    memcpy(&p->h, rx_bufs[id], HDR);
    p->used_len = len;
    memcpy(p->data, rx_bufs[id] + HDR, len - HDR < sizeof(p->data) ? len - HDR : sizeof(p->data));
    hring_offer(&rings[RXQ], (uint16_t)id, 1);
    notify(RXQ);
    return true;
}

/* Is p a well-formed packet from the host port to our port? */
static bool pkt_is(const struct pkt *p, uint16_t op, uint32_t local, uint32_t peer)
{
    return p->h.op == op && p->h.src_cid == SHIM_VSOCK_HOST_CID && p->h.dst_cid == guest_cid &&
           p->h.src_port == peer && p->h.dst_port == local &&
           p->h.type == VIRTIO_VSOCK_TYPE_STREAM && p->used_len == HDR + p->h.len;
}

/* Wait for a packet with op on (local, peer), skipping credit updates and
 * others; false if none came within ms. */
static bool rx_expect(struct pkt *p, uint16_t op, uint32_t local, uint32_t peer, unsigned ms)
{
    while (rx_next(p, ms))
        if (pkt_is(p, op, local, peer))
            return true;
    return false;
}

static void verdict(const char *name, bool ok, const char *what)
{
    shim_printf("vsockhostile: %s: %s (%s)\n", name, ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

/* The buf_alloc of the last RESPONSE: what the device lets us send. */
static uint32_t granted;

/* REQUEST from `local` to the host's port; true once the RESPONSE came. */
static bool raw_connect(uint32_t local)
{
    struct pkt p;

    if (!tx_ctl(local, host_port, VIRTIO_VSOCK_OP_REQUEST, 0) ||
        !rx_expect(&p, VIRTIO_VSOCK_OP_RESPONSE, local, host_port, WAIT_MS))
        return false;
    granted = p.h.buf_alloc;
    return true;
}

/* RW of len bytes on (local, host_port); then collect the echo (RW
 * payload, up to cap bytes) for up to ms. Returns the bytes echoed. */
static uint32_t collect_echo(uint32_t local, uint8_t *out, uint32_t cap, uint32_t want, unsigned ms,
                             bool *rst)
{
    struct pkt p;
    uint32_t got = 0;

    *rst = false;
    while (got < want && rx_next(&p, ms)) {
        if (pkt_is(&p, VIRTIO_VSOCK_OP_RST, local, host_port)) {
            *rst = true;
            break;
        }
        if (!pkt_is(&p, VIRTIO_VSOCK_OP_RW, local, host_port))
            continue;
        uint32_t n = p.h.len < sizeof(p.data) ? p.h.len : sizeof(p.data);
        if (got < cap)
            memcpy(out + got, p.data, n < cap - got ? n : cap - got);
        got += p.h.len;
    }
    return got;
}

/* A clean connection: RESPONSE, an echo of 12 bytes, RST to end it. */
static bool clean_exchange(uint32_t local, char *what, size_t wlen)
{
    static const char msg[] = "hostile-ping";
    struct virtio_vsock_hdr h;
    uint8_t back[32];
    bool rst;

    if (!raw_connect(local)) {
        shim_snprintf(what, wlen, "no RESPONSE, status %#x", rd(base, REG_STATUS));
        return false;
    }
    hdr_make(&h, local, host_port, VIRTIO_VSOCK_OP_RW, 12);
    tx_packet(&h, msg, 12, true);
    uint32_t got = collect_echo(local, back, sizeof(back), 12, WAIT_MS, &rst);
    tx_ctl(local, host_port, VIRTIO_VSOCK_OP_RST, 0);
    if (got != 12 || memcmp(back, msg, 12)) {
        shim_snprintf(what, wlen, "echo of %u bytes%s", got, rst ? ", RST" : "");
        return false;
    }
    return true;
}

/* After a case: a fresh start and a clean exchange. */
static void check_recovery(const char *name, uint32_t local)
{
    char what[96] = "RESPONSE and echo";
    const char *err = raw_start();
    bool ok = !err;

    if (ok) {
        post_buffers(true);
        ok = clean_exchange(local, what, sizeof(what));
    } else {
        shim_snprintf(what, sizeof(what), "the device %s", err);
    }
    char label[48];
    shim_snprintf(label, sizeof(label), "%s recovered", name);
    verdict(label, ok, what);
}

/* The bad chain must put the device in NEEDS_RESET with a configuration
 * interrupt (§2.1.2) and return nothing on queue q. */
static void expect_needs_reset(const char *name, unsigned q)
{
    char what[96];
    bool ok = hostile_saw_needs_reset(base, &rings[q], 2000, what, sizeof(what));
    verdict(name, ok, what);
}

/* The packet must be dropped: its chain used, the device live, and no
 * packet for it within QUIET_MS. */
static void expect_dropped(const char *name)
{
    struct pkt p;
    bool used = observe(TXQ, tx_sent, WAIT_MS);
    bool answer = rx_next(&p, QUIET_MS);
    char what[96];

    shim_snprintf(what, sizeof(what), "status %#x, %u of %u used, answer op %d",
                  rd(base, REG_STATUS), hring_used_idx(&rings[TXQ]), tx_sent, answer ? p.h.op : -1);
    verdict(name, used && !answer && !needs_reset(base), what);
}

/* The packet must be answered with RST from the ports it was sent to. */
static void expect_rst(const char *name, uint32_t local, uint32_t peer)
{
    struct pkt p;
    bool got = rx_next(&p, WAIT_MS);
    bool ok = got && pkt_is(&p, VIRTIO_VSOCK_OP_RST, local, peer) && p.h.len == 0;
    char what[96];

    shim_snprintf(what, sizeof(what), "answer op %d ports %u->%u, status %#x", got ? p.h.op : -1,
                  got ? p.h.src_port : 0, got ? p.h.dst_port : 0, rd(base, REG_STATUS));
    verdict(name, ok && !needs_reset(base), what);
}

/* ---- the cases ---- */

static void case_tx_oob(const char *name)
{
    hring_set_desc(&rings[TXQ], 0, (void *)(uintptr_t)OOB_ADDR, HDR, 0, 0);
    hring_offer(&rings[TXQ], 0, 1);
    notify(TXQ);
    expect_needs_reset(name, TXQ);
}

static void case_tx_loop(const char *name)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, 40001, host_port, VIRTIO_VSOCK_OP_RW, 8);
    memcpy(tx_bufs[0], &h, HDR);
    hring_set_desc(&rings[TXQ], 0, tx_bufs[0], HDR, D_NEXT, 1);
    hring_set_desc(&rings[TXQ], 1, tx_bufs[0] + HDR, 8, D_NEXT, 0);
    hring_offer(&rings[TXQ], 0, 1);
    notify(TXQ);
    expect_needs_reset(name, TXQ);
}

static void case_tx_writable(const char *name)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, 40002, host_port, VIRTIO_VSOCK_OP_REQUEST, 0);
    memcpy(tx_bufs[0], &h, HDR);
    hring_set_desc(&rings[TXQ], 0, tx_bufs[0], HDR, D_NEXT, 1);
    hring_set_desc(&rings[TXQ], 1, tx_bufs[1], 64, D_WRITE, 0);
    hring_offer(&rings[TXQ], 0, 1);
    notify(TXQ);
    expect_needs_reset(name, TXQ);
}

/* Something the device must send the guest: an RST for an RW that
 * matches no connection. */
static void owe_rst(uint32_t local)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, local, host_port, VIRTIO_VSOCK_OP_RW, 4);
    tx_packet(&h, "oops", 4, true);
}

static void case_rx_oob(const char *name)
{
    hring_set_desc(&rings[RXQ], 0, (void *)(uintptr_t)OOB_ADDR, RX_BYTES, D_WRITE, 0);
    hring_offer(&rings[RXQ], 0, 1);
    notify(RXQ);
    owe_rst(40003);
    expect_needs_reset(name, RXQ);
}

static void case_rx_tiny(const char *name)
{
    hring_set_desc(&rings[RXQ], 0, rx_bufs[0], 16, D_WRITE, 0);
    hring_offer(&rings[RXQ], 0, 1);
    notify(RXQ);
    owe_rst(40004);
    expect_needs_reset(name, RXQ);
}

static void case_tx_short(const char *name)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, 40005, host_port, VIRTIO_VSOCK_OP_REQUEST, 0);
    memcpy(tx_bufs[0], &h, HDR);
    hring_set_desc(&rings[TXQ], 0, tx_bufs[0], 20, 0, 0);
    hring_offer(&rings[TXQ], 0, 1);
    tx_sent++;
    notify(TXQ);
    expect_dropped(name);
}

static void case_len_beyond(const char *name)
{
    static const char good[] = "exactly-these-bytes";
    struct virtio_vsock_hdr h;
    uint8_t junk[100], back[64];
    bool rst;
    char what[96];

    if (!raw_connect(40006)) {
        verdict(name, false, "no RESPONSE");
        return;
    }
    memset(junk, 'J', sizeof(junk));
    hdr_make(&h, 40006, host_port, VIRTIO_VSOCK_OP_RW, 1000);
    tx_packet(&h, junk, sizeof(junk), true);
    bool used = observe(TXQ, tx_sent, WAIT_MS);
    hdr_make(&h, 40006, host_port, VIRTIO_VSOCK_OP_RW, sizeof(good) - 1);
    tx_packet(&h, good, sizeof(good) - 1, true);
    uint32_t got = collect_echo(40006, back, sizeof(back), sizeof(good) - 1, WAIT_MS, &rst);
    /* Anything beyond the good bytes would be the junk. */
    struct pkt p;
    bool more = rx_next(&p, QUIET_MS) && pkt_is(&p, VIRTIO_VSOCK_OP_RW, 40006, host_port);
    bool ok = used && got == sizeof(good) - 1 && !memcmp(back, good, got) && !more && !rst;
    shim_snprintf(what, sizeof(what), "echo of %u bytes%s%s", got, rst ? ", RST" : "",
                  more ? ", more data" : "");
    verdict(name, ok && !needs_reset(base), what);
}

static void case_src_cid(const char *name)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, 40007, host_port, VIRTIO_VSOCK_OP_REQUEST, 0);
    h.src_cid = guest_cid + 1;
    tx_packet(&h, NULL, 0, true);
    expect_dropped(name);
}

static void case_dst_cid(const char *name)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, 40008, host_port, VIRTIO_VSOCK_OP_REQUEST, 0);
    h.dst_cid = 5;
    tx_packet(&h, NULL, 0, true);
    expect_dropped(name);
}

static void case_bad_type(const char *name)
{
    struct virtio_vsock_hdr h;

    hdr_make(&h, 40009, host_port, VIRTIO_VSOCK_OP_REQUEST, 0);
    h.type = 9;
    tx_packet(&h, NULL, 0, true);
    expect_rst(name, 40009, host_port);
}

static void case_bad_op(const char *name)
{
    tx_ctl(40010, host_port, 42, 0);
    expect_rst(name, 40010, host_port);
}

static void case_rw_no_conn(const char *name)
{
    owe_rst(40011);
    expect_rst(name, 40011, host_port);
}

static void case_bad_op_conn(const char *name)
{
    struct pkt p;
    char what[96];

    if (!raw_connect(40012)) {
        verdict(name, false, "no RESPONSE");
        return;
    }
    tx_ctl(40012, host_port, 42, 0);
    bool got = rx_next(&p, QUIET_MS);
    bool rst = got && pkt_is(&p, VIRTIO_VSOCK_OP_RST, 40012, host_port);
    shim_snprintf(what, sizeof(what), "%s, status %#x",
                  rst   ? "reset"
                  : got ? "unexpected answer"
                        : "ignored",
                  rd(base, REG_STATUS));
    verdict(name, (rst || !got) && !needs_reset(base), what);
}

static void case_overrun(const char *name)
{
    static uint8_t big[40000];
    struct virtio_vsock_hdr h;
    uint8_t back[16];
    bool rst;
    char what[96];

    if (!raw_connect(40013)) {
        verdict(name, false, "no RESPONSE");
        return;
    }
    /* One packet more than the credit holds, all in one notification. */
    unsigned n = granted / sizeof(big) + 1;
    if (n >= TX_SLOTS) {
        verdict(name, false, "the device granted more than this case can overrun");
        return;
    }
    memset(big, 'O', sizeof(big));
    hdr_make(&h, 40013, host_port, VIRTIO_VSOCK_OP_RW, sizeof(big));
    for (unsigned i = 0; i < n; i++)
        tx_packet(&h, big, sizeof(big), i == n - 1);
    uint32_t got = collect_echo(40013, back, sizeof(back), granted + 1, WAIT_MS, &rst);
    shim_snprintf(what, sizeof(what), "%u of %u packets' bytes back (granted %u), %s, status %#x",
                  got, n, granted, rst ? "RST" : "no RST", rd(base, REG_STATUS));
    verdict(name, rst && got <= granted && !needs_reset(base), what);
}

static void case_credit_wild(const char *name)
{
    struct virtio_vsock_hdr h;
    uint8_t back[16];
    bool rst;
    char what[96];

    if (!raw_connect(40014)) {
        verdict(name, false, "no RESPONSE");
        return;
    }
    tx_ctl(40014, host_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0x80000000u);
    hdr_make(&h, 40014, host_port, VIRTIO_VSOCK_OP_RW, 3);
    h.fwd_cnt = 0x80000000u;
    tx_packet(&h, "abc", 3, true);
    uint32_t early = collect_echo(40014, back, sizeof(back), 3, 700, &rst);
    tx_ctl(40014, host_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
    uint32_t late = early ? 0 : collect_echo(40014, back, sizeof(back), 3, WAIT_MS, &rst);
    shim_snprintf(what, sizeof(what), "%u bytes without credit, %u after the update%s", early, late,
                  rst ? ", RST" : "");
    verdict(name, early == 0 && late == 3 && !memcmp(back, "abc", 3) && !needs_reset(base), what);
    tx_ctl(40014, host_port, VIRTIO_VSOCK_OP_RST, 0);
}

static void case_flood(const char *name)
{
    unsigned responses = 0, rsts = 0, other = 0;
    struct pkt p;
    char what[96];

    /* Keep taking answers while sending, so RX buffers never run out. */
    for (unsigned i = 0; i < FLOOD; i++) {
        if (!tx_ctl(20000 + i, host_port, VIRTIO_VSOCK_OP_REQUEST, 0))
            break;
        while (rx_next(&p, 0)) {
            if (p.h.op == VIRTIO_VSOCK_OP_RESPONSE)
                responses++;
            else if (p.h.op == VIRTIO_VSOCK_OP_RST)
                rsts++;
            else
                other++;
        }
    }
    while (responses + rsts < FLOOD && rx_next(&p, WAIT_MS)) {
        if (p.h.op == VIRTIO_VSOCK_OP_RESPONSE)
            responses++;
        else if (p.h.op == VIRTIO_VSOCK_OP_RST)
            rsts++;
        else
            other++;
    }
    shim_snprintf(what, sizeof(what), "%u sent, %u RESPONSE, %u RST, %u other, status %#x", tx_sent,
                  responses, rsts, other, rd(base, REG_STATUS));
    verdict(name,
            tx_sent == FLOOD && responses <= MAX_CONNS && rsts >= FLOOD - MAX_CONNS &&
                !needs_reset(base),
            what);
}

struct hostile_case {
    const char *name;
    bool rx_buffers; /* post the RX buffers first */
    void (*run)(const char *name);
};

static const struct hostile_case cases[] = {
    {"tx_oob", true, case_tx_oob},           {"tx_loop", true, case_tx_loop},
    {"tx_writable", true, case_tx_writable}, {"rx_oob", false, case_rx_oob},
    {"rx_tiny", false, case_rx_tiny},        {"tx_short", true, case_tx_short},
    {"len_beyond", true, case_len_beyond},   {"src_cid", true, case_src_cid},
    {"dst_cid", true, case_dst_cid},         {"bad_type", true, case_bad_type},
    {"bad_op", true, case_bad_op},           {"rw_no_conn", true, case_rw_no_conn},
    {"bad_op_conn", true, case_bad_op_conn}, {"overrun", true, case_overrun},
    {"credit_wild", true, case_credit_wild}, {"flood", true, case_flood},
};

/* The guest-shim driver takes the device over (reset, fresh rings) and
 * exchanges bytes with the host's echo. */
static void shim_driver_check(void)
{
    static const char msg[] = "vsockhostile: the shim driver still talks";
    char back[sizeof(msg)], what[96];
    long got = 0;
    int c = shim_vsock_connect(host_port, WAIT_MS * 1000ull);

    if (c >= 0 &&
        shim_vsock_send(c, msg, sizeof(msg) - 1, WAIT_MS * 1000ull) == (long)sizeof(msg) - 1) {
        while (got < (long)sizeof(msg) - 1) {
            long n =
                shim_vsock_recv(c, back + got, sizeof(msg) - 1 - (size_t)got, WAIT_MS * 1000ull);
            if (n <= 0)
                break;
            got += n;
        }
    }
    if (c >= 0)
        shim_vsock_close(c);
    shim_snprintf(what, sizeof(what), "connect %d, %ld bytes echoed", c, got);
    verdict("shim driver", got == (long)sizeof(msg) - 1 && !memcmp(back, msg, sizeof(msg) - 1),
            what);
}

int main(void)
{
    const char *which = shim_arg("case");
    unsigned ran = 0;

    if (!which || !*which)
        which = "all";
    bool all = strcmp(which, "all") == 0;
    host_port = (uint32_t)shim_arg_int("port", 1234);
    if (!hostile_find(VIRTIO_ID_VSOCK, &base)) {
        shim_printf("vsockhostile: FAIL no virtio-vsock device on the command line\n");
        return 1;
    }
    for (unsigned q = 0; q < NQUEUES; q++)
        hring_layout(&rings[q], ring_mem[q], QSIZE);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct hostile_case *c = &cases[i];
        if (!all && strcmp(which, c->name))
            continue;
        ran++;
        const char *err = raw_start();
        if (err) {
            verdict(c->name, false, err);
            continue;
        }
        post_buffers(c->rx_buffers);
        c->run(c->name);
        check_recovery(c->name, 41000 + i);
    }
    wr(base, REG_STATUS, 0);
    if (all || strcmp(which, "shim") == 0) {
        shim_driver_check();
        ran++;
    }
    if (!ran) {
        shim_printf("vsockhostile: FAIL unknown case '%s'\n", which);
        return 1;
    }
    if (failures) {
        shim_printf("vsockhostile: FAIL %u checks in %u cases\n", failures, ran);
        return 1;
    }
    shim_printf("vsockhostile: OK %u cases\n", ran);
    return 0;
}
