/*
 * End-to-end tests: virtio-blk under a real guest. The blkcheck guest
 * writes a pattern through the device; the test checks the image bytes on
 * the host, and the reverse.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_S 240.0
#define BLKCHECK  BLKCHECK_ELF
#define HOSTILE   GUEST_DIR "/blkhostile.elf"

/* FLINT(args...) runs `flint run args...` (run_flint.h). */
#define FLINT(...) flint_run_args(FLINT_BIN, TIMEOUT_S, (char *[]){__VA_ARGS__, NULL})
#define check      check_status
#define has        check_has

/* A zero-filled image of `sectors` 512-byte sectors. */
static char *make_image(unsigned sectors)
{
    char *path = strdup("/tmp/flint-blk-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)sectors * 512), 0);
    close(fd);
    return path;
}

/* blkcheck's pattern for sector s (see guest-shim/examples/blkcheck). */
static void pattern(uint8_t *p, uint64_t s, uint64_t seed)
{
    memcpy(p, &s, 8);
    memcpy(p + 8, &seed, 8);
    for (int i = 16; i < 512; i++)
        p[i] = (uint8_t)(s * 7 + seed * 13 + (uint64_t)i);
}

static unsigned count_pattern(const char *path, unsigned sectors, uint64_t seed)
{
    uint8_t want[512], got[512];
    unsigned ok = 0;
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    for (unsigned s = 0; s < sectors; s++) {
        pattern(want, s, seed);
        cr_assert_eq(pread(fd, got, 512, (off_t)s * 512), 512);
        ok += memcmp(want, got, 512) == 0;
    }
    close(fd);
    return ok;
}

Test(blk, guest_writes_reach_the_image)
{
    char *img = make_image(4096);
    char drive[128];
    snprintf(drive, sizeof(drive), "%s,id=data_disk", img);
    struct flint_result r =
        FLINT("--kernel", BLKCHECK, "--drive", drive, "--cmdline", "seed=5 sectors=256", "--stats");
    check(&r, 0);
    has(r.out, "blkcheck: OK 256 sectors");
    has(r.out, "id 'data_disk'");
    has(r.err, "virtio-blk 0:");
    cr_assert_eq(count_pattern(img, 256, 5), 256, "every written sector is on the host");
    cr_assert_eq(count_pattern(img, 257, 5), 256, "and nothing beyond");
    /* FLUSH went through to the file (fdatasync via io_uring). */
    cr_assert(strstr(r.err, " 0 flushes") == NULL, "no flush reached the device:\n%s", r.err);
    flint_result_free(&r);
    unlink(img);
    free(img);
}

Test(blk, guest_reads_what_the_host_wrote)
{
    char *img = make_image(1024);
    uint8_t sec[512];
    int fd = open(img, O_WRONLY);
    for (unsigned s = 0; s < 128; s++) {
        pattern(sec, s, 9);
        cr_assert_eq(pwrite(fd, sec, 512, (off_t)s * 512), 512);
    }
    close(fd);
    struct flint_result r =
        FLINT("--kernel", BLKCHECK, "--drive", img, "--cmdline", "mode=read seed=9 sectors=128");
    check(&r, 0);
    has(r.out, "blkcheck: OK 128 sectors");
    flint_result_free(&r);

    r = FLINT("--kernel", BLKCHECK, "--drive", img, "--cmdline", "mode=read seed=10 sectors=128");
    cr_assert_neq(r.status, 0, "a wrong pattern must be noticed:\n%s", r.out);
    has(r.out, "FAIL");
    flint_result_free(&r);
    unlink(img);
    free(img);
}

Test(blk, read_only_drive_refuses_writes)
{
    char *img = make_image(512);
    char drive[128];
    snprintf(drive, sizeof(drive), "%s,ro", img);
    struct flint_result r =
        FLINT("--kernel", BLKCHECK, "--drive", drive, "--cmdline", "mode=ro sectors=16");
    check(&r, 0);
    has(r.out, "blkcheck: write refused");
    has(r.out, "ro 1");
    uint8_t buf[512 * 16], zero[512 * 16] = {0};
    int fd = open(img, O_RDONLY);
    cr_assert_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    close(fd);
    cr_assert_eq(memcmp(buf, zero, sizeof(buf)), 0, "the image is untouched");
    flint_result_free(&r);
    unlink(img);
    free(img);
}

Test(blk, two_drives_at_once)
{
    char *a = make_image(2048), *b = make_image(1024);
    struct flint_result r =
        FLINT("--kernel", BLKCHECK, "--drive", a, "--drive", b, "--cmdline", "seed=3 sectors=64");
    check(&r, 0);
    has(r.out, "2 block device(s)");
    has(r.out, "capacity 2048 sectors");
    has(r.out, "capacity 1024 sectors");
    cr_assert_eq(count_pattern(a, 64, 3), 64);
    cr_assert_eq(count_pattern(b, 64, 3), 64);
    flint_result_free(&r);
    unlink(a);
    unlink(b);
    free(a);
    free(b);
}

Test(blk, hostile_driver_cannot_hurt_flint_or_other_drives)
{
    char *a = make_image(1024), *b = make_image(1024);
    struct flint_result r =
        FLINT("--kernel", HOSTILE, "--drive", a, "--drive", b, "--cmdline", "case=all");
    /* The guest verifies NEEDS_RESET, recovery and the second drive itself;
     * flint must stay up to report its exit status. */
    check(&r, 0);
    has(r.err, "device needs reset");
    flint_result_free(&r);
    unlink(a);
    unlink(b);
    free(a);
    free(b);
}

Test(blk, drive_errors_are_one_line)
{
    struct flint_result r = FLINT("--drive", "/nonexistent/disk.img");
    check(&r, 152);
    has(r.err, "drive /nonexistent/disk.img");
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    flint_result_free(&r);
    r = FLINT("--drive", "/tmp/x.img,rw");
    check(&r, 153);
    has(r.err, "unknown option 'rw'");
    flint_result_free(&r);
    r = FLINT("--drive", "/tmp/x.img,id=bad/id");
    check(&r, 153);
    has(r.err, "id 'bad/id'");
    flint_result_free(&r);
}
