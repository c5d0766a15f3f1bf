/* Unit tests: stdin to the 16550 on the event loop, flow control, end of
 * input; the terminal's raw settings. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "evloop.h"
#include "serial.h"
#include "serial_input.h"
#include "term_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static struct serial s;
static struct serial_input in;
static struct evloop loop;
static unsigned irqs;

static void count_irq(void *opaque)
{
    (void)opaque;
    irqs++;
}

static uint8_t rd(unsigned reg)
{
    uint8_t v;
    serial_bus_ops.read(&s, reg, &v, 1);
    return v;
}

static void wr(unsigned reg, uint8_t v)
{
    serial_bus_ops.write(&s, reg, &v, 1);
}

static void setup(void)
{
    irqs = 0;
    serial_init(&s, -1, count_irq, NULL);
    cr_assert_eq(evloop_init(&loop, 16), 0);
}

static void teardown(void)
{
    evloop_fini(&loop);
    serial_input_fini(&in);
}

TestSuite(serial_input, .init = setup, .fini = teardown);

/* Step the loop until cond holds (at most 2 s). */
#define STEP_UNTIL(cond)                                                                           \
    do {                                                                                           \
        struct timespec ts = {0, 1000000};                                                         \
        for (int i = 0; i < 2000 && !(cond); i++) {                                                \
            cr_assert_geq(evloop_run_once(&loop, false), 0);                                       \
            nanosleep(&ts, NULL);                                                                  \
        }                                                                                          \
        cr_assert(cond, "timed out waiting for " #cond);                                           \
    } while (0)

static int pending(int fd)
{
    int n = -1;
    cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

Test(serial_input, pipe_flow_control_keeps_every_byte_in_order)
{
    static const char msg[] = "0123456789abcdefghijklmnopqrstuvwxyzABCD"; /* 40 */
    char got[sizeof(msg)] = {0};
    size_t ngot = 0;
    int p[2];

    cr_assert_eq(pipe(p), 0);
    wr(2, 0x01); /* FIFO on */
    wr(1, 0x01); /* RDA interrupt */
    cr_assert_eq(serial_input_init(&in, &s, p[0]), 0);
    cr_assert_not(serial_input_tty(&in), "a pipe is no terminal");
    cr_assert_eq(serial_input_start(&in, &loop), 0);
    cr_assert_eq(write(p[1], msg, 40), 40);
    STEP_UNTIL(in.state == SERIAL_INPUT_FULL);
    cr_assert_eq(s.regs.rx_count, SERIAL_FIFO_LEN, "the FIFO full");
    cr_assert_eq(pending(p[0]), 40 - SERIAL_FIFO_LEN, "the rest left in the pipe: no drop");
    cr_assert_geq(irqs, 1);
    /* Stay full while the guest reads nothing. */
    for (int i = 0; i < 20; i++)
        cr_assert_geq(evloop_run_once(&loop, false), 0);
    cr_assert_eq(pending(p[0]), 40 - SERIAL_FIFO_LEN);
    while (ngot < 40) {
        while (rd(5) & 0x01)
            got[ngot++] = (char)rd(0);
        STEP_UNTIL(ngot == 40 || (rd(5) & 0x01));
    }
    cr_assert_str_eq(got, msg);
    cr_assert_eq(in.bytes, 40);
    close(p[1]);
    STEP_UNTIL(in.state == SERIAL_INPUT_OFF);
    cr_assert_eq(rd(5) & 0x01, 0, "end of input: nothing more");
    close(p[0]);
}

Test(serial_input, without_fifo_one_byte_at_a_time)
{
    int p[2];

    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(serial_input_init(&in, &s, p[0]), 0);
    cr_assert_eq(serial_input_start(&in, &loop), 0);
    cr_assert_eq(write(p[1], "xyz", 3), 3);
    STEP_UNTIL(in.state == SERIAL_INPUT_FULL);
    cr_assert_eq(pending(p[0]), 2);
    cr_assert_eq(rd(0), 'x');
    STEP_UNTIL(rd(5) & 0x01);
    cr_assert_eq(rd(0), 'y');
    STEP_UNTIL(rd(5) & 0x01);
    cr_assert_eq(rd(0), 'z');
    close(p[1]);
    STEP_UNTIL(in.state == SERIAL_INPUT_OFF);
    close(p[0]);
}

Test(serial_input, regular_file_is_read_once_from_its_position)
{
    char path[] = "/tmp/flint-serial-input-XXXXXX";
    int fd = mkstemp(path);
    char got[8] = {0};

    cr_assert_geq(fd, 0);
    unlink(path);
    cr_assert_eq(write(fd, "skip:hi", 7), 7);
    cr_assert_eq(lseek(fd, 5, SEEK_SET), 5);
    wr(2, 0x01);
    cr_assert_eq(serial_input_init(&in, &s, fd), 0);
    cr_assert_eq(serial_input_start(&in, &loop), 0);
    STEP_UNTIL(in.state == SERIAL_INPUT_OFF);
    got[0] = (char)rd(0);
    got[1] = (char)rd(0);
    cr_assert_str_eq(got, "hi");
    cr_assert_eq(rd(5) & 0x01, 0, "read once: no repeat from offset 0");
    close(fd);
}

Test(serial_input, dev_null_and_closed_stdin_do_nothing)
{
    int null = open("/dev/null", O_RDONLY);

    cr_assert_geq(null, 0);
    cr_assert_eq(serial_input_init(&in, &s, null), 0);
    cr_assert_eq(in.fd, -1, "/dev/null is not read");
    cr_assert_eq(serial_input_start(&in, &loop), 0);
    cr_assert_eq(in.state, SERIAL_INPUT_OFF);
    close(null);
    serial_input_fini(&in);
    cr_assert_eq(serial_input_init(&in, &s, null), 0, "a closed descriptor");
    cr_assert_eq(in.fd, -1);
    cr_assert_eq(serial_input_init(&in, &s, -1), 0, "--no-console-input");
    cr_assert_eq(in.fd, -1);
}

Test(serial_input, raw_settings_pass_every_key_to_the_guest)
{
    struct termios t;

    memset(&t, 0, sizeof(t));
    t.c_iflag = ICRNL | IXON | BRKINT | ISTRIP;
    t.c_oflag = OPOST | ONLCR;
    t.c_lflag = ECHO | ICANON | ISIG | IEXTEN;
    term_raw_settings(&t);
    cr_assert_eq(t.c_lflag & (ECHO | ICANON | ISIG | IEXTEN), 0, "no echo, lines or signal keys");
    cr_assert_eq(t.c_iflag & (ICRNL | IXON | BRKINT | ISTRIP), 0, "Enter is CR; ^S ^Q pass");
    cr_assert_eq(t.c_oflag, OPOST | ONLCR, "output processing kept");
    cr_assert_eq(t.c_cc[VMIN], 1);
    cr_assert_eq(t.c_cc[VTIME], 0);
    cr_assert_not(term_raw_active());
    term_raw_restore(); /* nothing to restore: no effect */
    cr_assert_not(term_raw_active());
}
