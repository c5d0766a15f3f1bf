/* Unit tests: the control API's server on a real Unix socket and a real
 * io_uring loop, driven step by step from the test thread, which also
 * plays the clients (non-blocking sockets). No VM: the VM side is tests/fake_vm.h. */
#include <criterion/criterion.h>

#include "api.h"
#include "fake_vm.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct evloop loop;
static struct api_server srv;
static struct vm_config cfg;
static struct api_ctl ctl;
static char sock_path[108];
static int fatal_calls;

static void on_fatal(void *opaque)
{
    (void)opaque;
    fatal_calls++;
}

static void setup(void)
{
    static unsigned n;
    char err[256];

    config_init(&cfg);
    memset(&ctl, 0, sizeof(ctl));
    ctl.cfg = &cfg;
    ctl.instance_id = "srv-test";
    ctl.vmm_version = "1.2.3";
    ctl.ops = &fake_vm_ops;
    fake_vm_start_rc = fatal_calls = 0;
    cr_assert_eq(evloop_init(&loop, 128), 0);
    snprintf(sock_path, sizeof(sock_path), "/tmp/flint-api-test-%d-%u.sock", (int)getpid(), n++);
    unlink(sock_path);
    cr_assert_eq(api_server_init(&srv, &loop, sock_path, &ctl, err, sizeof(err)), 0, "%s", err);
    srv.on_fatal = on_fatal;
}

static void teardown(void)
{
    struct stat st;

    evloop_fini(&loop);
    api_server_close(&srv);
    cr_assert_neq(lstat(sock_path, &st), 0, "the socket path is removed");
    config_free(&cfg);
}

TestSuite(api_server, .init = setup, .fini = teardown, .timeout = 60);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run the loop for about ms milliseconds. */
static void pump(int ms)
{
    double end = now_s() + ms / 1000.0;

    do {
        cr_assert_geq(evloop_run_once(&loop, false), 0);
        usleep(500);
    } while (now_s() < end);
}

static int client(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    strcpy(a.sun_path, sock_path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
    cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    pump(5);
    return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
    double end = now_s() + 20;

    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            cr_assert(errno == EAGAIN, "send: %s", strerror(errno));
            cr_assert(now_s() < end, "send stuck");
            pump(1);
            continue;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

struct inbox {
    char *data;
    size_t len, cap;
    bool eof;
};

/* Read what is there without waiting. */
static void drain(int fd, struct inbox *in)
{
    for (;;) {
        if (in->len + 4097 > in->cap) {
            in->cap = in->cap ? in->cap * 2 : 65536;
            in->data = realloc(in->data, in->cap);
        }
        ssize_t n = recv(fd, in->data + in->len, in->cap - in->len - 1, 0);
        if (n > 0) {
            in->len += (size_t)n;
            in->data[in->len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            in->eof = true;
        if (!in->data)
            in->data = calloc(1, 1);
        return;
    }
}

static unsigned count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Pump and read until `needle` appears `times` times, or EOF, or timeout. */
static void wait_for(int fd, struct inbox *in, const char *needle, unsigned times, double secs)
{
    double end = now_s() + secs;

    do {
        pump(1);
        drain(fd, in);
    } while (!in->eof && count(in->data, needle) < times && now_s() < end);
}

static void wait_eof(int fd, struct inbox *in, double secs)
{
    double end = now_s() + secs;

    do {
        pump(2);
        drain(fd, in);
    } while (!in->eof && now_s() < end);
}

static void inbox_free(struct inbox *in)
{
    free(in->data);
    memset(in, 0, sizeof(*in));
}

static const char get_root[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

Test(api_server, get_over_the_socket)
{
    struct inbox in = {0};
    int fd = client();

    send_str(fd, get_root);
    wait_for(fd, &in, "}", 1, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 200 OK\r\n"), "%s", in.data);
    cr_assert(strstr(in.data, "Content-Type: application/json\r\n"), "%s", in.data);
    cr_assert(strstr(in.data, "\"id\":\"srv-test\""), "%s", in.data);
    cr_assert(strstr(in.data, "\"state\":\"Not started\""), "%s", in.data);
    cr_assert_not(in.eof, "keep-alive");
    /* The same connection serves the next request. */
    send_str(fd, "PUT /machine-config HTTP/1.1\r\nContent-Length: 35\r\n\r\n"
                 "{\"vcpu_count\":3,\"mem_size_mib\":256}");
    wait_for(fd, &in, "204 No Content", 1, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 204 No Content\r\n"), "%s", in.data);
    cr_assert_eq(cfg.vcpus, 3);
    close(fd);
    inbox_free(&in);
}

Test(api_server, existing_path_is_refused)
{
    struct api_server other;
    char err[256];
    struct evloop l2;

    cr_assert_eq(evloop_init(&l2, 8), 0);
    cr_assert_eq(api_server_init(&other, &l2, sock_path, &ctl, err, sizeof(err)), -EEXIST);
    cr_assert(strstr(err, sock_path) && strstr(err, "already exists; remove it"), "%s", err);
    evloop_fini(&l2);
    /* Refused without touching the path of the server that owns it. */
    struct stat st;
    cr_assert_eq(lstat(sock_path, &st), 0);
}

Test(api_server, a_thousand_requests_in_a_row_on_one_connection)
{
    const char *one = "GET /version HTTP/1.1\r\n\r\n";
    size_t n1 = strlen(one);
    char *all = malloc(n1 * 1000);
    struct inbox in = {0};
    int fd = client();

    for (int i = 0; i < 1000; i++)
        memcpy(all + (size_t)i * n1, one, n1);
    send_all(fd, all, n1 * 1000);
    wait_for(fd, &in, "HTTP/1.1 200 OK", 1000, 30);
    cr_assert_eq(count(in.data, "HTTP/1.1 200 OK"), 1000);
    cr_assert_eq(count(in.data, "\"firecracker_version\":\"1.2.3\""), 1000);
    cr_assert_not(in.eof);
    close(fd);
    free(all);
    inbox_free(&in);
}

Test(api_server, a_slow_client_does_not_delay_others)
{
    struct inbox a = {0}, b = {0};
    int slow = client(), fast = client();

    send_str(slow, "PUT /machine-config HTTP/1.1\r\nContent-Length: 35\r\n\r\n{\"vcpu");
    pump(20);
    send_str(fast, get_root);
    wait_for(fast, &b, "}", 1, 10);
    cr_assert(strstr(b.data, "HTTP/1.1 200 OK"), "%s", b.data);
    drain(slow, &a);
    cr_assert_eq(a.len, 0, "nothing for the half-sent request yet");
    send_str(slow, "_count\":2,\"mem_size_mib\":256}");
    wait_for(slow, &a, "204", 1, 10);
    cr_assert(strstr(a.data, "HTTP/1.1 204"), "%s", a.data);
    close(slow);
    close(fast);
    inbox_free(&a);
    inbox_free(&b);
}

Test(api_server, slowloris_is_closed_after_the_request_timeout)
{
    struct inbox in = {0};
    int fd;

    srv.request_timeout_ns = 300ull * 1000 * 1000;
    fd = client();
    send_str(fd, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 10 && !in.eof; i++) {
        send(fd, "X", 1, MSG_NOSIGNAL); /* one byte every 100 ms */
        pump(100);
        drain(fd, &in);
    }
    wait_eof(fd, &in, 5);
    cr_assert(in.eof, "the slow request's connection is closed");
    cr_assert_eq(in.len, 0, "%s", in.data);
    cr_assert_eq(srv.timed_out, 1);
    close(fd);
    inbox_free(&in);
}

Test(api_server, idle_connections_are_closed)
{
    struct inbox in = {0};
    int fd;

    srv.idle_timeout_ns = 300ull * 1000 * 1000;
    fd = client();
    send_str(fd, get_root);
    wait_for(fd, &in, "}", 1, 10);
    cr_assert_not(in.eof);
    wait_eof(fd, &in, 5);
    cr_assert(in.eof);
    cr_assert_eq(srv.timed_out, 0, "idle is not a timed-out request");
    close(fd);
    inbox_free(&in);
}

Test(api_server, a_new_connection_evicts_the_longest_idle_one)
{
    int fds[API_MAX_CONNS], extra;
    struct inbox in = {0}, first = {0};

    for (int i = 0; i < API_MAX_CONNS; i++) {
        fds[i] = client();
        pump(2);
    }
    extra = client();
    send_str(extra, get_root);
    wait_for(extra, &in, "}", 1, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 200"), "%s", in.data);
    wait_eof(fds[0], &first, 5);
    cr_assert(first.eof, "the oldest idle connection made room");
    for (int i = 0; i < API_MAX_CONNS; i++)
        close(fds[i]);
    close(extra);
    inbox_free(&in);
    inbox_free(&first);
}

Test(api_server, busy_connections_are_not_evicted)
{
    int fds[API_MAX_CONNS], extra;
    struct inbox in = {0}, first = {0};

    for (int i = 0; i < API_MAX_CONNS; i++) {
        fds[i] = client();
        send_str(fds[i], "GET / HTTP/1.1\r\n"); /* a request in progress */
    }
    pump(20);
    extra = client();
    wait_eof(extra, &in, 5);
    cr_assert(in.eof, "refused");
    cr_assert_eq(srv.refused, 1);
    /* The busy ones still finish their requests. */
    send_str(fds[0], "\r\n");
    wait_for(fds[0], &first, "}", 1, 10);
    cr_assert(strstr(first.data, "HTTP/1.1 200"), "%s", first.data);
    for (int i = 0; i < API_MAX_CONNS; i++)
        close(fds[i]);
    close(extra);
    inbox_free(&in);
    inbox_free(&first);
}

/* A hostile request gets a 400 with a fault_message, then the close. */
static void expect_refused_and_closed(const char *req, size_t len, const char *needle)
{
    struct inbox in = {0};
    int fd = client();

    send_all(fd, req, len);
    wait_eof(fd, &in, 10);
    cr_assert(in.eof, "closed");
    cr_assert(strstr(in.data, "HTTP/1.1 400 Bad Request\r\n"), "%s", in.data);
    cr_assert(strstr(in.data, "Connection: close\r\n"), "%s", in.data);
    cr_assert(strstr(in.data, needle), "'%s' lacks '%s'", in.data, needle);
    close(fd);
    inbox_free(&in);
}

Test(api_server, hostile_requests_get_400_and_a_close)
{
    unsigned char junk[2048];
    unsigned seed = 7;

    for (size_t i = 0; i < sizeof(junk); i++) {
        seed = seed * 1103515245u + 12345u;
        junk[i] = (unsigned char)(seed >> 16);
    }
    expect_refused_and_closed((const char *)junk, sizeof(junk), "malformed HTTP request");
    const char *huge = "PUT /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n";
    const char *chunked = "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect_refused_and_closed(huge, strlen(huge), "larger than the limit of 51200");
    expect_refused_and_closed(chunked, strlen(chunked), "Transfer-Encoding");
    char big[3 * API_HTTP_MAX_HEADER];
    memset(big, 'h', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    expect_refused_and_closed(big, sizeof(big), "exceed 8192 bytes");
    /* The server still serves. */
    struct inbox in = {0};
    int fd = client();
    send_str(fd, get_root);
    wait_for(fd, &in, "}", 1, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 200"), "%s", in.data);
    close(fd);
    inbox_free(&in);
}

Test(api_server, bad_json_keeps_the_connection)
{
    struct inbox in = {0};
    int fd = client();

    send_str(fd, "PUT /machine-config HTTP/1.1\r\nContent-Length: 5\r\n\r\n{nope");
    send_str(fd, get_root);
    wait_for(fd, &in, "HTTP/1.1", 2, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 400"), "%s", in.data);
    cr_assert(strstr(in.data, "malformed JSON body"), "%s", in.data);
    cr_assert(strstr(in.data, "HTTP/1.1 200"), "%s", in.data);
    cr_assert_not(in.eof);
    close(fd);
    inbox_free(&in);
}

Test(api_server, expect_100_continue)
{
    struct inbox in = {0};
    int fd = client();

    send_str(fd, "PUT /machine-config HTTP/1.1\r\nExpect: 100-continue\r\n"
                 "Content-Length: 35\r\n\r\n");
    wait_for(fd, &in, "100 Continue", 1, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 100 Continue\r\n\r\n"), "%s", in.data);
    send_str(fd, "{\"vcpu_count\":5,\"mem_size_mib\":256}");
    wait_for(fd, &in, "204", 1, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 204"), "%s", in.data);
    cr_assert_eq(cfg.vcpus, 5);
    close(fd);
    inbox_free(&in);
}

Test(api_server, half_closed_client_gets_its_answers)
{
    struct inbox in = {0};
    int fd = client();

    send_str(fd, "GET / HTTP/1.1\r\n\r\nGET /version HTTP/1.1\r\n\r\n");
    shutdown(fd, SHUT_WR);
    wait_eof(fd, &in, 10);
    cr_assert_eq(count(in.data, "HTTP/1.1 200"), 2, "%s", in.data);
    cr_assert(in.eof);
    close(fd);
    inbox_free(&in);
}

Test(api_server, http_1_0_closes_after_the_answer)
{
    struct inbox in = {0};
    int fd = client();

    send_str(fd, "GET / HTTP/1.0\r\n\r\n");
    wait_eof(fd, &in, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 200"), "%s", in.data);
    cr_assert(strstr(in.data, "Connection: close"), "%s", in.data);
    cr_assert(in.eof);
    close(fd);
    inbox_free(&in);
}

Test(api_server, failed_start_answers_then_reports_fatal)
{
    struct inbox in = {0};
    char kernel[] = "/tmp/flint-api-srv-kernel-XXXXXX", req[512];
    int kfd = mkstemp(kernel), fd = client();

    cr_assert_geq(kfd, 0);
    close(kfd);
    int n = snprintf(req, sizeof(req), "{\"kernel_image_path\":\"%s\"}", kernel);
    char put[768];
    snprintf(put, sizeof(put), "PUT /boot-source HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", n, req);
    send_str(fd, put);
    fake_vm_start_rc = 152;
    send_str(fd, "PUT /actions HTTP/1.1\r\nContent-Length: 31\r\n\r\n"
                 "{\"action_type\":\"InstanceStart\"}");
    wait_eof(fd, &in, 10);
    cr_assert(strstr(in.data, "HTTP/1.1 204"), "%s", in.data);
    cr_assert(strstr(in.data, "fake VM refused; flint exits"), "%s", in.data);
    cr_assert(in.eof);
    cr_assert_eq(fatal_calls, 1);
    cr_assert_eq(ctl.fatal_status, 152);
    close(fd);
    unlink(kernel);
    inbox_free(&in);
}

Test(api_server, many_clients_interleaved)
{
    enum { N = 8, ROUNDS = 20 };
    int fds[N];
    struct inbox in[N];

    memset(in, 0, sizeof(in));
    for (int i = 0; i < N; i++)
        fds[i] = client();
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < N; i++)
            send_str(fds[i], "GET /machine-config HTTP/1.1\r\n\r\n");
    for (int i = 0; i < N; i++) {
        wait_for(fds[i], &in[i], "HTTP/1.1 200", ROUNDS, 20);
        cr_assert_eq(count(in[i].data, "HTTP/1.1 200"), ROUNDS, "client %d", i);
        close(fds[i]);
        inbox_free(&in[i]);
    }
}
