/*
 * jailer.c - flint-jailer's main: Firecracker's jailer sequence, one step
 * per function, in this order:
 *
 *   close every fd above 2, clear the environment, open and check the exec
 *   file; make <base>/<exec name>/<id>/root and copy the exec file in
 *   (owned by uid:gid); join --netns; set the rlimits; the cgroup (v2);
 *   unshare the mount namespace, make / a recursive slave, bind the jail
 *   onto itself, pivot_root into it, detach the old root, chroot; make
 *   /dev/net and /run (0700, uid:gid) and /dev/kvm, /dev/net/tun,
 *   /dev/urandom (0600, uid:gid); daemonize (double fork, setsid, stdio on
 *   /dev/null); with --new-pid-ns, fork into a new PID namespace and write
 *   <exec name>.pid; drop to uid:gid; exec "/<exec name> --id <id> ARGS".
 *
 * A failing step prints one line "flint-jailer: <step>: <path>: <problem>",
 * removes what this run created (undo.c) and exits with JAILER_EXIT_SETUP.
 * After a fork, the process that fails sends its line up a pipe to the
 * original jailer process, which prints it and cleans up: the only process
 * that still has the caller's stderr and that is never unprivileged.
 */
#define _GNU_SOURCE
#include "jailer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FLINT_VERSION
#define FLINT_VERSION "0.0.0"
#endif

/* The device nodes flint needs (Linux Documentation/admin-guide/devices.txt). */
static const struct {
    const char *name;
    unsigned major, minor;
} jail_devices[] = {
    {"dev/kvm", 10, 232},
    {"dev/net/tun", 10, 200},
    {"dev/urandom", 1, 9},
};

struct jail {
    struct jail_args args;
    struct undo undo;
    char dir[PATH_MAX];  /* <base>/<exec name>/<id> */
    char root[PATH_MAX]; /* <dir>/root */
    char pid_file[JAIL_NAME_MAX + 8];
    int root_fd;    /* the jail root, opened on the host side (kept in undo) */
    int exec_fd;    /* the exec file to copy */
    int devnull_fd; /* --daemonize: /dev/null, opened before the chroot */
    int report_fd;  /* after a fork: the pipe to the original process; else -1 */
    mode_t umask;   /* the caller's, restored for flint */
    bool dropped;   /* running as uid:gid (with the capabilities kept) */
};

static void verrf(struct jail_err *e, const char *step, const char *path, const char *fmt,
                  va_list ap)
{
    size_t n = (size_t)snprintf(e->text, sizeof(e->text), "%s: %s: ", step, path);

    if (n >= sizeof(e->text))
        n = sizeof(e->text) - 1;
    vsnprintf(e->text + n, sizeof(e->text) - n, fmt, ap);
}

int jail_errf(struct jail_err *e, const char *step, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrf(e, step, path, fmt, ap);
    va_end(ap);
    return -1;
}

/* Back to root after a failed execve, to clean up: the permitted
 * capabilities survived setresuid because of PR_SET_KEEPCAPS. */
static void regain_root(struct jail *j)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];

    if (!j->dropped)
        return;
    if (syscall(SYS_capget, &h, d) == 0) {
        d[0].effective = d[0].permitted;
        d[1].effective = d[1].permitted;
        syscall(SYS_capset, &h, d);
    }
    if (setresuid(0, 0, 0) || setresgid(0, 0, 0))
        fprintf(stderr, "flint-jailer: cleanup: cannot become root again: %s\n", strerror(errno));
    j->dropped = false;
}

static __attribute__((noreturn)) void fail(struct jail *j, const struct jail_err *e)
{
    char line[sizeof(e->text) + 16];
    int n = snprintf(line, sizeof(line), "flint-jailer: %s\n", e->text);

    if (n >= (int)sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    /* After a fork the original process prints it and cleans up (if it
     * is gone, there is no one to tell). */
    ssize_t ignored = write(j->report_fd >= 0 ? j->report_fd : STDERR_FILENO, line, (size_t)n);
    (void)ignored;
    if (j->report_fd >= 0)
        _exit(JAILER_EXIT_SETUP);
    regain_root(j);
    undo_run(&j->undo);
    exit(JAILER_EXIT_SETUP);
}

static __attribute__((noreturn, format(printf, 4, 5))) void
failf(struct jail *j, const char *step, const char *path, const char *fmt, ...)
{
    struct jail_err e;
    va_list ap;

    va_start(ap, fmt);
    verrf(&e, step, path, fmt, ap);
    va_end(ap);
    fail(j, &e);
}

/* ---- the steps ---- */

/* 0-2 stay (opened on /dev/null if closed, so nothing lands there by
 * accident); everything else goes. */
static void close_fds(struct jail *j)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            failf(j, "close fds", "/dev/null", "cannot fill fd %d: %s", fd, strerror(errno));
    if (close_range(3, ~0u, 0) == 0)
        return;
    for (int fd = 3; fd < 65536; fd++)
        close(fd);
}

static void open_exec_file(struct jail *j)
{
    char why[256];

    j->exec_fd = open(j->args.exec_file, O_RDONLY | O_CLOEXEC);
    if (j->exec_fd < 0)
        failf(j, "exec file", j->args.exec_file, "%s", strerror(errno));
    if (jail_check_exec_file(j->exec_fd, why, sizeof(why)))
        failf(j, "exec file", j->args.exec_file, "%s", why);
}

/* An entry of the jail root flint-jailer makes itself: finding one means a
 * jail was built here before. */
static void refuse_built_jail(struct jail *j)
{
    const char *names[] = {j->args.exec_name, "dev", "run", j->pid_file, "old_root"};
    char path[PATH_MAX + JAIL_NAME_MAX + 2];
    struct stat st;

    if (stat(j->root, &st))
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", j->root, names[i]);
        if (lstat(path, &st) == 0)
            failf(j, "jail dir", path,
                  "exists: a jail was built here before (flint-jailer makes %s, dev, run and "
                  "%s itself); remove %s or use another --id",
                  j->args.exec_name, j->pid_file, j->dir);
    }
}

/* mkdir -p of the jail root, each directory it makes recorded relative to
 * the deepest one that was there before. */
static void make_jail_dir(struct jail *j)
{
    const char *base = j->args.chroot_base;
    char prefix[PATH_MAX];
    int anchor = -1;
    size_t anchor_len = 0;
    struct statvfs vfs;
    struct stat st;

    /* args.c bounds the three parts well below PATH_MAX. */
    if (strlen(base) + strlen(j->args.exec_name) + strlen(j->args.id) + 8 > sizeof(j->dir))
        failf(j, "jail dir", base, "path too long");
    snprintf(j->dir, sizeof(j->dir), "%s/%s/%s", strcmp(base, "/") ? base : "", j->args.exec_name,
             j->args.id);
    strcpy(j->root, j->dir);
    strcat(j->root, "/root");
    snprintf(j->pid_file, sizeof(j->pid_file), "%s.pid", j->args.exec_name);
    refuse_built_jail(j);
    for (char *slash = strchr(j->root + 1, '/');; slash = strchr(slash + 1, '/')) {
        size_t len = slash ? (size_t)(slash - j->root) : strlen(j->root);
        snprintf(prefix, sizeof(prefix), "%.*s", (int)len, j->root);
        if (mkdir(prefix, 0755) == 0) {
            if (anchor < 0) {
                char parent[PATH_MAX];
                anchor_len = (size_t)(strrchr(prefix, '/') - prefix);
                snprintf(parent, sizeof(parent), "%.*s", (int)(anchor_len ? anchor_len : 1),
                         prefix);
                anchor = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (anchor < 0 || undo_keep_fd(&j->undo, anchor) < 0) {
                    rmdir(prefix);
                    failf(j, "jail dir", parent, "cannot open: %s", strerror(errno));
                }
            }
            if (undo_add(&j->undo, anchor, prefix + anchor_len + 1, prefix, UNDO_DIR)) {
                rmdir(prefix);
                failf(j, "jail dir", prefix, "cannot record it for cleanup");
            }
        } else if (errno != EEXIST || stat(prefix, &st) || !S_ISDIR(st.st_mode)) {
            failf(j, "jail dir", prefix, "%s",
                  errno == EEXIST ? "not a directory" : strerror(errno));
        }
        if (!slash)
            break;
    }
    j->root_fd = open(j->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (j->root_fd < 0 || undo_keep_fd(&j->undo, j->root_fd) < 0)
        failf(j, "jail dir", j->root, "cannot open: %s", strerror(errno));
    if (fstatvfs(j->root_fd, &vfs) == 0 && (vfs.f_flag & ST_NODEV))
        failf(j, "jail dir", j->root,
              "on a nodev mount: flint could not open /dev/kvm there; use a --chroot-base-dir "
              "on a file system that allows device nodes");
}

/* Record a name the jail root now holds (path: its host path). */
static void record(struct jail *j, const char *name, enum undo_kind kind)
{
    char shown[PATH_MAX + JAIL_NAME_MAX + 16];

    snprintf(shown, sizeof(shown), "%s/%s", j->root, name);
    if (undo_add(&j->undo, j->root_fd, name, shown, kind)) {
        unlinkat(j->root_fd, name, kind == UNDO_FILE ? 0 : AT_REMOVEDIR);
        failf(j, "jail dir", shown, "cannot record it for cleanup");
    }
}

/* A copy, not a link: the jail must not share an inode with the host. */
static void copy_exec_file(struct jail *j)
{
    const char *name = j->args.exec_name;
    char buf[65536], shown[PATH_MAX + JAIL_NAME_MAX + 2];
    int out;
    ssize_t n;

    snprintf(shown, sizeof(shown), "%s/%s", j->root, name);
    out = openat(j->root_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
    if (out < 0)
        failf(j, "copy", shown, "%s", strerror(errno));
    record(j, name, UNDO_FILE);
    while ((n = read(j->exec_fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            failf(j, "copy", j->args.exec_file, "read: %s", strerror(errno));
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                failf(j, "copy", shown, "write: %s", strerror(errno));
            off += w > 0 ? w : 0;
        }
    }
    if (fchown(out, j->args.uid, j->args.gid) || fchmod(out, 0500))
        failf(j, "copy", shown, "cannot give it to %u:%u: %s", (unsigned)j->args.uid,
              (unsigned)j->args.gid, strerror(errno));
    if (close(out))
        failf(j, "copy", shown, "%s", strerror(errno));
    close(j->exec_fd);
    j->exec_fd = -1;
}

static void join_netns(struct jail *j)
{
    int fd;

    if (!j->args.netns)
        return;
    fd = open(j->args.netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        failf(j, "netns", j->args.netns, "%s", strerror(errno));
    if (setns(fd, CLONE_NEWNET))
        failf(j, "netns", j->args.netns, "setns: %s",
              errno == EINVAL ? "not a network namespace" : strerror(errno));
    close(fd);
}

static void set_rlimits(struct jail *j)
{
    struct rlimit r = {.rlim_cur = j->args.nofile, .rlim_max = j->args.nofile};

    if (setrlimit(RLIMIT_NOFILE, &r))
        failf(j, "rlimit", "no-file", "%llu: %s", (unsigned long long)j->args.nofile,
              strerror(errno));
    if (!j->args.has_fsize)
        return;
    r.rlim_cur = r.rlim_max = j->args.fsize;
    if (setrlimit(RLIMIT_FSIZE, &r))
        failf(j, "rlimit", "fsize", "%llu: %s", (unsigned long long)j->args.fsize, strerror(errno));
}

static void join_cgroup(struct jail *j)
{
    struct jail_err e;

    if (jail_cgroup_setup(&j->args, &j->undo, &e))
        fail(j, &e);
}

static void set_unmount(struct jail *j, const char *path)
{
    free(j->undo.unmount);
    j->undo.unmount = path ? strdup(path) : NULL;
    if (path && !j->undo.unmount)
        failf(j, "mount namespace", path, "out of memory");
}

/* A mount namespace whose root is the jail; the host's tree is detached
 * (pivot_root(2), and mount_namespaces(7) for the slave propagation that
 * keeps the jail's mounts from reaching the host). */
static void enter_jail(struct jail *j)
{
    if (j->args.daemonize) {
        j->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (j->devnull_fd < 0)
            failf(j, "daemonize", "/dev/null", "%s", strerror(errno));
    }
    if (unshare(CLONE_NEWNS))
        failf(j, "mount namespace", "/", "unshare(CLONE_NEWNS): %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL))
        failf(j, "mount namespace", "/", "cannot make it a recursive slave: %s", strerror(errno));
    if (mount(j->root, j->root, NULL, MS_BIND | MS_REC, NULL))
        failf(j, "mount namespace", j->root, "cannot bind it onto itself: %s", strerror(errno));
    set_unmount(j, j->root);
    if (chdir(j->root))
        failf(j, "pivot_root", j->root, "chdir: %s", strerror(errno));
    if (mkdirat(j->root_fd, "old_root", 0700))
        failf(j, "pivot_root", j->root, "mkdir old_root: %s", strerror(errno));
    record(j, "old_root", UNDO_DIR);
    if (syscall(SYS_pivot_root, ".", "old_root"))
        failf(j, "pivot_root", j->root, "%s", strerror(errno));
    set_unmount(j, "/old_root");
    if (chdir("/"))
        failf(j, "pivot_root", "/", "chdir: %s", strerror(errno));
    if (umount2("/old_root", MNT_DETACH))
        failf(j, "pivot_root", "/old_root", "cannot detach the old root: %s", strerror(errno));
    set_unmount(j, NULL);
    if (unlinkat(j->root_fd, "old_root", AT_REMOVEDIR))
        failf(j, "pivot_root", "/old_root", "rmdir: %s", strerror(errno));
    undo_pop(&j->undo);
    if (chroot("."))
        failf(j, "chroot", j->root, "%s", strerror(errno));
}

static void own(struct jail *j, const char *name)
{
    if (fchownat(j->root_fd, name, j->args.uid, j->args.gid, AT_SYMLINK_NOFOLLOW))
        failf(j, "chown", name, "%s", strerror(errno));
}

/* Inside the jail now: root_fd is "/". */
static void make_devices(struct jail *j)
{
    static const struct {
        const char *name;
        mode_t mode;
        bool owned;
    } dirs[] = {{"dev", 0755, false}, {"dev/net", 0700, true}, {"run", 0700, true}};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (mkdirat(j->root_fd, dirs[i].name, dirs[i].mode))
            failf(j, "mkdir", dirs[i].name, "%s", strerror(errno));
        record(j, dirs[i].name, UNDO_DIR);
        if (dirs[i].owned)
            own(j, dirs[i].name);
    }
    for (size_t i = 0; i < sizeof(jail_devices) / sizeof(jail_devices[0]); i++) {
        const char *name = jail_devices[i].name;
        if (mknodat(j->root_fd, name, S_IFCHR | 0600,
                    makedev(jail_devices[i].major, jail_devices[i].minor)))
            failf(j, "mknod", name, "%u:%u: %s", jail_devices[i].major, jail_devices[i].minor,
                  strerror(errno));
        record(j, name, UNDO_FILE);
        own(j, name);
    }
}

/* The original process after a fork: wait for the pipe to close (flint
 * exec'd: O_CLOEXEC) or to carry a failure line. */
static __attribute__((noreturn)) void report(struct jail *j, int rfd, pid_t child, bool wait_child)
{
    char msg[sizeof(((struct jail_err *)0)->text) + 16];
    size_t len = 0;
    ssize_t n;

    while (len < sizeof(msg) - 1 && (n = read(rfd, msg + len, sizeof(msg) - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    close(rfd);
    if (len == 0) {
        if (wait_child)
            waitpid(child, NULL, 0);
        undo_release(&j->undo);
        exit(0);
    }
    ssize_t ignored = write(STDERR_FILENO, msg, len);
    (void)ignored;
    waitpid(child, NULL, 0);
    undo_run(&j->undo);
    exit(JAILER_EXIT_SETUP);
}

static void write_pid_file(struct jail *j, pid_t pid)
{
    char text[24];
    int fd, n = snprintf(text, sizeof(text), "%d\n", (int)pid);

    fd =
        openat(j->root_fd, j->pid_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd)) {
        int err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        failf(j, "pid file", j->pid_file, "%s", strerror(err));
    }
}

/* --daemonize and --new-pid-ns: the processes in between, each of which
 * returns only in the one that goes on to exec flint. */
static void fork_off(struct jail *j)
{
    int p[2];
    pid_t pid;

    if (!j->args.daemonize && !j->args.new_pid_ns)
        return;
    if (j->args.new_pid_ns)
        record(j, j->pid_file, UNDO_FILE); /* whichever process writes it */
    if (pipe2(p, O_CLOEXEC))
        failf(j, "daemonize", "pipe", "%s", strerror(errno));
    if (j->args.daemonize) {
        pid = fork();
        if (pid < 0)
            failf(j, "daemonize", "fork", "%s", strerror(errno));
        if (pid > 0) {
            close(p[1]);
            report(j, p[0], pid, true);
        }
        close(p[0]);
        j->report_fd = p[1];
        if (setsid() < 0)
            failf(j, "daemonize", "setsid", "%s", strerror(errno));
        pid = fork();
        if (pid < 0)
            failf(j, "daemonize", "fork", "%s", strerror(errno));
        if (pid > 0)
            _exit(0);
        for (int fd = 0; fd <= 2; fd++)
            if (dup2(j->devnull_fd, fd) < 0)
                failf(j, "daemonize", "/dev/null", "dup2: %s", strerror(errno));
        close(j->devnull_fd);
    }
    if (j->args.new_pid_ns) {
        if (unshare(CLONE_NEWPID))
            failf(j, "pid namespace", "unshare(CLONE_NEWPID)", "%s", strerror(errno));
        pid = fork();
        if (pid < 0)
            failf(j, "pid namespace", "fork", "%s", strerror(errno));
        if (pid > 0) {
            write_pid_file(j, pid);
            if (j->report_fd >= 0)
                _exit(0);
            close(p[1]);
            report(j, p[0], pid, false);
        }
        if (j->report_fd < 0) {
            close(p[0]);
            j->report_fd = p[1];
        }
    }
}

static __attribute__((noreturn)) void exec_flint(struct jail *j)
{
    char path[JAIL_NAME_MAX + 2], *envp[] = {NULL};
    char **argv = calloc((size_t)j->args.nextra + 4, sizeof(*argv));
    struct statvfs vfs;
    int err;

    snprintf(path, sizeof(path), "/%s", j->args.exec_name);
    if (!argv)
        failf(j, "exec", path, "out of memory");
    argv[0] = path;
    argv[1] = "--id";
    argv[2] = (char *)j->args.id;
    for (int i = 0; i < j->args.nextra; i++)
        argv[3 + i] = j->args.extra[i];
    /* Keep the permitted capabilities across setresuid, for the cleanup if
     * execve fails; execve itself gives a non-root uid none (capabilities(7)). */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
        failf(j, "uid/gid", "prctl", "PR_SET_KEEPCAPS: %s", strerror(errno));
    if (setgroups(0, NULL))
        failf(j, "uid/gid", "setgroups", "%s", strerror(errno));
    if (setresgid(j->args.gid, j->args.gid, j->args.gid))
        failf(j, "uid/gid", "setresgid", "%u: %s", (unsigned)j->args.gid, strerror(errno));
    if (setresuid(j->args.uid, j->args.uid, j->args.uid))
        failf(j, "uid/gid", "setresuid", "%u: %s", (unsigned)j->args.uid, strerror(errno));
    j->dropped = true;
    umask(j->umask);
    execve(path, argv, envp);
    err = errno;
    umask(0);
    failf(j, "exec", path, "%s%s", strerror(err),
          err == EACCES && fstatvfs(j->root_fd, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)
              ? " (the jail is on a noexec mount: use a --chroot-base-dir that allows exec)"
              : "");
}

int main(int argc, char **argv)
{
    static struct jail jail;
    struct jail *j = &jail;
    char err[512];
    int rc;

    rc = jail_args_parse(argc, argv, &j->args, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "flint-jailer: arguments: %s\n", rc == -ENOMEM ? "out of memory" : err);
        jail_args_free(&j->args);
        return rc == -ENOMEM ? JAILER_EXIT_SETUP : JAILER_EXIT_ARGS;
    }
    if (j->args.help || j->args.version) {
        if (j->args.help)
            fputs(jail_usage(), stdout);
        else
            printf("flint-jailer v%s\n", FLINT_VERSION);
        jail_args_free(&j->args);
        return 0;
    }
    undo_init(&j->undo);
    j->root_fd = j->exec_fd = j->devnull_fd = j->report_fd = -1;
    if (geteuid() != 0)
        failf(j, "privileges", "euid",
              "%u: flint-jailer must run as root (it mounts, chroots "
              "and makes device nodes)",
              (unsigned)geteuid());
    close_fds(j);
    if (clearenv())
        failf(j, "environment", "environ", "cannot clear it");
    j->umask = umask(0);
    open_exec_file(j);
    make_jail_dir(j);
    copy_exec_file(j);
    join_netns(j);
    set_rlimits(j);
    join_cgroup(j);
    enter_jail(j);
    make_devices(j);
    fork_off(j);
    exec_flint(j);
}
