/*
 * api.h - the Firecracker-compatible control API: HTTP/1.1 over a Unix
 * stream socket, JSON bodies (docs/API.md lists every endpoint).
 *
 * Two halves. The routes (api_routes.c) turn one request into one answer:
 * pre-boot calls fill a struct vm_config through config.h's checks,
 * InstanceStart and the post-boot calls act through struct api_vm_ops;
 * every refused request answers 400 {"fault_message": "..."} and changes
 * nothing. The server (api.c) runs on the VMM thread's event loop: accept,
 * recv and send are io_uring submissions, nothing blocks, every connection
 * has bounded buffers and a deadline.
 */
#ifndef FLINT_API_H
#define FLINT_API_H

#include "api_http.h"
#include "config.h"
#include "evloop.h"
#include "snapshot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_DEFAULT_SOCKET      "/run/firecracker.socket"
#define API_DEFAULT_INSTANCE_ID "anonymous-instance"
#define API_APP_NAME            "flint"
#define API_INSTANCE_ID_MAX     64

enum api_vm_state {
    API_VM_NOT_STARTED,
    API_VM_RUNNING,
    API_VM_PAUSED,
};

/* What the API asks of the VM. */
struct api_vm_ops {
    /* InstanceStart: build the VM from the configuration and start it.
     * Returns 0; or -EINVAL with one line in err when the configuration is
     * refused before anything was built (the API keeps serving, nothing
     * changed); or a process exit code with one line in err when building
     * failed: the answer goes out, then the process ends with it. */
    int (*start)(void *opaque, char *err, size_t errlen);
    /* SendCtrlAltDel: 0 or -ENOSPC (the guest has not read the last keys). */
    int (*ctrl_alt_del)(void *opaque);
    /* PATCH /vm: 0 or -errno. */
    int (*pause)(void *opaque);
    void (*resume)(void *opaque);
    /* FlushMetrics: write a metrics line now. 0, -ENODEV (no destination),
     * -EAGAIN (the destination could not take it: dropped), -ENOMEM. */
    int (*flush_metrics)(void *opaque);
    /* PATCH /drives, PATCH /network-interfaces: give the running device of
     * drive / interface `index` (its place in the configuration) new rate
     * limiters; the API then stores them in the configuration. 0 or
     * -errno. NULL: only the configuration changes. */
    int (*set_drive_rate_limiter)(void *opaque, unsigned index,
                                  const struct rate_limiter_config *rl);
    int (*set_net_rate_limiters)(void *opaque, unsigned index, const struct rate_limiter_config *rx,
                                 const struct rate_limiter_config *tx);
    /* PATCH /drives with path_on_host: back running drive `index` (of
     * cfg->drives) with the image at `path`, opened with the drive's
     * read-only mode, and tell the guest its capacity. 0, or -errno with
     * one line in err and the drive as it was. */
    int (*swap_drive)(void *opaque, unsigned index, const char *path, char *err, size_t errlen);
    /* PUT /snapshot/create on the paused VM: 0 or -errno with one line in
     * err (snapshot_create). */
    int (*create_snapshot)(void *opaque, enum snapshot_type type, const char *state_path,
                           const char *mem_path, char *err, size_t errlen);
    /* PUT /snapshot/load in a fresh process: build the VM from the
     * snapshot, then start its vCPUs or leave it paused (req->resume_vm).
     * 0, or a process exit code with one line in err: the answer goes
     * out, then the process ends with it. */
    int (*load_snapshot)(void *opaque, const struct snapshot_load_req *req, char *err,
                         size_t errlen);
};

/* What the API served, for the metrics (all since process start). */
struct api_counters {
    uint64_t get, put, patch, other; /* requests by method */
    uint64_t ok, failed;             /* answered 2xx, 400 */
    uint64_t latency_us;             /* total time spent answering */
    uint64_t latency_max_us;         /* the longest answer since the last reset */
};

struct metrics;
struct json_t;

/* The API's view of the process: the configuration it fills and the VM's
 * state. */
struct api_ctl {
    struct vm_config *cfg;
    const char *instance_id; /* GET / "id" */
    const char *vmm_version; /* GET / "vmm_version", GET /version */
    enum api_vm_state state;
    const struct api_vm_ops *ops;
    void *opaque;
    int fatal_status;        /* set by a failed InstanceStart: end the process with it */
    bool configured;         /* a configuration call succeeded: no snapshot load now */
    struct metrics *metrics; /* PUT /metrics opens it; NULL: refused */
    struct api_counters counters;
};

struct api_response {
    int status; /* 200, 204, 400 or 413 */
    char *body; /* malloc'ed JSON; NULL for 204 */
};

/* True for a --id value: 1-64 letters, digits or '-' (Firecracker's rule). */
bool api_valid_instance_id(const char *id);

/* Answer one request. resp->body is the caller's to free. */
void api_handle(struct api_ctl *ctl, enum api_method method, const char *path, const char *body,
                size_t body_len, struct api_response *resp);

/* Apply a --config-file: Firecracker's bodies under kebab-case keys
 * ("boot-source" required; "drives" and "network-interfaces" arrays;
 * "machine-config", "vsock"; the rest null). GET /vm/config's answer is
 * such a file. Returns 0 or -EINVAL / -errno with one line in err. */
int api_load_config(struct api_ctl *ctl, const char *json, size_t len, char *err, size_t errlen);
int api_load_config_file(struct api_ctl *ctl, const char *path, char *err, size_t errlen);

/* Add the "api_server" block to a metrics line: counters to `counters`,
 * the longest answer since the last call to `gauges` (then reset).
 * Returns 0 or -ENOMEM. */
int api_add_metrics(struct api_ctl *ctl, struct json_t *counters, struct json_t *gauges);

/* ---- devices flint does not offer, by design (api_absent.c) ---- */

/* Balloon, entropy, pmem and memory hotplug. For a path under one of their
 * endpoints: -EINVAL with the one message every method and phase gets
 * (naming the device and why); otherwise 0. */
int api_absent_device_path(const char *path, char *err, size_t errlen);

/* A config-file section `key`: 1 when it is not one of those devices; 0
 * when it is and `v` asks for nothing (absent, null, or for "pmem" an
 * empty array); -EINVAL with the message when it asks for the device. */
int api_absent_device_section(const char *key, const struct json_t *v, char *err, size_t errlen);

/* Add their GET /vm/config keys, as Firecracker reports them unset
 * ("pmem": [], the others null). 0 or -ENOMEM. */
int api_absent_device_json(struct json_t *root);

/* ---- snapshots (api_snapshot.c) ---- */

/* Check a PUT /snapshot/create body; the strings point into body. 0 or
 * -EINVAL with one line in err. */
int api_parse_snapshot_create(struct json_t *body, enum snapshot_type *type,
                              const char **state_path, const char **mem_path, char *err,
                              size_t errlen);
/* Check a PUT /snapshot/load body into req (strings point into body). */
int api_parse_snapshot_load(struct json_t *body, struct snapshot_load_req *req, char *err,
                            size_t errlen);
/* The routes: check the body and the phase (create: paused; load: a fresh
 * process), then act through ctl->ops. 0 or -EINVAL with one line in err;
 * a failed load also sets ctl->fatal_status. */
int api_snapshot_create(struct api_ctl *ctl, struct json_t *body, char *err, size_t errlen);
int api_snapshot_load(struct api_ctl *ctl, struct json_t *body, char *err, size_t errlen);

/* GET /vm/config: the configuration as JSON (malloc'ed, NULL if out of
 * memory). */
char *api_vm_config_json(const struct vm_config *cfg);

/* ---- MMDS (api_mmds.c) ---- */

/* True for /mmds and /mmds/config. */
bool api_mmds_path(const char *path);

/* Answer a request to one of them (api_mmds_path): 0 with resp filled
 * (200 with the document, or 204), -EINVAL with one line in err (400), or
 * -EFBIG (413: the document would exceed --mmds-size-limit; nothing
 * changed). */
int api_mmds_dispatch(struct api_ctl *ctl, enum api_method method, const char *method_name,
                      const char *path, const char *body, size_t len, struct api_response *resp,
                      char *err, size_t errlen);

/* PUT /mmds/config's body (or a config file's "mmds-config") applied to
 * cfg->mmds, naming interfaces of cfg. 0 or -EINVAL with one line in err. */
int api_mmds_configure(struct vm_config *cfg, struct json_t *body, char *err, size_t errlen);

/* --metadata FILE: its JSON becomes the MMDS document. 0 or -EINVAL /
 * -errno with one line in err. */
struct mmds;
int api_mmds_load_file(struct mmds *m, const char *path, char *err, size_t errlen);

/* ---- the server (api.c) ---- */

#define API_MAX_CONNS 16
#define API_RECV_BUF  4096
/* A request must arrive whole, and its answer be taken, within this. */
#define API_REQUEST_TIMEOUT_NS (5ull * 1000 * 1000 * 1000)
/* A connection with nothing in flight is closed after this. */
#define API_IDLE_TIMEOUT_NS (60ull * 1000 * 1000 * 1000)
#define API_TICK_NS         (250ull * 1000 * 1000)
/* Connection slots: API_MAX_CONNS live ones plus those being closed. */
#define API_CONN_SLOTS (2 * API_MAX_CONNS)

struct api_server;

struct api_conn {
    struct api_server *srv;
    int fd;
    struct ev_handler recv_ev, send_ev, cancel_ev;
    unsigned inflight; /* submissions whose completion has not arrived */
    bool recv_pending, send_pending;
    bool closing;      /* no new submissions; freed when inflight is 0 */
    bool peer_closed;  /* recv returned 0 */
    bool close_after;  /* close once the answer is out */
    bool fatal;        /* answered a failed InstanceStart: srv->on_fatal at close */
    bool cancel_retry; /* a cancellation could not be queued: the tick retries */
    struct api_http_reader reader;
    char in[API_RECV_BUF];
    size_t in_start, in_end;
    char *out;
    size_t out_len, out_sent;
    uint64_t busy_since; /* ns: a request or answer in flight since; 0 idle */
    uint64_t idle_since; /* ns: the last answer went out (or connected) */
    uint64_t requests;
};

struct api_server {
    struct evloop *loop;
    struct api_ctl *ctl;
    int listen_fd;
    char *path; /* unlinked by api_server_close */
    struct ev_handler accept_ev, tick_ev;
    bool accept_pending, tick_pending;
    struct api_conn *conns[API_CONN_SLOTS];
    uint64_t request_timeout_ns, idle_timeout_ns; /* tests shorten them */
    size_t max_body; /* API_HTTP_MAX_BODY; --http-api-max-payload-size */
    /* Called once a failed InstanceStart's answer is out (or could not be
     * sent): stop the loop. */
    void (*on_fatal)(void *opaque);
    void *fatal_opaque;
    uint64_t accepted, refused, timed_out; /* counters for tests and logs */
};

/* Create the socket at `path` (which must not exist), listen and start
 * accepting on `loop`. Returns 0 or -errno with one line in err. */
int api_server_init(struct api_server *srv, struct evloop *loop, const char *path,
                    struct api_ctl *ctl, char *err, size_t errlen);

/* Close every connection and the socket, and remove its path. Call after
 * evloop_fini (the ring may point into connection buffers). */
void api_server_close(struct api_server *srv);

#endif /* FLINT_API_H */
