/* Unit tests: the paravirtual console device (pvconsole.c) with well-formed
 * and hostile descriptors, its probe, and its ordering with the 16550. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "legacy.h"
#include "serial.h"
#include "util.h"

#include <fcntl.h>
#include <flint-abi.h>
#include <string.h>
#include <unistd.h>

static struct guest_mem mem;
static struct serial uart;
static struct pvconsole pv;
static int pipe_rd;

static void no_irq(void *opaque)
{
    (void)opaque;
}

static void setup(void)
{
    int p[2];

    cr_assert_eq(guest_mem_create(&mem, 16 * MIB), 0);
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    pipe_rd = p[0];
    serial_init(&uart, p[1], no_irq, NULL);
    pvconsole_init(&pv, &mem, &uart);
}

static void teardown(void)
{
    close(pipe_rd);
    close(uart.out_fd);
    guest_mem_destroy(&mem);
}

/* Everything written to the console so far, NUL-terminated. */
static const char *console_output(void)
{
    static char out[1 << 16];
    ssize_t n = read(pipe_rd, out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void put_desc(uint64_t at, uint64_t buf, uint32_t len, uint32_t reserved)
{
    struct flint_pvconsole_desc d = {.buf = buf, .len = len, .reserved = reserved};
    cr_assert_eq(guest_mem_write(&mem, at, &d, sizeof(d)), 0);
}

static void out32(uint64_t offset, uint32_t v)
{
    pvconsole_ops.write(&pv, offset, (const uint8_t *)&v, 4);
}

TestSuite(pvconsole, .init = setup, .fini = teardown);

Test(pvconsole, probe_reads_the_magic_only_as_32_bits)
{
    uint32_t v = 0;
    uint8_t b = 0;

    pvconsole_ops.read(&pv, 0, (uint8_t *)&v, 4);
    cr_assert_eq(v, FLINT_PVCONSOLE_MAGIC);
    pvconsole_ops.read(&pv, 0, &b, 1);
    cr_assert_eq(b, 0xff);
    pvconsole_ops.read(&pv, 1, (uint8_t *)&v, 2);
    cr_assert_eq(v & 0xffff, 0xffff);
}

Test(pvconsole, one_write_sends_the_whole_buffer)
{
    const char *text = "hello, paravirtual console\n";

    cr_assert_eq(guest_mem_write(&mem, 0x20000, text, strlen(text)), 0);
    put_desc(0x1000, 0x20000, (uint32_t)strlen(text), 0);
    out32(0, 0x1000);
    cr_assert_str_eq(console_output(), text);
    cr_assert_eq(pv.writes, 1);
    cr_assert_eq(pv.dropped, 0);
}

Test(pvconsole, largest_write_passes_and_one_more_byte_is_dropped)
{
    static char big[FLINT_PVCONSOLE_MAX + 1];

    memset(big, 'x', FLINT_PVCONSOLE_MAX);
    cr_assert_eq(guest_mem_write(&mem, 0x30000, big, FLINT_PVCONSOLE_MAX), 0);
    put_desc(0x1000, 0x30000, FLINT_PVCONSOLE_MAX, 0);
    out32(0, 0x1000);
    cr_assert_str_eq(console_output(), big);
    put_desc(0x1000, 0x30000, FLINT_PVCONSOLE_MAX + 1, 0);
    out32(0, 0x1000);
    cr_assert_str_eq(console_output(), "");
    cr_assert_eq(pv.dropped, 1);
}

Test(pvconsole, hostile_descriptors_are_dropped)
{
    const uint64_t end = mem.size;

    put_desc(0x1000, 0x20000, 16, 0);
    out32(0, (uint32_t)end);          /* descriptor beyond RAM */
    out32(0, (uint32_t)end - 8);      /* descriptor straddling the end of RAM */
    out32(0, 0x1004);                 /* misaligned */
    out32(0, 0xfffffff8u);            /* in the MMIO gap */
    put_desc(0x2000, end - 4, 16, 0); /* buffer straddling the end */
    out32(0, 0x2000);
    put_desc(0x2000, UINT64_MAX - 3, 16, 0); /* buffer wrapping */
    out32(0, 0x2000);
    put_desc(0x2000, 0x20000, 16, 1); /* reserved field set */
    out32(0, 0x2000);
    put_desc(0x2000, 0x20000, UINT32_MAX, 0); /* huge length */
    out32(0, 0x2000);
    cr_assert_eq(pv.dropped, 8);
    cr_assert_eq(pv.writes, 0);
    cr_assert_str_eq(console_output(), "");
}

Test(pvconsole, other_accesses_are_ignored)
{
    put_desc(0x1000, 0x20000, 4, 0);
    cr_assert_eq(guest_mem_write(&mem, 0x20000, "abcd", 4), 0);
    pvconsole_ops.write(&pv, 0, (const uint8_t *)"\x00\x10", 2); /* 16-bit OUT */
    pvconsole_ops.write(&pv, 1, (const uint8_t *)"\x00\x10\x00\x00", 4);
    put_desc(0x1000, 0x20000, 0, 0); /* empty: nothing, no drop */
    out32(0, 0x1000);
    cr_assert_str_eq(console_output(), "");
    cr_assert_eq(pv.dropped, 0);
}

Test(pvconsole, output_keeps_its_order_with_the_16550)
{
    cr_assert_eq(guest_mem_write(&mem, 0x20000, "BC", 2), 0);
    put_desc(0x1000, 0x20000, 2, 0);
    serial_bus_ops.write(&uart, 0, (const uint8_t *)"A", 1);
    out32(0, 0x1000);
    serial_bus_ops.write(&uart, 0, (const uint8_t *)"D", 1);
    cr_assert_str_eq(console_output(), "ABCD");
}
