/* Unit tests: i8042 controller and the paravirtual exit device. */
#include <criterion/criterion.h>

#include "legacy.h"

#include <errno.h>
#include <flint-abi.h>
#include <stdio.h>
#include <string.h>

static int exits, last_status;
static char last_why[128];
static void on_exit_cb(void *opaque, int status, const char *why)
{
    (void)opaque;
    exits++;
    last_status = status;
    snprintf(last_why, sizeof(last_why), "%s", why);
}

static unsigned kbd_irqs;
static void kbd_irq(void *opaque)
{
    (void)opaque;
    kbd_irqs++;
}

static struct i8042 k;

static void setup(void)
{
    exits = 0;
    last_status = -1;
    kbd_irqs = 0;
    i8042_init(&k, on_exit_cb, NULL, kbd_irq, NULL);
}

static uint8_t status(void)
{
    uint8_t v;
    i8042_cmd_ops.read(&k, 0, &v, 1);
    return v;
}

static void cmd(uint8_t v)
{
    i8042_cmd_ops.write(&k, 0, &v, 1);
}

static uint8_t data_in(void)
{
    uint8_t v;
    i8042_data_ops.read(&k, 0, &v, 1);
    return v;
}

static void data_out(uint8_t v)
{
    i8042_data_ops.write(&k, 0, &v, 1);
}

TestSuite(i8042, .init = setup);

Test(i8042, reset_command_ends_vm_with_zero)
{
    cmd(0xfe);
    cr_assert_eq(exits, 1);
    cr_assert_eq(last_status, 0);
    cr_assert(strstr(last_why, "reset") != NULL);
}

Test(i8042, self_test_answers_0x55)
{
    cr_assert_eq(status() & 0x01, 0, "output buffer empty at start");
    cmd(0xaa);
    cr_assert_eq(status() & 0x01, 0x01);
    cr_assert_eq(data_in(), 0x55);
    cr_assert_eq(status() & 0x01, 0);
    cr_assert_eq(kbd_irqs, 1);
}

Test(i8042, command_byte_round_trip)
{
    cmd(0x60);
    data_out(0x44); /* keyboard interrupt off */
    cmd(0x20);
    cr_assert_eq(data_in(), 0x44);
    cr_assert_eq(kbd_irqs, 0, "no IRQ with the interrupt bit clear");
}

Test(i8042, keyboard_commands_are_acknowledged)
{
    data_out(0xff);
    cr_assert_eq(data_in(), 0xfa);
    cr_assert_eq(data_in(), 0xaa);
    data_out(0xf4);
    cr_assert_eq(data_in(), 0xfa);
    cr_assert_eq(exits, 0);
}

Test(i8042, output_buffer_is_bounded)
{
    for (int i = 0; i < 100; i++)
        cmd(0xaa);
    for (int i = 0; i < I8042_OUTBUF; i++)
        cr_assert_eq(data_in(), 0x55);
    cr_assert_eq(status() & 0x01, 0);
}

Test(i8042, unknown_commands_are_ignored)
{
    for (int c = 0; c < 256; c++)
        if (c != 0xfe && c != 0x60 && c != 0xd2)
            cmd((uint8_t)c);
    cr_assert_eq(exits, 0);
}

Test(i8042, pushed_keys_arrive_in_order_with_an_irq_per_byte)
{
    static const uint8_t ctrl_alt_del[] = {0x14, 0x11, 0xe0, 0x71};

    cr_assert_eq(i8042_push_keys(&k, ctrl_alt_del, 4), 0);
    cr_assert_geq(kbd_irqs, 1);
    for (int i = 0; i < 4; i++) {
        unsigned before = kbd_irqs;
        cr_assert_eq(status() & 0x01, 0x01);
        cr_assert_eq(data_in(), ctrl_alt_del[i]);
        /* Another interrupt while bytes remain: one byte per interrupt. */
        cr_assert_eq(kbd_irqs, before + (i < 3 ? 1 : 0), "byte %d", i);
    }
    cr_assert_eq(status() & 0x01, 0);
}

Test(i8042, pushed_keys_are_all_or_nothing)
{
    uint8_t keys[I8042_OUTBUF] = {0};

    cr_assert_eq(i8042_push_keys(&k, keys, I8042_OUTBUF - 2), 0);
    cr_assert_eq(i8042_push_keys(&k, keys, 4), -ENOSPC);
    for (int i = 0; i < I8042_OUTBUF - 2; i++)
        data_in();
    cr_assert_eq(status() & 0x01, 0, "nothing of the refused push was queued");
}

Test(pvexit, write_sets_status_from_low_byte)
{
    struct pvexit d = {.on_exit = on_exit_cb};
    uint8_t v[4] = {7, 1, 0, 0};
    exits = 0;
    pvexit_ops.write(&d, 0, v, 4);
    cr_assert_eq(exits, 1);
    cr_assert_eq(last_status, 7);
    v[0] = 255;
    pvexit_ops.write(&d, 0, v, 1);
    cr_assert_eq(last_status, 255);
}

Test(pvexit, odd_offsets_and_sizes_are_ignored)
{
    struct pvexit d = {.on_exit = on_exit_cb};
    uint8_t v[8] = {9};
    exits = 0;
    pvexit_ops.write(&d, 1, v, 1);
    pvexit_ops.write(&d, 0, v, 3);
    pvexit_ops.write(&d, 0, v, 8);
    cr_assert_eq(exits, 0);
    uint8_t r[4];
    pvexit_ops.read(&d, 0, r, 4);
    cr_assert_eq(r[0], 0xff);
}
