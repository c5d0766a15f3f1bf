/*
 * Unit tests: the control API against Firecracker's specification
 * (src/firecracker/swagger/firecracker.yaml in Firecracker's repository,
 * version 1.17): every path and method it lists, called with a valid body
 * carrying every optional field, before and after boot, checked against
 * the status and answer shape the spec documents (204 without a body,
 * 200 with the documented object, 400 {"fault_message"}) and its phase
 * rules. An endpoint of the spec that falls through the router
 * ("Invalid request method and/or path") fails the test. The VM is
 * tests/fake_vm.h.
 */
#include "api_client.h"

TestSuite(api_conformance, .init = api_client_setup, .fini = api_client_teardown);

enum rule {
    ANY,         /* answered in both phases */
    PRE_BOOT,    /* 204 before boot, the phase 400 after */
    POST_BOOT,   /* the phase 400 before boot, 204 after */
    NOT_OFFERED, /* balloon, entropy, pmem, memory hotplug: one 400, by design */
    /* Endpoints other branches of issue 13 implement (MMDS, CPU templates,
     * serial, snapshots): what main answers today, "not supported by flint
     * yet". The integrator updates these rows when those branches merge. */
    OTHER_BRANCH,
    PAUSED_ONLY, /* snapshot/create: the phase 400 before boot, "paused" while running */
    FRESH_ONLY,  /* snapshot/load: only in a process no configuration call has touched */
};

struct endpoint {
    enum api_method method;
    const char *path;
    const char *body; /* every optional field; %K %D %L %M are files (api_client.h) */
    enum rule rule;
    const char *shape; /* GET: "key:type ..." of the 200 body (s i b o a, n any) */
    const char *after; /* PRE_BOOT: the 400 after boot, when not the phase one */
};

#define RL                                                                                         \
    "{\"bandwidth\":{\"size\":1048576,\"one_time_burst\":65536,\"refill_time\":1000},"             \
    "\"ops\":{\"size\":1000,\"one_time_burst\":100,\"refill_time\":1000}}"

static const struct endpoint spec[] = {
    {API_METHOD_GET, "/", NULL, ANY, "app_name:s id:s state:s vmm_version:s", NULL},
    {API_METHOD_PUT, "/actions", "{\"action_type\":\"InstanceStart\"}", PRE_BOOT, NULL,
     "already running"},
    {API_METHOD_PUT, "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", POST_BOOT, NULL, NULL},
    {API_METHOD_PUT, "/actions", "{\"action_type\":\"FlushMetrics\"}", POST_BOOT, NULL, NULL},
    {API_METHOD_GET, "/balloon", NULL, NOT_OFFERED, NULL, NULL},
    {API_METHOD_PUT, "/balloon",
     "{\"amount_mib\":64,\"deflate_on_oom\":true,\"stats_polling_interval_s\":1,"
     "\"free_page_hinting\":true,\"free_page_reporting\":true}",
     NOT_OFFERED, NULL, NULL},
    {API_METHOD_PATCH, "/balloon", "{\"amount_mib\":32}", NOT_OFFERED, NULL, NULL},
    {API_METHOD_GET, "/balloon/statistics", NULL, NOT_OFFERED, NULL, NULL},
    {API_METHOD_PATCH, "/balloon/statistics", "{\"stats_polling_interval_s\":5}", NOT_OFFERED, NULL,
     NULL},
    {API_METHOD_PATCH, "/balloon/hinting/start", "{\"acknowledge_on_stop\":true}", NOT_OFFERED,
     NULL, NULL},
    {API_METHOD_GET, "/balloon/hinting/status", NULL, NOT_OFFERED, NULL, NULL},
    {API_METHOD_PATCH, "/balloon/hinting/stop", NULL, NOT_OFFERED, NULL, NULL},
    {API_METHOD_PUT, "/boot-source",
     "{\"kernel_image_path\":\"%K\",\"boot_args\":\"console=ttyS0\",\"initrd_path\":\"%D\"}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_PUT, "/cpu-config", "{\"cpuid_modifiers\":[],\"msr_modifiers\":[]}", PRE_BOOT, NULL,
     NULL},
    {API_METHOD_PUT, "/drives/root",
     "{\"drive_id\":\"root\",\"partuuid\":\"0eaa91a0-01\",\"is_root_device\":true,"
     "\"cache_type\":\"Writeback\",\"is_read_only\":false,\"path_on_host\":\"%D\","
     "\"rate_limiter\":" RL ",\"io_engine\":\"Sync\"}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_PATCH, "/drives/root",
     "{\"drive_id\":\"root\",\"path_on_host\":\"%D\",\"rate_limiter\":" RL "}", POST_BOOT, NULL,
     NULL},
    {API_METHOD_PUT, "/pmem/pm0",
     "{\"id\":\"pm0\",\"path_on_host\":\"%D\",\"root_device\":false,\"read_only\":true,"
     "\"rate_limiter\":" RL "}",
     NOT_OFFERED, NULL, NULL},
    {API_METHOD_PATCH, "/pmem/pm0", "{\"id\":\"pm0\",\"rate_limiter\":" RL "}", NOT_OFFERED, NULL,
     NULL},
    {API_METHOD_PUT, "/logger",
     "{\"level\":\"Info\",\"log_path\":\"%L\",\"show_level\":true,\"show_log_origin\":true,"
     "\"module\":\"api\"}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_GET, "/machine-config", NULL, ANY,
     "vcpu_count:i mem_size_mib:i smt:b track_dirty_pages:b huge_pages:s", NULL},
    {API_METHOD_PUT, "/machine-config",
     "{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true,\"track_dirty_pages\":true,"
     "\"huge_pages\":\"None\",\"cpu_template\":\"None\"}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_PATCH, "/machine-config",
     "{\"vcpu_count\":4,\"mem_size_mib\":512,\"smt\":false,\"track_dirty_pages\":false,"
     "\"huge_pages\":\"2M\",\"cpu_template\":\"None\"}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_PUT, "/metrics", "{\"metrics_path\":\"%M\"}", PRE_BOOT, NULL, NULL},
    {API_METHOD_PUT, "/mmds", "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\"}}}", ANY, NULL,
     NULL},
    {API_METHOD_PATCH, "/mmds", "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-2\"}}}", ANY, NULL,
     NULL},
    {API_METHOD_GET, "/mmds", NULL, ANY, "latest:o", NULL},
    {API_METHOD_PUT, "/mmds/config",
     "{\"version\":\"V2\",\"network_interfaces\":[\"eth0\"],\"ipv4_address\":\"169.254.169.254\","
     "\"imds_compat\":false}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_PUT, "/entropy", "{\"rate_limiter\":" RL "}", NOT_OFFERED, NULL, NULL},
    {API_METHOD_PUT, "/serial", "{\"serial_out_path\":\"%L\"}", PRE_BOOT, NULL, NULL},
    {API_METHOD_PUT, "/hotplug/memory",
     "{\"total_size_mib\":1024,\"block_size_mib\":2,\"slot_size_mib\":128}", NOT_OFFERED, NULL,
     NULL},
    {API_METHOD_PATCH, "/hotplug/memory", "{\"requested_size_mib\":512}", NOT_OFFERED, NULL, NULL},
    {API_METHOD_GET, "/hotplug/memory", NULL, NOT_OFFERED, NULL, NULL},
    {API_METHOD_PUT, "/network-interfaces/eth0",
     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\","
     "\"mtu\":1500,\"rx_rate_limiter\":" RL ",\"tx_rate_limiter\":" RL "}",
     PRE_BOOT, NULL, NULL},
    {API_METHOD_PATCH, "/network-interfaces/eth0",
     "{\"iface_id\":\"eth0\",\"rx_rate_limiter\":" RL ",\"tx_rate_limiter\":" RL "}", POST_BOOT,
     NULL, NULL},
    {API_METHOD_PUT, "/snapshot/create",
     "{\"mem_file_path\":\"/tmp/m\",\"snapshot_path\":\"/tmp/s\",\"snapshot_type\":\"Full\"}",
     PAUSED_ONLY, NULL, "paused microVM"},
    {API_METHOD_PUT, "/snapshot/load",
     "{\"snapshot_path\":\"/tmp/s\",\"mem_backend\":{\"backend_type\":\"File\","
     "\"backend_path\":\"/tmp/m\"},\"track_dirty_pages\":false,\"resume_vm\":true}",
     FRESH_ONLY, NULL, NULL},
    {API_METHOD_GET, "/version", NULL, ANY, "firecracker_version:s", NULL},
    {API_METHOD_PATCH, "/vm", "{\"state\":\"Paused\"}", POST_BOOT, NULL, NULL},
    {API_METHOD_GET, "/vm/config", NULL, ANY,
     "balloon:n drives:a boot-source:o cpu-config:n logger:n machine-config:o metrics:n "
     "memory-hotplug:n mmds-config:n network-interfaces:a pmem:a vsock:o entropy:n",
     NULL},
    {API_METHOD_PUT, "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/flint-conf.vsock\"}", PRE_BOOT,
     NULL, NULL},
};

#define NSPEC    (sizeof(spec) / sizeof(spec[0]))
#define PRE_MSG  "not supported before starting the microVM"
#define POST_MSG "not supported after starting the microVM"

static const char *method_name(enum api_method m)
{
    return m == API_METHOD_GET ? "GET" : m == API_METHOD_PUT ? "PUT" : "PATCH";
}

/* A microVM with a kernel, the root drive, eth0 and vsock configured,
 * started or not: what the post-boot calls act on. */
static void fresh_vm(bool started)
{
    api_client_teardown();
    api_client_setup();
    cr_assert_eq(
        api_call(API_METHOD_PUT, "/boot-source", api_body("{\"kernel_image_path\":\"%K\"}")), 204);
    cr_assert_eq(api_call(API_METHOD_PUT, "/drives/root",
                          api_body("{\"drive_id\":\"root\",\"path_on_host\":\"%D\","
                                   "\"is_root_device\":true}")),
                 204);
    cr_assert_eq(api_call(API_METHOD_PUT, "/network-interfaces/eth0",
                          "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}"),
                 204);
    cr_assert_eq(api_call(API_METHOD_PUT, "/vsock",
                          "{\"guest_cid\":3,\"uds_path\":\"/tmp/flint-conf.vsock\"}"),
                 204);
    /* The spec's PATCH /mmds merges into a document a PUT made. */
    cr_assert_eq(api_call(API_METHOD_PUT, "/mmds", "{\"latest\":{}}"), 204, "%s", api_resp.body);
    if (started)
        cr_assert_eq(api_call(API_METHOD_PUT, "/actions", "{\"action_type\":\"InstanceStart\"}"),
                     204, "%s", api_resp.body);
}

static bool type_matches(json_t *v, char t)
{
    switch (t) {
    case 's':
        return json_is_string(v);
    case 'i':
        return json_is_integer(v);
    case 'b':
        return json_is_boolean(v);
    case 'o':
        return json_is_object(v);
    case 'a':
        return json_is_array(v);
    default:
        return v != NULL;
    }
}

/* The 200 body has the keys and types of `shape`, and no others. */
static void expect_shape(const struct endpoint *e)
{
    char key[64];
    size_t nkeys = 0;
    json_t *j = api_json();

    cr_assert(json_is_object(j), "%s: %s", e->path, api_resp.body);
    for (const char *p = e->shape; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = (size_t)(colon - p);
        memcpy(key, p, n);
        key[n] = '\0';
        json_t *v = json_object_get(j, key);
        cr_assert(type_matches(v, colon[1]), "GET %s: '%s' missing or not %c: %s", e->path, key,
                  colon[1], api_resp.body);
        nkeys++;
        p = colon + 2;
        while (*p == ' ')
            p++;
    }
    cr_assert_eq(json_object_size(j), nkeys, "GET %s: keys beyond the spec's: %s", e->path,
                 api_resp.body);
    json_decref(j);
}

/* Call `e` in one phase and check the answer against its rule. */
static void check(const struct endpoint *e, bool started)
{
    const char *what = started ? "after boot" : "before boot";
    const char *body;
    int status;

    fresh_vm(started);
    body = e->body ? api_body(e->body) : NULL;
    status = api_call(e->method, e->path, body);
    if (status == 400)
        cr_assert_null(strstr(api_fault(), "Invalid request method and/or path"),
                       "%s %s %s is unanswered: %s", method_name(e->method), e->path, what,
                       api_fault());
    bool ok =
        e->rule == ANY || (e->rule == PRE_BOOT && !started) || (e->rule == POST_BOOT && started);
    if (ok) {
        int want = e->method == API_METHOD_GET ? 200 : 204;
        cr_assert_eq(status, want, "%s %s %s: %d %s", method_name(e->method), e->path, what, status,
                     api_resp.body);
        if (want == 204)
            cr_assert_null(api_resp.body, "204 has no body");
        else
            expect_shape(e);
        return;
    }
    cr_assert_eq(status, 400, "%s %s %s: %d %s", method_name(e->method), e->path, what, status,
                 api_resp.body);
    const char *msg = api_fault();
    const char *want = e->rule == NOT_OFFERED              ? "flint does not offer"
                       : e->rule == OTHER_BRANCH           ? "not supported by flint yet"
                       : e->rule == FRESH_ONLY && !started ? "only in a fresh flint process"
                       : started && e->after               ? e->after
                       : started                           ? POST_MSG
                                                           : PRE_MSG;
    cr_assert(strstr(msg, want), "%s %s %s: '%s' lacks '%s'", method_name(e->method), e->path, what,
              msg, want);
}

Test(api_conformance, every_endpoint_of_the_spec_before_boot)
{
    for (size_t i = 0; i < NSPEC; i++)
        check(&spec[i], false);
}

Test(api_conformance, every_endpoint_of_the_spec_after_boot)
{
    for (size_t i = 0; i < NSPEC; i++)
        check(&spec[i], true);
}

/* The table is the spec's: 26 paths, 38 path and method pairs. */
Test(api_conformance, the_table_lists_every_path_and_method_of_the_spec)
{
    static const char *const paths[] = {
        "/",
        "/actions",
        "/balloon",
        "/balloon/statistics",
        "/balloon/hinting/start",
        "/balloon/hinting/status",
        "/balloon/hinting/stop",
        "/boot-source",
        "/cpu-config",
        "/drives/root",
        "/pmem/pm0",
        "/logger",
        "/machine-config",
        "/metrics",
        "/mmds",
        "/mmds/config",
        "/entropy",
        "/serial",
        "/hotplug/memory",
        "/network-interfaces/eth0",
        "/snapshot/create",
        "/snapshot/load",
        "/version",
        "/vm",
        "/vm/config",
        "/vsock",
    };
    size_t pairs = 0;

    for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
        bool found = false;
        for (size_t i = 0; i < NSPEC; i++)
            found |= !strcmp(spec[i].path, paths[p]);
        cr_assert(found, "%s is not in the table", paths[p]);
    }
    for (size_t i = 0; i < NSPEC; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= spec[k].method == spec[i].method && !strcmp(spec[k].path, spec[i].path);
        pairs += !seen;
    }
    cr_assert_eq(pairs, 38, "path and method pairs of the spec");
}

/* The check above can fail: a path the router does not know is reported
 * as unanswered, in both phases. */
Test(api_conformance, an_unanswered_endpoint_is_noticed)
{
    cr_assert_eq(api_call(API_METHOD_PUT, "/version", "{}"), 400);
    cr_assert(strstr(api_fault(), "Invalid request method and/or path"), "%s", api_fault());
    cr_assert_eq(api_call(API_METHOD_PATCH, "/vsock", "{}"), 400);
    cr_assert(strstr(api_fault(), "Invalid request method and/or path"), "%s", api_fault());
}

/* Every 400 of the spec is {"fault_message": string}. */
Test(api_conformance, errors_are_the_spec_error_object)
{
    for (size_t i = 0; i < NSPEC; i++) {
        api_call(spec[i].method, spec[i].path, spec[i].method == API_METHOD_GET ? NULL : "{bad");
        if (api_resp.status == 400)
            cr_assert_neq(api_fault()[0], '\0', "%s: empty fault_message", spec[i].path);
    }
}
