/* Unit tests: command-line parsing and configuration validation. */
#include <criterion/criterion.h>

#include "api.h"
#include "cli.h"
#include "util.h"

#include <errno.h>
#include <flint-abi.h>
#include <string.h>

static struct vm_config cfg;
static struct cli_serve serve;
static char err[256];
static enum cli_action action;

static void setup(void)
{
    config_init(&cfg);
    memset(&serve, 0, sizeof(serve));
    err[0] = '\0';
}

static void teardown(void)
{
    config_free(&cfg);
    cli_serve_free(&serve);
}

#define PARSE(...)                                                                                 \
    ({                                                                                             \
        char *argv[] = {"flint", __VA_ARGS__};                                                     \
        cli_parse((int)ARRAY_SIZE(argv), argv, &action, &cfg, &serve, err, sizeof(err));           \
    })

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, run_with_defaults)
{
    cr_assert_eq(PARSE("run"), 0);
    cr_assert_eq(action, CLI_RUN);
    cr_assert_null(cfg.kernel_path);
    cr_assert_eq(cfg.mem_mib, CONFIG_DEFAULT_MEM_MIB);
    cr_assert_eq(cfg.vcpus, 1);
    cr_assert_not(cfg.stats);
    cr_assert(cfg.seccomp);
}

Test(cli, no_seccomp_turns_the_filters_off)
{
    cr_assert_eq(PARSE("run", "--no-seccomp"), 0, "%s", err);
    cr_assert_not(cfg.seccomp);
    cr_assert_eq(PARSE("run", "--no-seccomp=1"), -EINVAL);
    cr_assert(strstr(err, "--no-seccomp: takes no value"), "%s", err);
}

Test(cli, no_console_input_leaves_stdin_alone)
{
    cr_assert_eq(PARSE("run"), 0, "%s", err);
    cr_assert(cfg.console_input, "stdin feeds the console by default");
    cr_assert_eq(PARSE("run", "--no-console-input"), 0, "%s", err);
    cr_assert_not(cfg.console_input);
    config_free(&cfg);
    cr_assert(cfg.console_input);
    cr_assert_eq(PARSE("--no-console-input", "--no-api", "--config-file", "/c"), 0, "%s", err);
    cr_assert_not(cfg.console_input, "the API mode takes it too");
    cr_assert_eq(PARSE("run", "--no-console-input=1"), -EINVAL);
}

Test(cli, all_options_both_spellings)
{
    cr_assert_eq(PARSE("run", "--kernel", "/k", "--initrd=/i", "--cmdline", "a b=c", "--mem=256",
                       "--vcpus", "4", "--stats", "--level", "debug"),
                 0, "%s", err);
    cr_assert_str_eq(cfg.kernel_path, "/k");
    cr_assert_str_eq(cfg.initrd_path, "/i");
    cr_assert_str_eq(cfg.cmdline, "a b=c");
    cr_assert_eq(cfg.mem_mib, 256);
    cr_assert_eq(cfg.vcpus, 4);
    cr_assert(cfg.stats);
    cr_assert_eq(cfg.level, LOG_DEBUG);
}

Test(cli, cmdline_value_may_contain_equals_and_be_empty)
{
    cr_assert_eq(PARSE("run", "--cmdline=x=1 y=2"), 0);
    cr_assert_str_eq(cfg.cmdline, "x=1 y=2");
    cr_assert_eq(PARSE("run", "--cmdline="), 0);
    cr_assert_str_eq(cfg.cmdline, "");
}

Test(cli, repeated_option_last_wins_without_leak)
{
    cr_assert_eq(PARSE("run", "--kernel", "/a", "--kernel", "/b"), 0);
    cr_assert_str_eq(cfg.kernel_path, "/b");
}

Test(cli, help_and_version)
{
    cr_assert_eq(PARSE("--help"), 0);
    cr_assert_eq(action, CLI_HELP);
    cr_assert_eq(PARSE("--version"), 0);
    cr_assert_eq(action, CLI_VERSION);
    cr_assert_eq(PARSE("run", "--mem", "64", "-h"), 0);
    cr_assert_eq(action, CLI_HELP);
}

Test(cli, errors_name_the_option)
{
    cr_assert_eq(PARSE("run", "--mem", "12x"), -EINVAL);
    cr_assert(strstr(err, "--mem") && strstr(err, "12x"), "%s", err);
    cr_assert_eq(PARSE("run", "--mem", "-5"), -EINVAL);
    cr_assert_eq(PARSE("run", "--mem", ""), -EINVAL);
    cr_assert_eq(PARSE("run", "--mem", "99999999999999999999999"), -EINVAL);
    cr_assert_eq(PARSE("run", "--vcpus", "two"), -EINVAL);
    cr_assert(strstr(err, "--vcpus"), "%s", err);
    cr_assert_eq(PARSE("run", "--kernel"), -EINVAL);
    cr_assert(strstr(err, "missing value"), "%s", err);
    cr_assert_eq(PARSE("run", "--stats=yes"), -EINVAL);
    cr_assert(strstr(err, "takes no value"), "%s", err);
    cr_assert_eq(PARSE("run", "--frobnicate"), -EINVAL);
    cr_assert(strstr(err, "--frobnicate"), "%s", err);
    cr_assert_eq(PARSE("run", "--level", "loud"), -EINVAL);
    cr_assert(strstr(err, "loud"), "%s", err);
    cr_assert_eq(PARSE("fly"), -EINVAL);
    cr_assert(strstr(err, "fly"), "%s", err);
    cr_assert_eq(PARSE("run", "--memory", "5"), -EINVAL, "no prefix matching");
}

Test(cli, no_arguments_serve_the_api_at_the_default_socket)
{
    char *argv[] = {"flint"};
    cr_assert_eq(cli_parse(1, argv, &action, &cfg, &serve, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(action, CLI_SERVE);
    cr_assert_null(serve.api_sock, "NULL means " API_DEFAULT_SOCKET);
    cr_assert_null(serve.config_file);
    cr_assert_not(serve.no_api);
}

Test(cli, firecracker_style_options)
{
    cr_assert_eq(PARSE("--api-sock", "/tmp/fc.sock", "--id=vm-1", "--config-file", "/c.json",
                       "--level", "Info", "--no-seccomp", "--stats"),
                 0, "%s", err);
    cr_assert_eq(action, CLI_SERVE);
    cr_assert_str_eq(serve.api_sock, "/tmp/fc.sock");
    cr_assert_str_eq(serve.id, "vm-1");
    cr_assert_str_eq(serve.config_file, "/c.json");
    cr_assert_eq(cfg.level, LOG_INFO);
    cr_assert_not(cfg.seccomp);
    cr_assert(cfg.stats);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--config-file", "/c.json", "--no-api"), 0, "%s", err);
    cr_assert(serve.no_api);
    cr_assert_eq(PARSE("--api-sock", "/x", "--version"), 0);
    cr_assert_eq(action, CLI_VERSION);
    cr_assert_eq(PARSE("--api-sock", "/x", "--help"), 0);
    cr_assert_eq(action, CLI_HELP);
}

Test(cli, boot_timer_in_both_styles)
{
    cr_assert_eq(PARSE("--boot-timer", "--no-api", "--config-file", "/c.json"), 0, "%s", err);
    cr_assert_eq(action, CLI_SERVE);
    cr_assert(cfg.boot_timer);
    config_free(&cfg);
    cli_serve_free(&serve);
    config_init(&cfg);
    cr_assert_eq(PARSE("run", "--boot-timer"), 0, "%s", err);
    cr_assert(cfg.boot_timer);
}

Test(cli, firecracker_style_errors)
{
    cr_assert_eq(PARSE("--no-api"), -EINVAL);
    cr_assert(strstr(err, "--no-api needs --config-file"), "%s", err);
    cr_assert_eq(PARSE("--no-api", "--config-file", "/c", "--api-sock", "/s"), -EINVAL);
    cr_assert(strstr(err, "contradict"), "%s", err);
    cr_assert_eq(PARSE("--id", "bad_id"), -EINVAL);
    cr_assert(strstr(err, "--id: 'bad_id' must be 1-64 letters, digits or '-'"), "%s", err);
    cr_assert_eq(PARSE("--api-sock="), -EINVAL);
    cr_assert(strstr(err, "--api-sock: empty path"), "%s", err);
    cr_assert_eq(PARSE("--api-sock"), -EINVAL);
    cr_assert(strstr(err, "missing value"), "%s", err);
    cr_assert_eq(PARSE("--seccomp-filter=/x"), -EINVAL);
    cr_assert(strstr(err, "--seccomp-filter: not supported by flint yet"), "%s", err);
    cr_assert_eq(PARSE("--metrics-path="), -EINVAL);
    cr_assert(strstr(err, "--metrics-path: empty path"), "%s", err);
    cr_assert_eq(PARSE("--log-path="), -EINVAL);
    cr_assert(strstr(err, "--log-path: empty path"), "%s", err);
    cr_assert_eq(PARSE("--kernel", "/k"), -EINVAL, "run's options belong to run");
    cr_assert(strstr(err, "unknown option '--kernel'"), "%s", err);
    cr_assert_eq(PARSE("run", "--api-sock", "/s"), -EINVAL, "and the API's not to run");
}

Test(cli, log_options)
{
    cr_assert_eq(
        PARSE("--log-path", "/tmp/fc.log", "--level", "Debug", "--show-level", "--show-log-origin"),
        0, "%s", err);
    cr_assert_eq(action, CLI_SERVE);
    cr_assert_str_eq(serve.log_path, "/tmp/fc.log");
    cr_assert_eq(cfg.level, LOG_DEBUG);
    cr_assert(serve.show_level);
    cr_assert(serve.show_log_origin);
    cr_assert_null(serve.metrics_path);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--metrics-path", "/tmp/m.fifo"), 0, "%s", err);
    cr_assert_str_eq(serve.metrics_path, "/tmp/m.fifo");
    cr_assert_eq(PARSE("--show-level=1"), -EINVAL);
    cr_assert(strstr(err, "takes no value"), "%s", err);
    cr_assert_eq(PARSE("run", "--log-path", "/x"), -EINVAL, "a serve option, not run's");
}

Test(cli, http_api_max_payload_size)
{
    cr_assert_eq(PARSE("--api-sock", "/tmp/a.sock"), 0, "%s", err);
    cr_assert_eq(serve.max_payload, 0, "unset: the API's default");
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--http-api-max-payload-size", "100000"), 0, "%s", err);
    cr_assert_eq(serve.max_payload, 100000);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--http-api-max-payload-size=16777216"), 0, "%s", err);
    cr_assert_eq(serve.max_payload, 16u << 20);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--http-api-max-payload-size", "16777217"), -EINVAL);
    cr_assert(strstr(err, "--http-api-max-payload-size: '16777217' is not a number of bytes"), "%s",
              err);
    cr_assert_eq(PARSE("--http-api-max-payload-size", "0"), -EINVAL);
    cr_assert_eq(PARSE("--http-api-max-payload-size", "1k"), -EINVAL);
    cr_assert_eq(PARSE("run", "--http-api-max-payload-size", "100"), -EINVAL, "not run's");
}

Test(cli, huge_pages_option)
{
    cr_assert_eq(PARSE("run"), 0, "%s", err);
    cr_assert_eq(cfg.huge_pages, CONFIG_DEFAULT_HUGE_PAGES);
    cr_assert_eq(PARSE("run", "--huge-pages", "2M", "--mem", "256"), 0, "%s", err);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_2M);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(PARSE("run", "--huge-pages", "None"), 0, "%s", err);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);
    cr_assert_eq(PARSE("run", "--huge-pages", "none"), 0, "%s", err);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);
    cr_assert_eq(PARSE("run", "--huge-pages", "1G"), -EINVAL);
    cr_assert(strstr(err, "--huge-pages: '1G' is not a page size (transparent, 2M or none)"), "%s",
              err);
    cr_assert_eq(PARSE("run", "--huge-pages", ""), -EINVAL);
    cr_assert_eq(PARSE("run", "--huge-pages", "transparent2"), -EINVAL);
    cr_assert_eq(PARSE("run", "--huge-pages", "2M", "--mem", "255"), 0, "%s", err);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "mem: 255 MiB is not a multiple of the 2 MiB huge page size"), "%s", err);
}

Test(cli, huge_pages_transparent_takes_any_size)
{
    cr_assert_eq(PARSE("run", "--huge-pages", "transparent", "--mem", "255"), 0, "%s", err);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_TRANSPARENT);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(PARSE("run", "--huge-pages", "Transparent"), 0, "%s", err);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_TRANSPARENT);
}

Test(cli, number_parser_bounds)
{
    uint64_t v;
    cr_assert_eq(cli_parse_u64("0", 0, 10, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(cli_parse_u64("10", 0, 10, &v), 0);
    cr_assert_eq(cli_parse_u64("11", 0, 10, &v), -EINVAL);
    cr_assert_eq(cli_parse_u64("+1", 0, 10, &v), -EINVAL);
    cr_assert_eq(cli_parse_u64(" 1", 0, 10, &v), -EINVAL);
    cr_assert_eq(cli_parse_u64("1 ", 0, 10, &v), -EINVAL);
    cr_assert_eq(cli_parse_u64("0x1", 0, 10, &v), -EINVAL);
    cr_assert_eq(cli_parse_u64(NULL, 0, 10, &v), -EINVAL);
}

Test(config, validation_names_the_field, .init = setup, .fini = teardown)
{
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0);
    cfg.vcpus = 0;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "vcpus"));
    cfg.vcpus = CONFIG_MAX_VCPUS + 1;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cfg.vcpus = CONFIG_MAX_VCPUS;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0);
    cfg.mem_mib = 1;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "mem"));
    cfg.mem_mib = CONFIG_MAX_MEM_MIB + 1;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cfg.mem_mib = 128;
    char big[FLINT_CMDLINE_MAX + 1];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(config_set_str(&cfg.cmdline, big), 0);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "cmdline"));
}

Test(log, level_names_parse_case_insensitively)
{
    enum log_level l;
    cr_assert_eq(log_parse_level("Warning", &l), 0);
    cr_assert_eq(l, LOG_WARN);
    cr_assert_eq(log_parse_level("TRACE", &l), 0);
    cr_assert_eq(l, LOG_TRACE);
    cr_assert_eq(log_parse_level("off", &l), 0);
    cr_assert_eq(l, LOG_OFF);
    cr_assert_eq(log_parse_level("verbose", &l), -EINVAL);
}

Test(log, ratelimit_allows_burst_then_blocks)
{
    struct log_ratelimit rl = {0};
    unsigned allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += log_ratelimit(&rl, 5);
    /* At most two windows can elapse during the loop. */
    cr_assert(allowed >= 5 && allowed <= 10, "allowed %u", allowed);
}

Test(cli, net_options)
{
    cr_assert_eq(PARSE("run", "--net", "tap0", "--net=tap1,mac=02:AB:cd:00:11:ff,id=eth_1"), 0,
                 "%s", err);
    cr_assert_eq(cfg.nnets, 2);
    cr_assert_str_eq(cfg.nets[0].tap, "tap0");
    cr_assert_str_eq(cfg.nets[0].id, "net0");
    cr_assert_not(cfg.nets[0].has_mac);
    cr_assert_str_eq(cfg.nets[1].id, "eth_1");
    cr_assert(cfg.nets[1].has_mac);
    cr_assert_arr_eq(cfg.nets[1].mac, ((uint8_t[]){0x02, 0xab, 0xcd, 0x00, 0x11, 0xff}), 6);
}

Test(cli, net_errors_name_the_problem)
{
    static const struct {
        const char *arg, *needle;
    } cases[] = {
        {",mac=02:00:00:00:00:01", "missing tap"},
        {"tap0,mac=01:00:00:00:00:01", "not multicast"},
        {"tap0,mac=02:00:00:00:00", "mac '02:00:00:00:00'"},
        {"tap0,mac=02:00:00:00:00:0g", "six hex bytes"},
        {"tap0,mac=02:00:00:00:00:011", "six hex bytes"},
        {"tap0,id=a/b", "id 'a/b'"},
        {"tap0,speed=10", "unknown option 'speed=10'"},
        {"a_name_far_too_long_for_ifnamsiz", "not a valid interface name"},
        {"../x", "not a valid interface name"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        config_free(&cfg);
        err[0] = '\0';
        cr_assert_eq(PARSE("run", "--net", (char *)cases[i].arg), -EINVAL, "%s", cases[i].arg);
        cr_assert(strstr(err, cases[i].needle), "'%s' -> '%s'", cases[i].arg, err);
        cr_assert_eq(cfg.nnets, 0);
    }
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--net", "tap0", "--net", "tap0"), -EINVAL);
    cr_assert(strstr(err, "used twice"), "%s", err);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--net", "tap0,id=x", "--net", "tap1,id=x"), -EINVAL);
    cr_assert(strstr(err, "id 'x' is used twice"), "%s", err);
}

Test(cli, net_limit)
{
    for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "tap%u", i);
        cr_assert_eq(config_add_net(&cfg, name, err, sizeof(err)), 0, "%s", err);
    }
    cr_assert_eq(config_add_net(&cfg, "tapx", err, sizeof(err)), -ENOSPC);
    cr_assert(strstr(err, "at most"), "%s", err);
}

Test(cli, vsock_option)
{
    cr_assert_eq(PARSE("run", "--vsock", "3,/tmp/v.sock"), 0, "%s", err);
    cr_assert(cfg.vsock.enabled);
    cr_assert_eq(cfg.vsock.guest_cid, 3);
    cr_assert_str_eq(cfg.vsock.uds_path, "/tmp/v.sock");
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--vsock=4294967294,/a,b"), 0, "%s", err);
    cr_assert_eq(cfg.vsock.guest_cid, 4294967294u);
    cr_assert_str_eq(cfg.vsock.uds_path, "/a,b");
}

Test(cli, vsock_errors_name_the_problem)
{
    static const struct {
        const char *arg, *needle;
    } cases[] = {
        {"2,/tmp/v", "CID from 3"},         {"4294967295,/tmp/v", "CID from 3"},
        {"-3,/tmp/v", "CID from 3"},        {"3", "CID,PATH"},
        {"3x,/tmp/v", "CID,PATH"},          {"3,", "missing Unix socket path"},
        {"99999999999999999999,/v", "CID"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        config_free(&cfg);
        err[0] = '\0';
        cr_assert_eq(PARSE("run", "--vsock", (char *)cases[i].arg), -EINVAL, "%s", cases[i].arg);
        cr_assert(strstr(err, cases[i].needle), "'%s' -> '%s'", cases[i].arg, err);
        cr_assert_not(cfg.vsock.enabled);
    }
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '3';
    longpath[1] = ',';
    longpath[sizeof(longpath) - 1] = '\0';
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--vsock", longpath), -EINVAL);
    cr_assert(strstr(err, "too long"), "%s", err);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--vsock", "3,/a", "--vsock", "4,/b"), -EINVAL);
    cr_assert(strstr(err, "only one"), "%s", err);
}

Test(cli, id_before_the_command_or_as_a_run_option)
{
    cr_assert_eq(PARSE("--id", "vm-1", "run", "--mem", "64"), 0, "%s", err);
    cr_assert_eq(action, CLI_RUN);
    cr_assert_str_eq(cfg.vm_id, "vm-1");
    cr_assert_eq(cfg.mem_mib, 64);
    config_free(&cfg);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--id=A-b-9", "run"), 0, "%s", err);
    cr_assert_str_eq(cfg.vm_id, "A-b-9");
    config_free(&cfg);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("run", "--id", "x"), 0, "%s", err);
    cr_assert_str_eq(cfg.vm_id, "x");
    config_free(&cfg);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("run"), 0);
    cr_assert_null(cfg.vm_id);
}

Test(cli, id_errors)
{
    char long_id[CONFIG_VM_ID_MAX + 2];

    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    cr_assert_eq(PARSE("--id", "a/b", "run"), -EINVAL);
    cr_assert(strstr(err, "--id: 'a/b' must be 1-64 letters, digits or '-'"), "%s", err);
    cr_assert_eq(PARSE("--id", "..", "run"), -EINVAL);
    cr_assert_eq(PARSE("--id", "a_b", "run"), -EINVAL);
    cr_assert_eq(PARSE("--id", "", "run"), -EINVAL);
    cr_assert_eq(PARSE("--id", long_id, "run"), -EINVAL);
    long_id[CONFIG_VM_ID_MAX] = '\0';
    cr_assert_eq(PARSE("--id", long_id, "run"), 0, "64 characters are allowed: %s", err);
    cr_assert_eq(PARSE("run", "--id", "b"), -EINVAL, "a second --id");
    cr_assert(strstr(err, "given twice"), "%s", err);
    config_free(&cfg);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("--id"), -EINVAL);
    cr_assert(strstr(err, "--id: missing value"), "%s", err);
    /* Without `run`, Firecracker style: the API serves instance "a". */
    cr_assert_eq(PARSE("--id", "a"), 0, "%s", err);
    cr_assert_eq(action, CLI_SERVE);
    cr_assert_str_eq(serve.id, "a");
    cr_assert_str_eq(cfg.vm_id, "a");
    config_free(&cfg);
    cli_serve_free(&serve);
    cr_assert_eq(PARSE("run", "--id"), -EINVAL);
}

Test(cli, snapshot_options)
{
    cr_assert_eq(PARSE("run", "--snapshot-on-signal", "/s,/m"), 0, "%s", err);
    cr_assert_str_eq(cfg.snapshot_on_signal, "/s,/m");
    cr_assert_eq(PARSE("run", "--restore", "/s", "--mem-file", "/m"), 0, "%s", err);
    cr_assert_str_eq(cfg.restore_state, "/s");
    cr_assert_str_eq(cfg.restore_mem, "/m");
}

Test(cli, snapshot_options_refused)
{
    static const char *const specs[] = {"/s", ",/m", "/s,", "/s,/m,/x"};

    for (size_t i = 0; i < ARRAY_SIZE(specs); i++) {
        cr_assert_eq(PARSE("run", "--snapshot-on-signal", (char *)specs[i]), -EINVAL, "%s",
                     specs[i]);
        cr_assert(strstr(err, "STATE_FILE,MEM_FILE"), "%s", err);
        config_free(&cfg);
    }
    cr_assert_eq(PARSE("run", "--restore", "/s"), -EINVAL);
    cr_assert(strstr(err, "go together"), "%s", err);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--mem-file", "/m"), -EINVAL);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--restore", "/s", "--mem-file", "/m", "--kernel", "/k"), -EINVAL);
    cr_assert(strstr(err, "the snapshot describes the VM"), "%s", err);
}

Test(cli, working_set_options)
{
    cr_assert_eq(PARSE("run", "--restore", "/s", "--mem-file", "/m", "--record-working-set"), 0,
                 "%s", err);
    cr_assert(cfg.ws_record && !cfg.ws_prefetch);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--restore", "/s", "--mem-file", "/m", "--prefetch"), 0, "%s", err);
    cr_assert(cfg.ws_prefetch && !cfg.ws_record);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--kernel", "/k", "--prefetch"), -EINVAL);
    cr_assert(strstr(err, "need --restore"), "%s", err);
    config_free(&cfg);
    cr_assert_eq(PARSE("run", "--kernel", "/k", "--record-working-set"), -EINVAL);
    cr_assert(strstr(err, "need --restore"), "%s", err);
}
