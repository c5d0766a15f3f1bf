/* Spawning helper for the end-to-end tests. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_append(struct buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void append_file(struct buf *b, const char *path, size_t max)
{
    char chunk[1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t k;

    if (fd < 0)
        return;
    k = read(fd, chunk, max < sizeof(chunk) ? max : sizeof(chunk));
    if (k > 0)
        buf_append(b, chunk, (size_t)k);
    close(fd);
}

/* What each thread of pid is doing (state, wait channel, kernel stack):
 * appended to a timed-out run's stderr, since a hang is otherwise a
 * silent deadline. */
static void describe_threads(pid_t pid, struct buf *b)
{
    char path[320], line[320];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (!d)
        return;
    snprintf(line, sizeof(line), "\n[run_cmd] timed out; threads of %d:\n", (int)pid);
    buf_append(b, line, strlen(line));
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        static const char *const files[] = {"comm", "stat", "wchan", "syscall", "stack"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            snprintf(line, sizeof(line), "[%s %s] ", e->d_name, files[i]);
            buf_append(b, line, strlen(line));
            snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", (int)pid, e->d_name, files[i]);
            append_file(b, path, 1024);
            buf_append(b, "\n", 1);
        }
    }
    closedir(d);
}

struct flint_result run_cmd(char *const argv[], double timeout_s)
{
    struct flint_result r = {0};
    struct buf out = {0}, err = {0};
    int po[2], pe[2], status = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    double start = now_s();

    buf_append(&out, "", 0);
    buf_append(&err, "", 0);
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
        abort();
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        r.status = 127;
        r.out = out.data;
        r.err = err.data;
        return r;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);

    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds) {
        double left = timeout_s - (now_s() - start);
        if (left <= 0) {
            describe_threads(pid, &err);
            kill(pid, SIGKILL);
            r.timed_out = true;
            break;
        }
        int n = poll(fds, 2, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd >= 0 && fds[i].revents) {
                char chunk[4096];
                ssize_t k = read(fds[i].fd, chunk, sizeof(chunk));
                if (k > 0) {
                    buf_append(i ? &err : &out, chunk, (size_t)k);
                } else {
                    close(fds[i].fd);
                    fds[i].fd = -1;
                    open_fds--;
                }
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.seconds = now_s() - start;
    r.out = out.data;
    r.err = err.data;
    return r;
}

void flint_result_free(struct flint_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

struct flint_result flint_run_args(const char *flint_bin, double timeout_s, char *const args[])
{
    char *argv[40];
    int n = 0;

    argv[n++] = (char *)flint_bin;
    argv[n++] = "run";
    while (*args && n < 39)
        argv[n++] = *args++;
    argv[n] = NULL;
    return run_cmd(argv, timeout_s);
}

void check_status(const struct flint_result *r, int status)
{
    cr_assert_not(r->timed_out, "flint timed out\nstdout:\n%s\nstderr:\n%s", r->out, r->err);
    cr_assert_eq(r->status, status, "status %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status,
                 status, r->out, r->err);
}

void check_has(const char *s, const char *needle)
{
    cr_assert(strstr(s, needle), "missing '%s' in:\n%s", needle, s);
}

/* ---- a flint that keeps running while the test talks to it ---- */

/* fork rather than posix_spawn: the child asks to be killed when the test
 * process dies, so a failed assertion leaves no flint (and socket) behind. */
void live_start(struct live *l, char *const argv[])
{
    live_start_stdin(l, argv, -1);
}

void live_start_stdin(struct live *l, char *const argv[], int stdin_fd)
{
    int po[2], pe[2];

    memset(l, 0, sizeof(*l));
    cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
    l->pid = fork();
    cr_assert_geq(l->pid, 0);
    if (l->pid == 0) {
        int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (in < 0 || dup2(in, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(127);
        if (isatty(0) && (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0))
            _exit(127);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    l->fd[0] = po[0];
    l->fd[1] = pe[0];
}

bool live_pump(struct live *l, int ms)
{
    struct pollfd p[2] = {{.fd = l->fd[0], .events = POLLIN}, {.fd = l->fd[1], .events = POLLIN}};
    char *bufs[2] = {l->out, l->err};

    if (l->fd[0] < 0 && l->fd[1] < 0)
        return false;
    if (poll(p, 2, ms) <= 0)
        return true;
    for (int i = 0; i < 2; i++) {
        if (p[i].fd < 0 || !p[i].revents)
            continue;
        size_t room = sizeof(l->out) - 1 - l->len[i];
        char sink[512];
        ssize_t k = room ? read(p[i].fd, bufs[i] + l->len[i], room) : read(p[i].fd, sink, 512);
        if (k > 0 && room) {
            l->len[i] += (size_t)k;
            bufs[i][l->len[i]] = '\0';
        } else if (k <= 0) {
            close(l->fd[i]);
            l->fd[i] = -1;
        }
    }
    return true;
}

void live_wait_for(struct live *l, const char *needle)
{
    double end = now_s() + LIVE_TIMEOUT_S;

    while (!strstr(l->out, needle)) {
        cr_assert(now_s() < end && live_pump(l, 50),
                  "no '%s' from the guest\nstdout:\n%s\nstderr:\n%s", needle, l->out, l->err);
    }
}

int live_finish(struct live *l)
{
    double end = now_s() + LIVE_TIMEOUT_S;
    int st;

    if (l->done)
        return l->status;
    while (live_pump(l, 50))
        if (now_s() > end)
            kill(l->pid, SIGKILL);
    cr_assert_eq(waitpid(l->pid, &st, 0), l->pid);
    l->done = true;
    l->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return l->status;
}

char *console_text_expected(void)
{
    char *out = malloc(16384), *p = out;

    p += sprintf(p, "consoletext: begin\n");
    for (int i = 0; i < 20; i++)
        p += sprintf(p, "line %02d: %s %d %x\n", i, i % 2 ? "odd" : "even", i * i, i * 4099);
    for (int i = 0; i < 5000; i++)
        *p++ = (char)('a' + i % 26);
    *p++ = '\n';
    for (int c = 32; c < 127; c++)
        *p++ = (char)c;
    p += sprintf(p, "\nconsoletext: end\n");
    *p = '\0';
    return out;
}
