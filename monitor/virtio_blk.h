/*
 * virtio_blk.h - virtio block device over a raw image file (virtio 1.2 §5.2).
 *
 * Requests move with io_uring (readv/writev straight between the file and
 * guest memory, fdatasync for FLUSH, fallocate for DISCARD and
 * WRITE_ZEROES), many in flight, completed in any order.
 */
#ifndef FLINT_VIRTIO_BLK_H
#define FLINT_VIRTIO_BLK_H

#include "config.h"
#include "evloop.h"
#include "virtio.h"

#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_BLOCK 2

/* §5.2.3 feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* §5.2.6 request types and status values. */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR   512
#define VIRTIO_BLK_SEG_MAX  126 /* data segments per request (+ header + status) */
#define VIRTIO_BLK_SIZE_MAX (1u << 20)

struct virtio_blk;

extern const struct virtio_dev_ops virtio_blk_ops;

/* Open the drive's image and build the device; I/O runs on `loop`.
 * Returns 0 or -errno with one line in err naming the file. */
int virtio_blk_create(struct virtio_blk **out, const struct drive_config *drive,
                      struct evloop *loop, char *err, size_t errlen);
void virtio_blk_destroy(struct virtio_blk *blk);

/* Capacity in 512-byte sectors. */
uint64_t virtio_blk_capacity(const struct virtio_blk *blk);

/* Counters for --stats. */
struct virtio_blk_stats {
    uint64_t reads, writes, flushes, discards, errors, bytes_read, bytes_written;
};
void virtio_blk_get_stats(const struct virtio_blk *blk, struct virtio_blk_stats *out);

#endif /* FLINT_VIRTIO_BLK_H */
