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

#include <http_parser.h>

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

/* A uniformly random 32-bit number from the same keystream (TCP initial
 * sequence numbers). */
uint32_t mmds_random_u32(struct mmds *m);

/* ---- HTTP (mmds_http.c) ---- */

#define MMDS_HTTP_MAX_HEADER 4096 /* request line + header fields */
#define MMDS_HTTP_MAX_PATH   1024
#define MMDS_HTTP_MAX_BODY   1024 /* read and ignored */

enum mmds_http_result {
    MMDS_HTTP_MORE,    /* every byte consumed, no complete request yet */
    MMDS_HTTP_REQUEST, /* a complete request: answer it, then feed the rest */
    MMDS_HTTP_ERROR,   /* malformed or over a limit: answer 400 and close */
};

/* One connection's request reader. */
struct mmds_http {
    http_parser parser;
    char url[MMDS_HTTP_MAX_PATH + 1];
    size_t url_len;
    char field[40]; /* the header name being read, lower-cased */
    size_t field_len;
    char value[MMDS_TOKEN_CHARS + 24]; /* its value (longer ones are cut) */
    size_t value_len;
    bool value_seen;
    char token[MMDS_TOKEN_CHARS + 1]; /* X-metadata-token; token_len > MMDS_TOKEN_CHARS: too long */
    size_t token_len;
    char ttl[12]; /* X-metadata-token-ttl-seconds */
    size_t ttl_len;
    bool has_token, has_ttl, xff, accept_json;
    unsigned method; /* enum http_method */
    unsigned http_minor;
    bool keep_alive;
    size_t header_bytes;
    bool headers_done, in_message, complete, failed;
};

void mmds_http_init(struct mmds_http *h);

/* Feed up to len guest bytes; *used says how many were taken (for
 * MMDS_HTTP_REQUEST, up to the end of that request). */
enum mmds_http_result mmds_http_feed(struct mmds_http *h, const uint8_t *data, size_t len,
                                     size_t *used);

/* The answer to the request just completed (or, after MMDS_HTTP_ERROR, a
 * 400): status line, headers and body, malloc'ed, *len bytes; *close when
 * the connection should end after it. NULL when out of memory. */
char *mmds_http_answer(struct mmds *m, const struct mmds_http *h, uint64_t now_ns, bool *close,
                       size_t *len);

/* ---- the network stack (mmds_net.c) ---- */

/* The MAC the MMDS answers from (Firecracker's, locally administered). */
#define MMDS_NET_MAC                                                                               \
    {                                                                                              \
        0x06, 0x01, 0x23, 0x45, 0x67, 0x01                                                         \
    }
#define MMDS_NET_FRAME_MAX 1514 /* Ethernet header + 1500 */
#define MMDS_NET_QUEUE     64   /* frames waiting for the guest's RX buffers */
#define MMDS_NET_MAX_CONNS 16
#define MMDS_NET_PORT      80
#define MMDS_NET_MSS       1460
#define MMDS_NET_WINDOW    8192 /* the window flint advertises */
/* A handshake must finish within this, a connection see traffic within
 * the idle limit; either is reclaimed when a slot is needed or at the
 * next frame after. */
#define MMDS_NET_SYN_TIMEOUT_NS  (5ull * 1000000000)
#define MMDS_NET_IDLE_TIMEOUT_NS (30ull * 1000000000)
/* The most response bytes a connection holds (a document at the size
 * limit plus headers): larger answers are refused with 500. */
#define MMDS_NET_OUT_MAX(m) ((m)->size_limit + 1024)

struct mmds_frame {
    uint16_t len;
    uint8_t data[MMDS_NET_FRAME_MAX];
};

enum mmds_conn_state {
    MMDS_CONN_FREE,
    MMDS_CONN_SYN_RCVD,
    MMDS_CONN_OPEN, /* established, or closing (fin flags) */
};

struct mmds_conn {
    enum mmds_conn_state state;
    uint8_t peer_mac[6];
    uint32_t peer_ip; /* host order */
    uint16_t peer_port;
    uint32_t iss, snd_una, snd_nxt, rcv_nxt;
    uint32_t out_seq; /* sequence number of out[0] */
    uint16_t peer_wnd, mss;
    bool peer_fin, close_after, fin_sent;
    char *out; /* response bytes not yet acknowledged, from out_seq */
    size_t out_len;
    uint64_t born_ns, last_ns;
    struct mmds_http http;
};

struct mmds_net_stats {
    uint64_t frames_in, frames_out, dropped_in, dropped_out, conns, conns_refused, rst_sent;
};

/* One virtio-net interface's MMDS endpoint. */
struct mmds_net {
    struct mmds *store;
    struct mmds_conn conns[MMDS_NET_MAX_CONNS];
    struct mmds_frame *queue; /* ring of MMDS_NET_QUEUE */
    unsigned q_head, q_count;
    uint16_t ip_id;
    struct mmds_net_stats stats;
};

/* 0 or -ENOMEM. */
int mmds_net_init(struct mmds_net *n, struct mmds *store);
void mmds_net_fini(struct mmds_net *n);

/* A frame the guest sent (len bytes from the Ethernet header on, guest
 * memory already copied). True when it belongs to the MMDS - an ARP
 * packet asking for its address, or any IPv4 packet to it - and must not
 * reach the tap; answers are queued. csum_partial: the guest left the TCP
 * checksum to the device (VIRTIO_NET_HDR_F_NEEDS_CSUM), so it is not
 * checked. */
bool mmds_net_tx(struct mmds_net *n, const uint8_t *frame, size_t len, bool csum_partial,
                 uint64_t now_ns);

/* The next frame for the guest, or NULL; mmds_net_pop drops it once
 * delivered (and lets connections send more). */
const struct mmds_frame *mmds_net_peek(const struct mmds_net *n);
void mmds_net_pop(struct mmds_net *n, uint64_t now_ns);

#endif /* FLINT_MMDS_H */
