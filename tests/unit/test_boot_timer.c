/* Unit tests: the boot-timer device. */
#include <criterion/criterion.h>

#include "boot_timer.h"
#include "log.h"

#include <flint-abi.h>
#include <string.h>

static struct boot_timer t;

static void setup(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_sec -= 2; /* "started" two seconds ago */
    boot_timer_init(&t, now, 0);
    log_set_level(LOG_OFF);
}

static void poke(uint64_t offset, uint64_t value, unsigned len)
{
    uint8_t data[8];
    memcpy(data, &value, sizeof(data));
    boot_timer_ops.write(&t, offset, data, len);
}

TestSuite(boot_timer, .init = setup);

Test(boot_timer, magic_byte_marks_the_boot)
{
    poke(0, FLINT_BOOT_TIMER_MAGIC, 1);
    cr_assert_eq(t.marks, 1);
    cr_assert_geq(t.last_wall_us, 2000000, "measured from the start instant");
    cr_assert_lt(t.last_wall_us, 60000000);
}

Test(boot_timer, other_writes_are_ignored)
{
    poke(0, 122, 1);
    poke(1, FLINT_BOOT_TIMER_MAGIC, 1);
    poke(0, FLINT_BOOT_TIMER_MAGIC, 2);
    poke(0, FLINT_BOOT_TIMER_MAGIC, 4);
    poke(0x800, FLINT_BOOT_TIMER_MAGIC, 1);
    cr_assert_eq(t.marks, 0);
}

Test(boot_timer, reads_are_zero)
{
    uint8_t v[8];
    memset(v, 0xaa, sizeof(v));
    boot_timer_ops.read(&t, 0, v, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(v[i], 0);
}

Test(boot_timer, many_marks_are_counted_but_bounded_in_the_log)
{
    for (int i = 0; i < 1000; i++)
        poke(0, FLINT_BOOT_TIMER_MAGIC, 1);
    cr_assert_eq(t.marks, 1000);
}

Test(boot_timer, line_has_firecrackers_format)
{
    char line[128];
    boot_timer_format(line, sizeof(line), 123456, 7890);
    cr_assert_str_eq(line, "Guest-boot-time = 123456 us 123 ms,   7890 CPU us 7 CPU ms");
}
