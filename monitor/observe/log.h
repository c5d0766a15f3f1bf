/*
 * log.h - the monitor's log. One line per event on stderr (or a file),
 * filtered by level. Messages caused by the guest are rate-limited by the
 * caller with log_ratelimit() so a hostile guest cannot flood the host.
 */
#ifndef FLINT_LOG_H
#define FLINT_LOG_H

#include <stdbool.h>
#include <stddef.h>

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

/* Print one line if level is enabled: "flint[<thread>] <LEVEL>: <message>"
 * on stderr, or, once log_set_path gave a destination, Firecracker's
 * "<time> [<id>:<thread>(:<LEVEL>)(:<file>:<line>)] <message>" there. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with the caller's source position (the log_* macros). */
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Open a log or metrics destination: a named pipe read-write and
 * non-blocking (no reader needed, never waits), anything else appended
 * to, created 0600. Returns the fd, or -errno with one line in err naming
 * the path (also for what is neither a regular file nor a pipe). */
int log_sink_open(const char *path, char *err, size_t errlen);

/* Send log lines to `path` (a file, created if missing and appended to, or
 * a named pipe, opened non-blocking: a line the pipe cannot take now is
 * dropped) in Firecracker's format, naming the VM `instance_id`. Replaces
 * an earlier destination. Returns 0 or -errno with one line in err. */
int log_set_path(const char *path, const char *instance_id, char *err, size_t errlen);
/* Firecracker's show_level and show_log_origin (both off by default). */
void log_set_format(bool show_level, bool show_origin);
void log_get_format(bool *show_level, bool *show_origin);

/* PUT /logger's module: print only lines whose origin (log_origin of the
 * calling source file, e.g. "monitor/devices/virtio/net/net.c" or
 * "api/api_routes.c") starts with `prefix`; lines without an origin are
 * dropped too. NULL or "" prints every line again. Call before the vCPU
 * threads start. 0, or -ENAMETOOLONG beyond LOG_MODULE_MAX bytes. */
#define LOG_MODULE_MAX 127
int log_set_module(const char *prefix);

/* A source file's path from the source tree's top, wherever the build ran
 * (__FILE__ may start with "../"); NULL for NULL. */
const char *log_origin(const char *file);
bool log_has_path(void);

/* Format one Firecracker log line (no newline) for a message at wall time
 * (sec, nsec) UTC; returns its length (truncated to len - 1). For tests. */
int log_format_fc(char *buf, size_t len, long long sec, long nsec, const char *id,
                  const char *thread, enum log_level level, bool show_level, const char *file,
                  int line, const char *msg);

/* Lines dropped because the destination could not take them. */
unsigned long long log_dropped(void);

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

#define log_error(...) log_msg_at(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)  log_msg_at(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_msg_at(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg_at(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif /* FLINT_LOG_H */
