/*
 * cgroup.c - the jailer's cgroup v2 step: <mount>/<parent>/<id>, with the
 * controllers the --cgroup files belong to enabled in every
 * cgroup.subtree_control from the mount down (Linux
 * Documentation/admin-guide/cgroup-v2.rst, "Enabling and Disabling"), the
 * values written, and this process moved in.
 */
#include "jailer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONTROLLERS JAIL_MAX_CGROUP_SETTING

/* Undo the octal escapes (\040 for a space) of /proc/self/mountinfo. */
static void unescape(char *s)
{
    char *out = s;

    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* The first cgroup2 mount point in /proc/self/mountinfo. */
static int find_mount(char *mnt, size_t len, struct jail_err *e)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL;
    size_t cap = 0;
    bool v1 = false, found = false;

    if (!f)
        return jail_errf(e, "cgroup", "/proc/self/mountinfo", "%s", strerror(errno));
    while (!found && getline(&line, &cap, f) > 0) {
        /* "id parent major:minor root mountpoint options [tags] - fstype ..." */
        char *sep = strstr(line, " - "), *field = line, *point = NULL;
        if (!sep)
            continue;
        for (int i = 0; i < 5 && field; i++) {
            point = field;
            field = strchr(field, ' ');
            if (field)
                *field++ = '\0';
        }
        if (!strncmp(sep + 3, "cgroup2 ", 8) && point && strlen(point) < len) {
            unescape(point);
            snprintf(mnt, len, "%s", point);
            found = true;
        } else if (!strncmp(sep + 3, "cgroup ", 7)) {
            v1 = true;
        }
    }
    free(line);
    fclose(f);
    if (found)
        return 0;
    if (v1)
        return jail_errf(e, "cgroup", "/proc/self/mountinfo",
                         "only cgroup v1 hierarchies are mounted; flint-jailer needs cgroup v2 "
                         "(v1 is not supported)");
    return jail_errf(e, "cgroup", "/proc/self/mountinfo",
                     "no cgroup2 file system is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    if (n < 0) {
        n = -errno;
        close(fd);
        return (int)n;
    }
    close(fd);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, s, strlen(s));
    if (n < 0 || (size_t)n != strlen(s)) {
        n = n < 0 ? -errno : -EIO;
        close(fd);
        return (int)n;
    }
    return close(fd) ? -errno : 0;
}

/* True when word is one of the space-separated words of list. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && !strncmp(p, word, n))
            return true;
        p += len;
        p += strspn(p, " ");
    }
    return false;
}

/* The controllers the settings name ("memory" for memory.max); the core
 * files (cgroup.*) belong to none. */
static unsigned controllers(const struct jail_args *a, char names[][JAIL_NAME_MAX + 1])
{
    unsigned n = 0;

    for (unsigned i = 0; i < a->ncgroups; i++) {
        const char *file = a->cgroups[i].file;
        size_t len = strcspn(file, ".");
        bool dup = false;

        if (len == 6 && !strncmp(file, "cgroup", 6))
            continue;
        for (unsigned k = 0; k < n; k++)
            dup |= strlen(names[k]) == len && !strncmp(names[k], file, len);
        if (!dup && n < MAX_CONTROLLERS)
            snprintf(names[n++], JAIL_NAME_MAX + 1, "%.*s", (int)len, file);
    }
    return n;
}

/* Make the controllers available to dir's children. */
static int enable(const char *dir, char names[][JAIL_NAME_MAX + 1], unsigned n, struct jail_err *e)
{
    char path[PATH_MAX], have[1024], on[1024];
    int rc;

    if (n == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
    rc = read_small(path, have, sizeof(have));
    if (rc)
        return jail_errf(e, "cgroup", path, "%s", strerror(-rc));
    for (unsigned i = 0; i < n; i++)
        if (!has_word(have, names[i]))
            return jail_errf(e, "cgroup", path, "no '%s' controller here (available: %s)", names[i],
                             have[0] ? have : "none");
    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
    rc = read_small(path, on, sizeof(on));
    if (rc)
        return jail_errf(e, "cgroup", path, "%s", strerror(-rc));
    for (unsigned i = 0; i < n; i++) {
        char word[JAIL_NAME_MAX + 2];
        if (has_word(on, names[i]))
            continue;
        snprintf(word, sizeof(word), "+%s", names[i]);
        rc = write_str(path, word);
        if (rc)
            return jail_errf(e, "cgroup", path, "cannot enable %s: %s%s", names[i], strerror(-rc),
                             rc == -EBUSY ? " (processes in this cgroup block it: a cgroup "
                                            "with children holds no processes)"
                                          : "");
    }
    return 0;
}

/* mkdir dir/name, recorded in u when this run made it; exist_ok for the
 * parent path, not for the VM's own cgroup. */
static int make_cgroup(const char *dir, const char *name, bool exist_ok, struct undo *u,
                       struct jail_err *e)
{
    char path[PATH_MAX];
    struct stat st;
    int dfd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (mkdir(path, 0755)) {
        if (errno == EEXIST && exist_ok && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        if (errno == EEXIST && !exist_ok)
            return jail_errf(e, "cgroup", path,
                             "exists (a VM with this id runs, or its cgroup was left behind)");
        return jail_errf(e, "cgroup", path, "cannot create: %s", strerror(errno));
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || undo_keep_fd(u, dfd) < 0 || undo_add(u, dfd, name, path, UNDO_CGROUP)) {
        rmdir(path);
        return jail_errf(e, "cgroup", path, "cannot record it for cleanup");
    }
    return 0;
}

/* Open the cgroup.procs of the cgroup this process is in now. */
static int open_current(const char *mnt, struct jail_err *e)
{
    char line[PATH_MAX], path[PATH_MAX * 2];
    int rc = read_small("/proc/self/cgroup", line, sizeof(line)), fd;

    if (rc)
        return jail_errf(e, "cgroup", "/proc/self/cgroup", "%s", strerror(-rc));
    if (strncmp(line, "0::/", 4))
        return jail_errf(e, "cgroup", "/proc/self/cgroup",
                         "'%.64s' is not a cgroup v2 entry (0::/PATH)", line);
    if (strlen(mnt) + strlen(line) + 16 > sizeof(path))
        return jail_errf(e, "cgroup", "/proc/self/cgroup", "path too long");
    strcpy(path, mnt);
    strcat(path, line + 3);
    strcat(path, "/cgroup.procs");
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return jail_errf(e, "cgroup", path, "%s", strerror(errno));
    return fd;
}

int jail_cgroup_setup(const struct jail_args *a, struct undo *u, struct jail_err *e)
{
    char names[MAX_CONTROLLERS][JAIL_NAME_MAX + 1], mnt[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    char pid[24];
    unsigned n;
    int back, rc;

    if (a->ncgroups == 0 && !a->parent_cgroup_given)
        return 0;
    if (find_mount(mnt, sizeof(mnt), e))
        return -1;
    n = controllers(a, names);
    snprintf(dir, sizeof(dir), "%s", mnt);
    for (const char *p = a->parent_cgroup; *p;) {
        size_t len = strcspn(p, "/");
        char comp[JAIL_NAME_MAX + 1];

        snprintf(comp, sizeof(comp), "%.*s", (int)len, p);
        if (enable(dir, names, n, e) || make_cgroup(dir, comp, true, u, e))
            return -1;
        if (strlen(dir) + len + 2 > sizeof(dir))
            return jail_errf(e, "cgroup", dir, "path too long");
        strcat(dir, "/");
        strcat(dir, comp);
        p += len;
        p += *p == '/';
    }
    if (a->ncgroups) {
        if (strlen(dir) + strlen(a->id) + JAIL_NAME_MAX + 3 > sizeof(dir))
            return jail_errf(e, "cgroup", dir, "path too long");
        if (enable(dir, names, n, e) || make_cgroup(dir, a->id, false, u, e))
            return -1;
        strcat(dir, "/");
        strcat(dir, a->id);
        for (unsigned i = 0; i < a->ncgroups; i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, a->cgroups[i].file);
            rc = write_str(path, a->cgroups[i].value);
            if (rc)
                return jail_errf(e, "cgroup", path, "cannot write '%s': %s", a->cgroups[i].value,
                                 rc == -ENOENT ? "no such cgroup file" : strerror(-rc));
        }
    }
    back = open_current(mnt, e);
    if (back < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    rc = write_str(path, pid);
    if (rc) {
        close(back);
        return jail_errf(e, "cgroup", path, "cannot move the jailer in: %s", strerror(-rc));
    }
    u->cgroup_back_fd = back;
    return 0;
}
