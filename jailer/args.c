/*
 * args.c - flint-jailer's command line: Firecracker's jailer flags, parsed
 * and validated without touching the system. Flags take their value as
 * `--flag VALUE` or `--flag=VALUE`; everything after `--` is flint's.
 */
#include "jailer.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum flag_id {
    F_ID,
    F_EXEC_FILE,
    F_UID,
    F_GID,
    F_CHROOT_BASE,
    F_NETNS,
    F_DAEMONIZE,
    F_NEW_PID_NS,
    F_CGROUP,
    F_CGROUP_VERSION,
    F_PARENT_CGROUP,
    F_RESOURCE_LIMIT,
    F_HELP,
    F_VERSION,
};

static const struct {
    const char *name;
    enum flag_id id;
    bool has_value;
    bool repeatable;
} flags[] = {
    {"--id", F_ID, true, false},
    {"--exec-file", F_EXEC_FILE, true, false},
    {"--uid", F_UID, true, false},
    {"--gid", F_GID, true, false},
    {"--chroot-base-dir", F_CHROOT_BASE, true, false},
    {"--netns", F_NETNS, true, false},
    {"--daemonize", F_DAEMONIZE, false, false},
    {"--new-pid-ns", F_NEW_PID_NS, false, false},
    {"--cgroup", F_CGROUP, true, true},
    {"--cgroup-version", F_CGROUP_VERSION, true, false},
    {"--parent-cgroup", F_PARENT_CGROUP, true, false},
    {"--resource-limit", F_RESOURCE_LIMIT, true, true},
    {"--help", F_HELP, false, true},
    {"-h", F_HELP, false, true},
    {"--version", F_VERSION, false, true},
};

const char *jail_usage(void)
{
    return "Usage: flint-jailer --id ID --exec-file PATH --uid UID --gid GID [OPTIONS]\n"
           "                    [-- FLINT-ARGS...]\n"
           "       flint-jailer --help | --version\n"
           "\n"
           "Build a jail for one flint process and exec it there as\n"
           "  /<exec name> --id ID FLINT-ARGS...\n"
           "(e.g. `-- run --kernel /vmlinux --drive /rootfs.img`; paths are inside the jail).\n"
           "The jail root is <chroot-base-dir>/<exec name>/<id>/root: put the kernel and\n"
           "drive images there first (hard links or copies, readable by UID/GID).\n"
           "\n"
           "  --id ID                   1-64 letters, digits or '-' (required)\n"
           "  --exec-file PATH          a statically linked flint, copied into the jail\n"
           "                            (required)\n"
           "  --uid UID, --gid GID      who flint runs as (required)\n"
           "  --chroot-base-dir DIR     where jails are built (default " JAIL_DEFAULT_BASE ")\n"
           "  --netns PATH              join this network namespace (e.g. /var/run/netns/NAME)\n"
           "  --daemonize               detach: new session, stdio on /dev/null\n"
           "  --new-pid-ns              run flint in a new PID namespace; its PID (as seen\n"
           "                            here) goes to <jail root>/<exec name>.pid\n"
           "  --cgroup FILE=VALUE       write VALUE to FILE (e.g. memory.max=268435456) in\n"
           "                            the VM's cgroup <parent>/<id> (repeatable)\n"
           "  --cgroup-version 2        cgroup v2 only (the default; v1 is refused)\n"
           "  --parent-cgroup PATH      parent of the VM's cgroup (default: the exec name)\n"
           "  --resource-limit fsize=N | no-file=N\n"
           "                            RLIMIT_FSIZE / RLIMIT_NOFILE (default no-file=2048)\n"
           "                            (repeatable)\n"
           "  -h, --help                show this help\n"
           "  --version                 show the version\n"
           "\n"
           "Exit status: 0 once flint is started (flint's own status without --daemonize\n"
           "and --new-pid-ns, since the jailer becomes flint); 1 a step failed; 153 bad\n"
           "argument. On failure one line names the step, the path and the problem, and\n"
           "what this run created (jail files, cgroup) is removed.\n";
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

bool jail_valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > JAIL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-')
            return false;
    return true;
}

/* A path component we create: letters, digits, '.', '_', '-'; not "." or "..". */
static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > JAIL_NAME_MAX || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

/* Decimal, no sign, no junk, in [0, max]. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* An absolute path with no "." or ".." components; trailing slashes are
 * dropped into a copy. */
static int set_abs_path(const char *flag, const char *val, char **copy, char *err, size_t errlen)
{
    size_t n = strlen(val);

    if (val[0] != '/')
        return bad(err, errlen, "%s: '%s' is not an absolute path", flag, val);
    if (n >= PATH_MAX - 2 * JAIL_NAME_MAX - 16)
        return bad(err, errlen, "%s: '%.64s...' is too long", flag, val);
    for (const char *p = val; *p;) {
        size_t len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return bad(err, errlen, "%s: '%s' has a '.' or '..' component", flag, val);
        p += len;
        p += strspn(p, "/");
    }
    *copy = strdup(val);
    if (!*copy)
        return -ENOMEM;
    while (n > 1 && (*copy)[n - 1] == '/')
        (*copy)[--n] = '\0';
    return 0;
}

/* A cgroup path relative to the cgroup2 mount: name components only. */
static int check_parent_cgroup(const char *val, char *err, size_t errlen)
{
    const char *p = val;

    if (!*val || strlen(val) > 1024)
        return bad(err, errlen, "--parent-cgroup: '%.64s' must be 1-1024 bytes", val);
    for (;;) {
        size_t len = strcspn(p, "/");
        if (!valid_name(p, len))
            return bad(err, errlen,
                       "--parent-cgroup: '%s' must be a relative path of names made of "
                       "letters, digits, '.', '_' or '-' (no '.' or '..', no empty part)",
                       val);
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

/* FILE=VALUE with FILE "<controller>.<name>": lower-case letters, digits,
 * '_' and '.', so it cannot leave the cgroup directory. */
static int add_cgroup(struct jail_args *a, const char *val, char *err, size_t errlen)
{
    const char *eq = strchr(val, '='), *dot;
    size_t flen;

    if (a->ncgroups == JAIL_MAX_CGROUP_SETTING)
        return bad(err, errlen, "--cgroup: at most %d settings", JAIL_MAX_CGROUP_SETTING);
    if (!eq)
        return bad(err, errlen, "--cgroup: '%s' is not FILE=VALUE (e.g. memory.max=268435456)",
                   val);
    flen = (size_t)(eq - val);
    dot = memchr(val, '.', flen);
    if (!dot || dot == val || dot == eq - 1 || flen > JAIL_NAME_MAX)
        return bad(err, errlen,
                   "--cgroup: file '%.*s' must be <controller>.<name> (e.g. memory.max)",
                   (int)(flen > 64 ? 64 : flen), val);
    for (size_t i = 0; i < flen; i++)
        if (!islower((unsigned char)val[i]) && !isdigit((unsigned char)val[i]) &&
            !strchr("._", val[i]))
            return bad(err, errlen, "--cgroup: file '%.*s' may hold only a-z, 0-9, '_' and '.'",
                       (int)(flen > 64 ? 64 : flen), val);
    if (!eq[1] || strlen(eq + 1) > JAIL_CGROUP_VALUE_MAX || strchr(eq + 1, '\n'))
        return bad(err, errlen, "--cgroup: value for %.*s must be 1-%d bytes on one line",
                   (int)flen, val, JAIL_CGROUP_VALUE_MAX);
    for (unsigned i = 0; i < a->ncgroups; i++)
        if (strlen(a->cgroups[i].file) == flen && !strncmp(a->cgroups[i].file, val, flen))
            return bad(err, errlen, "--cgroup: %.*s is given twice", (int)flen, val);
    a->cgroups[a->ncgroups].file = strndup(val, flen);
    a->cgroups[a->ncgroups].value = strdup(eq + 1);
    a->ncgroups++;
    if (!a->cgroups[a->ncgroups - 1].file || !a->cgroups[a->ncgroups - 1].value)
        return -ENOMEM;
    return 0;
}

static int add_rlimit(struct jail_args *a, const char *val, char *err, size_t errlen)
{
    const char *eq = strchr(val, '=');
    uint64_t n;

    if (!eq || parse_u64(eq + 1, UINT64_MAX, &n))
        return bad(err, errlen, "--resource-limit: '%s' is not fsize=N or no-file=N", val);
    if ((size_t)(eq - val) == 5 && !strncmp(val, "fsize", 5)) {
        a->fsize = n;
        a->has_fsize = true;
    } else if ((size_t)(eq - val) == 7 && !strncmp(val, "no-file", 7)) {
        a->nofile = n;
    } else {
        return bad(err, errlen, "--resource-limit: unknown resource '%.*s' (fsize or no-file)",
                   (int)((size_t)(eq - val) > 64 ? 64 : eq - val), val);
    }
    return 0;
}

static int set_exec_file(struct jail_args *a, const char *val, char *err, size_t errlen)
{
    const char *slash = strrchr(val, '/'), *name = slash ? slash + 1 : val;

    if (!*val || strlen(val) >= PATH_MAX)
        return bad(err, errlen, "--exec-file: must be a path of 1 to %d bytes", PATH_MAX - 1);
    if (!valid_name(name, strlen(name)))
        return bad(err, errlen,
                   "--exec-file: the file name '%s' must be 1-%d letters, digits, '.', '_' or "
                   "'-' (it names the jail directory and the file in it)",
                   name, JAIL_NAME_MAX);
    a->exec_file = val;
    a->exec_name = name;
    return 0;
}

static int apply(struct jail_args *a, enum flag_id id, const char *name, const char *val, char *err,
                 size_t errlen)
{
    uint64_t n;

    switch (id) {
    case F_ID:
        if (!jail_valid_id(val))
            return bad(err, errlen, "--id: '%s' must be 1-%d letters, digits or '-'", val,
                       JAIL_ID_MAX);
        a->id = val;
        return 0;
    case F_EXEC_FILE:
        return set_exec_file(a, val, err, errlen);
    case F_UID:
    case F_GID:
        /* (uid_t)-1 means "unchanged" to setresuid: not a uid. */
        if (parse_u64(val, UINT32_MAX - 1, &n))
            return bad(err, errlen, "%s: '%s' is not a number from 0 to %u", name, val,
                       UINT32_MAX - 1);
        if (id == F_UID)
            a->uid = (uid_t)n;
        else
            a->gid = (gid_t)n;
        return 0;
    case F_CHROOT_BASE:
        return set_abs_path(name, val, &a->chroot_base_buf, err, errlen);
    case F_NETNS:
        if (val[0] != '/' || strlen(val) >= PATH_MAX)
            return bad(err, errlen, "%s: '%s' is not an absolute path (e.g. /var/run/netns/NAME)",
                       name, val);
        a->netns = val;
        return 0;
    case F_DAEMONIZE:
        a->daemonize = true;
        return 0;
    case F_NEW_PID_NS:
        a->new_pid_ns = true;
        return 0;
    case F_CGROUP:
        return add_cgroup(a, val, err, errlen);
    case F_CGROUP_VERSION:
        if (!strcmp(val, "1"))
            return bad(err, errlen,
                       "--cgroup-version: 1 is not supported: flint-jailer uses cgroup v2 only "
                       "(mount a cgroup2 hierarchy; Firecracker measured KVM_CREATE_VM at 27 ms "
                       "instead of 0.35 ms in a v1 jail)");
        if (strcmp(val, "2"))
            return bad(err, errlen, "--cgroup-version: '%s' is not 2", val);
        return 0;
    case F_PARENT_CGROUP:
        if (check_parent_cgroup(val, err, errlen))
            return -EINVAL;
        a->parent_cgroup = val;
        a->parent_cgroup_given = true;
        return 0;
    case F_RESOURCE_LIMIT:
        return add_rlimit(a, val, err, errlen);
    case F_HELP:
        a->help = true;
        return 0;
    case F_VERSION:
        a->version = true;
        return 0;
    }
    return -EINVAL;
}

static int check_required(const struct jail_args *a, char *err, size_t errlen)
{
    if (!a->id)
        return bad(err, errlen, "--id: missing (required)");
    if (!a->exec_file)
        return bad(err, errlen, "--exec-file: missing (required)");
    return 0;
}

int jail_args_parse(int argc, char *const argv[], struct jail_args *a, char *err, size_t errlen)
{
    bool seen[ARRAY_SIZE(flags)] = {false};
    bool uid_given = false, gid_given = false;
    int i, rc;

    memset(a, 0, sizeof(*a));
    a->nofile = JAIL_DEFAULT_NOFILE;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *val = NULL;
        size_t namelen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t k;

        if (!strcmp(arg, "--")) {
            i++;
            break;
        }
        for (k = 0; k < ARRAY_SIZE(flags); k++)
            if (strlen(flags[k].name) == namelen && !strncmp(flags[k].name, arg, namelen))
                break;
        if (k == ARRAY_SIZE(flags))
            return bad(err, errlen,
                       "%s: unknown flag (flint's arguments go after `--`; see "
                       "flint-jailer --help)",
                       arg);
        if (seen[k] && !flags[k].repeatable)
            return bad(err, errlen, "%s: given twice", flags[k].name);
        seen[k] = true;
        if (flags[k].has_value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return bad(err, errlen, "%s: missing value", flags[k].name);
        } else if (eq) {
            return bad(err, errlen, "%s: takes no value", flags[k].name);
        }
        uid_given |= flags[k].id == F_UID;
        gid_given |= flags[k].id == F_GID;
        rc = apply(a, flags[k].id, flags[k].name, val, err, errlen);
        if (rc)
            return rc;
    }
    a->extra = argv + i;
    a->nextra = argc > i ? argc - i : 0;
    if (!a->chroot_base_buf &&
        set_abs_path("--chroot-base-dir", JAIL_DEFAULT_BASE, &a->chroot_base_buf, err, errlen))
        return -ENOMEM;
    a->chroot_base = a->chroot_base_buf;
    if (!a->parent_cgroup)
        a->parent_cgroup = a->exec_name;
    if (a->help || a->version)
        return 0;
    rc = check_required(a, err, errlen);
    if (rc)
        return rc;
    if (!uid_given)
        return bad(err, errlen, "--uid: missing (required)");
    if (!gid_given)
        return bad(err, errlen, "--gid: missing (required)");
    return 0;
}

void jail_args_free(struct jail_args *a)
{
    for (unsigned i = 0; i < a->ncgroups; i++) {
        free(a->cgroups[i].file);
        free(a->cgroups[i].value);
    }
    free(a->chroot_base_buf);
    memset(a, 0, sizeof(*a));
}
