/*
 * metrics.h - Firecracker-style metrics: one JSON object per line, written
 * to the file or named pipe PUT /metrics (or --metrics-path) names, on
 * FlushMetrics, every 60 s and at exit. Every counter is the change since
 * the last line (Firecracker's convention), so a reader sums lines.
 *
 * Writing never blocks the VMM thread: the destination is non-blocking,
 * and a line it cannot take now is dropped and counted (one it took part
 * of is finished before the next line goes out, so lines stay whole).
 */
#ifndef FLINT_METRICS_H
#define FLINT_METRICS_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_PERIOD_NS (60ull * 1000 * 1000 * 1000)

struct metrics {
    int fd;       /* -1: no destination */
    json_t *last; /* the absolute counters of the last line (NULL: none yet) */
    uint64_t lines, dropped;
    char *rest; /* the unwritten end of a line a pipe took only part of */
    size_t rest_len;
};

void metrics_init(struct metrics *m);

/* Open `path`: a regular file (created 0600 if missing, appended to) or a
 * named pipe (read-write, so neither waits for a reader). Replaces an
 * earlier destination. Returns 0 or -errno with one line in err. */
int metrics_open(struct metrics *m, const char *path, char *err, size_t errlen);

/* The changes from `last` to `cur` (objects of integers and objects, any
 * depth): a counter missing from last counts from 0; anything but an
 * integer or object in cur is copied as is. A new reference, NULL if out
 * of memory. */
json_t *metrics_delta(json_t *last, json_t *cur);

/* Write one line: utc_timestamp_ms, the deltas of `counters` (the
 * absolute values now) since the last line, and `gauges` (values that are
 * not counters, such as a maximum since the last line: an object of
 * objects merged in as they are; may be NULL). Takes both references.
 * Returns 0, -ENODEV without a destination, -EAGAIN when the line was
 * dropped (counted; its changes go into the next line), -ENOMEM. */
int metrics_flush(struct metrics *m, json_t *counters, json_t *gauges, uint64_t utc_ms);

void metrics_close(struct metrics *m);

#endif /* FLINT_METRICS_H */
