/*
 * cli.c - command-line parsing: `flint run` and the Firecracker-style
 * options.
 *
 * Options take their value as `--opt VALUE` or `--opt=VALUE`. Parsing is
 * table-driven and has no global state, so it can be unit-tested.
 */
#include "cli.h"
#include "api.h"
#include "api_http.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    OPT_NO_KERNEL_UNPACK,
    OPT_NO_KERNEL_CACHE,
    OPT_HELP,
    OPT_API_SOCK,
    OPT_ID,
    OPT_CONFIG_FILE,
    OPT_NO_API,
    OPT_VERSION,
    OPT_LOG_PATH,
    OPT_SHOW_LEVEL,
    OPT_SHOW_LOG_ORIGIN,
    OPT_METRICS_PATH,
    OPT_MAX_PAYLOAD,
    OPT_HUGE_PAGES,
    OPT_SNAPSHOT_ON_SIGNAL,
    OPT_RESTORE,
    OPT_MEM_FILE,
    OPT_MMDS_SIZE_LIMIT,
    OPT_METADATA,
    OPT_RECORD_WS,
    OPT_PREFETCH,
    OPT_NO_CONSOLE_INPUT,
};

struct opt {
    const char *name;
    enum opt_id id;
    bool has_value;
};

static const struct opt run_opts[] = {
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
    {"--no-console-input", OPT_NO_CONSOLE_INPUT, false},
    {"--id", OPT_ID, true},
    {"--boot-timer", OPT_BOOT_TIMER, false},
    {"--no-kernel-unpack", OPT_NO_KERNEL_UNPACK, false},
    {"--no-kernel-cache", OPT_NO_KERNEL_CACHE, false},
    {"--huge-pages", OPT_HUGE_PAGES, true},
    {"--snapshot-on-signal", OPT_SNAPSHOT_ON_SIGNAL, true},
    {"--restore", OPT_RESTORE, true},
    {"--mem-file", OPT_MEM_FILE, true},
    {"--record-working-set", OPT_RECORD_WS, false},
    {"--prefetch", OPT_PREFETCH, false},
    {"--help", OPT_HELP, false},
    {"-h", OPT_HELP, false},
};

static const struct opt serve_opts[] = {
    {"--api-sock", OPT_API_SOCK, true},
    {"--id", OPT_ID, true},
    {"--config-file", OPT_CONFIG_FILE, true},
    {"--no-api", OPT_NO_API, false},
    {"--level", OPT_LEVEL, true},
    {"--log-path", OPT_LOG_PATH, true},
    {"--show-level", OPT_SHOW_LEVEL, false},
    {"--show-log-origin", OPT_SHOW_LOG_ORIGIN, false},
    {"--metrics-path", OPT_METRICS_PATH, true},
    {"--http-api-max-payload-size", OPT_MAX_PAYLOAD, true},
    {"--mmds-size-limit", OPT_MMDS_SIZE_LIMIT, true},
    {"--metadata", OPT_METADATA, true},
    {"--no-seccomp", OPT_NO_SECCOMP, false},
    {"--no-console-input", OPT_NO_CONSOLE_INPUT, false},
    {"--stats", OPT_STATS, false},
    {"--boot-timer", OPT_BOOT_TIMER, false},
    {"--no-kernel-unpack", OPT_NO_KERNEL_UNPACK, false},
    {"--no-kernel-cache", OPT_NO_KERNEL_CACHE, false},
    {"--help", OPT_HELP, false},
    {"-h", OPT_HELP, false},
    {"--version", OPT_VERSION, false},
};

/* Firecracker options flint does not have yet: a clear word, not "unknown". */
static const char *const later_opts[] = {
    "--seccomp-filter",    "--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us",
    "--describe-snapshot", "--module",        "--enable-pci",
};

void cli_usage(FILE *out)
{
    fputs("Usage: flint run [OPTIONS]\n"
          "       flint [--api-sock PATH] [--id ID] [--config-file FILE] [--no-api]\n"
          "             [--level LEVEL] [--log-path PATH] [--show-level]\n"
          "             [--show-log-origin] [--metrics-path PATH]\n"
          "             [--http-api-max-payload-size BYTES] [--mmds-size-limit BYTES]\n"
          "             [--metadata FILE] [--no-seccomp] [--stats]\n"
          "       flint --help | --version\n"
          "\n"
          "Boot a micro-VM under KVM. `flint run` boots at once; with no --kernel, it\n"
          "boots the built-in guest-shim hello image. Without `run`, flint acts like\n"
          "Firecracker: it serves the control API (docs/API.md) on a Unix socket and\n"
          "boots when told to, or at once from --config-file. flint exits with the\n"
          "guest's exit status.\n"
          "\n"
          "Firecracker-style options:\n"
          "  --api-sock PATH     API socket to create (default " API_DEFAULT_SOCKET ");\n"
          "                      it must not exist, and is removed at exit\n"
          "  --id ID             instance id, 1-64 letters, digits or '-' (default\n"
          "                      " API_DEFAULT_INSTANCE_ID ")\n"
          "  --config-file FILE  configure the VM from FILE (the API's bodies under\n"
          "                      'boot-source', 'drives', 'machine-config',\n"
          "                      'network-interfaces', 'vsock') and boot at once\n"
          "  --no-api            no API socket (needs --config-file)\n"
          "  --log-path PATH     log to PATH (a file, appended to, or a named pipe) in\n"
          "                      Firecracker's format instead of to stderr\n"
          "  --show-level, --show-log-origin\n"
          "                      add the level, and the source file and line, to\n"
          "                      those lines\n"
          "  --metrics-path PATH write metrics (one JSON object per line) to PATH\n"
          "  --http-api-max-payload-size BYTES\n"
          "                      the largest request body the API takes (default 51200,\n"
          "                      at most 16 MiB)\n"
          "  --mmds-size-limit BYTES\n"
          "                      the largest MMDS document, as compact JSON (default:\n"
          "                      the API payload limit)\n"
          "  --metadata FILE     put FILE's JSON into the MMDS at start\n"
          "  --level, --no-seccomp, --no-console-input, --stats, --boot-timer,\n"
          "  --no-kernel-unpack, --no-kernel-cache: as for `run`\n"
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
          "  --no-kernel-unpack\n"
          "                   boot a bzImage as it is, its decompressor running in the\n"
          "                   guest (default: flint unpacks its payload and boots the\n"
          "                   ELF vmlinux inside)\n"
          "  --no-kernel-cache\n"
          "                   unpack a bzImage in memory at every boot instead of\n"
          "                   keeping it in $FLINT_KERNEL_CACHE (default\n"
          "                   /var/cache/flint/unpacked, ~/.cache/flint/unpacked)\n"
          "  --huge-pages P   guest memory: transparent (anonymous, transparent huge\n"
          "                   pages), 2M (hugetlb: the host must have them reserved,\n"
          "                   vm.nr_hugepages; --mem even) or none (a 4 KiB memfd)\n"
          "  --snapshot-on-signal STATE,MEM\n"
          "                   on SIGUSR1: pause, write a Full snapshot (state file\n"
          "                   STATE, memory file MEM), end the VM with status 0\n"
          "  --restore STATE --mem-file MEM\n"
          "                   start from a snapshot instead of a kernel (the\n"
          "                   snapshot's configuration; --mem/--vcpus are ignored)\n"
          "  --record-working-set\n"
          "                   with --restore: when the VM ends, write the pages it\n"
          "                   touched to STATE.ws\n"
          "  --prefetch       with --restore: map STATE.ws's pages before the vCPUs run\n"
          "  --stats          print VM exits by kind, boot phases and timings on exit\n"
          "  --no-seccomp     run without the per-thread system call filters (for\n"
          "                   debugging only; see docs/SECURITY.md)\n"
          "  --no-console-input\n"
          "                   leave stdin alone (by default it feeds the guest's serial\n"
          "                   console; a terminal is put in raw mode until flint exits)\n"
          "  --level LEVEL    log level: Error, Warning, Info, Debug, Trace, Off\n"
          "  --id ID          name the VM in log lines (1-64 letters, digits or '-'); also\n"
          "                   accepted before `run`, where flint-jailer puts it\n"
          "  -h, --help       show this help\n"
          "\n"
          "Exit status: the guest's status; 1 error, 2 unexpected error, 3 guest crash\n"
          "(triple fault, halt with interrupts off, KVM internal error), 148 a thread\n"
          "made a system call its seccomp filter forbids, 152 bad configuration\n"
          "(kernel, initrd, memory, config file), 153 bad command-line argument,\n"
          "128+N after signal N (SIGINT, SIGTERM, SIGHUP) in the Firecracker style.\n",
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

static int set_vm_id(struct vm_config *cfg, const char *val, char *err, size_t errlen)
{
    if (cfg->vm_id)
        return bad(err, errlen, "--id: given twice ('%s', then '%s')", cfg->vm_id, val);
    if (!config_valid_vm_id(val))
        return bad(err, errlen, "--id: '%s' must be 1-64 letters, digits or '-'%s", val, "");
    return config_set_str(&cfg->vm_id, val);
}

static int apply_opt(enum opt_id id, const char *name, const char *val, struct vm_config *cfg,
                     struct cli_serve *serve, char *err, size_t errlen)
{
    uint64_t n;

    switch (id) {
    case OPT_API_SOCK:
        if (!val[0])
            return bad(err, errlen, "%s: empty path%s", name, "");
        return config_set_str(&serve->api_sock, val);
    case OPT_ID:
        /* The API's instance id, and the VM's name in log lines. */
        if (!api_valid_instance_id(val))
            return bad(err, errlen, "%s: '%s' must be 1-64 letters, digits or '-'", name, val);
        if (serve->id)
            return bad(err, errlen, "--id: given twice ('%s', then '%s')", serve->id, val);
        return set_vm_id(cfg, val, err, errlen) ? -EINVAL : config_set_str(&serve->id, val);
    case OPT_CONFIG_FILE:
        return config_set_str(&serve->config_file, val);
    case OPT_NO_API:
        serve->no_api = true;
        return 0;
    case OPT_VERSION:
        return 0;
    case OPT_LOG_PATH:
        if (!val[0])
            return bad(err, errlen, "%s: empty path%s", name, "");
        return config_set_str(&serve->log_path, val);
    case OPT_METRICS_PATH:
        if (!val[0])
            return bad(err, errlen, "%s: empty path%s", name, "");
        return config_set_str(&serve->metrics_path, val);
    case OPT_MAX_PAYLOAD:
        if (cli_parse_u64(val, 1, API_HTTP_MAX_BODY_LIMIT, &n))
            return bad(err, errlen, "%s: '%s' is not a number of bytes from 1 to 16777216", name,
                       val);
        serve->max_payload = (size_t)n;
        return 0;
    case OPT_MMDS_SIZE_LIMIT:
        if (cli_parse_u64(val, 1, API_HTTP_MAX_BODY_LIMIT, &n))
            return bad(err, errlen, "%s: '%s' is not a number of bytes from 1 to 16777216", name,
                       val);
        serve->mmds_size_limit = (size_t)n;
        return 0;
    case OPT_METADATA:
        if (!val[0])
            return bad(err, errlen, "%s: empty path%s", name, "");
        return config_set_str(&serve->metadata_path, val);
    case OPT_SHOW_LEVEL:
        serve->show_level = true;
        return 0;
    case OPT_SHOW_LOG_ORIGIN:
        serve->show_log_origin = true;
        return 0;
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
    case OPT_NO_CONSOLE_INPUT:
        cfg->console_input = false;
        return 0;
    case OPT_BOOT_TIMER:
        cfg->boot_timer = true;
        return 0;
    case OPT_NO_KERNEL_UNPACK:
        cfg->no_kernel_unpack = true;
        return 0;
    case OPT_NO_KERNEL_CACHE:
        cfg->no_kernel_cache = true;
        return 0;
    case OPT_HUGE_PAGES:
        /* The API's names, in any case ("transparent", "none" too). */
        for (int i = 0; config_huge_pages_names[i]; i++)
            if (!strcasecmp(val, config_huge_pages_names[i])) {
                cfg->huge_pages = (enum config_huge_pages)i;
                return 0;
            }
        return bad(err, errlen, "%s: '%s' is not a page size (transparent, 2M or none)", name, val);
    case OPT_SNAPSHOT_ON_SIGNAL: {
        const char *comma = strchr(val, ',');
        if (!comma || comma == val || !comma[1] || strchr(comma + 1, ','))
            return bad(err, errlen, "%s: '%s' is not STATE_FILE,MEM_FILE", name, val);
        return config_set_str(&cfg->snapshot_on_signal, val);
    }
    case OPT_RESTORE:
        return config_set_str(&cfg->restore_state, val);
    case OPT_MEM_FILE:
        return config_set_str(&cfg->restore_mem, val);
    case OPT_RECORD_WS:
        cfg->ws_record = true;
        return 0;
    case OPT_PREFETCH:
        cfg->ws_prefetch = true;
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

static bool later_opt(const char *arg, size_t namelen)
{
    for (size_t k = 0; k < ARRAY_SIZE(later_opts); k++)
        if (strlen(later_opts[k]) == namelen && !strncmp(later_opts[k], arg, namelen))
            return true;
    return false;
}

/* Options of one table, in any order; --help (and --version for the
 * Firecracker style) end parsing. */
static int parse_opts(int argc, char *const argv[], const struct opt *opts, size_t nopts,
                      enum cli_action *action, struct vm_config *cfg, struct cli_serve *serve,
                      char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *val = NULL;
        size_t namelen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t k;
        int rc;

        for (k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == namelen && !strncmp(opts[k].name, arg, namelen))
                break;
        if (k == nopts && later_opt(arg, namelen)) {
            snprintf(err, errlen, "%.*s: not supported by flint yet", (int)namelen, arg);
            return -EINVAL;
        }
        if (k == nopts)
            return bad(err, errlen, "unknown option '%s'%s; see flint --help", arg, "");
        if (opts[k].has_value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return bad(err, errlen, "%s: missing value%s", opts[k].name, "");
        } else if (eq) {
            return bad(err, errlen, "%s: takes no value%s", opts[k].name, "");
        }
        if (opts[k].id == OPT_HELP || opts[k].id == OPT_VERSION) {
            *action = opts[k].id == OPT_HELP ? CLI_HELP : CLI_VERSION;
            return 0;
        }
        rc = apply_opt(opts[k].id, opts[k].name, val, cfg, serve, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_serve(int argc, char *const argv[], enum cli_action *action, struct vm_config *cfg,
                       struct cli_serve *serve, char *err, size_t errlen)
{
    int rc;

    *action = CLI_SERVE;
    rc =
        parse_opts(argc, argv, serve_opts, ARRAY_SIZE(serve_opts), action, cfg, serve, err, errlen);
    if (rc || *action != CLI_SERVE)
        return rc;
    if (serve->no_api && !serve->config_file)
        return bad(err, errlen, "--no-api needs --config-file%s%s: nothing would start the VM", "",
                   "");
    if (serve->no_api && serve->api_sock)
        return bad(err, errlen, "--no-api and --api-sock%s%s contradict each other", "", "");
    return 0;
}

int cli_parse(int argc, char *const argv[], enum cli_action *action, struct vm_config *cfg,
              struct cli_serve *serve, char *err, size_t errlen)
{
    const char *cmd;
    int rc;

    /* `flint --id ID run ...`: how flint-jailer (and Firecracker's) starts it. */
    if (argc > 1 && (!strcmp(argv[1], "--id") || !strncmp(argv[1], "--id=", 5))) {
        const char *val = argv[1][4] == '=' ? argv[1] + 5 : argc > 2 ? argv[2] : NULL;
        int used = argv[1][4] == '=' ? 1 : 2;

        if (!val)
            return bad(err, errlen, "--id: missing value%s%s", "", "");
        rc = apply_opt(OPT_ID, "--id", val, cfg, serve, err, errlen);
        if (rc)
            return rc;
        argc -= used;
        argv += used;
    }
    cmd = argc > 1 ? argv[1] : NULL;

    if (cmd && (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))) {
        *action = CLI_HELP;
        return 0;
    }
    if (cmd && (!strcmp(cmd, "--version") || !strcmp(cmd, "-V"))) {
        *action = CLI_VERSION;
        return 0;
    }
    if (cmd && !strcmp(cmd, "run")) {
        *action = CLI_RUN;
        rc = parse_opts(argc - 2, argv + 2, run_opts, ARRAY_SIZE(run_opts), action, cfg, serve, err,
                        errlen);
        if (!rc && *action == CLI_RUN && !cfg->restore_state != !cfg->restore_mem)
            return bad(err, errlen, "--restore and --mem-file%s%s go together", "", "");
        if (!rc && *action == CLI_RUN && (cfg->ws_record || cfg->ws_prefetch) &&
            !cfg->restore_state)
            return bad(err, errlen, "--record-working-set and --prefetch need --restore%s%s", "",
                       "");
        /* The snapshot holds the whole VM: nothing else may describe it. */
        if (!rc && *action == CLI_RUN && cfg->restore_state &&
            (cfg->kernel_path || cfg->initrd_path || cfg->cmdline || cfg->ndrives || cfg->nnets ||
             cfg->vsock.enabled))
            return bad(err, errlen,
                       "--restore: the snapshot describes the VM; --kernel, --initrd, "
                       "--cmdline, --drive, --net and --vsock%s%s cannot be given with it",
                       "", "");
        return rc;
    }
    if (!cmd || cmd[0] == '-')
        return parse_serve(argc - 1, argv + 1, action, cfg, serve, err, errlen);
    return bad(err, errlen, "unknown command '%s'%s; see flint --help", cmd, "");
}

void cli_serve_free(struct cli_serve *serve)
{
    free(serve->api_sock);
    free(serve->id);
    free(serve->config_file);
    free(serve->log_path);
    free(serve->metrics_path);
    free(serve->metadata_path);
    memset(serve, 0, sizeof(*serve));
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
