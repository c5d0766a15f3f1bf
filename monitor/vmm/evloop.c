/*
 * evloop.c - io_uring completion dispatch (liburing).
 */
#include "evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What the ring may do, fixed before it runs (IORING_REGISTER_RESTRICTIONS):
 * io_uring operations bypass seccomp, so the ring's own allow-list keeps a
 * compromised VMM thread from opening, renaming or unlinking files through
 * it. A device that needs another operation adds it here. */
static const uint8_t allowed_ops[] = {
    IORING_OP_READ,      IORING_OP_READV,    IORING_OP_WRITEV,  IORING_OP_FSYNC,
    IORING_OP_FALLOCATE, IORING_OP_POLL_ADD, IORING_OP_TIMEOUT, IORING_OP_ASYNC_CANCEL,
    IORING_OP_ACCEPT,    IORING_OP_CONNECT,  IORING_OP_RECV,    IORING_OP_SEND,
};

static int restrict_ring(struct io_uring *ring)
{
    struct io_uring_restriction r[sizeof(allowed_ops) + 1];
    unsigned n = 0;
    int rc;

    memset(r, 0, sizeof(r));
    for (unsigned i = 0; i < sizeof(allowed_ops); i++) {
        r[n].opcode = IORING_RESTRICTION_SQE_OP;
        r[n++].sqe_op = allowed_ops[i];
    }
    r[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
    r[n++].sqe_flags = IOSQE_IO_LINK | IOSQE_IO_HARDLINK;
    /* No IORING_RESTRICTION_REGISTER_OP: no io_uring_register call at all. */
    /* Debian's liburing 2.3 declares io_uring_register_restrictions and
     * io_uring_enable_rings but its library does not export them. */
    if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, r, n) < 0 ||
        syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        rc = -errno;
    else
        rc = 0;
    return rc;
}

int evloop_init(struct evloop *loop, unsigned entries)
{
    int rc;

    memset(loop, 0, sizeof(*loop));
    rc = io_uring_queue_init(entries, &loop->ring, IORING_SETUP_R_DISABLED);
    if (rc)
        return rc;
    rc = restrict_ring(&loop->ring);
    if (rc)
        io_uring_queue_exit(&loop->ring);
    return rc;
}

bool evloop_op_allowed(uint8_t opcode)
{
    for (unsigned i = 0; i < sizeof(allowed_ops); i++)
        if (allowed_ops[i] == opcode)
            return true;
    return false;
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
