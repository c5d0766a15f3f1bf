/*
 * log.c - level-filtered, line-atomic logging to stderr.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level cur_level = LOG_WARN;
static __thread char thread_name[16] = "main";
static __thread char last_error[512];
static char vm_id[65]; /* "": no id; config_valid_vm_id() allows at most 64 */

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

void log_msg(enum log_level level, const char *fmt, ...)
{
    bool print = level != LOG_OFF && level <= cur_level;
    char line[1024];
    int n, start;
    va_list ap;

    if (!print && level != LOG_ERROR)
        return;
    n = start = snprintf(line, sizeof(line), "flint[%s%s%s] %s: ", vm_id, vm_id[0] ? ":" : "",
                         thread_name, level_names[level]);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    if (level == LOG_ERROR)
        snprintf(last_error, sizeof(last_error), "%.*s", n - start, line + start);
    if (!print)
        return;
    line[n++] = '\n';
    /* One write() so lines from several threads never interleave. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
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
