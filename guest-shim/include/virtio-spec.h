/*
 * virtio-spec.h - constants and layouts from the virtio 1.2 specification,
 * shared by the monitor's devices and guest-shim's drivers (freestanding:
 * only <stdint.h>). Names follow the specification.
 */
#ifndef FLINT_VIRTIO_SPEC_H
#define FLINT_VIRTIO_SPEC_H

#include <stdint.h>

/* §4.2.2 MMIO device register layout (offsets). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC      0x74726976u /* "virt" */
#define VIRTIO_MMIO_VERSION_2  2
#define VIRTIO_MMIO_INT_VRING  (1u << 0)
#define VIRTIO_MMIO_INT_CONFIG (1u << 1)

/* §2.1 device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* §5 device IDs. */
#define VIRTIO_ID_NET   1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_VSOCK 19

/* §6 reserved feature bits (bit numbers). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_FEATURE(bit)    (1ull << (bit))

/* §2.7.5 descriptor flags, §2.7.6 / §2.7.8 ring flags. */
#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1
#define VIRTQ_SIZE_MAX             32768

/* §2.7.5 a descriptor, as it lies in guest memory. */
struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* §5.2.3 block feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* §5.2.4 struct virtio_blk_config offsets. */
#define VIRTIO_BLK_CFG_CAPACITY         0
#define VIRTIO_BLK_CFG_SIZE_MAX         8
#define VIRTIO_BLK_CFG_SEG_MAX          12
#define VIRTIO_BLK_CFG_BLK_SIZE         20
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECT 36
#define VIRTIO_BLK_CFG_MAX_WZ_SECT      48

/* §5.2.6 request types, status values, write-zeroes flag. */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2
#define VIRTIO_BLK_WZ_UNMAP       1
#define VIRTIO_BLK_ID_BYTES       20

/* §5.1.3 network feature bits. */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_GUEST_UFO  10
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_HOST_UFO   14
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

/* §5.1.4 struct virtio_net_config offsets, status bits. */
#define VIRTIO_NET_CFG_MAC                 0
#define VIRTIO_NET_CFG_STATUS              6
#define VIRTIO_NET_CFG_MAX_VIRTQUEUE_PAIRS 8
#define VIRTIO_NET_CFG_MTU                 10
#define VIRTIO_NET_S_LINK_UP               1
#define VIRTIO_NET_S_ANNOUNCE              2

/* §5.1.2 queue indices (one pair, no control queue). */
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1

/* §5.1.6 the header in front of every frame (struct virtio_net_hdr_v1:
 * with VIRTIO_F_VERSION_1 it always has num_buffers, 12 bytes). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO   4
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

struct virtio_net_hdr_v1 {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};

/* §5.10 socket device. Queues: */
#define VIRTIO_VSOCK_RXQ 0
#define VIRTIO_VSOCK_TXQ 1
#define VIRTIO_VSOCK_EVQ 2

/* §5.10.4 config space: le64 guest_cid. */
#define VIRTIO_VSOCK_CFG_GUEST_CID 0

/* §5.10.6 every packet starts with this header (44 bytes, little-endian). */
struct __attribute__((packed)) virtio_vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len; /* payload bytes after the header */
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc; /* the sender's receive buffer for this connection */
    uint32_t fwd_cnt;   /* bytes the sender has consumed from it, mod 2^32 */
};

#define VIRTIO_VSOCK_HDR_BYTES   44
#define VIRTIO_VSOCK_TYPE_STREAM 1

#define VIRTIO_VSOCK_OP_INVALID        0
#define VIRTIO_VSOCK_OP_REQUEST        1
#define VIRTIO_VSOCK_OP_RESPONSE       2
#define VIRTIO_VSOCK_OP_RST            3
#define VIRTIO_VSOCK_OP_SHUTDOWN       4
#define VIRTIO_VSOCK_OP_RW             5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE  6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7

/* SHUTDOWN flags: the sender will receive / send no more. */
#define VIRTIO_VSOCK_SHUTDOWN_RCV  1
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2

/* §5.10.6.5 event queue: le32 id. */
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0
struct virtio_vsock_event {
    uint32_t id;
};

#endif /* FLINT_VIRTIO_SPEC_H */
