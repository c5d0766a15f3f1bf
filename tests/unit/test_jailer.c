/* Unit tests: flint-jailer's command line (jailer/args.c) and its exec file
 * check (jailer/exec_file.c), hostile values included. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "jailer.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct jail_args args;
static char err[512];

static void teardown(void)
{
    jail_args_free(&args);
}

TestSuite(jailer_args, .fini = teardown);

static int parse_argv(int argc, char **argv)
{
    jail_args_free(&args);
    err[0] = '\0';
    return jail_args_parse(argc, argv, &args, err, sizeof(err));
}

#define PARSE(...)                                                                                 \
    ({                                                                                             \
        char *argv_[] = {"flint-jailer", __VA_ARGS__};                                             \
        parse_argv((int)ARRAY_SIZE(argv_), argv_);                                                 \
    })

/* The four required flags plus whatever the test adds. */
#define PARSE_REQ(...)                                                                             \
    PARSE("--id", "vm1", "--exec-file", "/usr/bin/flint", "--uid", "1234", "--gid", "1235",        \
          __VA_ARGS__)

/* A parse that must fail with -EINVAL and a message containing needle. */
#define REFUSED(needle, ...)                                                                       \
    do {                                                                                           \
        cr_assert_eq(PARSE(__VA_ARGS__), -EINVAL, "accepted; expected '%s'", needle);              \
        cr_assert(strstr(err, needle), "message '%s' lacks '%s'", err, needle);                    \
    } while (0)

#define REFUSED_REQ(needle, ...)                                                                   \
    REFUSED(needle, "--id", "vm1", "--exec-file", "/usr/bin/flint", "--uid", "1", "--gid", "1",    \
            __VA_ARGS__)

Test(jailer_args, required_flags_and_defaults)
{
    cr_assert_eq(
        PARSE("--id", "vm-1", "--exec-file", "/usr/bin/flint", "--uid", "1234", "--gid", "1235"), 0,
        "%s", err);
    cr_assert_str_eq(args.id, "vm-1");
    cr_assert_str_eq(args.exec_file, "/usr/bin/flint");
    cr_assert_str_eq(args.exec_name, "flint");
    cr_assert_eq(args.uid, 1234);
    cr_assert_eq(args.gid, 1235);
    cr_assert_str_eq(args.chroot_base, "/srv/jailer");
    cr_assert_null(args.netns);
    cr_assert_not(args.daemonize);
    cr_assert_not(args.new_pid_ns);
    cr_assert_eq(args.ncgroups, 0);
    cr_assert_str_eq(args.parent_cgroup, "flint", "the default parent cgroup is the exec name");
    cr_assert_not(args.parent_cgroup_given);
    cr_assert_eq(args.nofile, JAIL_DEFAULT_NOFILE);
    cr_assert_not(args.has_fsize);
    cr_assert_eq(args.nextra, 0);
}

Test(jailer_args, every_flag_both_spellings)
{
    cr_assert_eq(PARSE("--id=a", "--exec-file=flint", "--uid=0", "--gid", "4294967294",
                       "--chroot-base-dir", "/var/jails//", "--netns=/var/run/netns/n1",
                       "--daemonize", "--new-pid-ns", "--cgroup", "memory.max=268435456",
                       "--cgroup=cpu.max=200000 100000", "--cgroup-version", "2",
                       "--parent-cgroup=vms/flint", "--resource-limit", "fsize=1048576",
                       "--resource-limit=no-file=64"),
                 0, "%s", err);
    cr_assert_str_eq(args.exec_name, "flint", "a bare name is its own name");
    cr_assert_eq(args.uid, 0);
    cr_assert_eq(args.gid, 4294967294u);
    cr_assert_str_eq(args.chroot_base, "/var/jails", "trailing slashes dropped");
    cr_assert_str_eq(args.netns, "/var/run/netns/n1");
    cr_assert(args.daemonize && args.new_pid_ns);
    cr_assert_eq(args.ncgroups, 2);
    cr_assert_str_eq(args.cgroups[0].file, "memory.max");
    cr_assert_str_eq(args.cgroups[0].value, "268435456");
    cr_assert_str_eq(args.cgroups[1].file, "cpu.max");
    cr_assert_str_eq(args.cgroups[1].value, "200000 100000", "the value may hold '=' and spaces");
    cr_assert_str_eq(args.parent_cgroup, "vms/flint");
    cr_assert(args.parent_cgroup_given);
    cr_assert(args.has_fsize);
    cr_assert_eq(args.fsize, 1048576);
    cr_assert_eq(args.nofile, 64);
}

Test(jailer_args, everything_after_the_separator_is_flint_s)
{
    /* args.extra points into argv, which must outlive it (PARSE's does not). */
    char *argv[] = {
        "flint-jailer", "--id", "vm1",      "--exec-file", "/f",   "--uid", "1",  "--gid", "1",
        "--",           "run",  "--kernel", "/k",          "--id", "x",     "--", "--help"};

    cr_assert_eq(parse_argv((int)ARRAY_SIZE(argv), argv), 0, "%s", err);
    cr_assert_eq(args.nextra, 7);
    cr_assert_eq(args.extra, argv + 10);
    cr_assert_str_eq(args.extra[0], "run");
    cr_assert_str_eq(args.extra[3], "--id", "not the jailer's");
    cr_assert_str_eq(args.extra[6], "--help");
    cr_assert_not(args.help);
    cr_assert_eq(PARSE_REQ("--"), 0);
    cr_assert_eq(args.nextra, 0);
}

Test(jailer_args, help_and_version_need_nothing_else)
{
    cr_assert_eq(PARSE("--help"), 0);
    cr_assert(args.help);
    cr_assert_eq(PARSE("-h"), 0);
    cr_assert(args.help);
    cr_assert_eq(PARSE("--version"), 0);
    cr_assert(args.version);
    cr_assert(strstr(jail_usage(), "--exec-file"));
}

Test(jailer_args, missing_required_flags)
{
    REFUSED("--id: missing (required)", "--exec-file", "/f", "--uid", "1", "--gid", "1");
    REFUSED("--exec-file: missing (required)", "--id", "a", "--uid", "1", "--gid", "1");
    REFUSED("--uid: missing (required)", "--id", "a", "--exec-file", "/f", "--gid", "1");
    REFUSED("--gid: missing (required)", "--id", "a", "--exec-file", "/f", "--uid", "1");
    cr_assert_eq(PARSE(), -EINVAL);
    /* After "--" they are flint's, not the jailer's. */
    REFUSED("--id: missing", "--exec-file", "/f", "--uid", "1", "--gid", "1", "--", "--id", "a");
}

Test(jailer_args, hostile_ids)
{
    static const char *const bad[] = {
        "a/b",
        "/",
        "..",
        ".",
        "",
        "../../etc",
        "a b",
        "a_b",
        "a.b",
        "vm\n1",
        "\xc3\xa9",
        "a=b",
        "0123456789012345678901234567890123456789012345678901234567890123X", /* 65 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cr_assert_eq(PARSE("--id", (char *)bad[i], "--exec-file", "/f", "--uid", "1", "--gid", "1"),
                     -EINVAL, "id '%s' accepted", bad[i]);
        cr_assert(strstr(err, "--id: '") && strstr(err, "must be 1-64 letters, digits or '-'"),
                  "%s", err);
    }
    cr_assert(jail_valid_id("0123456789012345678901234567890123456789012345678901234567890123"));
    cr_assert(jail_valid_id("-"));
    cr_assert(jail_valid_id("Vm-9"));
    cr_assert_not(jail_valid_id("a/b"));
}

Test(jailer_args, uids_and_gids_are_plain_numbers)
{
    static const char *const bad[] = {"abc", "-1", "+1",   "1x",         " 1",
                                      "1 ",  "",   "0x10", "4294967295", "99999999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        REFUSED("--uid: '", "--id", "a", "--exec-file", "/f", "--uid", (char *)bad[i], "--gid",
                "1");
        REFUSED("--gid: '", "--id", "a", "--exec-file", "/f", "--uid", "1", "--gid",
                (char *)bad[i]);
    }
    REFUSED("is not a number from 0 to 4294967294", "--id", "a", "--exec-file", "/f", "--uid",
            "root", "--gid", "1");
}

Test(jailer_args, flag_syntax_errors)
{
    REFUSED("--frobnicate: unknown flag", "--frobnicate");
    REFUSED_REQ("--kernel: unknown flag (flint's arguments go after `--`", "--kernel", "/k");
    REFUSED_REQ("--id: given twice", "--id", "b");
    REFUSED_REQ("--netns: missing value", "--netns");
    REFUSED_REQ("--daemonize: takes no value", "--daemonize=yes");
    REFUSED_REQ("unknown flag", "--i", "x");
    REFUSED_REQ("unknown flag", "-id", "x");
    REFUSED_REQ("unknown flag", "vm1");
    REFUSED_REQ("--new-pid-ns: given twice", "--new-pid-ns", "--new-pid-ns");
}

Test(jailer_args, exec_file_names_a_path_component)
{
    REFUSED("--exec-file: the file name '..'", "--id", "a", "--exec-file", "/usr/..", "--uid", "1",
            "--gid", "1");
    REFUSED("--exec-file: the file name ''", "--id", "a", "--exec-file", "/usr/bin/", "--uid", "1",
            "--gid", "1");
    REFUSED("--exec-file: the file name 'fl int'", "--id", "a", "--exec-file", "/x/fl int", "--uid",
            "1", "--gid", "1");
    REFUSED("--exec-file: must be a path", "--id", "a", "--exec-file", "", "--uid", "1", "--gid",
            "1");
    cr_assert_eq(
        PARSE("--id", "a", "--exec-file", "../build/flint-1.2_x", "--uid", "1", "--gid", "1"), 0,
        "%s", err);
    cr_assert_str_eq(args.exec_name, "flint-1.2_x");
}

Test(jailer_args, paths)
{
    REFUSED_REQ("--chroot-base-dir: 'jails' is not an absolute path", "--chroot-base-dir", "jails");
    REFUSED_REQ("has a '.' or '..' component", "--chroot-base-dir", "/srv/../etc");
    REFUSED_REQ("has a '.' or '..' component", "--chroot-base-dir", "/srv/./jailer");
    REFUSED_REQ("has a '.' or '..' component", "--chroot-base-dir", "/srv/..");
    REFUSED_REQ("--chroot-base-dir: '' is not an absolute path", "--chroot-base-dir", "");
    REFUSED_REQ("--netns: 'n1' is not an absolute path", "--netns", "n1");
    cr_assert_eq(PARSE_REQ("--chroot-base-dir", "/"), 0, "%s", err);
    cr_assert_str_eq(args.chroot_base, "/");
    cr_assert_eq(PARSE_REQ("--chroot-base-dir", "/srv/..x"), 0, "'..x' is a name: %s", err);
}

Test(jailer_args, bad_cgroup_settings)
{
    REFUSED_REQ("is not FILE=VALUE", "--cgroup", "memory.max");
    REFUSED_REQ("must be <controller>.<name>", "--cgroup", "=1");
    REFUSED_REQ("must be <controller>.<name>", "--cgroup", "memory=1");
    REFUSED_REQ("must be <controller>.<name>", "--cgroup", ".max=1");
    REFUSED_REQ("must be <controller>.<name>", "--cgroup", "memory.=1");
    REFUSED_REQ("--cgroup: file '../x.max' must be", "--cgroup", "../x.max=1");
    REFUSED_REQ("may hold only a-z, 0-9, '_' and '.'", "--cgroup", "memory/../x.max=1");
    REFUSED_REQ("may hold only a-z, 0-9, '_' and '.'", "--cgroup", "Memory.max=1");
    REFUSED_REQ("may hold only a-z, 0-9, '_' and '.'", "--cgroup", "memory.max =1");
    REFUSED_REQ("value for memory.max must be 1-256 bytes on one line", "--cgroup", "memory.max=");
    REFUSED_REQ("on one line", "--cgroup", "memory.max=1\n+cpu");
    REFUSED_REQ("--cgroup: memory.max is given twice", "--cgroup", "memory.max=1", "--cgroup",
                "memory.max=2");

    char *argv[2 + 8 + 2 * (JAIL_MAX_CGROUP_SETTING + 1)];
    char files[JAIL_MAX_CGROUP_SETTING + 1][32];
    int argc = 0;
    argv[argc++] = "flint-jailer";
    for (const char *const *p = (const char *const[]){"--id", "a", "--exec-file", "/f", "--uid",
                                                      "1", "--gid", "1", NULL};
         *p; p++)
        argv[argc++] = (char *)*p;
    for (int i = 0; i <= JAIL_MAX_CGROUP_SETTING; i++) {
        snprintf(files[i], sizeof(files[i]), "memory.f%d=1", i);
        argv[argc++] = "--cgroup";
        argv[argc++] = files[i];
    }
    cr_assert_eq(parse_argv(argc, argv), -EINVAL);
    cr_assert(strstr(err, "at most 32 settings"), "%s", err);
}

Test(jailer_args, cgroup_version_2_only)
{
    REFUSED_REQ("--cgroup-version: 1 is not supported: flint-jailer uses cgroup v2 only",
                "--cgroup-version", "1");
    REFUSED_REQ("--cgroup-version: '3' is not 2", "--cgroup-version", "3");
    REFUSED_REQ("--cgroup-version: 'v2' is not 2", "--cgroup-version", "v2");
    cr_assert_eq(PARSE_REQ("--cgroup-version", "2"), 0, "%s", err);
}

Test(jailer_args, parent_cgroup_is_relative_names)
{
    static const char *const bad[] = {"/abs", "a/../b", "a//b",  "a/", "..",
                                      ".",    "",       "a/./b", "a b"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        REFUSED_REQ("--parent-cgroup: '", "--parent-cgroup", (char *)bad[i]);
    cr_assert_eq(PARSE_REQ("--parent-cgroup", "machine.slice/flint-vms"), 0, "%s", err);
    cr_assert_str_eq(args.parent_cgroup, "machine.slice/flint-vms");
}

Test(jailer_args, bad_resource_limits)
{
    REFUSED_REQ("--resource-limit: 'fsize' is not fsize=N or no-file=N", "--resource-limit",
                "fsize");
    REFUSED_REQ("is not fsize=N or no-file=N", "--resource-limit", "fsize=abc");
    REFUSED_REQ("is not fsize=N or no-file=N", "--resource-limit", "no-file=-1");
    REFUSED_REQ("is not fsize=N or no-file=N", "--resource-limit", "no-file=");
    REFUSED_REQ("is not fsize=N or no-file=N", "--resource-limit", "fsize=1k");
    REFUSED_REQ("unknown resource 'nofile' (fsize or no-file)", "--resource-limit", "nofile=1");
    REFUSED_REQ("unknown resource 'cpu'", "--resource-limit", "cpu=1");
    cr_assert_eq(PARSE_REQ("--resource-limit", "no-file=10", "--resource-limit", "no-file=20",
                           "--resource-limit", "fsize=0"),
                 0, "%s", err);
    cr_assert_eq(args.nofile, 20, "the last one wins");
    cr_assert(args.has_fsize);
    cr_assert_eq(args.fsize, 0);
}

/* ---- the exec file check, on crafted ELF headers in a memfd ---- */

struct image {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
};

static struct image good_image(void)
{
    struct image im;

    memset(&im, 0, sizeof(im));
    memcpy(im.eh.e_ident, ELFMAG, SELFMAG);
    im.eh.e_ident[EI_CLASS] = ELFCLASS64;
    im.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    im.eh.e_ident[EI_VERSION] = EV_CURRENT;
    im.eh.e_type = ET_EXEC;
    im.eh.e_machine = EM_X86_64;
    im.eh.e_version = EV_CURRENT;
    im.eh.e_phoff = sizeof(Elf64_Ehdr);
    im.eh.e_ehsize = sizeof(Elf64_Ehdr);
    im.eh.e_phentsize = sizeof(Elf64_Phdr);
    im.eh.e_phnum = 2;
    im.ph[0].p_type = PT_LOAD;
    im.ph[1].p_type = PT_NOTE;
    return im;
}

static int check(const void *data, size_t len, char *why, size_t whylen)
{
    int fd = memfd_create("exec-file", MFD_CLOEXEC), rc;

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    why[0] = '\0';
    rc = jail_check_exec_file(fd, why, whylen);
    close(fd);
    return rc;
}

#define CHECK_REFUSED(im, len, needle)                                                             \
    do {                                                                                           \
        char why_[256];                                                                            \
        cr_assert_eq(check(&(im), (len), why_, sizeof(why_)), -ENOEXEC, "accepted");               \
        cr_assert(strstr(why_, needle), "'%s' lacks '%s'", why_, needle);                          \
    } while (0)

Test(jailer_exec_file, a_static_executable_passes)
{
    struct image im = good_image();
    char why[256];

    cr_assert_eq(check(&im, sizeof(im), why, sizeof(why)), 0, "%s", why);
    im.eh.e_type = ET_DYN; /* static-pie */
    cr_assert_eq(check(&im, sizeof(im), why, sizeof(why)), 0, "%s", why);
}

Test(jailer_exec_file, refusals_name_the_problem)
{
    struct image im = good_image();

    im.ph[1].p_type = PT_INTERP;
    CHECK_REFUSED(im, sizeof(im), "dynamically linked");
    im = good_image();
    CHECK_REFUSED(im, 10, "not an ELF executable");
    CHECK_REFUSED("#!/bin/sh\necho hi\n", 19, "not an ELF executable");
    im.eh.e_ident[EI_CLASS] = ELFCLASS32;
    CHECK_REFUSED(im, sizeof(im), "not an x86_64 ELF executable");
    im = good_image();
    im.eh.e_machine = EM_AARCH64;
    CHECK_REFUSED(im, sizeof(im), "not an x86_64 ELF executable");
    im = good_image();
    im.eh.e_type = ET_REL;
    CHECK_REFUSED(im, sizeof(im), "not an executable");
    im = good_image();
    im.eh.e_phnum = 0;
    CHECK_REFUSED(im, sizeof(im), "malformed ELF program headers");
    im = good_image();
    im.eh.e_phnum = 65535;
    CHECK_REFUSED(im, sizeof(im), "malformed ELF program headers");
    im = good_image();
    im.eh.e_phentsize = 32;
    CHECK_REFUSED(im, sizeof(im), "malformed ELF program headers");
    im = good_image();
    im.eh.e_phoff = ~0ull - 8;
    CHECK_REFUSED(im, sizeof(im), "malformed ELF program headers");
    im = good_image();
    im.eh.e_phnum = 3; /* one more than the file holds */
    CHECK_REFUSED(im, sizeof(im), "truncated ELF program headers");
}

Test(jailer_exec_file, real_files)
{
    char why[256];
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

    /* This test binary is linked dynamically. */
    cr_assert_geq(fd, 0);
    cr_assert_eq(jail_check_exec_file(fd, why, sizeof(why)), -ENOEXEC);
    cr_assert(strstr(why, "dynamically linked"), "%s", why);
    close(fd);
    fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_eq(jail_check_exec_file(fd, why, sizeof(why)), -ENOEXEC);
    cr_assert(strstr(why, "not a regular file"), "%s", why);
    close(fd);
}
