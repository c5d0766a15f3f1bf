/*
 * serial_input.c - stdin to the 16550's receiver, with flow control.
 */
#define _GNU_SOURCE
#include "serial_input.h"
#include "log.h"
#include "term_raw.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* /dev/null is character device 1:3 (Documentation/admin-guide/devices.txt). */
static bool is_dev_null(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 && minor(st->st_rdev) == 3;
}

/* The UART has room again: on the vCPU thread that made it. */
static void on_rx_ready(void *opaque)
{
    struct serial_input *in = opaque;
    uint64_t one = 1;

    if (write(in->ready_fd, &one, sizeof(one)) < 0)
        log_warn("console input: cannot wake the VMM thread: %s", strerror(errno));
}

int serial_input_init(struct serial_input *in, struct serial *s, int fd)
{
    struct stat st;
    int rc;

    memset(in, 0, sizeof(*in));
    in->serial = s;
    in->fd = in->ready_fd = -1;
    if (fd < 0 || fstat(fd, &st) < 0 || is_dev_null(&st))
        return 0; /* closed or /dev/null: no input, nothing to do */
    /* Only stdin's terminal is put in raw mode (term_raw.h). */
    rc = fd == STDIN_FILENO ? term_raw_enter() : -ENOTTY;
    if (rc == -EPERM) {
        log_info("console input: not the terminal's foreground job; stdin left alone");
        return 0;
    }
    if (rc && rc != -ENOTTY)
        return rc;
    in->raw = rc == 0;
    in->ready_fd = eventfd(0, EFD_CLOEXEC);
    if (in->ready_fd < 0)
        return -errno;
    in->fd = fd;
    serial_set_rx_ready(s, on_rx_ready, in);
    return 0;
}

bool serial_input_tty(const struct serial_input *in)
{
    return in->raw;
}

static void input_stop(struct serial_input *in, const char *why)
{
    in->state = SERIAL_INPUT_OFF;
    log_info("console input: %s after %llu bytes", why, (unsigned long long)in->bytes);
}

static void input_fail(struct serial_input *in, const char *what, int err)
{
    in->state = SERIAL_INPUT_OFF;
    log_warn("console input: %s: %s; the guest gets no more input", what, strerror(err));
}

static void input_poll(struct serial_input *in)
{
    int rc = evloop_poll(in->loop, &in->poll_ev, in->fd, POLLIN);

    if (rc)
        input_fail(in, "cannot wait for stdin", -rc);
    else
        in->state = SERIAL_INPUT_POLLING;
}

/* Read at most what the receiver takes now; offset -1: the file's own
 * position, so a regular file is read from where it stands, once. */
static void input_read(struct serial_input *in)
{
    size_t room = serial_rx_space(in->serial);
    struct io_uring_sqe *sqe;

    if (!room) {
        in->state = SERIAL_INPUT_FULL;
        return;
    }
    sqe = evloop_sqe(in->loop, &in->read_ev);
    if (!sqe) {
        input_fail(in, "cannot read stdin", EBUSY);
        return;
    }
    io_uring_prep_read(sqe, in->fd, in->buf,
                       (unsigned)(room < sizeof(in->buf) ? room : sizeof(in->buf)), (uint64_t)-1);
    io_uring_sqe_set_data(sqe, &in->read_ev);
    in->state = SERIAL_INPUT_READING;
}

/* Give the UART what it takes; the rest waits for rx_ready. */
static void input_deliver(struct serial_input *in)
{
    size_t n = serial_push_input(in->serial, in->buf + in->off, in->len - in->off);

    in->off += (unsigned)n;
    in->bytes += n;
    if (in->off < in->len)
        in->state = SERIAL_INPUT_FULL;
    else
        input_poll(in);
}

static void on_poll(struct ev_handler *h, int res, uint32_t flags)
{
    struct serial_input *in = container_of(h, struct serial_input, poll_ev);

    (void)flags;
    if (res < 0) {
        input_fail(in, "waiting for stdin", -res);
        return;
    }
    /* POLLHUP or POLLERR too: the read says what it is (end of input). */
    input_read(in);
}

static void on_read(struct ev_handler *h, int res, uint32_t flags)
{
    struct serial_input *in = container_of(h, struct serial_input, read_ev);

    (void)flags;
    if (res == -EAGAIN || res == -EINTR) {
        input_poll(in); /* a non-blocking stdin, or another reader was first */
        return;
    }
    if (res < 0) {
        input_fail(in, "reading stdin", -res);
        return;
    }
    if (res == 0) {
        input_stop(in, "end of input");
        return;
    }
    in->off = 0;
    in->len = (unsigned)res;
    input_deliver(in);
}

static void on_ready(struct ev_handler *h, int res, uint32_t flags)
{
    struct serial_input *in = container_of(h, struct serial_input, ready_ev);

    (void)flags;
    if (res < 0 && res != -EINTR) {
        input_fail(in, "the UART's wake-up", -res);
        return;
    }
    if (evloop_read(in->loop, &in->ready_ev, in->ready_fd, &in->ready_buf, sizeof(in->ready_buf))) {
        input_fail(in, "the UART's wake-up", EBUSY);
        return;
    }
    if (in->state != SERIAL_INPUT_FULL)
        return; /* a wake-up for room nobody waits for */
    if (in->off < in->len)
        input_deliver(in);
    else
        input_read(in);
}

int serial_input_start(struct serial_input *in, struct evloop *loop)
{
    int rc;

    if (in->fd < 0)
        return 0;
    in->loop = loop;
    in->poll_ev.fn = on_poll;
    in->read_ev.fn = on_read;
    in->ready_ev.fn = on_ready;
    rc = evloop_read(loop, &in->ready_ev, in->ready_fd, &in->ready_buf, sizeof(in->ready_buf));
    if (rc)
        return rc;
    input_poll(in);
    return in->state == SERIAL_INPUT_OFF ? -EBUSY : 0;
}

void serial_input_fini(struct serial_input *in)
{
    if (in->raw)
        term_raw_restore();
    in->raw = false;
    if (in->ready_fd >= 0)
        close(in->ready_fd);
    in->ready_fd = in->fd = -1;
}
