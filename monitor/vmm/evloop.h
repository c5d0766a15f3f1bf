/*
 * evloop.h - the VMM thread's io_uring event loop.
 *
 * Everything that is not a vCPU runs here: exit requests, the halt watchdog
 * and, in later devices, queue notifications, disk and socket I/O and the
 * API socket. A user embeds a struct ev_handler in its own state and gets
 * the completion result back in the callback (container_of to find itself).
 */
#ifndef FLINT_EVLOOP_H
#define FLINT_EVLOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct ev_handler;
typedef void (*ev_fn)(struct ev_handler *h, int res, uint32_t cqe_flags);

struct ev_handler {
    ev_fn fn;
    struct __kernel_timespec ts; /* storage for timeouts */
    bool deferred;               /* queued with evloop_defer */
};

#define EVLOOP_MAX_DEFERRED 64

struct evloop {
    struct io_uring ring;
    bool running;
    unsigned pending; /* submissions whose completion has not been dispatched */
    unsigned ndeferred;
    struct ev_handler *deferred[EVLOOP_MAX_DEFERRED];
};

/* Create a ring with `entries` submission slots, restricted to the
 * operations flint uses (evloop_op_allowed) and to no further
 * io_uring_register calls. Returns 0 or -errno. */
int evloop_init(struct evloop *loop, unsigned entries);
void evloop_fini(struct evloop *loop);

/* Whether the ring accepts submissions with this IORING_OP_*. */
bool evloop_op_allowed(uint8_t opcode);

/* A submission queue entry whose completion calls h->fn, or NULL if the
 * queue is full even after submitting what was queued. */
struct io_uring_sqe *evloop_sqe(struct evloop *loop, struct ev_handler *h);

/* Convenience submissions. Each returns 0 or -errno. */
int evloop_read(struct evloop *loop, struct ev_handler *h, int fd, void *buf, unsigned len);
int evloop_poll(struct evloop *loop, struct ev_handler *h, int fd, unsigned poll_mask);
int evloop_timeout(struct evloop *loop, struct ev_handler *h, uint64_t ns);
/* Sockets (the API server): accept4 with SOCK_CLOEXEC, recv, send with
 * MSG_NOSIGNAL. On a socket without data io_uring arms a poll rather than
 * block a worker thread. */
int evloop_accept(struct evloop *loop, struct ev_handler *h, int fd);
int evloop_recv(struct evloop *loop, struct ev_handler *h, int fd, void *buf, unsigned len);
int evloop_send(struct evloop *loop, struct ev_handler *h, int fd, const void *buf, unsigned len);
/* Cancel the submission whose completion calls `target`; its completion
 * then arrives with -ECANCELED (or its result, if it was done), and this
 * request's own result (0, -ENOENT, -EALREADY) goes to h. */
int evloop_cancel(struct evloop *loop, struct ev_handler *h, struct ev_handler *target);

/* Call h->fn(h, 0, 0) once after the current batch of completions has been
 * dispatched (a "bottom half"): e.g. one interrupt for many completed
 * requests. Queuing an already queued handler does nothing. Returns 0 or
 * -ENOSPC (then call it directly). */
int evloop_defer(struct evloop *loop, struct ev_handler *h);

/* Run until evloop_stop(); returns 0 or -errno on a ring failure. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);

/* Submit what is queued and dispatch the completions that are ready,
 * waiting for at least one if `wait`. Returns how many were dispatched or
 * -errno. For tests and fuzzing, which drive the loop step by step. */
int evloop_run_once(struct evloop *loop, bool wait);

#endif /* FLINT_EVLOOP_H */
