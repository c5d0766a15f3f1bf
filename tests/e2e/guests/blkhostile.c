/*
 * blkhostile: a malicious virtio-blk driver. It takes block device 0 away
 * from the guest-shim driver, builds its own rings by hand and submits one
 * malformed request per scenario; then it checks the device's reaction,
 * lets the shim driver notice the broken device, resets and re-initializes
 * device 0 through the shim and reads from it, and finally writes and reads
 * block device 1 to show that the other drive was not affected.
 *
 * Command line: case=NAME (or case=all; default all). One line per step;
 * exit status 0 only if every step matched, 1 otherwise. Needs two block
 * devices (device 1 is scratch space: sectors 64-71 are overwritten; on
 * device 0, sectors 0-7 are overwritten and verified after each recovery).
 *
 * Expected device reactions (virtio 1.2):
 *   loop             chain 0 -> 1 -> 0 via NEXT; "Drivers MUST NOT add a
 *                    descriptor chain longer than 2^32 bytes ... loops are
 *                    forbidden" (§2.7.5): DEVICE_NEEDS_RESET, no used entry.
 *   oob              data buffer outside RAM: in the MMIO gap, above all
 *                    RAM (1 TiB), and on device 1's MMIO registers
 *                    (3 variants): NEEDS_RESET, no used entry.
 *   overflow         addr + len wraps past 2^64: NEEDS_RESET, no used entry.
 *   avail_jump       avail idx moved queue size + 1 ahead: NEEDS_RESET, no
 *                    used entry.
 *   nested_indirect  an indirect table holding an INDIRECT descriptor
 *                    (§2.7.5.3.1 "MUST NOT"): NEEDS_RESET, no used entry.
 *   indirect_len     indirect table of 40 bytes (not a multiple of 16):
 *                    NEEDS_RESET, no used entry.
 *   zero_len         the header descriptor has length 0; and
 *   short_header     the header descriptor has 8 bytes (no 16-byte header
 *                    in the readable part): NEEDS_RESET and no used entry,
 *                    or, equally allowed, a used entry whose status byte is
 *                    VIRTIO_BLK_S_IOERR ("for device or driver error",
 *                    §5.2.6) with nothing else written.
 *   split_header     (valid) the 16-byte header split over two 8-byte
 *                    descriptors: the device must not assume a layout
 *                    (§2.7.4.1), so the read succeeds with the right data.
 *   ring_oob         Descriptor, Driver or Device Area outside RAM (3
 *                    variants): the spec states no device requirement, so
 *                    either QueueReady reads back 0 (refused) or
 *                    NEEDS_RESET is set by QueueReady, DRIVER_OK or the
 *                    first notification; no request is processed.
 *   huge_queue       QueueNum = QueueNumMax + 1 (not a power of two), and
 *                    QueueNum = 3 (below the maximum, not a power of two):
 *                    the driver "MUST write a value to QueueNum which is
 *                    less than or equal to ... QueueNumMax" (§4.2.2.2) and
 *                    "Queue Size value is always a power of 2" (§2.7). It
 *                    cannot be refused at FEATURES_OK (queues are set up
 *                    afterwards) and the spec states no device requirement,
 *                    so: QueueReady refused, or NEEDS_RESET; a valid
 *                    request on such a queue must not complete.
 *   timeout          device 0 live but its queue not ready: the shim
 *                    driver's read must give up with -SHIM_ETIMEDOUT after
 *                    the 2 s timeout, sleeping (few halts), not spinning.
 * When NEEDS_RESET is set after DRIVER_OK, the device "MUST send a device
 * configuration change notification" (§2.1.2): InterruptStatus bit 1.
 */
#include "hostile.h"

/* virtio 1.2 §5.2.6 block requests. */
#define T_IN    0
#define T_OUT   1
#define S_IOERR 1

#define QSIZE         16
#define OBSERVE_POLLS 2000 /* x 1 ms */
#define SECTOR        512
#define BASE_SECTORS  8
#define OTHER_SECTOR  64
#define WRITE_SECTOR  100 /* where hostile writes would land on device 0 */
#define UNSET         0xee

/* Allowed outcomes. */
#define OUT_NEEDS_RESET 1  /* Status has DEVICE_NEEDS_RESET, no used entry */
#define OUT_USED_IOERR  2  /* used entry, status byte IOERR, nothing else */
#define OUT_REFUSED     4  /* QueueReady read back 0 */
#define OUT_USED_OK     8  /* used entry, status OK, data right */
#define OUT_USED_OTHER  16 /* used entry, anything else: never allowed */

struct blk_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

/* The hostile driver's view of device 0. */
struct raw {
    uintptr_t base;
    uint32_t qmax;
    uint64_t features;
    struct hring q; /* queue 0 */
    bool driver_ok;
};

struct outcome {
    unsigned kind; /* one OUT_* bit, or 0: nothing happened */
    bool config_irq;
    uint32_t status;
    uint8_t status_byte;
};

struct hostile_case {
    const char *name;
    const char *what;
    unsigned variants;
    unsigned allowed;
    /* Build and submit variant v; fills *o when the setup itself decided
     * (refused); returns false if the case could not be run. */
    bool (*run)(struct raw *r, unsigned v, struct outcome *o);
};

static struct shim_blk *blk0, *blk1;
static struct desc *ring_desc, *table1, *table2;
static uint16_t *ring_avail;
static uint32_t *ring_used;
static size_t ring_entries;
static struct blk_hdr *hdr;
static uint8_t *data, *status_byte, *baseline, *scratch;
static uint64_t dev1_base;

/* Reset device 0 and negotiate VERSION_1 plus `want` (if offered). */
static bool raw_begin(struct raw *r, uint64_t want)
{
    const char *err = hostile_negotiate(r->base, want, &r->features);

    if (err) {
        shim_printf("blkhostile: device 0 %s\n", err);
        return false;
    }
    wr(r->base, REG_QUEUE_SEL, 0);
    r->qmax = rd(r->base, REG_QUEUE_NUM_MAX);
    r->driver_ok = false;
    return true;
}

/* Clear the hand-made rings for `num` entries: used entries get a
 * sentinel so a write by the device shows. */
static void rings_clear(struct raw *r, uint32_t num)
{
    r->q = (struct hring){ring_desc, ring_avail, ring_used, num, 0};
    memset(ring_desc, 0, sizeof(struct desc) * num);
    memset(ring_avail, 0, 2 * (num + 3));
    ring_used[0] = 0;
    memset(ring_used + 1, 0xff, 8 * num + 4);
    memset(table1, 0, 16 * sizeof(struct desc));
    memset(table2, 0, 16 * sizeof(struct desc));
    *status_byte = UNSET;
}

static bool raw_queue_normal(struct raw *r)
{
    rings_clear(r, QSIZE);
    return hostile_queue(r->base, 0, QSIZE, (uintptr_t)ring_desc, (uintptr_t)ring_avail,
                         (uintptr_t)ring_used);
}

static void raw_driver_ok(struct raw *r)
{
    hostile_driver_ok(r->base);
    r->driver_ok = true;
}

/* Put head `head` in the avail ring, move idx by `advance`, notify. */
static void raw_submit(struct raw *r, uint16_t head, uint16_t advance)
{
    hring_offer(&r->q, head, advance);
    wr(r->base, REG_QUEUE_NOTIFY, 0);
}

/* Reads hit sector 0 (known content), writes sector WRITE_SECTOR, so a
 * device that wrongly processes a write cannot spoil the recovery check. */
static void set_hdr(uint32_t type)
{
    *hdr = (struct blk_hdr){.type = type, .sector = type == T_OUT ? WRITE_SECTOR : 0};
    memset(data, 0x5a, SECTOR);
}

/* A well-formed read of sector 0 in descriptors 0-2. */
static void chain_read(struct raw *r)
{
    set_hdr(T_IN);
    hring_set_desc(&r->q, 0, hdr, sizeof(*hdr), D_NEXT, 1);
    hring_set_desc(&r->q, 1, data, SECTOR, D_WRITE | D_NEXT, 2);
    hring_set_desc(&r->q, 2, status_byte, 1, D_WRITE, 0);
}

/* Device 0 with a normal queue, live: the common start of chain cases. */
static bool start_normal(struct raw *r, uint64_t want)
{
    if (!raw_begin(r, want))
        return false;
    if (!raw_queue_normal(r)) {
        shim_printf("blkhostile: device 0 refused a normal queue\n");
        return false;
    }
    raw_driver_ok(r);
    return true;
}

static bool case_loop(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    if (!start_normal(r, 0))
        return false;
    set_hdr(T_OUT);
    hring_set_desc(&r->q, 0, hdr, sizeof(*hdr), D_NEXT, 1);
    hring_set_desc(&r->q, 1, data, SECTOR, D_NEXT, 0);
    raw_submit(r, 0, 1);
    return true;
}

static bool case_oob(struct raw *r, unsigned v, struct outcome *o)
{
    static const char *const where[] = {"MMIO gap 0xd0000000", "1 TiB", "device 1's registers"};
    const uint64_t addr[] = {0xd0000000ull, 1ull << 40, dev1_base};

    (void)o;
    if (!start_normal(r, 0))
        return false;
    shim_printf("blkhostile: oob: data buffer at %s (%#llx), %s\n", where[v],
                (unsigned long long)addr[v], v == 1 ? "device reads it" : "device writes it");
    chain_read(r);
    r->q.desc[1].addr = addr[v];
    if (v == 1) { /* a write: the device reads the bad buffer */
        set_hdr(T_OUT);
        r->q.desc[1].flags = D_NEXT;
    }
    raw_submit(r, 0, 1);
    return true;
}

static bool case_overflow(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    if (!start_normal(r, 0))
        return false;
    chain_read(r);
    r->q.desc[1].addr = 0xfffffffffffffe00ull;
    r->q.desc[1].len = 0x400;
    raw_submit(r, 0, 1);
    return true;
}

static bool case_avail_jump(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    if (!start_normal(r, 0))
        return false;
    chain_read(r);
    raw_submit(r, 0, QSIZE + 1);
    return true;
}

static bool case_nested_indirect(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    if (!start_normal(r, F_INDIRECT_DESC))
        return false;
    if (!(r->features & F_INDIRECT_DESC))
        shim_printf("blkhostile: nested_indirect: VIRTIO_F_INDIRECT_DESC not offered; "
                    "the INDIRECT flag alone is then the error\n");
    set_hdr(T_IN);
    desc_set(&table2[0], data, SECTOR, D_WRITE, 0);
    desc_set(&table1[0], hdr, sizeof(*hdr), D_NEXT, 1);
    desc_set(&table1[1], table2, sizeof(struct desc), D_INDIRECT | D_NEXT, 2);
    desc_set(&table1[2], status_byte, 1, D_WRITE, 0);
    hring_set_desc(&r->q, 0, table1, 3 * sizeof(struct desc), D_INDIRECT, 0);
    raw_submit(r, 0, 1);
    return true;
}

static bool case_indirect_len(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    if (!start_normal(r, F_INDIRECT_DESC))
        return false;
    set_hdr(T_IN);
    desc_set(&table1[0], hdr, sizeof(*hdr), D_NEXT, 1);
    desc_set(&table1[1], data, SECTOR, D_WRITE | D_NEXT, 2);
    desc_set(&table1[2], status_byte, 1, D_WRITE, 0);
    hring_set_desc(&r->q, 0, table1, 40, D_INDIRECT, 0);
    raw_submit(r, 0, 1);
    return true;
}

static bool case_header_len(struct raw *r, uint32_t len)
{
    if (!start_normal(r, 0))
        return false;
    chain_read(r);
    r->q.desc[0].len = len;
    raw_submit(r, 0, 1);
    return true;
}

static bool case_zero_len(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    return case_header_len(r, 0);
}

static bool case_short_header(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    return case_header_len(r, 8);
}

static bool case_split_header(struct raw *r, unsigned v, struct outcome *o)
{
    (void)v;
    (void)o;
    if (!start_normal(r, 0))
        return false;
    chain_read(r);
    hring_set_desc(&r->q, 0, hdr, 8, D_NEXT, 3);
    hring_set_desc(&r->q, 3, (uint8_t *)hdr + 8, 8, D_NEXT, 1);
    raw_submit(r, 0, 1);
    return true;
}

/* Status after a queue-setup step: refused, or already NEEDS_RESET. */
static bool setup_decided(struct raw *r, bool ready, struct outcome *o)
{
    o->status = rd(r->base, REG_STATUS);
    if (!ready)
        o->kind = OUT_REFUSED;
    else if (o->status & ST_NEEDS_RESET)
        o->kind = OUT_NEEDS_RESET;
    return o->kind != 0;
}

static bool case_ring_oob(struct raw *r, unsigned v, struct outcome *o)
{
    static const char *const area[] = {"Descriptor", "Driver", "Device"};
    const uint64_t bad[] = {0xd0000000ull, 0xffffffffffffff00ull, 1ull << 40};
    uint64_t a[3] = {(uintptr_t)ring_desc, (uintptr_t)ring_avail, (uintptr_t)ring_used};

    if (!raw_begin(r, 0))
        return false;
    rings_clear(r, QSIZE);
    a[v] = bad[v];
    shim_printf("blkhostile: ring_oob: %s Area at %#llx\n", area[v], (unsigned long long)a[v]);
    if (setup_decided(r, hostile_queue(r->base, 0, QSIZE, a[0], a[1], a[2]), o))
        return true;
    raw_driver_ok(r);
    if (setup_decided(r, true, o))
        return true;
    chain_read(r);
    raw_submit(r, 0, 1);
    return true;
}

static bool case_huge_queue(struct raw *r, unsigned v, struct outcome *o)
{
    if (!raw_begin(r, 0))
        return false;
    uint32_t num = v == 0 ? r->qmax + 1 : 3;
    if (v == 0 && (num & (num - 1)) == 0)
        num++;
    if (num + 3 > ring_entries || (v == 1 && r->qmax < 4)) {
        shim_printf("blkhostile: huge_queue: QueueNumMax %u out of this test's range\n", r->qmax);
        return false;
    }
    shim_printf("blkhostile: huge_queue: QueueNum %u, QueueNumMax %u\n", num, r->qmax);
    rings_clear(r, num);
    if (setup_decided(r,
                      hostile_queue(r->base, 0, num, (uintptr_t)ring_desc, (uintptr_t)ring_avail,
                                    (uintptr_t)ring_used),
                      o))
        return true;
    raw_driver_ok(r);
    if (setup_decided(r, true, o))
        return true;
    chain_read(r);
    raw_submit(r, 0, 1);
    return true;
}

static const struct hostile_case cases[] = {
    {"loop", "descriptor chain 0 -> 1 -> 0 via NEXT", 1, OUT_NEEDS_RESET, case_loop},
    {"oob", "data buffer outside RAM", 3, OUT_NEEDS_RESET, case_oob},
    {"overflow", "data buffer 0xfffffffffffffe00 + 0x400 wraps", 1, OUT_NEEDS_RESET, case_overflow},
    {"avail_jump", "avail idx advanced by queue size + 1", 1, OUT_NEEDS_RESET, case_avail_jump},
    {"nested_indirect", "INDIRECT descriptor inside an indirect table", 1, OUT_NEEDS_RESET,
     case_nested_indirect},
    {"indirect_len", "indirect table length 40", 1, OUT_NEEDS_RESET, case_indirect_len},
    {"zero_len", "header descriptor of length 0", 1, OUT_NEEDS_RESET | OUT_USED_IOERR,
     case_zero_len},
    {"short_header", "header descriptor of 8 bytes", 1, OUT_NEEDS_RESET | OUT_USED_IOERR,
     case_short_header},
    {"split_header", "(valid) header split over two descriptors", 1, OUT_USED_OK,
     case_split_header},
    {"ring_oob", "queue areas outside RAM", 3, OUT_NEEDS_RESET | OUT_REFUSED, case_ring_oob},
    {"huge_queue", "QueueNum above QueueNumMax / not a power of two", 2,
     OUT_NEEDS_RESET | OUT_REFUSED, case_huge_queue},
    {"timeout", "queue not ready: the shim driver must time out", 1, 0, NULL},
};

static const char *outcome_name(unsigned kind)
{
    switch (kind) {
    case OUT_NEEDS_RESET:
        return "DEVICE_NEEDS_RESET";
    case OUT_USED_IOERR:
        return "used entry with VIRTIO_BLK_S_IOERR";
    case OUT_REFUSED:
        return "QueueReady refused";
    case OUT_USED_OK:
        return "used entry with VIRTIO_BLK_S_OK";
    case OUT_USED_OTHER:
        return "used entry (request processed)";
    default:
        return "nothing (request ignored)";
    }
}

/* Wait (bounded) for the device to react to the submission. */
static void observe(struct raw *r, struct outcome *o)
{
    unsigned i;

    for (i = 0; i < OBSERVE_POLLS; i++) {
        o->status = rd(r->base, REG_STATUS);
        if ((o->status & ST_NEEDS_RESET) || hring_used_idx(&r->q))
            break;
        shim_delay_us(1000);
    }
    o->status_byte = *(volatile uint8_t *)status_byte;
    if (hring_used_idx(&r->q)) {
        bool data_ok = true;
        for (unsigned k = 0; k < SECTOR; k++)
            data_ok &= data[k] == baseline[k];
        if (o->status_byte == 0 && data_ok)
            o->kind = OUT_USED_OK;
        else if (o->status_byte == S_IOERR)
            o->kind = OUT_USED_IOERR;
        else
            o->kind = OUT_USED_OTHER;
    } else if (o->status & ST_NEEDS_RESET) {
        o->kind = OUT_NEEDS_RESET;
    }
}

/* §2.1.2: after NEEDS_RESET with DRIVER_OK set, a config change
 * notification. Interrupts are off here, so read InterruptStatus
 * ourselves (and acknowledge it; the shim's handler later sees 0). */
static void observe_config_irq(struct raw *r, struct outcome *o)
{
    for (unsigned i = 0; i < 100; i++) {
        uint32_t isr = rd(r->base, REG_INT_STATUS);
        if (isr & INT_CONFIG) {
            o->config_irq = true;
            break;
        }
        shim_delay_us(1000);
    }
    uint32_t isr = rd(r->base, REG_INT_STATUS) & 3;
    if (isr)
        wr(r->base, REG_INT_ACK, isr);
}

static bool check_device_reaction(const struct hostile_case *c, struct raw *r, unsigned v)
{
    struct outcome o = {0};
    bool ok;

    if (!c->run(r, v, &o)) {
        shim_printf("blkhostile: %s: FAIL could not set the scenario up\n", c->name);
        return false;
    }
    if (!o.kind)
        observe(r, &o);
    ok = (o.kind & c->allowed) != 0;
    bool want_irq = o.kind == OUT_NEEDS_RESET && r->driver_ok;
    if (want_irq)
        observe_config_irq(r, &o);
    shim_printf("blkhostile: %s: device: %s, Status %#x, status byte %#x, used idx %u%s: %s\n",
                c->name, outcome_name(o.kind), o.status, o.status_byte,
                o.kind == OUT_REFUSED || !r->q.used ? 0 : hring_used_idx(&r->q),
                want_irq ? (o.config_irq ? ", config interrupt sent" : ", NO config interrupt")
                         : "",
                ok ? "ok" : "FAIL");
    if (want_irq && !o.config_irq) {
        shim_printf("blkhostile: %s: FAIL InterruptStatus bit 1 not set after "
                    "DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2)\n",
                    c->name);
        ok = false;
    }
    /* The shim driver must notice the broken device instead of hanging. */
    if (o.kind == OUT_NEEDS_RESET) {
        int ret = shim_blk_read(blk0, 0, scratch, SECTOR);
        shim_printf("blkhostile: %s: driver read on the broken device: %d (want %d): %s\n", c->name,
                    ret, -SHIM_ENODEV, ret == -SHIM_ENODEV ? "ok" : "FAIL");
        ok &= ret == -SHIM_ENODEV;
    }
    return ok;
}

static bool check_timeout(struct raw *r)
{
    if (!raw_begin(r, 0))
        return false;
    raw_driver_ok(r);
    uint64_t halts = shim_halt_count(), t0 = shim_time_ns();
    shim_blk_set_timeout(blk0, 2000000);
    int ret = shim_blk_read(blk0, 0, scratch, SECTOR);
    shim_blk_set_timeout(blk0, 0);
    halts = shim_halt_count() - halts;
    uint64_t ms = (shim_time_ns() - t0) / 1000000;
    bool ok = ret == -SHIM_ETIMEDOUT && halts > 0 && halts < 200;
    shim_printf("blkhostile: timeout: driver read: %d (want %d) after %llu halts, %llu ms%s: %s\n",
                ret, -SHIM_ETIMEDOUT, (unsigned long long)halts, (unsigned long long)ms,
                t0 ? "" : " (no clock)", ok ? "ok" : "FAIL");
    return ok;
}

static void pattern(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 9));
}

/* Reset device 0 through the shim, read it back; then device 1. A
 * failure is reported, then repaired (baseline rewritten, device 1 reset)
 * so that the next case starts clean. */
static bool check_recovery(const char *name, unsigned seed)
{
    int ret = shim_blk_reset(blk0);
    if (ret == 0)
        ret = shim_blk_read(blk0, 0, scratch, BASE_SECTORS * SECTOR);
    bool ok = ret == 0 && memcmp(scratch, baseline, BASE_SECTORS * SECTOR) == 0;
    shim_printf("blkhostile: %s: blk0 reset + read: %d%s: %s\n", name, ret,
                ret == 0 && !ok ? " (data differs)" : "", ok ? "ok" : "FAIL");
    if (ret == 0 && !ok)
        shim_blk_write(blk0, 0, baseline, BASE_SECTORS * SECTOR);

    pattern(data, SECTOR, seed);
    ret = shim_blk_write(blk1, OTHER_SECTOR, data, SECTOR);
    if (ret == 0)
        ret = shim_blk_read(blk1, OTHER_SECTOR, scratch, SECTOR);
    bool ok1 = ret == 0 && memcmp(scratch, data, SECTOR) == 0;
    shim_printf("blkhostile: %s: blk1 write + read: %d%s: %s\n", name, ret,
                ret == 0 && !ok1 ? " (data differs)" : "", ok1 ? "ok" : "FAIL");
    if (!ok1)
        shim_printf("blkhostile: %s: blk1 reset: %d\n", name, shim_blk_reset(blk1));
    return ok && ok1;
}

static bool run_case(const struct hostile_case *c, struct raw *r, unsigned seed)
{
    bool ok = true;

    shim_printf("blkhostile: case %s: %s\n", c->name, c->what);
    if (!c->run) {
        ok = check_timeout(r);
        return check_recovery(c->name, seed) && ok;
    }
    for (unsigned v = 0; v < c->variants; v++) {
        ok &= check_device_reaction(c, r, v);
        ok &= check_recovery(c->name, seed + v);
    }
    return ok;
}

static bool setup(struct raw *r)
{
    struct shim_blk_info info, info1;

    if (shim_blk_count() < 2) {
        shim_printf("blkhostile: FAIL needs two block devices, found %u\n", shim_blk_count());
        return false;
    }
    blk0 = shim_blk_get(0);
    blk1 = shim_blk_get(1);
    shim_blk_info(blk0, &info);
    shim_blk_info(blk1, &info1);
    if (!info.ready || !info1.ready || info.capacity <= WRITE_SECTOR ||
        info1.capacity <= OTHER_SECTOR) {
        shim_printf("blkhostile: FAIL block devices not ready or too small\n");
        return false;
    }
    *r = (struct raw){.base = (uintptr_t)info.mmio_base};
    dev1_base = info1.mmio_base;
    /* Room for the largest queue huge_queue may ask for (QueueNumMax is
     * at most 32768, §2.7), plus the event words. */
    ring_entries = 2 * 32768 + 8;
    ring_desc = shim_alloc(sizeof(struct desc) * ring_entries, 4096);
    ring_avail = shim_alloc(2 * ring_entries, 4096);
    ring_used = shim_alloc(8 * ring_entries, 4096);
    table1 = shim_alloc(16 * sizeof(struct desc), 16);
    table2 = shim_alloc(16 * sizeof(struct desc), 16);
    hdr = shim_alloc(sizeof(*hdr), 16);
    data = shim_alloc(SECTOR, 512);
    status_byte = shim_alloc(1, 1);
    baseline = shim_alloc(BASE_SECTORS * SECTOR, 512);
    scratch = shim_alloc(BASE_SECTORS * SECTOR, 512);
    if (!ring_desc || !ring_avail || !ring_used || !table1 || !table2 || !hdr || !data ||
        !status_byte || !baseline || !scratch) {
        shim_printf("blkhostile: FAIL out of memory\n");
        return false;
    }
    pattern(baseline, BASE_SECTORS * SECTOR, 1);
    int ret = shim_blk_write(blk0, 0, baseline, BASE_SECTORS * SECTOR);
    if (ret == 0)
        ret = shim_blk_flush(blk0);
    if (ret) {
        shim_printf("blkhostile: FAIL baseline write on blk0: %d\n", ret);
        return false;
    }
    shim_printf("blkhostile: blk0 at %#llx (QueueNumMax via driver %u), blk1 at %#llx\n",
                (unsigned long long)info.mmio_base, info.queue_size,
                (unsigned long long)info1.mmio_base);
    return true;
}

int main(void)
{
    const char *name = shim_arg("case") ? shim_arg("case") : "all";
    unsigned n = sizeof(cases) / sizeof(cases[0]), ran = 0, failed = 0;
    struct raw r;

    if (!setup(&r))
        return 1;
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(name, "all") != 0 && strcmp(name, cases[i].name) != 0)
            continue;
        ran++;
        if (!run_case(&cases[i], &r, 10 * (i + 1)))
            failed++;
    }
    if (ran == 0) {
        shim_printf("blkhostile: FAIL unknown case=%s\n", name);
        return 1;
    }
    if (failed) {
        shim_printf("blkhostile: FAIL %u of %u case(s)\n", failed, ran);
        return 1;
    }
    shim_printf("blkhostile: PASS %u case(s)\n", ran);
    return 0;
}
