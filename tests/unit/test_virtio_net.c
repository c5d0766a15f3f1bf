/* Unit tests: virtio-net over a datagram socketpair standing in for the
 * tap (each datagram is a 12-byte virtio_net_hdr_v1 and a frame), with
 * io_uring doing the I/O: TX and RX paths, MRG_RXBUF, RX pause and
 * resume, offload checks, and hostile chains. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "evloop.h"
#include "virtio_harness.h"
#include "mmds.h"
#include "virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QSIZE 64
#define HDR   VIRTIO_NET_HDR_BYTES
#define RXQ   VIRTIO_NET_RXQ
#define TXQ   VIRTIO_NET_TXQ

static struct hdrv h;
static struct virtio_mmio t;
static struct evloop loop;
static struct virtio_net *net;
static int peer = -1; /* the host side of the "tap" */
static struct hq rxq, txq;
static unsigned irqs;
static struct htick tick;
static struct rate_limiter_config rl_rx, rl_tx; /* for the next open_dev */

static const uint64_t BASE_FEATURES =
    VIRTIO_FEATURE(VIRTIO_F_VERSION_1) | VIRTIO_FEATURE(VIRTIO_NET_F_MAC) |
    VIRTIO_FEATURE(VIRTIO_NET_F_MTU) | VIRTIO_FEATURE(VIRTIO_NET_F_STATUS);

static void count_irq(void *opaque)
{
    (void)opaque;
    irqs++;
}

/* One loop step that waits 2 ms at most. */
static void step(void)
{
    cr_assert_eq(htick_step(&tick), 0);
}

static void pump(unsigned ms)
{
    cr_assert_eq(htick_pump(&tick, ms), 0);
}

/* Guest buffer space: RX at H_BUF + 0x100000.., TX at H_BUF + 0x200000.. */
#define RX_AREA (H_BUF + 0x100000ull)
#define TX_AREA (H_BUF + 0x180000ull)
#define BIG     (H_BUF + 0x200000ull) /* 0x120000 bytes to the end of RAM */

static uint8_t *gp(uint64_t gpa, uint64_t len)
{
    uint8_t *p = guest_mem_slice(&h.mem, gpa, len);
    cr_assert_not_null(p);
    return p;
}

static void notify(unsigned q)
{
    virtio_mmio_notify(&t, q);
}

static void pump_until_used(struct hq *q, uint16_t want)
{
    for (int i = 0; i < 1000 && hq_used_idx(q) != want; i++)
        step();
    cr_assert_eq(hq_used_idx(q), want, "used idx %u, expected %u", hq_used_idx(q), want);
}

static uint16_t dev_mtu; /* net_config.mtu of the next open_dev (0: not set) */

static void open_dev_mac(uint64_t features, const uint8_t *mac)
{
    struct net_config cfg = {
        .tap = "unit0", .rx_rate_limiter = rl_rx, .tx_rate_limiter = rl_tx, .mtu = dev_mtu};
    char err[256];
    int sv[2];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    peer = sv[1];
    if (mac) {
        memcpy(cfg.mac, mac, 6);
        cfg.has_mac = true;
    }
    cr_assert_eq(virtio_net_create_fd(&net, sv[0], false, &cfg, &loop, err, sizeof(err)), 0, "%s",
                 err);
    virtio_mmio_init(&t, &virtio_net_ops, net, &h.mem, 0xc0001000, 5, count_irq, NULL);
    cr_assert_eq(hdriver_init(&h, &t, features, 2), 0x0f);
    pump(4); /* the activation's wake-up */
}

static void open_dev(uint64_t extra)
{
    open_dev_mac(BASE_FEATURES | extra, NULL);
}

static void setup(void)
{
    hdrv_init(&h, QSIZE);
    cr_assert_eq(evloop_init(&loop, 128), 0);
    htick_init(&tick, &loop);
    rxq = hq_make(&h, RXQ);
    txq = hq_make(&h, TXQ);
    irqs = 0;
    memset(&rl_rx, 0, sizeof(rl_rx));
    memset(&rl_tx, 0, sizeof(rl_tx));
    log_set_level(LOG_OFF);
}

static void teardown(void)
{
    evloop_fini(&loop);
    virtio_net_destroy(net);
    net = NULL;
    if (peer >= 0)
        close(peer);
    peer = -1;
    guest_mem_destroy(&h.mem);
    log_set_level(LOG_WARN);
}

TestSuite(virtio_net, .init = setup, .fini = teardown);

/* ---- host side ---- */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

/* Send one datagram: header then `len` bytes of frame with pattern `seed`. */
static void host_send(const struct virtio_net_hdr_v1 *hdr, size_t len, unsigned seed)
{
    static uint8_t buf[70000];
    struct virtio_net_hdr_v1 zero = {0};
    memcpy(buf, hdr ? hdr : &zero, HDR);
    fill(buf + HDR, len, seed);
    cr_assert_eq(send(peer, buf, HDR + len, 0), (ssize_t)(HDR + len), "send: %s", strerror(errno));
}

/* Receive one datagram if there is one (-1 if not). */
static ssize_t host_recv(uint8_t *buf, size_t cap)
{
    return recv(peer, buf, cap, MSG_DONTWAIT);
}

/* ---- guest side ---- */

/* Post one receive chain of `len` writable bytes at `gpa` as descriptor d. */
static void post_rx(uint16_t d, uint64_t gpa, uint32_t len)
{
    hq_set(&rxq, d, gpa, len, VIRTQ_DESC_F_WRITE, 0);
    hq_offer(&rxq, d);
}

/* A TX chain at descriptors d, d+1..: header (12 bytes) then the frame
 * split into `nseg` descriptors. */
static void post_tx(uint16_t d, const struct virtio_net_hdr_v1 *hdr, uint64_t gpa, uint32_t len,
                    unsigned nseg, unsigned seed)
{
    struct virtio_net_hdr_v1 zero = {0};
    memcpy(gp(gpa, HDR), hdr ? hdr : &zero, HDR);
    fill(gp(gpa + HDR, len ? len : 1), len, seed);
    hq_set(&txq, d, gpa, HDR, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
    uint32_t off = 0;
    for (unsigned i = 0; i < nseg; i++) {
        uint32_t n = i == nseg - 1 ? len - off : len / nseg;
        bool last = i == nseg - 1;
        hq_set(&txq, d + 1 + i, gpa + HDR + off, n, last ? 0 : VIRTQ_DESC_F_NEXT,
               (uint16_t)(d + 2 + i));
        off += n;
    }
    hq_offer(&txq, d);
}

static void expect_frame(const uint8_t *got, size_t len, unsigned seed)
{
    static uint8_t want[70000];
    fill(want, len, seed);
    cr_assert_eq(memcmp(got, want, len), 0, "frame content differs");
}

/* ---- configuration ---- */

Test(virtio_net, config_space_and_features)
{
    const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    open_dev_mac(BASE_FEATURES, mac);
    uint8_t cfg[12];
    for (unsigned i = 0; i < sizeof(cfg); i++)
        virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + i, &cfg[i], 1);
    cr_assert_eq(memcmp(cfg, mac, 6), 0);
    uint16_t status, pairs, mtu;
    memcpy(&status, cfg + VIRTIO_NET_CFG_STATUS, 2);
    memcpy(&pairs, cfg + VIRTIO_NET_CFG_MAX_VIRTQUEUE_PAIRS, 2);
    memcpy(&mtu, cfg + VIRTIO_NET_CFG_MTU, 2);
    cr_assert_eq(status, VIRTIO_NET_S_LINK_UP);
    cr_assert_eq(pairs, 1);
    cr_assert_eq(mtu, VIRTIO_NET_MTU);
    uint8_t beyond = 0xaa;
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + 12, &beyond, 1);
    cr_assert_eq(beyond, 0, "reads past the config space are zero");

    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t f = mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES);
    const unsigned want[] = {VIRTIO_NET_F_CSUM,       VIRTIO_NET_F_GUEST_CSUM,
                             VIRTIO_NET_F_MTU,        VIRTIO_NET_F_MAC,
                             VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
                             VIRTIO_NET_F_HOST_TSO4,  VIRTIO_NET_F_HOST_TSO6,
                             VIRTIO_NET_F_MRG_RXBUF,  VIRTIO_NET_F_STATUS};
    for (unsigned i = 0; i < ARRAY_SIZE(want); i++)
        cr_assert(f & (1u << want[i]), "feature %u offered", want[i]);
    cr_assert_eq(f & (1u << VIRTIO_NET_F_GUEST_UFO), 0, "no UFO");
    cr_assert_eq(f & (1u << 17), 0, "no control queue");
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 2);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "two queues only");
}

Test(virtio_net, generated_mac_is_locally_administered_unicast)
{
    open_dev(0);
    uint8_t mac[6], cfg[6];
    virtio_net_mac(net, mac);
    for (unsigned i = 0; i < 6; i++)
        virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + i, &cfg[i], 1);
    cr_assert_eq(memcmp(mac, cfg, 6), 0);
    cr_assert_eq(mac[0], 0x06);
    cr_assert_eq(mac[0] & 1, 0, "unicast");
    cr_assert_eq(mac[0] & 2, 2, "locally administered");
}

Test(virtio_net, create_names_a_missing_or_bad_tap)
{
    struct net_config cfg = {.tap = "flintnosuch0"};
    char err[256] = "";
    struct virtio_net *n = NULL;
    cr_assert_eq(virtio_net_create(&n, &cfg, &loop, err, sizeof(err)), -ENODEV);
    cr_assert(strstr(err, "tap flintnosuch0: no such network interface"), "%s", err);
    cfg.tap = "a-name-longer-than-ifnamsiz";
    cr_assert_eq(virtio_net_create(&n, &cfg, &loop, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "a name of 1 to 15 characters"), "%s", err);
    cr_assert_null(n);
}

/* ---- TX ---- */

Test(virtio_net, tx_header_and_multi_descriptor_frame)
{
    uint8_t buf[4096];
    open_dev(0);
    struct virtio_net_hdr_v1 hdr = {.num_buffers = 0x7777};
    post_tx(0, &hdr, TX_AREA, 1000, 3, 1);         /* header + 3 segments */
    post_tx(10, NULL, TX_AREA + 0x1000, 60, 1, 2); /* header + 1 segment */
    notify(TXQ);
    pump_until_used(&txq, 2);
    uint32_t id, len;
    hq_used(&txq, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, 0, "TX used length: the device wrote nothing");
    hq_used(&txq, 1, &id, &len);
    cr_assert_eq(id, 10);

    ssize_t n = host_recv(buf, sizeof(buf));
    cr_assert_eq(n, HDR + 1000);
    struct virtio_net_hdr_v1 got;
    memcpy(&got, buf, HDR);
    cr_assert_eq(got.num_buffers, 0, "the device sends its own copy of the header");
    cr_assert_eq(got.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    expect_frame(buf + HDR, 1000, 1);
    n = host_recv(buf, sizeof(buf));
    cr_assert_eq(n, HDR + 60, "frames leave in order");
    expect_frame(buf + HDR, 60, 2);
    cr_assert_eq(host_recv(buf, sizeof(buf)), -1, "nothing else");

    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.tx_frames, 2);
    cr_assert_eq(st.tx_bytes, 1060);
    cr_assert_eq(st.tx_dropped, 0);
    cr_assert_not(mneeds_reset(&t));
}

Test(virtio_net, tx_header_shares_or_splits_descriptors)
{
    uint8_t buf[4096];
    open_dev(0);
    /* Header and frame in one descriptor (Linux's any_header_sg layout). */
    memset(gp(TX_AREA, HDR), 0, HDR);
    fill(gp(TX_AREA + HDR, 200), 200, 3);
    hq_set(&txq, 0, TX_AREA, HDR + 200, 0, 0);
    hq_offer(&txq, 0);
    /* Header split 5 + 7, frame 100 after it in the second descriptor. */
    memset(gp(TX_AREA + 0x1000, 5), 0, 5);
    memset(gp(TX_AREA + 0x2000, 7), 0, 7);
    fill(gp(TX_AREA + 0x2000 + 7, 100), 100, 4);
    hq_set(&txq, 1, TX_AREA + 0x1000, 5, VIRTQ_DESC_F_NEXT, 2);
    hq_set(&txq, 2, TX_AREA + 0x2000, 107, 0, 0);
    hq_offer(&txq, 1);
    notify(TXQ);
    pump_until_used(&txq, 2);
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 200);
    expect_frame(buf + HDR, 200, 3);
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 100);
    expect_frame(buf + HDR, 100, 4);
}

Test(virtio_net, tx_many_frames_leave_in_order_with_few_interrupts)
{
    static uint8_t buf[4096];
    open_dev(0);
    /* More than one batch: 48 frames of different sizes, each header and
     * frame in one descriptor. */
    for (unsigned i = 0; i < 48; i++) {
        uint64_t at = TX_AREA + 0x800ull * i;
        memset(gp(at, HDR), 0, HDR);
        fill(gp(at + HDR, 60 + i * 20), 60 + i * 20, i);
        hq_set(&txq, i, at, HDR + 60 + i * 20, 0, 0);
        hq_offer(&txq, (uint16_t)i);
    }
    irqs = 0;
    notify(TXQ);
    pump_until_used(&txq, 48);
    for (unsigned i = 0; i < 48; i++) {
        ssize_t n = host_recv(buf, sizeof(buf));
        cr_assert_eq(n, HDR + 60 + i * 20, "frame %u", i);
        expect_frame(buf + HDR, 60 + i * 20, i);
    }
    cr_assert_leq(irqs, 4, "one interrupt per completion batch, got %u", irqs);
    cr_assert_geq(irqs, 1);
}

Test(virtio_net, tx_too_short_or_too_long_frames_are_dropped)
{
    uint8_t buf[2048];
    open_dev(0);
    post_tx(0, NULL, TX_AREA, 13, 1, 1);            /* below an Ethernet header */
    post_tx(2, NULL, TX_AREA + 0x1000, 1519, 1, 2); /* MTU + 18 + 1 without TSO */
    post_tx(4, NULL, TX_AREA + 0x2000, 1518, 1, 3); /* the largest allowed */
    hq_set(&txq, 6, TX_AREA + 0x3000, HDR, 0, 0);   /* header, no frame at all */
    memset(gp(TX_AREA + 0x3000, HDR), 0, HDR);
    hq_offer(&txq, 6);
    notify(TXQ);
    pump_until_used(&txq, 4);
    cr_assert_not(mneeds_reset(&t), "a bad frame is dropped, the device goes on");
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 1518);
    expect_frame(buf + HDR, 1518, 3);
    cr_assert_eq(host_recv(buf, sizeof(buf)), -1);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.tx_dropped, 3);
    cr_assert_eq(st.tx_frames, 1);
}

Test(virtio_net, tx_tso_allows_big_frames_up_to_65550)
{
    static uint8_t buf[70000];
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_CSUM) | VIRTIO_FEATURE(VIRTIO_NET_F_HOST_TSO4));
    post_tx(0, NULL, BIG, 65550, 4, 5);
    post_tx(6, NULL, BIG + 0x10000 + 0x100, 65551, 4, 6);
    notify(TXQ);
    pump_until_used(&txq, 2);
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 65550);
    expect_frame(buf + HDR, 65550, 5);
    cr_assert_eq(host_recv(buf, sizeof(buf)), -1, "65551 bytes is too long");
}

Test(virtio_net, tx_offloads_not_negotiated_are_dropped)
{
    uint8_t buf[2048];
    open_dev(0);
    struct virtio_net_hdr_v1 tso = {
        .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1000, .hdr_len = 54};
    struct virtio_net_hdr_v1 csum = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};
    struct virtio_net_hdr_v1 udp = {.gso_type = VIRTIO_NET_HDR_GSO_UDP, .gso_size = 100};
    struct virtio_net_hdr_v1 ecn = {.gso_type = VIRTIO_NET_HDR_GSO_ECN};
    post_tx(0, &tso, TX_AREA, 100, 1, 1);
    post_tx(2, &csum, TX_AREA + 0x1000, 100, 1, 2);
    post_tx(4, &udp, TX_AREA + 0x2000, 100, 1, 3);
    post_tx(6, &ecn, TX_AREA + 0x3000, 100, 1, 4);
    notify(TXQ);
    pump_until_used(&txq, 4);
    cr_assert_eq(host_recv(buf, sizeof(buf)), -1, "nothing the guest may not send");
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.tx_dropped, 4);
    cr_assert_not(mneeds_reset(&t));
}

Test(virtio_net, tx_checksum_offload_passes_when_negotiated)
{
    uint8_t buf[2048];
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_CSUM));
    struct virtio_net_hdr_v1 csum = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM | 0x80, .csum_start = 34, .csum_offset = 16};
    post_tx(0, &csum, TX_AREA, 100, 1, 1);
    notify(TXQ);
    pump_until_used(&txq, 1);
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 100);
    struct virtio_net_hdr_v1 got;
    memcpy(&got, buf, HDR);
    cr_assert_eq(got.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM, "unknown flag bits cleared");
    cr_assert_eq(got.csum_start, 34);
    cr_assert_eq(got.csum_offset, 16);
}

static void expect_needs_reset_without_used(struct hq *q, unsigned queue)
{
    irqs = 0;
    notify(queue);
    pump(4);
    cr_assert(mneeds_reset(&t));
    cr_assert_eq(hq_used_idx(q), 0, "nothing was returned for the bad chain");
    cr_assert(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG,
              "configuration change interrupt (§2.1.2)");
    cr_assert_geq(irqs, 1);
}

Test(virtio_net, tx_chain_without_header_needs_reset)
{
    uint8_t buf[64];
    open_dev(0);
    hq_set(&txq, 0, TX_AREA, 8, 0, 0);
    hq_offer(&txq, 0);
    expect_needs_reset_without_used(&txq, TXQ);
    cr_assert_eq(host_recv(buf, sizeof(buf)), -1);
}

Test(virtio_net, tx_chain_with_writable_buffer_needs_reset)
{
    open_dev(0);
    memset(gp(TX_AREA, 200), 0, 200);
    hq_set(&txq, 0, TX_AREA, HDR + 60, VIRTQ_DESC_F_NEXT, 1);
    hq_set(&txq, 1, TX_AREA + 100, 64, VIRTQ_DESC_F_WRITE, 0);
    hq_offer(&txq, 0);
    expect_needs_reset_without_used(&txq, TXQ);
}

Test(virtio_net, tx_buffer_outside_ram_and_loops_need_reset)
{
    open_dev(0);
    hq_set(&txq, 0, 0xc0000000ull, HDR + 60, 0, 0);
    hq_offer(&txq, 0);
    expect_needs_reset_without_used(&txq, TXQ);

    /* The driver resets and starts over: a loop is caught as well. */
    txq = hq_make(&h, TXQ);
    rxq = hq_make(&h, RXQ);
    memset(gp(H_AVAIL, 0x100), 0, 0x100);
    memset(gp(H_AVAIL + txq.off, 0x100), 0, 0x100);
    memset(gp(H_USED + txq.off, 0x400), 0, 0x400);
    cr_assert_eq(hdriver_init(&h, &t, BASE_FEATURES, 2), 0x0f);
    pump(4);
    hq_set(&txq, 0, TX_AREA, HDR, VIRTQ_DESC_F_NEXT, 1);
    hq_set(&txq, 1, TX_AREA, 60, VIRTQ_DESC_F_NEXT, 0);
    hq_offer(&txq, 0);
    expect_needs_reset_without_used(&txq, TXQ);
}

/* ---- RX ---- */

static struct virtio_net_hdr_v1 rx_header(uint64_t gpa)
{
    struct virtio_net_hdr_v1 hdr;
    memcpy(&hdr, gp(gpa, HDR), HDR);
    return hdr;
}

Test(virtio_net, rx_frame_lands_in_the_posted_buffer)
{
    open_dev(0);
    memset(gp(RX_AREA, 2048), 0xee, 2048);
    post_rx(0, RX_AREA, 2048);
    notify(RXQ);
    pump(2);
    irqs = 0;
    struct virtio_net_hdr_v1 h0 = {.num_buffers = 9, .flags = VIRTIO_NET_HDR_F_DATA_VALID};
    host_send(&h0, 60, 7);
    pump_until_used(&rxq, 1);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, HDR + 60);
    struct virtio_net_hdr_v1 hdr = rx_header(RX_AREA);
    cr_assert_eq(hdr.num_buffers, 1, "num_buffers is 1 without MRG_RXBUF");
    cr_assert_eq(hdr.flags, 0, "no checksum flags without GUEST_CSUM (§5.1.6.4.1)");
    expect_frame(gp(RX_AREA + HDR, 60), 60, 7);
    cr_assert_eq(*gp(RX_AREA + HDR + 60, 1), 0xee, "nothing written past the frame");
    cr_assert_geq(irqs, 1, "used buffer interrupt");
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_frames, 1);
    cr_assert_eq(st.rx_bytes, 60);
}

Test(virtio_net, rx_pauses_without_buffers_and_loses_nothing)
{
    open_dev(0);
    notify(RXQ); /* the driver kicks with an empty ring */
    for (unsigned i = 0; i < 6; i++)
        host_send(NULL, 100 + i, 20 + i);
    pump(20);
    cr_assert_eq(hq_used_idx(&rxq), 0);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_geq(st.rx_no_buffers, 1, "the pause is counted");
    cr_assert_eq(st.rx_dropped, 0);
    cr_assert_eq(virtio_net_inflight(net), 0, "no read while the guest has no buffers");

    /* Three buffers first: three frames; the rest wait in the "tap". */
    for (unsigned i = 0; i < 3; i++)
        post_rx((uint16_t)i, RX_AREA + 0x1000ull * i, 2048);
    notify(RXQ);
    pump_until_used(&rxq, 3);
    pump(10);
    cr_assert_eq(hq_used_idx(&rxq), 3, "no frame without a buffer");
    for (unsigned i = 3; i < 6; i++)
        post_rx((uint16_t)i, RX_AREA + 0x1000ull * i, 2048);
    notify(RXQ);
    pump_until_used(&rxq, 6);
    for (unsigned i = 0; i < 6; i++) {
        uint32_t id, len;
        hq_used(&rxq, (uint16_t)i, &id, &len);
        cr_assert_eq(id, i);
        cr_assert_eq(len, HDR + 100 + i, "frame %u in order", i);
        expect_frame(gp(RX_AREA + 0x1000ull * i + HDR, 100 + i), 100 + i, 20 + i);
    }
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_frames, 6);
    cr_assert_eq(st.rx_dropped, 0);
}

Test(virtio_net, rx_mergeable_buffers_span_several_chains)
{
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    for (unsigned i = 0; i < 6; i++)
        post_rx((uint16_t)i, RX_AREA + 0x1000ull * i, 512);
    notify(RXQ);
    pump(2);
    host_send(NULL, 1400, 9);
    pump_until_used(&rxq, 3);
    uint32_t id, len, total = 0;
    const uint32_t want[3] = {512, 512, HDR + 1400 - 1024};
    static uint8_t frame[2048];
    for (unsigned i = 0; i < 3; i++) {
        hq_used(&rxq, (uint16_t)i, &id, &len);
        cr_assert_eq(id, i);
        cr_assert_eq(len, want[i]);
        memcpy(frame + total, gp(RX_AREA + 0x1000ull * i, len), len);
        total += len;
    }
    struct virtio_net_hdr_v1 hdr;
    memcpy(&hdr, frame, HDR);
    cr_assert_eq(hdr.num_buffers, 3);
    expect_frame(frame + HDR, 1400, 9);

    /* The next read holds chains 4-6; the fourth takes the next frame. */
    host_send(NULL, 100, 10);
    pump_until_used(&rxq, 4);
    hq_used(&rxq, 3, &id, &len);
    cr_assert_eq(id, 3);
    cr_assert_eq(len, HDR + 100);
    cr_assert_eq(rx_header(RX_AREA + 0x3000).num_buffers, 1);
    expect_frame(gp(RX_AREA + 0x3000 + HDR, 100), 100, 10);
}

Test(virtio_net, rx_mergeable_buffers_wait_for_room_for_a_full_frame)
{
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    post_rx(0, RX_AREA, 512);
    post_rx(1, RX_AREA + 0x1000, 512);
    notify(RXQ);
    host_send(NULL, 100, 1);
    pump(20);
    cr_assert_eq(hq_used_idx(&rxq), 0, "1 KiB of buffers cannot take every frame: RX waits");
    cr_assert_eq(virtio_net_inflight(net), 0);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_geq(st.rx_no_buffers, 1);
    post_rx(2, RX_AREA + 0x2000, 512);
    post_rx(3, RX_AREA + 0x3000, 512);
    notify(RXQ);
    pump_until_used(&rxq, 1);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, HDR + 100);
    expect_frame(gp(RX_AREA + HDR, 100), 100, 1);
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 0);
}

Test(virtio_net, rx_leftover_merged_buffer_keeps_room_for_the_header)
{
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    post_rx(0, RX_AREA, 1528);
    post_rx(1, RX_AREA + 0x1000, 1000);
    post_rx(2, RX_AREA + 0x2000, 2048);
    notify(RXQ);
    pump(2);
    host_send(NULL, 1516, 1); /* exactly fills the first buffer */
    pump_until_used(&rxq, 1);
    host_send(NULL, 100, 2);
    pump_until_used(&rxq, 2);
    uint32_t id, len;
    hq_used(&rxq, 1, &id, &len);
    cr_assert_eq(id, 1, "the second buffer, whole, takes the next frame");
    cr_assert_eq(len, HDR + 100);
    cr_assert_eq(rx_header(RX_AREA + 0x1000).num_buffers, 1);
    expect_frame(gp(RX_AREA + 0x1000 + HDR, 100), 100, 2);
}

Test(virtio_net, rx_frame_longer_than_the_mtu_is_dropped_even_if_it_fits)
{
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    post_rx(0, RX_AREA, 4096);
    notify(RXQ);
    pump(2);
    host_send(NULL, 1519, 1); /* MTU + 18 + 1 */
    host_send(NULL, 1518, 2);
    pump_until_used(&rxq, 1);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(len, HDR + 1518);
    expect_frame(gp(RX_AREA + HDR, 1518), 1518, 2);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 1);
}

/* The interface's mtu (PUT /network-interfaces "mtu") is what the config
 * space offers and what bounds frames both ways. */
Test(virtio_net, interface_mtu_is_offered_and_bounds_frames)
{
    dev_mtu = 9000;
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    uint16_t mtu = 0;
    for (unsigned i = 0; i < 2; i++)
        virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG + VIRTIO_NET_CFG_MTU + i,
                                 (uint8_t *)&mtu + i, 1);
    cr_assert_eq(mtu, 9000);
    post_rx(0, RX_AREA, 0x4000);
    notify(RXQ);
    pump(2);
    host_send(NULL, 9019, 1); /* MTU + 18 + 1 */
    host_send(NULL, 9018, 2);
    pump_until_used(&rxq, 1);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(len, HDR + 9018, "a jumbo frame up to the MTU arrives whole");
    expect_frame(gp(RX_AREA + HDR, 9018), 9018, 2);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 1, "one byte more is dropped");
}

Test(virtio_net, rx_frame_larger_than_the_buffers_is_dropped)
{
    open_dev(0);
    post_rx(0, RX_AREA, HDR + 1518);
    notify(RXQ);
    pump(2);
    host_send(NULL, 1600, 1); /* more than MTU + 18 */
    pump(10);
    cr_assert_eq(hq_used_idx(&rxq), 0, "dropped; the full-size buffer stays posted");
    host_send(NULL, 70, 2);
    pump_until_used(&rxq, 1);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(len, HDR + 70);
    expect_frame(gp(RX_AREA + HDR, 70), 70, 2);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 1);
    cr_assert_not(mneeds_reset(&t));
}

Test(virtio_net, rx_buffer_too_small_is_returned_unused)
{
    open_dev(0);
    memset(gp(RX_AREA, 64), 0xee, 64);
    post_rx(0, RX_AREA, 64);
    post_rx(1, RX_AREA + 0x1000, 2048);
    notify(RXQ);
    pump(2);
    host_send(NULL, 200, 3);
    host_send(NULL, 300, 4);
    pump_until_used(&rxq, 2);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, 0, "the 64-byte buffer comes back empty");
    hq_used(&rxq, 1, &id, &len);
    cr_assert_eq(id, 1);
    cr_assert_eq(len, HDR + 300, "the next frame fits the next buffer");
    expect_frame(gp(RX_AREA + 0x1000 + HDR, 300), 300, 4);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 1);
    cr_assert_not(mneeds_reset(&t));
}

Test(virtio_net, rx_runt_frames_are_dropped)
{
    open_dev(0);
    post_rx(0, RX_AREA, 2048);
    notify(RXQ);
    pump(2);
    host_send(NULL, 8, 1); /* shorter than an Ethernet header */
    char zero = 0;
    cr_assert_eq(send(peer, &zero, 1, 0), 1); /* not even a header */
    pump(10);
    cr_assert_eq(hq_used_idx(&rxq), 0);
    host_send(NULL, 64, 2);
    pump_until_used(&rxq, 1);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 2);
    cr_assert_eq(st.rx_frames, 1);
}

Test(virtio_net, rx_offloads_the_guest_did_not_negotiate_never_reach_it)
{
    open_dev(0);
    post_rx(0, RX_AREA, 2048);
    notify(RXQ);
    pump(2);
    struct virtio_net_hdr_v1 tso = {.gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448};
    struct virtio_net_hdr_v1 csum = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM};
    host_send(&tso, 100, 1);
    host_send(&csum, 100, 2);
    host_send(NULL, 100, 3);
    pump_until_used(&rxq, 1);
    expect_frame(gp(RX_AREA + HDR, 100), 100, 3);
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    cr_assert_eq(st.rx_dropped, 2);
}

Test(virtio_net, rx_gso_frames_pass_with_guest_tso)
{
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_FEATURE(VIRTIO_NET_F_GUEST_TSO4) |
             VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    /* 40 buffers of 2 KiB: a 65000-byte frame and its header take 32. */
    for (unsigned i = 0; i < 40; i++)
        post_rx((uint16_t)i, BIG + 0x800ull * i, 2048);
    notify(RXQ);
    pump(2);
    struct virtio_net_hdr_v1 tso = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                    .gso_size = 1448,
                                    .hdr_len = 66,
                                    .csum_start = 34,
                                    .csum_offset = 16};
    host_send(&tso, 65000, 4);
    pump_until_used(&rxq, 32);
    struct virtio_net_hdr_v1 hdr = rx_header(BIG);
    cr_assert_eq(hdr.num_buffers, 32);
    cr_assert_eq(hdr.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    cr_assert_eq(hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    cr_assert_eq(hdr.gso_size, 1448);
    expect_frame(gp(BIG + HDR, 65000), 65000, 4);
}

Test(virtio_net, rx_readable_or_tiny_chains_need_reset)
{
    open_dev(0);
    hq_set(&rxq, 0, RX_AREA, 2048, 0, 0); /* device-readable */
    hq_offer(&rxq, 0);
    expect_needs_reset_without_used(&rxq, RXQ);
}

Test(virtio_net, rx_chain_shorter_than_the_header_needs_reset)
{
    open_dev(VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    post_rx(0, RX_AREA, 8);
    expect_needs_reset_without_used(&rxq, RXQ);
}

Test(virtio_net, rx_chain_mixing_readable_and_writable_needs_reset)
{
    open_dev(0);
    hq_set(&rxq, 0, RX_AREA, 12, VIRTQ_DESC_F_NEXT, 1);
    hq_set(&rxq, 1, RX_AREA + 0x100, 2048, VIRTQ_DESC_F_WRITE, 0);
    hq_offer(&rxq, 0);
    expect_needs_reset_without_used(&rxq, RXQ);
}

Test(virtio_net, reset_takes_back_an_outstanding_read)
{
    open_dev(0);
    memset(gp(RX_AREA, 2048), 0xaa, 2048);
    post_rx(0, RX_AREA, 2048);
    notify(RXQ);
    pump(2);
    cr_assert_eq(virtio_net_inflight(net), 1, "a read waits in the old buffer");
    mwr(&t, VIRTIO_MMIO_STATUS, 0);
    for (int i = 0; i < 500 && virtio_net_inflight(net); i++)
        step();
    cr_assert_eq(virtio_net_inflight(net), 0, "the read was cancelled");

    /* The driver starts over with a new buffer; the frame goes there. */
    rxq = hq_make(&h, RXQ);
    memset(gp(H_AVAIL, 0x100), 0, 0x100);
    memset(gp(H_USED, 0x400), 0, 0x400);
    cr_assert_eq(hdriver_init(&h, &t, BASE_FEATURES, 2), 0x0f);
    pump(4);
    post_rx(0, RX_AREA + 0x1000, 2048);
    notify(RXQ);
    pump(2);
    host_send(NULL, 90, 5);
    pump_until_used(&rxq, 1);
    uint32_t id, len;
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(len, HDR + 90);
    expect_frame(gp(RX_AREA + 0x1000 + HDR, 90), 90, 5);
    for (unsigned i = 0; i < 2048; i++)
        cr_assert_eq(*gp(RX_AREA + i, 1), 0xaa, "the old buffer is untouched");
}

Test(virtio_net, frames_both_ways_at_once)
{
    static uint8_t buf[4096];
    open_dev(VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) | VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF));
    for (unsigned i = 0; i < 16; i++)
        post_rx((uint16_t)i, RX_AREA + 0x1000ull * i, 2048);
    notify(RXQ);
    for (unsigned i = 0; i < 16; i++) {
        post_tx((uint16_t)(2 * i), NULL, TX_AREA + 0x800ull * i, 100 + i, 1, 40 + i);
        host_send(NULL, 200 + i, 60 + i);
    }
    notify(TXQ);
    pump_until_used(&txq, 16);
    pump_until_used(&rxq, 16);
    for (unsigned i = 0; i < 16; i++) {
        cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 100 + i);
        expect_frame(buf + HDR, 100 + i, 40 + i);
        expect_frame(gp(RX_AREA + 0x1000ull * i + HDR, 200 + i), 200 + i, 60 + i);
    }
}

/* ---- rate limiting ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct virtio_net_stats stats(void)
{
    struct virtio_net_stats st;
    virtio_net_get_stats(net, &st);
    return st;
}

Test(virtio_net, tx_limiter_holds_frames_in_the_ring_until_the_timer)
{
    /* 2 frames at once, then one every 100 ms. */
    uint8_t buf[2048];
    uint64_t t0;

    rl_tx.ops = (struct token_bucket_config){.size = 2, .refill_time_ms = 200};
    open_dev(0);
    for (unsigned i = 0; i < 4; i++)
        post_tx((uint16_t)(i * 2), NULL, TX_AREA + i * 0x1000, 100, 1, i);
    t0 = now_ms();
    notify(TXQ);
    pump(40);
    cr_assert_eq(hq_used_idx(&txq), 2, "two frames pass, the others wait");
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 100);
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 100);
    cr_assert_eq(host_recv(buf, sizeof(buf)), -1, "nothing more left yet");
    cr_assert_geq(stats().tx_rate_limiter_throttled, 1);
    notify(TXQ); /* kicking again changes nothing */
    pump(4);
    cr_assert_eq(hq_used_idx(&txq), 2);
    pump_until_used(&txq, 4);
    cr_assert_geq(now_ms() - t0, 195, "the 4th frame needs 2 refills of 100 ms");
    for (unsigned i = 2; i < 4; i++) {
        cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 100, "frame %u", i);
        expect_frame(buf + HDR, 100, i);
    }
    cr_assert_eq(stats().tx_frames, 4);
    cr_assert_eq(stats().tx_dropped, 0);
}

Test(virtio_net, rx_limiter_stops_reading_the_tap_and_drops_nothing)
{
    uint64_t t0;

    /* 1000 bytes at once, then 1 byte per ms: 400-byte frames. */
    rl_rx.bandwidth = (struct token_bucket_config){.size = 1000, .refill_time_ms = 1000};
    open_dev(0);
    for (unsigned i = 0; i < 5; i++)
        post_rx((uint16_t)i, RX_AREA + i * 0x1000, 2048);
    notify(RXQ);
    t0 = now_ms();
    for (unsigned i = 0; i < 5; i++)
        host_send(NULL, 400, i);
    pump(20);
    /* 400 + 400 + 400 (the third into debt), then the tap waits. */
    cr_assert_eq(hq_used_idx(&rxq), 3);
    cr_assert_geq(stats().rx_rate_limiter_throttled, 1);
    pump_until_used(&rxq, 5);
    /* The tap is read again once the debt is paid and a byte is there: the
     * 5th frame waits for the 4 before it, 600 bytes beyond the bucket. */
    cr_assert_geq(now_ms() - t0, 595);
    for (unsigned i = 0; i < 5; i++)
        expect_frame(gp(RX_AREA + i * 0x1000 + HDR, 400), 400, i);
    cr_assert_eq(stats().rx_dropped, 0);
    cr_assert_eq(stats().rx_frames, 5);
}

Test(virtio_net, new_limits_resume_a_throttled_direction)
{
    struct rate_limiter_config none = {0};
    uint8_t buf[2048];

    rl_tx.ops = (struct token_bucket_config){.size = 1, .refill_time_ms = 60000};
    open_dev(0);
    for (unsigned i = 0; i < 3; i++)
        post_tx((uint16_t)(i * 2), NULL, TX_AREA + i * 0x1000, 60, 1, i);
    notify(TXQ);
    pump(20);
    cr_assert_eq(hq_used_idx(&txq), 1);
    virtio_net_set_rate_limiters(net, &none, &none);
    uint64_t t0 = now_ms();
    pump_until_used(&txq, 3);
    cr_assert_lt(now_ms() - t0, 5000, "not the minute the old limit asked for");
    for (unsigned i = 0; i < 3; i++)
        cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 60);
}

/* ---- the MMDS hook (mmds.h) ---- */

/* A TX chain holding a zero header and `len` bytes of `frame`. */
static void post_tx_bytes(uint16_t d, uint64_t gpa, const uint8_t *frame, uint32_t len)
{
    memset(gp(gpa, HDR), 0, HDR);
    memcpy(gp(gpa + HDR, len), frame, len);
    hq_set(&txq, d, gpa, HDR + len, 0, 0);
    hq_offer(&txq, d);
}

Test(virtio_net, mmds_frames_stay_off_the_tap_and_answers_reach_rx)
{
    static const uint8_t guest_mac[6] = {0x02, 0, 0, 0, 0, 9};
    uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, buf[2048];
    struct mmds store;
    uint32_t id, len;
    uint8_t *reply;

    cr_assert_eq(mmds_init(&store, 0), 0);
    open_dev(0);
    cr_assert_eq(virtio_net_set_mmds(net, &store), 0);
    post_rx(0, RX_AREA, 2048);
    notify(RXQ);
    pump(4); /* a read of the idle "tap" is now outstanding */
    cr_assert_eq(virtio_net_inflight(net), 1);
    /* An ARP request for 169.254.169.254 from 169.254.0.2. */
    static const uint8_t arp_fields[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
    memcpy(arp + 6, guest_mac, 6);
    memcpy(arp + 12, arp_fields, sizeof(arp_fields));
    memcpy(arp + 22, guest_mac, 6);
    memcpy(arp + 28, (const uint8_t[]){169, 254, 0, 2}, 4);
    memcpy(arp + 38, (const uint8_t[]){169, 254, 169, 254}, 4);
    post_tx_bytes(0, TX_AREA, arp, sizeof(arp));
    notify(TXQ);
    pump_until_used(&txq, 1);
    pump_until_used(&rxq, 1);
    cr_assert_lt(host_recv(buf, sizeof(buf)), 0, "the MMDS's frame reached the tap");
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(len, HDR + 42);
    reply = gp(RX_AREA + HDR, 42);
    cr_assert_eq(memcmp(reply, guest_mac, 6), 0);
    cr_assert_eq(reply[21], 2, "an ARP reply");
    cr_assert_eq(rx_header(RX_AREA).num_buffers, 1);
    /* Another destination goes to the tap as before. */
    arp[41] = 253;
    post_tx_bytes(1, TX_AREA + 0x1000, arp, sizeof(arp));
    notify(TXQ);
    pump_until_used(&txq, 2);
    pump(4);
    cr_assert_eq(host_recv(buf, sizeof(buf)), HDR + 42);
    /* The device owns its endpoint; the store outlives it in flint. */
    evloop_fini(&loop);
    virtio_net_destroy(net);
    net = NULL;
    cr_assert_eq(evloop_init(&loop, 128), 0);
    mmds_fini(&store);
}
