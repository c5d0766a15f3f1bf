/*
 * End-to-end tests: the Firecracker-style API. flint is started without
 * `run`, and a client speaking HTTP/1.1 over its Unix socket configures
 * the VM, starts it, asks for its state, pauses it, sends Ctrl-Alt-Del, or
 * misbehaves (truncated headers, a huge Content-Length, binary garbage,
 * 1000 requests on one connection, a slow-loris) while the guest runs on
 * undisturbed. Also: a --config-file boot with --no-api, the socket path
 * rules, a failed InstanceStart, signals, seccomp after an API boot, and
 * PATCH /drives swapping a running guest's image.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S  240.0 /* the nested sandbox is slow */
#define LINGER     GUEST_DIR "/linger.elf"
#define CTRLALTDEL GUEST_DIR "/ctrlaltdel.elf"
#define BLKSWAP    GUEST_DIR "/blkswap.elf"

extern char **environ;

/* ---- the socket ---- */

static void new_sock_path(char *buf, size_t len)
{
    static unsigned n;
    snprintf(buf, len, "/tmp/flint-e2e-api-%d-%u.sock", (int)getpid(), n++);
    unlink(buf);
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int try_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    close(fd);
    return -errno;
}

/* What became of flint, for failure messages. */
static const char *live_state(struct live *l)
{
    static char text[2 * 65536 + 128];
    int st = 0;
    pid_t r = l && !l->done ? waitpid(l->pid, &st, WNOHANG) : 0;

    if (!l)
        return "";
    for (int i = 0; i < 20 && live_pump(l, 10);)
        i++;
    if (r == l->pid) {
        l->done = true;
        l->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    snprintf(text, sizeof(text), "\nflint %s %d\nstdout:\n%s\nstderr:\n%s",
             l->done ? "exited with" : "is running, pid", l->done ? l->status : (int)l->pid, l->out,
             l->err);
    return text;
}

static int sock_connect_l(struct live *l, const char *path)
{
    int fd = try_connect(path);

    cr_assert_geq(fd, 0, "connect %s: %s%s", path, strerror(-fd), live_state(l));
    return fd;
}

static int sock_connect(const char *path)
{
    return sock_connect_l(NULL, path);
}

/* The path appears at bind, connections work from listen on. */
static void wait_socket(struct live *l, const char *path)
{
    double end = now_s() + TIMEOUT_S;
    int fd;

    while ((fd = try_connect(path)) < 0)
        cr_assert(now_s() < end && live_pump(l, 20), "no API socket %s: %s\nstderr:\n%s", path,
                  strerror(-fd), l->err);
    close(fd);
}

static void send_all_l(struct live *l, int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s%s", strerror(errno), live_state(l));
        p += n;
        len -= (size_t)n;
    }
}

static void send_all(int fd, const void *buf, size_t len)
{
    send_all_l(NULL, fd, buf, len);
}

/* A hostile client: the server may answer and close before it has all. */
static void send_some(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Read until `cond` holds for the buffer, EOF, or the deadline; pumps the
 * flint's pipes meanwhile. Returns bytes read; *eof at EOF. */
static size_t read_until(struct live *l, int fd, char *buf, size_t cap, size_t have,
                         bool (*cond)(const char *, size_t), bool *eof, double secs)
{
    double end = now_s() + secs;

    *eof = false;
    while (!cond(buf, have) && now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (l)
            live_pump(l, 0);
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0) {
            *eof = true;
            break;
        }
        have += (size_t)n;
        buf[have] = '\0';
    }
    return have;
}

/* A whole response: headers, then Content-Length bytes of body. */
static bool response_complete(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *cl;

    if (!end)
        return false;
    cl = strcasestr(buf, "Content-Length:");
    if (!cl || cl > end)
        return true;
    return len - (size_t)(end + 4 - buf) >= (size_t)atol(cl + 15);
}

struct resp {
    int status;
    char body[16384];
    bool closed;
};

/* One request on its own connection. */
static struct resp api(struct live *l, const char *sock, const char *method, const char *path,
                       const char *body)
{
    struct resp r = {0};
    char req[8192], buf[32768] = "";
    int fd = sock_connect_l(l, sock);
    size_t n;
    bool eof;

    int k = body ? snprintf(req, sizeof(req),
                            "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                            "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                            method, path, strlen(body), body)
                 : snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method,
                            path);
    cr_assert_lt((size_t)k, sizeof(req));
    send_all_l(l, fd, req, strlen(req));
    n = read_until(l, fd, buf, sizeof(buf), 0, response_complete, &eof, 60);
    cr_assert(response_complete(buf, n), "%s %s: incomplete answer '%s'%s", method, path, buf,
              live_state(l));
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &r.status), 1, "%s", buf);
    const char *b = strstr(buf, "\r\n\r\n") + 4;
    snprintf(r.body, sizeof(r.body), "%s", b);
    r.closed = eof;
    close(fd);
    return r;
}

#define EXPECT_STATUS(r, want)                                                                     \
    cr_assert_eq((r).status, (want), "status %d, body %s", (r).status, (r).body)

/* Start `flint --api-sock sock [extra...]` and wait for its socket. */
static void start_flint(struct live *l, const char *sock, const char *extra1, const char *extra2)
{
    char *argv[] = {FLINT_BIN, "--api-sock", (char *)sock, (char *)extra1, (char *)extra2, NULL};

    live_start(l, argv);
    wait_socket(l, sock);
}

static void configure(struct live *l, const char *sock, const char *kernel, const char *args,
                      unsigned vcpus)
{
    char body[1024];

    snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"%s\"}", kernel,
             args);
    EXPECT_STATUS(api(l, sock, "PUT", "/boot-source", body), 204);
    snprintf(body, sizeof(body), "{\"vcpu_count\": %u, \"mem_size_mib\": 64}", vcpus);
    EXPECT_STATUS(api(l, sock, "PUT", "/machine-config", body), 204);
}

static void instance_start(struct live *l, const char *sock)
{
    EXPECT_STATUS(api(l, sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
}

/* ---- configure, start, look, end ---- */

Test(api, configure_start_and_run_to_the_end, .timeout = 600)
{
    char sock[108];
    struct live l;
    struct resp r;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, "--id", "e2e-vm-1");
    r = api(&l, sock, "GET", "/", NULL);
    EXPECT_STATUS(r, 200);
    cr_assert(strstr(r.body, "\"id\":\"e2e-vm-1\""), "%s", r.body);
    cr_assert(strstr(r.body, "\"state\":\"Not started\""), "%s", r.body);
    configure(&l, sock, LINGER, "console=ttyS0 cpus=2 ms=3000", 2);
    r = api(&l, sock, "GET", "/vm/config", NULL);
    EXPECT_STATUS(r, 200);
    cr_assert(strstr(r.body, "\"vcpu_count\":2"), "%s", r.body);
    cr_assert(strstr(r.body, LINGER), "%s", r.body);
    instance_start(&l, sock);
    r = api(&l, sock, "GET", "/", NULL);
    cr_assert(strstr(r.body, "\"state\":\"Running\""), "%s", r.body);
    live_wait_for(&l, "linger: up on 2 cpus");
    /* Pre-boot calls are refused now, and change nothing. */
    r = api(&l, sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "not supported after starting the microVM"), "%s", r.body);
    r = api(&l, sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    EXPECT_STATUS(r, 400);
    r = api(&l, sock, "GET", "/machine-config", NULL);
    cr_assert(strstr(r.body, "\"vcpu_count\":2"), "%s", r.body);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "linger: done"), "%s", l.out);
    cr_assert_not(path_exists(sock), "the socket is removed at exit");
}

Test(api, send_ctrl_alt_del_reboots_the_guest, .timeout = 600)
{
    char sock[108];
    struct live l;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, CTRLALTDEL, "console=ttyS0", 1);
    /* Not before boot. */
    EXPECT_STATUS(api(&l, sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"), 400);
    instance_start(&l, sock);
    live_wait_for(&l, "ctrlaltdel: waiting");
    EXPECT_STATUS(api(&l, sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"), 204);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "ctrlaltdel: key 0x14\nctrlaltdel: key 0x11\nctrlaltdel: key "
                            "0xe0\nctrlaltdel: key 0x71\nctrlaltdel: rebooting"),
              "%s", l.out);
    cr_assert_not(path_exists(sock));
}

/* CPU time (utime + stime, clock ticks) of flint's thread named `name`. */
static long thread_ticks(pid_t pid, const char *name)
{
    char path[64], file[sizeof(path) + 256 + 8], stat[1024];
    struct dirent *d;
    long total = -1;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    cr_assert_not_null(dir);
    while ((d = readdir(dir))) {
        if (d->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%s/stat", path, d->d_name);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (n <= 0)
            continue;
        stat[n] = '\0';
        char *open_paren = strchr(stat, '('), *close_paren = strrchr(stat, ')');
        if (!open_paren || !close_paren ||
            strncmp(open_paren + 1, name, (size_t)(close_paren - open_paren - 1)) ||
            strlen(name) != (size_t)(close_paren - open_paren - 1))
            continue;
        /* Fields after the name: state ppid ... utime (14th) stime (15th). */
        long utime, stime;
        if (sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime,
                   &stime) == 2)
            total = utime + stime;
    }
    closedir(dir);
    return total;
}

static long ticks_over(struct live *l, double secs)
{
    long a = thread_ticks(l->pid, "vcpu0");
    double end = now_s() + secs;

    while (now_s() < end)
        live_pump(l, 20);
    return thread_ticks(l->pid, "vcpu0") - a;
}

Test(api, pause_holds_the_vcpus_and_resume_releases_them, .timeout = 600)
{
    char sock[108];
    struct live l;
    struct resp r;
    long paused, running;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, LINGER, "console=ttyS0 ms=20000", 1);
    EXPECT_STATUS(api(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 400);
    instance_start(&l, sock);
    live_wait_for(&l, "linger: up on 1 cpus");
    /* linger spins in shim_delay_us: a running vCPU burns CPU time. */
    running = ticks_over(&l, 1.0);
    EXPECT_STATUS(api(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
    r = api(&l, sock, "GET", "/", NULL);
    cr_assert(strstr(r.body, "\"state\":\"Paused\""), "%s", r.body);
    paused = ticks_over(&l, 1.0);
    EXPECT_STATUS(api(&l, sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);
    r = api(&l, sock, "GET", "/", NULL);
    cr_assert(strstr(r.body, "\"state\":\"Running\""), "%s", r.body);
    long resumed = ticks_over(&l, 1.0);
    cr_assert_gt(running, 10, "a spinning vCPU used %ld ticks in 1 s", running);
    cr_assert_leq(paused, 2, "a paused vCPU used %ld ticks in 1 s (running: %ld)", paused, running);
    cr_assert_gt(resumed, 10, "the resumed vCPU used %ld ticks in 1 s", resumed);
    kill(l.pid, SIGTERM);
    cr_assert_eq(live_finish(&l), 128 + SIGTERM, "stderr:\n%s", l.err);
    cr_assert_not(path_exists(sock));
}

/* ---- config files ---- */

static void write_file(char *path, const char *text)
{
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

Test(api, config_file_boot_without_the_api, .timeout = 600)
{
    char path[] = "/tmp/flint-e2e-cfg-XXXXXX";
    char json[1024];

    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"},"
             " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 32},"
             " \"drives\": [], \"network-interfaces\": [], \"logger\": null}",
             HELLO_ELF);
    write_file(path, json);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", path, NULL};
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    unlink(path);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_assert(strstr(r.out, "Hello from flint guest-shim"), "%s", r.out);
    cr_assert(strstr(r.out, "cmdline: console=ttyS0"), "%s", r.out);
    cr_assert(strstr(r.out, "ram: 31 MiB"), "%s", r.out);
    flint_result_free(&r);
}

Test(api, bad_config_files_exit_152)
{
    char path[] = "/tmp/flint-e2e-cfg-XXXXXX";

    write_file(path, "{\"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 32}}");
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", path, NULL};
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    unlink(path);
    cr_assert_eq(r.status, 152, "stderr:\n%s", r.err);
    cr_assert(strstr(r.err, "machine-config: vcpu_count: 0 is out of range"), "%s", r.err);
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    flint_result_free(&r);

    char *argv2[] = {FLINT_BIN, "--no-api", NULL};
    r = run_cmd(argv2, TIMEOUT_S);
    cr_assert_eq(r.status, 153, "stderr:\n%s", r.err);
    cr_assert(strstr(r.err, "--no-api needs --config-file"), "%s", r.err);
    flint_result_free(&r);
}

Test(api, config_file_with_the_api_keeps_serving, .timeout = 600)
{
    char path[] = "/tmp/flint-e2e-cfg-XXXXXX", sock[108], json[1024];
    struct live l;
    struct resp r;

    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 "
             "ms=4000\"}}",
             LINGER);
    write_file(path, json);
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, "--config-file", path);
    live_wait_for(&l, "linger: up on 1 cpus");
    r = api(&l, sock, "GET", "/", NULL);
    cr_assert(strstr(r.body, "\"state\":\"Running\""), "%s", r.body);
    r = api(&l, sock, "GET", "/vm/config", NULL);
    cr_assert(strstr(r.body, "ms=4000"), "%s", r.body);
    EXPECT_STATUS(api(&l, sock, "PUT", "/boot-source", json), 400);
    cr_assert_eq(live_finish(&l), 0, "stderr:\n%s", l.err);
    unlink(path);
    cr_assert_not(path_exists(sock));
}

/* ---- the logger ---- */

/* The whole file (at most cap - 1 bytes) as a string. */
static void slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t have = 0;
    ssize_t n;

    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    while (have < cap - 1 && (n = read(fd, buf + have, cap - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    close(fd);
}

/* True if some line of `text` looks like "<date>T<time>.<ns> [<prefix>..." */
static bool has_fc_line(const char *text, const char *prefix, const char *msg)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        int y, mo, d, h, mi, se;
        long ns;
        int used = 0;
        if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d.%9ld %n", &y, &mo, &d, &h, &mi, &se, &ns, &used) <
                7 ||
            used != 30)
            continue;
        const char *end = strchr(p, '\n');
        size_t plen = strlen(prefix);
        if (!strncmp(p + used, prefix, plen) && strstr(p + used, msg) &&
            (!end || strstr(p + used, msg) < end))
            return true;
    }
    return false;
}

Test(api, log_path_gets_firecracker_lines, .timeout = 600)
{
    char cfgpath[] = "/tmp/flint-e2e-cfg-XXXXXX", logpath[] = "/tmp/flint-e2e-log-XXXXXX";
    char json[1024], text[65536];
    int fd = mkstemp(logpath);

    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"}}",
             HELLO_ELF);
    write_file(cfgpath, json);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", cfgpath,        "--log-path",
                    logpath,   "--level",  "Info",          "--show-level", NULL};
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    unlink(cfgpath);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    cr_assert(strstr(r.out, "Hello from flint guest-shim"), "%s", r.out);
    cr_assert_null(strstr(r.err, "guest exited"), "the log went to the file: %s", r.err);
    slurp(logpath, text, sizeof(text));
    cr_assert(has_fc_line(text, "[anonymous-instance:vcpu0:INFO] ", "guest exited with status 0"),
              "log file:\n%s", text);
    flint_result_free(&r);

    /* A log path that cannot be opened: one line, exit 1. */
    char *argv2[] = {FLINT_BIN,
                     "--no-api",
                     "--config-file",
                     "/nonexistent.json",
                     "--log-path",
                     "/nonexistent-dir/log",
                     NULL};
    r = run_cmd(argv2, TIMEOUT_S);
    cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
    cr_assert(strstr(r.err, "--log-path: cannot open '/nonexistent-dir/log'"), "%s", r.err);
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    flint_result_free(&r);
    unlink(logpath);
}

Test(api, put_logger_then_boot, .timeout = 600)
{
    char sock[108], logpath[] = "/tmp/flint-e2e-log-XXXXXX", body[512], text[65536];
    struct live l;
    struct resp r;
    int fd = mkstemp(logpath);

    cr_assert_geq(fd, 0);
    close(fd);
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, "--id", "e2e-log");
    r = api(&l, sock, "PUT", "/logger", "{\"level\": \"Loud\"}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "level: 'Loud' is not one of"), "%s", r.body);
    snprintf(body, sizeof(body),
             "{\"log_path\": \"%s\", \"level\": \"Info\", \"show_level\": true, "
             "\"show_log_origin\": true}",
             logpath);
    EXPECT_STATUS(api(&l, sock, "PUT", "/logger", body), 204);
    configure(&l, sock, HELLO_ELF, "console=ttyS0", 1);
    /* Refused requests are logged at Info. */
    EXPECT_STATUS(api(&l, sock, "PUT", "/vsock", "{}"), 400);
    instance_start(&l, sock);
    cr_assert_eq(live_finish(&l), 0, "stderr:\n%s", l.err);
    cr_assert(strstr(l.out, "Hello from flint guest-shim"), "%s", l.out);
    slurp(logpath, text, sizeof(text));
    cr_assert(has_fc_line(text, "[e2e-log:vmm:INFO:api/api_routes.c:",
                          "API: PUT /vsock: 400: missing required field"),
              "log file:\n%s", text);
    cr_assert(has_fc_line(text, "[e2e-log:vcpu0:INFO:monitor/", "guest exited with status 0"),
              "log file:\n%s", text);
    cr_assert_null(strstr(l.err, "guest exited"), "%s", l.err);
    unlink(logpath);
}

/* ---- metrics ---- */

/* The integer at block.key of one JSON line, or -1. */
static long long metric(const char *line, const char *block, const char *key)
{
    char needle[128];
    const char *b, *k;

    snprintf(needle, sizeof(needle), "\"%s\":{", block);
    b = strstr(line, needle);
    if (!b)
        return -1;
    const char *end = strchr(b, '}');
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    k = strstr(b, needle);
    if (!k || (end && k > end))
        return -1;
    return atoll(k + strlen(needle));
}

Test(api, metrics_flush_and_exit_lines, .timeout = 600)
{
    char sock[108], mpath[] = "/tmp/flint-e2e-metrics-XXXXXX",
                    disk[] = "/tmp/flint-e2e-disk-XXXXXX";
    char body[512], text[65536], *lines[8];
    unsigned nlines = 0;
    struct live l;
    struct resp r;
    int fd = mkstemp(mpath);

    cr_assert_geq(fd, 0);
    close(fd);
    fd = mkstemp(disk);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    r = api(&l, sock, "PUT", "/metrics", "{\"metrics_path\": \"/nonexistent-dir/m\"}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "metrics_path: cannot open"), "%s", r.body);
    snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", mpath);
    EXPECT_STATUS(api(&l, sock, "PUT", "/metrics", body), 204);
    configure(&l, sock, LINGER, "console=ttyS0 ms=3000", 1);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"scratch\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
             disk);
    EXPECT_STATUS(api(&l, sock, "PUT", "/drives/scratch", body), 204);
    instance_start(&l, sock);
    live_wait_for(&l, "linger: up on 1 cpus");
    EXPECT_STATUS(api(&l, sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 204);
    EXPECT_STATUS(api(&l, sock, "GET", "/", NULL), 200);
    EXPECT_STATUS(api(&l, sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 204);
    cr_assert_eq(live_finish(&l), 0, "stderr:\n%s", l.err);
    slurp(mpath, text, sizeof(text));
    for (char *save = NULL, *t = strtok_r(text, "\n", &save); t && nlines < 8;
         t = strtok_r(NULL, "\n", &save))
        lines[nlines++] = t;
    cr_assert_eq(nlines, 3, "two FlushMetrics and the exit: %u lines", nlines);
    for (unsigned i = 0; i < nlines; i++) {
        cr_assert(lines[i][0] == '{' && lines[i][strlen(lines[i]) - 1] == '}', "%s", lines[i]);
        cr_assert(strstr(lines[i], "\"utc_timestamp_ms\":"), "%s", lines[i]);
        cr_assert(strstr(lines[i], "\"block_scratch\":{"), "%s", lines[i]);
        cr_assert_geq(metric(lines[i], "block_scratch", "read_count"), 0, "%s", lines[i]);
        cr_assert_geq(metric(lines[i], "vcpu", "exits_io_out"), 0, "%s", lines[i]);
    }
    /* Deltas: the PUTs before boot are in the first line only; the GET
     * between the flushes is in the second. */
    cr_assert_geq(metric(lines[0], "api_server", "put_requests"), 6, "%s", lines[0]);
    cr_assert_eq(metric(lines[0], "api_server", "error_responses"), 1, "%s", lines[0]);
    cr_assert_eq(metric(lines[1], "api_server", "get_requests"), 1, "%s", lines[1]);
    cr_assert_eq(metric(lines[1], "api_server", "put_requests"), 1, "%s", lines[1]);
    cr_assert_eq(metric(lines[1], "api_server", "error_responses"), 0, "%s", lines[1]);
    cr_assert_gt(metric(lines[0], "vcpu", "exits_io_out"), 0, "the boot's console output: %s",
                 lines[0]);
    cr_assert_gt(metric(lines[2], "vcpu", "exits_io_out"), 0, "'linger: done': %s", lines[2]);
    unlink(mpath);
    unlink(disk);
}

Test(api, metrics_path_option, .timeout = 600)
{
    char cfgpath[] = "/tmp/flint-e2e-cfg-XXXXXX", mpath[] = "/tmp/flint-e2e-metrics-XXXXXX";
    char json[1024], text[65536];
    int fd = mkstemp(mpath);

    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(json, sizeof(json),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"}}",
             HELLO_ELF);
    write_file(cfgpath, json);
    char *argv[] = {FLINT_BIN, "--no-api", "--config-file", cfgpath, "--metrics-path", mpath, NULL};
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    cr_assert_eq(r.status, 0, "stdout:\n%s\nstderr:\n%s", r.out, r.err);
    flint_result_free(&r);
    slurp(mpath, text, sizeof(text));
    cr_assert_eq(count_lines(text), 1, "the exit line: %s", text);
    cr_assert_gt(metric(text, "vcpu", "exits_io_out"), 0, "%s", text);
    cr_assert_eq(metric(text, "api_server", "put_requests"), 0, "%s", text);

    char *argv2[] = {FLINT_BIN, "--no-api",       "--config-file",
                     cfgpath,   "--metrics-path", "/nonexistent-dir/m",
                     NULL};
    r = run_cmd(argv2, TIMEOUT_S);
    cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
    cr_assert(strstr(r.err, "--metrics-path: cannot open '/nonexistent-dir/m'"), "%s", r.err);
    flint_result_free(&r);
    unlink(cfgpath);
    unlink(mpath);
}

/* ---- the socket path, a failed start, signals ---- */

Test(api, an_existing_socket_path_is_refused)
{
    char sock[108];

    new_sock_path(sock, sizeof(sock));
    int fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    char *argv[] = {FLINT_BIN, "--api-sock", sock, NULL};
    struct flint_result r = run_cmd(argv, TIMEOUT_S);
    cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
    cr_assert(strstr(r.err, "already exists; remove it or choose another --api-sock"), "%s", r.err);
    cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
    cr_assert(path_exists(sock), "someone else's file is left alone");
    unlink(sock);
    flint_result_free(&r);
}

Test(api, a_failed_instance_start_answers_then_exits, .timeout = 600)
{
    char sock[108], kernel[] = "/tmp/flint-e2e-notelf-XXXXXX";
    struct live l;
    struct resp r;

    write_file(kernel, "this is not an ELF kernel");
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, kernel, "console=ttyS0", 1);
    r = api(&l, sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "InstanceStart: kernel ") && strstr(r.body, "flint exits"), "%s",
              r.body);
    cr_assert_eq(live_finish(&l), 152, "stderr:\n%s", l.err);
    /* At the default level (Warning), the log says why as well. */
    cr_assert(strstr(l.err, "Error: API: PUT /actions: 400: InstanceStart: kernel "), "%s", l.err);
    cr_assert_not(path_exists(sock));
    unlink(kernel);
}

Test(api, sigterm_before_boot_removes_the_socket)
{
    char sock[108];
    struct live l;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    EXPECT_STATUS(api(&l, sock, "GET", "/version", NULL), 200);
    kill(l.pid, SIGTERM);
    cr_assert_eq(live_finish(&l), 128 + SIGTERM, "stderr:\n%s", l.err);
    cr_assert_not(path_exists(sock));
}

/* ---- hostile clients while the guest runs ---- */

static bool never(const char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return false;
}

/* Send `req`, expect a 400 naming `needle` and then the close. */
static void expect_400_and_close(struct live *l, const char *sock, const void *req, size_t len,
                                 const char *needle)
{
    char buf[8192] = "";
    bool eof;
    int fd = sock_connect_l(l, sock);

    send_some(fd, req, len);
    read_until(l, fd, buf, sizeof(buf), 0, never, &eof, 60);
    cr_assert(eof, "the connection is closed");
    cr_assert(strstr(buf, "HTTP/1.1 400 Bad Request"), "%s", buf);
    cr_assert(strstr(buf, needle), "'%s' lacks '%s'", buf, needle);
    close(fd);
}

Test(api, http_api_max_payload_size_sets_the_body_limit)
{
    char sock[108], req[512];
    struct live l;
    /* 83 bytes: under Firecracker's default, over this flint's 64. */
    const char *big =
        "{\"vcpu_count\": 2,                                          \"mem_size_mib\": 256}";
    int n;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, "--http-api-max-payload-size", "64");
    n = snprintf(req, sizeof(req), "PUT /machine-config HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(big), big);
    expect_400_and_close(&l, sock, req, (size_t)n, "larger than the limit of 64 bytes");
    EXPECT_STATUS(api(&l, sock, "GET", "/machine-config", NULL), 200);
    cr_assert_eq(api(&l, sock, "GET", "/machine-config", NULL).body[0], '{');
    cr_assert_null(strstr(api(&l, sock, "GET", "/machine-config", NULL).body, "\"vcpu_count\":2"),
                   "the refused body changed nothing");
    EXPECT_STATUS(api(&l, sock, "PATCH", "/machine-config", "{\"vcpu_count\": 2}"), 204);
    cr_assert(strstr(api(&l, sock, "GET", "/machine-config", NULL).body, "\"vcpu_count\":2"));
    kill(l.pid, SIGTERM);
    cr_assert_eq(live_finish(&l), 128 + SIGTERM, "stderr:\n%s", l.err);
}

static unsigned count_str(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static size_t thousand_answers(const char *buf, size_t len)
{
    (void)len;
    return count_str(buf, "HTTP/1.1 200 OK");
}

static bool have_thousand(const char *buf, size_t len)
{
    return thousand_answers(buf, len) >= 1000;
}

Test(api, hostile_clients_get_400s_or_a_close_while_the_vm_runs, .timeout = 900)
{
    char sock[108], *big, *all;
    struct live l;
    struct resp r;
    bool eof;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, LINGER, "console=ttyS0 ms=10000", 1);
    instance_start(&l, sock);
    live_wait_for(&l, "linger: up on 1 cpus");

    /* Truncated headers, then the client goes away. */
    int fd = sock_connect(sock);
    send_all(fd, "PUT /machine-config HTTP/1.1\r\nContent-Le", 40);
    close(fd);
    /* A huge Content-Length. */
    const char *huge = "PUT /drives/x HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n{";
    expect_400_and_close(&l, sock, huge, strlen(huge), "larger than the limit of 51200");
    /* Binary garbage. */
    unsigned char junk[4096];
    unsigned seed = 99;
    for (size_t i = 0; i < sizeof(junk); i++) {
        seed = seed * 1103515245u + 12345u;
        junk[i] = (unsigned char)(seed >> 16);
    }
    expect_400_and_close(&l, sock, junk, sizeof(junk), "malformed HTTP request");
    /* Chunked encoding and an endless header. */
    const char *chunked = "PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect_400_and_close(&l, sock, chunked, strlen(chunked), "Transfer-Encoding");
    big = malloc(65536);
    memset(big, 'a', 65536);
    memcpy(big, "GET / HTTP/1.1\r\nX-Long: ", 24);
    expect_400_and_close(&l, sock, big, 65536, "exceed 8192 bytes");
    free(big);

    /* 1000 requests in a row on one connection. */
    const char *one = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    size_t n1 = strlen(one), cap = 1 << 20;
    all = malloc(n1 * 1000);
    for (int i = 0; i < 1000; i++)
        memcpy(all + (size_t)i * n1, one, n1);
    char *answers = malloc(cap);
    answers[0] = '\0';
    fd = sock_connect(sock);
    /* Write in pieces, reading in between, so neither side's buffer fills. */
    size_t got = 0;
    for (size_t off = 0; off < n1 * 1000; off += 100 * n1) {
        send_all(fd, all + off, 100 * n1);
        got = read_until(&l, fd, answers, cap, got, never, &eof, 0.05);
    }
    got = read_until(&l, fd, answers, cap, got, have_thousand, &eof, 120);
    cr_assert_eq(thousand_answers(answers, got), 1000, "connection closed: %d", eof);
    cr_assert_eq(count_str(answers, "\"state\":\"Running\""), 1000);
    cr_assert_not(eof);
    close(fd);
    free(all);
    free(answers);

    /* A slow-loris: one byte every 500 ms; closed after the 5 s deadline. */
    fd = sock_connect(sock);
    const char *slow = "GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    double t0 = now_s();
    char sink[256] = "";
    eof = false;
    for (size_t i = 0; slow[i] && !eof; i++) {
        if (send(fd, slow + i, 1, MSG_NOSIGNAL) < 0)
            break;
        read_until(&l, fd, sink, sizeof(sink), 0, never, &eof, 0.5);
    }
    read_until(&l, fd, sink, sizeof(sink), 0, never, &eof, 30);
    cr_assert(eof, "the slow-loris is closed");
    cr_assert_eq(sink[0], '\0', "and gets no answer: %s", sink);
    cr_assert_lt(now_s() - t0, 30.0, "within the request deadline (plus slack)");
    close(fd);

    /* Through all this the VM ran on and the API still answers. */
    r = api(&l, sock, "GET", "/", NULL);
    cr_assert(strstr(r.body, "\"state\":\"Running\""), "%s", r.body);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "linger: done"), "%s", l.out);
}

/* ---- seccomp after an API boot ---- */

/* Seccomp mode of every flint thread: n threads, how many in mode 2. */
static unsigned filtered_threads(pid_t pid, unsigned *total, char *desc, size_t desclen)
{
    char path[64];
    unsigned in_mode = 0;
    size_t used = 0;
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    cr_assert_not_null(dir);
    *total = 0;
    desc[0] = '\0';
    while ((d = readdir(dir))) {
        char file[sizeof(path) + sizeof(d->d_name) + 8], status[4096];
        if (d->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%s/status", path, d->d_name);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, status, sizeof(status) - 1);
        close(fd);
        if (n <= 0)
            continue;
        status[n] = '\0';
        const char *m = strstr(status, "\nSeccomp:");
        int mode = m ? atoi(m + 9) : -1;
        (*total)++;
        in_mode += mode == 2;
        if (used < desclen)
            used += (size_t)snprintf(desc + used, desclen - used, "  tid %s: Seccomp %d\n",
                                     d->d_name, mode);
    }
    closedir(dir);
    return in_mode;
}

Test(api, every_thread_is_filtered_after_an_api_boot, .timeout = 600)
{
#ifdef FLINT_SANITIZED
    cr_skip_test("sanitizer builds run without seccomp filters (docs/SECURITY.md)");
#endif
    char sock[108], desc[1024];
    struct live l;
    unsigned total = 0, in_mode = 0;

    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    /* Unfiltered before boot: it still has files to open. */
    EXPECT_STATUS(api(&l, sock, "GET", "/", NULL), 200);
    cr_assert_eq(filtered_threads(l.pid, &total, desc, sizeof(desc)), 0, "%s", desc);
    configure(&l, sock, LINGER, "console=ttyS0 cpus=2 ms=4000", 2);
    instance_start(&l, sock);
    live_wait_for(&l, "linger: up on 2 cpus");
    for (double end = now_s() + 30; now_s() < end && !strstr(l.out, "linger: done");
         live_pump(&l, 50)) {
        in_mode = filtered_threads(l.pid, &total, desc, sizeof(desc));
        if (total >= 3 && in_mode == total)
            break;
    }
    cr_assert_geq(total, 3, "the VMM thread and 2 vCPUs:\n%s", desc);
    cr_assert_eq(in_mode, total, "every thread filtered:\n%s", desc);
    /* The API is served under the filter, and the socket removed at exit. */
    EXPECT_STATUS(api(&l, sock, "GET", "/vm/config", NULL), 200);
    EXPECT_STATUS(api(&l, sock, "PUT", "/drives/x", "{}"), 400);
    cr_assert_eq(live_finish(&l), 0, "stderr:\n%s", l.err);
    cr_assert_not(path_exists(sock));
}

/* ---- rate limiters ---- */

#define RL_SECTORS 8192 /* 4 MiB */
#define RL_SEED    7

/* A RL_SECTORS image holding blkcheck's pattern (guest-shim/examples/blkcheck). */
static void make_pattern_disk(char *path)
{
    static uint8_t buf[RL_SECTORS * 512];
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    for (uint64_t s = 0; s < RL_SECTORS; s++) {
        uint8_t *p = buf + s * 512;
        uint64_t seed = RL_SEED;
        memcpy(p, &s, 8);
        memcpy(p + 8, &seed, 8);
        for (int i = 16; i < 512; i++)
            p[i] = (uint8_t)(s * 7 + seed * 13 + (uint64_t)i);
    }
    cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fd);
}

/* The sum of block.key over every metrics line in the file (deltas), or -1
 * if no line has it. */
static long long metric_sum(const char *path, const char *block, const char *key)
{
    static char text[1 << 20];
    long long sum = -1;

    slurp(path, text, sizeof(text));
    for (char *save = NULL, *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        long long v = metric(t, block, key);
        if (v >= 0)
            sum = (sum < 0 ? 0 : sum) + v;
    }
    return sum;
}

/* Boot blkcheck reading the whole pattern disk through drive "data" with
 * `limiter` (JSON, or "null"); returns the seconds from InstanceStart to
 * the exit and the throttled events the metrics counted. */
static double read_disk_with(const char *limiter, long long *throttled)
{
    char sock[108], mpath[] = "/tmp/flint-e2e-metrics-XXXXXX", disk[] = "/tmp/flint-e2e-rl-XXXXXX";
    char body[1024], args[128];
    struct live l;
    double t0, secs;
    int fd = mkstemp(mpath);

    cr_assert_geq(fd, 0);
    close(fd);
    make_pattern_disk(disk);
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", mpath);
    EXPECT_STATUS(api(&l, sock, "PUT", "/metrics", body), 204);
    snprintf(args, sizeof(args), "console=ttyS0 mode=read seed=%d sectors=%d", RL_SEED, RL_SECTORS);
    configure(&l, sock, BLKCHECK_ELF, args, 1);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
             "\"is_read_only\": true, \"rate_limiter\": %s}",
             disk, limiter);
    EXPECT_STATUS(api(&l, sock, "PUT", "/drives/data", body), 204);
    t0 = now_s();
    instance_start(&l, sock);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    secs = now_s() - t0;
    cr_assert(strstr(l.out, "blkcheck: OK 8192 sectors"), "%s", l.out);
    *throttled = metric_sum(mpath, "block_data", "rate_limiter_throttled_events");
    cr_assert_geq(*throttled, 0, "no block_data.rate_limiter_throttled_events in the metrics");
    unlink(mpath);
    unlink(disk);
    return secs;
}

Test(api, drive_bandwidth_limit_throttles_the_guest, .timeout = 1200)
{
    long long throttled;
    double secs;

    /* 1 MiB/s with a full 1 MiB bucket at the start: reading 4 MiB takes
     * 3 s at least, however fast or slow the machine. */
    secs =
        read_disk_with("{\"bandwidth\": {\"size\": 1048576, \"refill_time\": 1000}}", &throttled);
    cr_assert_geq(secs, 3.0, "4 MiB at 1 MiB/s took %.2f s", secs);
    cr_assert_gt(throttled, 0);
    /* The same without a limiter is never throttled. */
    read_disk_with("null", &throttled);
    cr_assert_eq(throttled, 0);
}

/* A private network namespace with a persistent tap `name` (down: flint
 * only needs to open it). */
static void netns_with_tap(const char *name)
{
    struct ifreq ifr = {0};
    int fd;

    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s (needs root)",
                 strerror(errno));
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0, "/dev/net/tun: %s (load the tun module)", strerror(errno));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "TUNSETIFF: %s", strerror(errno));
    cr_assert_eq(ioctl(fd, TUNSETPERSIST, 1), 0, "TUNSETPERSIST: %s", strerror(errno));
    close(fd);
}

Test(api, patch_rate_limiters_on_a_running_vm, .timeout = 600)
{
    char sock[108], disk[] = "/tmp/flint-e2e-disk-XXXXXX", body[512];
    struct live l;
    struct resp r;
    int fd = mkstemp(disk);

    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    netns_with_tap("rltap0");
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, LINGER, "console=ttyS0 ms=4000", 1);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"scratch\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
             disk);
    EXPECT_STATUS(api(&l, sock, "PUT", "/drives/scratch", body), 204);
    EXPECT_STATUS(api(&l, sock, "PUT", "/network-interfaces/eth0",
                      "{\"iface_id\": \"eth0\", \"host_dev_name\": \"rltap0\", "
                      "\"rx_rate_limiter\": {\"ops\": {\"size\": 100, \"refill_time\": 10}}}"),
                  204);
    r = api(&l, sock, "PATCH", "/drives/scratch", "{\"drive_id\": \"scratch\"}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "before starting"), "%s", r.body);
    instance_start(&l, sock);
    live_wait_for(&l, "linger: up on 1 cpus");

    EXPECT_STATUS(api(&l, sock, "PATCH", "/drives/scratch",
                      "{\"drive_id\": \"scratch\", \"rate_limiter\": {\"bandwidth\": "
                      "{\"size\": 1000, \"one_time_burst\": 5, \"refill_time\": 100}}}"),
                  204);
    EXPECT_STATUS(api(&l, sock, "PATCH", "/network-interfaces/eth0",
                      "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"ops\": {\"size\": 5, "
                      "\"refill_time\": 10}}}"),
                  204);
    r = api(&l, sock, "GET", "/vm/config", NULL);
    EXPECT_STATUS(r, 200);
    cr_assert(strstr(r.body, "\"rate_limiter\":{\"bandwidth\":{\"size\":1000,\"one_time_burst\":5,"
                             "\"refill_time\":100},\"ops\":null}"),
              "%s", r.body);
    cr_assert(strstr(r.body, "\"rx_rate_limiter\":{\"bandwidth\":null,\"ops\":{\"size\":100,"
                             "\"one_time_burst\":0,\"refill_time\":10}},\"tx_rate_limiter\":"
                             "{\"bandwidth\":null,\"ops\":{\"size\":5,\"one_time_burst\":0,"
                             "\"refill_time\":10}}"),
              "%s", r.body);

    /* Bad bodies: 400 naming the field, and nothing changes. */
    r = api(&l, sock, "PATCH", "/drives/scratch",
            "{\"drive_id\": \"scratch\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1}}}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "rate_limiter.bandwidth.refill_time: missing required field"), "%s",
              r.body);
    r = api(&l, sock, "PATCH", "/network-interfaces/eth0",
            "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"ops\": {\"size\": -5, "
            "\"refill_time\": 1}}}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "rx_rate_limiter.ops.size: must be a non-negative integer"), "%s",
              r.body);
    r = api(&l, sock, "PATCH", "/network-interfaces/eth9", "{\"iface_id\": \"eth9\"}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "no network interface 'eth9'"), "%s", r.body);
    r = api(&l, sock, "PATCH", "/drives/scratch",
            "{\"drive_id\": \"scratch\", \"path_on_host\": \"/tmp/flint-no-such-image\", "
            "\"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1}}}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "path_on_host: "), "%s", r.body);
    r = api(&l, sock, "GET", "/vm/config", NULL);
    cr_assert(strstr(r.body, "\"size\":1000,\"one_time_burst\":5"), "%s", r.body);
    cr_assert(strstr(r.body, "\"ops\":{\"size\":100,"), "%s", r.body);

    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "linger: done"), "%s", l.out);
    unlink(disk);
}

/* ---- PATCH /drives: a new image under a running guest ---- */

/* A `mib` MiB image whose first sector is `c` repeated. */
static void make_image(char *path, size_t mib, char c)
{
    char sector[512];
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)(mib << 20)), 0);
    memset(sector, c, sizeof(sector));
    cr_assert_eq(pwrite(fd, sector, sizeof(sector), 0), (ssize_t)sizeof(sector));
    close(fd);
}

static void patch_drive(struct live *l, const char *sock, const char *url, const char *id,
                        const char *path, int want, const char *needle)
{
    char body[512];
    struct resp r;

    snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\"}", id, path);
    r = api(l, sock, "PATCH", url, body);
    EXPECT_STATUS(r, want);
    if (needle)
        cr_assert(strstr(r.body, needle), "PATCH %s %s: %s lacks '%s'", url, body, r.body, needle);
}

Test(api, patch_drive_swaps_the_image_under_a_running_guest, .timeout = 900)
{
    char sock[108], a[] = "/tmp/flint-e2e-swap-a-XXXXXX", b[] = "/tmp/flint-e2e-swap-b-XXXXXX";
    char body[512];
    struct live l;
    struct resp r;

    make_image(a, 1, 'A');
    make_image(b, 3, 'B');
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, BLKSWAP, "console=ttyS0 hold_ms=3000", 1);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"disk\", \"path_on_host\": \"%s\", \"is_root_device\": false}", a);
    EXPECT_STATUS(api(&l, sock, "PUT", "/drives/disk", body), 204);
    /* Not before boot. */
    patch_drive(&l, sock, "/drives/disk", "disk", b, 400,
                "not supported before starting the microVM");
    instance_start(&l, sock);
    live_wait_for(&l, "blkswap: waiting for a configuration change");
    cr_assert(strstr(l.out, "blkswap: capacity 2048 sector0 'AAAAAAAAAAAAAAAA'"), "%s", l.out);
    /* Refused after boot, under the VMM thread's seccomp filter; nothing
     * changes. */
    patch_drive(&l, sock, "/drives/nope", "nope", b, 400, "drive_id: no drive 'nope'");
    patch_drive(&l, sock, "/drives/disk", "disk", "/tmp/flint-e2e-no-such-image", 400,
                "No such file or directory");
    patch_drive(&l, sock, "/drives/disk", "disk", "/tmp", 400, "Is a directory");
    patch_drive(&l, sock, "/drives/disk", "other", b, 400,
                "drive_id 'other' in the body does not match 'disk' in the path");
    r = api(&l, sock, "PATCH", "/drives/disk", "{\"path_on_host\": \"/tmp\"}");
    EXPECT_STATUS(r, 400);
    cr_assert(strstr(r.body, "missing required field 'drive_id'"), "%s", r.body);
    r = api(&l, sock, "GET", "/vm/config", NULL);
    EXPECT_STATUS(r, 200);
    cr_assert(strstr(r.body, a) && !strstr(r.body, b), "%s", r.body);
    cr_assert_not(strstr(l.out, "changed"), "a refused PATCH told the guest nothing:\n%s", l.out);
    /* The swap: the guest is told, and reads the new image. */
    patch_drive(&l, sock, "/drives/disk", "disk", b, 204, NULL);
    live_wait_for(&l, "blkswap: changed:");
    r = api(&l, sock, "GET", "/vm/config", NULL);
    EXPECT_STATUS(r, 200);
    cr_assert(strstr(r.body, b) && !strstr(r.body, a), "GET /vm/config shows the new image: %s",
              r.body);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "blkswap: changed: capacity 6144 sector0 'BBBBBBBBBBBBBBBB' last "
                            "sector ok\nblkswap: done"),
              "%s", l.out);
    cr_assert_not(path_exists(sock));
    unlink(a);
    unlink(b);
}

/* While paused the devices take no new work (vmm_quiesce_virtio), so a
 * snapshot sees guest memory stand still; resumed, they pick up what the
 * guest asks: here a drive swapped while paused is read at once. */
Test(api, drive_serves_the_guest_after_pause_and_resume, .timeout = 900)
{
    char sock[108], a[] = "/tmp/flint-e2e-pause-a-XXXXXX", b[] = "/tmp/flint-e2e-pause-b-XXXXXX";
    char body[512];
    struct live l;

    make_image(a, 1, 'A');
    make_image(b, 3, 'B');
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    configure(&l, sock, BLKSWAP, "console=ttyS0 hold_ms=1000", 1);
    snprintf(body, sizeof(body),
             "{\"drive_id\": \"disk\", \"path_on_host\": \"%s\", \"is_root_device\": false}", a);
    EXPECT_STATUS(api(&l, sock, "PUT", "/drives/disk", body), 204);
    instance_start(&l, sock);
    live_wait_for(&l, "blkswap: waiting for a configuration change");
    EXPECT_STATUS(api(&l, sock, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
    patch_drive(&l, sock, "/drives/disk", "disk", b, 204, NULL);
    usleep(300 * 1000);
    EXPECT_STATUS(api(&l, sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);
    live_wait_for(&l, "blkswap: changed:");
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "blkswap: changed: capacity 6144 sector0 'BBBBBBBBBBBBBBBB' last "
                            "sector ok\nblkswap: done"),
              "%s", l.out);
    unlink(a);
    unlink(b);
}

/* ---- the serial console in the API mode ---- */

Test(api, put_serial_sends_the_guest_output_to_a_file, .timeout = 600)
{
    char sock[108], out[] = "/tmp/flint-e2e-api-serial-XXXXXX", body[256], text[8192] = {0};
    int fd = mkstemp(out);
    struct live l;

    cr_assert_geq(fd, 0);
    new_sock_path(sock, sizeof(sock));
    start_flint(&l, sock, NULL, NULL);
    snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", out);
    EXPECT_STATUS(api(&l, sock, "PUT", "/serial", body), 204);
    /* A guest that stays up a while: the PUT after boot must reach a
     * running flint (hello ends at once, and flint with it). */
    configure(&l, sock, LINGER, "console=ttyS0 cpus=1 ms=3000", 1);
    struct resp r = api(&l, sock, "GET", "/vm/config", NULL);
    cr_assert(strstr(r.body, "\"serial\":{\"serial_out_path\""), "%s", r.body);
    instance_start(&l, sock);
    EXPECT_STATUS(api(&l, sock, "PUT", "/serial", body), 400);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert_null(strstr(l.out, "linger: done"), "not on stdout: %s", l.out);
    cr_assert_geq(read(fd, text, sizeof(text) - 1), 0);
    cr_assert(strstr(text, "linger: up on 1 cpus") && strstr(text, "linger: done"),
              "the file has: %s", text);
    close(fd);
    unlink(out);
}

Test(api, stdin_feeds_the_guest_in_the_api_mode, .timeout = 600)
{
    char sock[108];
    char *argv[] = {FLINT_BIN, "--api-sock", sock, NULL};
    struct live l;
    int p[2];

    new_sock_path(sock, sizeof(sock));
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    live_start_stdin(&l, argv, p[0]);
    close(p[0]);
    wait_socket(&l, sock);
    configure(&l, sock, GUEST_DIR "/echoline.elf", "console=ttyS0", 1);
    instance_start(&l, sock);
    live_wait_for(&l, "echoline: ready");
    cr_assert_eq(write(p[1], "api mode\nquit\n", 14), 14);
    cr_assert_eq(live_finish(&l), 0, "stdout:\n%s\nstderr:\n%s", l.out, l.err);
    cr_assert(strstr(l.out, "echo: API MODE\n"), "%s", l.out);
    close(p[1]);
}
