/*
 * netecho - a tiny IPv4 host on a virtio-net device through the
 * guest-shim driver: it answers ARP requests and ICMP echo requests for
 * its address and sends every UDP datagram back to where it came from.
 *
 * Command line:
 *   ip=A.B.C.D   its address (required; Linux's ip=A.B.C.D:... works too)
 *   port=N       echo UDP to port N only (default: any port)
 *   net=N        use network device N (default 0)
 *   rxbuf=N      receive buffers of N bytes, header included
 *                (shim_net_set_rx_buffer_size; with MRG_RXBUF small ones
 *                make a frame span several buffers)
 *   idle=S       exit with status 2 after S seconds without a frame
 *                (default: wait for ever)
 *
 * Control datagrams (UDP, any port, answered first):
 *   "netecho exit N"    reply "netecho bye", then end the VM with status N
 *   "netecho pause MS"  reply "netecho paused", then take no frame for MS
 *                       milliseconds (the device's receive queue fills
 *                       and it must hold the rest back, not drop them)
 *
 * Waiting for frames halts the CPU until the device interrupts. Output:
 * "netecho: up ..." at start, a counter line at exit.
 */
#include "shim.h"

#define ETH_ARP  0x0806
#define ETH_IPV4 0x0800
#define IP_ICMP  1
#define IP_UDP   17
#define ETH_HLEN 14
#define IP_HLEN  20
#define UDP_HLEN 8

static uint8_t mac[6];
static uint32_t my_ip;
static long long only_port = -1;
static struct shim_net *net;
static uint8_t rx[2048], tx[2048];
static unsigned n_arp, n_icmp, n_udp, n_other;

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* RFC 1071 ones' complement sum, folded; start with `sum` (a pseudo
 * header, or 0). */
static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
    for (; n > 1; p += 2, n -= 2)
        sum += get16(p);
    if (n)
        sum += (uint32_t)p[0] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

/* "A.B.C.D" (up to the first ':'). */
static bool parse_ip(const char *s, uint32_t *out)
{
    uint32_t ip = 0;

    for (int i = 0; i < 4; i++) {
        unsigned v = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (!digits || v > 255 || (i < 3 && *s++ != '.'))
            return false;
        ip = ip << 8 | v;
    }
    if (*s && *s != ':' && *s != ' ')
        return false;
    *out = ip;
    return true;
}

static void send_frame(size_t len)
{
    int ret = shim_net_send(net, tx, len);
    if (ret)
        shim_printf("netecho: send of %zu bytes failed (%d)\n", len, ret);
}

/* Ethernet header of a reply to the frame in rx. */
static void eth_reply(uint16_t type)
{
    memcpy(tx, rx + 6, 6);
    memcpy(tx + 6, mac, 6);
    put16(tx + 12, type);
}

static void on_arp(const uint8_t *a, size_t len)
{
    /* RFC 826: Ethernet / IPv4 request for our address. */
    if (len < 28 || get16(a) != 1 || get16(a + 2) != ETH_IPV4 || a[4] != 6 || a[5] != 4 ||
        get16(a + 6) != 1 || get32(a + 24) != my_ip)
        return;
    n_arp++;
    eth_reply(ETH_ARP);
    uint8_t *r = tx + ETH_HLEN;
    memcpy(r, a, 6);
    put16(r + 6, 2);
    memcpy(r + 8, mac, 6);
    put32(r + 14, my_ip);
    memcpy(r + 18, a + 8, 10); /* their hardware and protocol address */
    send_frame(ETH_HLEN + 28);
}

/* IPv4 reply header to `dst` carrying `payload` bytes of `proto`. */
static uint8_t *ip_reply(uint32_t dst, uint8_t proto, size_t payload)
{
    uint8_t *ip = tx + ETH_HLEN;

    eth_reply(ETH_IPV4);
    memset(ip, 0, IP_HLEN);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(IP_HLEN + payload));
    ip[8] = 64;
    ip[9] = proto;
    put32(ip + 12, my_ip);
    put32(ip + 16, dst);
    put16(ip + 10, csum(ip, IP_HLEN, 0));
    return ip + IP_HLEN;
}

static void on_icmp(uint32_t src, const uint8_t *m, size_t len)
{
    if (len < 8 || m[0] != 8 || m[1] != 0 || csum(m, len, 0) != 0)
        return;
    n_icmp++;
    uint8_t *r = ip_reply(src, IP_ICMP, len);
    memcpy(r, m, len);
    r[0] = 0; /* echo reply, RFC 792 */
    put16(r + 2, 0);
    put16(r + 2, csum(r, len, 0));
    send_frame(ETH_HLEN + IP_HLEN + len);
}

static void udp_send(uint32_t dst, uint16_t sport, uint16_t dport, const void *data, size_t n)
{
    uint8_t *u = ip_reply(dst, IP_UDP, UDP_HLEN + n);

    put16(u, sport);
    put16(u + 2, dport);
    put16(u + 4, (uint16_t)(UDP_HLEN + n));
    put16(u + 6, 0);
    memmove(u + UDP_HLEN, data, n);
    uint16_t c = csum(u, UDP_HLEN + n, pseudo_sum(my_ip, dst, IP_UDP, (uint16_t)(UDP_HLEN + n)));
    put16(u + 6, c ? c : 0xffff);
    send_frame(ETH_HLEN + IP_HLEN + UDP_HLEN + n);
}

static bool starts(const uint8_t *p, size_t n, const char *word)
{
    size_t k = strlen(word);
    return n >= k && memcmp(p, word, k) == 0;
}

static long long number(const uint8_t *p, size_t n)
{
    long long v = 0;
    for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '9' && v < 100000000; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static void print_counters(void)
{
    struct shim_net_info info;

    shim_net_info(net, &info);
    shim_printf("netecho: %u arp, %u icmp, %u udp, %u other; rx %llu (merged %llu, empty %llu), "
                "tx %llu, halts %llu, irqs %llu\n",
                n_arp, n_icmp, n_udp, n_other, (unsigned long long)info.rx_frames,
                (unsigned long long)info.rx_merged, (unsigned long long)info.rx_empty,
                (unsigned long long)info.tx_frames, (unsigned long long)shim_halt_count(),
                (unsigned long long)info.irqs);
}

/* A control datagram: true if it was one. */
static bool control(uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *d, size_t n)
{
    if (starts(d, n, "netecho exit ")) {
        int status = (int)number(d + 13, n - 13);
        udp_send(src, dport, sport, "netecho bye", 11);
        shim_net_flush(net);
        print_counters();
        shim_exit(status);
    }
    if (starts(d, n, "netecho pause ")) {
        long long ms = number(d + 14, n - 14);
        udp_send(src, dport, sport, "netecho paused", 14);
        shim_net_flush(net);
        shim_delay_us((uint64_t)ms * 1000);
        return true;
    }
    return false;
}

static void on_udp(uint32_t src, const uint8_t *u, size_t len)
{
    if (len < UDP_HLEN || get16(u + 4) != len)
        return;
    uint16_t sport = get16(u), dport = get16(u + 2);
    if (get16(u + 6) && csum(u, len, pseudo_sum(src, my_ip, IP_UDP, (uint16_t)len)) != 0)
        return;
    if (control(src, sport, dport, u + UDP_HLEN, len - UDP_HLEN))
        return;
    if (only_port >= 0 && dport != only_port)
        return;
    n_udp++;
    udp_send(src, dport, sport, u + UDP_HLEN, len - UDP_HLEN);
}

static void on_ipv4(const uint8_t *ip, size_t len)
{
    size_t ihl = (size_t)(ip[0] & 0xf) * 4;

    if (len < IP_HLEN || ip[0] >> 4 != 4 || ihl < IP_HLEN || ihl > len)
        return;
    size_t total = get16(ip + 2);
    /* Whole datagrams for us only: no fragments, a valid header. */
    if (total < ihl || total > len || (get16(ip + 6) & 0x3fff) || csum(ip, ihl, 0) != 0 ||
        get32(ip + 16) != my_ip)
        return;
    uint32_t src = get32(ip + 12);
    if (ip[9] == IP_ICMP)
        on_icmp(src, ip + ihl, total - ihl);
    else if (ip[9] == IP_UDP)
        on_udp(src, ip + ihl, total - ihl);
    else
        n_other++;
}

static void on_frame(size_t len)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    if (len < ETH_HLEN || (memcmp(rx, mac, 6) && memcmp(rx, bcast, 6))) {
        n_other++;
        return;
    }
    uint16_t type = get16(rx + 12);
    if (type == ETH_ARP)
        on_arp(rx + ETH_HLEN, len - ETH_HLEN);
    else if (type == ETH_IPV4)
        on_ipv4(rx + ETH_HLEN, len - ETH_HLEN);
    else
        n_other++;
}

int main(void)
{
    const char *ip = shim_arg("ip");
    long long idle = shim_arg_int("idle", 0), rxbuf = shim_arg_int("rxbuf", 0);
    struct shim_net_info info;
    int ret;

    if (!ip || !parse_ip(ip, &my_ip)) {
        shim_printf("netecho: FAIL need ip=A.B.C.D on the command line\n");
        return 1;
    }
    only_port = shim_arg_int("port", -1);
    net = shim_net_get((unsigned)shim_arg_int("net", 0));
    if (!net) {
        shim_printf("netecho: FAIL no network device %lld (%u found)\n", shim_arg_int("net", 0),
                    shim_net_count());
        return 1;
    }
    if (rxbuf && (ret = shim_net_set_rx_buffer_size(net, (uint32_t)rxbuf))) {
        shim_printf("netecho: FAIL receive buffers of %lld bytes (%d)\n", rxbuf, ret);
        return 1;
    }
    shim_net_info(net, &info);
    if (!info.ready) {
        shim_printf("netecho: FAIL the device did not start\n");
        return 1;
    }
    memcpy(mac, info.mac, 6);
    shim_printf("netecho: up mac %02x:%02x:%02x:%02x:%02x:%02x ip %u.%u.%u.%u mtu %u link %s "
                "mrg %d rxbuf %u x %u\n",
                mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], my_ip >> 24, my_ip >> 16 & 0xff,
                my_ip >> 8 & 0xff, my_ip & 0xff, info.mtu, info.link_up ? "up" : "down",
                info.mrg_rxbuf, info.rx_buffers, info.rx_buf_size);
    for (;;) {
        int n = shim_net_recv(net, rx, sizeof(rx),
                              idle > 0 ? (uint64_t)idle * 1000000 : SHIM_NET_FOREVER);
        if (n == -SHIM_ETIMEDOUT) {
            shim_printf("netecho: idle for %lld s\n", idle);
            print_counters();
            return 2;
        }
        if (n < 0) {
            shim_printf("netecho: FAIL receive (%d)\n", n);
            print_counters();
            return 1;
        }
        on_frame((size_t)n < sizeof(rx) ? (size_t)n : sizeof(rx));
    }
}
