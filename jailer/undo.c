/*
 * undo.c - what this run of the jailer created, removed again on failure.
 *
 * Every entry is a name relative to a directory fd opened on the host side
 * before the jail's mount namespace exists: the fd keeps naming the same
 * directory after pivot_root detaches the host's tree, so one record serves
 * every step. Only what this run made is recorded; what was there before
 * (a base directory, the user's files in the jail root) is never touched.
 */
#include "jailer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_RMDIR_TRIES 300 /* x 10 ms: processes that just died leave a cgroup late */

void undo_init(struct undo *u)
{
    memset(u, 0, sizeof(*u));
    u->cgroup_back_fd = -1;
}

int undo_keep_fd(struct undo *u, int fd)
{
    if (u->nfds == UNDO_MAX) {
        close(fd);
        return -1;
    }
    u->fds[u->nfds++] = fd;
    return fd;
}

int undo_add(struct undo *u, int dirfd, const char *name, const char *shown, enum undo_kind kind)
{
    struct undo_entry *e;

    if (u->n == UNDO_MAX)
        return -ENOSPC;
    e = &u->e[u->n];
    e->name = strdup(name);
    e->shown = strdup(shown);
    if (!e->name || !e->shown) {
        free(e->name);
        free(e->shown);
        return -ENOMEM;
    }
    e->dirfd = dirfd;
    e->kind = kind;
    u->n++;
    return 0;
}

void undo_pop(struct undo *u)
{
    if (u->n == 0)
        return;
    u->n--;
    free(u->e[u->n].name);
    free(u->e[u->n].shown);
}

static void say(const char *path, const char *what, int err)
{
    fprintf(stderr, "flint-jailer: cleanup: %s: %s: %s\n", path, what, strerror(err));
}

static void remove_cgroup(const struct undo_entry *e)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};

    for (int i = 0; i < CGROUP_RMDIR_TRIES; i++) {
        if (unlinkat(e->dirfd, e->name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            break;
        nanosleep(&pause, NULL);
    }
    say(e->shown, "cannot remove the cgroup", errno);
}

void undo_run(struct undo *u)
{
    if (u->cgroup_back_fd >= 0) {
        char pid[24];
        int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
        if (write(u->cgroup_back_fd, pid, (size_t)n) != n)
            say("cgroup.procs", "cannot move back to the jailer's old cgroup", errno);
        close(u->cgroup_back_fd);
        u->cgroup_back_fd = -1;
    }
    if (u->unmount && umount2(u->unmount, MNT_DETACH) && errno != EINVAL)
        say(u->unmount, "cannot detach the mount", errno);
    while (u->n) {
        const struct undo_entry *e = &u->e[u->n - 1];
        switch (e->kind) {
        case UNDO_FILE:
            if (unlinkat(e->dirfd, e->name, 0) && errno != ENOENT)
                say(e->shown, "cannot remove", errno);
            break;
        case UNDO_DIR:
            if (unlinkat(e->dirfd, e->name, AT_REMOVEDIR) && errno != ENOENT)
                say(e->shown, "cannot remove the directory", errno);
            break;
        case UNDO_CGROUP:
            remove_cgroup(e);
            break;
        }
        undo_pop(u);
    }
    undo_release(u);
}

void undo_release(struct undo *u)
{
    while (u->n)
        undo_pop(u);
    for (unsigned i = 0; i < u->nfds; i++)
        close(u->fds[i]);
    u->nfds = 0;
    if (u->cgroup_back_fd >= 0)
        close(u->cgroup_back_fd);
    u->cgroup_back_fd = -1;
    free(u->unmount);
    u->unmount = NULL;
}
