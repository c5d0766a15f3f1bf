/*
 * vsock.c - virtio-vsock driver (virtio 1.2 §5.10) and the shim_vsock_* API.
 *
 * Three queues: receive (0), transmit (1), event (2). Every receive buffer
 * is one device-writable descriptor holding a header and up to 4 KiB of
 * payload; its payload is copied into the connection's receive ring at
 * once and the buffer goes straight back to the device, so the device is
 * never short of buffers while the application is slow: the credit the
 * shim advertises (§5.10.6.3) is what holds the peer back. A transmit
 * packet is a pool buffer: the header, and the payload as a second
 * device-readable descriptor.
 *
 * Packets are processed only inside API calls (never in the interrupt
 * handler). Control packets the shim owes the peer (RESPONSE, RST,
 * SHUTDOWN, CREDIT_UPDATE, ...) are recorded as pending bits on the
 * connection and sent as transmit buffers allow, so receive processing
 * never waits for the transmit queue. A connection's data waits until
 * its REQUEST or RESPONSE has gone out, which keeps the order right.
 *
 * Nothing a packet says is trusted: lengths are checked against the
 * buffer, credit arithmetic is done so that a wild fwd_cnt yields no
 * credit, and payload beyond a connection's free space resets it.
 */
#include "virtio.h"

#define VSOCK_F_STREAM         0 /* §5.10.3 VIRTIO_VSOCK_F_STREAM */
#define VSOCK_QUEUE_MAX        128
#define VSOCK_RX_BUFS          64
#define VSOCK_PAYLOAD_MAX      4096
#define VSOCK_RX_BUF_BYTES     (VIRTIO_VSOCK_HDR_BYTES + VSOCK_PAYLOAD_MAX)
#define VSOCK_EV_BUFS          4
#define VSOCK_TX_BUFS          VSOCK_QUEUE_MAX
#define VSOCK_TX_CTL_RESERVE   8 /* transmit buffers data never takes */
#define VSOCK_BACKLOG          32
#define VSOCK_ANON_RST_MAX     32
#define VSOCK_PORT_FIRST       1024u
#define VSOCK_PORT_LAST        0x3fffffffu
#define VSOCK_CID_MIN          3           /* 0-2 are reserved, §5.10.4 */
#define VSOCK_CID_MAX          0xfffffffeu /* the upper 32 bits are reserved */
#define VSOCK_CLOSE_WAIT_NS    2000000000ull
#define VSOCK_CREDIT_WAIT_NS   100000000ull  /* no credit this long: CREDIT_REQUEST */
#define VSOCK_CREDIT_REPEAT_NS 1000000000ull /* and again after this */
#define VSOCK_TICK_NS          100000000ull  /* sleep slice while a timer runs */

_Static_assert(sizeof(struct virtio_vsock_hdr) == VIRTIO_VSOCK_HDR_BYTES, "vsock header size");

enum conn_state {
    CS_FREE,
    CS_CONNECTING, /* REQUEST sent (or pending), no answer yet */
    CS_ESTABLISHED,
    CS_DEAD, /* reset, refused, or both sides done: no more traffic */
};

/* Control packets owed to the peer, sent in this order. */
enum {
    PEND_REQUEST = 1,
    PEND_RESPONSE = 2,
    PEND_CREDIT_UPDATE = 4,
    PEND_CREDIT_REQUEST = 8,
    PEND_SHUTDOWN = 16,
    PEND_RST = 32,
};

struct vsock_conn {
    enum conn_state state;
    uint16_t gen; /* bumped when the slot is freed */
    bool app;     /* the application holds its number */
    bool closing; /* the application closed it: free once dead */
    bool reset;   /* RST from the peer, a transport reset, or a protocol error */
    bool refused; /* RST in answer to our REQUEST */
    bool peer_shut_rd, peer_shut_wr;
    uint8_t local_shut; /* SHIM_VSOCK_SHUT_* sent or pending */
    uint8_t pending;    /* PEND_* */
    uint32_t local_port, peer_port;
    uint64_t peer_cid;
    uint8_t *rx_buf; /* SHIM_VSOCK_BUF_BYTES ring, allocated once per slot */
    uint32_t rx_start, rx_len;
    uint32_t fwd_cnt;  /* bytes the application has received */
    uint32_t fwd_told; /* fwd_cnt in the last header we sent */
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
    unsigned tx_inflight; /* packets on the transmit queue */
    uint64_t close_deadline;
    uint64_t no_credit_since, credit_req_at;
};

struct backlog_entry {
    uint8_t conn;
    uint16_t gen;
};

struct vsock_listener {
    bool used;
    uint32_t port;
    struct backlog_entry q[VSOCK_BACKLOG];
    unsigned head, count;
};

struct vsock_txbuf {
    struct virtio_vsock_hdr hdr;
    uint8_t data[VSOCK_PAYLOAD_MAX];
    struct vsock_txbuf *next; /* free list */
    int conn;                 /* -1: not for a connection */
    uint16_t gen;
};

/* An RST for a packet that matched no connection. */
struct anon_rst {
    uint64_t cid;
    uint32_t local_port, peer_port;
};

static struct {
    bool probed, present, ready, clock;
    int error; /* why it stopped */
    struct virtio_dev dev;
    struct virtq rxq, txq, evq;
    uint64_t guest_cid;
    uint8_t *rx_pool;
    struct virtio_vsock_event *ev_pool;
    struct vsock_txbuf *tx_pool, *tx_free;
    unsigned ntx_free, ntx, ntx_reserve;
    bool tx_starved; /* something waits for a transmit buffer */
    bool tx_wait;    /* shim_vsock_flush waits for the device */
    struct anon_rst anon[VSOCK_ANON_RST_MAX];
    unsigned anon_head, anon_count;
    uint32_t next_port;
    uint64_t activity, activity_seen; /* for shim_vsock_wait */
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
    uint64_t credit_updates_sent, credit_requests_sent;
    uint64_t resets_received, transport_resets, bad_packets;
} vs;

static struct vsock_conn conns[SHIM_VSOCK_MAX_CONNS];
static struct vsock_listener listeners[SHIM_VSOCK_MAX_LISTEN];

static uint64_t us_to_ns(uint64_t us)
{
    return us > UINT64_MAX / 1000 ? UINT64_MAX : us * 1000;
}

static int conn_index(const struct vsock_conn *k)
{
    return (int)(k - conns);
}

/* ---- connections ---- */

/* Bytes we may send: the peer's buffer minus what is in flight to it
 * (§5.10.6.3). A fwd_cnt ahead of what we sent makes the subtraction wrap
 * beyond buf_alloc: no credit, whatever the peer claims. */
static uint32_t conn_credit(const struct vsock_conn *k)
{
    uint32_t in_flight = k->tx_cnt - k->peer_fwd_cnt;

    return in_flight > k->peer_buf_alloc ? 0 : k->peer_buf_alloc - in_flight;
}

static void conn_free(struct vsock_conn *k)
{
    uint16_t gen = (uint16_t)(k->gen + 1);
    uint8_t *rx_buf = k->rx_buf;

    *k = (struct vsock_conn){.state = CS_FREE, .gen = gen, .rx_buf = rx_buf};
}

/* A free slot with its receive ring, or NULL. */
static struct vsock_conn *conn_alloc(void)
{
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++) {
        struct vsock_conn *k = &conns[i];
        if (k->state != CS_FREE)
            continue;
        if (!k->rx_buf)
            k->rx_buf = shim_alloc(SHIM_VSOCK_BUF_BYTES, 64);
        if (!k->rx_buf)
            return NULL;
        conn_free(k);
        return k;
    }
    return NULL;
}

static struct vsock_conn *conn_find(uint64_t peer_cid, uint32_t local_port, uint32_t peer_port)
{
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++) {
        struct vsock_conn *k = &conns[i];
        if (k->state != CS_FREE && k->peer_cid == peer_cid && k->local_port == local_port &&
            k->peer_port == peer_port)
            return k;
    }
    return NULL;
}

/* Nobody will look at it again: the application never had it, or closed it. */
static bool conn_orphan(const struct vsock_conn *k)
{
    return !k->app || k->closing;
}

/* The connection is over: reset (our RST goes out if send_rst). An orphan
 * is freed once nothing is left to send. */
static void conn_kill(struct vsock_conn *k, bool send_rst)
{
    k->state = CS_DEAD;
    k->reset = true;
    k->pending = send_rst ? PEND_RST : 0;
    k->no_credit_since = 0;
    if (!send_rst && conn_orphan(k))
        conn_free(k);
}

/* §5.10.6.4: once the peer has shut down both directions and the
 * application has taken every byte, the connection ends with our RST. */
static void conn_check_done(struct vsock_conn *k)
{
    if (k->state == CS_ESTABLISHED && k->peer_shut_rd && k->peer_shut_wr && k->rx_len == 0) {
        k->state = CS_DEAD;
        k->pending = PEND_RST;
        k->no_credit_since = 0;
    }
}

/* A port for an outgoing connection that no connection or listener uses. */
static uint32_t port_pick(void)
{
    for (;;) {
        uint32_t p = vs.next_port;
        bool busy = false;

        vs.next_port = p >= VSOCK_PORT_LAST ? VSOCK_PORT_FIRST : p + 1;
        for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS && !busy; i++)
            busy = conns[i].state != CS_FREE && conns[i].local_port == p;
        for (unsigned i = 0; i < SHIM_VSOCK_MAX_LISTEN && !busy; i++)
            busy = listeners[i].used && listeners[i].port == p;
        if (!busy)
            return p;
    }
}

static struct vsock_listener *listener_find(uint32_t port)
{
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_LISTEN; i++)
        if (listeners[i].used && listeners[i].port == port)
            return &listeners[i];
    return NULL;
}

/* ---- transmit ---- */

static void txbuf_put(struct vsock_txbuf *b)
{
    b->next = vs.tx_free;
    vs.tx_free = b;
    vs.ntx_free++;
}

static void tx_release(void *cookie, void *arg)
{
    struct vsock_txbuf *b = cookie;

    (void)arg;
    if (b->conn >= 0 && conns[b->conn].gen == b->gen && conns[b->conn].tx_inflight)
        conns[b->conn].tx_inflight--;
    txbuf_put(b);
}

static void tx_reclaim(void)
{
    struct vsock_txbuf *b;
    bool any = false;

    while ((b = virtq_get_used(&vs.txq, NULL))) {
        tx_release(b, NULL);
        any = true;
    }
    if (any && vs.tx_starved) {
        vs.tx_starved = false;
        vs.activity++;
    }
}

/* A transmit buffer; data leaves a few for control packets. */
static struct vsock_txbuf *txbuf_get(bool data)
{
    if (vs.ntx_free <= (data ? vs.ntx_reserve : 0)) {
        vs.tx_starved = true;
        return NULL;
    }
    struct vsock_txbuf *b = vs.tx_free;
    vs.tx_free = b->next;
    vs.ntx_free--;
    return b;
}

/* Queue b with `len` payload bytes (not kicked). */
static int tx_submit(struct vsock_txbuf *b, uint32_t len)
{
    struct virtq_buf bufs[2] = {{&b->hdr, VIRTIO_VSOCK_HDR_BYTES}, {b->data, len}};
    int ret = virtq_add(&vs.txq, bufs, len ? 2 : 1, 0, b);

    if (ret) {
        txbuf_put(b);
        if (ret == -SHIM_EAGAIN)
            vs.tx_starved = true;
        return ret;
    }
    vs.tx_packets++;
    vs.tx_bytes += len;
    return 0;
}

static void hdr_fill(struct virtio_vsock_hdr *h, uint64_t peer_cid, uint32_t local_port,
                     uint32_t peer_port, uint16_t op, uint32_t flags, uint32_t len,
                     uint32_t fwd_cnt)
{
    *h = (struct virtio_vsock_hdr){
        .src_cid = vs.guest_cid,
        .dst_cid = peer_cid,
        .src_port = local_port,
        .dst_port = peer_port,
        .len = len,
        .type = VIRTIO_VSOCK_TYPE_STREAM,
        .op = op,
        .flags = flags,
        .buf_alloc = SHIM_VSOCK_BUF_BYTES,
        .fwd_cnt = fwd_cnt,
    };
}

/* One packet on k. Every header carries our credit (buf_alloc, fwd_cnt),
 * so any packet is a credit update. */
static int conn_tx(struct vsock_conn *k, uint16_t op, uint32_t flags, const void *data,
                   uint32_t len)
{
    struct vsock_txbuf *b = txbuf_get(op == VIRTIO_VSOCK_OP_RW);

    if (!b)
        return -SHIM_EAGAIN;
    hdr_fill(&b->hdr, k->peer_cid, k->local_port, k->peer_port, op, flags, len, k->fwd_cnt);
    if (len)
        memcpy(b->data, data, len);
    b->conn = conn_index(k);
    b->gen = k->gen;
    int ret = tx_submit(b, len);
    if (ret)
        return ret;
    k->tx_inflight++;
    k->fwd_told = k->fwd_cnt;
    k->pending &= (uint8_t)~PEND_CREDIT_UPDATE;
    if (op == VIRTIO_VSOCK_OP_RW)
        k->tx_cnt += len;
    return 0;
}

static int anon_tx(const struct anon_rst *r)
{
    struct vsock_txbuf *b = txbuf_get(false);

    if (!b)
        return -SHIM_EAGAIN;
    hdr_fill(&b->hdr, r->cid, r->local_port, r->peer_port, VIRTIO_VSOCK_OP_RST, 0, 0, 0);
    b->conn = -1;
    return tx_submit(b, 0);
}

/* Answer a packet that matched no connection with RST (§5.10.6.4). When
 * many are owed at once the oldest are dropped: the peer then times out
 * instead of being told. */
static void anon_rst(const struct virtio_vsock_hdr *h)
{
    unsigned slot = (vs.anon_head + vs.anon_count) % VSOCK_ANON_RST_MAX;

    if (vs.anon_count == VSOCK_ANON_RST_MAX) {
        vs.anon_head = (vs.anon_head + 1) % VSOCK_ANON_RST_MAX;
        vs.anon_count--;
    }
    vs.anon[slot] = (struct anon_rst){h->src_cid, h->dst_port, h->src_port};
    vs.anon_count++;
}

static const struct {
    uint8_t bit;
    uint16_t op;
} pend_ops[] = {
    {PEND_REQUEST, VIRTIO_VSOCK_OP_REQUEST},
    {PEND_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE},
    {PEND_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE},
    {PEND_CREDIT_REQUEST, VIRTIO_VSOCK_OP_CREDIT_REQUEST},
    {PEND_SHUTDOWN, VIRTIO_VSOCK_OP_SHUTDOWN},
    {PEND_RST, VIRTIO_VSOCK_OP_RST},
};

/* Send k's pending control packets in order; false if the queue filled. */
static bool conn_flush_pending(struct vsock_conn *k)
{
    for (unsigned i = 0; i < sizeof(pend_ops) / sizeof(pend_ops[0]) && k->pending; i++) {
        if (!(k->pending & pend_ops[i].bit))
            continue;
        uint32_t flags = pend_ops[i].op == VIRTIO_VSOCK_OP_SHUTDOWN ? k->local_shut : 0;
        if (conn_tx(k, pend_ops[i].op, flags, NULL, 0))
            return false;
        k->pending &= (uint8_t)~pend_ops[i].bit;
        if (pend_ops[i].op == VIRTIO_VSOCK_OP_CREDIT_UPDATE)
            vs.credit_updates_sent++;
        else if (pend_ops[i].op == VIRTIO_VSOCK_OP_CREDIT_REQUEST)
            vs.credit_requests_sent++;
        else if (pend_ops[i].op == VIRTIO_VSOCK_OP_RST && conn_orphan(k))
            conn_free(k);
    }
    return true;
}

/* Send every control packet owed, as far as transmit buffers allow. */
static void tx_flush_pending(void)
{
    while (vs.anon_count && anon_tx(&vs.anon[vs.anon_head]) == 0) {
        vs.anon_head = (vs.anon_head + 1) % VSOCK_ANON_RST_MAX;
        vs.anon_count--;
    }
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++)
        if (conns[i].state != CS_FREE && conns[i].pending && !conn_flush_pending(&conns[i]))
            break;
    virtq_kick(&vs.txq);
}

/* ---- device ---- */

/* §5.10.4: le64 guest_cid, upper 32 bits reserved. */
static int read_cid(void)
{
    uint32_t gen = virtio_config_begin(&vs.dev);
    unsigned tries = 0;
    uint64_t cid;

    do {
        cid = virtio_config_read64(&vs.dev, VIRTIO_VSOCK_CFG_GUEST_CID);
    } while (virtio_config_retry(&vs.dev, &gen, &tries));
    if (cid < VSOCK_CID_MIN || cid > VSOCK_CID_MAX) {
        shim_printf("shim: virtio-vsock at %#llx: invalid guest CID %#llx\n",
                    (unsigned long long)vs.dev.base, (unsigned long long)cid);
        return -SHIM_ENODEV;
    }
    vs.guest_cid = cid;
    return 0;
}

static int rx_post(uint8_t *buf)
{
    struct virtq_buf b = {buf, VSOCK_RX_BUF_BYTES};

    return virtq_add(&vs.rxq, &b, 0, 1, buf);
}

static int ev_post(struct virtio_vsock_event *e)
{
    struct virtq_buf b = {e, sizeof(*e)};

    return virtq_add(&vs.evq, &b, 0, 1, e);
}

static int vsock_alloc(void)
{
    if (!vs.rx_pool)
        vs.rx_pool = shim_alloc((size_t)VSOCK_RX_BUFS * VSOCK_RX_BUF_BYTES, 64);
    if (!vs.ev_pool)
        vs.ev_pool = shim_alloc(sizeof(*vs.ev_pool) * VSOCK_EV_BUFS, 16);
    if (!vs.tx_pool)
        vs.tx_pool = shim_alloc(sizeof(*vs.tx_pool) * VSOCK_TX_BUFS, 64);
    return vs.rx_pool && vs.ev_pool && vs.tx_pool ? 0 : -SHIM_ENOMEM;
}

/* Queues, buffers, DRIVER_OK (§5.10.5). */
static int vsock_setup(const char **what)
{
    int ret;

    *what = "guest CID";
    if ((ret = read_cid()))
        return ret;
    *what = "queue setup";
    if ((ret = virtq_setup(&vs.rxq, &vs.dev, VIRTIO_VSOCK_RXQ, VSOCK_QUEUE_MAX, 0)) ||
        (ret = virtq_setup(&vs.txq, &vs.dev, VIRTIO_VSOCK_TXQ, VSOCK_QUEUE_MAX, 2)) ||
        (ret = virtq_setup(&vs.evq, &vs.dev, VIRTIO_VSOCK_EVQ, VSOCK_EV_BUFS, 0)))
        return ret;
    *what = "buffer allocation";
    if ((ret = vsock_alloc()))
        return ret;
    unsigned nrx = vs.rxq.size < VSOCK_RX_BUFS ? vs.rxq.size : VSOCK_RX_BUFS;
    for (unsigned i = 0; i < nrx; i++)
        if ((ret = rx_post(vs.rx_pool + (size_t)i * VSOCK_RX_BUF_BYTES)))
            return ret;
    for (unsigned i = 0; i < vs.evq.size && i < VSOCK_EV_BUFS; i++)
        if ((ret = ev_post(&vs.ev_pool[i])))
            return ret;
    vs.tx_free = NULL;
    vs.ntx_free = 0;
    vs.ntx = vs.txq.size < VSOCK_TX_BUFS ? vs.txq.size : VSOCK_TX_BUFS;
    for (unsigned i = 0; i < vs.ntx; i++)
        txbuf_put(&vs.tx_pool[i]);
    vs.ntx_reserve = vs.ntx / 4 < VSOCK_TX_CTL_RESERVE ? vs.ntx / 4 : VSOCK_TX_CTL_RESERVE;
    vs.tx_starved = false;
    *what = "DRIVER_OK";
    if ((ret = virtio_driver_ok(&vs.dev)))
        return ret;
    virtq_kick(&vs.rxq);
    virtq_kick(&vs.evq);
    return 0;
}

static int vsock_start(void)
{
    const char *what = "feature negotiation";
    uint64_t wanted = VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) | VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC) |
                      VIRTIO_FEATURE(VSOCK_F_STREAM);

    vs.ready = false;
    int ret = virtio_negotiate(&vs.dev, wanted);
    if (ret == 0) {
        ret = vsock_setup(&what);
        if (ret)
            virtio_fail(&vs.dev);
    }
    if (ret) {
        shim_printf("shim: virtio-vsock at %#llx: %s failed (%d)\n",
                    (unsigned long long)vs.dev.base, what, ret);
        vs.error = -SHIM_ENODEV;
        return vs.error;
    }
    vs.ready = true;
    vs.error = 0;
    return 0;
}

/* Every connection is over (a transport reset, or the device stopped). */
static void conns_reset_all(void)
{
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++)
        if (conns[i].state != CS_FREE)
            conn_kill(&conns[i], false);
    vs.anon_count = 0;
    vs.activity++;
}

/* The device broke or asked for a reset: reset it so it no longer touches
 * any buffer (§2.4.2), forget every buffer, end every connection. It stays
 * down. */
static int vsock_stop(int err)
{
    virtio_reset(&vs.dev);
    vs.ready = false;
    vs.error = err;
    virtq_drain(&vs.rxq, NULL, NULL);
    virtq_drain(&vs.evq, NULL, NULL);
    virtq_drain(&vs.txq, tx_release, NULL);
    conns_reset_all();
    shim_printf("shim: virtio-vsock at %#llx: stopped (%d)\n", (unsigned long long)vs.dev.base,
                err);
    return err;
}

static void vsock_probe(void)
{
    if (vs.probed)
        return;
    vs.probed = true;
    vs.clock = strcmp(shim_time_source(), "none") != 0;
    vs.next_port = VSOCK_PORT_FIRST;
    vs.error = -SHIM_ENODEV;
    for (unsigned i = 0; i < shim_virtio_mmio_count(); i++) {
        struct virtio_dev dev;
        if (virtio_mmio_probe(i, &dev) || dev.device_id != VIRTIO_ID_VSOCK)
            continue;
        vs.dev = dev;
        vs.present = true;
        vsock_start();
        return;
    }
}

/* ---- receive ---- */

/* A REQUEST that matched no connection: a new connection if someone
 * listens and there is room, else RST. */
static void rx_request(const struct virtio_vsock_hdr *h)
{
    struct vsock_listener *l = listener_find(h->dst_port);
    struct vsock_conn *k;

    if (!l || l->count == VSOCK_BACKLOG || !(k = conn_alloc())) {
        anon_rst(h);
        return;
    }
    k->state = CS_ESTABLISHED;
    k->peer_cid = h->src_cid;
    k->local_port = h->dst_port;
    k->peer_port = h->src_port;
    k->peer_buf_alloc = h->buf_alloc;
    k->peer_fwd_cnt = h->fwd_cnt;
    k->pending = PEND_RESPONSE;
    l->q[(l->head + l->count) % VSOCK_BACKLOG] =
        (struct backlog_entry){(uint8_t)conn_index(k), k->gen};
    l->count++;
}

/* RW payload for k: into its ring, never beyond the free space. */
static void rx_data(struct vsock_conn *k, const uint8_t *p, uint32_t len)
{
    if (k->state == CS_DEAD || len == 0)
        return; /* in flight when it ended */
    if (k->state != CS_ESTABLISHED) {
        vs.bad_packets++;
        conn_kill(k, true);
        return;
    }
    if (k->local_shut & SHIM_VSOCK_SHUT_RD) {
        /* Nobody will read it: drop it, but let the peer go on. */
        k->fwd_cnt += len;
        if (k->fwd_cnt - k->fwd_told >= SHIM_VSOCK_BUF_BYTES / 4)
            k->pending |= PEND_CREDIT_UPDATE;
        return;
    }
    if (len > SHIM_VSOCK_BUF_BYTES - k->rx_len) {
        /* The peer sent beyond the credit we gave it. */
        vs.bad_packets++;
        conn_kill(k, true);
        return;
    }
    uint32_t at = (k->rx_start + k->rx_len) % SHIM_VSOCK_BUF_BYTES;
    uint32_t first = SHIM_VSOCK_BUF_BYTES - at < len ? SHIM_VSOCK_BUF_BYTES - at : len;
    memcpy(k->rx_buf + at, p, first);
    memcpy(k->rx_buf, p + first, len - first);
    k->rx_len += len;
    vs.rx_bytes += len;
}

static void rx_rst(struct vsock_conn *k)
{
    vs.resets_received++;
    if (k->state == CS_CONNECTING)
        k->refused = true;
    if (k->state == CS_DEAD && !k->reset) {
        /* Our close handshake is answered (§5.10.6.4). */
        k->pending = 0;
        if (conn_orphan(k))
            conn_free(k);
        return;
    }
    conn_kill(k, false);
}

static void rx_shutdown(struct vsock_conn *k, uint32_t flags)
{
    if (k->state != CS_ESTABLISHED)
        return;
    if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
        k->peer_shut_rd = true;
    if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
        k->peer_shut_wr = true;
    conn_check_done(k);
}

static void rx_conn(struct vsock_conn *k, const struct virtio_vsock_hdr *h, const uint8_t *p)
{
    if (h->op == VIRTIO_VSOCK_OP_REQUEST) {
        if (k->state == CS_DEAD && conn_orphan(k)) {
            /* The peer reuses the ports of a connection that is over. */
            conn_free(k);
            rx_request(h);
        } else if (k->state == CS_DEAD) {
            anon_rst(h);
        } else {
            vs.bad_packets++;
            conn_kill(k, true);
        }
        return;
    }
    if (k->state != CS_DEAD) {
        k->peer_buf_alloc = h->buf_alloc;
        k->peer_fwd_cnt = h->fwd_cnt;
        if (conn_credit(k))
            k->no_credit_since = 0;
    }
    switch (h->op) {
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (k->state == CS_CONNECTING)
            k->state = CS_ESTABLISHED;
        else
            vs.bad_packets++;
        break;
    case VIRTIO_VSOCK_OP_RST:
        rx_rst(k);
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        rx_shutdown(k, h->flags);
        break;
    case VIRTIO_VSOCK_OP_RW:
        rx_data(k, p, h->len);
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        if (k->state == CS_ESTABLISHED)
            k->pending |= PEND_CREDIT_UPDATE;
        break;
    default:
        vs.bad_packets++;
        break;
    }
}

/* One received buffer of `used` bytes. */
static void rx_packet(const uint8_t *buf, uint32_t used)
{
    struct virtio_vsock_hdr h;

    if (used < VIRTIO_VSOCK_HDR_BYTES || used > VSOCK_RX_BUF_BYTES) {
        vs.bad_packets++;
        return;
    }
    memcpy(&h, buf, sizeof(h)); /* read once, then checked */
    if (h.len > used - VIRTIO_VSOCK_HDR_BYTES || h.type != VIRTIO_VSOCK_TYPE_STREAM ||
        h.dst_cid != vs.guest_cid) {
        vs.bad_packets++;
        return;
    }
    vs.rx_packets++;
    vs.activity++;
    struct vsock_conn *k = conn_find(h.src_cid, h.dst_port, h.src_port);
    if (k)
        rx_conn(k, &h, buf + VIRTIO_VSOCK_HDR_BYTES);
    else if (h.op == VIRTIO_VSOCK_OP_REQUEST)
        rx_request(&h);
    else if (h.op != VIRTIO_VSOCK_OP_RST)
        anon_rst(&h);
}

static void rx_process(void)
{
    uint8_t *buf;
    uint32_t len;
    unsigned n = 0;

    /* Bounded, so a device that keeps the ring full cannot hold us here. */
    while (n < vs.rxq.size && (buf = virtq_get_used(&vs.rxq, &len))) {
        rx_packet(buf, len);
        rx_post(buf);
        n++;
    }
    if (n)
        virtq_kick(&vs.rxq);
}

/* §5.10.6.6: a transport reset ends every connection (listeners stay) and
 * may come with a new guest CID. */
static void ev_process(void)
{
    struct virtio_vsock_event *e;
    uint32_t len;
    bool any = false;

    while ((e = virtq_get_used(&vs.evq, &len))) {
        uint32_t id = *(volatile uint32_t *)&e->id;
        if (len >= sizeof(*e) && id == VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) {
            vs.transport_resets++;
            conns_reset_all();
            if (read_cid()) {
                vsock_stop(-SHIM_ENODEV);
                return;
            }
        }
        ev_post(e);
        any = true;
    }
    if (any)
        virtq_kick(&vs.evq);
}

/* Closing connections whose peer never answered, and senders starved of
 * credit. */
static void timers_run(void)
{
    if (!vs.clock)
        return;
    uint64_t now = shim_time_ns();
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++) {
        struct vsock_conn *k = &conns[i];
        if (k->state == CS_ESTABLISHED && k->closing && now >= k->close_deadline) {
            conn_kill(k, true);
            vs.activity++;
        }
        if (k->state == CS_ESTABLISHED && k->no_credit_since &&
            now - k->no_credit_since >= VSOCK_CREDIT_WAIT_NS &&
            (!k->credit_req_at || now - k->credit_req_at >= VSOCK_CREDIT_REPEAT_NS)) {
            k->pending |= PEND_CREDIT_REQUEST;
            k->credit_req_at = now;
        }
    }
}

static bool timers_armed(void)
{
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++)
        if (conns[i].state == CS_ESTABLISHED && (conns[i].closing || conns[i].no_credit_since))
            return true;
    return false;
}

/* Take everything the device has done; send what is owed. */
static void vsock_poll(void)
{
    if (!vs.ready)
        return;
    if (vs.dev.needs_reset) {
        vsock_stop(-SHIM_ENODEV);
        return;
    }
    tx_reclaim();
    ev_process();
    if (!vs.ready)
        return;
    rx_process();
    if (vs.rxq.error || vs.txq.error || vs.evq.error) {
        vsock_stop(-SHIM_EPROTO);
        return;
    }
    timers_run();
    tx_flush_pending();
}

static bool vsock_arm(void *arg)
{
    (void)arg;
    if (virtq_arm(&vs.rxq) || virtq_arm(&vs.evq))
        return true;
    return (vs.tx_starved || vs.tx_wait) && virtq_arm(&vs.txq);
}

/* Sleep until the device has something for us, at most `ns` (and at most a
 * tick while a timer runs). Returns 0, -SHIM_ETIMEDOUT or the stop code. */
static int vsock_sleep(uint64_t ns, uint64_t *slept)
{
    if (timers_armed() && ns > VSOCK_TICK_NS)
        ns = VSOCK_TICK_NS;
    int ret = virtio_wait(&vs.dev, vsock_arm, NULL, ns);
    if (ret == -SHIM_ETIMEDOUT)
        *slept += ns;
    else if (ret)
        return vsock_stop(ret);
    return 0;
}

static int vsock_usable(void)
{
    vsock_probe();
    return vs.ready ? 0 : vs.error;
}

/* Poll, then sleep and poll again until cond(arg) holds (0), the timeout
 * passes (-SHIM_EAGAIN for timeout 0, else -SHIM_ETIMEDOUT) or the device
 * stops. */
static int vsock_wait_for(bool (*cond)(void *arg), void *arg, uint64_t timeout_us)
{
    uint64_t timeout_ns = us_to_ns(timeout_us);
    uint64_t start = shim_time_ns(), slept = 0;

    for (;;) {
        vsock_poll();
        if (!vs.ready)
            return vs.error;
        if (cond(arg))
            return 0;
        if (timeout_us == 0)
            return -SHIM_EAGAIN;
        uint64_t spent = vs.clock ? shim_time_ns() - start : slept;
        if (spent >= timeout_ns)
            return -SHIM_ETIMEDOUT;
        int ret = vsock_sleep(timeout_ns - spent, &slept);
        if (ret)
            return ret;
    }
}

/* ---- API ---- */

int shim_vsock_info(struct shim_vsock_info *info)
{
    int ret = vsock_usable();
    unsigned open = 0;

    vsock_poll();
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_CONNS; i++)
        open += conns[i].state != CS_FREE;
    *info = (struct shim_vsock_info){
        .ready = vs.ready,
        .guest_cid = vs.guest_cid,
        .mmio_base = vs.dev.base,
        .irq = vs.dev.gsi,
        .features = vs.dev.features,
        .irqs = vs.dev.irqs,
        .rx_packets = vs.rx_packets,
        .tx_packets = vs.tx_packets,
        .rx_bytes = vs.rx_bytes,
        .tx_bytes = vs.tx_bytes,
        .credit_updates_sent = vs.credit_updates_sent,
        .credit_requests_sent = vs.credit_requests_sent,
        .resets_received = vs.resets_received,
        .transport_resets = vs.transport_resets,
        .bad_packets = vs.bad_packets,
        .conns_open = open,
    };
    return vs.ready ? 0 : ret;
}

int shim_vsock_listen(uint32_t port)
{
    int ret = vsock_usable();
    struct vsock_listener *l = NULL;

    if (ret)
        return ret;
    if (listener_find(port))
        return -SHIM_EBUSY;
    for (unsigned i = 0; i < SHIM_VSOCK_MAX_LISTEN && !l; i++)
        if (!listeners[i].used)
            l = &listeners[i];
    if (!l)
        return -SHIM_EBUSY;
    *l = (struct vsock_listener){.used = true, .port = port};
    return 0;
}

/* The next connection of l's backlog that is worth handing over. */
static int backlog_pop(struct vsock_listener *l)
{
    while (l->count) {
        struct backlog_entry e = l->q[l->head];
        struct vsock_conn *k = &conns[e.conn];

        l->head = (l->head + 1) % VSOCK_BACKLOG;
        l->count--;
        if (k->state == CS_FREE || k->gen != e.gen || k->app)
            continue;
        if (k->state == CS_DEAD && k->rx_len == 0) {
            /* Over before it was taken (freed once its RST is out). */
            if (!k->pending)
                conn_free(k);
            continue;
        }
        k->app = true;
        return e.conn;
    }
    return -1;
}

struct accept_arg {
    struct vsock_listener *l;
    int conn;
};

static bool accept_cond(void *p)
{
    struct accept_arg *a = p;

    a->conn = backlog_pop(a->l);
    return a->conn >= 0;
}

int shim_vsock_accept(uint32_t port, uint64_t timeout_us)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    struct accept_arg a = {listener_find(port), -1};
    if (!a.l)
        return -SHIM_EINVAL;
    ret = vsock_wait_for(accept_cond, &a, timeout_us);
    return ret ? ret : a.conn;
}

static bool connect_cond(void *p)
{
    return ((struct vsock_conn *)p)->state != CS_CONNECTING;
}

int shim_vsock_connect(uint32_t port, uint64_t timeout_us)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    if (timeout_us == 0)
        return -SHIM_EINVAL;
    struct vsock_conn *k = conn_alloc();
    if (!k)
        return -SHIM_EBUSY;
    k->state = CS_CONNECTING;
    k->app = true;
    k->peer_cid = SHIM_VSOCK_HOST_CID;
    k->peer_port = port;
    k->local_port = port_pick();
    k->pending = PEND_REQUEST;
    tx_flush_pending();
    ret = vsock_wait_for(connect_cond, k, timeout_us);
    if (ret == 0 && k->state == CS_ESTABLISHED)
        return conn_index(k);
    if (ret == 0)
        ret = k->refused ? -SHIM_ECONNREFUSED : -SHIM_ECONNRESET;
    if (k->state == CS_CONNECTING) {
        /* Give up: tell the peer, free the slot once the RST is out. */
        k->closing = true;
        conn_kill(k, true);
        tx_flush_pending();
    } else if (k->state != CS_FREE) {
        conn_free(k);
    }
    return ret;
}

/* Connection c as the application holds it, or NULL. */
static struct vsock_conn *app_conn(int c)
{
    if (c < 0 || c >= SHIM_VSOCK_MAX_CONNS)
        return NULL;
    struct vsock_conn *k = &conns[c];
    return k->state != CS_FREE && k->app && !k->closing ? k : NULL;
}

struct xfer {
    struct vsock_conn *k;
    uint8_t *buf;
    size_t len;
    long result; /* bytes, 0 at end of stream, or a negative code */
};

/* Why k can not send, or 0. */
static int send_error(const struct vsock_conn *k)
{
    if (k->state == CS_DEAD)
        return k->reset ? -SHIM_ECONNRESET : -SHIM_EPIPE;
    if ((k->local_shut & SHIM_VSOCK_SHUT_WR) || k->peer_shut_rd)
        return -SHIM_EPIPE;
    return 0;
}

static bool send_cond(void *p)
{
    struct xfer *x = p;
    struct vsock_conn *k = x->k;
    int err = send_error(k);

    if (err) {
        x->result = err;
        return true;
    }
    /* Its REQUEST or RESPONSE goes first. */
    if (k->pending & (PEND_REQUEST | PEND_RESPONSE))
        return false;
    uint32_t credit = conn_credit(k);
    size_t sent = 0;
    while (sent < x->len && credit > 0) {
        uint32_t n = credit < VSOCK_PAYLOAD_MAX ? credit : VSOCK_PAYLOAD_MAX;
        if (n > x->len - sent)
            n = (uint32_t)(x->len - sent);
        if (conn_tx(k, VIRTIO_VSOCK_OP_RW, 0, x->buf + sent, n))
            break;
        sent += n;
        credit -= n;
    }
    if (sent) {
        virtq_kick(&vs.txq);
        k->no_credit_since = 0;
        x->result = (long)sent;
        return true;
    }
    if (credit == 0 && !k->no_credit_since && vs.clock)
        k->no_credit_since = shim_time_ns();
    return false;
}

long shim_vsock_send(int c, const void *buf, size_t len, uint64_t timeout_us)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    struct xfer x = {app_conn(c), (uint8_t *)buf, len, 0};
    if (!x.k || !buf || len == 0 || x.k->state == CS_CONNECTING)
        return -SHIM_EINVAL;
    if (len > 0x7fffffff)
        x.len = 0x7fffffff;
    ret = vsock_wait_for(send_cond, &x, timeout_us);
    return ret ? ret : x.result;
}

static bool recv_cond(void *p)
{
    struct xfer *x = p;
    struct vsock_conn *k = x->k;

    if (k->rx_len) {
        uint32_t n = x->len < k->rx_len ? (uint32_t)x->len : k->rx_len;
        uint32_t first = SHIM_VSOCK_BUF_BYTES - k->rx_start;
        if (first > n)
            first = n;
        memcpy(x->buf, k->rx_buf + k->rx_start, first);
        memcpy(x->buf + first, k->rx_buf, n - first);
        k->rx_start = (k->rx_start + n) % SHIM_VSOCK_BUF_BYTES;
        k->rx_len -= n;
        k->fwd_cnt += n;
        /* Tell the peer once a good part of the buffer is free again. */
        if (k->state == CS_ESTABLISHED && k->fwd_cnt - k->fwd_told >= SHIM_VSOCK_BUF_BYTES / 4)
            k->pending |= PEND_CREDIT_UPDATE;
        conn_check_done(k);
        tx_flush_pending();
        x->result = n;
        return true;
    }
    /* An RST after the peer's SHUTDOWN(SEND) ends a complete stream (flint
     * and Linux close that way); one before it cut the stream short. */
    if (k->reset && !k->peer_shut_wr) {
        x->result = -SHIM_ECONNRESET;
        return true;
    }
    if (k->peer_shut_wr || k->state == CS_DEAD || (k->local_shut & SHIM_VSOCK_SHUT_RD)) {
        x->result = 0;
        return true;
    }
    return false;
}

long shim_vsock_recv(int c, void *buf, size_t len, uint64_t timeout_us)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    struct xfer x = {app_conn(c), buf, len, 0};
    if (!x.k || !buf || len == 0 || x.k->state == CS_CONNECTING)
        return -SHIM_EINVAL;
    ret = vsock_wait_for(recv_cond, &x, timeout_us);
    return ret ? ret : x.result;
}

static bool flush_cond(void *p)
{
    struct vsock_conn *k = p;

    return k->tx_inflight == 0 && !k->pending;
}

int shim_vsock_flush(int c, uint64_t timeout_us)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    struct vsock_conn *k = app_conn(c);
    if (!k)
        return -SHIM_EINVAL;
    vs.tx_wait = true;
    ret = vsock_wait_for(flush_cond, k, timeout_us);
    vs.tx_wait = false;
    return ret;
}

int shim_vsock_shutdown(int c, unsigned how)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    struct vsock_conn *k = app_conn(c);
    if (!k || how == 0 || (how & ~(unsigned)(SHIM_VSOCK_SHUT_RD | SHIM_VSOCK_SHUT_WR)) ||
        k->state == CS_CONNECTING)
        return -SHIM_EINVAL;
    if (k->state == CS_DEAD)
        return k->reset ? -SHIM_ECONNRESET : 0;
    if ((k->local_shut | how) != k->local_shut) {
        k->local_shut |= (uint8_t)how;
        k->pending |= PEND_SHUTDOWN;
        tx_flush_pending();
    }
    return 0;
}

int shim_vsock_close(int c)
{
    struct vsock_conn *k = app_conn(c);

    vsock_probe();
    if (!k)
        return -SHIM_EINVAL;
    k->closing = true;
    k->rx_len = 0;
    conn_check_done(k);
    if (k->state != CS_ESTABLISHED || !vs.ready) {
        /* Over already: free it once its RST (if owed) is out. */
        if (!k->pending || !vs.ready)
            conn_free(k);
        return 0;
    }
    /* §5.10.6.4: SHUTDOWN both ways; the peer answers with RST. Without a
     * clock there is no waiting for it: our RST follows at once. */
    k->local_shut = SHIM_VSOCK_SHUT_RD | SHIM_VSOCK_SHUT_WR;
    k->pending |= PEND_SHUTDOWN;
    k->no_credit_since = 0;
    if (vs.clock) {
        k->close_deadline = shim_time_ns() + VSOCK_CLOSE_WAIT_NS;
    } else {
        k->state = CS_DEAD;
        k->pending |= PEND_RST;
    }
    tx_flush_pending();
    return 0;
}

int shim_vsock_conn_info(int c, struct shim_vsock_conn_info *info)
{
    if (c < 0 || c >= SHIM_VSOCK_MAX_CONNS || !info)
        return -SHIM_EINVAL;
    vsock_probe();
    vsock_poll();
    const struct vsock_conn *k = &conns[c];
    *info = (struct shim_vsock_conn_info){
        .open = k->state != CS_FREE,
        .established = k->state == CS_ESTABLISHED,
        .peer_shut_rd = k->peer_shut_rd,
        .peer_shut_wr = k->peer_shut_wr,
        .reset = k->reset,
        .local_port = k->local_port,
        .peer_port = k->peer_port,
        .peer_cid = k->peer_cid,
        .rx_available = k->rx_len,
        .tx_credit = k->state == CS_ESTABLISHED && !send_error(k) ? conn_credit(k) : 0,
    };
    return 0;
}

static bool activity_cond(void *p)
{
    (void)p;
    if (vs.activity == vs.activity_seen)
        return false;
    vs.activity_seen = vs.activity;
    return true;
}

int shim_vsock_wait(uint64_t timeout_us)
{
    int ret = vsock_usable();

    if (ret)
        return ret;
    ret = vsock_wait_for(activity_cond, NULL, timeout_us);
    return ret == -SHIM_EAGAIN ? -SHIM_ETIMEDOUT : ret;
}
