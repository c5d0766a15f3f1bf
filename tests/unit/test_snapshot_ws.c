/* Unit tests: the working-set file (snapshot_ws.h): round trip, hostile
 * files, recording from /proc/self/pagemap and prefetching on a real
 * MAP_PRIVATE file mapping. No KVM. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "api.h"
#include "snap_io.h"
#include "snapshot.h"
#include "snapshot_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM (64ull << 20)

static char err[512];

static struct snapshot_ws_run sample_runs[] = {{0, 1}, {2, 30}, {100, 1}, {16383, 1}};

static void encode_sample(uint8_t **buf, size_t *len)
{
    struct snapshot_ws ws = {.mem_size = MEM, .nruns = 4, .runs = sample_runs};

    cr_assert_eq(snapshot_ws_encode(&ws, (void **)buf, len), 0);
}

/* Put back a valid CRC after a deliberate change, so the check under test
 * is the one that fails. */
static void recrc(uint8_t *buf, size_t len)
{
    uint64_t crc = snap_crc64(0, buf, len - 8);

    for (unsigned i = 0; i < 8; i++)
        buf[len - 8 + i] = (uint8_t)(crc >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void expect_refused(const uint8_t *buf, size_t len, const char *why)
{
    struct snapshot_ws ws;

    err[0] = 0;
    cr_assert_eq(snapshot_ws_parse(buf, len, MEM, &ws, err, sizeof(err)), -EBADMSG);
    cr_assert_not_null(strstr(err, why), "err '%s' lacks '%s'", err, why);
    cr_assert_null(ws.runs);
}

Test(snapshot_ws, round_trip)
{
    struct snapshot_ws ws;
    uint8_t *buf;
    size_t len;

    encode_sample(&buf, &len);
    cr_assert_eq(len, SNAPSHOT_WS_HEADER_LEN + 4 * SNAPSHOT_WS_RUN_LEN + 8);
    cr_assert_eq(snapshot_ws_parse(buf, len, MEM, &ws, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(ws.nruns, 4);
    cr_assert_eq(ws.mem_size, MEM);
    cr_assert_eq(memcmp(ws.runs, sample_runs, sizeof(sample_runs)), 0);
    snapshot_ws_free(&ws);
    free(buf);
}

Test(snapshot_ws, empty_set)
{
    struct snapshot_ws ws = {.mem_size = MEM}, out;
    void *buf;
    size_t len;

    cr_assert_eq(snapshot_ws_encode(&ws, &buf, &len), 0);
    cr_assert_eq(snapshot_ws_parse(buf, len, MEM, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(out.nruns, 0);
    snapshot_ws_free(&out);
    free(buf);
}

Test(snapshot_ws, hostile_header)
{
    uint8_t *buf;
    size_t len;

    encode_sample(&buf, &len);
    expect_refused(buf, 10, "not a flint working-set file");
    buf[0] ^= 1;
    expect_refused(buf, len, "not a flint working-set file");
    buf[0] ^= 1;
    buf[8] = 2;
    recrc(buf, len);
    expect_refused(buf, len, "unknown format version");
    buf[8] = 1;
    recrc(buf, len);
    expect_refused(buf, len - 16, "length does not match");
    buf[12] = 0xff; /* a huge run count */
    buf[13] = 0xff;
    expect_refused(buf, len, "length does not match");
    buf[12] = 4;
    buf[13] = 0;
    buf[40] ^= 0x80;
    expect_refused(buf, len, "CRC mismatch");
    buf[40] ^= 0x80;
    buf[24] = 1;
    recrc(buf, len);
    expect_refused(buf, len, "reserved field");
    free(buf);
}

Test(snapshot_ws, other_memory_file)
{
    struct snapshot_ws ws;
    uint8_t *buf;
    size_t len;

    encode_sample(&buf, &len);
    cr_assert_eq(snapshot_ws_parse(buf, len, MEM * 2, &ws, err, sizeof(err)), -EBADMSG);
    cr_assert_not_null(strstr(err, "another size"), "%s", err);
    free(buf);
}

/* Each run field in turn made hostile: the whole file is refused. */
Test(snapshot_ws, hostile_runs)
{
    static const struct {
        unsigned run, field;
        uint64_t value;
        const char *why;
    } cases[] = {
        {1, 1, 0, "zero pages"},
        {1, 0, 0, "not sorted or overlapping"},  /* run 1 starts inside run 0 */
        {2, 0, 31, "not sorted or overlapping"}, /* inside run 1 */
        {3, 0, 16384, "beyond the end"},
        {3, 1, 2, "beyond the end"},
        {3, 1, UINT64_MAX, "beyond the end"},
        {3, 0, UINT64_MAX, "beyond the end"},
    };
    uint8_t *buf;
    size_t len;

    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        encode_sample(&buf, &len);
        put64(buf + SNAPSHOT_WS_HEADER_LEN + cases[i].run * SNAPSHOT_WS_RUN_LEN +
                  cases[i].field * 8,
              cases[i].value);
        recrc(buf, len);
        expect_refused(buf, len, cases[i].why);
        free(buf);
    }
}

Test(snapshot_ws, path)
{
    char out[16];

    cr_assert_eq(snapshot_ws_path("/a/state", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "/a/state.ws");
    cr_assert_eq(snapshot_ws_path("/a/very/long/state", out, sizeof(out)), -ENAMETOOLONG);
}

/* A file mapped MAP_PRIVATE as a restore does: pages read or written
 * show up in the recorded set, untouched ones do not; prefetching the set
 * in a fresh mapping makes exactly those pages present, still shared
 * (read faults map the page cache, nothing copied). */
Test(snapshot_ws, record_and_prefetch)
{
    const uint64_t size = 1ull << 20, pages = size / 4096;
    char path[] = "/tmp/flint-ws-XXXXXX";
    int fd = mkstemp(path), pm = open("/proc/self/pagemap", O_RDONLY);
    struct snapshot_ws ws, again;
    volatile uint8_t *map;
    uint8_t sink = 0;

    cr_assert(fd >= 0 && pm >= 0);
    unlink(path);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    /* Fault-around may map neighbours of a read page: no read faults
     * here, only writes (which fault one page each). */
    map[3 * 4096] = 1;
    map[4 * 4096] = 1;
    map[200 * 4096] = 1;
    cr_assert_eq(snapshot_ws_from_pagemap(pm, (const void *)map, size, &ws), 0);
    cr_assert_eq(ws.nruns, 2);
    cr_assert_eq(ws.runs[0].first, 3);
    cr_assert_eq(ws.runs[0].npages, 2);
    cr_assert_eq(ws.runs[1].first, 200);
    cr_assert_eq(ws.runs[1].npages, 1);
    munmap((void *)map, size);

    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    cr_assert_eq(snapshot_ws_prefetch((void *)map, &ws), 0);
    cr_assert_eq(snapshot_ws_from_pagemap(pm, (const void *)map, size, &again), 0);
    cr_assert_geq(again.nruns, 1, "prefetch mapped nothing");
    for (uint32_t i = 0; i < ws.nruns; i++)
        for (uint64_t p = ws.runs[i].first; p < ws.runs[i].first + ws.runs[i].npages; p++) {
            int found = 0;
            for (uint32_t j = 0; j < again.nruns; j++)
                found |= p >= again.runs[j].first && p < again.runs[j].first + again.runs[j].npages;
            cr_assert(found, "page %llu not prefetched", (unsigned long long)p);
        }
    sink = map[pages / 2 * 4096]; /* the mapping still reads */
    cr_assert_eq(sink, 0);
    snapshot_ws_free(&again);
    snapshot_ws_free(&ws);
    munmap((void *)map, size);
    close(pm);
    close(fd);
}

static int parse_load(const char *text, struct snapshot_load_req *req)
{
    json_t *body = json_loads(text, 0, NULL);
    int rc;

    cr_assert_not_null(body, "%s", text);
    rc = api_parse_snapshot_load(body, req, err, sizeof(err));
    json_decref(body);
    return rc;
}

/* PUT /snapshot/load's flint extension "prefetch": a boolean, File only. */
Test(snapshot_ws, load_body_prefetch)
{
    struct snapshot_load_req req;

    cr_assert_eq(parse_load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}", &req), 0, "%s",
                 err);
    cr_assert(!req.prefetch);
    cr_assert_eq(parse_load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\","
                            "\"prefetch\":true}",
                            &req),
                 0, "%s", err);
    cr_assert(req.prefetch);
    cr_assert_eq(parse_load("{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\","
                            "\"prefetch\":1}",
                            &req),
                 -EINVAL);
    cr_assert(strstr(err, "prefetch"), "%s", err);
    cr_assert_eq(parse_load("{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":"
                            "\"Uffd\",\"backend_path\":\"/u\"},\"prefetch\":true}",
                            &req),
                 -EINVAL);
    cr_assert(strstr(err, "needs mem_backend File"), "%s", err);
}
