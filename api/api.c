/*
 * api.c - the control API's server on the VMM thread's io_uring loop.
 *
 * One accept, and per connection at most one recv and one send, in
 * flight at a time. A connection answers its requests one at a time, in
 * order, and reads no more while an answer is going out, so its memory is
 * bounded by its receive buffer, one body and one answer. Nothing waits on
 * a client: a slow or silent one holds only its own connection, which a
 * tick closes when a request (or its answer) takes longer than
 * request_timeout_ns or nothing happens for idle_timeout_ns. When all
 * API_MAX_CONNS connections are taken, a new one evicts the longest idle
 * one, or is refused if none is idle.
 */
#define _GNU_SOURCE
#include "api.h"
#include "log.h"
#include "util.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void process(struct api_conn *c);
static void conn_close(struct api_conn *c);

/* ---- connections ---- */

static void conn_free_if_done(struct api_conn *c)
{
    struct api_server *srv = c->srv;

    if (!c->closing || c->inflight)
        return;
    close(c->fd);
    api_http_reader_free(&c->reader);
    free(c->out);
    for (unsigned i = 0; i < API_CONN_SLOTS; i++)
        if (srv->conns[i] == c)
            srv->conns[i] = NULL;
    free(c);
}

static void on_cancelled(struct ev_handler *h, int res, uint32_t flags)
{
    struct api_conn *c = container_of(h, struct api_conn, cancel_ev);

    (void)res;
    (void)flags;
    c->inflight--;
    conn_free_if_done(c);
}

static void cancel(struct api_conn *c, struct ev_handler *target)
{
    if (evloop_cancel(c->srv->loop, &c->cancel_ev, target) == 0)
        c->inflight++;
    else
        c->cancel_retry = true; /* the tick tries again */
}

static void conn_close(struct api_conn *c)
{
    struct api_server *srv = c->srv;

    if (c->closing)
        return;
    c->closing = true;
    if (c->recv_pending)
        cancel(c, &c->recv_ev);
    if (c->send_pending)
        cancel(c, &c->send_ev);
    if (c->fatal && srv->on_fatal)
        srv->on_fatal(srv->fatal_opaque);
    conn_free_if_done(c);
}

static void arm_recv(struct api_conn *c)
{
    if (c->closing || c->recv_pending || c->peer_closed)
        return;
    if (evloop_recv(c->srv->loop, &c->recv_ev, c->fd, c->in + c->in_end,
                    (unsigned)(sizeof(c->in) - c->in_end))) {
        conn_close(c);
        return;
    }
    c->recv_pending = true;
    c->inflight++;
}

static void arm_send(struct api_conn *c)
{
    if (evloop_send(c->srv->loop, &c->send_ev, c->fd, c->out + c->out_sent,
                    (unsigned)(c->out_len - c->out_sent))) {
        conn_close(c);
        return;
    }
    c->send_pending = true;
    c->inflight++;
}

/* Send `buf` (taken over) and read nothing more until it is out. */
static void send_buf(struct api_conn *c, char *buf, size_t len)
{
    if (!buf) {
        conn_close(c);
        return;
    }
    free(c->out);
    c->out = buf;
    c->out_len = len;
    c->out_sent = 0;
    arm_send(c);
}

static void answer(struct api_conn *c, int status, const char *body, bool close)
{
    size_t len;
    char *buf = api_http_response(status, body, close, &len);

    c->close_after = close;
    send_buf(c, buf, len);
}

static void handle_request(struct api_conn *c)
{
    struct api_server *srv = c->srv;
    const struct api_http_request *req = &c->reader.req;
    struct api_response resp;
    bool close;

    api_handle(srv->ctl, req->method, req->path, req->body, req->body_len, &resp);
    log_debug("API: %s %s: %d", req->method_name, req->path, resp.status);
    c->requests++;
    if (srv->ctl->fatal_status)
        c->fatal = true;
    close = !req->keep_alive || c->fatal;
    if (resp.status == 400 && !resp.body)
        answer(c, 400, "{\"fault_message\":\"out of memory\"}", close);
    else
        answer(c, resp.status, resp.body, close);
    free(resp.body);
}

static void refuse(struct api_conn *c, const char *msg)
{
    json_t *j = json_pack("{s:s}", "fault_message", msg);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    answer(c, 400, body ? body : "{\"fault_message\":\"bad request\"}", true);
    free(body);
}

/* Work through what was received: one request at a time. */
static void process(struct api_conn *c)
{
    while (!c->send_pending && !c->closing) {
        enum api_http_result res;
        size_t used;

        if (c->in_start == c->in_end) {
            c->in_start = c->in_end = 0;
            if (c->peer_closed) {
                conn_close(c);
            } else if (api_http_wants_continue(&c->reader)) {
                /* RFC 9110 §10.1.1: the client waits for this before the body. */
                api_http_continue_sent(&c->reader);
                c->close_after = false;
                send_buf(c, strdup(API_HTTP_CONTINUE), strlen(API_HTTP_CONTINUE));
            } else {
                arm_recv(c);
            }
            return;
        }
        res = api_http_feed(&c->reader, c->in + c->in_start, c->in_end - c->in_start, &used);
        switch (res) {
        case API_HTTP_MORE:
            c->in_start = c->in_end;
            break;
        case API_HTTP_REQUEST:
            c->in_start += used;
            handle_request(c);
            return;
        case API_HTTP_ERROR:
            log_info("API: refusing a request: %s", c->reader.err_msg);
            refuse(c, c->reader.err_msg);
            return;
        }
    }
}

static void on_recv(struct ev_handler *h, int res, uint32_t flags)
{
    struct api_conn *c = container_of(h, struct api_conn, recv_ev);

    (void)flags;
    c->recv_pending = false;
    c->inflight--;
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (res < 0) {
        conn_close(c);
        return;
    }
    if (res == 0) {
        /* Half-closed: answer what came, then close. */
        c->peer_closed = true;
    } else {
        if (!c->busy_since)
            c->busy_since = now_ns();
        c->in_end += (size_t)res;
    }
    process(c);
}

static void on_send(struct ev_handler *h, int res, uint32_t flags)
{
    struct api_conn *c = container_of(h, struct api_conn, send_ev);

    (void)flags;
    c->send_pending = false;
    c->inflight--;
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (res <= 0) {
        conn_close(c);
        return;
    }
    c->out_sent += (size_t)res;
    if (c->out_sent < c->out_len) {
        arm_send(c);
        return;
    }
    free(c->out);
    c->out = NULL;
    if (c->close_after || c->fatal) {
        conn_close(c);
        return;
    }
    /* Answered: the clock starts again for the next request, if any. */
    if (c->in_start == c->in_end && !api_http_in_request(&c->reader)) {
        c->busy_since = 0;
        c->idle_since = now_ns();
    } else {
        c->busy_since = now_ns();
    }
    process(c);
}

/* ---- accepting ---- */

static unsigned live_conns(struct api_server *srv, struct api_conn **oldest_idle)
{
    unsigned n = 0;

    *oldest_idle = NULL;
    for (unsigned i = 0; i < API_CONN_SLOTS; i++) {
        struct api_conn *c = srv->conns[i];
        if (!c || c->closing)
            continue;
        n++;
        if (!c->busy_since && !c->send_pending &&
            (!*oldest_idle || c->idle_since < (*oldest_idle)->idle_since))
            *oldest_idle = c;
    }
    return n;
}

static int free_slot(struct api_server *srv)
{
    for (unsigned i = 0; i < API_CONN_SLOTS; i++)
        if (!srv->conns[i])
            return (int)i;
    return -1;
}

static void add_conn(struct api_server *srv, int fd)
{
    struct api_conn *c, *idle;
    int slot;

    if (live_conns(srv, &idle) >= API_MAX_CONNS) {
        if (idle) {
            log_info("API: %d connections: closing the longest idle one", API_MAX_CONNS);
            conn_close(idle);
        }
    }
    slot = free_slot(srv);
    if (live_conns(srv, &idle) >= API_MAX_CONNS || slot < 0 || !(c = calloc(1, sizeof(*c)))) {
        srv->refused++;
        log_warn("API: too many busy connections; refusing one");
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->recv_ev.fn = on_recv;
    c->send_ev.fn = on_send;
    c->cancel_ev.fn = on_cancelled;
    c->idle_since = now_ns();
    api_http_reader_init(&c->reader, srv->max_body);
    srv->conns[slot] = c;
    srv->accepted++;
    arm_recv(c);
}

static void arm_accept(struct api_server *srv)
{
    if (srv->accept_pending || srv->listen_fd < 0)
        return;
    if (evloop_accept(srv->loop, &srv->accept_ev, srv->listen_fd) == 0)
        srv->accept_pending = true;
}

static void on_accept(struct ev_handler *h, int res, uint32_t flags)
{
    struct api_server *srv = container_of(h, struct api_server, accept_ev);
    static struct log_ratelimit rl;

    (void)flags;
    srv->accept_pending = false;
    if (res >= 0) {
        add_conn(srv, res);
        arm_accept(srv);
    } else if (log_ratelimit(&rl, 1)) {
        /* EMFILE and the like: try again at the next tick, not at once. */
        log_warn("API: accept: %s", strerror(-res));
    }
}

/* ---- the tick: deadlines ---- */

static void on_tick(struct ev_handler *h, int res, uint32_t flags)
{
    struct api_server *srv = container_of(h, struct api_server, tick_ev);
    uint64_t now = now_ns();

    (void)res;
    (void)flags;
    for (unsigned i = 0; i < API_CONN_SLOTS; i++) {
        struct api_conn *c = srv->conns[i];
        if (!c)
            continue;
        if (c->closing) {
            if (c->cancel_retry) {
                c->cancel_retry = false;
                if (c->recv_pending)
                    cancel(c, &c->recv_ev);
                if (c->send_pending)
                    cancel(c, &c->send_ev);
            }
            continue;
        }
        if (c->busy_since && now - c->busy_since > srv->request_timeout_ns) {
            log_info("API: closing a connection whose request took over %llu ms",
                     (unsigned long long)(srv->request_timeout_ns / 1000000));
            srv->timed_out++;
            conn_close(c);
        } else if (!c->busy_since && now - c->idle_since > srv->idle_timeout_ns) {
            conn_close(c);
        }
    }
    arm_accept(srv);
    if (evloop_timeout(srv->loop, &srv->tick_ev, API_TICK_NS) == 0)
        srv->tick_pending = true;
    else
        log_warn("API: cannot re-arm the connection timer");
}

/* ---- setup and teardown ---- */

static int init_fail(char *err, size_t errlen, int rc, const char *fmt, const char *path)
{
    snprintf(err, errlen, fmt, path, strerror(-rc));
    return rc;
}

int api_server_init(struct api_server *srv, struct evloop *loop, const char *path,
                    struct api_ctl *ctl, char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;
    int fd;

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->ctl = ctl;
    srv->listen_fd = -1;
    srv->request_timeout_ns = API_REQUEST_TIMEOUT_NS;
    srv->idle_timeout_ns = API_IDLE_TIMEOUT_NS;
    srv->max_body = API_HTTP_MAX_BODY;
    srv->accept_ev.fn = on_accept;
    srv->tick_ev.fn = on_tick;
    /* jansson seeds its hash function from /dev/urandom at the first
     * object: now, before any seccomp filter. */
    json_object_seed(0);
    if (strlen(path) >= sizeof(addr.sun_path))
        return init_fail(err, errlen, -ENAMETOOLONG, "API socket %s: %s (at most 107 bytes)", path);
    if (lstat(path, &st) == 0) {
        snprintf(err, errlen,
                 "API socket %s already exists; remove it or choose another --api-sock", path);
        return -EEXIST;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return init_fail(err, errlen, -errno, "API socket %s: socket: %s", path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int rc = -errno;
        close(fd);
        return init_fail(err, errlen, rc, "API socket %s: bind: %s", path);
    }
    srv->listen_fd = fd;
    srv->path = strdup(path);
    if (!srv->path || listen(fd, 64) < 0) {
        int rc = srv->path ? -errno : -ENOMEM;
        api_server_close(srv);
        return init_fail(err, errlen, rc, "API socket %s: listen: %s", path);
    }
    arm_accept(srv);
    if (!srv->accept_pending || evloop_timeout(loop, &srv->tick_ev, API_TICK_NS)) {
        api_server_close(srv);
        return init_fail(err, errlen, -EBUSY, "API socket %s: event loop: %s", path);
    }
    srv->tick_pending = true;
    return 0;
}

void api_server_close(struct api_server *srv)
{
    for (unsigned i = 0; i < API_CONN_SLOTS; i++) {
        struct api_conn *c = srv->conns[i];
        if (!c)
            continue;
        close(c->fd);
        api_http_reader_free(&c->reader);
        free(c->out);
        free(c);
        srv->conns[i] = NULL;
    }
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    srv->listen_fd = -1;
    if (srv->path)
        unlink(srv->path);
    free(srv->path);
    srv->path = NULL;
}
