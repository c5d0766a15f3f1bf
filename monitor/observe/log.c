/*
 * log.c - level-filtered, line-atomic logging: flint's short lines on
 * stderr, or Firecracker's format to the file or named pipe PUT /logger
 * (or --log-path) names.
 */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level cur_level = LOG_WARN;
static __thread char thread_name[16] = "main";
static __thread char last_error[512];
static char vm_id[65]; /* "": no id; config_valid_vm_id() allows at most 64 */

/* The Firecracker-format destination: -1 for none (stderr, flint's format). */
static atomic_int log_fd = -1;
static atomic_bool fc_show_level, fc_show_origin;
static atomic_ullong dropped_lines;
static char fc_id[65]; /* set before the destination, so before threads use it */
/* PUT /logger's module: only lines from source paths starting with it.
 * Written before the vCPU threads start (PUT /logger is pre-boot only). */
static char module_filter[LOG_MODULE_MAX + 1];

static const char *const fc_level_names[] = {
    [LOG_OFF] = "OFF",   [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARN",
    [LOG_INFO] = "INFO", [LOG_DEBUG] = "DEBUG", [LOG_TRACE] = "TRACE",
};

static const char *const level_names[] = {
    [LOG_OFF] = "Off",   [LOG_ERROR] = "Error", [LOG_WARN] = "Warning",
    [LOG_INFO] = "Info", [LOG_DEBUG] = "Debug", [LOG_TRACE] = "Trace",
};

void log_set_level(enum log_level level)
{
    cur_level = level;
}

enum log_level log_get_level(void)
{
    return cur_level;
}

int log_parse_level(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "Warn") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

void log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
}

void log_set_vm_id(const char *id)
{
    snprintf(vm_id, sizeof(vm_id), "%s", id ? id : "");
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian); no libc
 * time zone code, which may open files the VMM thread's filter forbids. */
static void civil_from_days(long long z, int *y, unsigned *m, unsigned *d)
{
    long long era, yy;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = (long long)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

int log_format_fc(char *buf, size_t len, long long sec, long nsec, const char *id,
                  const char *thread, enum log_level level, bool show_level, const char *file,
                  int line, const char *msg)
{
    long long days = sec >= 0 ? sec / 86400 : (sec - 86399) / 86400;
    long long rem = sec - days * 86400;
    unsigned mon, day;
    int year, n;

    civil_from_days(days, &year, &mon, &day);
    n = snprintf(buf, len, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%09ld [%s:%s", year, mon, day,
                 rem / 3600, rem / 60 % 60, rem % 60, nsec, id, thread);
    if (n >= 0 && (size_t)n < len && show_level)
        n += snprintf(buf + n, len - (size_t)n, ":%s", fc_level_names[level]);
    if (n >= 0 && (size_t)n < len && file)
        n += snprintf(buf + n, len - (size_t)n, ":%s:%d", file, line);
    if (n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "] %s", msg);
    if (n < 0)
        n = 0;
    if ((size_t)n >= len)
        n = len ? (int)len - 1 : 0;
    return n;
}

int log_sink_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd;

    /* A pipe opened read-write never waits for (or fails without) a reader. */
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(e));
        return -e;
    }
    if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        close(fd);
        snprintf(err, errlen, "'%s' is not a regular file or a named pipe", path);
        return -EINVAL;
    }
    return fd;
}

int log_set_path(const char *path, const char *instance_id, char *err, size_t errlen)
{
    int fd = log_sink_open(path, err, errlen), old;

    if (fd < 0)
        return fd;
    snprintf(fc_id, sizeof(fc_id), "%s", instance_id ? instance_id : "anonymous-instance");
    old = atomic_load(&log_fd);
    if (old >= 0) {
        /* Swap in place so a concurrent writer never sees a closed fd. */
        if (dup3(fd, old, O_CLOEXEC) < 0) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "cannot switch to '%s': %s", path, strerror(e));
            return -e;
        }
        close(fd);
        return 0;
    }
    atomic_store(&log_fd, fd);
    return 0;
}

void log_set_format(bool show_level, bool show_origin)
{
    atomic_store(&fc_show_level, show_level);
    atomic_store(&fc_show_origin, show_origin);
}

void log_get_format(bool *show_level, bool *show_origin)
{
    *show_level = atomic_load(&fc_show_level);
    *show_origin = atomic_load(&fc_show_origin);
}

int log_set_module(const char *prefix)
{
    if (prefix && strlen(prefix) > LOG_MODULE_MAX)
        return -ENAMETOOLONG;
    snprintf(module_filter, sizeof(module_filter), "%s", prefix ? prefix : "");
    return 0;
}

const char *log_origin(const char *file)
{
    const char *top = file ? strstr(file, "monitor/") : NULL;

    if (top)
        return top;
    while (file && !strncmp(file, "../", 3))
        file += 3;
    return file;
}

/* With a module filter, only lines whose origin starts with it. */
static bool module_passes(const char *file)
{
    const char *origin;

    if (!module_filter[0])
        return true;
    origin = log_origin(file);
    return origin && !strncmp(origin, module_filter, strlen(module_filter));
}

bool log_has_path(void)
{
    return atomic_load(&log_fd) >= 0;
}

unsigned long long log_dropped(void)
{
    return atomic_load(&dropped_lines);
}

static void log_vmsg(enum log_level level, const char *file, int lineno, const char *fmt,
                     va_list ap)
{
    bool print = level != LOG_OFF && level <= cur_level;
    int fd = atomic_load(&log_fd);
    char msg[1024], line[1400];
    struct timespec ts;
    int n;

    print = print && module_passes(file);
    if (!print && level != LOG_ERROR)
        return;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        msg[0] = '\0';
    if (level == LOG_ERROR)
        snprintf(last_error, sizeof(last_error), "%s", msg);
    if (!print)
        return;
    if (fd >= 0) {
        file = log_origin(file);
        clock_gettime(CLOCK_REALTIME, &ts);
        n = log_format_fc(line, sizeof(line) - 1, (long long)ts.tv_sec, ts.tv_nsec, fc_id,
                          thread_name, level, atomic_load(&fc_show_level),
                          atomic_load(&fc_show_origin) ? file : NULL, lineno, msg);
    } else {
        n = snprintf(line, sizeof(line) - 1, "flint[%s%s%s] %s: %s", vm_id, vm_id[0] ? ":" : "",
                     thread_name, level_names[level], msg);
        if (n > (int)sizeof(line) - 2)
            n = (int)sizeof(line) - 2;
        fd = STDERR_FILENO;
    }
    line[n++] = '\n';
    /* One write() so lines from several threads never interleave; a
     * destination that cannot take the line now loses it. */
    if (write(fd, line, (size_t)n) != n && fd != STDERR_FILENO)
        atomic_fetch_add(&dropped_lines, 1);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, file, line, fmt, ap);
    va_end(ap);
}

const char *log_last_error(void)
{
    return last_error;
}

void log_clear_last_error(void)
{
    last_error[0] = '\0';
}

bool log_ratelimit(struct log_ratelimit *state, unsigned burst)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    if (ts.tv_sec != state->window) {
        state->window = ts.tv_sec;
        state->count = 0;
    }
    return state->count++ < burst;
}
