/* Unit tests: the control API where it follows Firecracker's behaviour
 * beyond the bodies (issue 13): the devices flint does not offer, metrics
 * and logger rules, GET /vm/config's keys, GETs with a body, a refused
 * InstanceStart in the log, and an interface's mtu. */
#include "api_client.h"
#include "log.h"

#include <fcntl.h>

TestSuite(api_parity, .init = api_client_setup, .fini = api_client_teardown);

#define GET(path)         api_call(API_METHOD_GET, path, NULL)
#define PUT(path, body)   api_call(API_METHOD_PUT, path, api_body(body))
#define PATCH(path, body) api_call(API_METHOD_PATCH, path, api_body(body))

static void boot(void)
{
    cr_assert_eq(PUT("/boot-source", "{\"kernel_image_path\":\"%K\"}"), 204, "%s", api_resp.body);
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), 204, "%s", api_resp.body);
}

/* ---- devices flint does not offer ---- */

static const struct {
    enum api_method method;
    const char *path, *body, *device;
} absent_calls[] = {
    {API_METHOD_GET, "/balloon", NULL, "balloon"},
    {API_METHOD_PUT, "/balloon", "{\"amount_mib\":64,\"deflate_on_oom\":true}", "balloon"},
    {API_METHOD_PATCH, "/balloon", "{\"amount_mib\":32}", "balloon"},
    {API_METHOD_GET, "/balloon/statistics", NULL, "balloon"},
    {API_METHOD_PATCH, "/balloon/statistics", "{\"stats_polling_interval_s\":1}", "balloon"},
    {API_METHOD_PATCH, "/balloon/hinting/start", "{\"acknowledge_on_stop\":true}", "balloon"},
    {API_METHOD_GET, "/balloon/hinting/status", NULL, "balloon"},
    {API_METHOD_PATCH, "/balloon/hinting/stop", NULL, "balloon"},
    {API_METHOD_PUT, "/entropy", "{}", "entropy"},
    {API_METHOD_PUT, "/pmem/pm0", "{\"id\":\"pm0\",\"path_on_host\":\"%D\"}", "pmem"},
    {API_METHOD_PATCH, "/pmem/pm0", "{\"id\":\"pm0\"}", "pmem"},
    {API_METHOD_PUT, "/hotplug/memory", "{\"total_size_mib\":1024}", "memory hotplug"},
    {API_METHOD_PATCH, "/hotplug/memory", "{\"requested_size_mib\":512}", "memory hotplug"},
    {API_METHOD_GET, "/hotplug/memory", NULL, "memory hotplug"},
};

static void expect_absent_everywhere(void)
{
    for (size_t i = 0; i < sizeof(absent_calls) / sizeof(absent_calls[0]); i++) {
        const char *body = absent_calls[i].body ? api_body(absent_calls[i].body) : NULL;
        api_call(absent_calls[i].method, absent_calls[i].path, body);
        API_EXPECT_400(api_resp.status, "flint does not offer");
        cr_assert(strstr(api_fault(), absent_calls[i].device), "%s: %s", absent_calls[i].path,
                  api_fault());
        cr_assert(strstr(api_fault(), "by design"), "%s", api_fault());
    }
}

Test(api_parity, devices_not_offered_answer_one_400_before_boot)
{
    expect_absent_everywhere();
    /* Whatever the body, even none or a broken one: the same answer. */
    API_EXPECT_400(api_call(API_METHOD_PUT, "/balloon", "{broken"), "does not offer the balloon");
    API_EXPECT_400(api_call(API_METHOD_PUT, "/entropy", NULL), "does not offer the entropy");
}

Test(api_parity, devices_not_offered_answer_one_400_after_boot)
{
    boot();
    expect_absent_everywhere();
}

Test(api_parity, only_those_paths_are_the_absent_devices)
{
    API_EXPECT_400(GET("/balloonx"), "Invalid request method and/or path");
    API_EXPECT_400(GET("/pmemory"), "Invalid request method and/or path");
    API_EXPECT_400(GET("/hotplug/memoryx"), "Invalid request method and/or path");
}

Test(api_parity, config_file_names_absent_devices_only_empty)
{
    char err[512];
    const char *base = api_body("{\"boot-source\":{\"kernel_image_path\":\"%K\"}");
    char doc[1024];

    snprintf(doc, sizeof(doc),
             "%s,\"balloon\":null,\"entropy\":null,\"pmem\":[],"
             "\"memory-hotplug\":null}",
             base);
    cr_assert_eq(api_load_config(&api_ctl, doc, strlen(doc), err, sizeof(err)), 0, "%s", err);
    static const char *const refused[] = {
        "\"balloon\":{\"amount_mib\":1,\"deflate_on_oom\":false}",
        "\"entropy\":{}",
        "\"pmem\":[{\"id\":\"p\",\"path_on_host\":\"/x\"}]",
        "\"pmem\":{}",
        "\"memory-hotplug\":{\"total_size_mib\":1}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(doc, sizeof(doc), "%s,%s}", base, refused[i]);
        cr_assert_eq(api_load_config(&api_ctl, doc, strlen(doc), err, sizeof(err)), -EINVAL, "%s",
                     refused[i]);
        cr_assert(strstr(err, "flint does not offer"), "%s", err);
    }
}

/* ---- metrics ---- */

Test(api_parity, flush_metrics_without_a_destination_is_204)
{
    boot();
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"FlushMetrics\"}"), 204, "%s", api_resp.body);
    cr_assert_null(api_resp.body);
}

Test(api_parity, metrics_are_set_up_once)
{
    cr_assert_eq(PUT("/metrics", "{\"metrics_path\":\"%M\"}"), 204, "%s", api_resp.body);
    API_EXPECT_400(PUT("/metrics", "{\"metrics_path\":\"%M\"}"), "only once");
    API_EXPECT_400(PUT("/metrics", "{\"metrics_path\":\"%L\"}"), "only once");
}

/* ---- logger ---- */

static char *read_log(void)
{
    static char buf[8192];
    int fd = open(api_log, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    cr_assert_geq(fd, 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

Test(api_parity, logger_missing_level_resets_to_info_other_fields_keep)
{
    bool show_level, show_origin;

    cr_assert_eq(PUT("/logger", "{\"log_path\":\"%L\",\"level\":\"debug\",\"show_level\":true,"
                                "\"show_log_origin\":true}"),
                 204, "%s", api_resp.body);
    cr_assert_eq(log_get_level(), LOG_DEBUG, "level names in any case");
    cr_assert_eq(PUT("/logger", "{\"show_log_origin\":false}"), 204, "%s", api_resp.body);
    cr_assert_eq(log_get_level(), LOG_INFO, "a missing level is the spec's default, Info");
    log_get_format(&show_level, &show_origin);
    cr_assert(show_level, "a missing show_level keeps its value");
    cr_assert_not(show_origin);
    cr_assert_eq(PUT("/logger", "{\"level\":\"Error\"}"), 204);
    log_get_format(&show_level, &show_origin);
    cr_assert(show_level);
    cr_assert_not(show_origin, "a missing show_log_origin keeps its value");
    cr_assert_eq(log_get_level(), LOG_ERROR);
    API_EXPECT_400(PUT("/logger", "{\"module\":7}"), "'module' must be a string");
    char big[300] = "{\"module\":\"";
    memset(big + 11, 'm', 200);
    strcpy(big + 211, "\"}");
    API_EXPECT_400(api_call(API_METHOD_PUT, "/logger", big), "module: longer than");
}

Test(api_parity, logger_module_keeps_lines_from_that_source_path)
{
    cr_assert_eq(PUT("/logger", "{\"log_path\":\"%L\",\"level\":\"Info\","
                                "\"module\":\"monitor/devices/virtio\"}"),
                 204, "%s", api_resp.body);
    log_msg_at(LOG_INFO, "../monitor/devices/virtio/net/virtio_net.c", 10, "from-net");
    log_msg_at(LOG_INFO, "../api/api_routes.c", 20, "from-api");
    log_msg(LOG_INFO, "no-origin");
    /* A PUT without module keeps the filter. */
    cr_assert_eq(PUT("/logger", "{\"level\":\"Info\"}"), 204);
    log_msg_at(LOG_INFO, "monitor/devices/virtio/blk/virtio_blk.c", 30, "from-blk");
    log_msg_at(LOG_WARN, "monitor/vmm/vmm.c", 40, "from-vmm");
    const char *out = read_log();
    cr_assert(strstr(out, "from-net"), "%s", out);
    cr_assert(strstr(out, "from-blk"), "%s", out);
    cr_assert_null(strstr(out, "from-api"), "%s", out);
    cr_assert_null(strstr(out, "no-origin"), "%s", out);
    cr_assert_null(strstr(out, "from-vmm"), "%s", out);
    /* An empty module lets every line through again. */
    cr_assert_eq(PUT("/logger", "{\"module\":\"\"}"), 204);
    log_msg_at(LOG_INFO, "../api/api_routes.c", 50, "api-again");
    cr_assert(strstr(read_log(), "api-again"));
}

/* ---- GET ---- */

Test(api_parity, get_with_a_body_is_refused)
{
    API_EXPECT_400(api_call(API_METHOD_GET, "/", "{}"), "GET request cannot have a body");
    API_EXPECT_400(api_call(API_METHOD_GET, "/vm/config", "x"), "GET request cannot have a body");
    cr_assert_eq(GET("/"), 200);
}

Test(api_parity, vm_config_has_every_key_of_the_spec_and_round_trips)
{
    /* FullVmConfiguration (firecracker.yaml) */
    static const char *const keys[] = {
        "balloon",        "drives",  "boot-source",    "cpu-config",  "logger",
        "machine-config", "metrics", "memory-hotplug", "mmds-config", "network-interfaces",
        "pmem",           "vsock",   "entropy",
    };
    char err[512];

    cr_assert_eq(PUT("/boot-source", "{\"kernel_image_path\":\"%K\",\"boot_args\":\"a=b\"}"), 204);
    cr_assert_eq(PUT("/drives/root", "{\"drive_id\":\"root\",\"path_on_host\":\"%D\","
                                     "\"is_root_device\":true}"),
                 204, "%s", api_resp.body);
    cr_assert_eq(PUT("/network-interfaces/eth0", "{\"iface_id\":\"eth0\",\"host_dev_name\":"
                                                 "\"tap0\",\"mtu\":9000}"),
                 204, "%s", api_resp.body);
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256,\"smt\":true}"),
                 204);
    cr_assert_eq(GET("/vm/config"), 200);
    json_t *j = api_json();
    cr_assert_eq(json_object_size(j), sizeof(keys) / sizeof(keys[0]), "%s", api_resp.body);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert_not_null(json_object_get(j, keys[i]), "no '%s' in %s", keys[i], api_resp.body);
    cr_assert(json_is_array(json_object_get(j, "pmem")));
    cr_assert_eq(json_array_size(json_object_get(j, "pmem")), 0);
    cr_assert(json_is_null(json_object_get(j, "memory-hotplug")));
    cr_assert(json_is_null(json_object_get(j, "balloon")));
    cr_assert(json_is_null(json_object_get(j, "entropy")));
    json_decref(j);

    /* The answer is a config file that gives the same answer. */
    char *first = strdup(api_resp.body);
    struct vm_config cfg2;
    struct api_ctl ctl2 = api_ctl;
    config_init(&cfg2);
    ctl2.cfg = &cfg2;
    cr_assert_eq(api_load_config(&ctl2, first, strlen(first), err, sizeof(err)), 0, "%s", err);
    char *second = api_vm_config_json(&cfg2);
    cr_assert_str_eq(second, first);
    cr_assert(strstr(second, "\"mtu\":9000"), "%s", second);
    cr_assert(strstr(second, "\"smt\":true"), "%s", second);
    free(first);
    free(second);
    config_free(&cfg2);
}

/* ---- InstanceStart ---- */

Test(api_parity, a_refused_instance_start_is_logged_at_the_default_level)
{
    char err[256];

    cr_assert_eq(log_set_path(api_log, "conformance", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(log_get_level(), LOG_WARN, "the default level");
    API_EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), "no boot source");
    cr_assert_eq(PUT("/boot-source", "{\"kernel_image_path\":\"%K\"}"), 204);
    fake_vm_start_rc = -EINVAL;
    API_EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), "fake VM refused");
    const char *out = read_log();
    cr_assert(strstr(out, "InstanceStart: no boot source"), "%s", out);
    cr_assert(strstr(out, "InstanceStart: fake VM refused"), "%s", out);
    /* Other refusals stay at Info, below the default level. */
    API_EXPECT_400(PUT("/vsock", "{}"), "missing required field");
    cr_assert_null(strstr(read_log(), "missing required field"));
}

/* ---- network interface mtu ---- */

Test(api_parity, interface_mtu_is_range_checked)
{
    static const char *const bad[] = {"67", "65536", "0", "-1", "\"1500\"", "1.5"};
    char body[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"iface_id\":\"e\",\"host_dev_name\":\"t\",\"mtu\":%s}",
                 bad[i]);
        cr_assert_eq(api_call(API_METHOD_PUT, "/network-interfaces/e", body), 400, "%s", bad[i]);
        cr_assert(strstr(api_fault(), "mtu"), "%s", api_fault());
        cr_assert_eq(api_cfg.nnets, 0);
    }
    API_EXPECT_400(
        PUT("/network-interfaces/e", "{\"iface_id\":\"e\",\"host_dev_name\":\"t\",\"mtu\":67}"),
        "mtu: 67 is out of range (68 to 65535)");
    cr_assert_eq(
        PUT("/network-interfaces/e", "{\"iface_id\":\"e\",\"host_dev_name\":\"t\",\"mtu\":68}"),
        204);
    cr_assert_eq(api_cfg.nets[0].mtu, 68);
    cr_assert_eq(
        PUT("/network-interfaces/e", "{\"iface_id\":\"e\",\"host_dev_name\":\"t\",\"mtu\":65535}"),
        204);
    cr_assert_eq(api_cfg.nets[0].mtu, 65535);
    cr_assert_eq(PUT("/network-interfaces/e", "{\"iface_id\":\"e\",\"host_dev_name\":\"t\"}"), 204);
    cr_assert_eq(api_cfg.nets[0].mtu, 0, "a PUT without mtu: not set");
    cr_assert_eq(GET("/vm/config"), 200);
    cr_assert_null(strstr(api_resp.body, "mtu"), "absent when not set: %s", api_resp.body);
}
