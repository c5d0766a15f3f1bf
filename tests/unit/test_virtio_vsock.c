/* Unit tests: virtio-vsock with a fake guest driver on the three queues
 * and real Unix sockets on the host side, io_uring doing the socket I/O:
 * the hybrid handshake both ways, data both ways, credit flow control,
 * half-close, resets, limits and hostile packets. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "evloop.h"
#include "virtio_harness.h"
#include "virtio_vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define QSIZE   64
#define HDR     VIRTIO_VSOCK_HDR_BYTES
#define RXQ     VIRTIO_VSOCK_RXQ
#define TXQ     VIRTIO_VSOCK_TXQ
#define EVQ     VIRTIO_VSOCK_EVQ
#define CID     3
#define RXBUF   (HDR + 4096)
#define RX_AREA (H_BUF + 0x100000ull)
#define TX_AREA (H_BUF + 0x180000ull) /* 64 slots of 0x1000 + a big one */
#define EV_AREA (H_BUF + 0x1f0000ull)
#define BIG_TX  (H_BUF + 0x200000ull)

static struct hdrv h;
static struct virtio_mmio t;
static struct evloop loop;
static struct virtio_vsock *vs;
static struct hq rxq, txq, evq;
static struct htick tick;
static char uds[64];
static unsigned tx_slot;

static void count_irq(void *opaque)
{
    (void)opaque;
}

static void step(void)
{
    cr_assert_eq(htick_step(&tick), 0);
}

static void pump(unsigned ms)
{
    cr_assert_eq(htick_pump(&tick, ms), 0);
}

static uint8_t *gp(uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_slice(&h.mem, gpa, len);
    cr_assert_not_null(p);
    return p;
}

static struct virtio_vsock_stats stats(void)
{
    struct virtio_vsock_stats st;
    virtio_vsock_get_stats(vs, &st);
    return st;
}

/* ---- guest side ---- */

static void post_rx(uint16_t d)
{
    hq_set(&rxq, d, RX_AREA + (uint64_t)d * RXBUF, RXBUF, VIRTQ_DESC_F_WRITE, 0);
    hq_offer(&rxq, d);
}

static void post_all_rx(void)
{
    for (uint16_t d = 0; d < QSIZE; d++)
        post_rx(d);
    virtio_mmio_notify(&t, RXQ);
}

/* The next packet to the guest, waiting up to ~ms; its payload (len) is
 * copied to payload (cap bytes). The buffer goes back to the device.
 * Returns false if none came. */
static bool guest_recv_wait(struct virtio_vsock_hdr *hd, uint8_t *payload, size_t cap, unsigned ms)
{
    uint32_t id, len;

    for (unsigned i = 0; i < ms / 2 && hq_used_idx(&rxq) == rxq.used_seen; i++)
        step();
    if (hq_used_idx(&rxq) == rxq.used_seen)
        return false;
    hq_used(&rxq, rxq.used_seen++, &id, &len);
    cr_assert_lt(id, QSIZE);
    cr_assert_geq(len, HDR, "used length %u shorter than a header", len);
    memcpy(hd, gp(RX_AREA + (uint64_t)id * RXBUF, HDR), HDR);
    cr_assert_eq(len, HDR + hd->len, "used length %u, header len %u", len, hd->len);
    cr_assert_leq(hd->len, cap);
    if (hd->len)
        memcpy(payload, gp(RX_AREA + (uint64_t)id * RXBUF + HDR, hd->len), hd->len);
    post_rx((uint16_t)id);
    virtio_mmio_notify(&t, RXQ);
    return true;
}

static void guest_recv(struct virtio_vsock_hdr *hd, uint8_t *payload, size_t cap)
{
    cr_assert(guest_recv_wait(hd, payload, cap, 2000), "no packet reached the guest");
    cr_assert_eq(hd->src_cid, VSOCK_HOST_CID);
    cr_assert_eq(hd->dst_cid, CID);
    cr_assert_eq(hd->type, VIRTIO_VSOCK_TYPE_STREAM);
}

static struct virtio_vsock_hdr ghdr(uint32_t src_port, uint32_t dst_port, uint16_t op)
{
    return (struct virtio_vsock_hdr){.src_cid = CID,
                                     .dst_cid = VSOCK_HOST_CID,
                                     .src_port = src_port,
                                     .dst_port = dst_port,
                                     .type = VIRTIO_VSOCK_TYPE_STREAM,
                                     .op = op,
                                     .buf_alloc = 65536};
}

/* Offer one TX packet (header then payload in one descriptor of `len`
 * bytes: len may lie about the payload) without notifying. */
static void guest_queue_raw(const void *hd, uint32_t hdr_bytes, const void *payload, uint32_t plen)
{
    uint16_t d = (uint16_t)(tx_slot++ % QSIZE);
    uint64_t gpa = plen + hdr_bytes > 0x1000 ? BIG_TX + (uint64_t)(d % 2) * 0x11000
                                             : TX_AREA + (uint64_t)d * 0x1000;
    cr_assert_leq(plen + hdr_bytes, 0x11000u);
    memcpy(gp(gpa, hdr_bytes), hd, hdr_bytes);
    if (plen)
        memcpy(gp(gpa + hdr_bytes, plen), payload, plen);
    hq_set(&txq, d, gpa, hdr_bytes + plen, 0, 0);
    hq_offer(&txq, d);
}

static void guest_send(struct virtio_vsock_hdr hd, const void *payload, uint32_t plen)
{
    uint16_t want = (uint16_t)(hq_used_idx(&txq) + 1);
    hd.len = plen;
    guest_queue_raw(&hd, HDR, payload, plen);
    virtio_mmio_notify(&t, TXQ);
    for (int i = 0; i < 500 && hq_used_idx(&txq) != want; i++)
        step();
    cr_assert_eq(hq_used_idx(&txq), want, "TX packet not consumed");
}

/* Nothing reaches the guest for a while. */
static void guest_expect_silence(void)
{
    struct virtio_vsock_hdr hd;
    static uint8_t buf[4096];
    cr_assert_not(guest_recv_wait(&hd, buf, sizeof(buf), 40), "unexpected packet op %u", hd.op);
}

/* ---- host side ---- */

static int host_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    strcpy(a.sun_path, uds);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect %s: %s", uds,
                 strerror(errno));
    return fd;
}

static int host_listen(uint32_t port)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", uds, port);
    unlink(a.sun_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 4096), 0);
    return fd;
}

static void host_unlisten(int fd, uint32_t port)
{
    char p[128];
    snprintf(p, sizeof(p), "%s_%u", uds, port);
    unlink(p);
    close(fd);
}

/* Read what is there within ~ms, pumping the loop; returns bytes read
 * (0 at end of stream, -1 if nothing came). */
static ssize_t host_read(int fd, void *buf, size_t cap, unsigned ms)
{
    for (unsigned i = 0; i <= ms / 2; i++) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == ECONNRESET)
            return 0;
        step();
    }
    return -1;
}

static void host_write(int fd, const void *buf, size_t len)
{
    cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

/* Reset the device and set it up again with fresh, empty rings. */
static void reinit(void)
{
    mwr(&t, VIRTIO_MMIO_STATUS, 0);
    memset(gp(H_DESC, 3 * H_QSTRIDE), 0, 3 * H_QSTRIDE);
    rxq = hq_make(&h, RXQ);
    txq = hq_make(&h, TXQ);
    evq = hq_make(&h, EVQ);
    cr_assert_eq(hdriver_init(&h, &t, VIRTIO_FEATURE(VIRTIO_F_VERSION_1), 3), 0x0f);
}

/* ---- setup ---- */

static void open_dev(void)
{
    struct vsock_config cfg = {.enabled = true, .guest_cid = CID, .uds_path = uds};
    char err[256];

    cr_assert_eq(virtio_vsock_create(&vs, &cfg, &loop, err, sizeof(err)), 0, "%s", err);
    virtio_mmio_init(&t, &virtio_vsock_ops, vs, &h.mem, 0xc0001000, 5, count_irq, NULL);
    cr_assert_eq(hdriver_init(&h, &t, VIRTIO_FEATURE(VIRTIO_F_VERSION_1), 3), 0x0f);
    pump(4);
    post_all_rx();
}

static void setup(void)
{
    static unsigned n;
    hdrv_init(&h, QSIZE);
    cr_assert_eq(evloop_init(&loop, 256), 0);
    htick_init(&tick, &loop);
    rxq = hq_make(&h, RXQ);
    txq = hq_make(&h, TXQ);
    evq = hq_make(&h, EVQ);
    tx_slot = 0;
    snprintf(uds, sizeof(uds), "/tmp/flint-vsock-unit-%d-%u.sock", getpid(), n++);
    unlink(uds);
    log_set_level(LOG_OFF);
}

static void teardown(void)
{
    evloop_fini(&loop);
    virtio_vsock_destroy(vs);
    vs = NULL;
    guest_mem_destroy(&h.mem);
    unlink(uds);
    log_set_level(LOG_WARN);
}

TestSuite(virtio_vsock, .init = setup, .fini = teardown);

/* Host-initiated connection to guest port `port`, accepted by the guest
 * with buf_alloc `credit`. Returns the host fd; *hport gets flint's port. */
static int open_host_conn(uint32_t port, uint32_t credit, uint32_t *hport)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    char line[64], want[64];
    int fd = host_connect();
    ssize_t n;

    snprintf(line, sizeof(line), "CONNECT %u\n", port);
    host_write(fd, line, strlen(line));
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_REQUEST);
    cr_assert_eq(hd.dst_port, port);
    cr_assert_geq(hd.src_port, VSOCK_HOST_PORT_FIRST);
    cr_assert_eq(hd.buf_alloc, VSOCK_G2H_BUF_BYTES);
    struct virtio_vsock_hdr r = ghdr(port, hd.src_port, VIRTIO_VSOCK_OP_RESPONSE);
    r.buf_alloc = credit;
    guest_send(r, NULL, 0);
    snprintf(want, sizeof(want), "OK %u\n", hd.src_port);
    n = host_read(fd, line, strlen(want), 1000);
    cr_assert_eq(n, (ssize_t)strlen(want));
    cr_assert_eq(memcmp(line, want, (size_t)n), 0);
    *hport = hd.src_port;
    return fd;
}

/* ---- configuration ---- */

Test(virtio_vsock, config_space_holds_the_guest_cid)
{
    open_dev();
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG), CID);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG + 4), 0);
}

Test(virtio_vsock, create_refuses_bad_paths_and_cids)
{
    struct vsock_config cfg = {.enabled = true, .guest_cid = CID, .uds_path = uds};
    char err[256], longp[120];
    struct virtio_vsock *v2;
    int fd;

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, uds);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(virtio_vsock_create(&v2, &cfg, &loop, err, sizeof(err)), -EADDRINUSE);
    cr_assert(strstr(err, uds) && strstr(err, "already exists"), "%s", err);
    close(fd);
    unlink(uds);

    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = 0;
    cfg.uds_path = longp;
    cr_assert_eq(virtio_vsock_create(&v2, &cfg, &loop, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "uds_path"), "%s", err);

    cfg.uds_path = uds;
    cfg.guest_cid = 2;
    cr_assert_eq(virtio_vsock_create(&v2, &cfg, &loop, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "guest_cid"), "%s", err);
    cr_assert_eq(access(uds, F_OK), -1, "a refused create left %s behind", uds);
}

/* ---- host-initiated ---- */

Test(virtio_vsock, host_connect_handshake_and_data_both_ways)
{
    uint32_t hport;
    struct virtio_vsock_hdr hd;
    uint8_t buf[4096], want[3000];
    int fd;

    open_dev();
    fd = open_host_conn(1234, 65536, &hport);
    fill(want, sizeof(want), 1);
    host_write(fd, want, sizeof(want));
    size_t got = 0;
    while (got < sizeof(want)) {
        guest_recv(&hd, buf + got, sizeof(buf) - got);
        cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RW);
        cr_assert_eq(hd.src_port, hport);
        cr_assert_eq(hd.dst_port, 1234);
        got += hd.len;
    }
    cr_assert_eq(got, sizeof(want));
    cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);

    fill(want, 2000, 2);
    guest_send(ghdr(1234, hport, VIRTIO_VSOCK_OP_RW), want, 2000);
    got = 0;
    while (got < 2000) {
        ssize_t n = host_read(fd, buf + got, sizeof(buf) - got, 1000);
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    cr_assert_eq(memcmp(buf, want, 2000), 0);
    cr_assert_eq(stats().conns_opened, 1);
    cr_assert_eq(stats().rx_bytes, 3000);
    cr_assert_eq(stats().tx_bytes, 2000);
    cr_assert_eq(virtio_vsock_conns(vs), 1);
    close(fd);
}

/* A paused VM's device (quiesced) writes no guest memory: host bytes wait
 * in the device, guest packets in the TX ring, until it is restarted. */
Test(virtio_vsock, quiesced_device_leaves_guest_memory_alone)
{
    uint32_t hport;
    struct virtio_vsock_hdr hd;
    uint8_t buf[4096], want[100];
    int fd;

    open_dev();
    fd = open_host_conn(1234, 65536, &hport);
    virtio_mmio_quiesce(&t, true);
    fill(want, sizeof(want), 3);
    host_write(fd, want, sizeof(want));
    guest_queue_raw(&(struct virtio_vsock_hdr){.src_cid = CID,
                                               .dst_cid = VSOCK_HOST_CID,
                                               .src_port = 1234,
                                               .dst_port = hport,
                                               .type = VIRTIO_VSOCK_TYPE_STREAM,
                                               .op = VIRTIO_VSOCK_OP_CREDIT_REQUEST,
                                               .buf_alloc = 65536},
                    HDR, NULL, 0);
    virtio_mmio_notify(&t, TXQ);
    uint16_t rx_before = hq_used_idx(&rxq), tx_before = hq_used_idx(&txq);
    pump(40);
    cr_assert_eq(hq_used_idx(&rxq), rx_before, "nothing delivered while quiesced");
    cr_assert_eq(hq_used_idx(&txq), tx_before, "nothing taken while quiesced");
    cr_assert_not(virtio_mmio_busy(&t));

    virtio_mmio_quiesce(&t, false);
    bool data = false;
    for (int i = 0; i < 4 && !data; i++) {
        guest_recv(&hd, buf, sizeof(buf));
        data = hd.op == VIRTIO_VSOCK_OP_RW;
    }
    cr_assert(data, "the host's bytes arrive after the restart");
    cr_assert_eq(hd.len, sizeof(want));
    cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);
    cr_assert_eq(hq_used_idx(&txq), (uint16_t)(tx_before + 1));
    close(fd);
}

Test(virtio_vsock, bytes_after_the_connect_line_reach_the_guest)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    int fd;

    open_dev();
    fd = host_connect();
    host_write(fd, "CONNECT 77\nabc", 14);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_REQUEST);
    guest_send(ghdr(77, hd.src_port, VIRTIO_VSOCK_OP_RESPONSE), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RW);
    cr_assert_eq(hd.len, 3);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    close(fd);
}

Test(virtio_vsock, bad_connect_lines_close_the_client)
{
    static const char *const lines[] = {"HELLO 1\n", "CONNECT \n", "CONNECT 12x\n",
                                        "CONNECT 4294967296\n", "CONNECT 99999999999999999999"};
    char buf[16];

    open_dev();
    for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int fd = host_connect();
        host_write(fd, lines[i], strlen(lines[i]));
        cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0, "'%s' was not refused", lines[i]);
        close(fd);
    }
    guest_expect_silence();
    cr_assert_eq(stats().conns_refused, sizeof(lines) / sizeof(lines[0]));
    cr_assert_eq(virtio_vsock_conns(vs), 0);
}

Test(virtio_vsock, guest_rst_to_a_request_closes_the_client)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    int fd;

    open_dev();
    fd = host_connect();
    host_write(fd, "CONNECT 5\n", 10);
    guest_recv(&hd, buf, sizeof(buf));
    guest_send(ghdr(5, hd.src_port, VIRTIO_VSOCK_OP_RST), NULL, 0);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    cr_assert_eq(stats().conns_refused, 1);
    close(fd);
}

Test(virtio_vsock, a_request_the_guest_never_answers_times_out)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    int fd;

    open_dev();
    fd = host_connect();
    host_write(fd, "CONNECT 20\n", 11);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_REQUEST);
    /* No answer: after VSOCK_REQUEST_TIMEOUT_MS the client is closed and
     * the guest told with an RST. */
    cr_assert_eq(host_read(fd, buf, sizeof(buf), VSOCK_REQUEST_TIMEOUT_MS + 1000), 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(hd.dst_port, 20);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    close(fd);
}

/* Turn the loop for ms milliseconds of wall time. */
static void pump_wall(unsigned ms)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        step();
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

Test(virtio_vsock, a_host_client_that_never_sends_connect_is_closed)
{
    uint8_t buf[64];
    int fd, fd2;

    open_dev();
    fd = host_connect();
    fd2 = host_connect();
    host_write(fd2, "CONN", 4); /* half a line counts as silence too */
    pump(100);
    cr_assert_eq(virtio_vsock_conns(vs), 2);
    /* After VSOCK_HANDSHAKE_TIMEOUT_MS both are closed, the guest never
     * heard of them, and their places are free. */
    cr_assert_eq(host_read(fd, buf, sizeof(buf), VSOCK_HANDSHAKE_TIMEOUT_MS + 2000), 0);
    cr_assert_eq(host_read(fd2, buf, sizeof(buf), 1000), 0);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    cr_assert_eq(stats().conns_refused, 2);
    close(fd);
    close(fd2);
}

Test(virtio_vsock, a_request_after_a_slow_handshake_still_gets_its_own_time)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = host_connect();
    /* Most of the handshake time goes by before the line arrives. */
    pump_wall(VSOCK_HANDSHAKE_TIMEOUT_MS - 1500);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 2), -1, "nothing yet, still open");
    host_write(fd, "CONNECT 22\n", 11);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_REQUEST);
    hport = hd.src_port;
    /* Past the handshake's deadline, within the REQUEST's: answer. */
    pump_wall(1700);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 2), -1, "the client is not closed");
    guest_send(ghdr(22, hport, VIRTIO_VSOCK_OP_RESPONSE), NULL, 0);
    cr_assert_gt(host_read(fd, buf, sizeof(buf), 5000), 3);
    cr_assert_eq(memcmp(buf, "OK ", 3), 0, "the connection is open");
    close(fd);
}

Test(virtio_vsock, a_duplicate_request_resets_the_connection)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(21, 65536, &hport);
    guest_send(ghdr(21, hport, VIRTIO_VSOCK_OP_REQUEST), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(stats().bad_packets, 1);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0);
    close(fd);
}

Test(virtio_vsock, host_connections_before_the_driver_wait_for_it)
{
    struct vsock_config cfg = {.enabled = true, .guest_cid = CID, .uds_path = uds};
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    char err[256];
    int fd;

    cr_assert_eq(virtio_vsock_create(&vs, &cfg, &loop, err, sizeof(err)), 0, "%s", err);
    virtio_mmio_init(&t, &virtio_vsock_ops, vs, &h.mem, 0xc0001000, 5, count_irq, NULL);
    fd = host_connect();
    host_write(fd, "CONNECT 9\n", 10);
    pump(20);
    cr_assert_eq(hdriver_init(&h, &t, VIRTIO_FEATURE(VIRTIO_F_VERSION_1), 3), 0x0f);
    post_all_rx();
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_REQUEST);
    cr_assert_eq(hd.dst_port, 9);
    close(fd);
}

/* ---- guest-initiated ---- */

Test(virtio_vsock, guest_connect_reaches_the_listening_socket)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[4096];
    int lfd, fd;

    open_dev();
    lfd = host_listen(5000);
    guest_send(ghdr(40000, 5000, VIRTIO_VSOCK_OP_REQUEST), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RESPONSE);
    cr_assert_eq(hd.src_port, 5000);
    cr_assert_eq(hd.dst_port, 40000);
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(fd, 0);
    guest_send(ghdr(40000, 5000, VIRTIO_VSOCK_OP_RW), "ping", 4);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    host_write(fd, "pong!", 5);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RW);
    cr_assert_eq(hd.len, 5);
    cr_assert_eq(memcmp(buf, "pong!", 5), 0);
    close(fd);
    host_unlisten(lfd, 5000);
}

Test(virtio_vsock, guest_connect_to_nobody_gets_rst)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];

    open_dev();
    guest_send(ghdr(40000, 5001, VIRTIO_VSOCK_OP_REQUEST), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(hd.src_port, 5001);
    cr_assert_eq(hd.dst_port, 40000);
    cr_assert_eq(stats().conns_refused, 1);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
}

Test(virtio_vsock, guest_connect_to_a_full_backlog_is_refused_at_once)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    int lfd;

    open_dev();
    lfd = host_listen(5002);
    cr_assert_eq(listen(lfd, 0), 0); /* room for one pending connection */
    unsigned responses = 0, rsts = 0;
    for (uint32_t i = 0; i < 4; i++) {
        guest_send(ghdr(41000 + i, 5002, VIRTIO_VSOCK_OP_REQUEST), NULL, 0);
        guest_recv(&hd, buf, sizeof(buf));
        responses += hd.op == VIRTIO_VSOCK_OP_RESPONSE;
        rsts += hd.op == VIRTIO_VSOCK_OP_RST;
    }
    cr_assert_geq(responses, 1);
    cr_assert_geq(rsts, 1, "a full backlog did not refuse");
    cr_assert_eq(responses + rsts, 4);
    /* The refused ones are gone, not parked on a blocked connect. */
    cr_assert_eq(virtio_vsock_conns(vs), responses);
    host_unlisten(lfd, 5002);
}

/* ---- credit ---- */

Test(virtio_vsock, host_data_never_exceeds_the_guest_credit)
{
    struct virtio_vsock_hdr hd;
    static uint8_t big[200000], buf[4096];
    uint32_t hport, got = 0;
    int fd;

    open_dev();
    fd = open_host_conn(1, 8192, &hport);
    fill(big, sizeof(big), 3);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    ssize_t sent = send(fd, big, sizeof(big), MSG_NOSIGNAL);
    cr_assert_gt(sent, 8192);
    while (guest_recv_wait(&hd, buf, sizeof(buf), 100)) {
        cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RW);
        cr_assert_eq(memcmp(buf, big + got, hd.len), 0);
        got += hd.len;
    }
    cr_assert_eq(got, 8192, "the guest granted 8192 bytes and got %u", got);
    /* The guest consumed them: more flows, again up to the credit. */
    struct virtio_vsock_hdr cu = ghdr(1, hport, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    cu.buf_alloc = 8192;
    cu.fwd_cnt = 8192;
    guest_send(cu, NULL, 0);
    while (guest_recv_wait(&hd, buf, sizeof(buf), 100)) {
        cr_assert_eq(memcmp(buf, big + got, hd.len), 0);
        got += hd.len;
    }
    cr_assert_eq(got, 16384);
    close(fd);
}

Test(virtio_vsock, hostile_fwd_cnt_gives_no_credit)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[4096];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(2, 4096, &hport);
    /* fwd_cnt ahead of what was sent: in flight "wraps" to ~4 GiB. */
    struct virtio_vsock_hdr cu = ghdr(2, hport, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    cu.buf_alloc = 4096;
    cu.fwd_cnt = 100000;
    guest_send(cu, NULL, 0);
    host_write(fd, "data", 4);
    guest_expect_silence();
    /* A sane update lets the bytes through. */
    cu.fwd_cnt = 0;
    guest_send(cu, NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RW);
    cr_assert_eq(hd.len, 4);
    close(fd);
}

Test(virtio_vsock, credit_request_gets_a_credit_update)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(3, 65536, &hport);
    guest_send(ghdr(3, hport, VIRTIO_VSOCK_OP_CREDIT_REQUEST), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    cr_assert_eq(hd.buf_alloc, VSOCK_G2H_BUF_BYTES);
    cr_assert_eq(hd.fwd_cnt, 0);
    close(fd);
}

Test(virtio_vsock, draining_guest_data_sends_a_credit_update)
{
    struct virtio_vsock_hdr hd;
    static uint8_t data[4096], buf[65536];
    uint32_t hport;
    size_t got = 0;
    int fd;

    open_dev();
    fd = open_host_conn(4, 65536, &hport);
    fill(data, sizeof(data), 4);
    /* Past half of the 256 KiB flint advertises. */
    const size_t total = VSOCK_G2H_BUF_BYTES / 2 + 4 * sizeof(data);
    for (size_t i = 0; i < total / sizeof(data); i++)
        guest_send(ghdr(4, hport, VIRTIO_VSOCK_OP_RW), data, sizeof(data));
    while (got < total) {
        ssize_t n = host_read(fd, buf, sizeof(buf), 1000);
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    /* Once the guest could believe half the buffer in use. */
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    cr_assert_gt(hd.fwd_cnt, 0);
    cr_assert_leq(hd.fwd_cnt, total);
    close(fd);
}

Test(virtio_vsock, guest_overrunning_its_credit_is_reset)
{
    struct virtio_vsock_hdr hd;
    static uint8_t data[65536], buf[4096];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(5, 65536, &hport);
    /* 5 x 64 KiB in one batch, before flint can write any: 320 KiB is
     * more than the 256 KiB flint granted. */
    for (unsigned i = 0; i <= VSOCK_G2H_BUF_BYTES / sizeof(data); i++) {
        struct virtio_vsock_hdr w = ghdr(5, hport, VIRTIO_VSOCK_OP_RW);
        w.len = sizeof(data);
        guest_queue_raw(&w, HDR, data, sizeof(data));
    }
    virtio_mmio_notify(&t, TXQ);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(stats().bad_packets, 1);
    cr_assert_eq(stats().conns_reset, 1);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    close(fd);
}

/* ---- closing ---- */

Test(virtio_vsock, half_close_both_ways_then_rst)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(6, 65536, &hport);
    host_write(fd, "last", 4);
    shutdown(fd, SHUT_WR);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RW);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_SHUTDOWN);
    cr_assert_eq(hd.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
    /* The other direction still works. */
    guest_send(ghdr(6, hport, VIRTIO_VSOCK_OP_RW), "reply", 5);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 5);
    struct virtio_vsock_hdr sd = ghdr(6, hport, VIRTIO_VSOCK_OP_SHUTDOWN);
    sd.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
    guest_send(sd, NULL, 0);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0, "the host did not see the end");
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    cr_assert_eq(stats().conns_reset, 0, "a clean close is not a reset");
    close(fd);
}

Test(virtio_vsock, guest_shutdown_of_both_directions_closes)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(7, 65536, &hport);
    guest_send(ghdr(7, hport, VIRTIO_VSOCK_OP_RW), "bye", 3);
    struct virtio_vsock_hdr sd = ghdr(7, hport, VIRTIO_VSOCK_OP_SHUTDOWN);
    sd.flags = VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV;
    guest_send(sd, NULL, 0);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 3, "accepted bytes were lost");
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    close(fd);
}

Test(virtio_vsock, guest_rst_closes_the_host_socket)
{
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(8, 65536, &hport);
    guest_send(ghdr(8, hport, VIRTIO_VSOCK_OP_RST), NULL, 0);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    guest_expect_silence();
    close(fd);
}

Test(virtio_vsock, host_close_with_guest_data_pending_resets)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(9, 65536, &hport);
    close(fd);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_SHUTDOWN);
    /* The guest still writes: the socket is gone, so RST. */
    guest_send(ghdr(9, hport, VIRTIO_VSOCK_OP_RW), "x", 1);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
}

Test(virtio_vsock, device_reset_closes_every_connection)
{
    uint8_t buf[64];
    uint32_t hport;
    int fd1, fd2;

    open_dev();
    fd1 = open_host_conn(10, 65536, &hport);
    fd2 = open_host_conn(11, 65536, &hport);
    cr_assert_eq(virtio_vsock_conns(vs), 2);
    mwr(&t, VIRTIO_MMIO_STATUS, 0);
    pump(4); /* the VMM thread's half */
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    cr_assert_eq(host_read(fd1, buf, sizeof(buf), 1000), 0);
    cr_assert_eq(host_read(fd2, buf, sizeof(buf), 1000), 0);
    close(fd1);
    close(fd2);
}

Test(virtio_vsock, transport_reset_posts_an_event)
{
    uint8_t buf[64];
    uint32_t hport, id, len;
    int fd;

    open_dev();
    fd = open_host_conn(12, 65536, &hport);
    hq_set(&evq, 0, EV_AREA, 4, VIRTQ_DESC_F_WRITE, 0);
    memset(gp(EV_AREA, 4), 0xff, 4);
    hq_offer(&evq, 0);
    virtio_mmio_notify(&t, EVQ);
    virtio_vsock_transport_reset(vs);
    cr_assert_eq(hq_used_idx(&evq), 1);
    hq_used(&evq, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, 4);
    uint32_t ev;
    memcpy(&ev, gp(EV_AREA, 4), 4);
    cr_assert_eq(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0);
    close(fd);
}

Test(virtio_vsock, connection_limit_refuses_the_1024th)
{
    struct rlimit rl;
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    int lfd;
    unsigned responses = 0, rsts = 0;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    cr_assert_geq(rl.rlim_cur, 2 * VSOCK_MAX_CONNS + 64, "fd limit %llu too low for this test",
                  (unsigned long long)rl.rlim_cur);
    open_dev();
    lfd = host_listen(6000);
    for (unsigned i = 0; i <= VSOCK_MAX_CONNS; i++) {
        struct virtio_vsock_hdr r = ghdr(10000 + i, 6000, VIRTIO_VSOCK_OP_REQUEST);
        guest_queue_raw(&r, HDR, NULL, 0);
        if (i % 32 == 31 || i == VSOCK_MAX_CONNS) {
            virtio_mmio_notify(&t, TXQ);
            pump(4);
            while (guest_recv_wait(&hd, buf, sizeof(buf), 4)) {
                responses += hd.op == VIRTIO_VSOCK_OP_RESPONSE;
                rsts += hd.op == VIRTIO_VSOCK_OP_RST;
            }
        }
    }
    while (guest_recv_wait(&hd, buf, sizeof(buf), 50)) {
        responses += hd.op == VIRTIO_VSOCK_OP_RESPONSE;
        rsts += hd.op == VIRTIO_VSOCK_OP_RST;
    }
    cr_assert_eq(responses, VSOCK_MAX_CONNS);
    cr_assert_eq(rsts, 1);
    cr_assert_eq(virtio_vsock_conns(vs), VSOCK_MAX_CONNS);
    host_unlisten(lfd, 6000);
}

/* ---- hostile packets ---- */

Test(virtio_vsock, packets_with_wrong_cids_are_dropped_silently)
{
    open_dev();
    struct virtio_vsock_hdr p = ghdr(1, 2, VIRTIO_VSOCK_OP_REQUEST);
    p.src_cid = 99;
    guest_send(p, NULL, 0);
    p = ghdr(1, 2, VIRTIO_VSOCK_OP_REQUEST);
    p.dst_cid = 7;
    guest_send(p, NULL, 0);
    p = ghdr(1, 2, VIRTIO_VSOCK_OP_REQUEST);
    p.src_cid = CID | (1ull << 40);
    guest_send(p, NULL, 0);
    guest_expect_silence();
    cr_assert_eq(stats().bad_packets, 3);
    cr_assert_eq(virtio_vsock_conns(vs), 0);
}

Test(virtio_vsock, unknown_connections_and_types_get_rst)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];

    open_dev();
    guest_send(ghdr(50, 60, VIRTIO_VSOCK_OP_RW), "zz", 2);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(hd.src_port, 60);
    cr_assert_eq(hd.dst_port, 50);
    struct virtio_vsock_hdr p = ghdr(51, 61, VIRTIO_VSOCK_OP_REQUEST);
    p.type = 2; /* SEQPACKET, not offered */
    guest_send(p, NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    guest_send(ghdr(52, 62, 99), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    /* No answer to an RST. */
    guest_send(ghdr(53, 63, VIRTIO_VSOCK_OP_RST), NULL, 0);
    guest_expect_silence();
    cr_assert_eq(virtio_vsock_conns(vs), 0);
}

Test(virtio_vsock, unknown_op_on_a_connection_resets_it)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];
    uint32_t hport;
    int fd;

    open_dev();
    fd = open_host_conn(13, 65536, &hport);
    guest_send(ghdr(13, hport, 42), NULL, 0);
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 1000), 0);
    cr_assert_eq(stats().bad_packets, 1);
    close(fd);
}

Test(virtio_vsock, lengths_beyond_the_buffer_and_short_headers_are_dropped)
{
    uint32_t hport;
    uint8_t buf[64];
    int fd;

    open_dev();
    fd = open_host_conn(14, 65536, &hport);
    uint16_t before = hq_used_idx(&txq);
    struct virtio_vsock_hdr p = ghdr(14, hport, VIRTIO_VSOCK_OP_RW);
    p.len = 1000; /* but only 10 bytes follow */
    guest_queue_raw(&p, HDR, "0123456789", 10);
    p.len = 0xffffffffu;
    guest_queue_raw(&p, HDR, "0123456789", 10);
    guest_queue_raw(&p, 20, NULL, 0); /* 20 bytes: no full header */
    virtio_mmio_notify(&t, TXQ);
    pump(10);
    cr_assert_eq(hq_used_idx(&txq), (uint16_t)(before + 3));
    cr_assert_eq(stats().bad_packets, 3);
    cr_assert_eq(host_read(fd, buf, sizeof(buf), 40), -1, "bytes of a bad packet reached the host");
    cr_assert_not(mneeds_reset(&t));
    close(fd);
}

Test(virtio_vsock, tx_chain_with_writable_buffer_needs_reset)
{
    open_dev();
    struct virtio_vsock_hdr p = ghdr(1, 2, VIRTIO_VSOCK_OP_REQUEST);
    memcpy(gp(TX_AREA, HDR), &p, HDR);
    hq_set(&txq, 0, TX_AREA, HDR, VIRTQ_DESC_F_WRITE, 0);
    hq_offer(&txq, 0);
    virtio_mmio_notify(&t, TXQ);
    cr_assert(mneeds_reset(&t));
}

Test(virtio_vsock, tx_descriptor_outside_ram_or_looping_needs_reset)
{
    open_dev();
    hq_set(&txq, 0, 0xfffffff000ull, HDR, 0, 0);
    hq_offer(&txq, 0);
    virtio_mmio_notify(&t, TXQ);
    cr_assert(mneeds_reset(&t));

    reinit();
    hq_set(&txq, 0, TX_AREA, 8, VIRTQ_DESC_F_NEXT, 1);
    hq_set(&txq, 1, TX_AREA, 8, VIRTQ_DESC_F_NEXT, 0);
    hq_offer(&txq, 0);
    virtio_mmio_notify(&t, TXQ);
    cr_assert(mneeds_reset(&t));
}

Test(virtio_vsock, rx_buffer_shorter_than_a_header_needs_reset)
{
    open_dev();
    /* Take back the good buffers: reset and offer only a tiny one. */
    reinit();
    hq_set(&rxq, 0, RX_AREA, 16, VIRTQ_DESC_F_WRITE, 0);
    hq_offer(&rxq, 0);
    virtio_mmio_notify(&t, RXQ);
    guest_send(ghdr(1, 2, VIRTIO_VSOCK_OP_RW), "a", 1); /* makes an RST to send */
    cr_assert(mneeds_reset(&t));
}

Test(virtio_vsock, no_rx_buffers_holds_output_until_some_arrive)
{
    struct virtio_vsock_hdr hd;
    uint8_t buf[64];

    open_dev();
    reinit();
    guest_send(ghdr(1, 2, VIRTIO_VSOCK_OP_RW), "a", 1);
    pump(10);
    cr_assert_eq(hq_used_idx(&rxq), 0);
    post_all_rx();
    guest_recv(&hd, buf, sizeof(buf));
    cr_assert_eq(hd.op, VIRTIO_VSOCK_OP_RST);
}
