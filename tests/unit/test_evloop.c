/* Unit tests: the event loop's io_uring is restricted to flint's own
 * operations (io_uring bypasses seccomp, so this is its allow-list). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "evloop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int last_res;
static bool done;

static void on_done(struct ev_handler *h, int res, uint32_t flags)
{
    (void)h;
    (void)flags;
    last_res = res;
    done = true;
}

static int run_one(struct evloop *loop)
{
    done = false;
    while (!done)
        cr_assert_geq(evloop_run_once(loop, true), 0);
    return last_res;
}

Test(evloop, allowed_operations_run)
{
    struct evloop loop;
    struct ev_handler h = {.fn = on_done};
    int p[2];
    char c = 'x', got = 0;

    cr_assert_eq(evloop_init(&loop, 8), 0);
    cr_assert_eq(evloop_timeout(&loop, &h, 1000), 0);
    cr_assert_eq(run_one(&loop), -ETIME);
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], &c, 1), 1);
    cr_assert_eq(evloop_read(&loop, &h, p[0], &got, 1), 0);
    cr_assert_eq(run_one(&loop), 1);
    cr_assert_eq(got, 'x');
    close(p[0]);
    close(p[1]);
    evloop_fini(&loop);
}

Test(evloop, other_operations_are_refused)
{
    static const uint8_t refused[] = {IORING_OP_OPENAT, IORING_OP_UNLINKAT, IORING_OP_RENAMEAT,
                                      IORING_OP_NOP,    IORING_OP_CLOSE,    IORING_OP_SOCKET};
    struct evloop loop;
    struct ev_handler h = {.fn = on_done};
    char path[] = "/tmp/flint-evloop-XXXXXX";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(evloop_init(&loop, 8), 0);
    for (unsigned i = 0; i < sizeof(refused); i++) {
        cr_assert_not(evloop_op_allowed(refused[i]));
        struct io_uring_sqe *sqe = evloop_sqe(&loop, &h);
        cr_assert_not_null(sqe);
        io_uring_prep_nop(sqe);
        sqe->opcode = refused[i];
        if (refused[i] == IORING_OP_UNLINKAT) {
            sqe->fd = AT_FDCWD;
            sqe->addr = (uintptr_t)path;
        }
        io_uring_sqe_set_data(sqe, &h);
        cr_assert_eq(run_one(&loop), -EACCES, "opcode %u ran", refused[i]);
    }
    cr_assert_eq(access(path, F_OK), 0, "the ring unlinked a file");
    unlink(path);
    /* No io_uring_register either. */
    cr_assert_lt(syscall(__NR_io_uring_register, loop.ring.ring_fd, IORING_REGISTER_PROBE, NULL, 0),
                 0);
    evloop_fini(&loop);
}
