/* Unit tests: metrics lines: their JSON shape, deltas since the last
 * line, gauges, and a destination that cannot take a line. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_int_t at(json_t *j, const char *block, const char *key)
{
    json_t *b = json_object_get(j, block), *v = json_object_get(b, key);
    cr_assert(json_is_integer(v), "no integer %s.%s", block, key);
    return json_integer_value(v);
}

Test(metrics, delta_of_nested_counters)
{
    json_t *last = json_pack("{s:{s:i, s:i}, s:{s:i}}", "block_a", "read_count", 5, "write_count",
                             2, "vcpu", "exits_hlt", 10);
    json_t *cur = json_pack("{s:{s:i, s:i}, s:{s:i}, s:{s:i}, s:s}", "block_a", "read_count", 7,
                            "write_count", 2, "vcpu", "exits_hlt", 11, "net_b", "rx_count", 3,
                            "note", "as is");
    json_t *d = metrics_delta(last, cur);

    cr_assert_not_null(d);
    cr_assert_eq(at(d, "block_a", "read_count"), 2);
    cr_assert_eq(at(d, "block_a", "write_count"), 0);
    cr_assert_eq(at(d, "vcpu", "exits_hlt"), 1);
    cr_assert_eq(at(d, "net_b", "rx_count"), 3, "new counters count from 0");
    cr_assert_str_eq(json_string_value(json_object_get(d, "note")), "as is");
    json_decref(d);
    d = metrics_delta(NULL, cur);
    cr_assert_eq(at(d, "block_a", "read_count"), 7, "the first line: everything since start");
    json_decref(d);
    json_decref(last);
    json_decref(cur);
}

/* Read one line from fd into buf and parse it. */
static json_t *read_line(int fd, char *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap - 1);
    json_error_t e;

    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert_eq(buf[n - 1], '\n', "one line: '%s'", buf);
    cr_assert_null(strchr(buf, '\n') + 1 < buf + n ? buf : NULL, "exactly one line: '%s'", buf);
    json_t *j = json_loads(buf, 0, &e);
    cr_assert_not_null(j, "not JSON: %s", buf);
    return j;
}

static json_t *counters(int reads)
{
    return json_pack("{s:{s:i}, s:{s:i}}", "block_rootfs", "read_count", reads, "api_server",
                     "put_requests", 4);
}

Test(metrics, lines_carry_deltas_and_gauges)
{
    char path[] = "/tmp/flint-metrics-XXXXXX", buf[4096];
    struct metrics m;
    int rd = mkstemp(path);
    json_t *j;

    cr_assert_geq(rd, 0);
    metrics_init(&m);
    cr_assert_eq(metrics_flush(&m, counters(1), NULL, 1), -ENODEV, "no destination yet");
    char err[256];
    cr_assert_eq(metrics_open(&m, "/nonexistent-dir/m", err, sizeof(err)), -ENOENT);
    cr_assert(strstr(err, "cannot open '/nonexistent-dir/m'"), "%s", err);
    cr_assert_eq(metrics_open(&m, path, err, sizeof(err)), 0, "%s", err);

    cr_assert_eq(metrics_flush(&m, counters(3),
                               json_pack("{s:{s:i}}", "api_server", "latency_us_max", 17),
                               1700000000123ull),
                 0);
    j = read_line(rd, buf, sizeof(buf));
    cr_assert_eq(json_integer_value(json_object_get(j, "utc_timestamp_ms")), 1700000000123ll);
    cr_assert_eq(at(j, "block_rootfs", "read_count"), 3);
    cr_assert_eq(at(j, "api_server", "put_requests"), 4);
    cr_assert_eq(at(j, "api_server", "latency_us_max"), 17, "gauges merge in as they are");
    cr_assert_eq(at(j, "logger", "missed_metrics_count"), 0);
    cr_assert_geq(at(j, "logger", "missed_log_count"), 0);
    json_decref(j);

    cr_assert_eq(metrics_flush(&m, counters(10), NULL, 1700000060123ull), 0);
    j = read_line(rd, buf, sizeof(buf));
    cr_assert_eq(at(j, "block_rootfs", "read_count"), 7, "the change since the last line");
    cr_assert_eq(at(j, "api_server", "put_requests"), 0);
    cr_assert_null(json_object_get(json_object_get(j, "api_server"), "latency_us_max"));
    json_decref(j);
    cr_assert_eq(m.lines, 2);
    metrics_close(&m);
    cr_assert_eq(m.fd, -1);
    close(rd);
    unlink(path);
}

Test(metrics, a_full_pipe_drops_the_line_and_the_next_carries_its_changes)
{
    char dir[] = "/tmp/flint-metrics-XXXXXX", fifo[64], err[256];
    static char buf[1 << 20];
    struct metrics m;
    int rd, rc = 0, lines = 0;
    ssize_t n;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    metrics_init(&m);
    /* No reader yet: opening does not wait, nor fail. */
    cr_assert_eq(metrics_open(&m, fifo, err, sizeof(err)), 0, "%s", err);
    rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    for (int i = 1; i < 100000 && rc == 0; i++) {
        rc = metrics_flush(&m, counters(i), NULL, (uint64_t)i);
        lines += rc == 0;
    }
    cr_assert_eq(rc, -EAGAIN, "the pipe filled up and the flush did not block");
    cr_assert_eq(m.dropped, 1);
    /* Drain, then one more line: it carries the dropped line's changes. */
    while ((n = read(rd, buf, sizeof(buf))) > 0) {
    }
    cr_assert_eq(metrics_flush(&m, counters(lines + 5), NULL, 0), 0);
    n = read(rd, buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    json_error_t e;
    json_t *j = json_loads(buf, 0, &e);
    cr_assert_not_null(j, "%s", buf);
    cr_assert_eq(at(j, "block_rootfs", "read_count"), 5);
    cr_assert_eq(at(j, "logger", "missed_metrics_count"), 1);
    json_decref(j);
    metrics_close(&m);
    close(rd);
    unlink(fifo);
    rmdir(dir);
}

Test(metrics, a_line_a_pipe_took_part_of_is_finished_first)
{
    char dir[] = "/tmp/flint-metrics-XXXXXX", fifo[64], err[256], key[32];
    static char buf[1 << 16];
    struct metrics m;
    json_t *big = json_object(), *blk = json_object();
    size_t have = 0;
    ssize_t n;
    int rd;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    metrics_init(&m);
    cr_assert_eq(metrics_open(&m, fifo, err, sizeof(err)), 0, "%s", err);
    rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    cr_assert_eq(fcntl(m.fd, F_SETPIPE_SZ, 4096), 4096);
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof(key), "counter_number_%d", i);
        json_object_set_new(blk, key, json_integer(i));
    }
    json_object_set_new(big, "block_big", blk);
    cr_assert_eq(metrics_flush(&m, big, NULL, 1), 0, "part of it went out");
    cr_assert_not_null(m.rest, "the rest waits");
    cr_assert_eq(metrics_flush(&m, counters(1), NULL, 2), -EAGAIN, "the pipe is still full");
    /* The reader catches up: the rest goes out, then the new line. */
    while (have < sizeof(buf) - 1 && (n = read(rd, buf + have, sizeof(buf) - 1 - have)) > 0)
        have += (size_t)n;
    for (int i = 0; i < 20 && m.rest; i++) {
        if (metrics_flush(&m, counters(2), NULL, 3) == 0)
            break;
        while (have < sizeof(buf) - 1 && (n = read(rd, buf + have, sizeof(buf) - 1 - have)) > 0)
            have += (size_t)n;
    }
    while (have < sizeof(buf) - 1 && (n = read(rd, buf + have, sizeof(buf) - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    cr_assert_null(m.rest);
    char *nl = strchr(buf, '\n');
    cr_assert_not_null(nl, "%s", buf);
    *nl = '\0';
    json_error_t e;
    json_t *first = json_loads(buf, 0, &e), *second = json_loads(nl + 1, 0, &e);
    cr_assert_not_null(first, "the first line arrived whole");
    cr_assert_not_null(second, "then the second: '%s'", nl + 1);
    cr_assert_eq(at(first, "block_big", "counter_number_599"), 599);
    cr_assert_eq(at(second, "block_rootfs", "read_count"), 2);
    json_decref(first);
    json_decref(second);
    metrics_close(&m);
    close(rd);
    unlink(fifo);
    rmdir(dir);
}
