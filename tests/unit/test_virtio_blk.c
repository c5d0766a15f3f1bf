/* Unit tests: virtio-blk requests end to end against a temporary image,
 * with io_uring doing the I/O, plus malformed requests. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "evloop.h"
#include "virtio_blk.h"
#include "virtio_harness.h"

#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define IMG_SECTORS 2048 /* 1 MiB */

static struct hdrv h;
static struct virtio_mmio t;
static struct evloop loop;
static struct virtio_blk *blk;
static char path[] = "/tmp/flint-blk-test-XXXXXX";
static int img_fd;
static uint16_t next_desc;

static const uint64_t FEATURES =
    (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_F_INDIRECT_DESC);

static void open_dev_rl(bool ro, uint64_t extra_features, const struct rate_limiter_config *rl)
{
    struct drive_config d = {.path = path, .id = "unit_disk", .read_only = ro};
    if (rl)
        d.rate_limiter = *rl;
    char err[256];
    cr_assert_eq(virtio_blk_create(&blk, &d, &loop, err, sizeof(err)), 0, "%s", err);
    virtio_mmio_init(&t, &virtio_blk_ops, blk, &h.mem, 0xc0001000, 5, NULL, NULL);
    cr_assert_eq(hdriver_init(&h, &t, FEATURES | extra_features, 1), 0x0f);
}

static void open_dev(bool ro, uint64_t extra_features)
{
    open_dev_rl(ro, extra_features, NULL);
}

static void setup(void)
{
    hdrv_init(&h, H_QSIZE);
    cr_assert_eq(evloop_init(&loop, 64), 0);
    img_fd = mkstemp(path);
    cr_assert_geq(img_fd, 0);
    cr_assert_eq(ftruncate(img_fd, IMG_SECTORS * 512), 0);
    next_desc = 0;
}

static void teardown(void)
{
    evloop_fini(&loop);
    virtio_blk_destroy(blk);
    blk = NULL;
    close(img_fd);
    unlink(path);
    strcpy(path, "/tmp/flint-blk-test-XXXXXX");
    guest_mem_destroy(&h.mem);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

struct req_layout {
    uint64_t hdr, data, status; /* guest addresses */
};

/* Build header | data | status as three descriptors; returns the head. */
static uint16_t build(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable,
                      struct req_layout *l)
{
    static uint64_t area = 0;
    uint16_t d0 = next_desc, d1 = (uint16_t)(next_desc + 1), d2 = (uint16_t)(next_desc + 2);
    l->hdr = H_BUF + area;
    l->data = l->hdr + 0x1000;
    l->status = l->data + ALIGN_UP((uint64_t)data_len, 0x1000) + 0x1000;
    area = (area + 0x40000) % 0x200000;
    struct {
        uint32_t type, reserved;
        uint64_t sector;
    } hdr = {type, 0, sector};
    cr_assert_eq(guest_mem_write(&h.mem, l->hdr, &hdr, 16), 0);
    *(uint8_t *)guest_mem_slice(&h.mem, l->status, 1) = 0xee;
    if (data_len) {
        hset(&h, d0, l->hdr, 16, VIRTQ_DESC_F_NEXT, d1);
        hset(&h, d1, l->data, data_len,
             VIRTQ_DESC_F_NEXT | (data_writable ? VIRTQ_DESC_F_WRITE : 0), d2);
        hset(&h, d2, l->status, 1, VIRTQ_DESC_F_WRITE, 0);
        next_desc = (uint16_t)((next_desc + 3) % (H_QSIZE - 2));
    } else {
        hset(&h, d0, l->hdr, 16, VIRTQ_DESC_F_NEXT, d1);
        hset(&h, d1, l->status, 1, VIRTQ_DESC_F_WRITE, 0);
        next_desc = (uint16_t)((next_desc + 3) % (H_QSIZE - 2));
    }
    return d0;
}

/* Offer, notify, and run the loop until the used index reaches `want`. */
static void run_until_used(uint16_t want)
{
    virtio_mmio_notify(&t, 0);
    for (int i = 0; i < 1000 && hused_idx(&h) != want; i++)
        evloop_run_once(&loop, hused_idx(&h) != want);
    cr_assert_eq(hused_idx(&h), want, "used idx %u, expected %u", hused_idx(&h), want);
}

static uint8_t status_of(const struct req_layout *l)
{
    return *(uint8_t *)guest_mem_slice(&h.mem, l->status, 1);
}

static uint8_t do_req(uint32_t type, uint64_t sector, uint32_t len, bool writable,
                      struct req_layout *l)
{
    uint16_t before = hused_idx(&h);
    hoffer(&h, build(type, sector, len, writable, l));
    run_until_used((uint16_t)(before + 1));
    return status_of(l);
}

Test(virtio_blk, config_reports_capacity_and_limits)
{
    open_dev(false, 0);
    uint64_t cap;
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG, (uint8_t *)&cap, 8);
    cr_assert_eq(cap, IMG_SECTORS);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG + 12), VIRTIO_BLK_SEG_MAX);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG + 20), 512);
    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO), 0);
}

Test(virtio_blk, write_then_read_round_trip)
{
    struct req_layout l;
    open_dev(false, 0);
    uint8_t *data = hbuf(&h, 0x100000, 4096);
    for (int i = 0; i < 4096; i++)
        data[i] = (uint8_t)(i * 7);
    hoffer(&h, build(VIRTIO_BLK_T_OUT, 10, 4096, false, &l));
    /* point the data descriptor at our pattern */
    hdesc(&h, (uint16_t)(next_desc - 2))->addr = H_BUF + 0x100000;
    run_until_used(1);
    cr_assert_eq(status_of(&l), VIRTIO_BLK_S_OK);
    uint8_t file[4096];
    cr_assert_eq(pread(img_fd, file, 4096, 10 * 512), 4096);
    cr_assert_eq(memcmp(file, data, 4096), 0, "the image holds what the guest wrote");

    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 10, 4096, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l.data, 4096), data, 4096), 0);
    uint32_t id, len;
    hused_elem(&h, 1, &id, &len);
    cr_assert_eq(len, 4097, "used length counts data and status");
}

Test(virtio_blk, read_only_drive_refuses_writes)
{
    struct req_layout l;
    cr_assert_eq(pwrite(img_fd, "keep", 4, 0), 4);
    open_dev(true, 0);
    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    cr_assert(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO));
    cr_assert_eq(do_req(VIRTIO_BLK_T_OUT, 0, 512, false, &l), VIRTIO_BLK_S_IOERR);
    char buf[4];
    cr_assert_eq(pread(img_fd, buf, 4, 0), 4);
    cr_assert_eq(memcmp(buf, "keep", 4), 0, "file untouched");
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(do_req(VIRTIO_BLK_T_FLUSH, 0, 0, false, &l), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, out_of_range_and_odd_lengths_are_ioerr)
{
    struct req_layout l;
    open_dev(false, 0);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, IMG_SECTORS, 512, true, &l), VIRTIO_BLK_S_IOERR);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 1024, true, &l), VIRTIO_BLK_S_IOERR);
    cr_assert_eq(do_req(VIRTIO_BLK_T_OUT, UINT64_MAX, 512, false, &l), VIRTIO_BLK_S_IOERR);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 100, true, &l), VIRTIO_BLK_S_IOERR);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 512, true, &l), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, flush_get_id_and_unknown_types)
{
    struct req_layout l;
    open_dev(false, 0);
    cr_assert_eq(do_req(VIRTIO_BLK_T_FLUSH, 0, 0, false, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(do_req(VIRTIO_BLK_T_GET_ID, 0, 20, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(strncmp(guest_mem_slice(&h.mem, l.data, 20), "unit_disk", 20), 0);
    cr_assert_eq(do_req(99, 0, 0, false, &l), VIRTIO_BLK_S_UNSUPP);
    cr_assert_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, 16, false, &l), VIRTIO_BLK_S_UNSUPP,
                 "DISCARD not negotiated");
}

Test(virtio_blk, discard_and_write_zeroes)
{
    struct req_layout l;
    uint8_t ones[4096];
    memset(ones, 0xff, sizeof(ones));
    cr_assert_eq(pwrite(img_fd, ones, 4096, 0), 4096);
    open_dev(false, (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
    if (!(t.regs.driver_features & (1ull << VIRTIO_BLK_F_DISCARD)))
        cr_skip_test("file system without hole punching");
    struct {
        uint64_t sector;
        uint32_t num, flags;
    } seg = {0, 4, 0};
    hoffer(&h, build(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false, &l));
    cr_assert_eq(guest_mem_write(&h.mem, l.data, &seg, 16), 0);
    run_until_used(1);
    cr_assert_eq(status_of(&l), VIRTIO_BLK_S_OK);
    uint8_t back[4096];
    cr_assert_eq(pread(img_fd, back, 4096, 0), 4096);
    cr_assert_eq(back[0], 0);
    cr_assert_eq(back[2047], 0);
    cr_assert_eq(back[2048], 0xff, "only the 4 sectors asked for");
    seg = (typeof(seg)){IMG_SECTORS - 1, 2, 0};
    hoffer(&h, build(VIRTIO_BLK_T_DISCARD, 0, 16, false, &l));
    cr_assert_eq(guest_mem_write(&h.mem, l.data, &seg, 16), 0);
    run_until_used(2);
    cr_assert_eq(status_of(&l), VIRTIO_BLK_S_IOERR, "range past the end");
    seg = (typeof(seg)){4, 4, 1};
    hoffer(&h, build(VIRTIO_BLK_T_DISCARD, 0, 16, false, &l));
    cr_assert_eq(guest_mem_write(&h.mem, l.data, &seg, 16), 0);
    run_until_used(3);
    cr_assert_eq(status_of(&l), VIRTIO_BLK_S_UNSUPP, "unmap flag on DISCARD");
}

Test(virtio_blk, header_split_across_descriptors)
{
    open_dev(false, 0);
    struct {
        uint32_t type, reserved;
        uint64_t sector;
    } hdr = {VIRTIO_BLK_T_IN, 0, 3};
    cr_assert_eq(pwrite(img_fd, "ABCD", 4, 3 * 512), 4);
    guest_mem_write(&h.mem, H_BUF, &hdr, 8);
    guest_mem_write(&h.mem, H_BUF + 0x800, (uint8_t *)&hdr + 8, 8);
    hset(&h, 0, H_BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    hset(&h, 1, H_BUF + 0x800, 8, VIRTQ_DESC_F_NEXT, 2);
    hset(&h, 2, H_BUF + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
    hset(&h, 3, H_BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
    hoffer(&h, 0);
    run_until_used(1);
    cr_assert_eq(*(uint8_t *)hbuf(&h, 0x2000, 1), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(hbuf(&h, 0x1000, 4), "ABCD", 4), 0);
}

static void expect_needs_reset_without_used(void)
{
    virtio_mmio_notify(&t, 0);
    evloop_run_once(&loop, false);
    cr_assert(mrd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    cr_assert_eq(hused_idx(&h), 0, "nothing was returned for the bad chain");
}

Test(virtio_blk, short_header_needs_reset)
{
    open_dev(false, 0);
    hset(&h, 0, H_BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    hset(&h, 1, H_BUF + 0x100, 1, VIRTQ_DESC_F_WRITE, 0);
    hoffer(&h, 0);
    expect_needs_reset_without_used();
}

Test(virtio_blk, missing_status_byte_needs_reset)
{
    open_dev(false, 0);
    hset(&h, 0, H_BUF, 16, 0, 0);
    hoffer(&h, 0);
    expect_needs_reset_without_used();
}

Test(virtio_blk, descriptor_loop_needs_reset_then_reset_recovers)
{
    struct req_layout l;
    open_dev(false, 0);
    hset(&h, 0, H_BUF, 16, VIRTQ_DESC_F_NEXT, 0);
    hoffer(&h, 0);
    expect_needs_reset_without_used();
    /* The driver resets and starts over; the device works again. */
    h.avail_idx = 0;
    memset(havail(&h), 0, 6 + 2 * H_QSIZE);
    cr_assert_eq(hdriver_init(&h, &t, FEATURES, 1), 0x0f);
    next_desc = 0;
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, many_requests_in_flight)
{
    struct req_layout l[5];
    open_dev(false, 0);
    for (int i = 0; i < 5; i++)
        hoffer(&h, build(VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, true, &l[i]));
    run_until_used(5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(status_of(&l[i]), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, completion_after_reset_is_dropped)
{
    struct req_layout l;
    open_dev(false, 0);
    hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 4096, true, &l));
    virtio_mmio_notify(&t, 0);
    mwr(&t, VIRTIO_MMIO_STATUS, 0); /* reset while the read is in flight */
    for (int i = 0; i < 10; i++)
        evloop_run_once(&loop, false);
    usleep(10000);
    evloop_run_once(&loop, false);
    cr_assert_eq(hused_idx(&h), 0, "no used entry for a request of the old generation");
    cr_assert_eq(status_of(&l), 0xee, "status byte untouched");
}

/* ---- rate limiting ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t throttled_events(void)
{
    struct virtio_blk_stats st;
    virtio_blk_get_stats(blk, &st);
    return st.rate_limiter_throttled_events;
}

/* Turn the loop without blocking for about `ms` milliseconds. */
static void spin_loop(unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        evloop_run_once(&loop, false);
        usleep(1000);
    }
}

Test(virtio_blk, ops_limit_holds_requests_in_the_ring_until_the_timer)
{
    /* 2 ops at once, then one every 100 ms. */
    struct rate_limiter_config rl = {.ops = {.size = 2, .refill_time_ms = 200}};
    struct req_layout l[4];
    uint64_t t0;

    cr_assert_eq(pwrite(img_fd, "abcd", 4, 3 * 8 * 512), 4);
    open_dev_rl(false, 0, &rl);
    for (int i = 0; i < 4; i++)
        hoffer(&h, build(VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, true, &l[i]));
    t0 = now_ms();
    virtio_mmio_notify(&t, 0);
    spin_loop(40);
    cr_assert_eq(hused_idx(&h), 2, "two requests pass, the others wait");
    cr_assert_eq(status_of(&l[2]), 0xee);
    cr_assert_eq(status_of(&l[3]), 0xee);
    cr_assert_eq(virtio_mmio_live_queue(&t, 0)->last_avail, 2,
                 "the waiting requests are still in the avail ring");
    cr_assert_geq(throttled_events(), 1);
    /* The guest kicking again changes nothing. */
    virtio_mmio_notify(&t, 0);
    evloop_run_once(&loop, false);
    cr_assert_eq(hused_idx(&h), 2);
    run_until_used(4);
    cr_assert_geq(now_ms() - t0, 195, "the 4th request needs 2 refills of 100 ms");
    for (int i = 0; i < 4; i++)
        cr_assert_eq(status_of(&l[i]), VIRTIO_BLK_S_OK, "request %d", i);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l[3].data, 4), "abcd", 4), 0);
}

Test(virtio_blk, request_bigger_than_the_bucket_goes_through_then_waits)
{
    /* 4 KiB per 100 ms; an 8 KiB read is more than the bucket holds. */
    struct rate_limiter_config rl = {.bandwidth = {.size = 4096, .refill_time_ms = 100}};
    struct req_layout l[2];
    uint64_t t0 = now_ms();

    open_dev_rl(false, 0, &rl);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 8192, true, &l[0]), VIRTIO_BLK_S_OK);
    /* No time bound here (CI machines stall): the event count says it did not wait. */
    cr_assert_eq(throttled_events(), 0);
    /* It took the bucket 4 KiB into debt: 512 more bytes wait 112.5 ms. */
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l[1]), VIRTIO_BLK_S_OK);
    cr_assert_geq(now_ms() - t0, 110);
    cr_assert_geq(throttled_events(), 1);
}

Test(virtio_blk, writes_and_flushes_count_too_one_time_burst_first)
{
    struct rate_limiter_config rl = {
        .bandwidth = {.size = 1024, .one_time_burst = 4096, .refill_time_ms = 10000}};
    struct req_layout l;

    open_dev_rl(false, 0, &rl);
    cr_assert_eq(do_req(VIRTIO_BLK_T_OUT, 0, 4096, false, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(do_req(VIRTIO_BLK_T_OUT, 8, 1024, false, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(do_req(VIRTIO_BLK_T_FLUSH, 0, 0, false, &l), VIRTIO_BLK_S_OK,
                 "a flush moves no data: the empty bucket lets it by");
    hoffer(&h, build(VIRTIO_BLK_T_OUT, 16, 512, false, &l));
    virtio_mmio_notify(&t, 0);
    spin_loop(30);
    cr_assert_eq(hused_idx(&h), 3, "the burst and the bucket are spent");
    cr_assert_eq(throttled_events(), 1);
}

Test(virtio_blk, new_limits_resume_a_throttled_queue)
{
    struct rate_limiter_config slow = {.ops = {.size = 1, .refill_time_ms = 60000}};
    struct rate_limiter_config none = {0};
    struct req_layout l[3];

    open_dev_rl(false, 0, &slow);
    for (int i = 0; i < 3; i++)
        hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 512, true, &l[i]));
    virtio_mmio_notify(&t, 0);
    spin_loop(20);
    cr_assert_eq(hused_idx(&h), 1);
    /* PATCH: no limit. The minute-long timer is cancelled, the queue runs. */
    virtio_blk_set_rate_limiter(blk, &none);
    uint64_t t0 = now_ms();
    for (int i = 0; i < 100 && hused_idx(&h) != 3; i++)
        evloop_run_once(&loop, true);
    cr_assert_eq(hused_idx(&h), 3);
    cr_assert_lt(now_ms() - t0, 5000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(status_of(&l[i]), VIRTIO_BLK_S_OK);
    /* And limits can come back. */
    virtio_blk_set_rate_limiter(blk, &slow);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l[0]), VIRTIO_BLK_S_OK);
    hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 512, true, &l[1]));
    virtio_mmio_notify(&t, 0);
    spin_loop(20);
    cr_assert_eq(hused_idx(&h), 4);
}

Test(virtio_blk, reset_clears_the_throttled_state)
{
    struct rate_limiter_config rl = {.ops = {.size = 1, .refill_time_ms = 100}};
    struct req_layout l;

    open_dev_rl(false, 0, &rl);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
    hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 512, true, &l));
    virtio_mmio_notify(&t, 0);
    evloop_run_once(&loop, false);
    cr_assert_eq(hused_idx(&h), 1);
    /* The driver resets and starts over while the queue waits. */
    h.avail_idx = 0;
    memset(havail(&h), 0, 6 + 2 * H_QSIZE);
    memset(hmem(&h, H_USED, 4), 0, 4);
    cr_assert_eq(hdriver_init(&h, &t, FEATURES, 1), 0x0f);
    next_desc = 0;
    /* The old request is gone with the old rings; a new one is served once
     * the bucket has a token again, not lost behind the old wait. */
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(hused_idx(&h), 1);
}

/* ---- PATCH /drives: swapping the backing file ---- */

static char path_b[] = "/tmp/flint-blk-swap-XXXXXX";

static void make_b(uint64_t bytes, const char *text)
{
    int fd = mkstemp(path_b);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)bytes), 0);
    cr_assert_eq(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    close(fd);
}

static void drop_b(void)
{
    unlink(path_b);
    strcpy(path_b, "/tmp/flint-blk-swap-XXXXXX");
}

static unsigned open_fds(void)
{
    char p[64];
    unsigned n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        n += access(p, F_OK) == 0;
    }
    return n;
}

static uint64_t config_capacity(void)
{
    uint64_t cap;
    virtio_mmio_bus_ops.read(&t, VIRTIO_MMIO_CONFIG, (uint8_t *)&cap, 8);
    return cap;
}

Test(virtio_blk, swap_finishes_in_flight_on_old_file_then_uses_new, .fini = drop_b)
{
    struct req_layout l;
    char err[256];
    cr_assert_eq(pwrite(img_fd, "AAAA", 4, 0), 4);
    open_dev(false, 0);
    make_b(3 * MIB, "BBBB");
    unsigned fds = open_fds();
    uint32_t gen = mrd(&t, VIRTIO_MMIO_CONFIG_GENERATION);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

    /* A read taken from the ring and handed to io_uring, not finished. */
    hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 512, true, &l));
    virtio_mmio_notify(&t, 0);
    cr_assert_eq(hused_idx(&h), 0, "the read is in flight");
    cr_assert_eq(virtio_blk_swap(blk, path_b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(open_fds(), fds + 1, "the old file stays open while the read is in flight");
    cr_assert_eq(config_capacity(), 3 * MIB / 512);
    cr_assert_eq(virtio_blk_capacity(blk), 3 * MIB / 512);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1, "ConfigGeneration bumped");
    cr_assert(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG,
              "configuration change interrupt");
    mwr(&t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);

    run_until_used(1);
    cr_assert_eq(status_of(&l), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l.data, 4), "AAAA", 4), 0,
                 "the in-flight read finished on the old file");
    cr_assert_eq(open_fds(), fds, "the old file is closed after its last request");

    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l.data, 4), "BBBB", 4), 0,
                 "the next read reads the new file");
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 3 * MIB / 512 - 1, 512, true, &l), VIRTIO_BLK_S_OK,
                 "the new capacity applies");
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 3 * MIB / 512, 512, true, &l), VIRTIO_BLK_S_IOERR);
    char back[4];
    cr_assert_eq(pread(img_fd, back, 4, 0), 4);
    cr_assert_eq(memcmp(back, "AAAA", 4), 0, "the old file is untouched");
}

Test(virtio_blk, swap_twice_with_requests_in_flight, .fini = drop_b)
{
    struct req_layout l1, l2;
    char err[256];
    cr_assert_eq(pwrite(img_fd, "AAAA", 4, 0), 4);
    open_dev(false, 0);
    make_b(MIB, "BBBB");
    unsigned fds = open_fds();
    hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 512, true, &l1));
    virtio_mmio_notify(&t, 0);
    cr_assert_eq(virtio_blk_swap(blk, path_b, err, sizeof(err)), 0, "%s", err);
    hoffer(&h, build(VIRTIO_BLK_T_IN, 0, 512, true, &l2));
    virtio_mmio_notify(&t, 0);
    /* Back to the first image while both reads are in flight. */
    cr_assert_eq(virtio_blk_swap(blk, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(open_fds(), fds + 2);
    run_until_used(2);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l1.data, 4), "AAAA", 4), 0);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l2.data, 4), "BBBB", 4), 0);
    cr_assert_eq(open_fds(), fds, "both retired files are closed");
}

Test(virtio_blk, swap_keeps_read_only, .fini = drop_b)
{
    struct req_layout l;
    char err[256];
    open_dev(true, 0);
    make_b(MIB, "BBBB");
    cr_assert_eq(virtio_blk_swap(blk, path_b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(do_req(VIRTIO_BLK_T_OUT, 0, 512, false, &l), VIRTIO_BLK_S_IOERR);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l.data, 4), "BBBB", 4), 0);
    mwr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    cr_assert(mrd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_BLK_F_RO));
}

/* A refused swap changes nothing: same file, capacity, generation, no
 * interrupt, no descriptor leaked. */
static void expect_refused(const char *to, int want_rc, const char *want_text)
{
    struct req_layout l;
    char err[256] = "";
    unsigned fds = open_fds();
    uint32_t gen = mrd(&t, VIRTIO_MMIO_CONFIG_GENERATION);

    cr_assert_eq(virtio_blk_swap(blk, to, err, sizeof(err)), want_rc);
    cr_assert(strstr(err, want_text), "error '%s' names '%s'", err, want_text);
    cr_assert_eq(config_capacity(), IMG_SECTORS);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_CONFIG_GENERATION), gen);
    cr_assert_eq(mrd(&t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG, 0);
    cr_assert_eq(open_fds(), fds);
    cr_assert_eq(do_req(VIRTIO_BLK_T_IN, 0, 512, true, &l), VIRTIO_BLK_S_OK);
    cr_assert_eq(memcmp(guest_mem_slice(&h.mem, l.data, 4), "AAAA", 4), 0);
}

Test(virtio_blk, swap_to_missing_file_or_directory_changes_nothing)
{
    cr_assert_eq(pwrite(img_fd, "AAAA", 4, 0), 4);
    open_dev(false, 0);
    expect_refused("/tmp/flint-no-such-image", -ENOENT, "/tmp/flint-no-such-image");
    expect_refused("/tmp", -EISDIR, "/tmp");
    expect_refused("/dev/null", -EINVAL, "not a regular file or block device");
}
