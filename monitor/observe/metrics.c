/*
 * metrics.c - Firecracker-style metrics lines: counters gathered as JSON,
 * turned into deltas since the last line, written without blocking.
 */
#include "metrics.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
}

int metrics_open(struct metrics *m, const char *path, char *err, size_t errlen)
{
    int fd = log_sink_open(path, err, errlen);

    if (fd < 0)
        return fd;
    if (m->fd >= 0)
        close(m->fd);
    free(m->rest);
    m->rest = NULL;
    m->rest_len = 0;
    m->fd = fd;
    return 0;
}

json_t *metrics_delta(json_t *last, json_t *cur)
{
    json_t *out = json_object(), *v;
    const char *key;

    if (!out)
        return NULL;
    json_object_foreach(cur, key, v)
    {
        json_t *prev = json_is_object(last) ? json_object_get(last, key) : NULL, *d;

        if (json_is_object(v))
            d = metrics_delta(prev, v);
        else if (json_is_integer(v))
            d = json_integer(json_integer_value(v) -
                             (json_is_integer(prev) ? json_integer_value(prev) : 0));
        else
            d = json_incref(v);
        if (!d || json_object_set_new(out, key, d)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Write what is left of a line a pipe took part of: 0 once none is left. */
static int finish_rest(struct metrics *m)
{
    ssize_t n;

    if (!m->rest)
        return 0;
    n = write(m->fd, m->rest, m->rest_len);
    if (n > 0 && (size_t)n < m->rest_len) {
        memmove(m->rest, m->rest + n, m->rest_len - (size_t)n);
        m->rest_len -= (size_t)n;
        return -EAGAIN;
    }
    if (n <= 0)
        return -EAGAIN;
    free(m->rest);
    m->rest = NULL;
    m->rest_len = 0;
    return 0;
}

/* Merge gauges' blocks into line's. */
static int merge_gauges(json_t *line, json_t *gauges)
{
    const char *key;
    json_t *v;

    json_object_foreach(gauges, key, v)
    {
        json_t *have = json_object_get(line, key);
        if (json_is_object(have) && json_is_object(v) ? json_object_update(have, v)
                                                      : json_object_set(line, key, v))
            return -ENOMEM;
    }
    return 0;
}

int metrics_flush(struct metrics *m, json_t *counters, json_t *gauges, uint64_t utc_ms)
{
    json_t *line = NULL, *logger;
    char *text = NULL;
    size_t len;
    ssize_t n;
    int rc = -ENOMEM;

    if (m->fd < 0) {
        json_decref(counters);
        json_decref(gauges);
        return -ENODEV;
    }
    if (!counters)
        goto out;
    /* The missed counts describe the destination, so they come last. */
    logger = json_pack("{s:I, s:I}", "missed_log_count", (json_int_t)log_dropped(),
                       "missed_metrics_count", (json_int_t)m->dropped);
    if (!logger || json_object_set_new(counters, "logger", logger))
        goto out;
    line = metrics_delta(m->last, counters);
    if (!line || json_object_set_new(line, "utc_timestamp_ms", json_integer((json_int_t)utc_ms)) ||
        (gauges && merge_gauges(line, gauges)))
        goto out;
    text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        goto out;
    len = strlen(text);
    text[len++] = '\n'; /* json_dumps's terminator becomes the newline */
    if (finish_rest(m)) {
        n = 0;
    } else {
        n = write(m->fd, text, len);
        n = n < 0 ? 0 : n;
    }
    if (n == 0) {
        /* A full pipe: the reader loses this line; its changes carry over
         * to the next one. */
        m->dropped++;
        rc = -EAGAIN;
        goto out;
    }
    if ((size_t)n < len) {
        /* Part of it: the rest goes first next time. */
        m->rest = text;
        m->rest_len = len - (size_t)n;
        memmove(text, text + n, m->rest_len);
        text = NULL;
    }
    m->lines++;
    rc = 0;
    json_decref(m->last);
    m->last = counters;
    counters = NULL;
out:
    free(text);
    json_decref(line);
    json_decref(counters);
    json_decref(gauges);
    return rc;
}

void metrics_close(struct metrics *m)
{
    if (m->fd >= 0)
        close(m->fd);
    free(m->rest);
    json_decref(m->last);
    metrics_init(m);
}
