/*
 * mmds_http.c - the guest's HTTP/1.1 requests to the MMDS and their
 * answers, as Firecracker's MMDS gives them (docs/API.md "MMDS").
 *
 * The reader wraps libhttp-parser and keeps only what an answer needs: the
 * path (MMDS_HTTP_MAX_PATH bytes), the token headers, Accept and whether
 * X-Forwarded-For was there. Request line and headers together are at most
 * MMDS_HTTP_MAX_HEADER bytes, a body at most MMDS_HTTP_MAX_BODY (read and
 * thrown away). One request at a time: the parser pauses after each.
 */
#define _GNU_SOURCE
#include "mmds.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_PATH "/latest/api/token"

static struct mmds_http *http_of(http_parser *p)
{
    return p->data;
}

static int fail(struct mmds_http *h)
{
    h->failed = true;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct mmds_http *h = http_of(p);

    h->url_len = 0;
    h->url[0] = '\0';
    h->field_len = h->value_len = 0;
    h->value_seen = false;
    h->token_len = h->ttl_len = 0;
    h->has_token = h->has_ttl = h->xff = h->accept_json = false;
    h->in_message = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct mmds_http *h = http_of(p);

    if (len > MMDS_HTTP_MAX_PATH - h->url_len)
        return fail(h);
    memcpy(h->url + h->url_len, at, len);
    h->url_len += len;
    h->url[h->url_len] = '\0';
    return 0;
}

static bool field_is(const struct mmds_http *h, const char *name)
{
    return h->field_len == strlen(name) && !strncmp(h->field, name, h->field_len);
}

/* A header's value is complete: keep it if it is one the MMDS reads.
 * Firecracker also takes the EC2 spellings of the token headers. */
static void header_done(struct mmds_http *h)
{
    size_t n = h->value_len < sizeof(h->value) ? h->value_len : sizeof(h->value) - 1;

    /* RFC 9110 §5.5: leading and trailing whitespace is not part of it. */
    while (n && (h->value[n - 1] == ' ' || h->value[n - 1] == '\t'))
        n--;
    if (field_is(h, "x-metadata-token") || field_is(h, "x-aws-ec2-metadata-token")) {
        h->has_token = true;
        h->token_len = h->value_len > sizeof(h->value) - 1 ? sizeof(h->token) : n;
        memcpy(h->token, h->value, n < sizeof(h->token) ? n : sizeof(h->token));
    } else if (field_is(h, "x-metadata-token-ttl-seconds") ||
               field_is(h, "x-aws-ec2-metadata-token-ttl-seconds")) {
        h->has_ttl = true;
        h->ttl_len = h->value_len > sizeof(h->value) - 1 ? sizeof(h->ttl) : n;
        memcpy(h->ttl, h->value, n < sizeof(h->ttl) ? n : sizeof(h->ttl));
    } else if (field_is(h, "accept")) {
        h->accept_json =
            n == strlen("application/json") && !strncasecmp(h->value, "application/json", n);
    } else if (field_is(h, "x-forwarded-for")) {
        h->xff = true;
    }
    h->field_len = h->value_len = 0;
    h->value_seen = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct mmds_http *h = http_of(p);

    if (h->value_seen)
        header_done(h);
    for (size_t i = 0; i < len; i++) {
        if (h->field_len < sizeof(h->field) - 1)
            h->field[h->field_len] = (char)tolower((unsigned char)at[i]);
        h->field_len++;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct mmds_http *h = http_of(p);

    for (size_t i = 0; i < len; i++) {
        /* Skip leading whitespace (the parser may hand it over). */
        if (!h->value_seen && h->value_len == 0 && (at[i] == ' ' || at[i] == '\t'))
            continue;
        if (h->value_len < sizeof(h->value) - 1)
            h->value[h->value_len] = at[i];
        h->value_len++;
    }
    h->value_seen = true;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct mmds_http *h = http_of(p);

    if (h->value_seen || h->field_len)
        header_done(h);
    h->headers_done = true;
    if (p->http_major != 1 || p->uses_transfer_encoding || (p->flags & F_CHUNKED) ||
        p->method == HTTP_CONNECT || (p->flags & F_UPGRADE))
        return fail(h);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > MMDS_HTTP_MAX_BODY)
        return fail(h);
    h->method = p->method;
    h->keep_alive = http_should_keep_alive(p) != 0;
    h->http_minor = p->http_minor;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct mmds_http *h = http_of(p);

    h->complete = true;
    h->in_message = false;
    h->headers_done = false;
    h->header_bytes = 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void mmds_http_init(struct mmds_http *h)
{
    memset(h, 0, sizeof(*h));
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
}

enum mmds_http_result mmds_http_feed(struct mmds_http *h, const uint8_t *data, size_t len,
                                     size_t *used)
{
    size_t off = 0;

    *used = 0;
    if (h->complete) {
        h->complete = false;
        http_parser_pause(&h->parser, 0);
    }
    while (off < len && !h->failed) {
        size_t chunk = len - off, n;

        if (!h->headers_done) {
            size_t room = MMDS_HTTP_MAX_HEADER - h->header_bytes;
            if (room == 0) {
                h->failed = true;
                return MMDS_HTTP_ERROR;
            }
            if (chunk > room)
                chunk = room;
        }
        n = http_parser_execute(&h->parser, &settings, (const char *)data + off, chunk);
        off += n;
        if (!h->headers_done && !h->complete)
            h->header_bytes += n;
        if (h->complete) {
            *used = off;
            return MMDS_HTTP_REQUEST;
        }
        if (HTTP_PARSER_ERRNO(&h->parser) != HPE_OK || n != chunk)
            h->failed = true;
    }
    *used = off;
    return h->failed ? MMDS_HTTP_ERROR : MMDS_HTTP_MORE;
}

/* ---- answers ---- */

struct answer {
    int status;
    const char *allow; /* 405: the Allow header's value */
    bool json;         /* Content-Type application/json, else text/plain */
    char *body;        /* malloc'ed */
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 501:
        return "Not Implemented";
    default:
        return "Internal Server Error";
    }
}

static void set_msg(struct answer *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(struct answer *a, int status, const char *fmt, ...)
{
    va_list ap;

    a->status = status;
    a->json = false;
    va_start(ap, fmt);
    if (vasprintf(&a->body, fmt, ap) < 0)
        a->body = NULL;
    va_end(ap);
}

/* The path of the request target (an absolute URI's too), or "" when it
 * has none. Written into out (MMDS_HTTP_MAX_PATH + 1 bytes). */
static void target_path(const struct mmds_http *h, char *out)
{
    struct http_parser_url u;

    out[0] = '\0';
    http_parser_url_init(&u);
    if (http_parser_parse_url(h->url, h->url_len, 0, &u) || !(u.field_set & (1 << UF_PATH)))
        return;
    memcpy(out, h->url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    out[u.field_data[UF_PATH].len] = '\0';
}

/* "//" runs become "/" (Firecracker's sanitize_uri). */
static void fold_slashes(char *p)
{
    char *w = p;

    for (char *r = p; *r; r++)
        if (!(*r == '/' && w > p && w[-1] == '/'))
            *w++ = *r;
    *w = '\0';
}

static void answer_get(const struct mmds *m, const struct mmds_http *h, const char *path,
                       struct answer *a)
{
    enum mmds_format f =
        h->accept_json && !m->cfg.imds_compat ? MMDS_FORMAT_JSON : MMDS_FORMAT_IMDS;
    int rc = mmds_lookup(m, path, f, &a->body);

    if (rc == -ENOENT)
        return set_msg(a, 404, "Resource not found: %s.", path);
    if (rc == -ENOTSUP)
        return set_msg(a, 501, "Cannot retrieve value. The value has an unsupported type.");
    if (rc)
        return set_msg(a, 500, "out of memory");
    a->status = 200;
    a->json = f == MMDS_FORMAT_JSON;
}

/* A TTL header value: decimal, 1 to 21600 (0 and out of range: -ERANGE,
 * not a number: -EINVAL). */
static int parse_ttl(const struct mmds_http *h, uint32_t *out)
{
    uint64_t v = 0;

    if (h->ttl_len == 0 || h->ttl_len >= sizeof(h->ttl))
        return -EINVAL;
    for (size_t i = 0; i < h->ttl_len; i++) {
        if (h->ttl[i] < '0' || h->ttl[i] > '9' || v > UINT32_MAX)
            return -EINVAL;
        v = v * 10 + (uint64_t)(h->ttl[i] - '0');
    }
    if (v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return v < MMDS_TOKEN_TTL_MIN || v > MMDS_TOKEN_TTL_MAX ? -ERANGE : 0;
}

static void answer_token(struct mmds *m, const struct mmds_http *h, const char *path,
                         uint64_t now_ns, struct answer *a)
{
    uint32_t ttl = 0;
    int rc;

    if (h->xff)
        return set_msg(a, 400,
                       "Invalid header. Reason: Unsupported header name. Key: "
                       "X-Forwarded-For");
    if (strcmp(path, TOKEN_PATH))
        return set_msg(a, 404, "Resource not found: %s.", path);
    if (!h->has_ttl)
        return set_msg(a, 400,
                       "Token time to live value not found. Use "
                       "`X-metadata-token-ttl-seconds` header to specify the token's "
                       "lifetime.");
    rc = parse_ttl(h, &ttl);
    if (rc == -EINVAL)
        return set_msg(a, 400,
                       "Invalid header. Reason: Invalid value. Key: "
                       "X-metadata-token-ttl-seconds");
    if (rc)
        return set_msg(a, 400,
                       "Invalid time to live value provided for token: %u. Please provide a "
                       "value between %d and %d.",
                       ttl, MMDS_TOKEN_TTL_MIN, MMDS_TOKEN_TTL_MAX);
    a->body = malloc(MMDS_TOKEN_CHARS + 1);
    if (!a->body)
        return set_msg(a, 500, "out of memory");
    mmds_token_new(m, ttl, now_ns, a->body);
    a->status = 200;
}

static void answer_request(struct mmds *m, const struct mmds_http *h, uint64_t now_ns,
                           struct answer *a)
{
    char path[MMDS_HTTP_MAX_PATH + 1];
    bool v2 = m->cfg.version == MMDS_V2;

    uint32_t ttl;

    target_path(h, path);
    if (!path[0])
        return set_msg(a, 400, "Invalid URI.");
    fold_slashes(path);
    /* V2 reads the token headers before anything else: a TTL that is not
     * a number is refused whatever the method (as Firecracker). */
    if (v2 && h->has_ttl && parse_ttl(h, &ttl) == -EINVAL)
        return set_msg(a, 400,
                       "Invalid header. Reason: Invalid value. Key: "
                       "X-metadata-token-ttl-seconds");
    if (h->method != HTTP_GET && !(v2 && h->method == HTTP_PUT)) {
        a->allow = v2 ? "GET, PUT" : "GET";
        return set_msg(a, 405, "Not allowed HTTP method.");
    }
    if (v2 && h->method == HTTP_PUT)
        return answer_token(m, h, path, now_ns, a);
    if (v2 && !h->has_token)
        return set_msg(a, 401,
                       "No MMDS token provided. Use `X-metadata-token` header to "
                       "specify the session token.");
    if (v2 && !mmds_token_valid(m, h->token, h->token_len, now_ns))
        return set_msg(a, 401, "MMDS token not valid.");
    answer_get(m, h, path, a);
}

/* Status line, headers and body in one malloc'ed buffer. */
static char *format_answer(const struct answer *a, bool close, size_t *len)
{
    const char *body = a->body ? a->body : "";
    char *out;
    int n;

    n = asprintf(&out,
                 "HTTP/1.1 %d %s\r\nServer: flint MMDS\r\n%s%s%s%sContent-Type: %s\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 a->status, reason(a->status), a->allow ? "Allow: " : "", a->allow ? a->allow : "",
                 a->allow ? "\r\n" : "", close ? "Connection: close\r\n" : "",
                 a->json ? "application/json" : "text/plain", strlen(body), body);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return out;
}

char *mmds_http_answer(struct mmds *m, const struct mmds_http *h, uint64_t now_ns, bool *close,
                       size_t *len)
{
    struct answer a = {0};
    char *out;

    if (h->failed) {
        set_msg(&a, 400, "Malformed or oversized HTTP request.");
        *close = true;
    } else {
        answer_request(m, h, now_ns, &a);
        *close = !h->keep_alive;
    }
    out = format_answer(&a, *close, len);
    free(a.body);
    return out;
}
