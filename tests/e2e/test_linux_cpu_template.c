/*
 * End-to-end tests: CPU templates seen from inside a Linux guest. The VM
 * comes from a config file (Firecracker's format, --no-api), with
 * machine-config cpu_template or a cpu-config template file; the guest
 * prints what /proc/cpuinfo says and the test checks the template's bits.
 *
 * The sandbox's CPU is AMD, so T2A is the static template that can boot
 * there; the Intel ones must be refused at start, naming the mismatch.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_S 150.0
#define CMDLINE                                                                                    \
    "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd "                \
    "flint.cmd=\\\"grep -E 'vendor|family|model|stepping|flags' /proc/cpuinfo\\\""
#define INIT_OK "flint-init: command exited with status 0"

static char *temp_path(const char *what)
{
    char *path;
    cr_assert_geq(asprintf(&path, "/tmp/flint-cputmpl-%s-%d", what, getpid()), 0);
    return path;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* Boot the guest from a config file whose machine-config ends in
 * `machine_extra` and whose top level ends in `top_extra`. */
static struct flint_result boot(const char *machine_extra, const char *top_extra)
{
    const char *dir = getenv("FLINT_LINUX_KERNEL_DIR");
    char *cfgp = temp_path("config.json"), *json;

    cr_assert(dir && *dir, "FLINT_LINUX_KERNEL_DIR is not set (tools/build-kernel)");
    cr_assert_eq(access(LINUX_INITRAMFS, R_OK), 0, "%s is missing", LINUX_INITRAMFS);
    cr_assert_geq(asprintf(&json,
                           "{\"boot-source\": {\"kernel_image_path\": \"%s/vmlinux\", "
                           "\"initrd_path\": \"%s\", \"boot_args\": \"%s\"},\n"
                           " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128%s}%s}\n",
                           dir, LINUX_INITRAMFS, CMDLINE, machine_extra, top_extra),
                  0);
    write_file(cfgp, json);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", cfgp, NULL};
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    unlink(cfgp);
    free(cfgp);
    free(json);
    return r;
}

static void expect_clean_run(const struct flint_result *r)
{
    cr_assert_not(r->timed_out, "flint did not finish\nstdout:\n%s\nstderr:\n%s", r->out, r->err);
    cr_assert_eq(r->status, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", r->status, r->out, r->err);
    cr_assert(strstr(r->out, INIT_OK), "no '%s' in:\n%s", INIT_OK, r->out);
}

/* The number after "name<tabs>: " on the first /proc/cpuinfo line named
 * `name`, or -1. */
static long cpuinfo_number(const char *out, const char *name)
{
    size_t n = strlen(name);

    for (const char *l = out; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, name, n) || l[n] != '\t') /* "model" is not "model name" */
            continue;
        const char *colon = strchr(l, ':');
        return colon ? strtol(colon + 1, NULL, 0) : -1;
    }
    return -1;
}

/* Does the guest's flags line list `flag`? */
static bool has_flag(const char *out, const char *flag)
{
    const char *l = strstr(out, "\nflags");
    const char *end = l ? strchr(l + 1, '\n') : NULL;
    size_t n = strlen(flag);

    cr_assert(l && end, "no flags line in:\n%s", out);
    for (const char *p = strchr(l, ':'); p && p < end; p = strchr(p + 1, ' '))
        if (!strncmp(p + 1, flag, n) && (p[n + 1] == ' ' || p[n + 1] == '\r' || p[n + 1] == '\n'))
            return true;
    return false;
}

/* T2A makes any AMD host show family 6 model 0x3f stepping 2, and hides
 * what only some hosts have; POPCNT it passes through. A custom template
 * then hides POPCNT and sets the stepping to 13: the guest sees both. */
Test(linux_cpu_template, t2a_and_a_custom_template_change_what_the_guest_sees, .timeout = 600)
{
    struct flint_result r = boot(", \"cpu_template\": \"T2A\"", "");
    expect_clean_run(&r);
    cr_assert(strstr(r.out, "AuthenticAMD"), "%s", r.out);
    cr_assert_eq(cpuinfo_number(r.out, "cpu family"), 6, "%s", r.out);
    cr_assert_eq(cpuinfo_number(r.out, "model"), 63, "%s", r.out);
    cr_assert_eq(cpuinfo_number(r.out, "stepping"), 2, "%s", r.out);
    cr_assert(has_flag(r.out, "popcnt"), "T2A keeps POPCNT:\n%s", r.out);
    cr_assert(has_flag(r.out, "hypervisor"), "%s", r.out);
    static const char *const hidden[] = {"sse4a",      "misalignsse", "3dnowprefetch", "mmxext",
                                         "fxsr_opt",   "pdpe1gb",     "monitor",       "avx512f",
                                         "clzero",     "wbnoinvd",    "sha_ni",        "rdseed",
                                         "clflushopt", "pku",         "xsaves",        "svm"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        cr_assert_not(has_flag(r.out, hidden[i]), "T2A hides %s:\n%s", hidden[i], r.out);
    flint_result_free(&r);

    /* Leaf 1: EAX bits 3-0 (stepping) = 1101, ECX bit 23 (POPCNT) = 0. */
    char *tmpl = temp_path("template.json");
    write_file(tmpl,
               "{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0,"
               " \"modifiers\": ["
               "{\"register\": \"eax\", \"bitmap\": \"0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx1101\"},"
               "{\"register\": \"ecx\", \"bitmap\": \"0bxxxxxxxx0xxxxxxxxxxxxxxxxxxxxxxx\"}"
               "]}]}");
    char *top;
    cr_assert_geq(asprintf(&top, ", \"cpu-config\": \"%s\"", tmpl), 0);
    r = boot("", top);
    expect_clean_run(&r);
    cr_assert_eq(cpuinfo_number(r.out, "stepping"), 13, "%s", r.out);
    cr_assert_not(has_flag(r.out, "popcnt"), "the custom template hides POPCNT:\n%s", r.out);
    cr_assert(has_flag(r.out, "hypervisor"), "%s", r.out);
    flint_result_free(&r);
    unlink(tmpl);
    free(tmpl);
    free(top);
}

/* An Intel template on this AMD host: refused at start, before any vCPU
 * runs, with the reason on stderr. */
Test(linux_cpu_template, intel_template_on_an_amd_host_is_refused)
{
    struct flint_result r = boot(", \"cpu_template\": \"T2\"", "");
    cr_assert_not(r.timed_out);
    cr_assert_neq(r.status, 0, "stdout:\n%s", r.out);
    cr_assert(strstr(r.err, "cpu_template T2 is for Intel CPUs, and this host's CPU is AMD"),
              "stderr:\n%s", r.err);
    cr_assert_not(strstr(r.out, "Linux version"), "the guest must not run:\n%s", r.out);
    flint_result_free(&r);
}
