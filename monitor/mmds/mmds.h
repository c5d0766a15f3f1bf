/*
 * mmds.h - the microVM metadata service (MMDS), as Firecracker defines it
 * (docs/API.md "MMDS"): a JSON document the host sets through the API and
 * the guest reads over HTTP at a link-local address.
 *
 * Three layers, all on the VMM thread (no locks):
 *  - the store (mmds.c): the document, bounded by --mmds-size-limit bytes
 *    of compact JSON; PUT replaces it, PATCH merges (RFC 7396); lookups by
 *    path in JSON or in IMDS text; the configuration (version, address,
 *    interfaces, imds_compat); V2 session tokens (mmds_token.c).
 *  - HTTP (mmds_http.c): one guest request in, one response out, parsed by
 *    libhttp-parser with every buffer bounded.
 *  - the network stack (mmds_net.c): ARP, IPv4 and a minimal TCP, fed with
 *    the frames a listed virtio-net interface sends to the MMDS address;
 *    answers are queued as frames for the interface's RX path.
 *
 * Everything the guest sends is hostile: each layer checks lengths and
 * fields before use, and bounds connections, buffers and time.
 */
#ifndef FLINT_MMDS_H
#define FLINT_MMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

#define MMDS_DEFAULT_IPV4       0xa9fea9feu /* 169.254.169.254, host order */
#define MMDS_DEFAULT_SIZE_LIMIT 51200       /* Firecracker: --http-api-max-payload-size's default */
#define MMDS_TOKEN_TTL_MIN      1
#define MMDS_TOKEN_TTL_MAX      21600 /* seconds (Firecracker's bounds) */
#define MMDS_MAX_TOKENS         64    /* live V2 tokens; the oldest gives way */
#define MMDS_TOKEN_CHARS        43    /* 32 random bytes, base64url without padding */
#define MMDS_MAX_IFACES         8     /* CONFIG_MAX_NETS */
#define MMDS_ID_MAX             64

enum mmds_version {
    MMDS_V1,
    MMDS_V2,
};

enum mmds_format {
    MMDS_FORMAT_JSON,
    MMDS_FORMAT_IMDS,
};

struct mmds_config {
    bool set; /* PUT /mmds/config or "mmds-config" was given */
    enum mmds_version version;
    bool imds_compat; /* always answer in IMDS text (text/plain) */
    uint32_t ipv4;    /* host byte order */
    char ifaces[MMDS_MAX_IFACES][MMDS_ID_MAX + 1];
    unsigned nifaces;
};

struct mmds_token {
    char text[MMDS_TOKEN_CHARS + 1];
    uint64_t expires_ns; /* CLOCK_MONOTONIC; 0: slot free */
};

struct mmds {
    struct json_t *doc; /* NULL until the first PUT */
    size_t size_limit;  /* bytes of compact JSON */
    struct mmds_config cfg;
    struct mmds_token tokens[MMDS_MAX_TOKENS];
    uint32_t rng_key[8]; /* ChaCha20 key (RFC 8439) for tokens, from getrandom */
    uint64_t rng_counter;
};

/* ---- the store (mmds.c) ---- */

/* An empty store with this limit (0: MMDS_DEFAULT_SIZE_LIMIT) and the
 * default configuration (V1, 169.254.169.254, no interface). Draws the
 * token key from getrandom, so call before seccomp filters load.
 * Returns 0 or -errno. */
int mmds_init(struct mmds *m, size_t size_limit);
void mmds_fini(struct mmds *m);

/* PUT /mmds: replace the document (any JSON value; a reference is
 * taken). PATCH /mmds: merge `patch` into it (RFC 7396); the store must
 * have been PUT first. Both return 0, -EFBIG (the result would exceed the
 * limit: nothing changed), -ENOENT (PATCH before PUT) or -ENOMEM. */
int mmds_put(struct mmds *m, struct json_t *doc);
int mmds_patch(struct mmds *m, struct json_t *patch);

/* GET /mmds: the document as compact JSON, "{}" when never PUT (as
 * Firecracker). malloc'ed; NULL when out of memory. */
char *mmds_dump(const struct mmds *m);

/* The guest's GET: the value at `path` (a URI path: "//" runs count as
 * one "/", a trailing "/" is ignored, "~0" and "~1" escape as in RFC
 * 6901, array elements by index) in `fmt`. IMDS text lists an object's
 * keys one per line, objects with a trailing "/", and gives a string as
 * is; other values have no IMDS form. Returns 0 with a malloc'ed *out,
 * -ENOENT (no such value), -ENOTSUP (no IMDS form) or -ENOMEM. */
int mmds_lookup(const struct mmds *m, const char *path, enum mmds_format fmt, char **out);

/* Check and apply a PUT /mmds/config body (or "mmds-config"):
 * {"version": "V1"|"V2", "network_interfaces": [ids] (required, each one
 * of `known_ids`), "ipv4_address": link-local dotted quad, "imds_compat":
 * bool}. Returns 0 or -EINVAL with one line in err; nothing changes on
 * error. */
int mmds_configure(struct mmds *m, struct json_t *body, const char *const *known_ids,
                   unsigned nknown, char *err, size_t errlen);

/* The configuration as PUT /mmds/config takes it (a new reference), or
 * JSON null when none was given. NULL when out of memory. */
struct json_t *mmds_config_json(const struct mmds *m);

/* True when the interface with this id is listed in the configuration. */
bool mmds_serves_iface(const struct mmds *m, const char *id);

/* ---- V2 session tokens (mmds_token.c) ---- */

/* A new token valid for ttl_s seconds from now_ns (ttl checked by the
 * caller) into out (MMDS_TOKEN_CHARS + 1 bytes). */
void mmds_token_new(struct mmds *m, uint32_t ttl_s, uint64_t now_ns, char *out);

/* True when `tok` (len bytes, untrusted) is a live token at now_ns. */
bool mmds_token_valid(const struct mmds *m, const char *tok, size_t len, uint64_t now_ns);

#endif /* FLINT_MMDS_H */
