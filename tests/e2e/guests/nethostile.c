/*
 * nethostile: a malicious virtio-net driver. It drives network device 0
 * by hand (its own rings, no guest-shim driver) through one bad case after
 * another, resetting the device in between, and checks the device's
 * reaction; then it lets the guest-shim driver take the device over and
 * receive a frame, to show the device still works.
 *
 * The host must send frames to the guest's MAC during the run (the e2e
 * test sends a 1000-byte UDP datagram every 20 ms): the RX cases need
 * them.
 *
 * Command line: case=NAME (or case=all; default all). One line per case;
 * "nethostile: OK" and exit status 0 if every case matched, 1 otherwise.
 *
 * Expected device reactions (virtio 1.2):
 *   tx_no_header   TX chain of 8 readable bytes (no 12-byte header):
 *                  DEVICE_NEEDS_RESET, no used entry, config interrupt.
 *   tx_writable    TX chain with a device-writable buffer: NEEDS_RESET.
 *   tx_oob         TX buffer in the MMIO gap: NEEDS_RESET.
 *   tx_loop        TX chain 0 -> 1 -> 0: NEEDS_RESET.
 *   tx_avail_jump  avail idx moved queue size + 1 ahead: NEEDS_RESET.
 *   tx_short       header + 6 bytes (less than an Ethernet header): the
 *                  frame is dropped, the chain comes back used; the
 *                  device stays live.
 *   tx_long        header + 1600 bytes without TSO: dropped, chain used.
 *   tx_gso         a TCPv4 GSO header without HOST_TSO4: dropped, used.
 *   rx_readable    RX chain of device-readable buffers: NEEDS_RESET.
 *   rx_tiny        RX chain of 8 writable bytes (no room for a header):
 *                  NEEDS_RESET.
 *   rx_small       RX chain of 64 bytes without MRG_RXBUF: a 1042-byte
 *                  frame does not fit; it is dropped and the buffer comes
 *                  back with used length 0.
 *   rx_pause       no RX buffers for 1 s while frames arrive, then one
 *                  2 KiB buffer: a whole frame lands in it (RX paused,
 *                  nothing lost for lack of buffers), num_buffers 1.
 *   rx_merge       MRG_RXBUF with seven 256-byte buffers, posted one by
 *                  one: the device waits until they can hold a full-size
 *                  frame, then a 1042-byte frame spans five used entries,
 *                  num_buffers 5, lengths adding up to the frame.
 *   rx_csum        GUEST_CSUM negotiated: the tap is told it may hand over
 *                  frames with partial checksums (TUNSETOFFLOAD), and the
 *                  host's UDP datagrams then arrive with NEEDS_CSUM,
 *                  csum_start 34 and csum_offset 6 (older frames queued
 *                  before may still be complete). Without GUEST_CSUM
 *                  (rx_pause) the flags are 0.
 * Cases are 1.2 s apart so the device's rate-limited log shows each one.
 */
#include "hostile.h"

/* virtio 1.2 §5.1 network. */
#define F_GUEST_CSUM (1ull << 1)
#define F_MRG_RXBUF  (1ull << 15)

#define RXQ       0
#define TXQ       1
#define QSIZE     16
#define HDR       12
#define FLOOD_LEN (14 + 20 + 8 + 1000) /* the e2e test's datagrams */
#define WAIT_MS   10000

static uint8_t ring_mem[2][HRING_BYTES(QSIZE)] __attribute__((aligned(4096)));
static struct hring rings[2];
static uint8_t bufs[8][4096] __attribute__((aligned(4096)));
static uintptr_t base;
static uint64_t features;

/* Offer head on queue q, move avail idx by `advance`, notify. */
static void offer(unsigned q, uint16_t head, uint16_t advance)
{
    hring_offer(&rings[q], head, advance);
    wr(base, REG_QUEUE_NOTIFY, q);
}

/* Poll up to ms for NEEDS_RESET or `want` used entries on queue q. */
static void observe(unsigned q, uint16_t want, unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        if (needs_reset(base) || hring_used_idx(&rings[q]) >= want)
            return;
        shim_delay_us(1000);
    }
}

static unsigned failures;

static void verdict(const char *name, bool ok, const char *what)
{
    shim_printf("nethostile: %s: %s (%s)\n", name, ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

/* The bad chain must put the device in NEEDS_RESET with a configuration
 * interrupt (§2.1.2) and return nothing. */
static void expect_needs_reset(const char *name, unsigned q)
{
    char what[96];
    bool ok = hostile_saw_needs_reset(base, &rings[q], 2000, what, sizeof(what));
    verdict(name, ok, what);
}

/* The bad frame must be dropped: its chain used (length 0), device live. */
static void expect_dropped(const char *name)
{
    observe(TXQ, 1, 2000);
    uint32_t id, len;
    hring_used_elem(&rings[TXQ], 0, &id, &len);
    bool ok = !needs_reset(base) && hring_used_idx(&rings[TXQ]) == 1 && id == 0 && len == 0;
    char what[96];
    shim_snprintf(what, sizeof(what), "status %#x, %u used, id %u len %u", rd(base, REG_STATUS),
                  hring_used_idx(&rings[TXQ]), id, len);
    verdict(name, ok, what);
}

/* A TX chain: header (`hdr`, 12 bytes) in bufs[0], `len` frame bytes in
 * bufs[1]. */
static void tx_chain(const uint8_t *hdr, uint32_t len)
{
    memset(bufs[0], 0, HDR);
    if (hdr)
        memcpy(bufs[0], hdr, HDR);
    memset(bufs[1], 0xab, sizeof(bufs[1]));
    hring_set_desc(&rings[TXQ], 0, bufs[0], HDR, D_NEXT, 1);
    hring_set_desc(&rings[TXQ], 1, bufs[1], len, 0, 0);
}

static void case_tx_no_header(const char *name)
{
    hring_set_desc(&rings[TXQ], 0, bufs[0], 8, 0, 0);
    offer(TXQ, 0, 1);
    expect_needs_reset(name, TXQ);
}

static void case_tx_writable(const char *name)
{
    tx_chain(NULL, 60);
    rings[TXQ].desc[1].flags = D_NEXT;
    rings[TXQ].desc[1].next = 2;
    hring_set_desc(&rings[TXQ], 2, bufs[2], 64, D_WRITE, 0);
    offer(TXQ, 0, 1);
    expect_needs_reset(name, TXQ);
}

static void case_tx_oob(const char *name)
{
    tx_chain(NULL, 60);
    rings[TXQ].desc[1].addr = 0xd0000000ull;
    offer(TXQ, 0, 1);
    expect_needs_reset(name, TXQ);
}

static void case_tx_loop(const char *name)
{
    tx_chain(NULL, 60);
    rings[TXQ].desc[1].flags = D_NEXT;
    rings[TXQ].desc[1].next = 0;
    offer(TXQ, 0, 1);
    expect_needs_reset(name, TXQ);
}

static void case_tx_avail_jump(const char *name)
{
    tx_chain(NULL, 60);
    offer(TXQ, 0, QSIZE + 1);
    expect_needs_reset(name, TXQ);
}

static void case_tx_short(const char *name)
{
    tx_chain(NULL, 6);
    offer(TXQ, 0, 1);
    expect_dropped(name);
}

static void case_tx_long(const char *name)
{
    tx_chain(NULL, 1600);
    offer(TXQ, 0, 1);
    expect_dropped(name);
}

static void case_tx_gso(const char *name)
{
    const uint8_t gso[HDR] = {0, 1 /* GSO_TCPV4 */, 54, 0, 0xa8, 0x05};
    tx_chain(gso, 1000);
    offer(TXQ, 0, 1);
    expect_dropped(name);
}

static void case_rx_readable(const char *name)
{
    hring_set_desc(&rings[RXQ], 0, bufs[0], 2048, 0, 0);
    offer(RXQ, 0, 1);
    expect_needs_reset(name, RXQ);
}

static void case_rx_tiny(const char *name)
{
    hring_set_desc(&rings[RXQ], 0, bufs[0], 8, D_WRITE, 0);
    offer(RXQ, 0, 1);
    expect_needs_reset(name, RXQ);
}

static void case_rx_small(const char *name)
{
    hring_set_desc(&rings[RXQ], 0, bufs[0], 64, D_WRITE, 0);
    offer(RXQ, 0, 1);
    observe(RXQ, 1, WAIT_MS);
    uint32_t id, len;
    hring_used_elem(&rings[RXQ], 0, &id, &len);
    bool ok = !needs_reset(base) && hring_used_idx(&rings[RXQ]) == 1 && id == 0 && len == 0;
    char what[96];
    shim_snprintf(what, sizeof(what), "status %#x, %u used, id %u len %u", rd(base, REG_STATUS),
                  hring_used_idx(&rings[RXQ]), id, len);
    verdict(name, ok, what);
}

static void case_rx_pause(const char *name)
{
    shim_delay_us(1000000); /* frames arrive; the guest has posted nothing */
    memset(bufs[0], 0xee, 2048);
    hring_set_desc(&rings[RXQ], 0, bufs[0], 2048, D_WRITE, 0);
    offer(RXQ, 0, 1);
    observe(RXQ, 1, WAIT_MS);
    uint32_t id, len;
    hring_used_elem(&rings[RXQ], 0, &id, &len);
    uint16_t nb = (uint16_t)(bufs[0][10] | bufs[0][11] << 8);
    /* The frame is for us: destination MAC from the config space. */
    bool mine = true;
    for (unsigned i = 0; i < 6; i++)
        mine = mine && bufs[0][HDR + i] == *(volatile uint8_t *)(base + REG_CONFIG + i);
    bool ok = hring_used_idx(&rings[RXQ]) == 1 && id == 0 && len == HDR + FLOOD_LEN && nb == 1 &&
              mine && bufs[0][HDR + FLOOD_LEN] == 0xee && bufs[0][0] == 0 && bufs[0][1] == 0;
    char what[96];
    shim_snprintf(what, sizeof(what), "%u used, id %u len %u, num_buffers %u",
                  hring_used_idx(&rings[RXQ]), id, len, nb);
    verdict(name, ok, what);
}

static void case_rx_merge(const char *name)
{
    if (!(features & F_MRG_RXBUF)) {
        verdict(name, false, "MRG_RXBUF not offered");
        return;
    }
    for (unsigned i = 0; i < 7; i++) {
        hring_set_desc(&rings[RXQ], i, bufs[i], 256, D_WRITE, 0);
        offer(RXQ, (uint16_t)i, 1);
    }
    observe(RXQ, 5, WAIT_MS);
    shim_delay_us(300000); /* the two buffers left cannot take a frame */
    uint32_t total = 0, id, len;
    bool order = true;
    for (unsigned i = 0; i < hring_used_idx(&rings[RXQ]) && i < QSIZE; i++) {
        hring_used_elem(&rings[RXQ], i, &id, &len);
        order = order && id == i;
        total += len;
    }
    uint16_t nb = (uint16_t)(bufs[0][10] | bufs[0][11] << 8);
    bool ok = !needs_reset(base) && hring_used_idx(&rings[RXQ]) == 5 && order && nb == 5 &&
              total == HDR + FLOOD_LEN;
    char what[96];
    shim_snprintf(what, sizeof(what), "%u used, num_buffers %u, %u bytes",
                  hring_used_idx(&rings[RXQ]), nb, total);
    verdict(name, ok, what);
}

static void case_rx_csum(const char *name)
{
    unsigned complete = 0, partial = 0, other = 0;
    uint16_t start = 0, offset = 0;

    if (!(features & F_GUEST_CSUM)) {
        verdict(name, false, "GUEST_CSUM not offered");
        return;
    }
    for (uint16_t k = 0; k < 1000 && !partial; k++) {
        memset(bufs[0], 0, HDR);
        hring_set_desc(&rings[RXQ], k % QSIZE, bufs[0], 2048, D_WRITE, 0);
        offer(RXQ, k % QSIZE, 1);
        observe(RXQ, (uint16_t)(k + 1), WAIT_MS);
        if (hring_used_idx(&rings[RXQ]) != (uint16_t)(k + 1))
            break;
        uint8_t flags = bufs[0][0];
        start = (uint16_t)(bufs[0][6] | bufs[0][7] << 8);
        offset = (uint16_t)(bufs[0][8] | bufs[0][9] << 8);
        if (flags == 1 && start == 34 && offset == 6)
            partial++;
        else if (flags == 0 || flags == 2)
            complete++;
        else
            other++;
    }
    char what[96];
    shim_snprintf(what, sizeof(what), "%u complete, %u partial (start %u offset %u), %u other",
                  complete, partial, start, offset, other);
    verdict(name, partial == 1 && other == 0 && !needs_reset(base), what);
}

struct hostile_case {
    const char *name;
    uint64_t want;
    void (*run)(const char *name);
};

static const struct hostile_case cases[] = {
    {"tx_no_header", 0, case_tx_no_header},
    {"tx_writable", 0, case_tx_writable},
    {"tx_oob", 0, case_tx_oob},
    {"tx_loop", 0, case_tx_loop},
    {"tx_avail_jump", 0, case_tx_avail_jump},
    {"tx_short", 0, case_tx_short},
    {"tx_long", 0, case_tx_long},
    {"tx_gso", 0, case_tx_gso},
    {"rx_readable", 0, case_rx_readable},
    {"rx_tiny", F_MRG_RXBUF, case_rx_tiny},
    {"rx_small", 0, case_rx_small},
    {"rx_pause", 0, case_rx_pause},
    {"rx_merge", F_MRG_RXBUF, case_rx_merge},
    {"rx_csum", F_GUEST_CSUM, case_rx_csum},
};

/* The guest-shim driver takes the device over (reset, fresh rings) and
 * receives one of the host's frames. */
static void recover(void)
{
    struct shim_net *net = shim_net_get(0);
    uint8_t frame[2048];
    int n = net ? shim_net_reset(net) : -1;

    if (n == 0)
        n = shim_net_recv(net, frame, sizeof(frame), WAIT_MS * 1000ull);
    char what[64];
    shim_snprintf(what, sizeof(what), "shim driver received %d bytes", n);
    verdict("recovered", n == FLOOD_LEN, what);
}

int main(void)
{
    const char *which = shim_arg("case");
    bool all;
    unsigned ran = 0;

    if (!which || !*which)
        which = "all";
    all = strcmp(which, "all") == 0;
    if (!hostile_find(1, &base)) {
        shim_printf("nethostile: FAIL no virtio-net device on the command line\n");
        return 1;
    }
    for (unsigned q = 0; q < 2; q++)
        hring_layout(&rings[q], ring_mem[q], QSIZE);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct hostile_case *c = &cases[i];
        if (!all && strcmp(which, c->name))
            continue;
        if (ran++)
            shim_delay_us(1200000);
        const char *err = hostile_start(base, c->want, &features, rings, 2);
        if (err) {
            verdict(c->name, false, err);
            continue;
        }
        c->run(c->name);
    }
    wr(base, REG_STATUS, 0);
    if (all || strcmp(which, "recovered") == 0) {
        recover();
        ran++;
    }
    if (!ran) {
        shim_printf("nethostile: FAIL unknown case '%s'\n", which);
        return 1;
    }
    if (failures) {
        shim_printf("nethostile: FAIL %u of %u cases\n", failures, ran);
        return 1;
    }
    shim_printf("nethostile: OK %u cases\n", ran);
    return 0;
}
