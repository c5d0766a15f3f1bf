/*
 * libFuzzer target: a bzImage's payload unpacked on the host
 * (bzimage_unpack.c), for every compressor flint accepts.
 *
 * The input's first byte picks a format and the rest follows that
 * format's magic bytes, so every decoder is reached from the first run;
 * the last 4 bytes are the promised size as in a real payload. Whatever
 * the stream holds, the unpacker must not crash, must not write beyond the
 * output it was given (ASan watches), and when it accepts a payload the
 * output must be exactly the promised size and start with the ELF magic.
 */
#define _GNU_SOURCE
#include "loader.h"
#include "util.h"

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Small enough that a bomb costs milliseconds, large enough for real
 * streams of the seed corpus. */
#define FUZZ_OUT_MAX (4u * 1024 * 1024)

static const uint8_t *const magics[] = {
    (const uint8_t *)"\x1f\x8b",
    (const uint8_t *)"\xfd"
                     "7zXZ\x00",
    (const uint8_t *)"\x5d\x00\x00",
    (const uint8_t *)"\x89LZO\x00\r\n\x1a\n",
    (const uint8_t *)"\x02\x21\x4c\x18",
    (const uint8_t *)"\x28\xb5\x2f\xfd",
};
static const size_t magic_lens[] = {2, 6, 3, 9, 4, 4};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[LOADER_ERR_LEN];
    uint8_t *in, *out = NULL;
    size_t out_len = 0, n, pick;

    if (size < 1)
        return 0;
    /* 0..5: prepend that format's magic; anything else: the input as is. */
    pick = data[0] % 8;
    n = pick < ARRAY_SIZE(magics) ? magic_lens[pick] : 0;
    in = malloc(n + size - 1 + 1);
    if (!in)
        return 0;
    if (n)
        memcpy(in, magics[pick], n);
    memcpy(in + n, data + 1, size - 1);
    if (bzimage_unpack(in, n + size - 1, FUZZ_OUT_MAX, &out, &out_len, err, sizeof(err)) == 0) {
        if (out_len > FUZZ_OUT_MAX || out_len < SELFMAG || memcmp(out, ELFMAG, SELFMAG))
            abort();
        free(out);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(in);
    return 0;
}
