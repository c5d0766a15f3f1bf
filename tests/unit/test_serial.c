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

static unsigned ready_calls;
static void count_ready(void *opaque)
{
    (void)opaque;
    ready_calls++;
}

static struct serial s;
static int pipefd[2];

static void setup(void)
{
    irqs = 0;
    cr_assert_eq(pipe2(pipefd, O_NONBLOCK), 0);
    serial_init(&s, pipefd[1], count_irq, NULL);
    ready_calls = 0;
    serial_set_rx_ready(&s, count_ready, NULL);
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

Test(serial, loopback_echoes_and_maps_modem_lines)
{
    char buf[4];
    wr(4, 0x10 | 0x0f); /* loopback, all outputs */
    cr_assert_eq(rd(6) & 0xf0, 0xf0);
    wr(4, 0x10 | 0x01); /* DTR only -> DSR */
    cr_assert_eq(rd(6) & 0xf0, 0x20);
    wr(2, 0x01); /* FIFO on: the looped-back byte waits in it */
    wr(0, 0x42);
    cr_assert_eq(read(pipefd[0], buf, sizeof(buf)), -1, "loopback does not transmit");
    cr_assert_eq(rd(5) & 0x01, 0x01);
    cr_assert_eq(rd(0), 0x42);
    wr(4, 0x08);
    cr_assert_eq(rd(6), 0xb0, "outside loopback: DCD DSR CTS");
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

/* ---- the receiver ---- */

static size_t push(const char *bytes)
{
    return serial_push_input(&s, (const uint8_t *)bytes, strlen(bytes));
}

Test(serial, without_fifo_holds_one_byte)
{
    wr(1, 0x01); /* RDA interrupt */
    cr_assert_eq(serial_rx_space(&s), 1, "power-on: FIFO off, one holding register");
    cr_assert_eq(push("ab"), 1, "the rest waits with the caller");
    cr_assert_eq(irqs, 1);
    cr_assert_eq(rd(2), 0x04, "RDA, no FIFO bits");
    cr_assert_eq(rd(5) & 0x01, 0x01, "DR");
    cr_assert_eq(ready_calls, 0);
    cr_assert_eq(rd(0), 'a');
    cr_assert_eq(ready_calls, 1, "reading the byte makes room: the input side is told");
    cr_assert_eq(rd(5) & 0x01, 0, "DR clear");
    cr_assert_eq(rd(2), 0x01, "nothing pending");
    cr_assert_eq(rd(0), 0, "an empty receiver reads 0");
    cr_assert_eq(ready_calls, 1, "told once");
}

Test(serial, fifo_takes_sixteen_and_flow_control_resumes)
{
    char in[SERIAL_FIFO_LEN + 5];

    memset(in, 'z', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    in[0] = 'a';
    wr(2, 0x01);
    cr_assert_eq(serial_rx_space(&s), SERIAL_FIFO_LEN);
    cr_assert_eq(push(in), SERIAL_FIFO_LEN, "never more than the FIFO takes");
    cr_assert_eq(serial_rx_space(&s), 0, "full: stop reading");
    cr_assert_eq(push("y"), 0);
    cr_assert_eq(rd(5) & 0x03, 0x01, "DR, no overrun: input waits rather than overruns");
    cr_assert_eq(rd(0), 'a');
    cr_assert_eq(ready_calls, 1, "one byte of room resumes input");
    cr_assert_eq(serial_rx_space(&s), 1);
    cr_assert_eq(push("y"), 1);
    for (int i = 1; i < SERIAL_FIFO_LEN; i++)
        cr_assert_eq(rd(0), 'z');
    cr_assert_eq(rd(0), 'y', "order kept across the wait");
    cr_assert_eq(rd(5) & 0x01, 0);
}

Test(serial, trigger_level_and_character_timeout)
{
    wr(2, 0x81); /* FIFO on, trigger level 8 */
    wr(1, 0x01);
    cr_assert_eq(irqs, 0, "nothing received, nothing pending");
    push("abc");
    cr_assert_eq(irqs, 1, "below the trigger level the timeout interrupt is due");
    cr_assert_eq(rd(2), 0xcc, "FIFO bits + character timeout");
    push("defgh");
    cr_assert_eq(irqs, 2);
    cr_assert_eq(rd(2), 0xc4, "8 bytes: received data available");
    rd(0);
    cr_assert_eq(rd(2), 0xcc, "7 left: back to the timeout");
    for (int i = 0; i < 7; i++)
        rd(0);
    cr_assert_eq(rd(2), 0xc1, "drained: nothing pending");
    wr(2, 0xc1); /* trigger 14 */
    push("0123456789abcd");
    cr_assert_eq(rd(2), 0xc4, "14 bytes reach trigger level 14");
}

Test(serial, rx_interrupt_needs_ier_and_clears_on_disable)
{
    wr(2, 0x01);
    push("x");
    cr_assert_eq(irqs, 0, "IER off: no interrupt");
    cr_assert_eq(rd(2), 0xc1);
    wr(1, 0x01);
    cr_assert_eq(irqs, 1, "enabling with data waiting raises it");
    cr_assert_eq(rd(2), 0xc4, "trigger level 1: received data available");
    wr(1, 0x00);
    cr_assert_eq(rd(2), 0xc1, "disabled: cleared");
    cr_assert_eq(rd(5) & 0x01, 0x01, "the data is still there");
}

Test(serial, iir_priorities_rls_then_rx_then_thre)
{
    wr(4, 0x10); /* loopback: the only way to overrun */
    wr(1, 0x07); /* RLS, THRE, RDA */
    cr_assert_eq(rd(2), 0x02, "THRE alone");
    wr(0, 'p'); /* FIFO off: one byte fills RBR */
    cr_assert_eq(rd(2), 0x04, "received data beats THRE");
    wr(0, 'q'); /* overrun: q replaces p */
    cr_assert_eq(rd(2), 0x06, "line status beats everything");
    cr_assert_eq(rd(5) & 0x03, 0x03, "DR and OE");
    cr_assert_eq(rd(5) & 0x02, 0, "reading LSR cleared OE");
    cr_assert_eq(rd(2), 0x04, "back to received data");
    cr_assert_eq(rd(0), 'q', "without FIFO the new byte overwrites the old");
    cr_assert_eq(rd(2), 0x02, "then THRE");
    cr_assert_eq(rd(2), 0x01, "acknowledged by the read");
}

Test(serial, fifo_overrun_keeps_contents)
{
    wr(2, 0x01);
    wr(4, 0x10);
    for (int i = 0; i < SERIAL_FIFO_LEN + 3; i++)
        wr(0, (uint8_t)('A' + i));
    cr_assert_eq(rd(5) & 0x03, 0x03);
    for (int i = 0; i < SERIAL_FIFO_LEN; i++)
        cr_assert_eq(rd(0), 'A' + i, "the FIFO keeps the first 16");
    cr_assert_eq(rd(5) & 0x01, 0);
}

Test(serial, loopback_holds_console_input_until_it_ends)
{
    wr(2, 0x01);
    wr(4, 0x10);
    cr_assert_eq(serial_rx_space(&s), 0, "loopback disconnects the serial input");
    cr_assert_eq(push("k"), 0);
    cr_assert_eq(ready_calls, 0);
    wr(4, 0x08);
    cr_assert_eq(ready_calls, 1, "leaving loopback resumes input");
    cr_assert_eq(push("k"), 1);
}

Test(serial, fcr_clears_rx_and_reports_fifo)
{
    wr(2, 0x01);
    push("123");
    wr(2, 0x01 | 0x02);
    cr_assert_eq(rd(5) & 0x01, 0);
    cr_assert_eq(rd(2) & 0xc0, 0xc0);
    push("4");
    wr(2, 0x00);
    cr_assert_eq(rd(5) & 0x01, 0, "turning the FIFO off empties it");
    cr_assert_eq(rd(2) & 0xc0, 0, "and IIR says so");
    wr(2, 0x02);
    cr_assert_eq(s.regs.fcr, 0, "with bit 0 clear the other FCR bits are ignored");
}

Test(serial, full_fifo_reset_resumes_input)
{
    char in[SERIAL_FIFO_LEN + 1];

    memset(in, 'q', SERIAL_FIFO_LEN);
    in[SERIAL_FIFO_LEN] = '\0';
    wr(2, 0x01);
    cr_assert_eq(push(in), SERIAL_FIFO_LEN);
    cr_assert_eq(serial_rx_space(&s), 0);
    wr(2, 0x03);
    cr_assert_eq(ready_calls, 1, "a FIFO reset makes room too");
}

Test(serial, hostile_register_storm_keeps_invariants)
{
    uint32_t x = 12345;

    for (int i = 0; i < 200000; i++) {
        x = x * 1103515245u + 12345u;
        uint8_t reg = (x >> 8) & 7, v = (uint8_t)(x >> 16);
        if (x & 0x80000000u)
            wr(reg, v);
        else
            rd(reg);
        if (!(i % 7))
            push("zz");
        cr_assert_leq(s.regs.rx_count, SERIAL_FIFO_LEN);
        cr_assert_lt(s.regs.rx_head, SERIAL_FIFO_LEN);
        cr_assert(!(s.regs.fcr & ~0xc1));
        cr_assert_leq(s.regs.rx_count, (s.regs.fcr & 1) ? SERIAL_FIFO_LEN : 1u);
    }
}
