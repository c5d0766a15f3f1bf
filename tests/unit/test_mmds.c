/* Unit tests: the MMDS store (PUT, RFC 7396 PATCH, limits, lookups in JSON
 * and IMDS text), its configuration, tokens, and the API's /mmds routes
 * with hostile bodies. */
#include <criterion/criterion.h>

#include "api.h"
#include "mmds.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct mmds m;
static struct vm_config cfg;
static struct api_ctl ctl;
static struct api_response resp;

static void setup(void)
{
    cr_assert_eq(mmds_init(&m, 0), 0);
    config_init(&cfg);
    cfg.mmds = &m;
    memset(&ctl, 0, sizeof(ctl));
    ctl.cfg = &cfg;
    ctl.instance_id = "t";
    ctl.vmm_version = "1";
    memset(&resp, 0, sizeof(resp));
}

static void teardown(void)
{
    free(resp.body);
    cfg.mmds = NULL;
    config_free(&cfg);
    mmds_fini(&m);
}

TestSuite(mmds, .init = setup, .fini = teardown);

static json_t *js(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    cr_assert_not_null(j, "bad test JSON %s: %s", s, e.text);
    return j;
}

static int put_s(const char *s)
{
    json_t *j = js(s);
    int rc = mmds_put(&m, j);
    json_decref(j);
    return rc;
}

static int patch_s(const char *s)
{
    json_t *j = js(s);
    int rc = mmds_patch(&m, j);
    json_decref(j);
    return rc;
}

static void expect_dump(const char *want)
{
    char *s = mmds_dump(&m);
    cr_assert_str_eq(s, want);
    free(s);
}

static void expect_lookup(const char *path, enum mmds_format f, int rc, const char *want)
{
    char *out = NULL;
    cr_assert_eq(mmds_lookup(&m, path, f, &out), rc, "lookup %s", path);
    if (want)
        cr_assert_str_eq(out, want, "lookup %s", path);
    free(out);
}

Test(mmds, empty_store_dumps_empty_object_and_patch_needs_put)
{
    expect_dump("{}");
    cr_assert_eq(patch_s("{\"a\":1}"), -ENOENT);
    expect_dump("{}");
}

Test(mmds, put_replaces_and_patch_merges_rfc7396)
{
    cr_assert_eq(put_s("{\"b\":{\"x\":1,\"y\":2},\"a\":\"s\",\"c\":[1,2]}"), 0);
    expect_dump("{\"a\":\"s\",\"b\":{\"x\":1,\"y\":2},\"c\":[1,2]}");
    /* RFC 7396 §3 cases: null removes, objects merge, arrays replace. */
    cr_assert_eq(patch_s("{\"b\":{\"x\":null,\"z\":{\"q\":3}},\"c\":[9],\"a\":null}"), 0);
    expect_dump("{\"b\":{\"y\":2,\"z\":{\"q\":3}},\"c\":[9]}");
    cr_assert_eq(patch_s("{\"b\":\"flat\"}"), 0);
    expect_dump("{\"b\":\"flat\",\"c\":[9]}");
    cr_assert_eq(patch_s("[1]"), 0); /* a non-object patch replaces the whole */
    expect_dump("[1]");
    cr_assert_eq(put_s("{\"k\":\"v\"}"), 0);
    expect_dump("{\"k\":\"v\"}");
}

Test(mmds, size_limit_refuses_and_changes_nothing)
{
    mmds_fini(&m);
    cr_assert_eq(mmds_init(&m, 20), 0);
    cr_assert_eq(put_s("{\"a\":\"0123456789\"}"), 0); /* 18 bytes */
    cr_assert_eq(put_s("{\"a\":\"0123456789ABC\"}"), -EFBIG);
    expect_dump("{\"a\":\"0123456789\"}");
    cr_assert_eq(patch_s("{\"bb\":\"x\"}"), -EFBIG);
    expect_dump("{\"a\":\"0123456789\"}");
    cr_assert_eq(patch_s("{\"a\":null,\"b\":\"x\"}"), 0);
    expect_dump("{\"b\":\"x\"}");
}

Test(mmds, lookup_json_and_imds)
{
    cr_assert_eq(put_s("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"zone\":{\"n\":\"a\"}},"
                       "\"user-data\":\"hello\"},\"n\":43,\"arr\":[\"x\",\"y\"],\"a/b\":\"s\","
                       "\"t~\":\"u\"}"),
                 0);
    expect_lookup("/latest", MMDS_FORMAT_IMDS, 0, "meta-data/\nuser-data");
    expect_lookup("/latest/", MMDS_FORMAT_IMDS, 0, "meta-data/\nuser-data");
    expect_lookup("//latest///meta-data", MMDS_FORMAT_IMDS, 0, "ami-id\nzone/");
    expect_lookup("/latest/meta-data/ami-id", MMDS_FORMAT_IMDS, 0, "ami-1");
    expect_lookup("/latest/meta-data/ami-id", MMDS_FORMAT_JSON, 0, "\"ami-1\"");
    expect_lookup("/latest/meta-data", MMDS_FORMAT_JSON, 0,
                  "{\"ami-id\":\"ami-1\",\"zone\":{\"n\":\"a\"}}");
    expect_lookup("/n", MMDS_FORMAT_JSON, 0, "43");
    expect_lookup("/n", MMDS_FORMAT_IMDS, -ENOTSUP, NULL);
    expect_lookup("/arr/1", MMDS_FORMAT_IMDS, 0, "y");
    expect_lookup("/arr/01", MMDS_FORMAT_IMDS, -ENOENT, NULL);
    expect_lookup("/arr/-1", MMDS_FORMAT_IMDS, -ENOENT, NULL);
    expect_lookup("/arr/99999999999999", MMDS_FORMAT_IMDS, -ENOENT, NULL);
    expect_lookup("/a~1b", MMDS_FORMAT_IMDS, 0, "s");
    expect_lookup("/t~0", MMDS_FORMAT_IMDS, 0, "u");
    expect_lookup("/t~2", MMDS_FORMAT_IMDS, -ENOENT, NULL);
    expect_lookup("/t~", MMDS_FORMAT_IMDS, -ENOENT, NULL);
    expect_lookup("/nope", MMDS_FORMAT_JSON, -ENOENT, NULL);
    expect_lookup("/n/deeper", MMDS_FORMAT_JSON, -ENOENT, NULL);
    expect_lookup("/", MMDS_FORMAT_IMDS, 0, "a/b\narr\nlatest/\nn\nt~");
}

Test(mmds, lookup_of_a_huge_segment_is_not_found)
{
    char path[4000];

    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    cr_assert_eq(put_s("{}"), 0);
    expect_lookup(path, MMDS_FORMAT_JSON, -ENOENT, NULL);
}

static int configure(const char *body, char *err)
{
    const char *ids[] = {"eth0", "eth1"};
    json_t *j = js(body);
    int rc = mmds_configure(&m, j, ids, 2, err, 256);
    json_decref(j);
    return rc;
}

Test(mmds, config_checks_every_field)
{
    char err[256];
    json_t *j;
    char *s;

    cr_assert_eq(configure("{\"network_interfaces\":[]}", err), -EINVAL);
    cr_assert(strstr(err, "empty"), "%s", err);
    cr_assert_eq(configure("{\"network_interfaces\":[\"eth9\"]}", err), -EINVAL);
    cr_assert(strstr(err, "eth9"), "%s", err);
    cr_assert_eq(configure("{\"version\":\"V2\"}", err), -EINVAL);
    cr_assert_eq(configure("{\"network_interfaces\":[\"eth0\"],\"version\":\"V3\"}", err), -EINVAL);
    cr_assert_eq(
        configure("{\"network_interfaces\":[\"eth0\"],\"ipv4_address\":\"10.0.0.1\"}", err),
        -EINVAL);
    cr_assert(strstr(err, "link-local"), "%s", err);
    cr_assert_eq(configure("{\"network_interfaces\":[\"eth0\"],\"ipv4_address\":\"1.2.3\"}", err),
                 -EINVAL);
    cr_assert_eq(configure("{\"network_interfaces\":[\"eth0\"],\"imds_compat\":1}", err), -EINVAL);
    cr_assert_eq(configure("{\"network_interfaces\":[\"eth0\"],\"bogus\":1}", err), -EINVAL);
    cr_assert_eq(configure("{\"network_interfaces\":[7]}", err), -EINVAL);
    cr_assert_eq(configure("[]", err), -EINVAL);
    cr_assert_not(m.cfg.set, "a refused config changed nothing");
    cr_assert_eq(configure("{\"network_interfaces\":[\"eth1\"],\"version\":\"V2\",\"ipv4_address\":"
                           "\"169.254.1.2\",\"imds_compat\":true}",
                           err),
                 0, "%s", err);
    cr_assert(mmds_serves_iface(&m, "eth1"));
    cr_assert_not(mmds_serves_iface(&m, "eth0"));
    cr_assert_eq(m.cfg.ipv4, 0xa9fe0102u);
    j = mmds_config_json(&m);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(s, "{\"imds_compat\":true,\"ipv4_address\":\"169.254.1.2\","
                        "\"network_interfaces\":[\"eth1\"],\"version\":\"V2\"}");
    free(s);
    json_decref(j);
}

Test(mmds, tokens_expire_and_are_unique)
{
    char a[MMDS_TOKEN_CHARS + 1], b[MMDS_TOKEN_CHARS + 1];
    uint64_t s = 1000000000ull;

    mmds_token_new(&m, 1, 5 * s, a);
    mmds_token_new(&m, 10, 5 * s, b);
    cr_assert_eq(strlen(a), MMDS_TOKEN_CHARS);
    cr_assert_str_neq(a, b);
    cr_assert(mmds_token_valid(&m, a, strlen(a), 5 * s));
    cr_assert_not(mmds_token_valid(&m, a, strlen(a), 6 * s), "expired after its ttl");
    cr_assert(mmds_token_valid(&m, b, strlen(b), 14 * s));
    cr_assert_not(mmds_token_valid(&m, b, strlen(b) - 1, 5 * s));
    b[3] ^= 1;
    cr_assert_not(mmds_token_valid(&m, b, strlen(b), 5 * s));
    cr_assert_not(mmds_token_valid(&m, "", 0, 5 * s));
}

Test(mmds, token_table_is_bounded)
{
    char first[MMDS_TOKEN_CHARS + 1], t[MMDS_TOKEN_CHARS + 1];

    mmds_token_new(&m, 100, 1, first);
    for (int i = 0; i < MMDS_MAX_TOKENS; i++)
        mmds_token_new(&m, 200, 2, t);
    cr_assert_not(mmds_token_valid(&m, first, strlen(first), 3), "the oldest gave way");
    cr_assert(mmds_token_valid(&m, t, strlen(t), 3));
}

/* ---- the API routes ---- */

static int call(enum api_method meth, const char *path, const char *body)
{
    free(resp.body);
    resp.body = NULL;
    api_handle(&ctl, meth, path, body, body ? strlen(body) : 0, &resp);
    return resp.status;
}

Test(mmds, api_get_put_patch)
{
    cr_assert_eq(call(API_METHOD_GET, "/mmds", NULL), 200);
    cr_assert_str_eq(resp.body, "{}");
    cr_assert_eq(call(API_METHOD_PATCH, "/mmds", "{\"a\":1}"), 400);
    cr_assert(strstr(resp.body, "not initialized"), "%s", resp.body);
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", "{\"latest\":{\"x\":\"1\"}}"), 204);
    cr_assert_eq(call(API_METHOD_PATCH, "/mmds", "{\"latest\":{\"y\":\"2\"}}"), 204);
    cr_assert_eq(call(API_METHOD_GET, "/mmds", NULL), 200);
    cr_assert_str_eq(resp.body, "{\"latest\":{\"x\":\"1\",\"y\":\"2\"}}");
    ctl.state = API_VM_RUNNING; /* the store stays writable after boot */
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", "{}"), 204);
}

Test(mmds, api_hostile_bodies)
{
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", "{\"a\":"), 400);
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", "{\"a\":1,\"a\":2}"), 400);
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", ""), 400);
    cr_assert(strstr(resp.body, "Empty PUT"), "%s", resp.body);
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", "\"\\ud800\""), 400);
    cr_assert_eq(call(API_METHOD_GET, "/mmds", "{}"), 400);
    cr_assert_eq(call(API_METHOD_OTHER, "/mmds", NULL), 400);
    cr_assert_eq(call(API_METHOD_GET, "/mmds/config", NULL), 400);
    cr_assert_eq(call(API_METHOD_GET, "/mmds", NULL), 200);
    cr_assert_str_eq(resp.body, "{}", "nothing stored by refused requests");
}

Test(mmds, api_over_limit_is_413)
{
    char big[200];

    mmds_fini(&m);
    cr_assert_eq(mmds_init(&m, 64), 0);
    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"k\":\"", 6);
    strcpy(big + sizeof(big) - 3, "\"}");
    cr_assert_eq(call(API_METHOD_PUT, "/mmds", big), 413);
    cr_assert(strstr(resp.body, "limit"), "%s", resp.body);
    cr_assert_eq(call(API_METHOD_GET, "/mmds", NULL), 200);
    cr_assert_str_eq(resp.body, "{}");
}

Test(mmds, api_config_phase_and_ifaces)
{
    char err[128];

    cr_assert_eq(config_add_net(&cfg, "tap0,id=eth0", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(call(API_METHOD_PUT, "/mmds/config", "{\"network_interfaces\":[\"eth1\"]}"), 400);
    cr_assert_eq(call(API_METHOD_PUT, "/mmds/config",
                      "{\"network_interfaces\":[\"eth0\"],\"version\":\"V2\"}"),
                 204, "%s", resp.body);
    cr_assert_eq(m.cfg.version, MMDS_V2);
    cr_assert_eq(call(API_METHOD_GET, "/vm/config", NULL), 200);
    cr_assert(strstr(resp.body, "\"mmds-config\":{"), "%s", resp.body);
    ctl.state = API_VM_RUNNING;
    cr_assert_eq(call(API_METHOD_PUT, "/mmds/config", "{\"network_interfaces\":[\"eth0\"]}"), 400);
    cr_assert(strstr(resp.body, "after starting"), "%s", resp.body);
}

Test(mmds, api_without_store)
{
    cfg.mmds = NULL;
    cr_assert_eq(call(API_METHOD_GET, "/mmds", NULL), 400);
    cr_assert(strstr(resp.body, "not available"), "%s", resp.body);
}
