/*
 * evloop.c - io_uring completion dispatch (liburing).
 */
#include "evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int evloop_init(struct evloop *loop, unsigned entries)
{
    memset(loop, 0, sizeof(*loop));
    return io_uring_queue_init(entries, &loop->ring, 0);
}

void evloop_fini(struct evloop *loop)
{
    io_uring_queue_exit(&loop->ring);
}

struct io_uring_sqe *evloop_sqe(struct evloop *loop, struct ev_handler *h)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

    if (!sqe) {
        io_uring_submit(&loop->ring);
        sqe = io_uring_get_sqe(&loop->ring);
        if (!sqe)
            return NULL;
    }
    io_uring_sqe_set_data(sqe, h);
    loop->pending++;
    return sqe;
}

int evloop_read(struct evloop *loop, struct ev_handler *h, int fd, void *buf, unsigned len)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, 0);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_poll(struct evloop *loop, struct ev_handler *h, int fd, unsigned poll_mask)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, poll_mask);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_timeout(struct evloop *loop, struct ev_handler *h, uint64_t ns)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    h->ts.tv_sec = (long long)(ns / 1000000000ull);
    h->ts.tv_nsec = (long long)(ns % 1000000000ull);
    io_uring_prep_timeout(sqe, &h->ts, 0, 0);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_accept(struct evloop *loop, struct ev_handler *h, int fd)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_recv(struct evloop *loop, struct ev_handler *h, int fd, void *buf, unsigned len)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_send(struct evloop *loop, struct ev_handler *h, int fd, const void *buf, unsigned len)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_cancel(struct evloop *loop, struct ev_handler *h, struct ev_handler *target)
{
    struct io_uring_sqe *sqe = evloop_sqe(loop, h);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel(sqe, target, 0);
    io_uring_sqe_set_data(sqe, h);
    return 0;
}

int evloop_defer(struct evloop *loop, struct ev_handler *h)
{
    if (h->deferred)
        return 0;
    if (loop->ndeferred == EVLOOP_MAX_DEFERRED)
        return -ENOSPC;
    h->deferred = true;
    loop->deferred[loop->ndeferred++] = h;
    return 0;
}

static void run_deferred(struct evloop *loop)
{
    /* A deferred callback may defer again: run until the list is empty. */
    while (loop->ndeferred) {
        struct ev_handler *h = loop->deferred[--loop->ndeferred];
        h->deferred = false;
        h->fn(h, 0, 0);
    }
}

int evloop_run(struct evloop *loop)
{
    loop->running = true;
    while (loop->running) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait(&loop->ring, 1);

        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return rc;
        while (loop->running && io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
            struct ev_handler *h = io_uring_cqe_get_data(cqe);
            int res = cqe->res;
            uint32_t flags = cqe->flags;

            /* Release the slot before the callback, which may submit more. */
            io_uring_cqe_seen(&loop->ring, cqe);
            loop->pending--;
            if (h && h->fn)
                h->fn(h, res, flags);
        }
        run_deferred(loop);
    }
    return 0;
}

void evloop_stop(struct evloop *loop)
{
    loop->running = false;
}

int evloop_run_once(struct evloop *loop, bool wait)
{
    struct io_uring_cqe *cqe;
    int n = 0, rc;

    rc = wait ? io_uring_submit_and_wait(&loop->ring, 1) : io_uring_submit(&loop->ring);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
        struct ev_handler *h = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        uint32_t flags = cqe->flags;

        io_uring_cqe_seen(&loop->ring, cqe);
        loop->pending--;
        n++;
        if (h && h->fn)
            h->fn(h, res, flags);
    }
    run_deferred(loop);
    return n;
}
