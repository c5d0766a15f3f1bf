/*
 * virtio_net.c - virtio network device (virtio 1.2 §5.1) over a host tap,
 * on io_uring.
 *
 * RX: one read at a time, straight into the guest's receive buffers. The
 * read covers one chain without VIRTIO_NET_F_MRG_RXBUF, or as many chains
 * as it takes to hold the largest frame the guest accepts with it (then
 * num_buffers is written into the header afterwards). Chains a frame did
 * not need stay with the device for the next read. With no receive
 * buffers nothing is read from the tap: frames wait in the tap's queue
 * until the guest posts buffers and notifies the queue.
 *
 * TX: chains are checked and written to the tap in batches, the header
 * from a device-owned copy and the frame straight from guest memory; the
 * writes of a batch are hard-linked so frames leave in order, and one
 * batch is in flight at a time. Used entries are pushed as writes
 * complete, with one interrupt per batch of completions.
 *
 * Register accesses (activate, reset) run on vCPU threads, which may not
 * touch the io_uring submission queue; they wake the VMM thread through an
 * eventfd instead.
 */
#define _GNU_SOURCE
#include "virtio_net.h"
#include "mmds.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define NET_HDR            VIRTIO_NET_HDR_BYTES
#define NET_ETH_HLEN       14
#define NET_VLAN_HLEN      4
#define NET_FRAME_OVERHEAD (NET_ETH_HLEN + NET_VLAN_HLEN) /* a frame is MTU + this at most */
#define NET_GSO_FRAME_MAX  65550 /* a 64 KiB TSO frame with Ethernet and VLAN headers */
/* What the overflow buffer must hold: a TSO frame, or one of the largest
 * MTU's frames. */
#define NET_FRAME_LIMIT                                                                            \
    (CONFIG_NET_MTU_MAX + NET_FRAME_OVERHEAD > NET_GSO_FRAME_MAX                                   \
         ? CONFIG_NET_MTU_MAX + NET_FRAME_OVERHEAD                                                 \
         : NET_GSO_FRAME_MAX)

#define NET_RX_IOV_MAX    128 /* buffers of one read */
#define NET_RX_CHAINS_MAX 64  /* chains of one read (MRG_RXBUF) */
#define NET_TX_IOV_MAX    64  /* descriptors of one TX chain (Linux: MAX_SKB_FRAGS + 2) */
#define NET_TX_BATCH      32  /* TX writes in flight */

#define F(bit) (1ull << (bit))
#define NET_FEATURES                                                                               \
    (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_MTU) |                     \
     F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |               \
     F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |           \
     F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_STATUS))

_Static_assert(sizeof(struct virtio_net_hdr_v1) == NET_HDR, "virtio_net_hdr_v1 is 12 bytes");

struct net_tx_req {
    struct ev_handler ev;
    struct virtio_net *net;
    uint32_t generation;
    uint16_t head;
    uint32_t bytes;               /* header + frame: what the write must move */
    struct virtio_net_hdr_v1 hdr; /* checked copy of the guest's header */
    unsigned first, niov;         /* the write: iov[first .. first + niov) */
    struct iovec iov[NET_TX_IOV_MAX + 1];
};

/* A receive chain taken from the ring; its buffers are consecutive in
 * net_rx.iov, in chain order. */
struct net_rx_chain {
    uint16_t head;
    uint16_t niov;
    uint32_t bytes; /* writable bytes the read may fill (trimmed to the need) */
};

struct net_rx {
    struct ev_handler ev;
    bool inflight;       /* a read is outstanding */
    bool cancelling;     /* ... and was cancelled after a reset */
    bool paused;         /* no receive buffers: not reading */
    uint32_t generation; /* transport generation of the chains held */
    unsigned nchains, niov;
    uint32_t capacity;
    struct net_rx_chain chains[NET_RX_CHAINS_MAX];
    struct iovec iov[NET_RX_IOV_MAX + 1]; /* + the overflow buffer */
    /* Behind the guest's buffers in every read, so that a frame larger
     * than they are shows in the result: a tap (or datagram socket) read
     * returns only what fit and throws the rest away. */
    uint8_t *overflow;
};

/* §5.1.4 struct virtio_net_config up to mtu, little-endian on x86. */
struct __attribute__((packed)) net_config_space {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
};

struct virtio_net {
    int fd;
    bool is_tap;
    bool link_up;     /* cleared for good when the tap fails */
    unsigned offload; /* TUN_F_* in force: what RX frames may carry */
    uint8_t mac[6];
    uint16_t mtu;       /* offered in the config space (VIRTIO_NET_F_MTU) */
    uint32_t frame_max; /* mtu + NET_FRAME_OVERHEAD: the largest frame without GSO */
    char *name;         /* for log lines: the tap name */
    struct evloop *loop;
    struct virtio_mmio *t;
    struct net_rx rx;
    struct net_tx_req *tx;
    unsigned tx_inflight;
    bool rx_pushed, tx_pushed;
    int wake_fd; /* vCPU threads -> VMM thread: activate, reset */
    uint64_t wake_buf;
    struct ev_handler wake_ev, cancel_ev, signal_ev;
    struct virtio_net_stats stats;
    struct log_ratelimit log_rl;
    /* One rate limiter per direction (rate_limiter.h): while a gate is
     * closed, TX leaves chains in the avail ring and RX does not read the
     * tap, until its timer reopens it. */
    struct rl_gate rx_gate, tx_gate;
    /* The MMDS endpoint (virtio_net_set_mmds); NULL: none. Its frames
     * go to the guest before the tap is read again. */
    struct mmds_net *mmds;
};

static bool has(const struct virtio_mmio *t, unsigned bit)
{
    return virtio_mmio_has_feature(t, bit);
}

static uint64_t net_features(void *dev)
{
    (void)dev;
    return NET_FEATURES;
}

static void net_read_config(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
    struct virtio_net *net = dev;
    struct net_config_space c = {
        .status = net->link_up ? VIRTIO_NET_S_LINK_UP : 0,
        .max_virtqueue_pairs = 1,
        .mtu = net->mtu,
    };

    memcpy(c.mac, net->mac, 6);
    memcpy(data, (uint8_t *)&c + off, len);
}

static uint32_t gso_frame_max(const struct virtio_net *net)
{
    return net->frame_max > NET_GSO_FRAME_MAX ? net->frame_max : NET_GSO_FRAME_MAX;
}

/* Largest frame (no header) the guest accepts / may send. */
static uint32_t rx_frame_max(const struct virtio_net *net)
{
    return net->offload & (TUN_F_TSO4 | TUN_F_TSO6) ? gso_frame_max(net) : net->frame_max;
}

static uint32_t tx_frame_max(const struct virtio_net *net)
{
    const struct virtio_mmio *t = net->t;

    return has(t, VIRTIO_NET_F_HOST_TSO4) || has(t, VIRTIO_NET_F_HOST_TSO6) ? gso_frame_max(net)
                                                                            : net->frame_max;
}

/* Receive offloads the tap may use, from the negotiated features. TSO
 * needs checksum offload (§5.1.3.1), and so does the tap. */
static unsigned tap_offload(const struct virtio_mmio *t)
{
    unsigned f;

    if (!has(t, VIRTIO_NET_F_GUEST_CSUM))
        return 0;
    f = TUN_F_CSUM;
    if (has(t, VIRTIO_NET_F_GUEST_TSO4))
        f |= TUN_F_TSO4;
    if (has(t, VIRTIO_NET_F_GUEST_TSO6))
        f |= TUN_F_TSO6;
    if ((f & (TUN_F_TSO4 | TUN_F_TSO6)) && has(t, VIRTIO_NET_F_GUEST_ECN))
        f |= TUN_F_TSO_ECN;
    return f;
}

static void set_offload(struct virtio_net *net, unsigned f)
{
    if (net->is_tap && ioctl(net->fd, TUNSETOFFLOAD, (unsigned long)f) < 0) {
        log_warn("virtio-net %s: TUNSETOFFLOAD 0x%x: %s; receive offloads off", net->name, f,
                 strerror(errno));
        f = 0;
    }
    net->offload = f;
}

static void wake_vmm_thread(struct virtio_net *net)
{
    uint64_t one = 1;

    if (write(net->wake_fd, &one, sizeof(one)) < 0)
        log_warn("virtio-net %s: eventfd write: %s", net->name, strerror(errno));
}

/* ---- interrupts ---- */

static void signal_locked(struct virtio_net *net)
{
    if (net->rx_pushed)
        virtio_mmio_signal_used(net->t, VIRTIO_NET_RXQ);
    if (net->tx_pushed)
        virtio_mmio_signal_used(net->t, VIRTIO_NET_TXQ);
    net->rx_pushed = net->tx_pushed = false;
}

static void on_signal(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_net *net = container_of(h, struct virtio_net, signal_ev);

    (void)res;
    (void)flags;
    pthread_mutex_lock(&net->t->lock);
    signal_locked(net);
    pthread_mutex_unlock(&net->t->lock);
}

/* Interrupt after the current batch of completions (lock held). */
static void signal_later(struct virtio_net *net)
{
    if ((net->rx_pushed || net->tx_pushed) && evloop_defer(net->loop, &net->signal_ev))
        signal_locked(net);
}

/* ---- rate limiting ---- */

/* A direction's buckets are short: close its gate (its timer reopens it). */
static void throttle(struct virtio_net *net, struct rl_gate *g, uint64_t ops, uint64_t bytes,
                     uint64_t now)
{
    if (g == &net->rx_gate)
        net->stats.rx_rate_limiter_throttled++;
    else
        net->stats.tx_rate_limiter_throttled++;
    if (!rl_gate_close(g, ops, bytes, now) && log_ratelimit(&net->log_rl, 5))
        log_warn("virtio-net %s: cannot arm the rate limiter's timer", net->name);
}

static void rx_process(struct virtio_net *net);
static void tx_process(struct virtio_net *net);

static void on_gate_timer(struct ev_handler *h, int res, uint32_t flags)
{
    struct rl_gate *g = container_of(h, struct rl_gate, ev);
    struct virtio_net *net = g->owner;

    (void)res; /* -ETIME when it expired, -ECANCELED when cancelled */
    (void)flags;
    pthread_mutex_lock(&net->t->lock);
    if (rl_gate_fired(g)) {
        if (g == &net->rx_gate)
            rx_process(net);
        else
            tx_process(net);
        signal_later(net);
    }
    pthread_mutex_unlock(&net->t->lock);
}

/* ---- RX ---- */

static void rx_forget(struct net_rx *rx, uint32_t generation)
{
    rx->nchains = rx->niov = 0;
    rx->capacity = 0;
    rx->generation = generation;
}

/* The tap is gone or broken: stop reading for good, report link down. */
static void rx_fail(struct virtio_net *net, int res)
{
    net->stats.rx_errors++;
    if (!net->link_up)
        return;
    log_error("virtio-net %s: reading the tap failed: %s; link down", net->name,
              res ? strerror(-res) : "end of file");
    net->link_up = false;
    virtio_mmio_config_changed(net->t);
}

/* Drop the first `n` chains of the read (delivered or returned). */
static void rx_consume(struct net_rx *rx, unsigned n)
{
    unsigned niov = 0;

    for (unsigned i = 0; i < n; i++) {
        niov += rx->chains[i].niov;
        rx->capacity -= rx->chains[i].bytes;
    }
    memmove(rx->chains, rx->chains + n, (rx->nchains - n) * sizeof(rx->chains[0]));
    memmove(rx->iov, rx->iov + niov, (rx->niov - niov) * sizeof(rx->iov[0]));
    rx->nchains -= n;
    rx->niov -= niov;
}

/* Append a popped chain (its buffers already at rx->iov[rx->niov]). A
 * chain is cut to `need` bytes, the most a frame may take, which keeps
 * every length in 32 bits; chains are not cut to fit the read as a whole,
 * so a chain left over for the next frame still holds its header. */
static void rx_add_chain(struct net_rx *rx, const struct virtq_chain *c, uint32_t need)
{
    struct net_rx_chain *ch = &rx->chains[rx->nchains++];
    uint64_t left = need;
    unsigned n = 0;

    ch->head = c->head;
    ch->bytes = 0;
    for (; n < c->nwrite && left; n++) {
        struct iovec *v = &rx->iov[rx->niov + n];
        if (v->iov_len > left)
            v->iov_len = left;
        left -= v->iov_len;
        ch->bytes += (uint32_t)v->iov_len;
    }
    ch->niov = (uint16_t)n; /* >= 1: the chain has writable bytes */
    rx->niov += n;
    rx->capacity += ch->bytes;
}

enum rx_gathered {
    RX_BROKEN, /* malformed chain: the device needs a reset */
    RX_EMPTY,  /* the ring ran dry first */
    RX_ENOUGH, /* room for the largest frame, or for no more chains */
};

/* Take chains until the read can hold the largest frame the guest
 * accepts (one chain without MRG_RXBUF). */
static enum rx_gathered rx_gather(struct virtio_net *net, struct virtq *vq)
{
    struct net_rx *rx = &net->rx;
    struct virtio_mmio *t = net->t;
    bool mrg = has(t, VIRTIO_NET_F_MRG_RXBUF);
    uint32_t need = NET_HDR + rx_frame_max(net);

    while (rx->capacity < need && rx->nchains < (mrg ? NET_RX_CHAINS_MAX : 1u)) {
        struct virtq_chain c;
        int rc = virtq_pop(vq, t->mem, rx->iov + rx->niov, NET_RX_IOV_MAX - rx->niov, &c);

        if (rc == 0)
            return RX_EMPTY;
        if (rc == -E2BIG && rx->nchains)
            return RX_ENOUGH; /* no room left in this read; the chain waits */
        if (rc < 0) {
            virtio_mmio_needs_reset(t, rc == -ELOOP    ? "RX descriptor loop"
                                       : rc == -EFAULT ? "RX buffer outside guest RAM"
                                       : rc == -E2BIG  ? "RX chain of more than 128 buffers"
                                                       : "malformed RX ring or descriptor");
            return RX_BROKEN;
        }
        /* §5.1.6.3.1: receive buffers are device-writable and hold at
         * least the header. */
        if (c.nread || c.write_bytes < NET_HDR) {
            virtio_mmio_needs_reset(t, c.nread ? "RX chain with device-readable buffers"
                                               : "RX chain shorter than the 12-byte header");
            return RX_BROKEN;
        }
        rx_add_chain(rx, &c, need);
    }
    return RX_ENOUGH;
}

/* With the ring empty, are the chains held worth a read? Merged buffers
 * must hold at least a full-size frame without GSO: like a NIC that waits
 * for descriptors, RX pauses rather than read frames it would have to
 * drop because the guest has not finished posting buffers. */
static bool rx_can_start(const struct virtio_net *net)
{
    const struct net_rx *rx = &net->rx;

    return rx->nchains &&
           (!has(net->t, VIRTIO_NET_F_MRG_RXBUF) || rx->capacity >= NET_HDR + net->frame_max);
}

static void on_rx_done(struct ev_handler *h, int res, uint32_t flags);

/* Quiesced with no read outstanding: return the chains held for the next
 * read to the avail ring, untouched (nothing was written to them or to
 * the used ring), so a snapshot holds no half-taken buffers; they are
 * taken again when RX resumes. Chains are taken and used in ring order, so
 * the ones held are the last ones taken. */
static void rx_give_back(struct virtio_net *net)
{
    struct virtq *vq = virtio_mmio_live_queue(net->t, VIRTIO_NET_RXQ);

    if (vq && net->rx.generation == net->t->generation)
        vq->last_avail = (uint16_t)(vq->last_avail - net->rx.nchains);
    rx_forget(&net->rx, net->t->generation);
}

static void rx_submit(struct virtio_net *net)
{
    struct net_rx *rx = &net->rx;
    struct io_uring_sqe *sqe = evloop_sqe(net->loop, &rx->ev);

    if (!sqe) {
        if (log_ratelimit(&net->log_rl, 5))
            log_warn("virtio-net %s: submission queue full; RX waits for a notification",
                     net->name);
        return;
    }
    uint32_t need = NET_HDR + rx_frame_max(net);

    /* The read holds need + 1 bytes at least: a larger frame shows. */
    rx->iov[rx->niov] = (struct iovec){
        .iov_base = rx->overflow,
        .iov_len = rx->capacity > need ? 1 : need + 1 - rx->capacity,
    };
    io_uring_prep_readv(sqe, net->fd, rx->iov, rx->niov + 1, 0);
    rx->inflight = true;
    rx->paused = false;
}

static bool mmds_pending(const struct virtio_net *net)
{
    return net->mmds && mmds_net_peek(net->mmds);
}

static void rx_deliver(struct virtio_net *net, struct virtq *vq, uint32_t len);
static void rx_drop(struct virtio_net *net, const char *why, long long len);

/* Copy the next MMDS frame into the chains held, with a plain header, and
 * hand it to the guest. False when none waits. */
static bool rx_put_mmds_frame(struct virtio_net *net, struct virtq *vq)
{
    const struct mmds_frame *f = net->mmds ? mmds_net_peek(net->mmds) : NULL;
    struct virtio_net_hdr_v1 hdr = {0};
    struct net_rx *rx = &net->rx;
    uint32_t len;

    if (!f)
        return false;
    len = NET_HDR + f->len;
    if (len > rx->capacity) {
        rx_drop(net, "MMDS answer larger than the guest's receive buffers", f->len);
    } else {
        iov_copy_to(rx->iov, rx->niov, 0, &hdr, sizeof(hdr));
        iov_copy_to(rx->iov, rx->niov, NET_HDR, f->data, f->len);
        rx_deliver(net, vq, len);
    }
    mmds_net_pop(net->mmds, rate_limiter_now_ns());
    return true;
}

/* Start a read if none is outstanding and the guest has buffers (lock
 * held, VMM thread). */
static void rx_process(struct virtio_net *net)
{
    struct net_rx *rx = &net->rx;
    struct virtio_mmio *t = net->t;
    struct virtq *vq;

    if (rx->inflight) {
        /* A read into the buffers of a driver that has since reset: the
         * buffers are no longer ours (§2.4), take the read back. Paused:
         * a frame arriving now would write guest memory after a snapshot
         * was taken, so the read is taken back too; so is an idle read while
         * MMDS answers wait, so they need no tap traffic to go out. */
        if ((rx->generation != t->generation || t->quiesced || mmds_pending(net)) &&
            !rx->cancelling) {
            struct io_uring_sqe *sqe = evloop_sqe(net->loop, &net->cancel_ev);
            if (sqe) {
                io_uring_prep_cancel(sqe, &rx->ev, 0);
                rx->cancelling = true;
            }
        }
        return;
    }
    if (t->quiesced) {
        rx_give_back(net);
        return;
    }
    vq = virtio_mmio_live_queue(t, VIRTIO_NET_RXQ);
    if (!vq || !net->link_up || net->rx_gate.closed)
        return;
    if (rx->generation != t->generation)
        rx_forget(rx, t->generation);
    do {
        for (;;) {
            enum rx_gathered g = rx_gather(net, vq);
            if (g == RX_BROKEN)
                return;
            if ((g == RX_ENOUGH && rx->nchains) || rx_can_start(net))
                break;
            /* §2.7.10: not enough buffers; ask for a notification when
             * the guest posts more. */
            if (!virtq_enable_notify(vq)) {
                if (!rx->paused)
                    net->stats.rx_no_buffers++;
                rx->paused = true;
                return;
            }
        }
    } while (rx_put_mmds_frame(net, vq));
    /* The frame's length is known only once read: read when an op and a
     * byte are there, and charge the frame when it has arrived. */
    if (rate_limiter_enabled(&net->rx_gate.rl)) {
        uint64_t now = rate_limiter_now_ns();
        if (rate_limiter_wait_ns(&net->rx_gate.rl, 1, 1, now)) {
            throttle(net, &net->rx_gate, 1, 1, now);
            return;
        }
    }
    rx_submit(net);
}

/* Check and fix up the header the tap wrote (§5.1.6.4.1): offloads the
 * guest did not negotiate must not reach it. Returns false to drop. */
static bool rx_fix_header(const struct virtio_net *net, struct virtio_net_hdr_v1 *hdr,
                          uint16_t num_buffers)
{
    uint8_t gso = hdr->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    unsigned f = net->offload;

    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        if (!(gso == VIRTIO_NET_HDR_GSO_TCPV4 && (f & TUN_F_TSO4)) &&
            !(gso == VIRTIO_NET_HDR_GSO_TCPV6 && (f & TUN_F_TSO6)))
            return false;
    }
    if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
        (gso == VIRTIO_NET_HDR_GSO_NONE || !(f & TUN_F_TSO_ECN)))
        return false;
    if (!(f & TUN_F_CSUM)) {
        if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            return false;
        hdr->flags = 0;
    }
    hdr->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
    hdr->num_buffers = num_buffers;
    return true;
}

static void rx_drop(struct virtio_net *net, const char *why, long long len)
{
    net->stats.rx_dropped++;
    if (log_ratelimit(&net->log_rl, 5))
        log_warn("virtio-net %s: RX frame of %lld bytes dropped: %s", net->name, len, why);
}

/* A frame of `len` bytes (header included) is in the read's buffers:
 * write the header and hand the chains it used to the guest. */
static void rx_deliver(struct virtio_net *net, struct virtq *vq, uint32_t len)
{
    struct net_rx *rx = &net->rx;
    struct virtio_net_hdr_v1 hdr;
    uint32_t left = len;
    unsigned n = 0;

    while (left && n < rx->nchains) {
        uint32_t take = left < rx->chains[n].bytes ? left : rx->chains[n].bytes;
        left -= take;
        n++;
    }
    iov_copy_from(rx->iov, rx->niov, 0, &hdr, sizeof(hdr));
    if (!rx_fix_header(net, &hdr, (uint16_t)n)) {
        rx_drop(net, "offload flags the guest did not negotiate", len - NET_HDR);
        return;
    }
    iov_copy_to(rx->iov, rx->niov, 0, &hdr, sizeof(hdr));
    left = len;
    for (unsigned i = 0; i < n; i++) {
        uint32_t take = left < rx->chains[i].bytes ? left : rx->chains[i].bytes;
        virtq_push(vq, rx->chains[i].head, take);
        left -= take;
    }
    rx_consume(rx, n);
    net->rx_pushed = true;
    net->stats.rx_frames++;
    net->stats.rx_bytes += len - NET_HDR;
}

/* A frame larger than the guest accepts or than the read's guest buffers
 * (its tail is in the overflow buffer). */
static void rx_too_big(struct virtio_net *net, struct virtq *vq, uint32_t res)
{
    struct net_rx *rx = &net->rx;

    if (res > rx->capacity) {
        net->stats.rx_dropped++;
        if (log_ratelimit(&net->log_rl, 5))
            log_warn("virtio-net %s: RX frame dropped: larger than the guest's receive buffers "
                     "(%u bytes)",
                     net->name, rx->capacity);
    } else {
        rx_drop(net, "longer than the negotiated maximum", res - NET_HDR);
    }
    /* A chain below the size §5.1.6.3.1 asks for would stop every larger
     * frame for good: give it back unused so the guest can post others. */
    if (!has(net->t, VIRTIO_NET_F_MRG_RXBUF) && rx->capacity < NET_HDR + rx_frame_max(net)) {
        virtq_push(vq, rx->chains[0].head, 0);
        rx_consume(rx, 1);
        net->rx_pushed = true;
    }
}

static void on_rx_done(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_net *net = container_of(h, struct virtio_net, rx.ev);
    struct net_rx *rx = &net->rx;
    struct virtio_mmio *t = net->t;
    struct virtq *vq;

    (void)flags;
    pthread_mutex_lock(&t->lock);
    rx->inflight = false;
    rx->cancelling = false;
    vq = virtio_mmio_live_queue(t, VIRTIO_NET_RXQ);
    if (rx->generation != t->generation || !vq) {
        /* Reset or broken since the read started: the chains are void. */
        if (res > 0)
            rx_drop(net, "the device was reset or needs a reset", res - NET_HDR);
        rx_forget(rx, t->generation);
    } else if (res == -EAGAIN || res == -EINTR || res == -ECANCELED) {
        /* nothing read: read again */
    } else if (res == -EINVAL || res == -EFAULT || res == -EMSGSIZE) {
        /* The tap refused one frame (e.g. an offload it cannot express). */
        net->stats.rx_errors++;
        if (log_ratelimit(&net->log_rl, 5))
            log_warn("virtio-net %s: RX frame dropped by the tap: %s", net->name, strerror(-res));
    } else if (res < 0 || (res == 0 && net->is_tap)) {
        rx_fail(net, res); /* a tap never reads 0 bytes; a datagram may be empty */
    } else if ((uint32_t)res > rx->capacity || (uint32_t)res > NET_HDR + rx_frame_max(net)) {
        rx_too_big(net, vq, (uint32_t)res);
    } else if (res < NET_HDR + NET_ETH_HLEN) {
        rx_drop(net, "shorter than an Ethernet header", res - NET_HDR);
    } else {
        rate_limiter_charge(&net->rx_gate.rl, 1, (uint64_t)res - NET_HDR, rate_limiter_now_ns());
        rx_deliver(net, vq, (uint32_t)res);
    }
    rx_process(net);
    signal_later(net);
    pthread_mutex_unlock(&t->lock);
}

/* ---- TX ---- */

static void tx_drop(struct virtio_net *net, const char *why, uint64_t len)
{
    net->stats.tx_dropped++;
    if (log_ratelimit(&net->log_rl, 5))
        log_warn("virtio-net %s: TX frame of %llu bytes dropped: %s", net->name,
                 (unsigned long long)len, why);
}

/* Check the guest's header against what was negotiated (§5.1.6.2.1).
 * Returns NULL or why the frame must be dropped. */
static const char *tx_check_header(const struct virtio_mmio *t, struct virtio_net_hdr_v1 *hdr)
{
    uint8_t gso = hdr->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

    if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && !has(t, VIRTIO_NET_F_HOST_TSO4))
        return "TCPv4 segmentation offload not negotiated";
    if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !has(t, VIRTIO_NET_F_HOST_TSO6))
        return "TCPv6 segmentation offload not negotiated";
    if (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
        gso != VIRTIO_NET_HDR_GSO_TCPV6)
        return "unknown or unnegotiated GSO type";
    if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
        (gso == VIRTIO_NET_HDR_GSO_NONE || !has(t, VIRTIO_NET_F_HOST_ECN)))
        return "ECN without TSO and HOST_ECN";
    if ((hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !has(t, VIRTIO_NET_F_CSUM))
        return "checksum offload not negotiated";
    hdr->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
    hdr->num_buffers = 0;
    return NULL;
}

/* Build the write for a popped chain: 1 to send it, 0 to drop it (the
 * caller returns it unsent), -1 when the chain is malformed. */
static int tx_prepare(struct virtio_net *net, struct net_tx_req *r, const struct virtq_chain *c)
{
    struct virtio_mmio *t = net->t;
    uint64_t frame;
    const char *why;
    struct iovec *v = r->iov + 1;
    size_t skip = NET_HDR;

    if (c->nwrite || c->read_bytes < NET_HDR)
        return -1;
    frame = c->read_bytes - NET_HDR;
    if (frame < NET_ETH_HLEN) {
        tx_drop(net, "shorter than an Ethernet header", frame);
        return 0;
    }
    if (frame > tx_frame_max(net)) {
        tx_drop(net, "longer than the negotiated maximum", frame);
        return 0;
    }
    /* The header is checked and sent from the device's copy, so the guest
     * cannot change it in between. */
    iov_copy_from(v, c->nread, 0, &r->hdr, NET_HDR);
    why = tx_check_header(t, &r->hdr);
    if (why) {
        tx_drop(net, why, frame);
        return 0;
    }
    while (skip >= v->iov_len && skip) {
        skip -= v->iov_len;
        v++;
    }
    v->iov_base = (uint8_t *)v->iov_base + skip;
    v->iov_len -= skip;
    v[-1] = (struct iovec){.iov_base = &r->hdr, .iov_len = NET_HDR};
    r->first = (unsigned)(v - 1 - r->iov);
    r->niov = 1 + c->nread - r->first;
    r->bytes = (uint32_t)(NET_HDR + frame);
    return 1;
}

/* Offer a checked TX frame to the MMDS (its first MMDS_NET_FRAME_MAX
 * bytes: a longer one to the MMDS is cut, fails its checks and is
 * dropped). True when the MMDS took it. */
static bool tx_to_mmds(struct virtio_net *net, const struct net_tx_req *r)
{
    uint8_t frame[MMDS_NET_FRAME_MAX];
    size_t len = r->bytes - NET_HDR;

    if (len > sizeof(frame))
        len = sizeof(frame);
    iov_copy_from(r->iov + r->first + 1, r->niov - 1, 0, frame, len);
    return mmds_net_tx(net->mmds, frame, len, r->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM,
                       rate_limiter_now_ns());
}

static void on_tx_done(struct ev_handler *h, int res, uint32_t flags);

static int tx_submit(struct virtio_net *net, struct net_tx_req *r, struct io_uring_sqe **prev)
{
    struct io_uring_sqe *sqe = evloop_sqe(net->loop, &r->ev);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_writev(sqe, net->fd, r->iov + r->first, r->niov, 0);
    /* In order on the wire: each write waits for the one before, and
     * still runs if that one failed. */
    if (*prev)
        (*prev)->flags |= IOSQE_IO_HARDLINK;
    *prev = sqe;
    return 0;
}

/* Pop and send TX chains (lock held, VMM thread). One batch at a time. */
static void tx_process(struct virtio_net *net)
{
    struct virtio_mmio *t = net->t;
    struct virtq *vq = virtio_mmio_work_queue(t, VIRTIO_NET_TXQ);
    struct io_uring_sqe *prev = NULL;
    unsigned n = 0;

    if (!vq || net->tx_inflight || net->tx_gate.closed)
        return;
    /* Room for the whole batch, so no link spans a submission. */
    if (io_uring_sq_space_left(&net->loop->ring) < NET_TX_BATCH)
        io_uring_submit(&net->loop->ring);
    do {
        while (n < NET_TX_BATCH) {
            struct net_tx_req *r = &net->tx[n];
            struct virtq_chain c;
            int rc = virtq_pop(vq, t->mem, r->iov + 1, NET_TX_IOV_MAX, &c);

            if (rc == 0)
                break;
            if (rc < 0) {
                virtio_mmio_needs_reset(t, rc == -ELOOP    ? "TX descriptor loop"
                                           : rc == -EFAULT ? "TX buffer outside guest RAM"
                                           : rc == -E2BIG  ? "TX chain of more than 64 buffers"
                                                           : "malformed TX ring or descriptor");
                goto out;
            }
            if (rate_limiter_enabled(&net->tx_gate.rl)) {
                uint64_t bytes = c.read_bytes > NET_HDR ? c.read_bytes - NET_HDR : 0;
                uint64_t now = rate_limiter_now_ns();
                if (!rate_limiter_consume(&net->tx_gate.rl, 1, bytes, now)) {
                    /* Back into the avail ring: taken again on resume. */
                    virtq_unpop(vq);
                    throttle(net, &net->tx_gate, 1, bytes, now);
                    goto out;
                }
            }
            rc = tx_prepare(net, r, &c);
            if (rc == 1 && net->mmds && tx_to_mmds(net, r))
                rc = 2; /* answered by the MMDS: never reaches the tap */
            if (rc < 0) {
                virtio_mmio_needs_reset(t, c.nwrite ? "TX chain with device-writable buffers"
                                                    : "TX chain shorter than the 12-byte header");
                goto out;
            }
            if (rc == 1 && tx_submit(net, r, &prev) == 0) {
                r->head = c.head;
                r->generation = t->generation;
                n++;
                continue;
            }
            if (rc == 1)
                net->stats.tx_errors++;
            if (rc == 2)
                net->stats.tx_frames++;
            virtq_push(vq, c.head, 0);
            net->tx_pushed = true;
        }
        if (n)
            break;
    } while (virtq_enable_notify(vq));
out:
    net->tx_inflight = n;
    if (mmds_pending(net))
        rx_process(net);
    signal_later(net);
}

static void on_tx_done(struct ev_handler *h, int res, uint32_t flags)
{
    struct net_tx_req *r = container_of(h, struct net_tx_req, ev);
    struct virtio_net *net = r->net;
    struct virtio_mmio *t = net->t;
    struct virtq *vq;

    (void)flags;
    pthread_mutex_lock(&t->lock);
    if (res < 0 || (uint32_t)res != r->bytes) {
        net->stats.tx_errors++;
        if (log_ratelimit(&net->log_rl, 5))
            log_warn("virtio-net %s: TX write of %u bytes failed: %s", net->name, r->bytes,
                     res < 0 ? strerror(-res) : "short write");
    } else {
        net->stats.tx_frames++;
        net->stats.tx_bytes += r->bytes - NET_HDR;
    }
    vq = virtio_mmio_live_queue(t, VIRTIO_NET_TXQ);
    /* After a reset the chain is not the guest's to get back. */
    if (vq && r->generation == t->generation) {
        virtq_push(vq, r->head, 0);
        net->tx_pushed = true;
    }
    if (--net->tx_inflight == 0)
        tx_process(net);
    signal_later(net);
    pthread_mutex_unlock(&t->lock);
}

/* ---- transport callbacks ---- */

static void on_cancelled(struct ev_handler *h, int res, uint32_t flags)
{
    (void)h;
    (void)res;
    (void)flags;
}

static int arm_wake(struct virtio_net *net)
{
    return evloop_read(net->loop, &net->wake_ev, net->wake_fd, &net->wake_buf,
                       sizeof(net->wake_buf));
}

/* The VMM thread's half of activate and reset. */
static void on_wake(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_net *net = container_of(h, struct virtio_net, wake_ev);

    (void)flags;
    if (res < 0 && res != -EAGAIN && res != -EINTR)
        return; /* ring torn down */
    if (net->t) {
        pthread_mutex_lock(&net->t->lock);
        rl_gate_flush(&net->rx_gate);
        rl_gate_flush(&net->tx_gate);
        rx_process(net);
        tx_process(net);
        pthread_mutex_unlock(&net->t->lock);
    }
    if (arm_wake(net))
        log_error("virtio-net %s: cannot re-arm the wake-up eventfd", net->name);
}

static void net_queue_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    struct virtio_net *net = dev;

    net->t = t;
    if (q == VIRTIO_NET_RXQ)
        rx_process(net);
    else if (q == VIRTIO_NET_TXQ)
        tx_process(net);
}

static void net_activate(void *dev, struct virtio_mmio *t)
{
    struct virtio_net *net = dev;

    net->t = t;
    set_offload(net, tap_offload(t));
    /* Buffers posted before DRIVER_OK were not announced to a live queue. */
    wake_vmm_thread(net);
}

static void net_reset(void *dev)
{
    struct virtio_net *net = dev;

    /* Held chains are dropped by generation; an outstanding read is
     * cancelled from the VMM thread. */
    if (net->offload)
        set_offload(net, 0);
    rl_gate_reset(&net->rx_gate);
    rl_gate_reset(&net->tx_gate);
    if (net->rx.inflight || net->rx_gate.stale || net->tx_gate.stale)
        wake_vmm_thread(net);
}

/* ---- snapshots ---- */

#define SNAP_TAG_NET SNAP_TAG('V', 'N', 'E', 'T')

/* Features and offloads are the transport's (activate re-applies them to
 * the new tap); the device adds the MAC the guest knows, which a restored
 * guest keeps even if it was generated, and the two rate limiters. */
static void net_save(void *dev, struct snap_writer *w)
{
    struct virtio_net *net = dev;
    size_t mark = snap_section_begin(w, SNAP_TAG_NET);

    snap_put_bytes(w, net->mac, 6);
    rate_limiter_save(&net->rx_gate.rl, w);
    rate_limiter_save(&net->tx_gate.rl, w);
    snap_section_end(w, mark);
}

static int net_load(void *dev, struct virtio_mmio *t, struct snap_reader *r)
{
    struct virtio_net *net = dev;
    struct snap_reader sec;
    struct rate_limiter rx, tx;
    uint8_t mac[6];
    uint64_t now = rate_limiter_now_ns();

    if (snap_section_enter(r, SNAP_TAG_NET, &sec, "virtio-net section"))
        return -EBADMSG;
    snap_get_bytes(&sec, mac, 6);
    if (!snap_error(&sec) && (mac[0] & 1))
        snap_fail(&sec, "virtio-net MAC is a multicast address");
    rate_limiter_load(&rx, &sec, now);
    rate_limiter_load(&tx, &sec, now);
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    net->t = t;
    memcpy(net->mac, mac, 6);
    net->rx_gate.rl = rx;
    net->tx_gate.rl = tx;
    return 0;
}

/* A read into receive buffers or writes from transmit buffers. The
 * snapshot code polls this while it runs the loop: a quiesced device whose
 * read could not be cancelled yet (submission queue full) tries again. */
static bool net_busy(void *dev)
{
    struct virtio_net *net = dev;

    if (net->rx.inflight && !net->rx.cancelling && net->t && net->t->quiesced)
        rx_process(net);
    return net->rx.inflight || net->tx_inflight;
}

const struct virtio_dev_ops virtio_net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2,
    .features = net_features,
    .config_size = sizeof(struct net_config_space),
    .read_config = net_read_config,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .save = net_save,
    .load = net_load,
    .busy = net_busy,
};

/* ---- creation ---- */

/* A locally administered unicast address: 06:xx:xx:xx:xx:xx. */
static void make_mac(uint8_t mac[6])
{
    mac[0] = 0x06;
    if (getrandom(mac + 1, 5, GRND_NONBLOCK) != 5) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        memcpy(mac + 1, &x, 5);
    }
}

static int tap_open(const char *name, char *err, size_t errlen)
{
    struct ifreq ifr;
    int fd, hdr = NET_HDR, rc;

    if (!name || !*name || strlen(name) >= IFNAMSIZ) {
        snprintf(err, errlen, "tap '%s': a name of 1 to %d characters is needed", name ? name : "",
                 IFNAMSIZ - 1);
        return -EINVAL;
    }
    /* TUNSETIFF would create a missing tap; the user names an existing one. */
    if (if_nametoindex(name) == 0) {
        snprintf(err, errlen,
                 "tap %s: no such network interface (create it first, e.g. 'ip tuntap add dev %s "
                 "mode tap')",
                 name, name);
        return -ENODEV;
    }
    /* O_NONBLOCK: io_uring then tries each read and write inline and arms
     * a poll when the tap is empty, instead of handing every request to
     * an io-wq worker thread (a blocking tap cannot be issued inline). */
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "tap %s: /dev/net/tun: %s", name, strerror(-rc));
        return rc;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    memcpy(ifr.ifr_name, name, strlen(name));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        rc = -errno;
        snprintf(err, errlen, "tap %s: %s", name,
                 rc == -EINVAL  ? "not a (single-queue) tap device"
                 : rc == -EBUSY ? "busy: another program (or another --net) has it open"
                 : rc == -EPERM
                     ? "permission denied (not the tap's owner or group, and no CAP_NET_ADMIN)"
                     : strerror(-rc));
        close(fd);
        return rc;
    }
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0ul) < 0) {
        rc = -errno;
        snprintf(err, errlen, "tap %s: setting the virtio-net header: %s", name, strerror(-rc));
        close(fd);
        return rc;
    }
    return fd;
}

int virtio_net_create(struct virtio_net **out, const struct net_config *cfg, struct evloop *loop,
                      char *err, size_t errlen)
{
    int fd = tap_open(cfg->tap, err, errlen);

    if (fd < 0)
        return fd;
    return virtio_net_create_fd(out, fd, true, cfg, loop, err, errlen);
}

int virtio_net_create_fd(struct virtio_net **out, int fd, bool is_tap, const struct net_config *cfg,
                         struct evloop *loop, char *err, size_t errlen)
{
    struct virtio_net *net = calloc(1, sizeof(*net));
    const char *name = cfg->tap ? cfg->tap : cfg->id ? cfg->id : "net";
    int rc;

    if (!net) {
        close(fd);
        snprintf(err, errlen, "tap %s: out of memory", name);
        return -ENOMEM;
    }
    net->fd = fd;
    net->is_tap = is_tap;
    net->loop = loop;
    net->link_up = true;
    /* Blocking: io_uring waits for it; a write never blocks (the counter
     * would have to reach 2^64 - 1). */
    net->wake_fd = eventfd(0, EFD_CLOEXEC);
    net->name = strdup(name);
    net->tx = calloc(NET_TX_BATCH, sizeof(*net->tx));
    net->rx.overflow = malloc(NET_HDR + NET_FRAME_LIMIT + 1);
    net->mtu = cfg->mtu ? cfg->mtu : VIRTIO_NET_MTU;
    net->frame_max = net->mtu + NET_FRAME_OVERHEAD;
    if (cfg->has_mac)
        memcpy(net->mac, cfg->mac, 6);
    else
        make_mac(net->mac);
    net->rx.ev.fn = on_rx_done;
    net->wake_ev.fn = on_wake;
    net->cancel_ev.fn = on_cancelled;
    net->signal_ev.fn = on_signal;
    rl_gate_init(&net->rx_gate, loop, &cfg->rx_rate_limiter, on_gate_timer, net);
    rl_gate_init(&net->tx_gate, loop, &cfg->tx_rate_limiter, on_gate_timer, net);
    for (unsigned i = 0; i < NET_TX_BATCH && net->tx; i++) {
        net->tx[i].net = net;
        net->tx[i].ev.fn = on_tx_done;
    }
    rc = !net->name || !net->tx || !net->rx.overflow ? -ENOMEM
         : net->wake_fd < 0                          ? -errno
                                                     : arm_wake(net);
    if (rc) {
        snprintf(err, errlen, "tap %s: %s", name, strerror(-rc));
        virtio_net_destroy(net);
        return rc;
    }
    *out = net;
    return 0;
}

void virtio_net_destroy(struct virtio_net *net)
{
    if (!net)
        return;
    if (net->fd >= 0)
        close(net->fd);
    if (net->wake_fd >= 0)
        close(net->wake_fd);
    free(net->tx);
    free(net->rx.overflow);
    free(net->name);
    if (net->mmds)
        mmds_net_fini(net->mmds);
    free(net->mmds);
    free(net);
}

int virtio_net_set_mmds(struct virtio_net *net, struct mmds *store)
{
    struct mmds_net *m = calloc(1, sizeof(*m));

    if (!m || mmds_net_init(m, store)) {
        free(m);
        return -ENOMEM;
    }
    net->mmds = m;
    return 0;
}

void virtio_net_mac(const struct virtio_net *net, uint8_t mac[6])
{
    memcpy(mac, net->mac, 6);
}

void virtio_net_get_stats(const struct virtio_net *net, struct virtio_net_stats *out)
{
    *out = net->stats;
}

unsigned virtio_net_inflight(const struct virtio_net *net)
{
    return (net->rx.inflight ? 1u : 0u) + net->tx_inflight;
}

void virtio_net_set_rate_limiters(struct virtio_net *net, const struct rate_limiter_config *rx,
                                  const struct rate_limiter_config *tx)
{
    if (net->t)
        pthread_mutex_lock(&net->t->lock);
    rl_gate_update(&net->rx_gate, rx);
    rl_gate_update(&net->tx_gate, tx);
    if (net->t)
        pthread_mutex_unlock(&net->t->lock);
}
