/*
 * End-to-end tests: virtio-net over a real tap. Each test process moves
 * into a network namespace of its own (unshare(CLONE_NEWNET): it and
 * everything in it vanish with the process, whatever happens), makes a tap
 * there with iproute2, and runs flint on it while a host thread talks to
 * the guest: ICMP echo (raw socket and busybox ping), UDP echo of many
 * sizes with contents checked, RX pause and resume, and a hostile driver
 * (tests/e2e/guests/nethostile.c) that must not bring flint down.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "run_flint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S  300.0
#define BOOT_S     150 /* for the guest to answer its first packet */
#define REPLY_MS   10000
#define TAP        "flint0"
#define HOST_IP    "10.0.0.1"
#define GUEST_IP   "10.0.0.2"
#define GUEST_MAC  "06:00:00:00:00:02"
#define ECHO_PORT  7
#define NETECHO    NETECHO_ELF
#define NETHOSTILE GUEST_DIR "/nethostile.elf"

/* ---- the namespace and the tap ---- */

static const char *find_tool(const char *const *paths)
{
    for (; *paths; paths++)
        if (access(*paths, X_OK) == 0)
            return *paths;
    return NULL;
}

static const char *ip_tool(void)
{
    static const char *const paths[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip", NULL};
    const char *ip = find_tool(paths);
    cr_assert_not_null(ip, "iproute2's ip is missing: install iproute2 (tools/install-deps)");
    return ip;
}

/* Run `ip ARGS...` and require success. */
#define IP(...) ip_run((char *[]){NULL, __VA_ARGS__, NULL})
static void ip_run(char **argv)
{
    argv[0] = (char *)ip_tool();
    struct flint_result r = run_cmd(argv, 30);
    char cmd[256] = "";
    for (char **a = argv; *a; a++)
        snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s ", *a);
    cr_assert(!r.timed_out && r.status == 0, "%sfailed (status %d): %s%s", cmd, r.status, r.out,
              r.err);
    flint_result_free(&r);
}

static void no_ipv6(const char *conf)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", conf);
    FILE *f = fopen(path, "w");
    if (f) { /* no file: no IPv6 in this kernel */
        fputs("1\n", f);
        fclose(f);
    }
}

/* A private network namespace with tap TAP at HOST_IP/24, up. */
static void netns_with_tap(void)
{
    ip_tool();
    cr_assert_eq(access("/dev/net/tun", R_OK | W_OK), 0,
                 "/dev/net/tun is missing (%s): load the tun module", strerror(errno));
    cr_assert_eq(unshare(CLONE_NEWNET), 0,
                 "unshare(CLONE_NEWNET): %s (the test needs root in the sandbox)", strerror(errno));
    /* No IPv6 chatter (router solicitations, MLD): the guests see only
     * the frames the test sends. */
    no_ipv6("all");
    no_ipv6("default");
    IP("link", "set", "lo", "up");
    IP("tuntap", "add", "dev", TAP, "mode", "tap");
    IP("addr", "add", HOST_IP "/24", "dev", TAP);
    IP("link", "set", TAP, "up");
}

/* ---- host-side traffic, on a thread while flint runs ---- */

static void set_timeout(int fd, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

struct traffic {
    const char *guest_ip;
    int exit_status;            /* asked of the guest at the end */
    unsigned rounds;            /* UDP sizes to try: every size list entry up to 1472 */
    bool pause_test;            /* RX pause and resume */
    volatile bool flint_exited; /* set by the main thread: stop waiting */
    /* results */
    bool up, ping_ok, busybox_ok, udp_ok, pause_ok, bye;
    unsigned udp_echoed, paused_echoed;
    char why[512];
};

static uint16_t icmp_csum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t sum = 0;
    for (; n > 1; b += 2, n -= 2)
        sum += (uint32_t)(b[0] << 8 | b[1]);
    if (n)
        sum += (uint32_t)b[0] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons((uint16_t)~sum);
}

/* One ICMP echo with a payload of `len` bytes; true if the reply carried
 * the same payload back within ms. */
static bool ping_once(int fd, const struct sockaddr_in *to, uint16_t seq, size_t len, unsigned ms)
{
    uint8_t pkt[1500], back[2048];
    struct icmphdr *ic = (struct icmphdr *)pkt;

    memset(pkt, 0, sizeof(*ic));
    ic->type = ICMP_ECHO;
    ic->un.echo.id = htons(0x4e54);
    ic->un.echo.sequence = htons(seq);
    for (size_t i = 0; i < len; i++)
        pkt[sizeof(*ic) + i] = (uint8_t)(i * 13 + seq);
    ic->checksum = icmp_csum(pkt, sizeof(*ic) + len);
    if (sendto(fd, pkt, sizeof(*ic) + len, 0, (const struct sockaddr *)to, sizeof(*to)) < 0)
        return false;
    double end = now_s() + ms / 1000.0;
    while (now_s() < end) {
        ssize_t n = recv(fd, back, sizeof(back), 0);
        if (n < 0)
            continue;
        struct iphdr *iph = (struct iphdr *)back;
        size_t ihl = (size_t)iph->ihl * 4;
        struct icmphdr *r = (struct icmphdr *)(back + ihl);
        if ((size_t)n < ihl + sizeof(*r) || r->type != ICMP_ECHOREPLY ||
            r->un.echo.id != ic->un.echo.id || r->un.echo.sequence != ic->un.echo.sequence)
            continue;
        return (size_t)n == ihl + sizeof(*ic) + len &&
               memcmp(back + ihl + sizeof(*ic), pkt + sizeof(*ic), len) == 0 &&
               icmp_csum(r, sizeof(*r) + len) == 0;
    }
    return false;
}

static bool wait_for_guest(struct traffic *tr, int icmp, const struct sockaddr_in *to)
{
    double end = now_s() + BOOT_S;
    for (uint16_t seq = 1; now_s() < end && !tr->flint_exited; seq++)
        if (ping_once(icmp, to, seq, 32, 1000))
            return true;
    snprintf(tr->why, sizeof(tr->why), "no ICMP echo reply from %s within %d s", tr->guest_ip,
             BOOT_S);
    return false;
}

static bool ping_tests(struct traffic *tr, int icmp, const struct sockaddr_in *to)
{
    static const size_t sizes[] = {0, 1, 56, 100, 1000, 1472};
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (!ping_once(icmp, to, (uint16_t)(100 + i), sizes[i], REPLY_MS)) {
            snprintf(tr->why, sizeof(tr->why), "ICMP echo of %zu bytes: no or wrong reply",
                     sizes[i]);
            return false;
        }
    }
    return true;
}

/* busybox ping, the tool a person would use. */
static bool busybox_ping(struct traffic *tr)
{
    static const char *const paths[] = {"/usr/bin/busybox", "/bin/busybox", NULL};
    const char *bb = find_tool(paths);
    if (!bb) {
        snprintf(tr->why, sizeof(tr->why), "busybox is missing (install busybox-static)");
        return false;
    }
    char *argv[] = {(char *)bb, "ping", "-c", "3", "-W", "10", (char *)tr->guest_ip, NULL};
    struct flint_result r = run_cmd(argv, 60);
    bool ok = r.status == 0 && strstr(r.out, "3 packets received");
    if (!ok)
        snprintf(tr->why, sizeof(tr->why), "busybox ping: status %d: %.300s%.100s", r.status, r.out,
                 r.err);
    flint_result_free(&r);
    return ok;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed * 31 + (i >> 8));
}

/* Send `len` bytes, expect the same bytes back. */
static bool udp_echo(int fd, size_t len, unsigned seed)
{
    uint8_t out[1500], in[2048];
    fill(out, len, seed);
    if (send(fd, out, len, 0) != (ssize_t)len)
        return false;
    double end = now_s() + REPLY_MS / 1000.0;
    while (now_s() < end) {
        ssize_t n = recv(fd, in, sizeof(in), 0);
        if (n < 0)
            continue;
        if ((size_t)n == len && memcmp(in, out, len) == 0)
            return true;
    }
    return false;
}

static bool udp_tests(struct traffic *tr, int udp)
{
    /* Every boundary up to the MTU: IP 20 + UDP 8 + 1472 = 1500. */
    static const size_t sizes[] = {0,    1,    2,    3,    7,    8,    9,    15,   16,   17,
                                   31,   32,   33,   63,   64,   65,   100,  127,  128,  129,
                                   255,  256,  257,  500,  511,  512,  513,  777,  1000, 1023,
                                   1024, 1025, 1200, 1400, 1458, 1459, 1460, 1470, 1471, 1472};
    unsigned n = sizeof(sizes) / sizeof(sizes[0]);
    for (unsigned round = 0; round < tr->rounds; round++) {
        for (unsigned i = 0; i < n; i++) {
            if (!udp_echo(udp, sizes[i], round * 100 + i)) {
                snprintf(tr->why, sizeof(tr->why), "UDP echo of %zu bytes: no or wrong reply",
                         sizes[i]);
                return false;
            }
            tr->udp_echoed++;
        }
    }
    return true;
}

static bool expect_text(int udp, const char *want, unsigned ms)
{
    char in[256];
    double end = now_s() + ms / 1000.0;
    while (now_s() < end) {
        ssize_t n = recv(udp, in, sizeof(in) - 1, 0);
        if (n < 0)
            continue;
        in[n] = '\0';
        if (strcmp(in, want) == 0)
            return true;
    }
    return false;
}

/* The guest stops receiving for 3 s; 150 datagrams sent meanwhile fill
 * its 64 receive buffers and the rest must wait in the tap, not be lost:
 * every one comes back, in order. */
#define PAUSE_N 150
static bool pause_test(struct traffic *tr, int udp)
{
    const char *cmd = "netecho pause 3000";
    if (send(udp, cmd, strlen(cmd), 0) < 0 || !expect_text(udp, "netecho paused", REPLY_MS)) {
        snprintf(tr->why, sizeof(tr->why), "no answer to '%s'", cmd);
        return false;
    }
    for (unsigned i = 0; i < PAUSE_N; i++) {
        uint8_t msg[64];
        fill(msg, sizeof(msg), i);
        memcpy(msg, &i, sizeof(i));
        if (send(udp, msg, sizeof(msg), 0) != (ssize_t)sizeof(msg)) {
            snprintf(tr->why, sizeof(tr->why), "send %u: %s", i, strerror(errno));
            return false;
        }
    }
    double end = now_s() + 60;
    unsigned next = 0;
    while (next < PAUSE_N && now_s() < end) {
        uint8_t in[256], want[64];
        ssize_t n = recv(udp, in, sizeof(in), 0);
        if (n < 0)
            continue;
        unsigned seq;
        memcpy(&seq, in, sizeof(seq));
        fill(want, sizeof(want), seq);
        memcpy(want, &seq, sizeof(seq));
        if (n != 64 || seq != next || memcmp(in, want, 64) != 0) {
            snprintf(tr->why, sizeof(tr->why),
                     "after the pause: datagram %u came back as %zd bytes with number %u", next, n,
                     seq);
            return false;
        }
        tr->paused_echoed = ++next;
    }
    if (next < PAUSE_N)
        snprintf(tr->why, sizeof(tr->why), "after the pause only %u of %u datagrams came back",
                 next, PAUSE_N);
    return next == PAUSE_N;
}

static int udp_socket(const char *ip, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &to.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
        close(fd);
        return -1;
    }
    if (fd >= 0)
        set_timeout(fd, 200);
    return fd;
}

static void *traffic_main(void *arg)
{
    struct traffic *tr = arg;
    struct sockaddr_in to = {.sin_family = AF_INET};
    int icmp = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    int udp = udp_socket(tr->guest_ip, ECHO_PORT);

    inet_pton(AF_INET, tr->guest_ip, &to.sin_addr);
    if (icmp < 0 || udp < 0) {
        snprintf(tr->why, sizeof(tr->why), "sockets: %s", strerror(errno));
        goto out;
    }
    set_timeout(icmp, 200);
    tr->up = wait_for_guest(tr, icmp, &to);
    if (!tr->up)
        goto out;
    tr->ping_ok = ping_tests(tr, icmp, &to);
    if (tr->ping_ok)
        tr->busybox_ok = busybox_ping(tr);
    if (tr->busybox_ok)
        tr->udp_ok = udp_tests(tr, udp);
    if (tr->udp_ok)
        tr->pause_ok = !tr->pause_test || pause_test(tr, udp);
out:
    /* Whatever happened, ask the guest to end so flint exits. */
    if (udp >= 0) {
        char cmd[64];
        int len = snprintf(cmd, sizeof(cmd), "netecho exit %d", tr->exit_status);
        for (int i = 0; i < 5 && !tr->bye && !tr->flint_exited; i++) {
            if (send(udp, cmd, (size_t)len, 0) >= 0)
                tr->bye = expect_text(udp, "netecho bye", 2000);
        }
        close(udp);
    }
    if (icmp >= 0)
        close(icmp);
    return NULL;
}

/* ---- running flint ---- */

/* FLINT(args...) runs `flint run args...` (run_flint.h). */
#define FLINT(...) flint_run_args(FLINT_BIN, TIMEOUT_S, (char *[]){__VA_ARGS__, NULL})
#define check      check_status
#define has        check_has

/* The number right after `key` in s (e.g. "halts 12"), or -1. */
static long long after(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* The number right before `key` in s (e.g. "3 rx pauses"), or -1. */
static long long before(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    if (!p)
        return -1;
    while (p > s && p[-1] == ' ')
        p--;
    while (p > s && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return strtoll(p, NULL, 10);
}

static void check_traffic(const struct traffic *tr, const struct flint_result *r)
{
    cr_assert(tr->up && tr->ping_ok && tr->busybox_ok && tr->udp_ok && tr->pause_ok,
              "host side: %s\nstdout:\n%s\nstderr:\n%s", tr->why, r->out, r->err);
    cr_assert(tr->bye, "no 'netecho bye'\nstdout:\n%s", r->out);
}

Test(net, ping_and_udp_echo_up_to_the_mtu)
{
    netns_with_tap();
    struct traffic tr = {.guest_ip = GUEST_IP, .exit_status = 7, .rounds = 2, .pause_test = true};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, traffic_main, &tr), 0);
    struct flint_result r = FLINT("--kernel", NETECHO, "--net", TAP ",mac=" GUEST_MAC ",id=eth0",
                                  "--cmdline", "ip=" GUEST_IP, "--stats");
    tr.flint_exited = true;
    pthread_join(th, NULL);
    check_traffic(&tr, &r);
    check(&r, 7);
    has(r.out, "netecho: up mac " GUEST_MAC " ip " GUEST_IP " mtu 1500 link up mrg 1");
    cr_assert_eq(tr.udp_echoed, 80);
    cr_assert_eq(tr.paused_echoed, PAUSE_N);
    cr_assert_geq(before(r.out, " arp,"), 1, "ARP answered:\n%s", r.out);
    cr_assert_geq(before(r.out, " icmp,"), 7, "ICMP echoed:\n%s", r.out);
    cr_assert_geq(before(r.out, " udp,"), 80 + PAUSE_N, "UDP echoed:\n%s", r.out);
    long long halts = after(r.out, "halts "), irqs = after(r.out, "irqs ");
    long long rx = after(r.out, "; rx ");
    cr_assert_gt(halts, 0, "the guest waited by halting:\n%s", r.out);
    cr_assert_gt(irqs, 0, "and was woken by interrupts:\n%s", r.out);
    cr_assert_lt(halts, 20 * (rx + 10) + 2000, "%lld halts for %lld frames: spinning?\n%s", halts,
                 rx, r.out);
    /* The device side: frames both ways, no drops, RX paused at least once. */
    has(r.err, "virtio-net 0:");
    cr_assert_geq(before(r.err, "rx pauses"), 1, "RX paused for lack of buffers:\n%s", r.err);
    cr_assert_eq(before(r.err, "rx dropped"), 0, "nothing dropped:\n%s", r.err);
    cr_assert_eq(before(r.err, "tx errors"), 0, "%s", r.err);
    flint_result_free(&r);
}

Test(net, small_mergeable_receive_buffers)
{
    netns_with_tap();
    struct traffic tr = {.guest_ip = GUEST_IP, .exit_status = 0, .rounds = 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, traffic_main, &tr), 0);
    /* 256-byte buffers: a full-size frame spans 6 of them (MRG_RXBUF). */
    struct flint_result r = FLINT("--kernel", NETECHO, "--net", TAP ",mac=" GUEST_MAC, "--cmdline",
                                  "ip=" GUEST_IP " rxbuf=256 port=7");
    tr.flint_exited = true;
    pthread_join(th, NULL);
    check_traffic(&tr, &r);
    check(&r, 0);
    has(r.out, "mrg 1 rxbuf 64 x 256");
    /* Every frame over 244 bytes: 20 UDP sizes and 2 ICMP ones at least. */
    cr_assert_geq(after(r.out, "merged "), 22, "frames spread over several buffers:\n%s", r.out);
    flint_result_free(&r);
}

/* Host side of the hostile test: 1000-byte datagrams to the guest every
 * 20 ms until told to stop (the guest needs frames for its RX cases). */
struct flood {
    volatile bool stop;
    unsigned sent;
};

static void *flood_main(void *arg)
{
    struct flood *f = arg;
    int fd = udp_socket("10.0.0.3", 9);
    uint8_t msg[1000];
    fill(msg, sizeof(msg), 1);
    while (fd >= 0 && !f->stop) {
        if (send(fd, msg, sizeof(msg), 0) > 0)
            f->sent++;
        usleep(20000);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

Test(net, hostile_driver_leaves_flint_running)
{
    netns_with_tap();
    /* nethostile does not answer ARP: tell the host its address. */
    IP("neigh", "replace", "10.0.0.3", "lladdr", "06:00:00:00:00:03", "dev", TAP, "nud",
       "permanent");
    struct flood f = {0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, flood_main, &f), 0);
    struct flint_result r = FLINT("--kernel", NETHOSTILE, "--net", TAP ",mac=06:00:00:00:00:03",
                                  "--cmdline", "case=all", "--stats");
    f.stop = true;
    pthread_join(th, NULL);
    check(&r, 0);
    cr_assert_gt(f.sent, 0);
    has(r.out, "nethostile: OK");
    /* Each malformed chain put the device in NEEDS_RESET with a log line;
     * each bad frame was dropped with one. */
    has(r.err, "TX chain shorter than the 12-byte header; device needs reset");
    has(r.err, "TX chain with device-writable buffers; device needs reset");
    has(r.err, "RX chain with device-readable buffers; device needs reset");
    has(r.err, "RX chain shorter than the 12-byte header; device needs reset");
    has(r.err, "TX buffer outside guest RAM; device needs reset");
    has(r.err, "TX descriptor loop; device needs reset");
    has(r.err, "dropped: shorter than an Ethernet header");
    has(r.err, "dropped: longer than the negotiated maximum");
    has(r.err, "dropped: larger than the guest's receive buffers");
    has(r.err, "virtio-net 0:");
    flint_result_free(&r);
}

Test(net, missing_tap_is_a_clear_error)
{
    netns_with_tap();
    struct flint_result r = FLINT("--kernel", NETECHO, "--net", "nosuchtap0");
    cr_assert_not(r.timed_out);
    cr_assert_neq(r.status, 0, "flint must refuse a tap that does not exist");
    has(r.err, "tap nosuchtap0: no such network interface");
    cr_assert_leq(count_lines(r.err), 2, "one clear line:\n%s", r.err);
    flint_result_free(&r);
}
