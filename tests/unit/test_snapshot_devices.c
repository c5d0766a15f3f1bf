/* Unit tests: every device's snapshot state. A device is saved in a live
 * state (after the fake driver set it up and moved requests), loaded into
 * a fresh device on the same fake guest memory, and must keep working;
 * hostile states (bad sizes, rings outside RAM, features not offered,
 * truncated or padded sections, wrong tags, a different device list) are
 * refused with a message naming what is wrong. Also the quiesced state a
 * paused VM's devices are in, and vmm_devices_busy's view of in-flight I/O. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "evloop.h"
#include "virtio_harness.h"

#include "boot_timer.h"
#include "legacy.h"
#include "rate_limiter.h"
#include "serial.h"
#include "snapshot_devices.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "virtio_vsock.h"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the saved bytes, and offsets into a transport section ---- */

static struct snap_writer w;

/* Offsets in virtio_mmio_save's section (tag 4 + length 8, then fields). */
#define OFF_SEC_LEN    4
#define OFF_STATUS     16
#define OFF_DRV_FEAT   28
#define OFF_INT_STATUS 40
#define OFF_Q0_NUM     64 /* first queue section: 52 + tag 4 + length 8 */
#define OFF_Q0_DESC    69

static void put_le(size_t off, uint64_t v, unsigned n)
{
    cr_assert_leq(off + n, w.len);
    for (unsigned i = 0; i < n; i++)
        w.buf[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(size_t off, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)w.buf[off + i] << (8 * i);
    return v;
}

/* ---- virtio-blk ---- */

#define IMG_SECTORS 2048

static struct hdrv h;
static struct evloop loop;
static struct htick tick;
static struct virtio_blk *blk, *blk2;
static struct virtio_mmio t, t2;
static char img[] = "/tmp/flint-snapdev-XXXXXX";
static char img2[] = "/tmp/flint-snapdev2-XXXXXX";
static unsigned irqs2;

static void count_irq2(void *o)
{
    (void)o;
    irqs2++;
}

static const uint64_t BLK_FEATURES = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH);

static void blk_setup(void)
{
    int fd;

    hdrv_init(&h, H_QSIZE);
    cr_assert_eq(evloop_init(&loop, 64), 0);
    htick_init(&tick, &loop);
    snap_writer_init(&w);
    fd = mkstemp(img);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, IMG_SECTORS * 512), 0);
    close(fd);
    fd = mkstemp(img2);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 2 * IMG_SECTORS * 512), 0);
    close(fd);
    irqs2 = 0;
    log_set_level(LOG_OFF);
}

static void blk_teardown(void)
{
    evloop_fini(&loop);
    virtio_blk_destroy(blk);
    virtio_blk_destroy(blk2);
    blk = blk2 = NULL;
    unlink(img);
    unlink(img2);
    strcpy(img, "/tmp/flint-snapdev-XXXXXX");
    strcpy(img2, "/tmp/flint-snapdev2-XXXXXX");
    snap_writer_free(&w);
    guest_mem_destroy(&h.mem);
    log_set_level(LOG_WARN);
}

TestSuite(snapshot_blk, .init = blk_setup, .fini = blk_teardown);

static struct virtio_blk *blk_open(const char *path, const struct rate_limiter_config *rl)
{
    struct drive_config d = {.path = (char *)path, .id = "disk"};
    struct virtio_blk *b;
    char err[256];

    if (rl)
        d.rate_limiter = *rl;
    cr_assert_eq(virtio_blk_create(&b, &d, &loop, err, sizeof(err)), 0, "%s", err);
    return b;
}

/* The driver's request i (descriptors 3i..3i+2): header, 512 bytes of
 * data, status; a write of `fill` or a read. */
static void blk_request(unsigned i, bool write, uint8_t fill, uint64_t sector)
{
    uint64_t base = H_BUF + 0x1000ull * 4 * i;
    struct {
        uint32_t type, reserved;
        uint64_t sector;
    } hdr = {write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, 0, sector};
    uint16_t d = (uint16_t)(3 * i % (H_QSIZE - 2));

    cr_assert_eq(guest_mem_write(&h.mem, base, &hdr, 16), 0);
    memset(hmem(&h, base + 0x1000, 512), write ? fill : 0, 512);
    *(uint8_t *)hmem(&h, base + 0x2000, 1) = 0xee;
    hset(&h, d, base, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
    hset(&h, (uint16_t)(d + 1), base + 0x1000, 512,
         VIRTQ_DESC_F_NEXT | (write ? 0 : VIRTQ_DESC_F_WRITE), (uint16_t)(d + 2));
    hset(&h, (uint16_t)(d + 2), base + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
    hoffer(&h, d);
}

static uint8_t blk_status(unsigned i)
{
    return *(uint8_t *)hmem(&h, H_BUF + 0x1000ull * 4 * i + 0x2000, 1);
}

static void run_until_used(uint16_t want)
{
    for (int i = 0; i < 1000 && hused_idx(&h) != want; i++)
        cr_assert_eq(htick_step(&tick), 0);
    cr_assert_eq(hused_idx(&h), want, "used idx %u, expected %u", hused_idx(&h), want);
}

/* A blk device with three requests done, saved into w. */
static void blk_live_and_saved(void)
{
    blk = blk_open(img, NULL);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_blk_ops, blk, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, BLK_FEATURES, 1), 0x0f);
    for (unsigned i = 0; i < 3; i++) {
        blk_request(i, true, (uint8_t)(0x40 + i), i);
        virtio_mmio_notify(&t, 0);
        run_until_used((uint16_t)(i + 1));
        cr_assert_eq(blk_status(i), VIRTIO_BLK_S_OK);
    }
    cr_assert_not(virtio_mmio_busy(&t));
    virtio_mmio_save(&t, &w);
    cr_assert_eq(w.err, 0);
}

/* Load w into a fresh device on `path`: 0 or the error, *what its text. */
static int blk_load_fresh(const char *path, const char **what)
{
    struct snap_reader r;
    int rc;

    blk2 = blk_open(path, NULL);
    cr_assert_eq(
        virtio_mmio_init(&t2, &virtio_blk_ops, blk2, &h.mem, 0xc0001000, 5, count_irq2, NULL), 0);
    snap_reader_init(&r, w.buf, w.len);
    rc = virtio_mmio_load(&t2, &r);
    *what = r.what ? r.what : "";
    if (rc == 0)
        cr_assert_eq(r.off, r.len, "the whole state is read");
    return rc;
}

Test(snapshot_blk, restored_device_completes_the_next_request)
{
    const char *what;

    blk_live_and_saved();
    cr_assert_eq(blk_load_fresh(img, &what), 0, "%s", what);
    cr_assert_eq(mrd(&t2, VIRTIO_MMIO_STATUS), 0x0f);
    cr_assert_eq(t2.queues[0].last_avail, 3);
    cr_assert_eq(t2.queues[0].used_idx, 3);
    /* The driver goes on where it was: a read of sector 1 through t2. */
    blk_request(3, false, 0, 1);
    virtio_mmio_notify(&t2, 0);
    run_until_used(4);
    cr_assert_eq(blk_status(3), VIRTIO_BLK_S_OK);
    uint32_t id, len;
    hused_elem(&h, 3, &id, &len);
    cr_assert_eq(id, 9);
    cr_assert_eq(len, 513);
    cr_assert_eq(*(uint8_t *)hmem(&h, H_BUF + 0x1000ull * 12 + 0x1000, 1), 0x41);
}

Test(snapshot_blk, same_state_saves_the_same_bytes)
{
    const char *what;
    struct snap_writer w2;

    blk_live_and_saved();
    cr_assert_eq(blk_load_fresh(img, &what), 0, "%s", what);
    snap_writer_init(&w2);
    virtio_mmio_save(&t2, &w2);
    cr_assert_eq(w2.len, w.len);
    /* Rate limiter bytes aside (none configured: all zero), the same. */
    cr_assert_eq(memcmp(w2.buf, w.buf, w.len), 0);
    snap_writer_free(&w2);
}

Test(snapshot_blk, pending_interrupt_is_raised_again)
{
    const char *what;

    blk_live_and_saved();
    put_le(OFF_INT_STATUS, VIRTIO_MMIO_INT_VRING, 4);
    cr_assert_eq(blk_load_fresh(img, &what), 0, "%s", what);
    cr_assert_geq(irqs2, 1);
    cr_assert_eq(mrd(&t2, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
}

static void expect_refused(const char *path, const char *needle)
{
    const char *what;

    cr_assert_eq(blk_load_fresh(path, &what), -EBADMSG);
    cr_assert(strstr(what, needle), "message '%s' lacks '%s'", what, needle);
    /* Nothing half-restored: the transport is as after a reset. */
    cr_assert_eq(mrd(&t2, VIRTIO_MMIO_STATUS), 0);
    cr_assert_eq(t2.queues[0].ready, 0);
}

Test(snapshot_blk, bad_queue_size_is_refused)
{
    blk_live_and_saved();
    put_le(OFF_Q0_NUM, 12, 2);
    expect_refused(img, "power of two");
}

Test(snapshot_blk, queue_larger_than_the_maximum_is_refused)
{
    blk_live_and_saved();
    put_le(OFF_Q0_NUM, 512, 2);
    expect_refused(img, "power of two");
}

Test(snapshot_blk, ring_outside_ram_is_refused)
{
    blk_live_and_saved();
    cr_assert_eq(get_le(OFF_Q0_DESC, 8), H_DESC);
    put_le(OFF_Q0_DESC, 4 * MIB - 16, 8);
    expect_refused(img, "outside RAM");
}

Test(snapshot_blk, misaligned_ring_is_refused)
{
    blk_live_and_saved();
    put_le(OFF_Q0_DESC, H_DESC + 8, 8);
    expect_refused(img, "misaligned");
}

Test(snapshot_blk, features_not_offered_are_refused)
{
    blk_live_and_saved();
    put_le(OFF_DRV_FEAT, get_le(OFF_DRV_FEAT, 8) | (1ull << 50), 8);
    expect_refused(img, "does not offer");
}

Test(snapshot_blk, driver_ok_without_features_ok_is_refused)
{
    blk_live_and_saved();
    put_le(OFF_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK,
           4);
    expect_refused(img, "status");
}

Test(snapshot_blk, status_beyond_one_byte_is_refused)
{
    blk_live_and_saved();
    put_le(OFF_STATUS, get_le(OFF_STATUS, 4) | 0x100, 4);
    expect_refused(img, "status");
}

/* What a guest can do to its device, a snapshot of it must carry: any
 * driver features before FEATURES_OK, any size in a queue not ready. */
Test(snapshot_blk, states_a_guest_can_reach_load)
{
    const char *what;

    blk = blk_open(img, NULL);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_blk_ops, blk, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    mwr(&t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | 0x30);
    mwr(&t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    mwr(&t, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffffu);
    mwr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    mwr(&t, VIRTIO_MMIO_QUEUE_NUM, 1000);
    virtio_mmio_save(&t, &w);
    cr_assert_eq(blk_load_fresh(img, &what), 0, "%s", what);
    cr_assert_eq(t2.queues[0].num, 1000);
    cr_assert_eq(mrd(&t2, VIRTIO_MMIO_STATUS), mrd(&t, VIRTIO_MMIO_STATUS));
}

Test(snapshot_blk, truncated_state_is_refused)
{
    blk_live_and_saved();
    w.len -= 1;
    expect_refused(img, "virtio device section");
}

Test(snapshot_blk, trailing_bytes_are_refused)
{
    blk_live_and_saved();
    /* One byte more inside the transport's section. */
    put_le(OFF_SEC_LEN, get_le(OFF_SEC_LEN, 8) + 1, 8);
    snap_put_u8(&w, 0);
    expect_refused(img, "left over");
}

Test(snapshot_blk, wrong_tag_is_refused)
{
    blk_live_and_saved();
    w.buf[0] ^= 0x20;
    expect_refused(img, "virtio device section");
}

Test(snapshot_blk, other_device_type_is_refused)
{
    blk_live_and_saved();
    put_le(12, VIRTIO_ID_NET, 4);
    expect_refused(img, "type differs");
}

Test(snapshot_blk, image_of_another_size_is_refused_naming_it)
{
    blk_live_and_saved();
    expect_refused(img2, "4096 sectors, the snapshot's had 2048");
}

Test(snapshot_blk, busy_while_a_request_is_in_flight)
{
    blk = blk_open(img, NULL);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_blk_ops, blk, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, BLK_FEATURES, 1), 0x0f);
    blk_request(0, true, 0x11, 0);
    virtio_mmio_notify(&t, 0);
    cr_assert(virtio_mmio_busy(&t), "a submitted write is in flight");
    run_until_used(1);
    cr_assert_not(virtio_mmio_busy(&t));
}

Test(snapshot_blk, quiesced_device_takes_no_new_request_until_restarted)
{
    blk = blk_open(img, NULL);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_blk_ops, blk, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, BLK_FEATURES, 1), 0x0f);
    virtio_mmio_quiesce(&t, true);
    blk_request(0, true, 0x22, 0);
    virtio_mmio_notify(&t, 0);
    cr_assert_eq(htick_pump(&tick, 20), 0);
    cr_assert_eq(hused_idx(&h), 0);
    cr_assert_eq(t.queues[0].last_avail, 0, "nothing taken from the ring");
    cr_assert_not(virtio_mmio_busy(&t));
    virtio_mmio_quiesce(&t, false);
    run_until_used(1);
    cr_assert_eq(blk_status(0), VIRTIO_BLK_S_OK);
}

Test(snapshot_blk, rate_limiter_buckets_survive)
{
    struct rate_limiter_config rl = {.ops = {.size = 10, .refill_time_ms = 100000}};
    const char *what;
    struct snap_reader r;

    blk = blk_open(img, &rl);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_blk_ops, blk, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, BLK_FEATURES, 1), 0x0f);
    for (unsigned i = 0; i < 3; i++) {
        blk_request(i, true, 1, i);
        virtio_mmio_notify(&t, 0);
        run_until_used((uint16_t)(i + 1));
    }
    virtio_mmio_save(&t, &w);
    /* The new process has no limit configured: the snapshot's buckets win
     * (3 of 10 ops spent, the refill a day away: 7 more go through). */
    cr_assert_eq(blk_load_fresh(img, &what), 0, "%s", what);
    for (unsigned i = 3; i < 12; i++) {
        blk_request(i, true, 1, i);
        virtio_mmio_notify(&t2, 0);
        cr_assert_eq(htick_pump(&tick, 10), 0);
    }
    cr_assert_eq(hused_idx(&h), 10, "7 more requests, then the bucket is empty");
    (void)r;
}

/* ---- rate limiter buckets ---- */

Test(snapshot_rate_limiter, tokens_and_burst_survive_and_the_clock_restarts)
{
    struct rate_limiter_config c = {
        .bandwidth = {.size = 1000, .refill_time_ms = 1000, .one_time_burst = 500},
        .ops = {.size = 10, .refill_time_ms = 1000}};
    struct rate_limiter a, b;
    struct snap_writer sw;
    struct snap_reader r;

    rate_limiter_init(&a, &c, 1000);
    cr_assert(rate_limiter_consume(&a, 4, 700, 1000));
    snap_writer_init(&sw);
    rate_limiter_save(&a, &sw);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(rate_limiter_load(&b, &r, 5000000000ull), 0, "%s", r.what);
    cr_assert_eq(b.bandwidth.one_time_burst, 0);
    cr_assert_eq(b.bandwidth.budget, 800);
    cr_assert_eq(b.ops.budget, 6);
    cr_assert_eq(b.ops.last_ns, 5000000000ull, "refill clock restarts at load");
    /* 100 ms after load, 1 op refilled (not 5 s worth from the old clock). */
    cr_assert_eq(rate_limiter_wait_ns(&b, 7, 0, 5000000000ull), 100000000ull);
    snap_writer_free(&sw);
}

Test(snapshot_rate_limiter, more_tokens_than_the_size_are_refused)
{
    struct rate_limiter_config c = {.ops = {.size = 10, .refill_time_ms = 1000}};
    struct rate_limiter a, b;
    struct snap_writer sw;
    struct snap_reader r;

    rate_limiter_init(&a, &c, 0);
    a.ops.budget = 11;
    snap_writer_init(&sw);
    rate_limiter_save(&a, &sw);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(rate_limiter_load(&b, &r, 0), -EBADMSG);
    cr_assert(strstr(r.what, "more tokens"), "%s", r.what);
    a.ops.budget = 10;
    a.ops.partial = 1000ull * 1000000;
    sw.len = 0;
    rate_limiter_save(&a, &sw);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(rate_limiter_load(&b, &r, 0), -EBADMSG);
    cr_assert(strstr(r.what, "fraction"), "%s", r.what);
    snap_writer_free(&sw);
}

/* ---- legacy devices ---- */

static uint8_t uart_rd(struct serial *s, unsigned reg)
{
    uint8_t v;
    serial_bus_ops.read(s, reg, &v, 1);
    return v;
}

Test(snapshot_legacy, serial_registers_and_fifo_survive)
{
    struct serial a, b;
    struct snap_writer sw;
    struct snap_reader r;
    uint8_t v = 0x01; /* IER: data-ready interrupt */

    serial_init(&a, -1, NULL, NULL);
    serial_bus_ops.write(&a, 1, &v, 1);
    v = 0x5a;
    serial_bus_ops.write(&a, 7, &v, 1);
    v = 0xc1; /* FCR: FIFO on, trigger level 14 */
    serial_bus_ops.write(&a, 2, &v, 1);
    cr_assert_eq(serial_push_input(&a, (const uint8_t *)"hello", 5), 5);
    cr_assert_eq(uart_rd(&a, 0), 'h');
    snap_writer_init(&sw);
    serial_save(&a, &sw);
    serial_init(&b, -1, NULL, NULL);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(serial_load(&b, &r), 0, "%s", r.what);
    cr_assert_eq(uart_rd(&b, 1), 0x01);
    cr_assert_eq(uart_rd(&b, 7), 0x5a);
    cr_assert_eq(uart_rd(&b, 5) & 1, 1, "data ready");
    cr_assert_eq(uart_rd(&b, 2) & 0xc0, 0xc0, "the FIFO is still on");
    char got[4];
    for (unsigned i = 0; i < 4; i++)
        got[i] = (char)uart_rd(&b, 0);
    cr_assert_eq(memcmp(got, "ello", 4), 0);
    cr_assert_eq(uart_rd(&b, 5) & 1, 0, "FIFO drained");
    snap_writer_free(&sw);
}

Test(snapshot_legacy, serial_fifo_cursor_out_of_range_is_refused)
{
    struct serial a, b;
    struct snap_writer sw;
    struct snap_reader r;

    serial_init(&a, -1, NULL, NULL);
    a.regs.rx_head = SERIAL_FIFO_LEN;
    snap_writer_init(&sw);
    serial_save(&a, &sw);
    serial_init(&b, -1, NULL, NULL);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(serial_load(&b, &r), -EBADMSG);
    cr_assert(strstr(r.what, "FIFO cursor"), "%s", r.what);
    cr_assert_eq(b.regs.rx_head, 0, "unchanged");
    snap_writer_free(&sw);
}

Test(snapshot_legacy, i8042_queued_bytes_survive)
{
    struct i8042 a, b;
    struct snap_writer sw;
    struct snap_reader r;
    const uint8_t keys[] = {0x14, 0x11};
    uint8_t v;

    i8042_init(&a, NULL, NULL, NULL, NULL);
    cr_assert_eq(i8042_push_keys(&a, keys, 2), 0);
    snap_writer_init(&sw);
    i8042_save(&a, &sw);
    i8042_init(&b, NULL, NULL, NULL, NULL);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(i8042_load(&b, &r), 0, "%s", r.what);
    i8042_data_ops.read(&b, 0, &v, 1);
    cr_assert_eq(v, 0x14);
    i8042_data_ops.read(&b, 0, &v, 1);
    cr_assert_eq(v, 0x11);
    /* A pending command no controller accepts data for: refused. */
    a.regs.pending_cmd = 0xfe;
    sw.len = 0;
    i8042_save(&a, &sw);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(i8042_load(&b, &r), -EBADMSG);
    cr_assert(strstr(r.what, "pending command"), "%s", r.what);
    snap_writer_free(&sw);
}

Test(snapshot_legacy, boot_timer_marks_survive_clamped)
{
    struct boot_timer a = {.marks = 3}, b = {0};
    struct snap_writer sw;
    struct snap_reader r;

    snap_writer_init(&sw);
    boot_timer_save(&a, &sw);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(boot_timer_load(&b, &r), 0);
    cr_assert_eq(b.marks, 3);
    a.marks = 0xfffffff0u;
    sw.len = 0;
    boot_timer_save(&a, &sw);
    snap_reader_init(&r, sw.buf, sw.len);
    cr_assert_eq(boot_timer_load(&b, &r), 0);
    cr_assert_eq(b.marks, BOOT_TIMER_MAX_LOGS);
    snap_writer_free(&sw);
}

/* ---- every device's ops table ---- */

Test(snapshot_ops, every_device_has_its_snapshot_callbacks)
{
    const struct virtio_dev_ops *all[] = {&virtio_blk_ops, &virtio_net_ops, &virtio_vsock_ops};

    for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        cr_assert_not_null(all[i]->save, "%s: save", all[i]->name);
        cr_assert_not_null(all[i]->load, "%s: load", all[i]->name);
        cr_assert_not_null(all[i]->busy, "%s: busy", all[i]->name);
    }
}

/* ---- virtio-net ---- */

#define NET_QSIZE 64
#define NET_RX    (H_BUF + 0x100000ull)

static struct virtio_net *net, *net2;
static int peer = -1, peer2 = -1;

static void net_setup(void)
{
    hdrv_init(&h, NET_QSIZE);
    cr_assert_eq(evloop_init(&loop, 128), 0);
    htick_init(&tick, &loop);
    snap_writer_init(&w);
    log_set_level(LOG_OFF);
}

static void net_teardown(void)
{
    evloop_fini(&loop);
    virtio_net_destroy(net);
    virtio_net_destroy(net2);
    net = net2 = NULL;
    if (peer >= 0)
        close(peer);
    if (peer2 >= 0)
        close(peer2);
    peer = peer2 = -1;
    snap_writer_free(&w);
    guest_mem_destroy(&h.mem);
    log_set_level(LOG_WARN);
}

TestSuite(snapshot_net, .init = net_setup, .fini = net_teardown);

/* A device over a datagram socketpair standing in for the tap (no MAC
 * configured: each device makes up its own). */
static struct virtio_net *net_open(int *host)
{
    struct net_config cfg = {.tap = "unit0"};
    struct virtio_net *n;
    char err[256];
    int sv[2];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    *host = sv[1];
    cr_assert_eq(virtio_net_create_fd(&n, sv[0], false, &cfg, &loop, err, sizeof(err)), 0, "%s",
                 err);
    return n;
}

static const uint64_t NET_FEATURES = VIRTIO_FEATURE(VIRTIO_F_VERSION_1) |
                                     VIRTIO_FEATURE(VIRTIO_NET_F_MAC) |
                                     VIRTIO_FEATURE(VIRTIO_NET_F_MTU);

Test(snapshot_net, pending_rx_is_taken_back_and_resumes_after_load)
{
    struct hq rxq = hq_make(&h, VIRTIO_NET_RXQ);
    struct snap_reader r;
    uint8_t mac[6], mac2[6], frame[12 + 60] = {0};
    uint32_t id, len;

    net = net_open(&peer);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_net_ops, net, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, NET_FEATURES, 2), 0x0f);
    cr_assert_eq(htick_pump(&tick, 4), 0);
    for (uint16_t d = 0; d < 2; d++) {
        hq_set(&rxq, d, NET_RX + 0x1000ull * d, 2048, VIRTQ_DESC_F_WRITE, 0);
        hq_offer(&rxq, d);
    }
    virtio_mmio_notify(&t, VIRTIO_NET_RXQ);
    cr_assert_eq(htick_pump(&tick, 4), 0);
    cr_assert(virtio_mmio_busy(&t), "a read of the tap into guest buffers is pending");
    cr_assert_eq(t.queues[VIRTIO_NET_RXQ].last_avail, 1);

    /* Pause: the read is cancelled and its chain goes back to the ring. */
    virtio_mmio_quiesce(&t, true);
    for (int i = 0; i < 500 && virtio_mmio_busy(&t); i++)
        cr_assert_eq(htick_step(&tick), 0);
    cr_assert_not(virtio_mmio_busy(&t));
    cr_assert_eq(t.queues[VIRTIO_NET_RXQ].last_avail, 0, "the held chain was given back");
    /* A frame arriving now stays in the tap: guest memory stands still. */
    frame[12] = 0xaa;
    cr_assert_eq(send(peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    cr_assert_eq(htick_pump(&tick, 10), 0);
    cr_assert_eq(hq_used_idx(&rxq), 0);
    virtio_mmio_save(&t, &w);

    /* A new process: another tap, another made-up MAC. */
    net2 = net_open(&peer2);
    cr_assert_eq(virtio_mmio_init(&t2, &virtio_net_ops, net2, &h.mem, 0xc0001000, 5, NULL, NULL),
                 0);
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(virtio_mmio_load(&t2, &r), 0, "%s", r.what);
    virtio_net_mac(net, mac);
    virtio_net_mac(net2, mac2);
    cr_assert_eq(memcmp(mac, mac2, 6), 0, "the guest keeps its MAC");
    /* RX resumes without the driver doing anything. */
    cr_assert_eq(htick_pump(&tick, 4), 0);
    frame[12] = 0xbb;
    cr_assert_eq(send(peer2, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    for (int i = 0; i < 500 && hq_used_idx(&rxq) != 1; i++)
        cr_assert_eq(htick_step(&tick), 0);
    cr_assert_eq(hq_used_idx(&rxq), 1);
    hq_used(&rxq, 0, &id, &len);
    cr_assert_eq(id, 0, "the chain given back is the first one used");
    cr_assert_eq(len, sizeof(frame));
    cr_assert_eq(*(uint8_t *)hmem(&h, NET_RX + 12, 1), 0xbb);
}

Test(snapshot_net, multicast_mac_is_refused)
{
    struct snap_reader r;
    size_t at;

    net = net_open(&peer);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_net_ops, net, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, NET_FEATURES, 2), 0x0f);
    virtio_mmio_save(&t, &w);
    /* The device section follows the two queue sections: find its tag. */
    for (at = 0; at + 4 <= w.len; at++)
        if (!memcmp(w.buf + at, "VNET", 4))
            break;
    cr_assert_lt(at + 12, w.len);
    w.buf[at + 12] |= 1;
    net2 = net_open(&peer2);
    cr_assert_eq(virtio_mmio_init(&t2, &virtio_net_ops, net2, &h.mem, 0xc0001000, 5, NULL, NULL),
                 0);
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(virtio_mmio_load(&t2, &r), -EBADMSG);
    cr_assert(strstr(r.what, "multicast"), "%s", r.what);
}

/* ---- virtio-vsock ---- */

#define VS_EV (H_BUF + 0x1f0000ull)

static struct virtio_vsock *vs, *vs2;
static char uds[64], uds2[64];

static void vsock_setup(void)
{
    hdrv_init(&h, 64);
    cr_assert_eq(evloop_init(&loop, 128), 0);
    htick_init(&tick, &loop);
    snap_writer_init(&w);
    snprintf(uds, sizeof(uds), "/tmp/flint-snapdev-%d-a.sock", getpid());
    snprintf(uds2, sizeof(uds2), "/tmp/flint-snapdev-%d-b.sock", getpid());
    unlink(uds);
    unlink(uds2);
    log_set_level(LOG_OFF);
}

static void vsock_teardown(void)
{
    evloop_fini(&loop);
    virtio_vsock_destroy(vs);
    virtio_vsock_destroy(vs2);
    vs = vs2 = NULL;
    snap_writer_free(&w);
    guest_mem_destroy(&h.mem);
    log_set_level(LOG_WARN);
}

TestSuite(snapshot_vsock, .init = vsock_setup, .fini = vsock_teardown);

static struct virtio_vsock *vsock_open(const char *path, uint32_t cid)
{
    struct vsock_config cfg = {.enabled = true, .guest_cid = cid, .uds_path = (char *)path};
    struct virtio_vsock *v;
    char err[256];

    cr_assert_eq(virtio_vsock_create(&v, &cfg, &loop, err, sizeof(err)), 0, "%s", err);
    return v;
}

Test(snapshot_vsock, load_posts_transport_reset_once_the_event_queue_is_live)
{
    struct hq evq = hq_make(&h, VIRTIO_VSOCK_EVQ);
    struct snap_reader r;
    uint32_t id, len, ev;

    vs = vsock_open(uds, 3);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_vsock_ops, vs, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, VIRTIO_FEATURE(VIRTIO_F_VERSION_1), 3), 0x0f);
    cr_assert_eq(htick_pump(&tick, 4), 0);
    /* The guest's event buffer, posted before the snapshot. */
    hq_set(&evq, 0, VS_EV, 4, VIRTQ_DESC_F_WRITE, 0);
    memset(hmem(&h, VS_EV, 4), 0xff, 4);
    hq_offer(&evq, 0);
    virtio_mmio_notify(&t, VIRTIO_VSOCK_EVQ);
    cr_assert_eq(hq_used_idx(&evq), 0, "no event before the snapshot");
    virtio_mmio_save(&t, &w);

    vs2 = vsock_open(uds2, 3);
    cr_assert_eq(virtio_mmio_init(&t2, &virtio_vsock_ops, vs2, &h.mem, 0xc0001000, 5, NULL, NULL),
                 0);
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(virtio_mmio_load(&t2, &r), 0, "%s", r.what);
    for (int i = 0; i < 100 && hq_used_idx(&evq) != 1; i++)
        cr_assert_eq(htick_step(&tick), 0);
    cr_assert_eq(hq_used_idx(&evq), 1);
    hq_used(&evq, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, 4);
    memcpy(&ev, hmem(&h, VS_EV, 4), 4);
    cr_assert_eq(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
}

Test(snapshot_vsock, other_guest_cid_is_refused)
{
    struct snap_reader r;

    vs = vsock_open(uds, 3);
    cr_assert_eq(virtio_mmio_init(&t, &virtio_vsock_ops, vs, &h.mem, 0xc0001000, 5, NULL, NULL), 0);
    cr_assert_eq(hdriver_init(&h, &t, VIRTIO_FEATURE(VIRTIO_F_VERSION_1), 3), 0x0f);
    virtio_mmio_save(&t, &w);
    vs2 = vsock_open(uds2, 4);
    cr_assert_eq(virtio_mmio_init(&t2, &virtio_vsock_ops, vs2, &h.mem, 0xc0001000, 5, NULL, NULL),
                 0);
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(virtio_mmio_load(&t2, &r), -EBADMSG);
    cr_assert(strstr(r.what, "guest_cid"), "%s", r.what);
}

/* ---- the whole device list (snapshot_devices.c) ---- */

static struct vmm vm_a, vm_b;
static struct vm_config cfg_a, cfg_b;

/* Just what vmm_devices_* use: legacy devices and one blk slot. */
static void fake_vmm(struct vmm *vm, struct vm_config *cfg, const char *id)
{
    struct drive_config *d = &cfg->drives[0];
    char err[256];

    memset(vm, 0, sizeof(*vm));
    memset(cfg, 0, sizeof(*cfg));
    *d = (struct drive_config){.path = img, .id = (char *)id};
    cfg->ndrives = 1;
    vm->cfg = cfg;
    serial_init(&vm->serial, -1, NULL, NULL);
    i8042_init(&vm->i8042, NULL, NULL, NULL, NULL);
    cr_assert_eq(virtio_blk_create(&vm->blks[0], d, &loop, err, sizeof(err)), 0, "%s", err);
    vm->nblks = 1;
    vm->nvirtio = 1;
    cr_assert_eq(virtio_mmio_init(&vm->virtio[0].t, &virtio_blk_ops, vm->blks[0], &h.mem,
                                  0xc0001000, 5, NULL, NULL),
                 0);
}

static void vmm_teardown(void)
{
    evloop_fini(&loop);
    virtio_blk_destroy(vm_a.blks[0]);
    virtio_blk_destroy(vm_b.blks[0]);
    vm_a.blks[0] = vm_b.blks[0] = NULL;
    unlink(img);
    unlink(img2);
    strcpy(img, "/tmp/flint-snapdev-XXXXXX");
    strcpy(img2, "/tmp/flint-snapdev2-XXXXXX");
    snap_writer_free(&w);
    guest_mem_destroy(&h.mem);
    log_set_level(LOG_WARN);
}

TestSuite(snapshot_vmm, .init = blk_setup, .fini = vmm_teardown);

Test(snapshot_vmm, whole_device_list_round_trips)
{
    struct snap_reader r;

    fake_vmm(&vm_a, &cfg_a, "rootfs");
    cr_assert_eq(hdriver_init(&h, &vm_a.virtio[0].t, BLK_FEATURES, 1), 0x0f);
    cr_assert_eq(serial_push_input(&vm_a.serial, (const uint8_t *)"x", 1), 1);
    cr_assert_not(vmm_devices_busy(&vm_a));
    cr_assert_eq(vmm_devices_save(&vm_a, &w), 0);
    fake_vmm(&vm_b, &cfg_b, "rootfs");
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(vmm_devices_load(&vm_b, &r), 0, "%s", r.what);
    cr_assert_eq(r.off, r.len);
    cr_assert_eq(mrd(&vm_b.virtio[0].t, VIRTIO_MMIO_STATUS), 0x0f);
    cr_assert_eq(uart_rd(&vm_b.serial, 0), 'x');
}

Test(snapshot_vmm, save_refuses_while_io_is_in_flight)
{
    fake_vmm(&vm_a, &cfg_a, "rootfs");
    cr_assert_eq(hdriver_init(&h, &vm_a.virtio[0].t, BLK_FEATURES, 1), 0x0f);
    blk_request(0, true, 0x33, 0);
    virtio_mmio_notify(&vm_a.virtio[0].t, 0);
    cr_assert(vmm_devices_busy(&vm_a));
    cr_assert_eq(vmm_devices_save(&vm_a, &w), -EBUSY);
    cr_assert_eq(w.len, 0, "nothing written");
    run_until_used(1);
    cr_assert_not(vmm_devices_busy(&vm_a));
    cr_assert_eq(vmm_devices_save(&vm_a, &w), 0);
}

Test(snapshot_vmm, different_device_list_is_refused_naming_the_difference)
{
    struct snap_reader r;

    fake_vmm(&vm_a, &cfg_a, "rootfs");
    cr_assert_eq(vmm_devices_save(&vm_a, &w), 0);
    fake_vmm(&vm_b, &cfg_b, "scratch");
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(vmm_devices_load(&vm_b, &r), -EBADMSG);
    cr_assert(strstr(r.what, "'rootfs', the configuration's 'scratch'"), "%s", r.what);

    /* One virtio device fewer in the configuration. */
    vm_b.nvirtio = 0;
    snap_reader_init(&r, w.buf, w.len);
    cr_assert_eq(vmm_devices_load(&vm_b, &r), -EBADMSG);
    cr_assert(strstr(r.what, "1 virtio devices, the configuration 0"), "%s", r.what);
}

Test(snapshot_vmm, truncated_list_is_refused)
{
    struct snap_reader r;

    fake_vmm(&vm_a, &cfg_a, "rootfs");
    cr_assert_eq(vmm_devices_save(&vm_a, &w), 0);
    fake_vmm(&vm_b, &cfg_b, "rootfs");
    for (size_t cut = 0; cut < w.len; cut += 7) {
        snap_reader_init(&r, w.buf, cut);
        cr_assert_eq(vmm_devices_load(&vm_b, &r), -EBADMSG, "cut at %zu", cut);
        cr_assert_not_null(r.what);
    }
}
