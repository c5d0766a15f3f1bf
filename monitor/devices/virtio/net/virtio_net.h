/*
 * virtio_net.h - virtio network device over a host tap (virtio 1.2 §5.1).
 *
 * The tap is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte
 * vnet header (struct virtio_net_hdr_v1, TUNSETVNETHDRSZ), so guest
 * buffers move to and from the tap with io_uring readv/writev and no copy
 * of the payload. Offloads the driver negotiates are mapped onto the tap
 * with TUNSETOFFLOAD. RX stops (no frame is read from the tap) while the
 * guest has posted no receive buffers - with VIRTIO_NET_F_MRG_RXBUF, not
 * enough for a full-size frame - and resumes when it posts some. Malformed
 * chains put the device in DEVICE_NEEDS_RESET; frames that break the
 * rules (too short or long, offloads not negotiated) are dropped with a
 * rate-limited log line.
 */
#ifndef FLINT_VIRTIO_NET_H
#define FLINT_VIRTIO_NET_H

#include "config.h"
#include "evloop.h"
#include "rate_limiter.h"
#include "virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_NET_HDR_BYTES 12   /* struct virtio_net_hdr_v1 */
#define VIRTIO_NET_MTU       1500 /* offered with VIRTIO_NET_F_MTU when net_config.mtu is 0 */

struct virtio_net;

extern const struct virtio_dev_ops virtio_net_ops;

/* Open the tap named cfg->tap and build the device; I/O runs on `loop`.
 * Returns 0 or -errno with one line in err naming the tap. */
int virtio_net_create(struct virtio_net **out, const struct net_config *cfg, struct evloop *loop,
                      char *err, size_t errlen);

/* The same over an fd that already speaks the tap's framing (every frame
 * preceded by a 12-byte virtio_net_hdr_v1, one frame per read/write): a
 * datagram socketpair in unit tests and fuzzing. With is_tap false no tap
 * ioctl is issued. Takes ownership of fd. */
int virtio_net_create_fd(struct virtio_net **out, int fd, bool is_tap, const struct net_config *cfg,
                         struct evloop *loop, char *err, size_t errlen);

/* Serve the MMDS (mmds.h) on this interface: ARP and IPv4 frames the
 * guest sends to the MMDS address are answered by flint and never reach
 * the tap; the answers are delivered to the guest ahead of tap frames.
 * Call before the guest runs. 0 or -ENOMEM. */
struct mmds;
int virtio_net_set_mmds(struct virtio_net *net, struct mmds *store);

/* Close the tap and free the device; after evloop_fini (see
 * virtio_net_inflight). */
void virtio_net_destroy(struct virtio_net *net);

/* The MAC the guest sees (configured or generated). */
void virtio_net_mac(const struct virtio_net *net, uint8_t mac[6]);

/* Counters for --stats and metrics. */
struct virtio_net_stats {
    uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
    uint64_t rx_dropped;    /* frames not delivered: larger than the guest's buffers or the
                             * MTU, runts, offloads the guest did not negotiate */
    uint64_t rx_no_buffers; /* times RX paused for lack of guest buffers */
    uint64_t tx_errors, rx_errors;
    uint64_t tx_dropped; /* frames refused: too short or long, offloads not negotiated */
    /* times a direction stopped for its rate limiter */
    uint64_t rx_rate_limiter_throttled, tx_rate_limiter_throttled;
};
void virtio_net_get_stats(const struct virtio_net *net, struct virtio_net_stats *out);

/* New rate limits (net_config rx/tx_rate_limiter semantics; PATCH
 * /network-interfaces), on the VMM thread. The buckets start over full; a
 * throttled direction resumes and then waits for the new limits. RX: the
 * tap is read only when an op and a byte are there, and each frame is
 * charged once it has arrived (into debt if it is larger than what was
 * left). TX: each frame costs an op and its bytes before it is sent. */
void virtio_net_set_rate_limiters(struct virtio_net *net, const struct rate_limiter_config *rx,
                                  const struct rate_limiter_config *tx);

/* Reads and writes the device has outstanding on the loop, not counting
 * the read of its wake-up eventfd, which is always armed: destroy the
 * device only after evloop_fini, or when the loop will not run again. For
 * tests and fuzzing, which wait for 0 after a reset. */
unsigned virtio_net_inflight(const struct virtio_net *net);

#endif /* FLINT_VIRTIO_NET_H */
