/*
 * virtio_vsock.c - virtio socket device (virtio 1.2 §5.10), stream sockets
 * bridged to host Unix sockets (the hybrid scheme, see virtio_vsock.h), on
 * the VMM thread's io_uring loop.
 *
 * Every connection has two bounded byte rings:
 *  - h2g: bytes read from the host socket, waiting for guest RX buffers.
 *    A read is only issued for what the guest's credit still allows
 *    (peer_buf_alloc - (tx_cnt - peer_fwd_cnt) minus what is buffered), so
 *    a guest that stops reading stops flint reading the host socket and
 *    the host writer blocks: memory stays bounded.
 *  - g2h: payload the guest sent, waiting to be written to the host
 *    socket. flint advertises buf_alloc = VSOCK_G2H_BUF_BYTES and fwd_cnt
 *    = bytes written to the socket, so a conforming guest never sends more
 *    than the ring holds; one that does is reset (its bytes were never
 *    accepted), and accepted bytes are never dropped.
 *
 * Packets to the guest come from per-connection pending flags (REQUEST,
 * RESPONSE, SHUTDOWN, CREDIT_UPDATE, RST) and data, served round robin
 * from a FIFO of connections with something to say, plus a small ring of
 * RST replies to packets for connections that do not exist. Nothing waits
 * on a full ring: when the guest posts no RX buffers, output waits.
 *
 * A connection is freed only when no I/O of its own is in flight and it
 * is not on the output FIFO; killing one shuts its socket down, which
 * completes outstanding reads and writes.
 *
 * Threads: activate and reset come from vCPU threads (they may not submit
 * to io_uring: they kill connections with shutdown(2) and wake the VMM
 * thread through an eventfd); everything else runs on the VMM thread. All
 * of it holds the transport lock.
 */
#define _GNU_SOURCE
#include "virtio_vsock.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HDR          VIRTIO_VSOCK_HDR_BYTES
#define BUF          VSOCK_CONN_BUF_BYTES
#define G2H_BUF      VSOCK_G2H_BUF_BYTES
#define G2H_CAP      (G2H_BUF + 64) /* payload plus the "OK <port>\n" line */
#define PKT_MAX      (64u << 10)    /* largest payload of one packet (Linux: 64 KiB) */
#define IOV_MAX_VS   64             /* descriptors of one chain */
#define HASH_BUCKETS 256
#define RST_RING     64         /* RST replies to unknown connections */
#define LINE_MAX_VS  32         /* "CONNECT 4294967295\n" fits */
#define TX_BUDGET    256        /* TX chains per pass before other work */
#define PORT_SPAN    (1u << 30) /* host ports [2^30, 2^31) */

_Static_assert(sizeof(struct virtio_vsock_hdr) == HDR, "virtio_vsock_hdr is 44 bytes");

enum {
    P_REQUEST = 1,
    P_RESPONSE = 2,
    P_SHUTDOWN = 4, /* SHUTDOWN with SEND: the host side reached end of stream */
    P_CREDIT = 8,
    P_RST = 16,
};

enum conn_state {
    C_HANDSHAKE,  /* host socket accepted, reading "CONNECT <port>\n" */
    C_REQUESTED,  /* REQUEST to the guest pending or sent, awaiting RESPONSE */
    C_CONNECTING, /* guest REQUEST: connecting to <uds_path>_<port> */
    C_OPEN,       /* established */
    C_CLOSING,    /* only an RST left to send, then killed */
};

struct vsock_conn {
    struct virtio_vsock *vs;
    struct vsock_conn *hnext;               /* hash chain (live connections) */
    struct vsock_conn *out_next;            /* output FIFO */
    struct vsock_conn *all_prev, *all_next; /* every connection not yet freed */
    enum conn_state state;
    bool dead;   /* out of the table; freed once idle */
    bool queued; /* on the output FIFO */
    bool recv_busy, send_busy, connect_busy, timer_busy;
    bool host_eof;       /* the host socket reached end of stream */
    bool peer_shut_rcv;  /* the guest will receive no more */
    bool peer_shut_send; /* the guest will send no more */
    bool sent_shutdown;  /* SHUTDOWN(SEND) went to the guest */
    bool fd_shut_wr;     /* shutdown(fd, SHUT_WR) done */
    uint8_t pending;     /* P_* */
    uint64_t request_ns; /* CLOCK_MONOTONIC when REQUEST went to the guest; 0: not yet */
    int fd;
    uint32_t local_port; /* the host side's port */
    uint32_t peer_port;  /* the guest's port */
    /* host -> guest */
    uint8_t *h2g;
    uint32_t h2g_head, h2g_len;
    uint32_t tx_cnt; /* payload bytes sent to the guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt;
    /* guest -> host */
    uint8_t *g2h;
    uint32_t g2h_head, g2h_len;
    uint32_t g2h_extra; /* leading bytes that are flint's (the OK line) */
    uint32_t rx_cnt;    /* payload bytes accepted from the guest */
    uint32_t fwd_cnt;   /* ... of them written to the host socket */
    uint32_t fwd_told;  /* fwd_cnt the guest last heard */
    struct ev_handler recv_ev, send_ev, connect_ev, timer_ev;
    struct sockaddr_un addr; /* connect target (kept for the async connect) */
    char line[LINE_MAX_VS];
    unsigned line_len;
};

struct rst_reply {
    uint32_t src_port, dst_port; /* of the RST: flint's port, the guest's */
};

struct virtio_vsock {
    uint64_t guest_cid;
    char *uds_path;
    int listen_fd;
    struct evloop *loop;
    struct virtio_mmio *t;
    struct ev_handler accept_ev, wake_ev, signal_ev, cancel_ev;
    bool accept_busy;
    int wake_fd;
    uint64_t wake_buf;
    struct vsock_conn *table[HASH_BUCKETS];
    struct vsock_conn *out_head, *out_tail;
    struct vsock_conn *all; /* every connection, dead ones included, until freed */
    struct rst_reply rst[RST_RING];
    unsigned rst_head, rst_len;
    unsigned nconns; /* in the table */
    uint32_t next_port;
    bool event_pending; /* a TRANSPORT_RESET event waits for a buffer */
    bool reset_pending; /* the driver reset the device; connections still to drop */
    bool rx_pushed, tx_pushed, ev_pushed;
    struct virtio_vsock_stats stats;
    struct log_ratelimit log_rl;
    struct iovec iov[IOV_MAX_VS];
};

static void conn_update(struct vsock_conn *c);
static void on_timer(struct ev_handler *h, int res, uint32_t flags);
static void rx_process(struct virtio_vsock *vs);
static void signal_later(struct virtio_vsock *vs);
static void apply_reset(struct virtio_vsock *vs);

/* After host-side I/O: packets to the guest, and its interrupt. */
static void output(struct virtio_vsock *vs)
{
    rx_process(vs);
    signal_later(vs);
}

static bool wants_log(struct virtio_vsock *vs)
{
    return log_ratelimit(&vs->log_rl, 10);
}

/* ---- the connection table ---- */

static unsigned bucket(uint32_t local, uint32_t peer)
{
    uint32_t h = local * 0x9e3779b1u ^ peer * 0x85ebca6bu;
    return (h ^ (h >> 16)) % HASH_BUCKETS;
}

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
    for (struct vsock_conn *c = vs->table[bucket(local, peer)]; c; c = c->hnext)
        if (c->local_port == local && c->peer_port == peer)
            return c;
    return NULL;
}

static bool local_port_used(struct virtio_vsock *vs, uint32_t local)
{
    for (unsigned b = 0; b < HASH_BUCKETS; b++)
        for (struct vsock_conn *c = vs->table[b]; c; c = c->hnext)
            if (c->local_port == local)
                return true;
    return false;
}

static void table_insert(struct virtio_vsock *vs, struct vsock_conn *c)
{
    unsigned b = bucket(c->local_port, c->peer_port);

    c->hnext = vs->table[b];
    vs->table[b] = c;
}

static void table_remove(struct virtio_vsock *vs, struct vsock_conn *c)
{
    struct vsock_conn **p = &vs->table[bucket(c->local_port, c->peer_port)];

    for (; *p; p = &(*p)->hnext)
        if (*p == c) {
            *p = c->hnext;
            return;
        }
}

static struct vsock_conn *conn_new(struct virtio_vsock *vs, int fd)
{
    struct vsock_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->h2g = malloc(BUF);
    c->g2h = malloc(G2H_CAP);
    if (!c->h2g || !c->g2h) {
        free(c->h2g);
        free(c->g2h);
        free(c);
        return NULL;
    }
    c->vs = vs;
    c->fd = fd;
    c->all_next = vs->all;
    if (vs->all)
        vs->all->all_prev = c;
    vs->all = c;
    vs->nconns++;
    vs->stats.conns_live = vs->nconns;
    return c;
}

static void conn_free(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;

    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        vs->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    if (c->fd >= 0)
        close(c->fd);
    free(c->h2g);
    free(c->g2h);
    free(c);
}

static void conn_free_if_idle(struct vsock_conn *c)
{
    if (c->dead && !c->queued && !c->recv_busy && !c->send_busy && !c->connect_busy &&
        !c->timer_busy)
        conn_free(c);
}

static void on_cancelled(struct ev_handler *h, int res, uint32_t flags)
{
    (void)h;
    (void)res;
    (void)flags;
}

/* Stop the REQUEST timer early (VMM thread); its completion frees. */
static void cancel_timer(struct vsock_conn *c)
{
    struct io_uring_sqe *sqe;

    if (!c->timer_busy)
        return;
    sqe = evloop_sqe(c->vs->loop, &c->vs->cancel_ev);
    if (!sqe)
        return; /* it fires within VSOCK_REQUEST_TIMEOUT_MS anyway */
    io_uring_prep_cancel(sqe, &c->timer_ev, 0);
    io_uring_sqe_set_data(sqe, &c->vs->cancel_ev);
}

/* Forget the connection: out of the table, its socket shut down (which
 * completes its outstanding I/O), freed once idle. No packet is sent. */
static void conn_kill(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;

    if (c->dead)
        return;
    if (c->state != C_HANDSHAKE || c->local_port)
        table_remove(vs, c);
    c->dead = true;
    c->pending = 0;
    vs->nconns--;
    vs->stats.conns_live = vs->nconns;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    cancel_timer(c);
    conn_free_if_idle(c);
}

/* Send RST to the guest, then forget the connection. */
static void conn_close_rst(struct vsock_conn *c)
{
    if (c->dead)
        return;
    if (c->state == C_HANDSHAKE) {
        conn_kill(c);
        return;
    }
    c->state = C_CLOSING;
    c->pending = P_RST;
    c->h2g_len = 0;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    conn_update(c);
}

/* ... because something went wrong (counted). */
static void conn_reset(struct vsock_conn *c)
{
    if (!c->dead)
        c->vs->stats.conns_reset++;
    conn_close_rst(c);
}

/* ---- credit ---- */

/* Payload bytes the guest can still take beyond what was sent. */
static uint32_t peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

    return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Would the guest, which last heard fwd_told, benefit from an update?
 * When it believes half the buffer or more is in use and some of that
 * has since gone out. */
static bool credit_update_due(const struct vsock_conn *c)
{
    return c->rx_cnt - c->fwd_told >= G2H_BUF / 2 && c->fwd_cnt != c->fwd_told;
}

/* ---- output FIFO ---- */

static bool conn_has_output(const struct vsock_conn *c)
{
    if (c->dead)
        return false;
    if (c->pending)
        return true;
    return c->state == C_OPEN && c->h2g_len && !c->peer_shut_rcv && peer_credit(c);
}

static void out_push(struct virtio_vsock *vs, struct vsock_conn *c)
{
    c->queued = true;
    c->out_next = NULL;
    if (vs->out_tail)
        vs->out_tail->out_next = c;
    else
        vs->out_head = c;
    vs->out_tail = c;
}

static struct vsock_conn *out_pop(struct virtio_vsock *vs)
{
    struct vsock_conn *c = vs->out_head;

    if (!c)
        return NULL;
    vs->out_head = c->out_next;
    if (!vs->out_head)
        vs->out_tail = NULL;
    c->queued = false;
    return c;
}

static void rst_reply(struct virtio_vsock *vs, uint32_t src_port, uint32_t dst_port)
{
    if (vs->rst_len == RST_RING) {
        if (wants_log(vs))
            log_warn("virtio-vsock: RST replies pile up (guest sends to unknown connections "
                     "faster than it reads); dropping one");
        return;
    }
    vs->rst[(vs->rst_head + vs->rst_len++) % RST_RING] =
        (struct rst_reply){.src_port = src_port, .dst_port = dst_port};
}

/* ---- host socket I/O ---- */

static void arm_recv(struct vsock_conn *c);
static void arm_send(struct vsock_conn *c);

static void on_recv(struct ev_handler *h, int res, uint32_t flags);

/* Parse "CONNECT <port>\n" at the start of the line buffer. Returns the
 * line's length including '\n', 0 if incomplete, -1 if malformed. */
static int parse_connect(const char *s, unsigned n, uint32_t *port)
{
    static const char kw[] = "CONNECT ";
    const unsigned kwlen = sizeof(kw) - 1;
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < n && i < kwlen; i++)
        if (s[i] != kw[i])
            return -1;
    if (n <= kwlen)
        return 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > UINT32_MAX || i - kwlen >= 10)
            return -1;
    }
    if (i == n)
        return n >= LINE_MAX_VS ? -1 : 0;
    if (i == kwlen || s[i] != '\n')
        return -1;
    *port = (uint32_t)v;
    return (int)i + 1;
}

static uint32_t alloc_host_port(struct virtio_vsock *vs)
{
    for (unsigned tries = 0; tries < 2 * VSOCK_MAX_CONNS + 2; tries++) {
        uint32_t p = VSOCK_HOST_PORT_FIRST + vs->next_port++ % PORT_SPAN;
        if (!local_port_used(vs, p))
            return p;
    }
    return 0;
}

static void handshake_line(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;
    uint32_t port = 0;
    int n = parse_connect(c->line, c->line_len, &port);

    if (n == 0) {
        arm_recv(c);
        return;
    }
    if (n < 0) {
        if (wants_log(vs))
            log_warn("virtio-vsock %s: a host client sent a bad CONNECT line; closing it",
                     vs->uds_path);
        vs->stats.conns_refused++;
        conn_kill(c);
        return;
    }
    c->local_port = alloc_host_port(vs);
    if (!c->local_port) {
        vs->stats.conns_refused++;
        conn_kill(c);
        return;
    }
    c->peer_port = port;
    /* Bytes after the line are the first data for the guest. */
    memcpy(c->h2g, c->line + n, c->line_len - (unsigned)n);
    c->h2g_len = c->line_len - (unsigned)n;
    c->state = C_REQUESTED;
    c->pending = P_REQUEST;
    table_insert(vs, c);
    /* The handshake's timer ends now; its completion (on_timer) arms the
     * REQUEST's own. */
    cancel_timer(c);
    conn_update(c);
}

static void arm_recv(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;
    struct io_uring_sqe *sqe;
    void *buf;
    uint32_t room;

    if (c->dead || c->recv_busy || c->host_eof)
        return;
    if (c->state == C_HANDSHAKE) {
        buf = c->line + c->line_len;
        room = LINE_MAX_VS - c->line_len;
    } else {
        uint32_t credit = peer_credit(c), tail;
        if (c->state != C_OPEN || c->peer_shut_rcv || credit <= c->h2g_len)
            return;
        room = BUF - c->h2g_len;
        if (room > credit - c->h2g_len)
            room = credit - c->h2g_len;
        tail = (c->h2g_head + c->h2g_len) % BUF;
        if (room > BUF - tail)
            room = BUF - tail;
        if (!room)
            return;
        buf = c->h2g + tail;
    }
    sqe = evloop_sqe(vs->loop, &c->recv_ev);
    if (!sqe) {
        log_warn("virtio-vsock %s: io_uring queue full; resetting a connection", vs->uds_path);
        conn_reset(c);
        return;
    }
    io_uring_prep_recv(sqe, c->fd, buf, room, 0);
    io_uring_sqe_set_data(sqe, &c->recv_ev);
    c->recv_busy = true;
}

static void on_recv(struct ev_handler *h, int res, uint32_t flags)
{
    struct vsock_conn *c = container_of(h, struct vsock_conn, recv_ev);
    struct virtio_vsock *vs = c->vs;

    (void)flags;
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    c->recv_busy = false;
    if (c->dead) {
        conn_free_if_idle(c);
    } else if (c->state == C_HANDSHAKE) {
        if (res <= 0) {
            conn_kill(c);
        } else {
            c->line_len += (unsigned)res;
            handshake_line(c);
        }
    } else if (c->state != C_CLOSING) {
        if (res > 0) {
            c->h2g_len += (uint32_t)res;
            conn_update(c);
        } else if (res == 0) {
            c->host_eof = true;
            conn_update(c);
        } else if (res != -EINTR && res != -EAGAIN) {
            conn_reset(c);
        } else {
            arm_recv(c);
        }
    }
    output(vs);
    pthread_mutex_unlock(&vs->t->lock);
}

static void arm_send(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;
    struct io_uring_sqe *sqe;
    uint32_t n;

    if (c->dead || c->send_busy || !c->g2h_len || c->state == C_CLOSING)
        return;
    n = c->g2h_len;
    if (n > G2H_CAP - c->g2h_head)
        n = G2H_CAP - c->g2h_head;
    sqe = evloop_sqe(vs->loop, &c->send_ev);
    if (!sqe) {
        log_warn("virtio-vsock %s: io_uring queue full; resetting a connection", vs->uds_path);
        conn_reset(c);
        return;
    }
    io_uring_prep_send(sqe, c->fd, c->g2h + c->g2h_head, n, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, &c->send_ev);
    c->send_busy = true;
}

static void on_send(struct ev_handler *h, int res, uint32_t flags)
{
    struct vsock_conn *c = container_of(h, struct vsock_conn, send_ev);
    struct virtio_vsock *vs = c->vs;

    (void)flags;
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    c->send_busy = false;
    if (c->dead) {
        conn_free_if_idle(c);
    } else if (c->state != C_CLOSING) {
        if (res > 0) {
            uint32_t n = (uint32_t)res, mine = n < c->g2h_extra ? n : c->g2h_extra;
            c->g2h_extra -= mine;
            c->fwd_cnt += n - mine;
            c->g2h_head = (c->g2h_head + n) % G2H_CAP;
            c->g2h_len -= n;
            if (credit_update_due(c))
                c->pending |= P_CREDIT;
            conn_update(c);
        } else if (res != -EINTR && res != -EAGAIN) {
            /* The host side is gone (EPIPE, ECONNRESET): the guest's
             * bytes cannot be delivered. */
            conn_reset(c);
        } else {
            arm_send(c);
        }
    }
    output(vs);
    pthread_mutex_unlock(&vs->t->lock);
}

static void on_connect(struct ev_handler *h, int res, uint32_t flags)
{
    struct vsock_conn *c = container_of(h, struct vsock_conn, connect_ev);
    struct virtio_vsock *vs = c->vs;

    (void)flags;
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    c->connect_busy = false;
    if (c->dead) {
        conn_free_if_idle(c);
    } else if (res < 0 || fcntl(c->fd, F_SETFL, 0) < 0) {
        vs->stats.conns_refused++;
        conn_close_rst(c);
    } else {
        c->state = C_OPEN;
        c->pending |= P_RESPONSE;
        vs->stats.conns_opened++;
        conn_update(c);
    }
    output(vs);
    pthread_mutex_unlock(&vs->t->lock);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Of a connection in C_REQUESTED: how long the guest still has to answer.
 * A REQUEST not sent yet (no room in the RX queue) waits a whole period. */
static uint64_t request_time_left_ns(const struct vsock_conn *c)
{
    uint64_t full = VSOCK_REQUEST_TIMEOUT_MS * 1000000ull, now = mono_ns();

    if (!c->request_ns)
        return full;
    return now - c->request_ns >= full ? 0 : full - (now - c->request_ns);
}

static void on_timer(struct ev_handler *h, int res, uint32_t flags)
{
    struct vsock_conn *c = container_of(h, struct vsock_conn, timer_ev);
    struct virtio_vsock *vs = c->vs;

    (void)res;
    (void)flags;
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    c->timer_busy = false;
    if (c->dead) {
        conn_free_if_idle(c);
    } else if (c->state == C_HANDSHAKE) {
        if (wants_log(vs))
            log_warn("virtio-vsock %s: a host client sent no \"CONNECT <port>\" line within %u "
                     "ms; closing it",
                     vs->uds_path, VSOCK_HANDSHAKE_TIMEOUT_MS);
        vs->stats.conns_refused++;
        conn_close_rst(c);
    } else if (c->state == C_REQUESTED && request_time_left_ns(c)) {
        /* The handshake's timer: the REQUEST gets its own full time. */
        if (evloop_timeout(vs->loop, &c->timer_ev, request_time_left_ns(c)) == 0)
            c->timer_busy = true;
    } else if (c->state == C_REQUESTED) {
        if (wants_log(vs))
            log_warn("virtio-vsock %s: the guest did not answer a connection to port %u within "
                     "%u ms; closing the host client",
                     vs->uds_path, c->peer_port, VSOCK_REQUEST_TIMEOUT_MS);
        vs->stats.conns_refused++;
        conn_close_rst(c);
    }
    output(vs);
    pthread_mutex_unlock(&vs->t->lock);
}

/* After any change: the end of both directions, output and I/O to arm. */
static void conn_update(struct vsock_conn *c)
{
    struct virtio_vsock *vs = c->vs;

    if (c->dead)
        return;
    if (c->state == C_OPEN) {
        /* Guest finished sending and everything went out: pass the end on. */
        if (c->peer_shut_send && !c->g2h_len && !c->fd_shut_wr) {
            shutdown(c->fd, SHUT_WR);
            c->fd_shut_wr = true;
        }
        /* Host finished sending and everything reached the guest. */
        if (c->host_eof && !c->h2g_len && !c->sent_shutdown && !c->peer_shut_rcv)
            c->pending |= P_SHUTDOWN;
        /* Both directions done: close with RST, as Linux does. */
        if (c->fd_shut_wr && (c->sent_shutdown || c->peer_shut_rcv) && !(c->pending & P_SHUTDOWN)) {
            c->state = C_CLOSING;
            c->pending = P_RST;
        }
    }
    if (c->state == C_OPEN || c->state == C_HANDSHAKE)
        arm_recv(c);
    if (c->state == C_OPEN)
        arm_send(c);
    if (!c->queued && conn_has_output(c))
        out_push(vs, c);
}

/* ---- packets to the guest (RX queue) ---- */

static void fill_hdr(struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint32_t src_port,
                     uint32_t dst_port, uint16_t op)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = VSOCK_HOST_CID;
    h->dst_cid = vs->guest_cid;
    h->src_port = src_port;
    h->dst_port = dst_port;
    h->type = VIRTIO_VSOCK_TYPE_STREAM;
    h->op = op;
}

/* Build the next packet of connection c (which has output) into the
 * chain: iov[0..n), `room` writable bytes, at least a header. Returns the
 * bytes written. */
static uint32_t conn_packet(struct virtio_vsock *vs, struct vsock_conn *c, struct iovec *iov,
                            unsigned n, uint64_t room)
{
    struct virtio_vsock_hdr h;
    uint32_t payload = 0;

    if (c->pending & P_RST) {
        fill_hdr(vs, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RST);
        c->pending = 0;
    } else if (c->pending & P_RESPONSE) {
        fill_hdr(vs, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RESPONSE);
        c->pending &= (uint8_t)~P_RESPONSE;
    } else if (c->pending & P_REQUEST) {
        fill_hdr(vs, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_REQUEST);
        c->pending &= (uint8_t)~P_REQUEST;
        c->request_ns = mono_ns();
        /* A guest that never answers must not hold the host client. */
        if (!c->timer_busy &&
            evloop_timeout(vs->loop, &c->timer_ev, VSOCK_REQUEST_TIMEOUT_MS * 1000000ull) == 0)
            c->timer_busy = true;
    } else if (c->state == C_OPEN && c->h2g_len && !c->peer_shut_rcv && peer_credit(c) &&
               room > HDR) {
        uint32_t first;
        payload = c->h2g_len;
        if (payload > peer_credit(c))
            payload = peer_credit(c);
        if (payload > room - HDR)
            payload = (uint32_t)(room - HDR);
        fill_hdr(vs, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RW);
        h.len = payload;
        first = BUF - c->h2g_head;
        if (first > payload)
            first = payload;
        iov_copy_to(iov, n, HDR, c->h2g + c->h2g_head, first);
        iov_copy_to(iov, n, HDR + first, c->h2g, payload - first);
        c->h2g_head = (c->h2g_head + payload) % BUF;
        c->h2g_len -= payload;
        c->tx_cnt += payload;
        vs->stats.rx_bytes += payload;
    } else if (c->pending & P_SHUTDOWN) {
        fill_hdr(vs, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_SHUTDOWN);
        h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
        c->pending &= (uint8_t)~P_SHUTDOWN;
        c->sent_shutdown = true;
    } else {
        /* P_CREDIT, or data for a buffer with room for a header only. */
        fill_hdr(vs, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    }
    h.buf_alloc = G2H_BUF;
    h.fwd_cnt = c->fwd_cnt;
    c->fwd_told = c->fwd_cnt;
    c->pending &= (uint8_t)~P_CREDIT; /* every packet carries the credit */
    iov_copy_to(iov, n, 0, &h, HDR);
    return HDR + payload;
}

/* Take one RX chain; 1 with iov filled, 0 if none, -1 if the ring broke. */
static int rx_chain(struct virtio_vsock *vs, struct virtq *vq, struct virtq_chain *ch)
{
    int rc = virtq_pop(vq, vs->t->mem, vs->iov, IOV_MAX_VS, ch);

    if (rc == 0)
        return 0;
    if (rc < 0 || ch->nread || ch->write_bytes < HDR) {
        virtio_mmio_needs_reset(vs->t, rc == -ELOOP    ? "RX descriptor loop"
                                       : rc == -EFAULT ? "RX buffer outside guest RAM"
                                       : rc == -E2BIG  ? "RX chain of more than 64 buffers"
                                       : rc < 0        ? "malformed RX ring or descriptor"
                                       : ch->nread     ? "RX chain with device-readable buffers"
                                                   : "RX buffer shorter than the 44-byte header");
        return -1;
    }
    return 1;
}

static void rx_process(struct virtio_vsock *vs)
{
    struct virtq *vq = vs->t ? virtio_mmio_work_queue(vs->t, VIRTIO_VSOCK_RXQ) : NULL;

    if (!vq)
        return;
    for (;;) {
        struct virtq_chain ch;
        struct vsock_conn *c = NULL;
        uint32_t len = 0;
        int rc;

        /* Anything to say? Skip connections that have nothing after all. */
        while (!vs->rst_len && vs->out_head && !conn_has_output(vs->out_head)) {
            c = out_pop(vs);
            conn_free_if_idle(c);
            c = NULL;
        }
        if (!vs->rst_len && !vs->out_head)
            break;
        rc = rx_chain(vs, vq, &ch);
        if (rc < 0)
            break;
        if (rc == 0) {
            /* No buffers: output waits for the guest to post some. */
            if (virtq_enable_notify(vq))
                continue;
            break;
        }
        if (vs->rst_len) {
            struct rst_reply r = vs->rst[vs->rst_head];
            struct virtio_vsock_hdr h;
            vs->rst_head = (vs->rst_head + 1) % RST_RING;
            vs->rst_len--;
            fill_hdr(vs, &h, r.src_port, r.dst_port, VIRTIO_VSOCK_OP_RST);
            iov_copy_to(vs->iov, ch.nwrite, 0, &h, HDR);
            len = HDR;
        } else {
            c = out_pop(vs);
            len = conn_packet(vs, c, vs->iov, ch.nwrite, ch.write_bytes);
        }
        virtq_push(vq, ch.head, len);
        vs->rx_pushed = true;
        vs->stats.rx_packets++;
        if (c) {
            if (c->state == C_CLOSING && !c->pending)
                conn_kill(c); /* may free c */
            else
                conn_update(c); /* reads resume as the buffer drains */
        }
    }
}

/* ---- packets from the guest (TX queue) ---- */

static void bad_packet(struct virtio_vsock *vs, const char *why, const struct virtio_vsock_hdr *h)
{
    vs->stats.bad_packets++;
    if (wants_log(vs))
        log_warn("virtio-vsock: dropped a guest packet (%s): op %u type %u src %llu:%u dst "
                 "%llu:%u len %u",
                 why, h->op, h->type, (unsigned long long)h->src_cid, h->src_port,
                 (unsigned long long)h->dst_cid, h->dst_port, h->len);
}

static void guest_request(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h)
{
    struct vsock_conn *c;
    struct io_uring_sqe *sqe;
    int fd, n;

    if (vs->nconns >= VSOCK_MAX_CONNS) {
        vs->stats.conns_refused++;
        if (wants_log(vs))
            log_warn("virtio-vsock: %u connections open; refusing guest port %u -> %u", vs->nconns,
                     h->src_port, h->dst_port);
        rst_reply(vs, h->dst_port, h->src_port);
        return;
    }
    /* Non-blocking for the connect: a listener whose backlog is full
     * refuses at once (EAGAIN) instead of parking the connect in an
     * io-wq worker that nothing can cancel; blocking again once
     * connected, so io_uring polls it for recv and send. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    c = fd >= 0 ? conn_new(vs, fd) : NULL;
    if (!c) {
        if (fd >= 0)
            close(fd);
        log_warn("virtio-vsock: no socket or memory for a guest connection to port %u",
                 h->dst_port);
        vs->stats.conns_refused++;
        rst_reply(vs, h->dst_port, h->src_port);
        return;
    }
    c->local_port = h->dst_port;
    c->peer_port = h->src_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->state = C_CONNECTING;
    c->recv_ev.fn = on_recv;
    c->send_ev.fn = on_send;
    c->connect_ev.fn = on_connect;
    c->timer_ev.fn = on_timer;
    table_insert(vs, c);
    c->addr.sun_family = AF_UNIX;
    n = snprintf(c->addr.sun_path, sizeof(c->addr.sun_path), "%s_%u", vs->uds_path, h->dst_port);
    sqe =
        n > 0 && (size_t)n < sizeof(c->addr.sun_path) ? evloop_sqe(vs->loop, &c->connect_ev) : NULL;
    if (!sqe) {
        vs->stats.conns_refused++;
        conn_close_rst(c);
        return;
    }
    io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->addr, sizeof(c->addr));
    io_uring_sqe_set_data(sqe, &c->connect_ev);
    c->connect_busy = true;
}

/* A packet for an existing connection c. */
static void conn_packet_in(struct virtio_vsock *vs, struct vsock_conn *c,
                           const struct virtio_vsock_hdr *h, const struct iovec *iov, unsigned n)
{
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    switch (h->op) {
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (c->state != C_REQUESTED) {
            bad_packet(vs, "RESPONSE out of turn", h);
            conn_reset(c);
            return;
        }
        c->state = C_OPEN;
        vs->stats.conns_opened++;
        cancel_timer(c);
        c->g2h_extra = c->g2h_len =
            (uint32_t)snprintf((char *)c->g2h, G2H_CAP, "OK %u\n", c->local_port);
        break;
    case VIRTIO_VSOCK_OP_RW: {
        uint32_t used = c->rx_cnt - c->fwd_cnt, tail, first;
        if (c->state != C_OPEN || c->peer_shut_send) {
            bad_packet(vs, "data on a connection not open for it", h);
            conn_reset(c);
            return;
        }
        if (h->len > G2H_BUF - used) {
            bad_packet(vs, "data beyond the credit flint granted", h);
            conn_reset(c);
            return;
        }
        tail = (c->g2h_head + c->g2h_len) % G2H_CAP;
        first = G2H_CAP - tail;
        if (first > h->len)
            first = h->len;
        iov_copy_from(iov, n, HDR, c->g2h + tail, first);
        iov_copy_from(iov, n, HDR + first, c->g2h, h->len - first);
        c->g2h_len += h->len;
        c->rx_cnt += h->len;
        vs->stats.tx_bytes += h->len;
        break;
    }
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (h->flags & VIRTIO_VSOCK_SHUTDOWN_RCV) {
            c->peer_shut_rcv = true;
            c->h2g_len = 0; /* nobody will read it */
        }
        if (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
            c->peer_shut_send = true;
        break;
    case VIRTIO_VSOCK_OP_RST:
        if (c->state == C_REQUESTED)
            vs->stats.conns_refused++;
        conn_kill(c);
        return;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        c->pending |= P_CREDIT;
        break;
    case VIRTIO_VSOCK_OP_REQUEST:
        bad_packet(vs, "REQUEST for an existing connection", h);
        conn_reset(c);
        return;
    default:
        bad_packet(vs, "unknown op", h);
        conn_reset(c);
        return;
    }
    conn_update(c);
}

/* One chain from the TX queue. */
static void tx_packet(struct virtio_vsock *vs, const struct iovec *iov, unsigned n, uint64_t bytes)
{
    struct virtio_vsock_hdr h;
    struct vsock_conn *c;

    if (bytes < HDR) {
        memset(&h, 0, sizeof(h));
        bad_packet(vs, "shorter than the 44-byte header", &h);
        return;
    }
    iov_copy_from(iov, n, 0, &h, HDR);
    if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
        bad_packet(vs, "wrong CID", &h);
        return;
    }
    if (h.len > bytes - HDR || h.len > PKT_MAX) {
        bad_packet(vs, "len beyond the buffer", &h);
        return;
    }
    if (h.op != VIRTIO_VSOCK_OP_RW)
        h.len = 0; /* payload only counts on RW */
    vs->stats.tx_packets++;
    c = conn_find(vs, h.dst_port, h.src_port);
    if (h.type != VIRTIO_VSOCK_TYPE_STREAM) {
        bad_packet(vs, "not a stream socket", &h);
        if (h.op != VIRTIO_VSOCK_OP_RST)
            rst_reply(vs, h.dst_port, h.src_port);
        return;
    }
    if (c && !c->dead && c->state != C_CLOSING && c->state != C_HANDSHAKE) {
        conn_packet_in(vs, c, &h, iov, n);
        return;
    }
    if (c && c->state == C_CLOSING)
        return; /* our RST is on its way */
    if (h.op == VIRTIO_VSOCK_OP_REQUEST) {
        guest_request(vs, &h);
        return;
    }
    if (h.op != VIRTIO_VSOCK_OP_RST)
        rst_reply(vs, h.dst_port, h.src_port);
}

static void tx_process(struct virtio_vsock *vs)
{
    struct virtq *vq = virtio_mmio_work_queue(vs->t, VIRTIO_VSOCK_TXQ);
    unsigned budget = TX_BUDGET;

    if (!vq)
        return;
    do {
        struct virtq_chain ch;
        int rc;

        while (budget && (rc = virtq_pop(vq, vs->t->mem, vs->iov, IOV_MAX_VS, &ch)) != 0) {
            if (rc < 0 || ch.nwrite) {
                virtio_mmio_needs_reset(vs->t, rc == -ELOOP    ? "TX descriptor loop"
                                               : rc == -EFAULT ? "TX buffer outside guest RAM"
                                               : rc == -E2BIG  ? "TX chain of more than 64 buffers"
                                               : rc < 0        ? "malformed TX ring or descriptor"
                                                        : "TX chain with device-writable buffers");
                return;
            }
            tx_packet(vs, vs->iov, ch.nread, ch.read_bytes);
            virtq_push(vq, ch.head, 0);
            vs->tx_pushed = true;
            budget--;
        }
        if (!budget) {
            /* Let other work run; come back through the wake-up path. */
            uint64_t one = 1;
            if (write(vs->wake_fd, &one, sizeof(one)) < 0)
                log_warn("virtio-vsock: eventfd write failed");
            return;
        }
    } while (virtq_enable_notify(vq));
}

/* ---- events ---- */

static void ev_process(struct virtio_vsock *vs)
{
    struct virtq *vq = vs->t ? virtio_mmio_work_queue(vs->t, VIRTIO_VSOCK_EVQ) : NULL;
    struct virtq_chain ch;
    struct virtio_vsock_event e = {.id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET};
    int rc = 0;

    if (!vq || !vs->event_pending)
        return;
    rc = virtq_pop(vq, vs->t->mem, vs->iov, IOV_MAX_VS, &ch);
    if (rc == 0)
        return;
    if (rc < 0 || ch.nread || ch.write_bytes < sizeof(e)) {
        virtio_mmio_needs_reset(vs->t, "malformed event queue buffer");
        return;
    }
    iov_copy_to(vs->iov, ch.nwrite, 0, &e, sizeof(e));
    virtq_push(vq, ch.head, sizeof(e));
    vs->ev_pushed = true;
    vs->event_pending = false;
}

/* ---- interrupts and the VMM thread ---- */

static void signal_locked(struct virtio_vsock *vs)
{
    if (vs->rx_pushed)
        virtio_mmio_signal_used(vs->t, VIRTIO_VSOCK_RXQ);
    if (vs->tx_pushed)
        virtio_mmio_signal_used(vs->t, VIRTIO_VSOCK_TXQ);
    if (vs->ev_pushed)
        virtio_mmio_signal_used(vs->t, VIRTIO_VSOCK_EVQ);
    vs->rx_pushed = vs->tx_pushed = vs->ev_pushed = false;
}

static void on_signal(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_vsock *vs = container_of(h, struct virtio_vsock, signal_ev);

    (void)res;
    (void)flags;
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    signal_locked(vs);
    pthread_mutex_unlock(&vs->t->lock);
}

static void signal_later(struct virtio_vsock *vs)
{
    if ((vs->rx_pushed || vs->tx_pushed || vs->ev_pushed) && evloop_defer(vs->loop, &vs->signal_ev))
        signal_locked(vs);
}

/* Everything the VMM thread does after an event, lock held. */
static void run_all(struct virtio_vsock *vs)
{
    tx_process(vs);
    rx_process(vs);
    ev_process(vs);
    signal_later(vs);
}

static int arm_accept(struct virtio_vsock *vs);

static void on_accept(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_vsock *vs = container_of(h, struct virtio_vsock, accept_ev);
    struct vsock_conn *c;

    (void)flags;
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    vs->accept_busy = false;
    if (res >= 0) {
        c = vs->nconns < VSOCK_MAX_CONNS ? conn_new(vs, res) : NULL;
        if (!c) {
            close(res);
            vs->stats.conns_refused++;
            if (wants_log(vs))
                log_warn("virtio-vsock %s: %u connections open; closing a new host client",
                         vs->uds_path, vs->nconns);
        } else {
            c->state = C_HANDSHAKE;
            c->recv_ev.fn = on_recv;
            c->send_ev.fn = on_send;
            c->connect_ev.fn = on_connect;
            c->timer_ev.fn = on_timer;
            arm_recv(c);
            /* A client that never sends its CONNECT line must not hold one
             * of the VSOCK_MAX_CONNS places. */
            if (evloop_timeout(vs->loop, &c->timer_ev, VSOCK_HANDSHAKE_TIMEOUT_MS * 1000000ull) ==
                0)
                c->timer_busy = true;
        }
    } else if (res != -EINTR && res != -EAGAIN && res != -ECONNABORTED && res != -EMFILE &&
               res != -ENFILE && res != -ENOBUFS && res != -ENOMEM) {
        log_error("virtio-vsock %s: accept: %s; no more host connections", vs->uds_path,
                  strerror(-res));
        pthread_mutex_unlock(&vs->t->lock);
        return;
    }
    if (arm_accept(vs))
        log_error("virtio-vsock %s: cannot wait for host connections", vs->uds_path);
    pthread_mutex_unlock(&vs->t->lock);
}

static int arm_accept(struct virtio_vsock *vs)
{
    struct io_uring_sqe *sqe = evloop_sqe(vs->loop, &vs->accept_ev);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_accept(sqe, vs->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, &vs->accept_ev);
    vs->accept_busy = true;
    return 0;
}

static int arm_wake(struct virtio_vsock *vs)
{
    return evloop_read(vs->loop, &vs->wake_ev, vs->wake_fd, &vs->wake_buf, sizeof(vs->wake_buf));
}

static void on_wake(struct ev_handler *h, int res, uint32_t flags)
{
    struct virtio_vsock *vs = container_of(h, struct virtio_vsock, wake_ev);

    (void)flags;
    if (res < 0 && res != -EAGAIN && res != -EINTR)
        return; /* ring torn down */
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    /* I/O that activation or a vCPU-thread change left unarmed. */
    for (struct vsock_conn *c = vs->all, *next; c; c = next) {
        next = c->all_next;
        conn_update(c);
    }
    run_all(vs);
    pthread_mutex_unlock(&vs->t->lock);
    if (arm_wake(vs))
        log_error("virtio-vsock %s: cannot re-arm the wake-up eventfd", vs->uds_path);
}

static void wake_vmm_thread(struct virtio_vsock *vs)
{
    uint64_t one = 1;

    if (write(vs->wake_fd, &one, sizeof(one)) < 0)
        log_warn("virtio-vsock %s: eventfd write: %s", vs->uds_path, strerror(errno));
}

/* Drop every connection the guest knows of (not host clients still
 * sending their CONNECT line), without packets. */
static void kill_guest_conns(struct virtio_vsock *vs)
{
    struct vsock_conn *c, *next;

    /* Empty the output FIFO; connections that survive queue again. */
    while (vs->out_head)
        out_pop(vs);
    vs->rst_len = 0;
    for (c = vs->all; c; c = next) {
        /* A REQUEST not yet sent: the guest never heard of it. */
        bool unknown =
            c->state == C_HANDSHAKE || (c->state == C_REQUESTED && (c->pending & P_REQUEST));
        next = c->all_next;
        if (c->dead)
            conn_free_if_idle(c);
        else if (!unknown)
            conn_kill(c); /* may free c */
        else if (conn_has_output(c))
            out_push(vs, c);
    }
}

/* The VMM thread's half of a device reset (lock held). */
static void apply_reset(struct virtio_vsock *vs)
{
    if (!vs->reset_pending)
        return;
    vs->reset_pending = false;
    kill_guest_conns(vs);
}

/* ---- transport callbacks ---- */

static uint64_t vsock_features(void *dev)
{
    (void)dev;
    return 0;
}

static void vsock_read_config(void *dev, uint32_t off, uint8_t *data, unsigned len)
{
    struct virtio_vsock *vs = dev;
    uint8_t cfg[8];

    memcpy(cfg, &vs->guest_cid, 8);
    memcpy(data, cfg + off, len);
}

static void vsock_attach(void *dev, struct virtio_mmio *t)
{
    struct virtio_vsock *vs = dev;

    vs->t = t;
}

static void vsock_activate(void *dev, struct virtio_mmio *t)
{
    struct virtio_vsock *vs = dev;

    vs->t = t;
    wake_vmm_thread(vs);
}

static void vsock_queue_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    struct virtio_vsock *vs = dev;

    vs->t = t;
    apply_reset(vs);
    if (q == VIRTIO_VSOCK_TXQ)
        tx_process(vs);
    rx_process(vs);
    ev_process(vs);
    signal_later(vs);
}

/* vCPU thread: no system calls here (its seccomp filter has no
 * shutdown or close); the VMM thread drops the connections before it
 * does anything else for the device. */
static void vsock_reset(void *dev)
{
    struct virtio_vsock *vs = dev;

    vs->reset_pending = true;
    vs->event_pending = false;
    vs->rx_pushed = vs->tx_pushed = vs->ev_pushed = false;
    wake_vmm_thread(vs);
}

/* ---- snapshots ---- */

#define SNAP_TAG_VSOCK SNAP_TAG('V', 'S', 'C', 'K')

/* Connections are not saved: their host ends (Unix sockets) belong to
 * this process. A restored device drops every connection the guest knew
 * and posts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET once the event queue is
 * live (§5.10.6.6, as Firecracker does), so the guest's sockets fail and
 * its applications reconnect. */
static void vsock_save(void *dev, struct snap_writer *w)
{
    struct virtio_vsock *vs = dev;
    size_t mark = snap_section_begin(w, SNAP_TAG_VSOCK);

    snap_put_u64(w, vs->guest_cid);
    snap_section_end(w, mark);
}

static int vsock_load(void *dev, struct virtio_mmio *t, struct snap_reader *r)
{
    struct virtio_vsock *vs = dev;
    struct snap_reader sec;
    uint64_t cid;

    if (snap_section_enter(r, SNAP_TAG_VSOCK, &sec, "virtio-vsock section"))
        return -EBADMSG;
    cid = snap_get_u64(&sec);
    if (!snap_error(&sec) && cid != vs->guest_cid)
        snap_fail(&sec, "vsock guest_cid differs from the snapshot's");
    if (snap_section_leave(&sec)) {
        snap_fail(r, sec.what);
        return -EBADMSG;
    }
    vs->t = t;
    /* Done on the VMM thread (apply_reset), which the transport's
     * activate wakes; the event waits for a buffer (ev_process). */
    vs->reset_pending = true;
    vs->event_pending = (t->regs.status & VIRTIO_STATUS_DRIVER_OK) != 0;
    return 0;
}

/* Every write to guest memory happens synchronously under the lock; host
 * socket I/O fills only the device's own buffers. */
static bool vsock_busy(void *dev)
{
    (void)dev;
    return false;
}

const struct virtio_dev_ops virtio_vsock_ops = {
    .name = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .num_queues = 3,
    .features = vsock_features,
    .config_size = 8,
    .read_config = vsock_read_config,
    .attach = vsock_attach,
    .activate = vsock_activate,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
    .save = vsock_save,
    .load = vsock_load,
    .busy = vsock_busy,
};

void virtio_vsock_transport_reset(struct virtio_vsock *vs)
{
    pthread_mutex_lock(&vs->t->lock);
    apply_reset(vs);
    kill_guest_conns(vs);
    vs->event_pending = true;
    ev_process(vs);
    signal_later(vs);
    pthread_mutex_unlock(&vs->t->lock);
}

/* ---- creation ---- */

int virtio_vsock_create(struct virtio_vsock **out, const struct vsock_config *cfg,
                        struct evloop *loop, char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct virtio_vsock *vs;
    const char *path = cfg->uds_path ? cfg->uds_path : "";
    int rc = 0;

    /* Room for the longest "<path>_<port>" a guest can make us connect to. */
    if (!*path || strlen(path) + sizeof("_4294967295") > sizeof(addr.sun_path)) {
        snprintf(err, errlen,
                 "vsock uds_path '%s': a path of 1 to %zu bytes is needed (Unix socket paths "
                 "are short, and flint appends _<port>)",
                 path, sizeof(addr.sun_path) - sizeof("_4294967295"));
        return -EINVAL;
    }
    if (cfg->guest_cid < CONFIG_VSOCK_MIN_CID || cfg->guest_cid > UINT32_MAX) {
        snprintf(err, errlen, "vsock guest_cid %llu: must be 3 to 4294967295",
                 (unsigned long long)cfg->guest_cid);
        return -EINVAL;
    }
    vs = calloc(1, sizeof(*vs));
    if (!vs) {
        snprintf(err, errlen, "vsock %s: out of memory", path);
        return -ENOMEM;
    }
    vs->guest_cid = cfg->guest_cid;
    vs->loop = loop;
    vs->listen_fd = -1;
    vs->uds_path = strdup(path);
    vs->wake_fd = eventfd(0, EFD_CLOEXEC);
    vs->accept_ev.fn = on_accept;
    vs->wake_ev.fn = on_wake;
    vs->signal_ev.fn = on_signal;
    vs->cancel_ev.fn = on_cancelled;
    if (!vs->uds_path || vs->wake_fd < 0) {
        rc = vs->uds_path ? -errno : -ENOMEM;
        snprintf(err, errlen, "vsock %s: %s", path, strerror(-rc));
        goto fail;
    }
    memcpy(addr.sun_path, path, strlen(path));
    vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (vs->listen_fd < 0 || bind(vs->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "vsock uds_path %s: %s", path,
                 rc == -EADDRINUSE ? "already exists (a stale socket? remove it first)"
                                   : strerror(-rc));
        goto fail_nounlink;
    }
    if (listen(vs->listen_fd, 128) < 0 || (rc = arm_accept(vs)) != 0 || (rc = arm_wake(vs)) != 0) {
        rc = rc ? rc : -errno;
        snprintf(err, errlen, "vsock uds_path %s: %s", path, strerror(-rc));
        goto fail;
    }
    *out = vs;
    return 0;
fail:
    if (vs->listen_fd >= 0)
        unlink(path);
fail_nounlink:
    if (vs->listen_fd >= 0)
        close(vs->listen_fd);
    vs->listen_fd = -1;
    if (vs->wake_fd >= 0)
        close(vs->wake_fd);
    free(vs->uds_path);
    free(vs);
    return rc;
}

void virtio_vsock_destroy(struct virtio_vsock *vs)
{
    if (!vs)
        return;
    /* After evloop_fini nothing completes: free whatever is left. */
    while (vs->all)
        conn_free(vs->all);
    if (vs->listen_fd >= 0) {
        close(vs->listen_fd);
        unlink(vs->uds_path);
    }
    if (vs->wake_fd >= 0)
        close(vs->wake_fd);
    free(vs->uds_path);
    free(vs);
}

void virtio_vsock_get_stats(const struct virtio_vsock *vs, struct virtio_vsock_stats *out)
{
    *out = vs->stats;
}

unsigned virtio_vsock_conns(const struct virtio_vsock *vs)
{
    return vs->nconns;
}
