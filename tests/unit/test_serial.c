/* Unit tests: 16550A register model. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "serial.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static unsigned irqs;
static void count_irq(void *opaque)
{
    (void)opaque;
    irqs++;
}

static struct serial s;
static int pipefd[2];

static void setup(void)
{
    irqs = 0;
    cr_assert_eq(pipe2(pipefd, O_NONBLOCK), 0);
    serial_init(&s, pipefd[1], count_irq, NULL);
}

static void teardown(void)
{
    close(pipefd[0]);
    close(pipefd[1]);
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

TestSuite(serial, .init = setup, .fini = teardown);

Test(serial, transmit_reaches_output_fd)
{
    char buf[16] = {0};
    wr(0, 'h');
    wr(0, 'i');
    cr_assert_eq(read(pipefd[0], buf, sizeof(buf)), 2);
    cr_assert_str_eq(buf, "hi");
    cr_assert_eq(rd(5) & 0x60, 0x60, "THRE and TEMT always set");
}

Test(serial, dlab_switches_data_and_ier_to_divisor)
{
    char buf[4];
    wr(3, 0x83); /* DLAB + 8N1 */
    wr(0, 0x0c);
    wr(1, 0x00);
    cr_assert_eq(rd(0), 0x0c);
    cr_assert_eq(rd(1), 0x00);
    cr_assert_eq(read(pipefd[0], buf, sizeof(buf)), -1, "divisor writes are not output");
    wr(3, 0x03);
    cr_assert_eq(rd(3), 0x03);
    cr_assert_eq(rd(1), 0x00, "IER untouched by DLM write");
}

Test(serial, scratch_register_holds_value)
{
    wr(7, 0xa5);
    cr_assert_eq(rd(7), 0xa5);
}

Test(serial, thre_interrupt_enable_read_ack)
{
    cr_assert_eq(rd(2) & 0x0f, 0x01, "no interrupt at reset");
    wr(1, 0x02); /* enable THRE interrupt */
    cr_assert_eq(irqs, 1, "enabling with THR empty raises it");
    cr_assert_eq(rd(2) & 0x0f, 0x02);
    cr_assert_eq(rd(2) & 0x0f, 0x01, "reading IIR acknowledged it");
    wr(0, 'x');
    cr_assert_eq(irqs, 2, "each transmitted byte raises THRE again");
    cr_assert_eq(rd(2) & 0x0f, 0x02);
}

Test(serial, no_interrupt_when_disabled)
{
    wr(0, 'a');
    wr(0, 'b');
    cr_assert_eq(irqs, 0);
    cr_assert_eq(rd(2) & 0x01, 0x01);
}

Test(serial, receive_fifo_data_ready_and_overflow)
{
    uint8_t in[SERIAL_RX_FIFO + 10];
    memset(in, 'z', sizeof(in));
    in[0] = 'a';
    wr(1, 0x01); /* RDA interrupt */
    cr_assert_eq(serial_push_input(&s, in, sizeof(in)), SERIAL_RX_FIFO, "FIFO bounds input");
    cr_assert_eq(irqs, 1);
    cr_assert_eq(rd(2) & 0x0f, 0x04);
    cr_assert_eq(rd(5) & 0x01, 0x01);
    cr_assert_eq(rd(0), 'a');
    for (int i = 1; i < SERIAL_RX_FIFO; i++)
        cr_assert_eq(rd(0), 'z');
    cr_assert_eq(rd(5) & 0x01, 0, "drained");
    cr_assert_eq(rd(0), 0, "empty read returns 0");
    cr_assert_eq(rd(2) & 0x0f, 0x01);
}

Test(serial, loopback_echoes_and_maps_modem_lines)
{
    char buf[4];
    wr(4, 0x10 | 0x0f); /* loopback, all outputs */
    cr_assert_eq(rd(6) & 0xf0, 0xf0);
    wr(4, 0x10 | 0x01); /* DTR only -> DSR */
    cr_assert_eq(rd(6) & 0xf0, 0x20);
    wr(0, 0x42);
    cr_assert_eq(read(pipefd[0], buf, sizeof(buf)), -1, "loopback does not transmit");
    cr_assert_eq(rd(5) & 0x01, 0x01);
    cr_assert_eq(rd(0), 0x42);
    wr(4, 0x08);
    cr_assert_eq(rd(6), 0xb0, "outside loopback: DCD DSR CTS");
}

Test(serial, fcr_clears_rx_and_reports_fifo)
{
    uint8_t in[3] = {1, 2, 3};
    serial_push_input(&s, in, 3);
    wr(2, 0x01 | 0x02);
    cr_assert_eq(rd(5) & 0x01, 0);
    cr_assert_eq(rd(2) & 0xc0, 0xc0);
}

Test(serial, multi_byte_access_covers_consecutive_registers)
{
    uint8_t v[2] = {0x5a, 0x00};
    serial_bus_ops.write(&s, 7, v, 1);
    uint8_t out[2];
    serial_bus_ops.read(&s, 6, out, 2);
    cr_assert_eq(out[1], 0x5a);
}

Test(serial, closed_output_does_not_crash)
{
    close(pipefd[0]);
    pipefd[0] = open("/dev/null", O_RDONLY);
    /* Writing to a pipe with no reader fails (EPIPE, SIGPIPE ignored here). */
    signal(SIGPIPE, SIG_IGN);
    wr(0, 'a');
    wr(0, 'b');
    cr_assert_eq(s.out_fd, -1, "output disabled after a failed write");
}
