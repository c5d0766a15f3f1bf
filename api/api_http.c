/*
 * api_http.c - bounded HTTP/1.1 request reading (libhttp-parser) and
 * response formatting for the control API (RFC 9112).
 */
#include "api_http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(struct api_http_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first problem; the callback's nonzero return stops the parser. */
static int fail(struct api_http_reader *r, const char *fmt, ...)
{
    va_list ap;

    if (!r->failed) {
        va_start(ap, fmt);
        vsnprintf(r->err_msg, sizeof(r->err_msg), fmt, ap);
        va_end(ap);
        r->err_status = 400;
        r->failed = true;
    }
    return -1;
}

static struct api_http_reader *reader_of(http_parser *p)
{
    return p->data;
}

static void drop_body(struct api_http_reader *r)
{
    free(r->req.body);
    r->req.body = NULL;
    r->req.body_len = 0;
}

static int on_message_begin(http_parser *p)
{
    struct api_http_reader *r = reader_of(p);

    drop_body(r);
    r->req.path[0] = '\0';
    r->path_len = 0;
    r->headers_done = false;
    r->in_message = true;
    r->want_continue = false;
    r->field_len = r->value_len = 0;
    r->field_is_expect = false;
    r->value_seen = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct api_http_reader *r = reader_of(p);

    if (len > API_HTTP_MAX_PATH - r->path_len)
        return fail(r, "the request target is longer than %d bytes", API_HTTP_MAX_PATH);
    memcpy(r->req.path + r->path_len, at, len);
    r->path_len += len;
    r->req.path[r->path_len] = '\0';
    return 0;
}

/* A header ended (its value is complete): act on the ones flint reads. */
static void header_done(struct api_http_reader *r)
{
    if (r->field_is_expect && r->value_len == strlen("100-continue") &&
        !strncasecmp(r->value, "100-continue", r->value_len))
        r->want_continue = true;
    r->field_len = r->value_len = 0;
    r->field_is_expect = false;
    r->value_seen = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct api_http_reader *r = reader_of(p);

    /* A field after a value starts the next header. */
    if (r->value_seen)
        header_done(r);
    for (size_t i = 0; i < len; i++) {
        if (r->field_len < sizeof(r->field) - 1)
            r->field[r->field_len] = (char)tolower((unsigned char)at[i]);
        r->field_len++;
    }
    r->field_is_expect =
        r->field_len == strlen("expect") && !strncmp(r->field, "expect", r->field_len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct api_http_reader *r = reader_of(p);

    r->value_seen = true;
    for (size_t i = 0; i < len && r->field_is_expect; i++) {
        if (r->value_len < sizeof(r->value) - 1)
            r->value[r->value_len] = at[i];
        r->value_len++;
    }
    return 0;
}

static enum api_method method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return API_METHOD_GET;
    case HTTP_PUT:
        return API_METHOD_PUT;
    case HTTP_PATCH:
        return API_METHOD_PATCH;
    default:
        return API_METHOD_OTHER;
    }
}

static int on_headers_complete(http_parser *p)
{
    struct api_http_reader *r = reader_of(p);

    header_done(r);
    r->headers_done = true;
    if (p->http_major != 1)
        return fail(r, "HTTP/%u.%u is not supported (HTTP/1.x only)", p->http_major, p->http_minor);
    if (p->uses_transfer_encoding || (p->flags & F_CHUNKED))
        return fail(r, "Transfer-Encoding is not supported: send the body with Content-Length");
    if (p->method == HTTP_CONNECT || (p->flags & F_UPGRADE))
        return fail(r, "protocol upgrades and CONNECT are not supported");
    if (r->path_len == 0)
        return fail(r, "empty request target");
    r->req.method = method_of(p->method);
    r->req.method_name = http_method_str((enum http_method)p->method);
    r->req.keep_alive = http_should_keep_alive(p) != 0;
    if (p->flags & F_CONTENTLENGTH) {
        if (p->content_length > r->max_body)
            return fail(r,
                        "request payload with size %llu is larger than the limit of %zu bytes "
                        "allowed by the server",
                        (unsigned long long)p->content_length, r->max_body);
        if (p->content_length > 0) {
            r->req.body = malloc((size_t)p->content_length + 1);
            if (!r->req.body)
                return fail(r, "out of memory for a %llu-byte body",
                            (unsigned long long)p->content_length);
            r->req.body[0] = '\0';
        }
    } else {
        /* No body without Content-Length: the message ends here. */
        r->want_continue = false;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct api_http_reader *r = reader_of(p);

    /* The parser never passes more than Content-Length; check anyway. */
    if (!r->req.body || len > r->max_body - r->req.body_len)
        return fail(r, "request body larger than announced");
    memcpy(r->req.body + r->req.body_len, at, len);
    r->req.body_len += len;
    r->req.body[r->req.body_len] = '\0';
    /* Data arrived: the client no longer waits for 100 Continue. */
    r->want_continue = false;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct api_http_reader *r = reader_of(p);

    r->complete = true;
    r->in_message = false;
    r->want_continue = false;
    r->headers_done = false;
    r->header_bytes = 0;
    /* Hand out this request before parsing the next one. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void api_http_reader_init(struct api_http_reader *r, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    r->max_body = max_body < API_HTTP_MAX_BODY_LIMIT ? max_body : API_HTTP_MAX_BODY_LIMIT;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
}

void api_http_reader_free(struct api_http_reader *r)
{
    drop_body(r);
}

bool api_http_wants_continue(const struct api_http_reader *r)
{
    return r->want_continue && !r->failed;
}

void api_http_continue_sent(struct api_http_reader *r)
{
    r->want_continue = false;
}

bool api_http_in_request(const struct api_http_reader *r)
{
    return r->in_message;
}

static enum api_http_result parser_error(struct api_http_reader *r)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);

    if (!r->failed)
        fail(r, "malformed HTTP request: %s", http_errno_description(e));
    return API_HTTP_ERROR;
}

enum api_http_result api_http_feed(struct api_http_reader *r, const char *data, size_t len,
                                   size_t *used)
{
    size_t off = 0;

    *used = 0;
    if (r->failed)
        return API_HTTP_ERROR;
    if (r->complete) {
        r->complete = false;
        drop_body(r);
        http_parser_pause(&r->parser, 0);
    }
    while (off < len) {
        size_t chunk = len - off, n;

        /* Feed the header part in pieces no larger than what is left of
         * its budget, so a header never grows past it. */
        if (!r->headers_done) {
            size_t room = API_HTTP_MAX_HEADER - r->header_bytes;
            if (room == 0) {
                fail(r, "the request line and headers exceed %d bytes", API_HTTP_MAX_HEADER);
                return API_HTTP_ERROR;
            }
            if (chunk > room)
                chunk = room;
        }
        n = http_parser_execute(&r->parser, &settings, data + off, chunk);
        off += n;
        /* Still in the headers: all of it was header bytes. */
        if (!r->headers_done && !r->complete)
            r->header_bytes += n;
        if (r->failed)
            return API_HTTP_ERROR;
        if (r->complete) {
            *used = off;
            return API_HTTP_REQUEST;
        }
        if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || n != chunk)
            return parser_error(r);
    }
    *used = off;
    return API_HTTP_MORE;
}

const char *api_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    default:
        return "Unknown";
    }
}

char *api_http_response(int status, const char *json_body, bool close, size_t *len)
{
    size_t body_len = json_body && status != 204 ? strlen(json_body) : 0;
    size_t cap = 256 + body_len;
    char *buf = malloc(cap);
    int n;

    if (!buf)
        return NULL;
    n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\nServer: flint API\r\n%s", status,
                 api_http_reason(status), close ? "Connection: close\r\n" : "");
    /* RFC 9110 §8.6: no Content-Length in a 204. */
    if (status != 204)
        n += snprintf(buf + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    n += snprintf(buf + n, cap - (size_t)n, "\r\n");
    memcpy(buf + n, json_body ? json_body : "", body_len);
    buf[(size_t)n + body_len] = '\0';
    *len = (size_t)n + body_len;
    return buf;
}
