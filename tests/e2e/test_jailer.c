/*
 * End-to-end tests: flint-jailer. A guest boots under the jailer with a
 * drive, a tap in a named network namespace and vsock, and while it runs
 * the test looks at flint from outside: its uid, gid and capabilities, its
 * root (the jail and nothing else), its mount, PID and network namespaces,
 * its cgroup and the limits written there, its rlimits and every open fd.
 * Daemonized and plain runs check what those modes promise. Failures (bad
 * flags, a missing or dynamic exec file, an id with a slash, an existing
 * jail or cgroup, a cgroup that cannot be made, a network namespace that is
 * not one, an exec that fails after every other step, a caller who is not
 * root) must exit nonzero with one line naming the step and the path, and
 * leave nothing of theirs behind.
 *
 * The jailer needs root: CI runs these as root in the sandbox
 * (tests/kvm-run). Each test works in a directory, a parent cgroup and a
 * network namespace of its own, removed by the fixture's fini.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S  240.0 /* the nested sandbox is slow */
#define JAILER     FLINT_JAILER_BIN
#define LINGER     GUEST_DIR "/linger.elf"
#define JAIL_UID   1234
#define JAIL_UID_S "1234"
#define CGROUP_MNT "/sys/fs/cgroup"
#define TAP        "tapj"
/* Long enough for the checks while it runs, short for the sandbox. */
#define LINGER_MS "ms=8000"

extern char **environ;

/* ---- per-test scratch space, removed whatever happens ---- */

static struct {
    char base[128];   /* --chroot-base-dir */
    char parent[64];  /* --parent-cgroup, under CGROUP_MNT */
    char netns[64];   /* a named network namespace, or "" */
    char noexec[128]; /* a noexec tmpfs mount point, or "" */
    pid_t flint;      /* killed on the way out, if still there */
} S;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static const char *ip_tool(void)
{
    static const char *const paths[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* Run argv (NULL-terminated); its status. */
static int run_quiet(char **argv)
{
    struct flint_result r = run_cmd(argv, 60);
    int st = r.timed_out ? -1 : r.status;
    flint_result_free(&r);
    return st;
}

/* Remove the parent cgroup and whatever the jailer made in it. */
static void rm_cgroups(void)
{
    char path[256];
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), CGROUP_MNT "/%s", S.parent);
    d = opendir(path);
    if (!d)
        return;
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
            char child[sizeof(path) + 256];
            snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
            rmdir(child);
        }
    closedir(d);
    rmdir(path);
}

static void setup(void)
{
    memset(&S, 0, sizeof(S));
    snprintf(S.base, sizeof(S.base), "/tmp/flint-jailer-e2e.%d", (int)getpid());
    snprintf(S.parent, sizeof(S.parent), "flint-e2e-%d", (int)getpid());
    rm_tree(S.base);
    mkdir(S.base, 0755);
}

static void teardown(void)
{
    if (S.flint > 0) {
        kill(S.flint, SIGKILL);
        waitpid(S.flint, NULL, 0);
    }
    rm_tree(S.base);
    if (S.noexec[0]) {
        umount2(S.noexec, MNT_DETACH);
        rmdir(S.noexec);
    }
    /* A cgroup empties a moment after its last process died. */
    for (int i = 0; i < 100; i++) {
        char path[128];
        rm_cgroups();
        snprintf(path, sizeof(path), CGROUP_MNT "/%s", S.parent);
        if (access(path, F_OK))
            break;
        usleep(20000);
    }
    if (S.netns[0] && ip_tool())
        run_quiet((char *[]){(char *)ip_tool(), "netns", "del", S.netns, NULL});
}

TestSuite(jailer, .init = setup, .fini = teardown, .timeout = 600);

static void require_root_and_static_flint(void)
{
    if (geteuid() != 0)
        cr_skip_test("flint-jailer needs root (CI runs the end-to-end tests as root)");
#ifndef FLINT_STATIC_BIN
    cr_skip_test("no static flint in sanitizer builds (jailer/meson.build)");
#endif
    cr_assert_eq(access(CGROUP_MNT "/cgroup.controllers", R_OK), 0,
                 "no cgroup v2 at " CGROUP_MNT " (%s)", strerror(errno));
}

#ifndef FLINT_STATIC_BIN
#define FLINT_STATIC_BIN "/nonexistent/flint"
#endif

/* ---- small file helpers ---- */

static char *path_in(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char *path_in(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return buf;
}

static void mkdir_p(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    cr_assert(mkdir(tmp, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", tmp, strerror(errno));
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, len), (ssize_t)len, "%s", path);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void copy_file(const char *src, const char *dst)
{
    static char buf[1 << 20];
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", src, strerror(errno));
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    cr_assert(n > 0 && n < (ssize_t)sizeof(buf), "%s: %zd bytes", src, n);
    write_file(dst, buf, (size_t)n, 0644);
}

/* The first line of a small file, without its newline; "" when missing. */
static char *read_line(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static unsigned entries(const char *dir, char *names, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned n = 0;
    size_t used = 0;

    names[0] = '\0';
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (used < len)
            used += (size_t)snprintf(names + used, len - used, "%s ", e->d_name);
    }
    closedir(d);
    return n;
}

/* The value of "Key:" in a /proc status file ("" if absent). */
static char *status_field(const char *status, const char *key, char *out, size_t len)
{
    const char *p = strstr(status, key);
    out[0] = '\0';
    if (!p)
        return out;
    p += strlen(key);
    p += strspn(p, " \t");
    size_t n = strcspn(p, "\n");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        out[--n] = '\0';
    return out;
}

/* ---- building argv ---- */

struct args {
    char *v[96];
    int n;
};

static void add(struct args *a, ...)
{
    va_list ap;
    va_start(ap, a);
    for (char *s; (s = va_arg(ap, char *));) {
        cr_assert_lt(a->n, 95);
        a->v[a->n++] = s;
    }
    va_end(ap);
    a->v[a->n] = NULL;
}

/* The jailer with the required flags, this test's base dir and exec_file. */
static struct args jailer_args(const char *id, const char *exec_file)
{
    struct args a = {.n = 0};
    add(&a, JAILER, "--id", id, "--exec-file", exec_file, "--uid", JAIL_UID_S, "--gid", JAIL_UID_S,
        "--chroot-base-dir", S.base, NULL);
    return a;
}

static char *jail_root(char *buf, size_t len, const char *id)
{
    return path_in(buf, len, "%s/flint/%s/root", S.base, id);
}

/* Wait for pid (a child, or an orphan we are the subreaper of); its status. */
static int wait_exit(pid_t pid, struct live *l)
{
    double end = now_s() + TIMEOUT_S;
    int st;

    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        cr_assert_neq(w, -1, "waitpid %d: %s", (int)pid, strerror(errno));
        if (w == pid)
            break;
        if (now_s() > end)
            kill(pid, SIGKILL);
        if (!l || !live_pump(l, 50))
            usleep(50000);
    }
    while (l && live_pump(l, 50))
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static pid_t read_pid_file(const char *root)
{
    char path[512], line[32];
    double end = now_s() + 30;

    path_in(path, sizeof(path), "%s/flint.pid", root);
    while (!read_line(path, line, sizeof(line))[0])
        cr_assert(now_s() < end, "no pid file %s", path);
    int pid = atoi(line);
    cr_assert_gt(pid, 1, "pid file holds '%s'", line);
    return pid;
}

/* ---- what flint looks like from outside ---- */

static void expect_identity(pid_t pid, bool new_pid_ns)
{
    char path[64], status[4096], v[256], want[64];

    path_in(path, sizeof(path), "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    ssize_t n = read(fd, status, sizeof(status) - 1);
    close(fd);
    cr_assert_gt(n, 0);
    status[n] = '\0';
    cr_expect_str_eq(status_field(status, "\nUid:", v, sizeof(v)), "1234\t1234\t1234\t1234");
    cr_expect_str_eq(status_field(status, "\nGid:", v, sizeof(v)), "1234\t1234\t1234\t1234");
    cr_expect_str_eq(status_field(status, "\nGroups:", v, sizeof(v)), "",
                     "no supplementary groups");
    cr_expect_str_eq(status_field(status, "\nCapPrm:", v, sizeof(v)), "0000000000000000");
    cr_expect_str_eq(status_field(status, "\nCapEff:", v, sizeof(v)), "0000000000000000");
    cr_expect_str_eq(status_field(status, "\nCapAmb:", v, sizeof(v)), "0000000000000000");
    if (new_pid_ns) {
        snprintf(want, sizeof(want), "%d\t1", (int)pid);
        cr_expect_str_eq(status_field(status, "\nNSpid:", v, sizeof(v)), want,
                         "pid 1 of a namespace of its own");
    }
}

static ino_t ns_ino(pid_t pid, const char *ns)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_ino;
}

static void expect_root_is_the_jail(pid_t pid, const char *root)
{
    char path[64], names[512];
    struct stat a, b;

    snprintf(path, sizeof(path), "/proc/%d/root/", (int)pid);
    cr_assert_eq(stat(path, &a), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(stat(root, &b), 0);
    cr_expect(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "flint's / is not %s", root);
    unsigned n = entries(path, names, sizeof(names));
    /* Only the jail: no /proc, /etc, /usr, no old root. */
    cr_expect_eq(n, 6, "flint sees: %s", names);
    for (const char *want = "dev disk.img flint flint.pid linger.elf run"; *want;) {
        char name[32], probe[128];
        size_t len = strcspn(want, " ");
        snprintf(name, sizeof(name), "%.*s", (int)len, want);
        cr_expect(exists(path_in(probe, sizeof(probe), "%s%s", path, name)), "no %s in %s", name,
                  names);
        want += len + (want[len] == ' ');
    }
}

static void expect_cgroup(pid_t pid, const char *id)
{
    char path[256], line[256], want[160];
    const char *files[][2] = {
        {"memory.max", "268435456"}, {"pids.max", "64"}, {"cpu.max", "200000 100000"}};

    snprintf(want, sizeof(want), "0::/%s/%s", S.parent, id);
    read_line(path_in(path, sizeof(path), "/proc/%d/cgroup", (int)pid), line, sizeof(line));
    cr_expect_str_eq(line, want);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        path_in(path, sizeof(path), CGROUP_MNT "/%s/%s/%s", S.parent, id, files[i][0]);
        cr_expect_str_eq(read_line(path, line, sizeof(line)), files[i][1], "%s", path);
    }
    read_line(path_in(path, sizeof(path), CGROUP_MNT "/%s/cgroup.subtree_control", S.parent), line,
              sizeof(line));
    cr_expect(strstr(line, "memory") && strstr(line, "pids") && strstr(line, "cpu"), "%s: '%s'",
              path, line);
}

static void expect_rlimits(pid_t pid)
{
    struct rlimit r;
    cr_assert_eq(prlimit(pid, RLIMIT_NOFILE, NULL, &r), 0);
    cr_expect(r.rlim_cur == 256 && r.rlim_max == 256, "NOFILE %llu/%llu",
              (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
    cr_assert_eq(prlimit(pid, RLIMIT_FSIZE, NULL, &r), 0);
    cr_expect(r.rlim_cur == 1073741824 && r.rlim_max == 1073741824, "FSIZE %llu",
              (unsigned long long)r.rlim_cur);
}

static bool same_file(const struct stat *a, const char *path)
{
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* Every fd of flint is one it made for the VM (KVM, the guest's RAM,
 * eventfds, io_uring, the tap, the drive, the vsock socket) or the stdio
 * the test gave it; nothing of the test's or the jailer's leaks in. */
static void expect_only_vm_fds(pid_t pid, const char *root)
{
    char dir[64], path[96], target[256], list[4096] = "", p[512];
    unsigned kvm = 0, tun = 0, disk = 0, sock = 0, bad = 0;
    struct dirent *e;
    size_t used = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    while ((e = readdir(d))) {
        struct stat st;
        int fd = atoi(e->d_name);
        bool ok = false;
        if (e->d_name[0] == '.')
            continue;
        path_in(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0 || stat(path, &st))
            continue; /* closed meanwhile */
        target[n] = '\0';
        if (fd <= 2) {
            ok = !strncmp(target, "pipe:", 5) || !strcmp(target, "/dev/null");
        } else if (!strncmp(target, "anon_inode:", 11) ||
                   !strncmp(target, "/memfd:flint-guest-ram", 22)) {
            ok = true;
        } else if (!strncmp(target, "socket:", 7)) {
            ok = true;
            sock++;
        } else if (same_file(&st, path_in(p, sizeof(p), "%s/dev/kvm", root))) {
            ok = kvm++ == 0;
        } else if (same_file(&st, path_in(p, sizeof(p), "%s/dev/net/tun", root))) {
            ok = tun++ == 0;
            char info[512];
            path_in(p, sizeof(p), "/proc/%d/fdinfo/%d", (int)pid, fd);
            int ifd = open(p, O_RDONLY | O_CLOEXEC);
            ssize_t k = ifd < 0 ? 0 : read(ifd, info, sizeof(info) - 1);
            if (ifd >= 0)
                close(ifd);
            info[k > 0 ? k : 0] = '\0';
            cr_expect(strstr(info, "iff:\t" TAP), "the tun fd is not on " TAP ":\n%s", info);
        } else if (same_file(&st, path_in(p, sizeof(p), "%s/disk.img", root))) {
            ok = disk++ == 0;
        }
        bad += !ok;
        used += (size_t)snprintf(list + used, sizeof(list) - used, "  %d -> %s%s\n", fd, target,
                                 ok ? "" : "   <- unexpected");
        if (used >= sizeof(list))
            used = sizeof(list) - 1;
    }
    closedir(d);
    cr_expect_eq(bad, 0, "fds of flint:\n%s", list);
    cr_expect(kvm == 1 && tun == 1 && disk == 1 && sock >= 1,
              "expected /dev/kvm, /dev/net/tun, the drive and the vsock socket:\n%s", list);
}

static void expect_vsock_socket(const char *root)
{
    char path[256];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;

    path_in(path, sizeof(path), "%s/run/v.sock", root);
    cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
    cr_expect(S_ISSOCK(st.st_mode) && st.st_uid == JAIL_UID, "%s: mode %o uid %u", path, st.st_mode,
              st.st_uid);
    cr_assert_lt(strlen(path), sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_expect_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0,
                 "connect %s: %s (flint's vsock listener)", path, strerror(errno));
    close(fd);
}

/* A named network namespace with a tap the jailed uid may attach to. */
static void netns_with_tap(void)
{
    const char *ip = ip_tool();

    cr_assert_not_null(ip, "iproute2's ip is missing: install iproute2 (tools/install-deps)");
    snprintf(S.netns, sizeof(S.netns), "flintj%d", (int)getpid());
    cr_assert_eq(run_quiet((char *[]){(char *)ip, "netns", "add", S.netns, NULL}), 0,
                 "ip netns add");
    cr_assert_eq(
        run_quiet((char *[]){(char *)ip, "-n", S.netns, "tuntap", "add", "dev", TAP, "mode", "tap",
                             "user", JAIL_UID_S, "group", JAIL_UID_S, NULL}),
        0, "ip tuntap add");
}

/* The kernel and a drive, placed in the jail root before the jailer runs,
 * as a user does. */
static void place_guest_files(const char *root)
{
    char path[512];
    static char disk[64 * 1024];

    mkdir_p(root);
    copy_file(LINGER, path_in(path, sizeof(path), "%s/linger.elf", root));
    memset(disk, 0x5a, sizeof(disk));
    write_file(path_in(path, sizeof(path), "%s/disk.img", root), disk, sizeof(disk), 0600);
    cr_assert_eq(chown(path, JAIL_UID, JAIL_UID), 0);
}

Test(jailer, guest_runs_confined)
{
    char root[256], netns_path[128];
    struct live l;
    struct stat st;

    require_root_and_static_flint();
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0, "flint is reparented to the test");
    netns_with_tap();
    jail_root(root, sizeof(root), "vm-a");
    place_guest_files(root);
    snprintf(netns_path, sizeof(netns_path), "/var/run/netns/%s", S.netns);

    struct args a = jailer_args("vm-a", FLINT_STATIC_BIN);
    add(&a, "--netns", netns_path, "--new-pid-ns", "--parent-cgroup", S.parent, "--cgroup",
        "memory.max=268435456", "--cgroup", "pids.max=64", "--cgroup", "cpu.max=200000 100000",
        "--resource-limit", "no-file=256", "--resource-limit", "fsize=1073741824", "--", "run",
        "--kernel", "/linger.elf", "--cmdline", LINGER_MS, "--mem", "32", "--drive", "/disk.img",
        "--net", TAP, "--vsock", "3,/run/v.sock", NULL);
    /* An fd without O_CLOEXEC, as a careless caller leaves one: the jailer
     * must close it. */
    int leak = open(S.base, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(leak, 3);
    live_start(&l, a.v);
    close(leak);

    /* With --new-pid-ns the jailer exits once flint runs. */
    int jst = wait_exit(l.pid, NULL);
    cr_assert_eq(jst, 0, "jailer status %d\nstderr:\n%s", jst, l.err);
    live_wait_for(&l, "linger: up");
    pid_t pid = read_pid_file(root);
    S.flint = pid;

    expect_identity(pid, true);
    cr_expect_neq(ns_ino(pid, "mnt"), ns_ino(getpid(), "mnt"), "a mount namespace of its own");
    cr_expect_neq(ns_ino(pid, "pid"), ns_ino(getpid(), "pid"), "a PID namespace of its own");
    cr_assert_eq(stat(netns_path, &st), 0);
    cr_expect_eq(ns_ino(pid, "net"), st.st_ino, "in --netns %s", netns_path);
    expect_root_is_the_jail(pid, root);
    expect_cgroup(pid, "vm-a");
    expect_rlimits(pid);
    expect_only_vm_fds(pid, root);
    expect_vsock_socket(root);

    int status = wait_exit(pid, &l);
    S.flint = 0;
    cr_assert_eq(status, 0, "flint status %d\nstdout:\n%s\nstderr:\n%s", status, l.out, l.err);
    cr_assert(strstr(l.out, "linger: done"), "stdout:\n%s", l.out);
    cr_assert_eq(l.err[0], '\0', "stderr:\n%s", l.err);
}

Test(jailer, daemonized_flint_has_null_stdio_and_a_session_of_its_own)
{
    char root[256], path[128], target[64];

    require_root_and_static_flint();
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    jail_root(root, sizeof(root), "vm-d");
    place_guest_files(root);
    struct args a = jailer_args("vm-d", FLINT_STATIC_BIN);
    add(&a, "--daemonize", "--new-pid-ns", "--", "run", "--kernel", "/linger.elf", "--cmdline",
        LINGER_MS, "--mem", "32", NULL);
    struct flint_result r = run_cmd(a.v, TIMEOUT_S);
    cr_assert_eq(r.status, 0, "status %d\nstderr:\n%s", r.status, r.err);
    cr_assert_eq(r.out[0], '\0', "the daemon writes nothing here: %s", r.out);
    cr_assert_eq(r.err[0], '\0', "%s", r.err);
    flint_result_free(&r);

    pid_t pid = read_pid_file(root);
    S.flint = pid;
    expect_identity(pid, true);
    for (int fd = 0; fd <= 2; fd++) {
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        cr_assert_gt(n, 0, "%s: %s", path, strerror(errno));
        target[n] = '\0';
        cr_expect_str_eq(target, "/dev/null", "fd %d", fd);
    }
    pid_t sid = getsid(pid);
    cr_expect(sid > 0 && sid != getsid(0), "flint's session %d is the test's", (int)sid);
    cr_expect_neq(sid, pid, "not a session leader: it cannot get a terminal back");
    int status = wait_exit(pid, NULL);
    S.flint = 0;
    cr_assert_eq(status, 0, "flint status %d", status);
}

Test(jailer, without_forks_the_jailer_becomes_flint)
{
    char root[256], path[512];

    require_root_and_static_flint();
    jail_root(root, sizeof(root), "vm-p");
    mkdir_p(root);
    copy_file(HELLO_ELF, path_in(path, sizeof(path), "%s/hello.elf", root));

    struct args a = jailer_args("vm-p", FLINT_STATIC_BIN);
    add(&a, "--", "run", "--kernel", "/hello.elf", NULL);
    struct flint_result r = run_cmd(a.v, TIMEOUT_S);
    cr_assert_eq(r.status, 0, "status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "Hello from flint guest-shim"), "stdout:\n%s", r.out);
    flint_result_free(&r);

    /* flint's own status and message come back: it got --id and runs in
     * the jail, where paths are the jail's. */
    a = jailer_args("vm-q", FLINT_STATIC_BIN);
    add(&a, "--", "run", "--kernel", "/hello.elf", NULL);
    r = run_cmd(a.v, TIMEOUT_S);
    cr_assert_eq(r.status, 152, "status %d\nstderr:\n%s", r.status, r.err);
    cr_assert(strstr(r.err, "flint[vm-q:main] Error: kernel /hello.elf: No such file"), "%s",
              r.err);
    flint_result_free(&r);
}

/* ---- failures ---- */

/* One line on stderr starting with `line`, status `status`. */
static void expect_failure(struct args *a, int status, const char *line)
{
    struct flint_result r = run_cmd(a->v, TIMEOUT_S);

    cr_assert_not(r.timed_out);
    cr_assert_eq(r.status, status, "status %d, expected %d\nstderr:\n%s", r.status, status, r.err);
    cr_assert_eq(strncmp(r.err, line, strlen(line)), 0, "stderr should start with '%s':\n%s", line,
                 r.err);
    cr_assert_eq(count_lines(r.err), 1, "one line:\n%s", r.err);
    cr_assert_eq(r.out[0], '\0', "stdout:\n%s", r.out);
    flint_result_free(&r);
}

/* Nothing of this run is left: the base dir is as empty as it was, and
 * the parent cgroup (which did not exist) is gone. */
static void expect_nothing_left(const char *base)
{
    char names[512], path[128];
    double end = now_s() + 5;

    cr_expect_eq(entries(base, names, sizeof(names)), 0, "left in %s: %s", base, names);
    snprintf(path, sizeof(path), CGROUP_MNT "/%s", S.parent);
    while (exists(path) && now_s() < end)
        usleep(20000);
    cr_expect_not(exists(path), "cgroup %s is left", path);
}

Test(jailer, bad_flags_leave_nothing)
{
    require_root_and_static_flint();
    struct args a = jailer_args("vm-f", FLINT_STATIC_BIN);
    add(&a, "--frobnicate", NULL);
    expect_failure(&a, 153, "flint-jailer: arguments: --frobnicate: unknown flag");
    a = (struct args){.n = 0};
    add(&a, JAILER, "--id", "vm-f", "--exec-file", FLINT_STATIC_BIN, "--gid", "1",
        "--chroot-base-dir", S.base, NULL);
    expect_failure(&a, 153, "flint-jailer: arguments: --uid: missing (required)");
    a = jailer_args("vm-f", FLINT_STATIC_BIN);
    add(&a, "--uid", "1", NULL);
    expect_failure(&a, 153, "flint-jailer: arguments: --uid: given twice");
    a = jailer_args("vm-f", FLINT_STATIC_BIN);
    add(&a, "--cgroup-version", "1", NULL);
    expect_failure(&a, 153, "flint-jailer: arguments: --cgroup-version: 1 is not supported");
    a = jailer_args("vm-f", FLINT_STATIC_BIN);
    add(&a, "--cgroup", "memory.max", NULL);
    expect_failure(&a, 153, "flint-jailer: arguments: --cgroup: 'memory.max' is not FILE=VALUE");
    a = jailer_args("vm-f", FLINT_STATIC_BIN);
    add(&a, "--resource-limit", "no-file=many", NULL);
    expect_failure(&a, 153, "flint-jailer: arguments: --resource-limit:");
    expect_nothing_left(S.base);
}

Test(jailer, id_with_a_slash_is_refused)
{
    require_root_and_static_flint();
    struct args a = jailer_args("../../etc", FLINT_STATIC_BIN);
    expect_failure(&a, 153, "flint-jailer: arguments: --id: '../../etc' must be 1-64 letters");
    a = jailer_args("a/b", FLINT_STATIC_BIN);
    expect_failure(&a, 153, "flint-jailer: arguments: --id: 'a/b' must be");
    expect_nothing_left(S.base);
}

Test(jailer, missing_or_dynamic_exec_file_leaves_nothing)
{
    require_root_and_static_flint();
    struct args a = jailer_args("vm-m", "/nonexistent/flint");
    add(&a, "--parent-cgroup", S.parent, "--cgroup", "pids.max=10", NULL);
    expect_failure(&a, 1, "flint-jailer: exec file: /nonexistent/flint: No such file or directory");
    expect_nothing_left(S.base);
    /* The ordinary flint needs ld.so and libraries the jail lacks. */
    a = jailer_args("vm-m", FLINT_BIN);
    expect_failure(&a, 1, "flint-jailer: exec file: " FLINT_BIN ": dynamically linked");
    expect_nothing_left(S.base);
}

Test(jailer, existing_jail_is_refused_and_left_alone)
{
    char root[256], path[512];

    require_root_and_static_flint();
    jail_root(root, sizeof(root), "vm-e");
    /* A jail built by an earlier run (flint just prints its version). */
    struct args a = jailer_args("vm-e", FLINT_STATIC_BIN);
    add(&a, "--", "--version", NULL);
    struct flint_result r = run_cmd(a.v, TIMEOUT_S);
    cr_assert_eq(r.status, 0, "status %d\nstderr:\n%s", r.status, r.err);
    cr_assert(strstr(r.out, "flint v"), "%s", r.out);
    flint_result_free(&r);

    a = jailer_args("vm-e", FLINT_STATIC_BIN);
    add(&a, "--parent-cgroup", S.parent, "--cgroup", "pids.max=10", "--", "--version", NULL);
    char line[512];
    snprintf(line, sizeof(line), "flint-jailer: jail dir: %s/flint: exists", root);
    expect_failure(&a, 1, line);
    cr_expect(exists(path_in(path, sizeof(path), "%s/flint", root)), "the old jail is kept");
    cr_expect(exists(path_in(path, sizeof(path), "%s/dev/kvm", root)), "the old jail is kept");
    cr_expect(exists(path_in(path, sizeof(path), "%s/run", root)), "the old jail is kept");
    path_in(path, sizeof(path), CGROUP_MNT "/%s", S.parent);
    cr_expect_not(exists(path), "no cgroup made for a refused jail");
}

Test(jailer, existing_cgroup_is_refused_and_left_alone)
{
    char path[256], line[512];

    require_root_and_static_flint();
    mkdir_p(path_in(path, sizeof(path), CGROUP_MNT "/%s/vm-c", S.parent));
    struct args a = jailer_args("vm-c", FLINT_STATIC_BIN);
    add(&a, "--parent-cgroup", S.parent, "--cgroup", "pids.max=10", NULL);
    snprintf(line, sizeof(line), "flint-jailer: cgroup: " CGROUP_MNT "/%s/vm-c: exists", S.parent);
    expect_failure(&a, 1, line);
    char names[256];
    cr_expect_eq(entries(S.base, names, sizeof(names)), 0, "left: %s", names);
    cr_expect(exists(path), "the cgroup that was there stays");
}

Test(jailer, cgroup_that_cannot_be_made_leaves_nothing)
{
    char line[512];

    require_root_and_static_flint();
    /* No such controller: refused before the VM's cgroup exists. */
    struct args a = jailer_args("vm-g", FLINT_STATIC_BIN);
    add(&a, "--parent-cgroup", S.parent, "--cgroup", "nonexistent.file=1", NULL);
    expect_failure(&a, 1,
                   "flint-jailer: cgroup: " CGROUP_MNT "/cgroup.controllers: no 'nonexistent' "
                   "controller here");
    expect_nothing_left(S.base);
    /* A file the controller does not have: the cgroup exists by then. */
    a = jailer_args("vm-g", FLINT_STATIC_BIN);
    add(&a, "--parent-cgroup", S.parent, "--cgroup", "pids.max=10", "--cgroup",
        "memory.nonexistent=1", NULL);
    snprintf(line, sizeof(line),
             "flint-jailer: cgroup: " CGROUP_MNT "/%s/vm-g/memory.nonexistent: cannot write '1': "
             "no such cgroup file",
             S.parent);
    expect_failure(&a, 1, line);
    expect_nothing_left(S.base);
    /* A value the kernel refuses. */
    a = jailer_args("vm-g", FLINT_STATIC_BIN);
    add(&a, "--parent-cgroup", S.parent, "--cgroup", "pids.max=lots", NULL);
    snprintf(line, sizeof(line),
             "flint-jailer: cgroup: " CGROUP_MNT "/%s/vm-g/pids.max: cannot write 'lots': "
             "Invalid argument",
             S.parent);
    expect_failure(&a, 1, line);
    expect_nothing_left(S.base);
}

Test(jailer, netns_that_is_not_one_leaves_nothing)
{
    require_root_and_static_flint();
    struct args a = jailer_args("vm-n", FLINT_STATIC_BIN);
    add(&a, "--netns", "/var/run/netns/flint-no-such-netns", NULL);
    expect_failure(&a, 1,
                   "flint-jailer: netns: /var/run/netns/flint-no-such-netns: No such file or "
                   "directory");
    expect_nothing_left(S.base);
    a = jailer_args("vm-n", FLINT_STATIC_BIN);
    add(&a, "--netns", "/proc/self/ns/mnt", "--parent-cgroup", S.parent, "--cgroup", "pids.max=10",
        NULL);
    expect_failure(&a, 1, "flint-jailer: netns: /proc/self/ns/mnt: setns: not a network namespace");
    expect_nothing_left(S.base);
}

/* execve fails only after every other step (the jail is on a noexec
 * mount): mount namespace, device nodes, cgroup, forks and the uid drop
 * are all undone, whichever process fails. */
Test(jailer, exec_failure_after_every_step_leaves_nothing)
{
    static const char *const modes[][2] = {{NULL, NULL},
                                           {"--new-pid-ns", NULL},
                                           {"--daemonize", "--new-pid-ns"},
                                           {"--daemonize", NULL}};
    char base[160];

    require_root_and_static_flint();
    snprintf(S.noexec, sizeof(S.noexec), "/tmp/flint-jailer-noexec.%d", (int)getpid());
    mkdir_p(S.noexec);
    cr_assert_eq(mount("tmpfs", S.noexec, "tmpfs", MS_NOEXEC, "mode=0755"), 0, "mount: %s",
                 strerror(errno));
    snprintf(base, sizeof(base), "%s/jails", S.noexec);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct args a = {.n = 0};
        add(&a, JAILER, "--id", "vm-x", "--exec-file", FLINT_STATIC_BIN, "--uid", JAIL_UID_S,
            "--gid", JAIL_UID_S, "--chroot-base-dir", base, "--parent-cgroup", S.parent, "--cgroup",
            "pids.max=10", NULL);
        for (int k = 0; k < 2 && modes[i][k]; k++)
            add(&a, modes[i][k], NULL);
        add(&a, "--", "run", NULL);
        expect_failure(&a, 1,
                       "flint-jailer: exec: /flint: Permission denied (the jail is on a noexec "
                       "mount");
        expect_nothing_left(S.noexec);
    }
}

Test(jailer, nodev_base_dir_is_refused_early)
{
    char base[160], line[320];

    require_root_and_static_flint();
    snprintf(S.noexec, sizeof(S.noexec), "/tmp/flint-jailer-nodev.%d", (int)getpid());
    mkdir_p(S.noexec);
    cr_assert_eq(mount("tmpfs", S.noexec, "tmpfs", MS_NODEV, "mode=0755"), 0, "mount: %s",
                 strerror(errno));
    snprintf(base, sizeof(base), "%s/jails", S.noexec);
    struct args a = {.n = 0};
    add(&a, JAILER, "--id", "vm-v", "--exec-file", FLINT_STATIC_BIN, "--uid", JAIL_UID_S, "--gid",
        JAIL_UID_S, "--chroot-base-dir", base, NULL);
    snprintf(line, sizeof(line), "flint-jailer: jail dir: %s/flint/vm-v/root: on a nodev mount",
             base);
    expect_failure(&a, 1, line);
    expect_nothing_left(S.noexec);
}

Test(jailer, needs_root)
{
    static const char *const paths[] = {"/usr/bin/setpriv", "/bin/setpriv"};
    const char *setpriv = NULL;

    require_root_and_static_flint();
    for (size_t i = 0; i < 2; i++)
        if (access(paths[i], X_OK) == 0)
            setpriv = paths[i];
    if (!setpriv)
        cr_skip_test("setpriv (util-linux) is missing");
    struct args a = {.n = 0};
    add(&a, (char *)setpriv, "--reuid", JAIL_UID_S, "--regid", JAIL_UID_S, "--clear-groups", NULL);
    struct args j = jailer_args("vm-r", FLINT_STATIC_BIN);
    for (int i = 0; i < j.n; i++)
        add(&a, j.v[i], NULL);
    expect_failure(&a, 1, "flint-jailer: privileges: euid: 1234: flint-jailer must run as root");
    expect_nothing_left(S.base);
}
