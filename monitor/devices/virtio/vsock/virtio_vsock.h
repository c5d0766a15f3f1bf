/*
 * virtio_vsock.h - virtio socket device (virtio 1.2 §5.10) bridged to Unix
 * sockets the way Firecracker's hybrid vsock is (docs/vsock.md):
 *
 *  - host-initiated: a host process connects to the Unix socket `uds_path`,
 *    sends "CONNECT <port>\n"; flint opens a guest connection to that port
 *    from a host port allocated in [2^30, 2^31) and, once the guest
 *    accepts, answers "OK <hostport>\n" and bridges the two;
 *  - guest-initiated: a guest connection to CID 2 port P is bridged to the
 *    Unix socket "<uds_path>_<P>"; nobody listening there: RST.
 *
 * The full packet protocol with credit-based flow control on both sides:
 * flint never buffers more than the guest granted, never reads more from a
 * host socket than it can pass on, and never drops accepted bytes. Socket
 * I/O runs on the VMM's io_uring loop.
 */
#ifndef FLINT_VIRTIO_VSOCK_H
#define FLINT_VIRTIO_VSOCK_H

#include "config.h"
#include "evloop.h"
#include "virtio.h"

#include <stddef.h>
#include <stdint.h>

#define VSOCK_HOST_CID             2
#define VSOCK_MAX_CONNS            1023         /* as Firecracker */
#define VSOCK_CONN_BUF_BYTES       (64u << 10)  /* per connection: host -> guest bytes held */
#define VSOCK_G2H_BUF_BYTES        (256u << 10) /* per connection: guest -> host, = buf_alloc */
#define VSOCK_HOST_PORT_FIRST      (1u << 30)   /* host ports for host-initiated connections */
#define VSOCK_REQUEST_TIMEOUT_MS   2000         /* a guest's time to answer a host connection */
#define VSOCK_HANDSHAKE_TIMEOUT_MS 5000 /* a host client's time to send "CONNECT <port>\n" */

struct virtio_vsock;

extern const struct virtio_dev_ops virtio_vsock_ops;

/* Bind and listen on cfg->uds_path (it must not exist) and build the
 * device; I/O runs on `loop`. Returns 0 or -errno with one line in err
 * naming the path. */
int virtio_vsock_create(struct virtio_vsock **out, const struct vsock_config *cfg,
                        struct evloop *loop, char *err, size_t errlen);

/* Close every connection, the listener, and unlink uds_path. */
void virtio_vsock_destroy(struct virtio_vsock *vs);

/* Drop every connection the guest knows of without packets and post
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue (as soon as the
 * guest offers a buffer there): what a restored snapshot does, since the
 * guest's connections cannot survive it. Takes the transport lock; VMM
 * thread. */
void virtio_vsock_transport_reset(struct virtio_vsock *vs);

/* Connections open (every state), for tests. */
unsigned virtio_vsock_conns(const struct virtio_vsock *vs);

/* Counters for --stats and metrics. */
struct virtio_vsock_stats {
    uint64_t conns_opened, conns_refused, conns_reset;
    uint64_t rx_packets, rx_bytes; /* host -> guest */
    uint64_t tx_packets, tx_bytes; /* guest -> host */
    uint64_t bad_packets;          /* malformed packets from the guest */
    uint32_t conns_live;
};
void virtio_vsock_get_stats(const struct virtio_vsock *vs, struct virtio_vsock_stats *out);

#endif /* FLINT_VIRTIO_VSOCK_H */
