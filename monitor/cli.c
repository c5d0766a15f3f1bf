/*
 * cli.c - command-line parsing for `flint run`.
 *
 * Options take their value as `--opt VALUE` or `--opt=VALUE`. Parsing is
 * table-driven and has no global state, so it can be unit-tested.
 */
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FLINT_VERSION
#define FLINT_VERSION "0.0.0"
#endif

enum opt_id {
    OPT_KERNEL,
    OPT_INITRD,
    OPT_CMDLINE,
    OPT_MEM,
    OPT_VCPUS,
    OPT_STATS,
    OPT_LEVEL,
    OPT_DRIVE,
    OPT_NET,
    OPT_VSOCK,
    OPT_NO_SECCOMP,
    OPT_BOOT_TIMER,
    OPT_HELP,
};

static const struct {
    const char *name;
    enum opt_id id;
    bool has_value;
} run_opts[] = {
    {"--kernel", OPT_KERNEL, true},
    {"--initrd", OPT_INITRD, true},
    {"--cmdline", OPT_CMDLINE, true},
    {"--mem", OPT_MEM, true},
    {"--vcpus", OPT_VCPUS, true},
    {"--stats", OPT_STATS, false},
    {"--level", OPT_LEVEL, true},
    {"--drive", OPT_DRIVE, true},
    {"--net", OPT_NET, true},
    {"--vsock", OPT_VSOCK, true},
    {"--no-seccomp", OPT_NO_SECCOMP, false},
    {"--boot-timer", OPT_BOOT_TIMER, false},
    {"--help", OPT_HELP, false},
    {"-h", OPT_HELP, false},
};

void cli_usage(FILE *out)
{
    fputs("Usage: flint run [OPTIONS]\n"
          "       flint --help | --version\n"
          "\n"
          "Boot a micro-VM under KVM. With no --kernel, boots the built-in guest-shim\n"
          "hello image. flint exits with the guest's exit status.\n"
          "\n"
          "Options for `run`:\n"
          "  --kernel PATH    kernel to boot: ELF (PVH entry, or Linux vmlinux) or bzImage\n"
          "  --initrd PATH    initial ramdisk (PVH module or Linux initrd)\n"
          "  --cmdline STR    kernel command line (default \"" CONFIG_DEFAULT_CMDLINE "\")\n"
          "  --mem MIB        guest RAM in MiB (default 128, 2 to 1048576)\n"
          "  --vcpus N        number of vCPUs (default 1, 1 to 32)\n"
          "  --drive PATH[,ro][,id=NAME]\n"
          "                   attach a raw image as a virtio-blk device (repeatable)\n"
          "  --net TAP[,mac=XX:XX:XX:XX:XX:XX][,id=NAME]\n"
          "                   attach an existing tap device as a virtio-net device\n"
          "                   (repeatable; default MAC: a random locally administered one)\n"
          "  --vsock CID,PATH attach a virtio-vsock device with guest CID (>= 3); host\n"
          "                   programs connect to the Unix socket PATH and send\n"
          "                   \"CONNECT <port>\\n\"; guest connections to CID 2 port P\n"
          "                   go to the Unix socket PATH_P\n"
          "  --boot-timer     add the boot-timer device: when the guest writes 123 to its\n"
          "                   first byte (address in flint.boot_timer= on the command\n"
          "                   line), log \"Guest-boot-time = ...\" since process start\n"
          "  --stats          print VM exits by kind and boot timings on exit\n"
          "  --no-seccomp     run without the per-thread system call filters (for\n"
          "                   debugging only; see docs/SECURITY.md)\n"
          "  --level LEVEL    log level: Error, Warning, Info, Debug, Trace, Off\n"
          "  -h, --help       show this help\n"
          "\n"
          "Exit status: the guest's status; 1 error, 2 unexpected error, 3 guest crash\n"
          "(triple fault, halt with interrupts off, KVM internal error), 148 a thread\n"
          "made a system call its seccomp filter forbids, 152 bad configuration\n"
          "(kernel, initrd, memory), 153 bad command-line argument.\n",
          out);
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int bad(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -EINVAL;
}

static int apply_opt(enum opt_id id, const char *name, const char *val, struct vm_config *cfg,
                     char *err, size_t errlen)
{
    uint64_t n;

    switch (id) {
    case OPT_KERNEL:
        return config_set_str(&cfg->kernel_path, val);
    case OPT_INITRD:
        return config_set_str(&cfg->initrd_path, val);
    case OPT_CMDLINE:
        return config_set_str(&cfg->cmdline, val);
    case OPT_MEM:
        if (cli_parse_u64(val, 1, UINT32_MAX, &n))
            return bad(err, errlen, "%s: '%s' is not a whole number of MiB", name, val);
        cfg->mem_mib = n;
        return 0;
    case OPT_VCPUS:
        if (cli_parse_u64(val, 0, UINT32_MAX, &n))
            return bad(err, errlen, "%s: '%s' is not a whole number", name, val);
        cfg->vcpus = (unsigned)n;
        return 0;
    case OPT_LEVEL:
        if (log_parse_level(val, &cfg->level))
            return bad(err, errlen,
                       "%s: unknown level '%s' (Error, Warning, Info, Debug, Trace, Off)", name,
                       val);
        return 0;
    case OPT_STATS:
        cfg->stats = true;
        return 0;
    case OPT_NO_SECCOMP:
        cfg->seccomp = false;
        return 0;
    case OPT_BOOT_TIMER:
        cfg->boot_timer = true;
        return 0;
    case OPT_DRIVE:
        return config_add_drive(cfg, val, err, errlen);
    case OPT_NET:
        return config_add_net(cfg, val, err, errlen);
    case OPT_VSOCK:
        return config_set_vsock(cfg, val, err, errlen);
    case OPT_HELP:
        return 0;
    }
    return -EINVAL;
}

static int parse_run(int argc, char *const argv[], enum cli_action *action, struct vm_config *cfg,
                     char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *val = NULL;
        size_t namelen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t k;
        int rc;

        for (k = 0; k < ARRAY_SIZE(run_opts); k++)
            if (strlen(run_opts[k].name) == namelen && !strncmp(run_opts[k].name, arg, namelen))
                break;
        if (k == ARRAY_SIZE(run_opts))
            return bad(err, errlen, "unknown option '%s'%s; see flint --help", arg, "");
        if (run_opts[k].has_value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return bad(err, errlen, "%s: missing value%s", run_opts[k].name, "");
        } else if (eq) {
            return bad(err, errlen, "%s: takes no value%s", run_opts[k].name, "");
        }
        if (run_opts[k].id == OPT_HELP) {
            *action = CLI_HELP;
            return 0;
        }
        rc = apply_opt(run_opts[k].id, run_opts[k].name, val, cfg, err, errlen);
        if (rc)
            return rc;
    }
    *action = CLI_RUN;
    return 0;
}

int cli_parse(int argc, char *const argv[], enum cli_action *action, struct vm_config *cfg,
              char *err, size_t errlen)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (!cmd)
        return bad(err, errlen, "missing command%s%s; try `flint run` or flint --help", "", "");
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        *action = CLI_HELP;
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        *action = CLI_VERSION;
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return parse_run(argc - 2, argv + 2, action, cfg, err, errlen);
    return bad(err, errlen, "unknown command '%s'%s; see flint --help", cmd, "");
}

static bool is_file(const char *path)
{
    return access(path, R_OK) == 0;
}

int cli_default_kernel(char *buf, size_t len, char *err, size_t errlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    const char *candidates[3];
    char next_to_exe[PATH_MAX + 16];
    unsigned count = 0;

    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(next_to_exe, sizeof(next_to_exe), "%s/hello.elf", exe);
        candidates[count++] = next_to_exe;
    }
#ifdef FLINT_DATADIR
    candidates[count++] = FLINT_DATADIR "/hello.elf";
#endif
#ifdef FLINT_HELLO_BUILD_PATH
    candidates[count++] = FLINT_HELLO_BUILD_PATH;
#endif
    for (unsigned i = 0; i < count; i++) {
        if (is_file(candidates[i])) {
            snprintf(buf, len, "%s", candidates[i]);
            return 0;
        }
    }
    snprintf(err, errlen,
             "no --kernel given and the built-in hello image was not found (looked "
             "next to the flint binary and in the build tree); build it with ninja");
    return -ENOENT;
}
