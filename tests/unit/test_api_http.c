/* Unit tests: the control API's HTTP/1.1 reader and response writer. */
#include <criterion/criterion.h>

#include "api_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct api_http_reader rd;

static void setup(void)
{
    api_http_reader_init(&rd, API_HTTP_MAX_BODY);
}

static void teardown(void)
{
    api_http_reader_free(&rd);
}

TestSuite(http, .init = setup, .fini = teardown);

static enum api_http_result feed_str(const char *s, size_t *used)
{
    return api_http_feed(&rd, s, strlen(s), used);
}

Test(http, simple_get)
{
    const char *req = "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
    size_t used;

    cr_assert_eq(feed_str(req, &used), API_HTTP_REQUEST);
    cr_assert_eq(used, strlen(req));
    cr_assert_eq(rd.req.method, API_METHOD_GET);
    cr_assert_str_eq(rd.req.method_name, "GET");
    cr_assert_str_eq(rd.req.path, "/");
    cr_assert_null(rd.req.body);
    cr_assert(rd.req.keep_alive);
    cr_assert_not(api_http_in_request(&rd));
}

static const char put_req[] = "PUT /machine-config HTTP/1.1\r\n"
                              "Host: localhost\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 35\r\n"
                              "\r\n"
                              "{\"vcpu_count\":2,\"mem_size_mib\":256}";

Test(http, put_with_body)
{
    size_t used;

    cr_assert_eq(feed_str(put_req, &used), API_HTTP_REQUEST);
    cr_assert_eq(used, strlen(put_req));
    cr_assert_eq(rd.req.method, API_METHOD_PUT);
    cr_assert_str_eq(rd.req.path, "/machine-config");
    cr_assert_eq(rd.req.body_len, 35);
    cr_assert_str_eq(rd.req.body, "{\"vcpu_count\":2,\"mem_size_mib\":256}");
}

Test(http, byte_by_byte_is_the_same)
{
    size_t n = strlen(put_req), used;

    for (size_t i = 0; i < n - 1; i++) {
        cr_assert_eq(api_http_feed(&rd, put_req + i, 1, &used), API_HTTP_MORE, "byte %zu", i);
        cr_assert_eq(used, 1);
        cr_assert(api_http_in_request(&rd));
    }
    cr_assert_eq(api_http_feed(&rd, put_req + n - 1, 1, &used), API_HTTP_REQUEST);
    cr_assert_eq(used, 1);
    cr_assert_str_eq(rd.req.body, "{\"vcpu_count\":2,\"mem_size_mib\":256}");
}

Test(http, pipelined_requests_come_out_one_at_a_time_in_order)
{
    char buf[1024];
    size_t len, off = 0, used;
    const char *paths[] = {"/a", "/machine-config", "/c"};

    len = (size_t)snprintf(buf, sizeof(buf), "GET /a HTTP/1.1\r\n\r\n%sGET /c HTTP/1.1\r\n\r\n",
                           put_req);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(api_http_feed(&rd, buf + off, len - off, &used), API_HTTP_REQUEST, "req %d",
                     i);
        cr_assert_str_eq(rd.req.path, paths[i]);
        off += used;
    }
    cr_assert_eq(off, len);
    cr_assert_eq(api_http_feed(&rd, buf + off, 0, &used), API_HTTP_MORE);
}

Test(http, a_thousand_requests_in_a_row)
{
    const char *one = "PUT /actions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    size_t n1 = strlen(one), len = n1 * 1000, off = 0, used;
    char *buf = malloc(len);
    unsigned count = 0;

    for (int i = 0; i < 1000; i++)
        memcpy(buf + (size_t)i * n1, one, n1);
    while (off < len) {
        cr_assert_eq(api_http_feed(&rd, buf + off, len - off, &used), API_HTTP_REQUEST);
        cr_assert_str_eq(rd.req.body, "{}");
        off += used;
        count++;
    }
    cr_assert_eq(count, 1000);
    free(buf);
}

Test(http, truncated_headers_wait_for_more)
{
    size_t used;

    cr_assert_eq(feed_str("GET / HTTP/1.1\r\nHost: x\r\n", &used), API_HTTP_MORE);
    cr_assert(api_http_in_request(&rd));
    cr_assert_eq(feed_str("\r\n", &used), API_HTTP_REQUEST);
}

Test(http, truncated_body_waits_for_more)
{
    size_t used;

    cr_assert_eq(feed_str("PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", &used),
                 API_HTTP_MORE);
    cr_assert(api_http_in_request(&rd));
    cr_assert_eq(feed_str("67890GET", &used), API_HTTP_REQUEST);
    cr_assert_eq(used, 5);
    cr_assert_str_eq(rd.req.body, "1234567890");
}

Test(http, body_at_the_limit_is_taken)
{
    size_t hdr_len, used;
    char hdr[128];
    char *body = malloc(API_HTTP_MAX_BODY);

    memset(body, 'a', API_HTTP_MAX_BODY);
    hdr_len = (size_t)snprintf(hdr, sizeof(hdr), "PUT /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
                               API_HTTP_MAX_BODY);
    cr_assert_eq(api_http_feed(&rd, hdr, hdr_len, &used), API_HTTP_MORE);
    cr_assert_eq(api_http_feed(&rd, body, API_HTTP_MAX_BODY, &used), API_HTTP_REQUEST);
    cr_assert_eq(rd.req.body_len, API_HTTP_MAX_BODY);
    free(body);
}

Test(http, huge_content_length_is_refused_before_the_body)
{
    size_t used;

    cr_assert_eq(feed_str("PUT /x HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", &used),
                 API_HTTP_ERROR);
    cr_assert_eq(rd.err_status, 400);
    cr_assert(strstr(rd.err_msg, "51201") && strstr(rd.err_msg, "51200"), "%s", rd.err_msg);
    cr_assert_null(rd.req.body);
}

Test(http, a_smaller_limit_is_enforced_too)
{
    size_t used;

    api_http_reader_free(&rd);
    api_http_reader_init(&rd, 16);
    cr_assert_eq(feed_str("PUT /x HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef", &used),
                 API_HTTP_REQUEST);
    cr_assert_eq(rd.req.body_len, 16);
    api_http_reader_free(&rd);
    api_http_reader_init(&rd, 16);
    cr_assert_eq(feed_str("PUT /x HTTP/1.1\r\nContent-Length: 17\r\n\r\n", &used), API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "size 17") && strstr(rd.err_msg, "limit of 16 bytes"), "%s",
              rd.err_msg);
}

Test(http, a_larger_limit_takes_a_larger_body_and_is_capped)
{
    size_t hdr_len, used, n = 200000;
    char hdr[128];
    char *body = malloc(n);

    api_http_reader_free(&rd);
    api_http_reader_init(&rd, n);
    memset(body, 'b', n);
    hdr_len =
        (size_t)snprintf(hdr, sizeof(hdr), "PUT /x HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    cr_assert_eq(api_http_feed(&rd, hdr, hdr_len, &used), API_HTTP_MORE);
    cr_assert_eq(api_http_feed(&rd, body, n, &used), API_HTTP_REQUEST);
    cr_assert_eq(rd.req.body_len, n);
    free(body);
    api_http_reader_free(&rd);
    api_http_reader_init(&rd, SIZE_MAX);
    cr_assert_eq(rd.max_body, API_HTTP_MAX_BODY_LIMIT);
}

Test(http, overflowing_content_length_is_an_error)
{
    size_t used;

    cr_assert_eq(
        feed_str("PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", &used),
        API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "malformed HTTP request"), "%s", rd.err_msg);
}

Test(http, two_content_lengths_are_an_error)
{
    size_t used;

    cr_assert_eq(
        feed_str("PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", &used),
        API_HTTP_ERROR);
}

Test(http, chunked_encoding_is_refused)
{
    size_t used;

    cr_assert_eq(
        feed_str("PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                 &used),
        API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "Transfer-Encoding"), "%s", rd.err_msg);
}

Test(http, other_transfer_encodings_are_refused)
{
    size_t used;

    cr_assert_eq(feed_str("PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &used),
                 API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "Transfer-Encoding"), "%s", rd.err_msg);
}

Test(http, upgrades_and_connect_are_refused)
{
    size_t used;

    cr_assert_eq(feed_str("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", &used),
                 API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "upgrade"), "%s", rd.err_msg);
    api_http_reader_free(&rd);
    api_http_reader_init(&rd, API_HTTP_MAX_BODY);
    cr_assert_eq(feed_str("CONNECT localhost:80 HTTP/1.1\r\n\r\n", &used), API_HTTP_ERROR);
}

Test(http, binary_garbage_is_an_error)
{
    unsigned char junk[4096];
    size_t used;
    unsigned seed = 12345;

    for (size_t i = 0; i < sizeof(junk); i++) {
        seed = seed * 1103515245u + 12345u;
        junk[i] = (unsigned char)(seed >> 16);
    }
    cr_assert_eq(api_http_feed(&rd, (const char *)junk, sizeof(junk), &used), API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "malformed"), "%s", rd.err_msg);
    /* Dead after an error. */
    cr_assert_eq(feed_str("GET / HTTP/1.1\r\n\r\n", &used), API_HTTP_ERROR);
}

Test(http, nul_bytes_are_an_error)
{
    size_t used;

    cr_assert_eq(api_http_feed(&rd, "GET /\0 HTTP/1.1\r\n\r\n", 19, &used), API_HTTP_ERROR);
}

Test(http, endless_headers_stop_at_the_budget)
{
    const char *line = "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    size_t used, total = 0;
    enum api_http_result res;

    cr_assert_eq(feed_str("GET / HTTP/1.1\r\n", &used), API_HTTP_MORE);
    total += used;
    do {
        res = feed_str(line, &used);
        if (res == API_HTTP_MORE)
            total += used;
    } while (res == API_HTTP_MORE && total < 100000);
    cr_assert_eq(res, API_HTTP_ERROR);
    cr_assert_leq(total, API_HTTP_MAX_HEADER);
    cr_assert(strstr(rd.err_msg, "8192"), "%s", rd.err_msg);
}

Test(http, one_huge_header_line_stops_at_the_budget)
{
    size_t len = 3 * API_HTTP_MAX_HEADER, used;
    char *buf = malloc(len);

    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memset(buf + 19, 'v', len - 19);
    cr_assert_eq(api_http_feed(&rd, buf, len, &used), API_HTTP_ERROR);
    free(buf);
}

Test(http, endless_blank_lines_between_requests_are_bounded)
{
    size_t used, total = 0;
    enum api_http_result res;

    do {
        res = feed_str("\r\n\r\n\r\n\r\n", &used);
        total += used;
    } while (res == API_HTTP_MORE && total < 100000);
    cr_assert_eq(res, API_HTTP_ERROR);
    cr_assert_leq(total, API_HTTP_MAX_HEADER);
}

Test(http, long_path_is_refused)
{
    char buf[API_HTTP_MAX_PATH + 64];
    size_t used;

    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    memcpy(buf + API_HTTP_MAX_PATH + 6, " HTTP/1.1\r\n\r\n", 14);
    cr_assert_eq(api_http_feed(&rd, buf, API_HTTP_MAX_PATH + 20, &used), API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "1024"), "%s", rd.err_msg);
}

Test(http, path_at_the_limit_is_taken)
{
    char buf[API_HTTP_MAX_PATH + 64];
    size_t used;

    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    memcpy(buf + 4 + API_HTTP_MAX_PATH, " HTTP/1.1\r\n\r\n", 14);
    cr_assert_eq(api_http_feed(&rd, buf, API_HTTP_MAX_PATH + 18, &used), API_HTTP_REQUEST, "%s",
                 rd.err_msg);
    cr_assert_eq(strlen(rd.req.path), API_HTTP_MAX_PATH);
}

Test(http, keep_alive_follows_the_version_and_connection_header)
{
    size_t used;

    cr_assert_eq(feed_str("GET / HTTP/1.0\r\n\r\n", &used), API_HTTP_REQUEST);
    cr_assert_not(rd.req.keep_alive);
    api_http_reader_free(&rd);
    api_http_reader_init(&rd, API_HTTP_MAX_BODY);
    cr_assert_eq(feed_str("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &used),
                 API_HTTP_REQUEST);
    cr_assert(rd.req.keep_alive);
    api_http_reader_free(&rd);
    api_http_reader_init(&rd, API_HTTP_MAX_BODY);
    cr_assert_eq(feed_str("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &used), API_HTTP_REQUEST);
    cr_assert_not(rd.req.keep_alive);
}

Test(http, other_versions_are_refused)
{
    size_t used;

    cr_assert_eq(feed_str("GET / HTTP/2.0\r\n\r\n", &used), API_HTTP_ERROR);
    cr_assert(strstr(rd.err_msg, "HTTP/2.0"), "%s", rd.err_msg);
}

Test(http, other_methods_parse_as_other)
{
    size_t used;

    cr_assert_eq(feed_str("DELETE /drives/x HTTP/1.1\r\n\r\n", &used), API_HTTP_REQUEST);
    cr_assert_eq(rd.req.method, API_METHOD_OTHER);
    cr_assert_str_eq(rd.req.method_name, "DELETE");
}

Test(http, expect_100_continue)
{
    size_t used;

    cr_assert_eq(
        feed_str("PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n", &used),
        API_HTTP_MORE);
    cr_assert(api_http_wants_continue(&rd));
    api_http_continue_sent(&rd);
    cr_assert_not(api_http_wants_continue(&rd));
    cr_assert_eq(feed_str("{}", &used), API_HTTP_REQUEST);

    /* Not when the body came along anyway, and not for other values. */
    cr_assert_eq(
        feed_str("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{", &used),
        API_HTTP_MORE);
    cr_assert_not(api_http_wants_continue(&rd));
    cr_assert_eq(feed_str("}", &used), API_HTTP_REQUEST);
    cr_assert_eq(
        feed_str("PUT /x HTTP/1.1\r\nExpect: 100-continuex\r\nContent-Length: 2\r\n\r\n", &used),
        API_HTTP_MORE);
    cr_assert_not(api_http_wants_continue(&rd));
}

Test(http, response_with_body)
{
    size_t len;
    char *r = api_http_response(400, "{\"fault_message\":\"x\"}", false, &len);

    cr_assert_str_eq(r, "HTTP/1.1 400 Bad Request\r\nServer: flint API\r\n"
                        "Content-Type: application/json\r\nContent-Length: 21\r\n\r\n"
                        "{\"fault_message\":\"x\"}");
    cr_assert_eq(len, strlen(r));
    free(r);
}

Test(http, response_204_has_no_length_and_close_says_so)
{
    size_t len;
    char *r = api_http_response(204, NULL, true, &len);

    cr_assert_str_eq(r,
                     "HTTP/1.1 204 No Content\r\nServer: flint API\r\nConnection: close\r\n\r\n");
    cr_assert_eq(len, strlen(r));
    free(r);
}
