/*
 * api_http.h - the HTTP/1.1 side of the control API: a request reader fed
 * with whatever bytes a Unix stream socket delivers, and a response writer.
 *
 * The reader wraps Debian's libhttp-parser and keeps every buffer bounded:
 * the request line and headers together at most API_HTTP_MAX_HEADER bytes,
 * the path API_HTTP_MAX_PATH, the body max_body (Firecracker's default,
 * API_HTTP_MAX_BODY, unless --http-api-max-payload-size says otherwise). It hands out one request
 * at a time, so pipelined requests are answered in order; the caller feeds the rest of its buffer
 * after it has answered. Chunked (or any) Transfer-Encoding, protocol upgrades and CONNECT are
 * refused. After an error the reader is dead: answer with the status it gives and close the
 * connection.
 */
#ifndef FLINT_API_HTTP_H
#define FLINT_API_HTTP_H

#include <http_parser.h>

#include <stdbool.h>
#include <stddef.h>

#define API_HTTP_MAX_HEADER 8192  /* request line + header fields */
#define API_HTTP_MAX_PATH   1024  /* the request target */
#define API_HTTP_MAX_BODY   51200 /* Firecracker's default payload limit */
/* The most --http-api-max-payload-size may raise it to: every connection may
 * hold a body this big. */
#define API_HTTP_MAX_BODY_LIMIT (16u << 20)

enum api_method {
    API_METHOD_GET,
    API_METHOD_PUT,
    API_METHOD_PATCH,
    API_METHOD_OTHER, /* parsed, but no endpoint takes it */
};

struct api_http_request {
    enum api_method method;
    const char *method_name; /* "GET", "DELETE", ... */
    char path[API_HTTP_MAX_PATH + 1];
    char *body; /* NUL-terminated; NULL when there is none */
    size_t body_len;
    bool keep_alive; /* false: close the connection after answering */
};

enum api_http_result {
    API_HTTP_MORE,    /* every byte consumed; no complete request yet */
    API_HTTP_REQUEST, /* a complete request in reader->req */
    API_HTTP_ERROR,   /* malformed or refused: reader->err_status, err_msg */
};

struct api_http_reader {
    http_parser parser;
    struct api_http_request req;
    size_t path_len;
    size_t header_bytes; /* bytes consumed since the last request ended */
    bool headers_done;
    bool in_message;    /* a request has begun but not ended */
    bool complete;      /* on_message_complete fired: hand out req */
    bool want_continue; /* the client sent "Expect: 100-continue" */
    bool failed;
    /* The header field being read, lower-cased, to spot Expect. */
    char field[16];
    size_t field_len;
    bool field_is_expect;
    bool value_seen; /* the current header has (part of) its value */
    char value[24];
    size_t value_len;
    size_t max_body; /* the largest body accepted */
    int err_status;
    char err_msg[160];
};

/* A fresh reader taking bodies of at most max_body bytes (at most
 * API_HTTP_MAX_BODY_LIMIT). Never fails. */
void api_http_reader_init(struct api_http_reader *r, size_t max_body);

/* Free the body of the last request. The reader may be reused after
 * api_http_reader_init. */
void api_http_reader_free(struct api_http_reader *r);

/* Feed up to len bytes. *used says how many were consumed: all of them for
 * API_HTTP_MORE; for API_HTTP_REQUEST those up to the end of the request
 * (feed the rest after answering it); for API_HTTP_ERROR undefined. The
 * request stays valid until the next call. */
enum api_http_result api_http_feed(struct api_http_reader *r, const char *data, size_t len,
                                   size_t *used);

/* True when the headers so far announced "Expect: 100-continue" and no
 * interim answer was sent: send API_HTTP_CONTINUE, then clear the flag. */
bool api_http_wants_continue(const struct api_http_reader *r);
void api_http_continue_sent(struct api_http_reader *r);

/* True while a request has started but not ended (a half-sent request). */
bool api_http_in_request(const struct api_http_reader *r);

#define API_HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* Format a response: status line, "Connection: close" when close, and for
 * a body "Content-Type: application/json" and Content-Length. A 204 has
 * neither header nor body. Returns a malloc'ed buffer and its length in
 * *len, or NULL when out of memory. */
char *api_http_response(int status, const char *json_body, bool close, size_t *len);

/* "OK", "No Content", "Bad Request", ... for the statuses flint sends. */
const char *api_http_reason(int status);

#endif /* FLINT_API_HTTP_H */
