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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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
    cr_assert(has_flag(r.out, "xsaveerptr"), "T2A sets RstrFpErrPtrs:\n%s", r.out);
    /* (3DNowPrefetch is hidden too, but Linux sets it for any 64-bit AMD
     * CPU: arch/x86/kernel/cpu/amd.c.) */
    static const char *const hidden[] = {"sse4a",    "misalignsse", "mmxext",  "fxsr_opt",
                                         "pdpe1gb",  "monitor",     "avx512f", "clzero",
                                         "wbnoinvd", "sha_ni",      "rdseed",  "clflushopt",
                                         "pku",      "xsaves",      "svm",     "avx512vl"};
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

/* One HTTP request on the API socket, retried while flint is starting;
 * the status code (answer in `answer`), or -1. */
static int api_call(const char *sock, const char *method, const char *path, const char *body,
                    char *answer, size_t cap)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char req[1024];
    size_t have = 0;
    int fd = -1, status = -1;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    for (int i = 0; i < 600 && fd < 0; i++) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
            close(fd);
            fd = -1;
            usleep(100 * 1000);
        }
    }
    if (fd < 0)
        return -1;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n%s", method,
                     path, strlen(body), body);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    answer[0] = '\0';
    for (int waited = 0; waited < 120000 && have + 1 < cap;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        ssize_t k = recv(fd, answer + have, cap - 1 - have, 0);
        if (k <= 0)
            break;
        have += (size_t)k;
        answer[have] = '\0';
        char *end = strstr(answer, "\r\n\r\n"), *cl = strcasestr(answer, "Content-Length:");
        if (end && (!cl || strlen(end + 4) >= (size_t)atol(cl + 15)))
            break;
    }
    close(fd);
    if (sscanf(answer, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    return status;
}

/* Through the API: the PUT is accepted (the host is not looked at yet),
 * InstanceStart answers 400 with the reason, and flint then exits. */
Test(linux_cpu_template, intel_template_refused_at_instance_start_through_the_api)
{
    const char *dir = getenv("FLINT_LINUX_KERNEL_DIR");
    char *sock = temp_path("api.sock"), body[512], answer[4096];

    cr_assert(dir && *dir, "FLINT_LINUX_KERNEL_DIR is not set (tools/build-kernel)");
    unlink(sock);
    char *argv[] = {FLINT_BIN, "--api-sock", sock, NULL};
    static struct live l;
    live_start(&l, argv);
    cr_assert_eq(api_call(sock, "PUT", "/machine-config",
                          "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"C3\"}",
                          answer, sizeof(answer)),
                 204, "%s", answer);
    cr_assert_eq(api_call(sock, "GET", "/machine-config", "", answer, sizeof(answer)), 200);
    cr_assert(strstr(answer, "\"cpu_template\":\"C3\""), "%s", answer);
    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s/vmlinux\"}", dir);
    cr_assert_eq(api_call(sock, "PUT", "/boot-source", body, answer, sizeof(answer)), 204, "%s",
                 answer);
    cr_assert_eq(api_call(sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", answer,
                          sizeof(answer)),
                 400, "%s", answer);
    cr_assert(strstr(answer, "cpu_template C3 is for Intel CPUs, and this host's CPU is AMD"), "%s",
              answer);
    cr_assert_neq(live_finish(&l), 0, "flint exits after a failed InstanceStart");
    unlink(sock);
    free(sock);
}
