/*
 * mmds_token.c - MMDS V2 session tokens.
 *
 * A token is 32 bytes from a ChaCha20 keystream (RFC 8439 §2.3) keyed from
 * getrandom at mmds_init, so the VMM thread needs no system call (and no
 * seccomp rule) to make one, and one token tells nothing about the next.
 * The store keeps at most MMDS_MAX_TOKENS live tokens; a new one replaces
 * an expired token or the one closest to expiring.
 */
#include "mmds.h"

#include <string.h>

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                                             \
    do {                                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 16);                                                                           \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 12);                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 8);                                                                            \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 7);                                                                            \
    } while (0)

/* RFC 8439 §2.3: one 64-byte block for (key, counter), nonce zero. */
static void chacha20_block(const uint32_t key[8], uint64_t counter, uint32_t out[16])
{
    uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    uint32_t x[16];

    memcpy(&in[4], key, 32);
    in[12] = (uint32_t)counter;
    in[13] = (uint32_t)(counter >> 32);
    memcpy(x, in, sizeof(x));
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        out[i] = x[i] + in[i];
}

/* RFC 4648 §5 (base64url), no padding: 32 bytes give 43 characters. */
static void base64url(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = tab[(acc >> bits) & 63];
        }
    }
    if (bits)
        *out++ = tab[(acc << (6 - bits)) & 63];
    *out = '\0';
}

static struct mmds_token *free_slot(struct mmds *m, uint64_t now_ns)
{
    struct mmds_token *best = &m->tokens[0];

    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
        struct mmds_token *t = &m->tokens[i];
        if (t->expires_ns <= now_ns)
            return t;
        if (t->expires_ns < best->expires_ns)
            best = t;
    }
    return best;
}

void mmds_token_new(struct mmds *m, uint32_t ttl_s, uint64_t now_ns, char *out)
{
    struct mmds_token *t = free_slot(m, now_ns);
    uint32_t block[16];

    chacha20_block(m->rng_key, m->rng_counter++, block);
    base64url((const uint8_t *)block, 32, t->text);
    memset(block, 0, sizeof(block));
    t->expires_ns = now_ns + (uint64_t)ttl_s * 1000000000ull;
    memcpy(out, t->text, MMDS_TOKEN_CHARS + 1);
}

bool mmds_token_valid(const struct mmds *m, const char *tok, size_t len, uint64_t now_ns)
{
    if (len != MMDS_TOKEN_CHARS)
        return false;
    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++) {
        const struct mmds_token *t = &m->tokens[i];
        if (t->expires_ns > now_ns && !memcmp(t->text, tok, MMDS_TOKEN_CHARS))
            return true;
    }
    return false;
}

uint32_t mmds_random_u32(struct mmds *m)
{
    uint32_t block[16], v;

    chacha20_block(m->rng_key, m->rng_counter++, block);
    v = block[0];
    memset(block, 0, sizeof(block));
    return v;
}
