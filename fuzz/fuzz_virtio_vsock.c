/*
 * libFuzzer target: the virtio-vsock device (virtio 1.2 §5.10) on the
 * virtio-mmio transport, driven by a hostile "guest" and hostile host
 * processes on real Unix sockets, with io_uring doing the socket I/O.
 *
 * The input is a program of ops: register writes and reads, stores into
 * guest RAM, notifications of the RX (0), TX (1) and event (2) queues, a
 * sane driver handshake for all three queues, a well-formed TX packet with
 * fuzzer-chosen header fields (or ports mirrored from a packet the guest
 * received), a guest that consumes and re-posts its RX and event buffers,
 * host clients of uds_path ("CONNECT <port>\n" and data), listeners on
 * <uds_path>_<port> that accept, read, echo and close, device resets,
 * transport resets and event-loop steps. ASan and UBSan watch every access
 * flint makes: the device must never touch memory outside guest RAM,
 * crash, hang or leak, whatever either side does.
 *
 * One device serves the whole run. After each input the harness closes its
 * host sockets, resets the device and pumps the loop until no connection
 * and no socket I/O is left, so inputs are independent; every 64 inputs it
 * checks that no socket fd leaked.
 *
 * Seeds: fuzz/corpus/virtio-vsock/ comes from this file built with
 * FUZZ_VSOCK_GEN (no libFuzzer, no monitor code):
 *   cc -DFUZZ_VSOCK_GEN -Iguest-shim/include fuzz/fuzz_virtio_vsock.c -o gen
 *   ./gen fuzz/corpus/virtio-vsock
 */
#define _GNU_SOURCE
#include <virtio-spec.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The op set; each op's bytes follow it in the input (see the switch in
 * LLVMFuzzerTestOneInput and the emitters of the seed generator). */
enum op {
    OP_MMIO_WRITE,      /* off:2 (bits 9-10 pick the width) value:4 */
    OP_MMIO_READ,       /* off:2 */
    OP_MEM_WRITE,       /* at:3 len:1 bytes[len] */
    OP_NOTIFY,          /* queue:1 */
    OP_RUN,             /* one loop step that does not wait */
    OP_WAIT,            /* one loop step that waits up to a tick (few per input) */
    OP_HANDSHAKE,       /* qsize:1 features:1 [raw:8] layout:1 rx_size:2 */
    OP_GUEST_POLL,      /* the guest takes used RX/event buffers and posts them again */
    OP_TX_PKT,          /* see tx_packet() */
    OP_HOST_CONNECT,    /* kind:1 ... (see host_connect()) */
    OP_HOST_SEND,       /* slot:1 len:2 n:1 bytes[n] */
    OP_HOST_RECV,       /* slot:1 kind:1 */
    OP_HOST_SHUT,       /* slot:1 how:1 */
    OP_HOST_LISTEN,     /* listener:1 */
    OP_HOST_ACCEPT,     /* listener:1 */
    OP_HOST_UNLISTEN,   /* listener:1 */
    OP_DEV_RESET,       /* status 0 */
    OP_TRANSPORT_RESET, /* virtio_vsock_transport_reset */
    OP_TX_BURST,        /* count:1 - the last TX packet again count + 1 times, one notify */
    OP_COUNT,
};

/* TX_PKT mode bits. */
enum {
    TX_PORTS_LITERAL = 0,  /* src:4 dst:4 */
    TX_PORTS_MIRROR = 1,   /* which:1 - ports of a packet the guest received, swapped */
    TX_PORTS_LISTEN = 2,   /* src:1 (40000 + n) listener:1 (LISTEN_PORT0 + n % NLISTEN) */
    TX_PORTS_HOSTPORT = 3, /* src:1 (40000 + n) dst:1 (2^30 + n) */
    TX_CIDS = 4,           /* src_cid:8 dst_cid:8 instead of 3 and 2 */
    TX_TYPE = 8,           /* type:2 instead of STREAM */
    TX_NO_NOTIFY = 0x10,   /* post it without notifying the TX queue */
    TX_LIE = 0x20,         /* hdr_len:4 extra:1: header len and buffer size disagree */
    TX_SPLIT = 0x40,       /* cut:2: header and payload across two descriptors */
    TX_WIDE_FLAGS = 0x80,  /* flags:1 is followed by 3 more bytes */
};

#define GUEST_CID    3
#define NHOST        16
#define NLISTEN      4
#define LISTEN_PORT0 5000u
#define HDR          VIRTIO_VSOCK_HDR_BYTES

#ifndef FUZZ_VSOCK_GEN

#include "evloop.h"
#include "fuzz_common.h"
#include "guest_mem.h"
#include "util.h"
#include "virtio.h"
#include "virtio_vsock.h"

#include <flint-abi.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RAM_BYTES  (2 * MIB)
#define WINDOW     0x10000ull /* the harness's guest layout; OP_MEM_WRITE lands here */
#define WINDOW_SZ  0x64000u
#define RINGS(q)   ((q)*0x4000u) /* desc +0, avail +0x1000, used +0x2000 */
#define EV_BUFS    0xc000u       /* 8 bytes per event buffer */
#define RX_AREA    0x10000u
#define RX_AREA_SZ 0x20000u
#define TX_SMALL   0x30000u /* 16 slots of 4 KiB */
#define TX_BIG     0x40000u /* 2 slots of 0x11000 */
#define MAX_OPS    256
#define MAX_WAITS  4
#define TICK_NS    200000u
#define QUIESCE    3000 /* loop steps after an input, at most */

static struct guest_mem mem;
static struct evloop loop;
static struct virtio_vsock *vs;
static struct virtio_mmio t;
static struct fuzz_tick tick;
static unsigned base_pending; /* the device's own accept and wake-up reads */
static int base_sockets;
static char uds[64];
static int host_fd[NHOST];
static int listen_fd[NLISTEN];
static bool trace; /* FUZZ_VSOCK_TRACE=1: ops and counters on stderr, for seeds */

/* The driver the handshake set up, as the harness's guest sees it. */
static struct {
    uint16_t qsize; /* 0: no handshake yet */
    uint32_t rx_buf;
    uint32_t rx_cut; /* split RX chains: bytes in the first descriptor */
    bool rx_split;
    bool rx_deferred; /* no RX buffers posted yet */
    uint8_t ev_layout;
    uint16_t used_seen[3];
    uint16_t tx_next;
    uint64_t tx_gpa; /* the last TX packet, for OP_TX_BURST */
    uint32_t tx_len;
    struct virtio_vsock_hdr seen[4]; /* last packets received, [0] newest */
    uint32_t fwd;                    /* RW payload bytes received */
} drv;

static uint8_t *ram(uint32_t off)
{
    return mem.map + WINDOW + off;
}

/* Up to `n` input bytes into dst (no more than `cap`, at most 64 KiB);
 * the rest of cap gets a pattern. */
static void take_bytes(const uint8_t **p, size_t *left, uint8_t *dst, uint32_t cap, uint32_t n)
{
    static uint8_t pattern[66000];

    if (!pattern[0])
        for (uint32_t i = 0; i < sizeof(pattern); i++)
            pattern[i] = (uint8_t)(i * 7 + 1);
    if (n > cap)
        n = cap;
    if (n > *left)
        n = (uint32_t)*left;
    memcpy(dst, *p, n);
    memcpy(dst + n, pattern + n, cap - n);
    *p += n;
    *left -= n;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;

    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2;
}

static int count_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[64], target[64];
    int n = 0;

    if (!d)
        abort();
    while ((e = readdir(d))) {
        ssize_t len;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len > 0 && (target[len] = 0, !strncmp(target, "socket:", 7)))
            n++;
    }
    closedir(d);
    return n;
}

static void listen_path(char *buf, size_t cap, unsigned k)
{
    snprintf(buf, cap, "%s_%u", uds, LISTEN_PORT0 + k);
}

static void remove_paths(void)
{
    char p[128];

    for (unsigned k = 0; k < NLISTEN; k++) {
        listen_path(p, sizeof(p), k);
        unlink(p);
    }
    unlink(uds);
}

/* Paths a crashed run left behind (no atexit then): the pid is gone. */
static void remove_stale_paths(void)
{
    DIR *d = opendir("/tmp");
    struct dirent *e;
    char path[300];
    int pid;

    if (!d)
        return;
    while ((e = readdir(d)))
        if (sscanf(e->d_name, "flint-fuzz-vsock-%d.sock", &pid) == 1 && pid > 0 &&
            kill(pid, 0) < 0 && errno == ESRCH) {
            snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
            unlink(path);
        }
    closedir(d);
}

static void init_once(void)
{
    struct vsock_config cfg = {.enabled = true, .guest_cid = GUEST_CID, .uds_path = uds};
    struct rlimit rl;
    char err[256];

    if (mem.size)
        return;
    trace = getenv("FUZZ_VSOCK_TRACE") != NULL;
    log_set_level(trace ? LOG_DEBUG : LOG_OFF);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (evloop_init(&loop, 256) || guest_mem_create(&mem, RAM_BYTES))
        abort();
    snprintf(uds, sizeof(uds), "/tmp/flint-fuzz-vsock-%d.sock", getpid());
    remove_stale_paths();
    remove_paths();
    if (virtio_vsock_create(&vs, &cfg, &loop, err, sizeof(err))) {
        fprintf(stderr, "fuzz-virtio-vsock: %s\n", err);
        abort();
    }
    atexit(remove_paths);
    virtio_mmio_init(&t, &virtio_vsock_ops, vs, &mem, FLINT_VIRTIO_MMIO_BASE, 5, NULL, NULL);
    fuzz_tick_init(&tick, &loop, TICK_NS);
    for (unsigned i = 0; i < NHOST; i++)
        host_fd[i] = -1;
    for (unsigned k = 0; k < NLISTEN; k++)
        listen_fd[k] = -1;
    for (int i = 0; i < 4; i++)
        fuzz_step(&tick, false);
    base_pending = loop.pending;
    base_sockets = count_sockets();
}

/* ---- the guest driver ---- */

static void set_desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    struct virtq_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy(ram(RINGS(q) + 16 * (i % drv.qsize)), &d, sizeof(d));
}

static void offer(unsigned q, uint16_t head)
{
    uint16_t *avail = (uint16_t *)ram(RINGS(q) + 0x1000);
    uint16_t idx = __atomic_load_n(&avail[1], __ATOMIC_RELAXED);

    avail[2 + idx % drv.qsize] = head;
    __atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static unsigned rx_chains(void)
{
    return drv.rx_split && drv.qsize >= 2 ? drv.qsize / 2u : drv.qsize;
}

static void post_rx(uint16_t head)
{
    uint64_t buf = WINDOW + RX_AREA + (uint64_t)head * drv.rx_buf;

    if (rx_chains() != drv.qsize) {
        uint16_t second = (uint16_t)(head + drv.qsize / 2);
        uint32_t first = drv.rx_cut < drv.rx_buf ? drv.rx_cut : drv.rx_buf;
        set_desc(VIRTIO_VSOCK_RXQ, head, buf, first, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
                 second);
        set_desc(VIRTIO_VSOCK_RXQ, second, buf + first, drv.rx_buf - first, VIRTQ_DESC_F_WRITE, 0);
    } else {
        set_desc(VIRTIO_VSOCK_RXQ, head, buf, drv.rx_buf, VIRTQ_DESC_F_WRITE, 0);
    }
    offer(VIRTIO_VSOCK_RXQ, head);
}

static void post_event(uint16_t head)
{
    set_desc(VIRTIO_VSOCK_EVQ, head, WINDOW + EV_BUFS + 8ull * head, drv.ev_layout & 1 ? 2 : 8,
             drv.ev_layout & 2 ? 0 : VIRTQ_DESC_F_WRITE, 0);
    offer(VIRTIO_VSOCK_EVQ, head);
}

/* Walk the used ring of queue q from where the guest last looked;
 * returns how many buffers it posted again. */
static unsigned consume(unsigned q)
{
    const uint8_t *used = ram(RINGS(q) + 0x2000);
    uint16_t idx = __atomic_load_n((const uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
    unsigned n = 0;

    for (; drv.used_seen[q] != idx && n < drv.qsize; drv.used_seen[q]++, n++) {
        uint32_t e[2];
        memcpy(e, used + 4 + 8 * (drv.used_seen[q] % drv.qsize), 8);
        if (q == VIRTIO_VSOCK_EVQ) {
            if (e[0] < drv.qsize)
                post_event((uint16_t)e[0]);
            continue;
        }
        if (e[0] >= rx_chains())
            continue;
        if (e[1] >= HDR) {
            struct virtio_vsock_hdr h;
            memcpy(&h, ram(RX_AREA + e[0] * drv.rx_buf), HDR);
            memmove(&drv.seen[1], &drv.seen[0], 3 * sizeof(h));
            drv.seen[0] = h;
            if (h.op == VIRTIO_VSOCK_OP_RW)
                drv.fwd += h.len;
        }
        post_rx((uint16_t)e[0]);
    }
    return n;
}

static void post_all_rx(void)
{
    drv.rx_deferred = false;
    for (uint16_t h = 0; h < rx_chains(); h++)
        post_rx(h);
    virtio_mmio_notify(&t, VIRTIO_VSOCK_RXQ);
}

static void guest_poll(void)
{
    if (!drv.qsize)
        return;
    if (drv.rx_deferred)
        post_all_rx();
    if (consume(VIRTIO_VSOCK_RXQ))
        virtio_mmio_notify(&t, VIRTIO_VSOCK_RXQ);
    if (consume(VIRTIO_VSOCK_EVQ))
        virtio_mmio_notify(&t, VIRTIO_VSOCK_EVQ);
}

/* §3.1.1 for the three queues with rings in the window, every RX chain
 * and event buffer posted. rx_size: bytes per RX chain (0: all the RX
 * area allows). layout: bit 0 event buffers of 2 bytes, bit 1 event
 * buffers device-readable, bit 2 RX chains of two descriptors split
 * (layout >> 4) * 4 bytes in, bit 3 RX buffers only at the first
 * OP_GUEST_POLL (a guest slow to post them). */
static void handshake(uint16_t qsize, uint64_t features, uint8_t layout, uint32_t rx_size)
{
    fuzz_mmio_write(&t, VIRTIO_MMIO_STATUS, 0);
    memset(ram(0), 0, 3 * 0x4000);
    memset(&drv, 0, sizeof(drv));
    drv.qsize = qsize;
    drv.ev_layout = layout & 3;
    drv.rx_split = layout & 4;
    drv.rx_cut = (layout >> 4) * 4u;
    drv.rx_buf = RX_AREA_SZ / rx_chains();
    if (rx_size && rx_size < drv.rx_buf)
        drv.rx_buf = rx_size;
    fuzz_driver_start(&t, 3, qsize, features, (uint32_t)WINDOW);
    drv.rx_deferred = true;
    if (!(layout & 8))
        post_all_rx();
    for (uint16_t h = 0; h < qsize; h++)
        post_event(h);
    virtio_mmio_notify(&t, VIRTIO_VSOCK_EVQ);
}

static void op_handshake(const uint8_t **p, size_t *left)
{
    uint16_t qsize = (uint16_t)(1u << (fuzz_take(p, left, 1) % 9));
    uint32_t f = fuzz_take(p, left, 1);
    uint64_t features = 1ull << VIRTIO_F_VERSION_1;

    if (f & 0x80) {
        features = fuzz_take(p, left, 4);
        features |= (uint64_t)fuzz_take(p, left, 4) << 32;
    } else {
        if (f & 1)
            features |= 1ull << VIRTIO_F_INDIRECT_DESC;
        if (f & 2)
            features |= 1ull << VIRTIO_F_EVENT_IDX;
    }
    f = fuzz_take(p, left, 1);
    handshake(qsize, features, (uint8_t)f, fuzz_take(p, left, 2));
}

/* A TX packet: mode:1 op:1 [op:2] ports [cids:16] [type:2] flags:1 [:3]
 * buf_alloc:1 [:4] fwd_cnt:1 [:4] plen:2 [hdr_len:4 extra:1] [cut:2]
 * n:1 payload[n] (the rest of the payload is a pattern). With TX_LIE the
 * buffer is plen + (int8_t)extra bytes past the header, which may cut
 * into the header itself. */
static void tx_packet(const uint8_t **p, size_t *left)
{
    static const uint32_t allocs[8] = {65536, 0, 4096, 1, 8192, 0xffffffff, 65535, 262144};
    static uint8_t pkt[HDR + 65535 + 127];
    uint8_t mode = (uint8_t)fuzz_take(p, left, 1), b;
    struct virtio_vsock_hdr h = {
        .src_cid = GUEST_CID, .dst_cid = VSOCK_HOST_CID, .type = VIRTIO_VSOCK_TYPE_STREAM};
    uint32_t plen, total, cut = 0, fwd[8];
    int32_t extra = 0;
    uint64_t gpa;
    uint16_t d;

    b = (uint8_t)fuzz_take(p, left, 1);
    h.op = b & 0x80 ? (uint16_t)fuzz_take(p, left, 2) : b % 8;
    switch (mode & 3) {
    case TX_PORTS_LITERAL:
        h.src_port = fuzz_take(p, left, 4);
        h.dst_port = fuzz_take(p, left, 4);
        break;
    case TX_PORTS_MIRROR: {
        const struct virtio_vsock_hdr *r = &drv.seen[fuzz_take(p, left, 1) % 4];
        h.src_port = r->dst_port;
        h.dst_port = r->src_port;
        break;
    }
    case TX_PORTS_LISTEN:
        h.src_port = 40000 + fuzz_take(p, left, 1);
        h.dst_port = LISTEN_PORT0 + fuzz_take(p, left, 1) % NLISTEN;
        break;
    default:
        h.src_port = 40000 + fuzz_take(p, left, 1);
        h.dst_port = VSOCK_HOST_PORT_FIRST + fuzz_take(p, left, 1);
        break;
    }
    if (mode & TX_CIDS) {
        h.src_cid = fuzz_take(p, left, 4) | (uint64_t)fuzz_take(p, left, 4) << 32;
        h.dst_cid = fuzz_take(p, left, 4) | (uint64_t)fuzz_take(p, left, 4) << 32;
    }
    if (mode & TX_TYPE)
        h.type = (uint16_t)fuzz_take(p, left, 2);
    h.flags = fuzz_take(p, left, 1);
    if (mode & TX_WIDE_FLAGS)
        h.flags |= fuzz_take(p, left, 3) << 8;
    b = (uint8_t)fuzz_take(p, left, 1);
    h.buf_alloc = b & 0x80 ? fuzz_take(p, left, 4) : allocs[b & 7];
    fwd[0] = drv.fwd, fwd[1] = 0, fwd[2] = drv.fwd - 1, fwd[3] = drv.fwd + 1;
    fwd[4] = 0xffffffff, fwd[5] = 0x80000000, fwd[6] = drv.fwd + 65536, fwd[7] = drv.fwd / 2;
    b = (uint8_t)fuzz_take(p, left, 1);
    h.fwd_cnt = b & 0x80 ? fuzz_take(p, left, 4) : fwd[b & 7];
    plen = fuzz_take(p, left, 2);
    h.len = plen;
    if (mode & TX_LIE) {
        h.len = fuzz_take(p, left, 4);
        extra = (int8_t)fuzz_take(p, left, 1);
    }
    total = (int32_t)(HDR + plen) + extra > 0 ? (uint32_t)((int32_t)(HDR + plen) + extra) : 0;
    if (mode & TX_SPLIT)
        cut = fuzz_take(p, left, 2) % (total + 1);
    memcpy(pkt, &h, HDR);
    take_bytes(p, left, pkt + HDR, plen + 127, fuzz_take(p, left, 1));
    if (!drv.qsize)
        return;

    gpa = total <= 0x1000 ? WINDOW + TX_SMALL + 0x1000ull * (drv.tx_next % 16)
                          : WINDOW + TX_BIG + 0x11000ull * (drv.tx_next % 2);
    memcpy(mem.map + gpa, pkt, total);
    d = drv.tx_next % drv.qsize;
    if ((mode & TX_SPLIT) && drv.qsize >= 2) {
        uint16_t d2 = (uint16_t)((d + 1) % drv.qsize);
        set_desc(VIRTIO_VSOCK_TXQ, d, gpa, cut, VIRTQ_DESC_F_NEXT, d2);
        set_desc(VIRTIO_VSOCK_TXQ, d2, gpa + cut, total - cut, 0, 0);
        drv.tx_next += 2;
    } else {
        set_desc(VIRTIO_VSOCK_TXQ, d, gpa, total, 0, 0);
        drv.tx_next++;
    }
    offer(VIRTIO_VSOCK_TXQ, d);
    drv.tx_gpa = gpa;
    drv.tx_len = total;
    if (!(mode & TX_NO_NOTIFY))
        virtio_mmio_notify(&t, VIRTIO_VSOCK_TXQ);
}

/* The last TX packet's buffer in count fresh descriptors (up to a full
 * ring: the device's TX budget per pass is one ring's worth). */
static void tx_burst(unsigned count)
{
    if (!drv.qsize || !drv.tx_len)
        return;
    for (unsigned i = 0; i < count; i++) {
        uint16_t d = drv.tx_next++ % drv.qsize;
        set_desc(VIRTIO_VSOCK_TXQ, d, drv.tx_gpa, drv.tx_len, 0, 0);
        offer(VIRTIO_VSOCK_TXQ, d);
    }
    virtio_mmio_notify(&t, VIRTIO_VSOCK_TXQ);
}

/* ---- the host side ---- */

static int host_slot(void)
{
    for (int i = 0; i < NHOST; i++)
        if (host_fd[i] < 0)
            return i;
    return -1;
}

static void host_put(int fd, const uint8_t *buf, size_t len)
{
    if (fd >= 0 && len)
        (void)send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* kind:1, then by kind % 4: 0 "CONNECT <1000 + port:1>\n", 1 "CONNECT
 * <port:4>\n", 2 "CONNECT " n:1 bytes[n], 3 n:1 bytes[n]; kind & 4: then
 * n:1 bytes[n] of data; kind & 8: send it in two halves with a loop step
 * between; kind & 16: connect only. */
static void host_connect(const uint8_t **p, size_t *left)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    uint8_t kind = (uint8_t)fuzz_take(p, left, 1), buf[600];
    int slot = host_slot(), fd = -1;
    size_t len = 0;
    uint32_t n;

    if (slot >= 0) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        memcpy(a.sun_path, uds, strlen(uds));
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(fd);
            fd = -1;
        }
        host_fd[slot] = fd;
    }
    if (kind & 16)
        return;
    switch (kind % 4) {
    case 0:
        len = (size_t)snprintf((char *)buf, 64, "CONNECT %u\n", 1000 + fuzz_take(p, left, 1));
        break;
    case 1:
        len = (size_t)snprintf((char *)buf, 64, "CONNECT %u\n", fuzz_take(p, left, 4));
        break;
    case 2:
        len = (size_t)snprintf((char *)buf, 64, "CONNECT ");
        /* fall through */
    default:
        n = fuzz_take(p, left, 1);
        take_bytes(p, left, buf + len, n, n);
        len += n;
        break;
    }
    if (kind & 4) {
        n = fuzz_take(p, left, 1);
        take_bytes(p, left, buf + len, n, n);
        len += n;
    }
    if (kind & 8) {
        host_put(fd, buf, len / 2);
        fuzz_step(&tick, false);
        host_put(fd, buf + len / 2, len - len / 2);
    } else {
        host_put(fd, buf, len);
    }
}

static void host_send(const uint8_t **p, size_t *left)
{
    static uint8_t buf[65535];
    int fd = host_fd[fuzz_take(p, left, 1) % NHOST];
    uint32_t len = fuzz_take(p, left, 2);

    take_bytes(p, left, buf, len, fuzz_take(p, left, 1));
    host_put(fd, buf, len);
}

/* kind & 1: echo what was read back; kind & 2: read until nothing is left. */
static void host_recv(const uint8_t **p, size_t *left)
{
    static uint8_t buf[65536];
    int fd = host_fd[fuzz_take(p, left, 1) % NHOST];
    uint8_t kind = (uint8_t)fuzz_take(p, left, 1);
    ssize_t n;

    if (fd < 0)
        return;
    for (int i = 0; i < 8; i++) {
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        if (kind & 1)
            host_put(fd, buf, (size_t)n);
        if (!(kind & 2))
            break;
    }
}

static void host_shut(const uint8_t **p, size_t *left)
{
    static const int how[3] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
    unsigned i = fuzz_take(p, left, 1) % NHOST, h = fuzz_take(p, left, 1) % 4;

    if (host_fd[i] < 0)
        return;
    if (h < 3) {
        shutdown(host_fd[i], how[h]);
    } else {
        close(host_fd[i]);
        host_fd[i] = -1;
    }
}

static void host_listen(unsigned k)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd;

    if (listen_fd[k] >= 0)
        return;
    listen_path(a.sun_path, sizeof(a.sun_path), k);
    unlink(a.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8))) {
        close(fd);
        fd = -1;
    }
    listen_fd[k] = fd;
}

static void host_accept(unsigned k)
{
    int slot = host_slot();

    if (listen_fd[k] >= 0 && slot >= 0)
        host_fd[slot] = accept4(listen_fd[k], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static void host_unlisten(unsigned k)
{
    char path[128];

    if (listen_fd[k] < 0)
        return;
    close(listen_fd[k]);
    listen_fd[k] = -1;
    listen_path(path, sizeof(path), k);
    unlink(path);
}

/* ---- between inputs ---- */

static bool idle(void)
{
    return virtio_vsock_conns(vs) == 0 && loop.pending - (tick.armed ? 1u : 0u) <= base_pending;
}

/* Close the host side, reset the device and run the loop until every
 * connection is gone and no socket I/O is in flight. Connections whose
 * REQUEST the guest never saw survive a reset (the driver comes back to
 * them); a driver with RX buffers takes those REQUESTs, then another reset
 * drops them. Closing the listeners also ends the connects the device
 * left blocked on a full backlog, which pin even connections it dropped. */
static void quiesce(void)
{
    unsigned i;

    for (i = 0; i < NHOST; i++)
        if (host_fd[i] >= 0) {
            close(host_fd[i]);
            host_fd[i] = -1;
        }
    for (i = 0; i < NLISTEN; i++)
        host_unlisten(i);
    fuzz_mmio_write(&t, VIRTIO_MMIO_STATUS, 0);
    /* Idle only counts after a step that found nothing: a completion
     * (an accepted client, say) may wait in the ring. */
    for (i = 0; fuzz_step(&tick, i >= 4) || !idle(); i++) {
        if (i == QUIESCE) {
            fprintf(stderr, "fuzz-virtio-vsock: %u connections and %u I/O left after a reset\n",
                    virtio_vsock_conns(vs), loop.pending - base_pending);
            abort();
        }
        if (i % 8 == 7 && virtio_vsock_conns(vs)) {
            handshake(64, 1ull << VIRTIO_F_VERSION_1, 0, 0);
            fuzz_mmio_write(&t, VIRTIO_MMIO_STATUS, 0);
        }
    }
    if (trace)
        fprintf(stderr, "quiet after %u steps\n", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    const uint8_t *p = data;
    size_t left = size;
    unsigned waits = 0;

    init_once();
    memset(ram(0), 0, WINDOW_SZ);
    memset(&drv, 0, sizeof(drv));

    for (unsigned n = 0; left && n < MAX_OPS; n++) {
        unsigned op = fuzz_take(&p, &left, 1) % OP_COUNT;

        if (trace)
            fprintf(stderr, "op %u (%u connections, seen op %u)\n", op, virtio_vsock_conns(vs),
                    drv.seen[0].op);
        switch (op) {
        case OP_MMIO_WRITE:
            fuzz_op_mmio_write(&t, &p, &left);
            break;
        case OP_MMIO_READ:
            fuzz_op_mmio_read(&t, &p, &left);
            break;
        case OP_MEM_WRITE:
            fuzz_op_mem_write(&p, &left, ram(0), WINDOW_SZ, 3);
            break;
        case OP_NOTIFY:
            virtio_mmio_notify(&t, fuzz_take(&p, &left, 1) % 3);
            break;
        case OP_RUN:
            fuzz_step(&tick, false);
            break;
        case OP_WAIT:
            fuzz_step(&tick, waits++ < MAX_WAITS);
            break;
        case OP_HANDSHAKE:
            op_handshake(&p, &left);
            break;
        case OP_GUEST_POLL:
            guest_poll();
            break;
        case OP_TX_PKT:
            tx_packet(&p, &left);
            break;
        case OP_HOST_CONNECT:
            host_connect(&p, &left);
            break;
        case OP_HOST_SEND:
            host_send(&p, &left);
            break;
        case OP_HOST_RECV:
            host_recv(&p, &left);
            break;
        case OP_HOST_SHUT:
            host_shut(&p, &left);
            break;
        case OP_HOST_LISTEN:
            host_listen(fuzz_take(&p, &left, 1) % NLISTEN);
            break;
        case OP_HOST_ACCEPT:
            host_accept(fuzz_take(&p, &left, 1) % NLISTEN);
            break;
        case OP_HOST_UNLISTEN:
            host_unlisten(fuzz_take(&p, &left, 1) % NLISTEN);
            break;
        case OP_DEV_RESET:
            fuzz_mmio_write(&t, VIRTIO_MMIO_STATUS, 0);
            break;
        case OP_TRANSPORT_RESET:
            virtio_vsock_transport_reset(vs);
            break;
        case OP_TX_BURST:
            tx_burst(fuzz_take(&p, &left, 1) + 1);
            break;
        }
    }
    if (trace) {
        struct virtio_vsock_stats st;
        virtio_vsock_get_stats(vs, &st);
        fprintf(stderr,
                "opened %llu refused %llu reset %llu rx %llu/%llu B tx %llu/%llu B bad %llu "
                "live %u\n",
                (unsigned long long)st.conns_opened, (unsigned long long)st.conns_refused,
                (unsigned long long)st.conns_reset, (unsigned long long)st.rx_packets,
                (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_packets,
                (unsigned long long)st.tx_bytes, (unsigned long long)st.bad_packets, st.conns_live);
        fprintf(stderr, "%d sockets open (%d before any input), %d threads\n", count_sockets(),
                base_sockets, count_entries("/proc/self/task"));
    }
    quiesce();
    if ((++runs % 64 == 0 || trace) && count_sockets() != base_sockets) {
        fprintf(stderr, "fuzz-virtio-vsock: %d sockets open after an input, %d before any\n",
                count_sockets(), base_sockets);
        abort();
    }
    return 0;
}

#else /* FUZZ_VSOCK_GEN: write the seed corpus */

static uint8_t out[8192];
static size_t outn;

static void b1(unsigned v)
{
    out[outn++] = (uint8_t)v;
}

static void b2(unsigned v)
{
    b1(v);
    b1(v >> 8);
}

static void b4(uint32_t v)
{
    b2(v);
    b2(v >> 16);
}

static void ops(unsigned op, unsigned count)
{
    while (count--)
        b1(op);
}

static void handshake_with(unsigned qsize_log2, unsigned layout, unsigned rx_size)
{
    b1(OP_HANDSHAKE);
    b1(qsize_log2);
    b1(0); /* VERSION_1 only */
    b1(layout);
    b2(rx_size); /* 0: RX buffers fill the RX area */
}

static void handshake(void)
{
    handshake_with(6, 0, 0);
}

/* A TX packet with no optional fields but the port bytes given. */
static void tx(unsigned mode, unsigned op, const uint8_t *ports, unsigned nports, unsigned flags,
               unsigned alloc_sel, unsigned fwd_sel, unsigned plen, const char *payload)
{
    unsigned n = payload ? (unsigned)strlen(payload) : 0;

    b1(OP_TX_PKT);
    b1(mode);
    b1(op);
    for (unsigned i = 0; i < nports; i++)
        b1(ports[i]);
    b1(flags);
    b1(alloc_sel);
    b1(fwd_sel);
    b2(plen);
    b1(n);
    for (unsigned i = 0; i < n; i++)
        b1((uint8_t)payload[i]);
}

static void reply(unsigned op, unsigned flags, unsigned plen, const char *payload)
{
    static const uint8_t newest[1] = {0};
    tx(TX_PORTS_MIRROR, op, newest, 1, flags, 0, 0, plen, payload);
}

static void host_send(unsigned slot, unsigned len, const char *data)
{
    unsigned n = (unsigned)strlen(data);
    b1(OP_HOST_SEND);
    b1(slot);
    b2(len);
    b1(n);
    for (unsigned i = 0; i < n; i++)
        b1((uint8_t)data[i]);
}

static void save(const char *dir, const char *name)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(out, 1, outn, f) != outn || fclose(f)) {
        perror(path);
        exit(1);
    }
    outn = 0;
}

/* Host client, guest accepts, data both ways, credit, half-close. */
static void host_initiated(void)
{
    handshake();
    b1(OP_HOST_CONNECT);
    b1(1 | 4); /* "CONNECT <port:4>\n" then data */
    b4(1234);
    b1(5);
    for (const char *s = "early"; *s; s++)
        b1((uint8_t)*s);
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL); /* REQUEST */
    reply(VIRTIO_VSOCK_OP_RESPONSE, 0, 0, NULL);
    ops(OP_RUN, 2);
    b1(OP_HOST_RECV);
    b1(0);
    b1(0); /* "OK <port>\n" */
    host_send(0, 3000, "from the host");
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
    reply(VIRTIO_VSOCK_OP_RW, 0, 2000, "from the guest");
    ops(OP_RUN, 2);
    b1(OP_HOST_RECV);
    b1(0);
    b1(3); /* echo it all back */
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
    reply(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0, NULL);
    reply(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0, NULL);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    b1(OP_HOST_SHUT);
    b1(0);
    b1(1); /* SHUT_WR: SHUTDOWN to the guest */
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
    reply(VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND, 0, NULL);
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
    ops(OP_RUN, 2);
}

/* Guest REQUEST to a listening port: accept, ping, pong, close. */
static void guest_initiated(void)
{
    static const uint8_t ports[2] = {7, 0}; /* 40007 -> 5000 */

    handshake();
    b1(OP_HOST_LISTEN);
    b1(0);
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_REQUEST, ports, 2, 0, 0, 0, 0, NULL);
    ops(OP_RUN, 2);
    b1(OP_WAIT);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL); /* RESPONSE */
    b1(OP_HOST_ACCEPT);
    b1(0);
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_RW, ports, 2, 0, 0, 0, 4, "ping");
    ops(OP_RUN, 2);
    b1(OP_HOST_RECV);
    b1(0);
    b1(1); /* echo */
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    host_send(0, 5, "pong!");
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    b1(OP_HOST_SHUT);
    b1(0);
    b1(3); /* close */
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_SHUTDOWN, ports, 2, 3, 0, 0, 0, NULL);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    /* And one to a port nobody listens on: RST. */
    static const uint8_t nobody[2] = {8, 1};
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_REQUEST, nobody, 2, 0, 0, 0, 0, NULL);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
}

/* Malformed packets on and off a live connection. */
static void hostile(void)
{
    static const uint8_t lit[8] = {1, 0, 0, 0, 2, 0, 0, 0};

    handshake();
    b1(OP_HOST_CONNECT);
    b1(0);
    b1(9); /* CONNECT 1009 */
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    reply(VIRTIO_VSOCK_OP_RESPONSE, 0, 0, NULL);
    ops(OP_RUN, 2);
    /* Wrong CIDs. */
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR | TX_CIDS);
    b1(VIRTIO_VSOCK_OP_RW);
    b1(0);
    b4(2), b4(0), b4(3), b4(0);
    b1(0), b1(0), b1(0), b2(4), b1(0);
    /* Not a stream socket. */
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR | TX_TYPE);
    b1(VIRTIO_VSOCK_OP_REQUEST);
    b1(0);
    b2(2);
    b1(0), b1(0), b1(0), b2(0), b1(0);
    /* len beyond the buffer; len beyond PKT_MAX. */
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR | TX_LIE);
    b1(VIRTIO_VSOCK_OP_RW);
    b1(0);
    b1(0), b1(0), b1(0), b2(8), b4(100), b1(0), b1(0);
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR | TX_LIE);
    b1(VIRTIO_VSOCK_OP_RW);
    b1(0);
    b1(0), b1(0), b1(0), b2(65535), b4(65537), b1(2), b1(0);
    /* A buffer 20 bytes short of a header. */
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR | TX_LIE);
    b1(VIRTIO_VSOCK_OP_RW);
    b1(0);
    b1(0), b1(0), b1(0), b2(0), b4(0), b1(0xec), b1(0);
    /* Header split across descriptors 13 bytes in. */
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR | TX_SPLIT);
    b1(VIRTIO_VSOCK_OP_RW);
    b1(0);
    b1(0), b1(0), b1(0), b2(100), b2(13), b1(0);
    /* Unknown op 0x1234, then data beyond the credit flint granted. */
    reply(VIRTIO_VSOCK_OP_RW, 0, 65535, NULL);
    b1(OP_TX_PKT);
    b1(TX_PORTS_MIRROR);
    b1(0x80);
    b2(0x1234);
    b1(0);
    b1(0), b1(0), b1(0), b2(0), b1(0);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    /* A packet for nobody; RST for nobody; a duplicate REQUEST. */
    tx(TX_PORTS_LITERAL, VIRTIO_VSOCK_OP_RW, lit, 8, 0, 0, 0, 1, "x");
    tx(TX_PORTS_LITERAL, VIRTIO_VSOCK_OP_RST, lit, 8, 0, 0, 0, 0, NULL);
    b1(OP_HOST_LISTEN);
    b1(1);
    static const uint8_t dup[2] = {1, 1};
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_REQUEST, dup, 2, 0, 0, 0, 0, NULL);
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_REQUEST, dup, 2, 0, 0, 0, 0, NULL);
    /* RW before the RESPONSE; hostile fwd_cnt. */
    tx(TX_PORTS_LISTEN, VIRTIO_VSOCK_OP_RW, dup, 2, 0, 0, 4, 3, "abc");
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
    /* A transport reset with connections, then a device reset. */
    b1(OP_HOST_CONNECT);
    b1(0);
    b1(10);
    ops(OP_RUN, 2);
    b1(OP_TRANSPORT_RESET);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    b1(OP_DEV_RESET);
    ops(OP_RUN, 2);
}

/* 256 packets for nobody while the guest posts no RX buffers: the RST
 * replies pile up and the TX pass runs out of budget. */
static void flood(void)
{
    static const uint8_t nobody[8] = {1, 0, 0, 0, 9, 0, 0, 0};

    handshake_with(8, 8, 60);
    tx(TX_PORTS_LITERAL | TX_NO_NOTIFY, VIRTIO_VSOCK_OP_RW, nobody, 8, 0, 0, 0, 1, "x");
    b1(OP_TX_BURST);
    b1(254);
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL); /* now RX buffers, 60 bytes each */
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
}

/* The guest grants 8 KiB, the host sends 60 KiB; credit updates. */
static void credit(void)
{
    handshake();
    b1(OP_HOST_CONNECT);
    b1(0);
    b1(2);
    ops(OP_RUN, 2);
    b1(OP_GUEST_POLL);
    tx(TX_PORTS_MIRROR, VIRTIO_VSOCK_OP_RESPONSE, (const uint8_t[]){0}, 1, 0, 4, 0, 0, NULL);
    ops(OP_RUN, 2);
    host_send(0, 60000, "bulk");
    for (int i = 0; i < 4; i++) {
        ops(OP_RUN, 2);
        b1(OP_GUEST_POLL);
        tx(TX_PORTS_MIRROR, VIRTIO_VSOCK_OP_CREDIT_UPDATE, (const uint8_t[]){0}, 1, 0, 4, 0, 0,
           NULL);
    }
    tx(TX_PORTS_MIRROR, VIRTIO_VSOCK_OP_SHUTDOWN, (const uint8_t[]){0}, 1,
       VIRTIO_VSOCK_SHUTDOWN_RCV, 4, 0, 0, NULL);
    ops(OP_RUN, 3);
    b1(OP_GUEST_POLL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    host_initiated();
    save(argv[1], "host-connect-data");
    guest_initiated();
    save(argv[1], "guest-request-listener");
    hostile();
    save(argv[1], "hostile-headers");
    credit();
    save(argv[1], "credit-flow");
    flood();
    save(argv[1], "rst-flood");
    return 0;
}

#endif
