/* Unit tests: command-line parsing and configuration validation. */
#include <criterion/criterion.h>

#include "cli.h"
#include "util.h"

#include <errno.h>
#include <flint-abi.h>
#include <string.h>

static struct vm_config cfg;
static char err[256];
static enum cli_action action;

static void setup(void)
{
    config_init(&cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    config_free(&cfg);
}

#define PARSE(...)                                                                                 \
    ({                                                                                             \
        char *argv[] = {"flint", __VA_ARGS__};                                                     \
        cli_parse((int)ARRAY_SIZE(argv), argv, &action, &cfg, err, sizeof(err));                   \
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

Test(cli, no_command_is_an_error)
{
    char *argv[] = {"flint"};
    cr_assert_eq(cli_parse(1, argv, &action, &cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "missing command"));
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
