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
#include "rate_limiter.h"
#include "virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Spec constants (features, request types, status) are in <virtio-spec.h>. */
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

/* Open an image the way a drive uses it (read-only or read-write) and
 * measure it: a regular file or a block device (any size; a partial last
 * sector is unused). Returns 0 with *fd and *bytes, or -errno with one
 * line in err naming the file. Needs only openat, fstat and lseek. */
int virtio_blk_open_image(const char *path, bool read_only, int *fd, uint64_t *bytes, char *err,
                          size_t errlen);

/* PATCH /drives: back the device with the image at `path`, opened with the
 * drive's read-only mode. Requests already submitted finish on the old
 * file (closed after the last); later ones use the new file. The capacity
 * changes and a running driver gets a configuration change interrupt
 * (ConfigGeneration bumped). On the VMM thread. Returns 0, or -errno with
 * one line in err and the device as it was. */
int virtio_blk_swap(struct virtio_blk *blk, const char *path, char *err, size_t errlen);

/* Capacity in 512-byte sectors. */
uint64_t virtio_blk_capacity(const struct virtio_blk *blk);

/* Counters for --stats. */
struct virtio_blk_stats {
    uint64_t reads, writes, flushes, discards, errors, bytes_read, bytes_written;
    uint64_t rate_limiter_throttled_events; /* times the queue stopped for the rate limiter */
};
void virtio_blk_get_stats(const struct virtio_blk *blk, struct virtio_blk_stats *out);

/* New rate limits (drive_config.rate_limiter semantics; PATCH /drives), on
 * the VMM thread. The buckets start over full; a throttled queue resumes
 * and then waits for the new limits. */
void virtio_blk_set_rate_limiter(struct virtio_blk *blk, const struct rate_limiter_config *rl);

#endif /* FLINT_VIRTIO_BLK_H */
