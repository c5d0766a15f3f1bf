/*
 * Host test (no KVM needed): the guest-shim hello image is a plain PVH
 * kernel, so QEMU boots it with -kernel too. QEMU's isa-debug-exit turns
 * the shim's exit(0) into status (0 << 1) | 1 = 1.
 */
#include <criterion/criterion.h>

#include "run_flint.h"

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
