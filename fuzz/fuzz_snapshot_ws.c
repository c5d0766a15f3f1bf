/*
 * fuzz_snapshot_ws.c - libFuzzer target for the working-set file parser
 * (snapshot_ws_parse).
 *
 * Input: a first byte, then the rest. With the first byte's low bit clear
 * the rest is a whole file, as read from disk. With it set, the rest is
 * the runs that this target seals with a valid header and CRC, so the
 * fuzzer reaches the run checks behind the checksum. A file accepted must
 * encode back to the same bytes.
 */
#include "snap_io.h"
#include "snapshot_ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_SIZE (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *seal(const uint8_t *runs, size_t len, size_t *out_len)
{
    size_t n = len / SNAPSHOT_WS_RUN_LEN;
    size_t total = SNAPSHOT_WS_HEADER_LEN + n * SNAPSHOT_WS_RUN_LEN + 8;
    uint8_t *p = calloc(1, total);
    uint64_t word = SNAPSHOT_WS_VERSION | (uint64_t)n << 32, crc;

    if (!p)
        return NULL;
    memcpy(p, SNAPSHOT_WS_MAGIC, 8);
    for (unsigned i = 0; i < 8; i++) {
        p[8 + i] = (uint8_t)(word >> (8 * i));
        p[16 + i] = (uint8_t)(MEM_SIZE >> (8 * i));
    }
    memcpy(p + SNAPSHOT_WS_HEADER_LEN, runs, n * SNAPSHOT_WS_RUN_LEN);
    crc = snap_crc64(0, p, total - 8);
    for (unsigned i = 0; i < 8; i++)
        p[total - 8 + i] = (uint8_t)(crc >> (8 * i));
    *out_len = total;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snapshot_ws ws;
    const uint8_t *file = data + 1;
    uint8_t *sealed = NULL;
    size_t len = size - 1;
    char err[256];

    if (size < 1 || size > (1u << 20))
        return 0;
    if (data[0] & 1) {
        sealed = seal(data + 1, size - 1, &len);
        if (!sealed)
            return 0;
        file = sealed;
    }
    if (snapshot_ws_parse(file, len, MEM_SIZE, &ws, err, sizeof(err)) == 0) {
        void *again;
        size_t again_len;
        if (snapshot_ws_encode(&ws, &again, &again_len) == 0) {
            if (again_len != len || memcmp(again, file, len))
                abort();
            free(again);
        }
        snapshot_ws_free(&ws);
    }
    free(sealed);
    return 0;
}
