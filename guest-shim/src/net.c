/*
 * net.c - virtio-net driver (virtio 1.2 §5.1) and the shim_net_* API.
 *
 * One receive queue (0) and one transmit queue (1). Every receive buffer
 * is one device-writable descriptor of rx_buf_size bytes from a pool; the
 * buffer's address is its virtqueue cookie. A received frame is its
 * buffers' bytes after the 12-byte struct virtio_net_hdr_v1; with
 * VIRTIO_NET_F_MRG_RXBUF it may span num_buffers consecutive used
 * entries. Transmit buffers hold the header and a copy of the frame, one
 * device-readable descriptor each; they return to a free list as the
 * device uses them.
 */
#include "virtio.h"

#define NET_MAX_DEVICES 8
#define NET_QUEUE_MAX   64
#define NET_HDR         12 /* struct virtio_net_hdr_v1 */
#define NET_RX_POOL     (NET_QUEUE_MAX * SHIM_NET_RX_BUF_DEFAULT)
#define NET_TX_BUF      2048
#define NET_RX_BUF_MIN  64
#define NET_RX_BUF_MAX  4096
#define NET_MTU_DEFAULT 1500
#define NET_L2_EXTRA    18 /* Ethernet header + VLAN tag */
/* The rest of a merged frame is pushed with its first buffer. */
#define NET_MERGE_WAIT_NS 1000000000ull

struct shim_net {
    struct virtio_dev dev;
    struct virtq rxq, txq;
    bool ready;
    uint8_t mac[6];
    uint16_t mtu;
    uint32_t frame_max;
    uint32_t rx_buf_size;
    uint16_t rx_count;
    uint8_t *rx_pool; /* rx_count buffers of rx_buf_size bytes */
    uint8_t *tx_pool; /* NET_QUEUE_MAX buffers of NET_TX_BUF bytes */
    uint8_t *tx_free[NET_QUEUE_MAX];
    unsigned ntx_free;
    uint64_t timeout_ns;
    uint64_t rx_frames, rx_merged, rx_empty, tx_frames;
};

static struct shim_net nets[NET_MAX_DEVICES];
static unsigned nnet;
static bool probed;

static bool has(const struct shim_net *net, unsigned bit)
{
    return net->dev.features & VIRTIO_FEATURE(bit);
}

static uint64_t net_wanted_features(void)
{
    return VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX) | VIRTIO_FEATURE(VIRTIO_NET_F_MAC) |
           VIRTIO_FEATURE(VIRTIO_NET_F_MTU) | VIRTIO_FEATURE(VIRTIO_NET_F_STATUS) |
           VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF);
}

/* §5.1.5: without VIRTIO_NET_F_MAC the driver makes up an address. */
static void make_mac(uint8_t mac[6])
{
    uint64_t x = rdtsc_ordered() * 0x9e3779b97f4a7c15ull;

    mac[0] = 0x06; /* locally administered, unicast */
    for (unsigned i = 1; i < 6; i++)
        mac[i] = (uint8_t)(x >> (8 * i));
}

static void net_read_config(struct shim_net *net)
{
    struct virtio_dev *dev = &net->dev;
    uint32_t gen = virtio_config_begin(dev);
    unsigned tries = 0;

    do {
        for (unsigned i = 0; i < 6 && has(net, VIRTIO_NET_F_MAC); i++)
            net->mac[i] = virtio_config_read8(dev, VIRTIO_NET_CFG_MAC + i);
        net->mtu = has(net, VIRTIO_NET_F_MTU) ? virtio_config_read16(dev, VIRTIO_NET_CFG_MTU)
                                              : NET_MTU_DEFAULT;
    } while (virtio_config_retry(dev, &gen, &tries));
    if (!has(net, VIRTIO_NET_F_MAC))
        make_mac(net->mac);
    /* §5.1.4.1: the MTU is at least 68; our transmit buffers bound it. */
    if (net->mtu < 68)
        net->mtu = 68;
    net->frame_max = net->mtu + NET_L2_EXTRA;
    if (net->frame_max > NET_TX_BUF - NET_HDR)
        net->frame_max = NET_TX_BUF - NET_HDR;
}

static int net_alloc(struct shim_net *net)
{
    if (!net->rx_pool)
        net->rx_pool = shim_alloc(NET_RX_POOL, 64);
    if (!net->tx_pool)
        net->tx_pool = shim_alloc((size_t)NET_QUEUE_MAX * NET_TX_BUF, 64);
    return net->rx_pool && net->tx_pool ? 0 : -SHIM_ENOMEM;
}

static int rx_post(struct shim_net *net, uint8_t *buf)
{
    struct virtq_buf b = {buf, net->rx_buf_size};

    return virtq_add(&net->rxq, &b, 0, 1, buf);
}

/* Queues, buffers, DRIVER_OK. */
static int net_setup(struct shim_net *net, const char **what)
{
    int ret;

    *what = "queue setup";
    if ((ret = virtq_setup(&net->rxq, &net->dev, VIRTIO_NET_RXQ, NET_QUEUE_MAX, 0)) ||
        (ret = virtq_setup(&net->txq, &net->dev, VIRTIO_NET_TXQ, NET_QUEUE_MAX, 0)))
        return ret;
    *what = "buffer allocation";
    if ((ret = net_alloc(net)))
        return ret;
    *what = "receive buffer size";
    if (!has(net, VIRTIO_NET_F_MRG_RXBUF) && net->rx_buf_size < NET_HDR + net->frame_max)
        return -SHIM_ENOTSUP;
    net->rx_count = (uint16_t)(NET_RX_POOL / net->rx_buf_size);
    if (net->rx_count > net->rxq.size)
        net->rx_count = net->rxq.size;
    /* §5.1.5: fill the receive queue; the kick waits for DRIVER_OK. */
    for (uint16_t i = 0; i < net->rx_count; i++)
        if ((ret = rx_post(net, net->rx_pool + (size_t)i * net->rx_buf_size)))
            return ret;
    net->ntx_free = 0;
    for (uint16_t i = 0; i < net->txq.size; i++)
        net->tx_free[net->ntx_free++] = net->tx_pool + (size_t)i * NET_TX_BUF;
    *what = "DRIVER_OK";
    if ((ret = virtio_driver_ok(&net->dev)))
        return ret;
    virtq_kick(&net->rxq);
    return 0;
}

static int net_start(struct shim_net *net)
{
    const char *what = "feature negotiation";

    net->ready = false;
    int ret = virtio_negotiate(&net->dev, net_wanted_features());
    if (ret == 0) {
        net_read_config(net);
        ret = net_setup(net, &what);
        if (ret)
            virtio_fail(&net->dev);
    }
    if (ret) {
        shim_printf("shim: virtio-net at %#llx: %s failed (%d)\n",
                    (unsigned long long)net->dev.base, what, ret);
        return ret;
    }
    net->ready = true;
    return 0;
}

/* A device that failed: reset it first so it no longer touches any
 * buffer (§2.4.2), then forget every buffer it had. */
static int net_stop(struct shim_net *net, int err)
{
    virtio_reset(&net->dev);
    net->ready = false;
    virtq_drain(&net->rxq, NULL, NULL);
    virtq_drain(&net->txq, NULL, NULL);
    return err;
}

/* Before using the device: is it (still) live? */
static int net_usable(struct shim_net *net)
{
    if (!net->ready)
        return -SHIM_ENODEV;
    if (net->dev.needs_reset)
        return net_stop(net, -SHIM_ENODEV);
    if (net->rxq.error || net->txq.error)
        return net_stop(net, -SHIM_EPROTO);
    return 0;
}

static void net_probe(void)
{
    if (probed)
        return;
    probed = true;
    for (unsigned i = 0; i < shim_virtio_mmio_count() && nnet < NET_MAX_DEVICES; i++) {
        struct virtio_dev dev;
        if (virtio_mmio_probe(i, &dev) || dev.device_id != VIRTIO_ID_NET)
            continue;
        struct shim_net *net = &nets[nnet++];
        net->dev = dev;
        net->rx_buf_size = SHIM_NET_RX_BUF_DEFAULT;
        net->timeout_ns = SHIM_NET_TIMEOUT_DEFAULT * 1000;
        net_start(net);
    }
}

unsigned shim_net_count(void)
{
    net_probe();
    return nnet;
}

struct shim_net *shim_net_get(unsigned i)
{
    net_probe();
    return i < nnet ? &nets[i] : NULL;
}

void shim_net_info(const struct shim_net *net, struct shim_net_info *info)
{
    struct virtio_dev *dev = (struct virtio_dev *)&net->dev;
    bool link = true;

    if (net->ready && has(net, VIRTIO_NET_F_STATUS))
        link = virtio_config_read16(dev, VIRTIO_NET_CFG_STATUS) & VIRTIO_NET_S_LINK_UP;
    *info = (struct shim_net_info){
        .mtu = net->mtu,
        .frame_max = net->frame_max,
        .link_up = link,
        .mrg_rxbuf = has(net, VIRTIO_NET_F_MRG_RXBUF),
        .event_idx = net->rxq.event_idx,
        .ready = net->ready,
        .rx_queue_size = net->rxq.size,
        .tx_queue_size = net->txq.size,
        .rx_buffers = net->rx_count,
        .rx_buf_size = net->rx_buf_size,
        .mmio_base = net->dev.base,
        .irq = net->dev.gsi,
        .offered = net->dev.offered,
        .features = net->dev.features,
        .irqs = net->dev.irqs,
        .rx_frames = net->rx_frames,
        .rx_merged = net->rx_merged,
        .rx_empty = net->rx_empty,
        .tx_frames = net->tx_frames,
    };
    memcpy(info->mac, net->mac, 6);
}

/* ---- transmit ---- */

static void tx_reclaim(struct shim_net *net)
{
    uint8_t *buf;

    while ((buf = virtq_get_used(&net->txq, NULL)))
        net->tx_free[net->ntx_free++] = buf;
}

static bool tx_arm(void *arg)
{
    return virtq_arm(&((struct shim_net *)arg)->txq);
}

int shim_net_send(struct shim_net *net, const void *frame, size_t len)
{
    int ret = net_usable(net);

    if (ret)
        return ret;
    if (len < SHIM_NET_FRAME_MIN || len > net->frame_max)
        return -SHIM_EINVAL;
    tx_reclaim(net);
    while (net->ntx_free == 0) {
        ret = virtio_wait(&net->dev, tx_arm, net, net->timeout_ns);
        if (ret == 0 && net->txq.error)
            ret = -SHIM_EPROTO;
        if (ret)
            return net_stop(net, ret);
        tx_reclaim(net);
    }
    uint8_t *buf = net->tx_free[--net->ntx_free];
    memset(buf, 0, NET_HDR); /* no offloads: flags 0, GSO_NONE */
    memcpy(buf + NET_HDR, frame, len);
    struct virtq_buf b = {buf, (uint32_t)(NET_HDR + len)};
    ret = virtq_add(&net->txq, &b, 1, 0, buf);
    if (ret) {
        net->tx_free[net->ntx_free++] = buf;
        return ret == -SHIM_EPROTO ? net_stop(net, ret) : ret;
    }
    virtq_kick(&net->txq);
    net->tx_frames++;
    return 0;
}

int shim_net_flush(struct shim_net *net)
{
    int ret;

    while ((ret = net_usable(net)) == 0) {
        tx_reclaim(net);
        if (virtq_outstanding(&net->txq) == 0)
            return 0;
        ret = virtio_wait(&net->dev, tx_arm, net, net->timeout_ns);
        if (ret == 0 && net->txq.error)
            ret = -SHIM_EPROTO;
        if (ret)
            return net_stop(net, ret);
    }
    return ret;
}

/* ---- receive ---- */

static bool rx_arm(void *arg)
{
    return virtq_arm(&((struct shim_net *)arg)->rxq);
}

/* Copy `n` bytes at src to offset `at` of the caller's buffer, as far as
 * it reaches. */
static void rx_copy(uint8_t *dst, size_t cap, size_t at, const uint8_t *src, size_t n)
{
    if (at < cap)
        memcpy(dst + at, src, n < cap - at ? n : cap - at);
}

/* The next buffer of a merged frame: it was pushed with the first. */
static uint8_t *rx_next_merged(struct shim_net *net, uint32_t *len)
{
    uint8_t *b = virtq_get_used(&net->rxq, len);

    if (!b && !net->rxq.error && virtio_wait(&net->dev, rx_arm, net, NET_MERGE_WAIT_NS) == 0)
        b = virtq_get_used(&net->rxq, len);
    return b;
}

/* Take one frame whose first buffer is `b` (used length `ulen`). Returns
 * its length or a negative code; the buffers go back to the device. */
static int rx_frame(struct shim_net *net, uint8_t *b, uint32_t ulen, uint8_t *dst, size_t cap)
{
    struct virtio_net_hdr_v1 hdr;
    uint16_t nb = 1;
    size_t total = 0;

    if (ulen < NET_HDR + SHIM_NET_FRAME_MIN || ulen > net->rx_buf_size)
        return net_stop(net, -SHIM_EPROTO);
    memcpy(&hdr, b, NET_HDR);
    if (has(net, VIRTIO_NET_F_MRG_RXBUF)) {
        nb = hdr.num_buffers;
        if (nb == 0 || nb > net->rx_count)
            return net_stop(net, -SHIM_EPROTO);
    }
    rx_copy(dst, cap, 0, b + NET_HDR, ulen - NET_HDR);
    total = ulen - NET_HDR;
    rx_post(net, b);
    for (uint16_t k = 1; k < nb; k++) {
        b = rx_next_merged(net, &ulen);
        if (!b || ulen == 0 || ulen > net->rx_buf_size)
            return net_stop(net, -SHIM_EPROTO);
        rx_copy(dst, cap, total, b, ulen);
        total += ulen;
        rx_post(net, b);
    }
    virtq_kick(&net->rxq);
    net->rx_frames++;
    if (nb > 1)
        net->rx_merged++;
    return total > 0x7fffffff ? 0x7fffffff : (int)total;
}

/* The next frame if one is there, else -SHIM_EAGAIN. */
static int rx_take(struct shim_net *net, void *buf, size_t len)
{
    for (;;) {
        uint32_t ulen;
        uint8_t *b = virtq_get_used(&net->rxq, &ulen);

        if (!b)
            return net->rxq.error ? net_stop(net, -SHIM_EPROTO) : -SHIM_EAGAIN;
        if (ulen != 0)
            return rx_frame(net, b, ulen, buf, len);
        /* The device returned the buffer without a frame (it was too
         * small for one): post it again. */
        net->rx_empty++;
        rx_post(net, b);
        virtq_kick(&net->rxq);
    }
}

int shim_net_recv(struct shim_net *net, void *buf, size_t len, uint64_t timeout_us)
{
    uint64_t timeout_ns = timeout_us > UINT64_MAX / 1000 ? UINT64_MAX : timeout_us * 1000;
    uint64_t start = shim_time_ns();
    int ret;

    for (;;) {
        if ((ret = net_usable(net)))
            return ret;
        ret = rx_take(net, buf, len);
        if (ret != -SHIM_EAGAIN || timeout_us == 0)
            return ret;
        uint64_t spent = shim_time_ns() - start;
        if (spent >= timeout_ns)
            return -SHIM_ETIMEDOUT;
        ret = virtio_wait(&net->dev, rx_arm, net, timeout_ns - spent);
        if (ret == -SHIM_ETIMEDOUT)
            return ret;
        if (ret)
            return net_stop(net, ret);
    }
}

int shim_net_reset(struct shim_net *net)
{
    net_stop(net, 0);
    return net_start(net);
}

int shim_net_set_rx_buffer_size(struct shim_net *net, uint32_t bytes)
{
    if (bytes < NET_RX_BUF_MIN || bytes > NET_RX_BUF_MAX)
        return -SHIM_EINVAL;
    if (!(net->dev.offered & VIRTIO_FEATURE(VIRTIO_NET_F_MRG_RXBUF)) &&
        bytes < NET_HDR + net->frame_max)
        return -SHIM_ENOTSUP;
    net->rx_buf_size = bytes;
    return shim_net_reset(net);
}
