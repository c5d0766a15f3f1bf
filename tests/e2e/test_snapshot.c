/*
 * End-to-end tests: snapshots. A snapmem guest (guests/snapmem.c) fills
 * its memory and rewrites part of it every round; flint pauses it, writes
 * a snapshot through the API, and is killed; a fresh flint restores it and
 * the guest goes on checking every page to its last round. Full, Full then
 * Diff (merged as a user would), the command line (--snapshot-on-signal,
 * --restore), and state or memory files that are truncated, corrupted or
 * too small, each refused with one line. A snapdev guest
 * (guests/snapdev.c) has read its disk and holds a vsock connection when
 * it is snapshotted; restored with drive_overrides and vsock_override, it
 * sees the transport reset, reads the other image and connects again.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_S 240.0
#define SNAPMEM   GUEST_DIR "/snapmem.elf"
#define ROUNDS    "12"

/* ---- a small API client ---- */

static int try_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    close(fd);
    return -errno;
}

static void start_flint(struct live *l, const char *sock, const char *cfg)
{
    char *with_cfg[] = {FLINT_BIN, "--api-sock", (char *)sock, "--config-file", (char *)cfg, NULL};
    char *bare[] = {FLINT_BIN, "--api-sock", (char *)sock, NULL};
    double end = now_s() + TIMEOUT_S;
    int fd;

    unlink(sock);
    live_start(l, cfg ? with_cfg : bare);
    while ((fd = try_connect(sock)) < 0)
        cr_assert(now_s() < end && live_pump(l, 20), "no API socket %s\nstderr:\n%s", sock, l->err);
    close(fd);
}

/* One request; the status, and the body in `body`. */
static int api(struct live *l, const char *sock, const char *method, const char *path,
               const char *body, char *out, size_t outlen)
{
    char req[4096], buf[8192];
    size_t have = 0;
    double end = now_s() + 120;
    int fd = try_connect(sock), status = 0;

    cr_assert_geq(fd, 0, "connect %s\nstderr:\n%s", sock, l->err);
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             method, path, strlen(body), body);
    cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    /* Every answer here is small: read until the server has sent it all
     * (204 has no body; a 400 closes nothing, so wait for its body). */
    while (now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        live_pump(l, 0);
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *hdr_end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "Content-Length:");
        if (hdr_end && (!cl || strlen(hdr_end + 4) >= (size_t)atol(cl + 15)))
            break;
    }
    close(fd);
    buf[have] = '\0';
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &status), 1, "%s %s: no answer\nstderr:\n%s", method,
                 path, l->err);
    if (out)
        snprintf(out, outlen, "%s", strstr(buf, "\r\n\r\n") ? strstr(buf, "\r\n\r\n") + 4 : "");
    return status;
}

static void expect(struct live *l, const char *sock, const char *method, const char *path,
                   const char *body, int want)
{
    char out[2048];
    int st = api(l, sock, method, path, body, out, sizeof(out));

    cr_assert_eq(st, want, "%s %s: %d %s\nstderr:\n%s", method, path, st, out, l->err);
}

/* ---- files ---- */

static void tmp_path(char *buf, size_t len, const char *what)
{
    static unsigned n;
    snprintf(buf, len, "/tmp/flint-e2e-snap-%d-%u-%s", (int)getpid(), n++, what);
    unlink(buf);
}

static void write_config(char *path, size_t len)
{
    char json[1024];
    int fd;

    tmp_path(path, len, "cfg.json");
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 "
             "rounds=" ROUNDS " ms=300\"}, \"machine-config\": {\"vcpu_count\": 1, "
             "\"mem_size_mib\": 64, \"track_dirty_pages\": true}}",
             SNAPMEM);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
}

/* A Diff applied to a Full: its data ranges copied over (what a user's
 * merge tool does with SEEK_DATA / SEEK_HOLE). */
static void apply_diff(const char *diff_path, const char *full_path)
{
    static char buf[1 << 16];
    int diff = open(diff_path, O_RDONLY | O_CLOEXEC), full = open(full_path, O_WRONLY | O_CLOEXEC);
    struct stat st;
    off_t pos = 0;

    cr_assert(diff >= 0 && full >= 0 && fstat(diff, &st) == 0);
    while (pos < st.st_size) {
        off_t d = lseek(diff, pos, SEEK_DATA), h;
        if (d < 0)
            break;
        h = lseek(diff, d, SEEK_HOLE);
        for (off_t o = d; o < h; o += (off_t)sizeof(buf)) {
            size_t n = h - o < (off_t)sizeof(buf) ? (size_t)(h - o) : sizeof(buf);
            cr_assert_eq(pread(diff, buf, n, o), (ssize_t)n);
            cr_assert_eq(pwrite(full, buf, n, o), (ssize_t)n);
        }
        pos = h;
    }
    close(diff);
    close(full);
}

static void snapshot(struct live *l, const char *sock, const char *type, const char *state,
                     const char *mem)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "{\"snapshot_type\": \"%s\", \"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
             type, state, mem);
    expect(l, sock, "PUT", "/snapshot/create", body, 204);
}

static void kill_flint(struct live *l)
{
    kill(l->pid, SIGKILL);
    live_finish(l);
}

/* A fresh flint restores (resume_vm) and the guest runs to its end;
 * backend File (mem the memory file) or Uffd (mem the handler's socket). */
static void restore_with(const char *state, const char *backend, const char *mem,
                         const char *after_round)
{
    char sock[108], body[1024];
    struct live l;

    tmp_path(sock, sizeof(sock), "load.sock");
    start_flint(&l, sock, NULL);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"%s\", "
             "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
             state, backend, mem);
    expect(&l, sock, "PUT", "/snapshot/load", body, 204);
    int status = live_finish(&l);
    cr_assert_eq(status, 0, "restored guest failed (%d)\nstdout:\n%s\nstderr:\n%s", status, l.out,
                 l.err);
    cr_assert_null(strstr(l.out, "filled"), "the guest booted afresh:\n%s", l.out);
    cr_assert_null(strstr(l.out, after_round), "a round from before the snapshot ran again:\n%s",
                   l.out);
    check_has(l.out, "snapmem: round " ROUNDS " ok");
    check_has(l.out, "snapmem: done");
    unlink(sock);
}

static void restore_and_check(const char *state, const char *mem, const char *after_round)
{
    restore_with(state, "File", mem, after_round);
}

Test(snapshot, full_restores_in_a_fresh_process, .timeout = 900)
{
    char cfg[108], sock[108], state[108], mem[108];
    struct live l;

    write_config(cfg, sizeof(cfg));
    tmp_path(sock, sizeof(sock), "api.sock");
    tmp_path(state, sizeof(state), "state");
    tmp_path(mem, sizeof(mem), "mem");
    start_flint(&l, sock, cfg);
    live_wait_for(&l, "snapmem: round 1 ok");
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204);
    snapshot(&l, sock, "Full", state, mem);
    kill_flint(&l);

    struct stat st;
    cr_assert_eq(stat(mem, &st), 0);
    cr_assert_eq(st.st_size, 64 << 20, "the memory file is the size of RAM");
    /* Sparse: the guest used a few MiB of its 64. */
    cr_assert_lt((uint64_t)st.st_blocks * 512, 32ull << 20, "%lld bytes allocated",
                 (long long)st.st_blocks * 512);
    restore_and_check(state, mem, "round 1 ok");
    unlink(cfg);
    unlink(state);
    unlink(mem);
    unlink(sock);
}

Test(snapshot, full_then_diff_reproduces_memory, .timeout = 900)
{
    char cfg[108], sock[108], state1[108], mem1[108], state2[108], mem2[108];
    struct live l;

    write_config(cfg, sizeof(cfg));
    tmp_path(sock, sizeof(sock), "api.sock");
    tmp_path(state1, sizeof(state1), "state1");
    tmp_path(mem1, sizeof(mem1), "mem1");
    tmp_path(state2, sizeof(state2), "state2");
    tmp_path(mem2, sizeof(mem2), "mem2");
    start_flint(&l, sock, cfg);
    live_wait_for(&l, "snapmem: round 1 ok");
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204);
    snapshot(&l, sock, "Full", state1, mem1);
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204);
    /* Rounds 2 and 3 rewrite half the pages: only the Diff has them. */
    live_wait_for(&l, "snapmem: round 3 ok");
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204);
    snapshot(&l, sock, "Diff", state2, mem2);
    kill_flint(&l);

    struct stat full, diff;
    cr_assert(stat(mem1, &full) == 0 && stat(mem2, &diff) == 0);
    cr_assert_lt(diff.st_blocks, full.st_blocks, "the Diff (%lld blocks) is not smaller",
                 (long long)diff.st_blocks);
    apply_diff(mem2, mem1);
    restore_and_check(state2, mem1, "round 3 ok");
    unlink(cfg);
    unlink(state1);
    unlink(mem1);
    unlink(state2);
    unlink(mem2);
    unlink(sock);
}

/* Full snapshot of a snapmem guest after its first round. */
static void take_full(char *state, char *mem, size_t len)
{
    char cfg[108], sock[108];
    struct live l;

    write_config(cfg, sizeof(cfg));
    tmp_path(sock, sizeof(sock), "api.sock");
    tmp_path(state, len, "state");
    tmp_path(mem, len, "mem");
    start_flint(&l, sock, cfg);
    live_wait_for(&l, "snapmem: round 1 ok");
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204);
    snapshot(&l, sock, "Full", state, mem);
    kill_flint(&l);
    unlink(cfg);
    unlink(sock);
}

Test(snapshot, uffd_backend_with_the_example_handler, .timeout = 900)
{
    char state[108], mem[108], usock[108];
    struct live h;

    take_full(state, mem, sizeof(state));
    tmp_path(usock, sizeof(usock), "uffd.sock");
    char *argv[] = {UFFD_HANDLER, usock, mem, NULL};
    live_start(&h, argv);
    live_wait_for(&h, "uffd_handler: listening");
    restore_with(state, "Uffd", usock, "round 1 ok");
    cr_assert_eq(live_finish(&h), 0, "handler:\n%s\n%s", h.out, h.err);
    /* The guest's pattern alone is 1024 pages, all faulted in by the
     * handler. */
    unsigned long long served = 0;
    const char *s = strstr(h.out, "served ");
    cr_assert(s && sscanf(s, "served %llu", &served) == 1 && served >= 1024, "%s", h.out);
    unlink(state);
    unlink(mem);
}

/* Loaded paused (no resume_vm), snapshotted again before it ever ran,
 * resumed: both the resumed guest and a restore of the second snapshot
 * (taken from memory mapped from the first's file) run to the end. */
Test(snapshot, paused_load_then_snapshot_again, .timeout = 900)
{
    char state[108], mem[108], state2[108], mem2[108], sock[108], body[1024], out[2048];
    struct live l;

    take_full(state, mem, sizeof(state));
    tmp_path(state2, sizeof(state2), "state2");
    tmp_path(mem2, sizeof(mem2), "mem2");
    tmp_path(sock, sizeof(sock), "load.sock");
    start_flint(&l, sock, NULL);
    snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", state,
             mem);
    expect(&l, sock, "PUT", "/snapshot/load", body, 204);
    cr_assert_eq(api(&l, sock, "GET", "/", "", out, sizeof(out)), 200);
    cr_assert(strstr(out, "\"state\":\"Paused\""), "%s", out);
    /* The memory file this VM is mapped from cannot be the new one. */
    snprintf(body, sizeof(body),
             "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
             state2, mem);
    cr_assert_eq(api(&l, sock, "PUT", "/snapshot/create", body, out, sizeof(out)), 400);
    cr_assert(strstr(out, "mapped from that file"), "%s", out);
    snapshot(&l, sock, "Full", state2, mem2);
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204);
    int status = live_finish(&l);
    cr_assert_eq(status, 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert_null(strstr(l.out, "filled"), "%s", l.out);
    check_has(l.out, "snapmem: round " ROUNDS " ok");
    restore_and_check(state2, mem2, "round 1 ok");
    unlink(state);
    unlink(mem);
    unlink(state2);
    unlink(mem2);
    unlink(sock);
}

Test(snapshot, diff_without_tracking_is_refused, .timeout = 600)
{
    char sock[108], state[108], mem[108], out[1024];
    struct live l;

    tmp_path(sock, sizeof(sock), "api.sock");
    tmp_path(state, sizeof(state), "state");
    tmp_path(mem, sizeof(mem), "mem");
    start_flint(&l, sock, NULL);
    snprintf(out, sizeof(out),
             "{\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 rounds=" ROUNDS
             " ms=300\"}",
             SNAPMEM);
    expect(&l, sock, "PUT", "/boot-source", out, 204);
    expect(&l, sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204);
    live_wait_for(&l, "snapmem: round 1 ok");
    snprintf(out, sizeof(out),
             "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
             state, mem);
    cr_assert_eq(api(&l, sock, "PUT", "/snapshot/create", out, NULL, 0), 400,
                 "a running VM was snapshotted");
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204);
    snprintf(out, sizeof(out),
             "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
             state, mem);
    cr_assert_eq(api(&l, sock, "PUT", "/snapshot/create", out, out, sizeof(out)), 400);
    cr_assert(strstr(out, "track_dirty_pages"), "%s", out);
    kill_flint(&l);
    unlink(sock);
}

/* ---- the command line, and bad files ---- */

static struct flint_result restore_cli(const char *state, const char *mem)
{
    char *args[] = {"--restore", (char *)state, "--mem-file", (char *)mem, NULL};

    return flint_run_args(FLINT_BIN, TIMEOUT_S, args);
}

static void copy_file(const char *from, const char *to, off_t len)
{
    static char buf[1 << 16];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ssize_t n;
    off_t done = 0;

    cr_assert(in >= 0 && out >= 0);
    while (done < len && (n = read(in, buf, sizeof(buf))) > 0) {
        if (n > len - done)
            n = len - done;
        cr_assert_eq(write(out, buf, (size_t)n), n);
        done += n;
    }
    close(in);
    close(out);
}

static void refused(const char *state, const char *mem, const char *needle)
{
    struct flint_result r = restore_cli(state, mem);

    cr_assert_eq(r.status, 152, "status %d\nstderr:\n%s", r.status, r.err);
    cr_assert(strstr(r.err, needle), "no '%s' in:\n%s", needle, r.err);
    cr_assert_eq(count_lines(r.err), 1, "more than one line:\n%s", r.err);
    cr_assert_null(strstr(r.out, "snapmem"), "the guest ran:\n%s", r.out);
    flint_result_free(&r);
}

Test(snapshot, command_line_save_restore_and_bad_files, .timeout = 900)
{
    char state[108], mem[108], bad[108], small[108], spec[256];
    struct live l;

    tmp_path(state, sizeof(state), "state");
    tmp_path(mem, sizeof(mem), "mem");
    tmp_path(bad, sizeof(bad), "bad");
    tmp_path(small, sizeof(small), "small");
    snprintf(spec, sizeof(spec), "%s,%s", state, mem);
    char *argv[] = {FLINT_BIN, "run",       "--kernel",
                    SNAPMEM,   "--cmdline", "console=ttyS0 rounds=" ROUNDS " ms=300",
                    "--mem",   "64",        "--snapshot-on-signal",
                    spec,      NULL};
    live_start(&l, argv);
    live_wait_for(&l, "snapmem: round 1 ok");
    kill(l.pid, SIGUSR1);
    cr_assert_eq(live_finish(&l), 0, "stderr:\n%s", l.err);

    struct flint_result r = restore_cli(state, mem);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_assert_null(strstr(r.out, "filled"), "%s", r.out);
    check_has(r.out, "snapmem: round " ROUNDS " ok");
    flint_result_free(&r);

    struct stat st;
    cr_assert_eq(stat(state, &st), 0);
    copy_file(state, bad, st.st_size - 100);
    refused(bad, mem, "truncated");
    copy_file(state, bad, st.st_size);
    int fd = open(bad, O_RDWR | O_CLOEXEC);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, st.st_size / 2), 1);
    b ^= 0x04;
    cr_assert_eq(pwrite(fd, &b, 1, st.st_size / 2), 1);
    close(fd);
    refused(bad, mem, "checksum mismatch");
    copy_file(mem, small, 32 << 20);
    refused(state, small, "smaller than the guest's");
    refused(mem, mem, "not a flint snapshot");
    unlink(state);
    unlink(mem);
    unlink(bad);
    unlink(small);
}

/* ---- devices across a restore (snapdev guest) ---- */

#define SNAPDEV    GUEST_DIR "/snapdev.elf"
#define VSOCK_PORT 6000

/* A 1 MiB image whose sector 0 starts with the 16 bytes of text. */
static void make_image(char *path, size_t len, const char *what, const char *text)
{
    int fd;

    tmp_path(path, len, what);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
    cr_assert_eq(pwrite(fd, text, 16, 0), 16);
    close(fd);
}

/* The host's end of guest-initiated connections: flint connects to
 * "<uds>_<port>" (Firecracker's convention). */
static int listen_port(const char *uds, unsigned port)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    cr_assert_geq(fd, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", uds, port);
    unlink(a.sun_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", a.sun_path,
                 strerror(errno));
    cr_assert_eq(listen(fd, 4), 0);
    return fd;
}

/* Pump l (if it still runs) until poll says fd is readable. */
static void wait_readable(struct live *l, int fd, double end)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    while (poll(&p, 1, 20) <= 0) {
        cr_assert(now_s() < end, "nothing came over vsock\nstdout:\n%s\nstderr:\n%s", l->out,
                  l->err);
        if (!l->done)
            live_pump(l, 0);
    }
}

/* Accept the next connection on lfd and read one line from it; the
 * connection, left open. */
static int accept_line(struct live *l, int lfd, char *line, size_t len)
{
    double end = now_s() + 120;
    size_t have = 0;
    int fd;

    wait_readable(l, lfd, end);
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
    while (have + 1 < len && !memchr(line, '\n', have)) {
        wait_readable(l, fd, end);
        ssize_t n = recv(fd, line + have, len - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    line[have] = '\0';
    return fd;
}

static void write_devices_config(char *path, size_t len, const char *image, const char *uds)
{
    char json[2048];
    int fd;

    tmp_path(path, len, "cfg.json");
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 "
             "port=%d\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}, "
             "\"drives\": [{\"drive_id\": \"disk\", \"path_on_host\": \"%s\", "
             "\"is_root_device\": false, \"is_read_only\": false}], "
             "\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"%s\"}}",
             SNAPDEV, VSOCK_PORT, image, uds);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
}

/* The guest read its disk and has a vsock connection open when it is
 * snapshotted; the restored copy gets another image (drive_overrides) and
 * another vsock socket (vsock_override), sees the transport reset, finds
 * its memory intact, reads the new image and connects again. */
Test(snapshot, devices_across_a_restore, .timeout = 900)
{
    char img_a[108], img_b[108], uds_a[108], uds_b[108], cfg[108], sock[108], state[108], mem[108],
        body[2048], line[256];
    struct live l;

    make_image(img_a, sizeof(img_a), "a.img", "snapdev image A.");
    make_image(img_b, sizeof(img_b), "b.img", "snapdev image B.");
    tmp_path(uds_a, sizeof(uds_a), "a.vsock");
    tmp_path(uds_b, sizeof(uds_b), "b.vsock");
    tmp_path(sock, sizeof(sock), "api.sock");
    tmp_path(state, sizeof(state), "state");
    tmp_path(mem, sizeof(mem), "mem");
    int lfd_a = listen_port(uds_a, VSOCK_PORT), lfd_b = listen_port(uds_b, VSOCK_PORT);
    write_devices_config(cfg, sizeof(cfg), img_a, uds_a);

    start_flint(&l, sock, cfg);
    live_wait_for(&l, "snapdev: ready");
    check_has(l.out, "snapdev: disk 'snapdev image A.'");
    /* Held open: the guest must find it reset by the restore, not closed
     * by the host. */
    int conn_a = accept_line(&l, lfd_a, line, sizeof(line));
    cr_assert_str_eq(line, "before snapdev image A.\n");
    expect(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204);
    snapshot(&l, sock, "Full", state, mem);
    kill_flint(&l);

    tmp_path(sock, sizeof(sock), "load.sock");
    start_flint(&l, sock, NULL);
    snprintf(body, sizeof(body),
             "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
             "\"backend_path\": \"%s\"}, \"resume_vm\": true, \"drive_overrides\": "
             "[{\"drive_id\": \"disk\", \"path_on_host\": \"%s\"}], \"vsock_override\": "
             "{\"uds_path\": \"%s\"}}",
             state, mem, img_b, uds_b);
    expect(&l, sock, "PUT", "/snapshot/load", body, 204);
    close(accept_line(&l, lfd_b, line, sizeof(line)));
    int status = live_finish(&l);
    cr_assert_eq(status, 0, "restored guest failed (%d)\nstdout:\n%s\nstderr:\n%s", status, l.out,
                 l.err);
    cr_assert_null(strstr(l.out, "snapdev: ready"), "the guest booted afresh:\n%s", l.out);
    check_has(l.out, "snapdev: transport reset, connection reset");
    check_has(l.out, "snapdev: memory ok");
    check_has(l.out, "snapdev: disk 'snapdev image B.'");
    check_has(l.out, "snapdev: done");
    cr_assert_str_eq(line, "after snapdev image B.\n");
    close(conn_a);
    close(lfd_a);
    close(lfd_b);
    snprintf(line, sizeof(line), "%s_%d", uds_a, VSOCK_PORT);
    unlink(line);
    snprintf(line, sizeof(line), "%s_%d", uds_b, VSOCK_PORT);
    unlink(line);
    unlink(img_a);
    unlink(img_b);
    unlink(cfg);
    unlink(state);
    unlink(mem);
    unlink(sock);
}
