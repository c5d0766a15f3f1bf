/*
 * log.h - the monitor's log. One line per event on stderr (or a file),
 * filtered by level. Messages caused by the guest are rate-limited by the
 * caller with log_ratelimit() so a hostile guest cannot flood the host.
 */
#ifndef FLINT_LOG_H
#define FLINT_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_OFF = 0,
    LOG_ERROR,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
    LOG_TRACE,
};

/* Set the lowest level that is printed (default LOG_WARN). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse a Firecracker level name (Error, Warning, Info, Debug, Trace, Off;
 * case-insensitive). Returns 0, or -EINVAL for an unknown name. */
int log_parse_level(const char *name, enum log_level *out);

/* Name this thread in log lines ("vmm", "vcpu0", ...). */
void log_set_thread_name(const char *name);

/* Name the VM in every log line ("flint[<id>:<thread>]"), as flint --id
 * asks; NULL: no name (the default). Call before starting threads. */
void log_set_vm_id(const char *id);

/* Print one line "flint[<thread>] <LEVEL>: <message>" if level is enabled. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last error-level message of this thread (printed or not, without
 * the "flint[...] Error: " prefix), so a failed InstanceStart can answer
 * with the line it logged. "" after log_clear_last_error. */
const char *log_last_error(void);
void log_clear_last_error(void);

/* True when a message of this class may be printed now: at most `burst`
 * messages per second per counter. `state` is caller-owned, zero-initialised. */
struct log_ratelimit {
    long long window;
    unsigned count;
};
bool log_ratelimit(struct log_ratelimit *state, unsigned burst);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* FLINT_LOG_H */
