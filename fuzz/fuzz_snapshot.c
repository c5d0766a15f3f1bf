/*
 * fuzz_snapshot.c - libFuzzer target for the snapshot state file parser
 * (snapshot_image_parse): the container checks and every section.
 *
 * Input: a first byte, then the rest. With the first byte's low bit clear
 * the rest is a whole state file, as read from disk (so the magic,
 * version, length and CRC checks are fuzzed). With it set, the rest is a
 * payload that this target seals with a valid header and CRC, so the
 * fuzzer reaches the sections behind the checksum.
 */
#include "snapshot.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snapshot_image img;
    struct snap_writer w;
    char err[256];

    if (size < 1 || size > (1u << 20))
        return 0;
    if (data[0] & 1) {
        snap_writer_init(&w);
        snapshot_file_begin(&w);
        snap_put_bytes(&w, data + 1, size - 1);
        if (!snapshot_file_finish(&w) &&
            !snapshot_image_parse(w.buf, w.len, &img, err, sizeof(err))) {
            /* Whatever was accepted is within its bounds. */
            if (img.nvcpus == 0 || img.nvcpus > CONFIG_MAX_VCPUS || img.nregions == 0 ||
                img.nregions > GUEST_MEM_MAX_REGIONS || img.devices.len > w.len)
                abort();
            snapshot_image_free(&img);
        }
        snap_writer_free(&w);
        return 0;
    }
    if (!snapshot_image_parse(data + 1, size - 1, &img, err, sizeof(err)))
        snapshot_image_free(&img);
    return 0;
}
