/*
 * Host test (no KVM needed): the guest-shim hello image is a plain PVH
 * kernel, so QEMU boots it with -kernel too. QEMU's isa-debug-exit turns
 * the shim's exit(0) into status (0 << 1) | 1 = 1.
 */
#include <criterion/criterion.h>

#include "run_flint.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(qemu, boots_hello_as_pvh_kernel, .timeout = 300)
{
    if (QEMU_BIN[0] == '\0' || access(QEMU_BIN, X_OK) != 0)
        cr_skip_test("qemu-system-x86_64 is not installed");
    char *argv[] = {QEMU_BIN,  "-M",
                    "pc",      "-accel",
                    "tcg",     "-cpu",
                    "max",     "-m",
                    "128",     "-display",
                    "none",    "-monitor",
                    "none",    "-serial",
                    "stdio",   "-no-reboot",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                    "-kernel", HELLO_ELF,
                    "-append", "qemu-pvh-check",
                    NULL};
    struct flint_result r = run_cmd(argv, 240);
    cr_assert_not(r.timed_out, "QEMU did not finish:\n%s\n%s", r.out, r.err);
    cr_assert_eq(r.status, 1, "status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "Hello from flint guest-shim"), "stdout:\n%s", r.out);
    cr_assert(strstr(r.out, "cmdline: qemu-pvh-check"), "stdout:\n%s", r.out);
    flint_result_free(&r);
}

/* Under QEMU the paravirtual console's probe reads all ones, so the guest
 * keeps the 16550, and its text arrives byte for byte. */
Test(qemu, console_text_through_the_16550, .timeout = 300)
{
    if (QEMU_BIN[0] == '\0' || access(QEMU_BIN, X_OK) != 0)
        cr_skip_test("qemu-system-x86_64 is not installed");
    char *argv[] = {QEMU_BIN,  "-M",
                    "pc",      "-accel",
                    "tcg",     "-cpu",
                    "max",     "-m",
                    "128",     "-display",
                    "none",    "-monitor",
                    "none",    "-serial",
                    "stdio",   "-no-reboot",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                    "-kernel", CONSOLETEXT_ELF,
                    NULL};
    struct flint_result r = run_cmd(argv, 240);
    char *want = console_text_expected();

    cr_assert_not(r.timed_out, "QEMU did not finish:\n%s\n%s", r.out, r.err);
    cr_assert_eq(r.status, 1, "status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, want), "the guest's text is not in QEMU's output:\n%s", r.out);
    free(want);
    flint_result_free(&r);
}
