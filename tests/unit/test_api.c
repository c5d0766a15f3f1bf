/* Unit tests: the control API's routes, bodies, phases and the
 * GET /vm/config round trip (no sockets, no VM: the VM side is stubbed). */
#include <criterion/criterion.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct vm_config cfg;
static struct api_ctl ctl;
static struct api_response resp;
static char kernel[64], disk[64], disk2[64];
static int starts, cads, pauses, resumes, flushes;
static int start_rc, cad_rc, flush_rc;
static int rl_calls, rl_rc;
static unsigned rl_index;
static struct rate_limiter_config rl_got[2];

static int stub_start(void *opaque, char *err, size_t errlen)
{
    (void)opaque;
    starts++;
    if (start_rc)
        snprintf(err, errlen, "stub start failed");
    return start_rc;
}

static int stub_cad(void *opaque)
{
    (void)opaque;
    cads++;
    return cad_rc;
}

static int stub_pause(void *opaque)
{
    (void)opaque;
    pauses++;
    return 0;
}

static void stub_resume(void *opaque)
{
    (void)opaque;
    resumes++;
}

static int stub_flush(void *opaque)
{
    (void)opaque;
    flushes++;
    return flush_rc;
}

static int stub_set_drive_rl(void *opaque, unsigned index, const struct rate_limiter_config *rl)
{
    (void)opaque;
    rl_calls++;
    rl_index = index;
    rl_got[0] = *rl;
    return rl_rc;
}

static int stub_set_net_rl(void *opaque, unsigned index, const struct rate_limiter_config *rx,
                           const struct rate_limiter_config *tx)
{
    (void)opaque;
    rl_calls++;
    rl_index = index;
    rl_got[0] = *rx;
    rl_got[1] = *tx;
    return rl_rc;
}

/* The VM side of PATCH /drives: records the call, refuses with swap_rc. */
static int swaps, swap_rc;
static unsigned swap_index;
static char swap_path[256];

static int stub_swap(void *opaque, unsigned index, const char *path, char *err, size_t errlen)
{
    (void)opaque;
    swaps++;
    swap_index = index;
    snprintf(swap_path, sizeof(swap_path), "%s", path);
    if (swap_rc)
        snprintf(err, errlen, "drive %s: stub refused", path);
    return swap_rc;
}

static const struct api_vm_ops stub_ops = {.start = stub_start,
                                           .ctrl_alt_del = stub_cad,
                                           .pause = stub_pause,
                                           .resume = stub_resume,
                                           .flush_metrics = stub_flush,
                                           .set_drive_rate_limiter = stub_set_drive_rl,
                                           .set_net_rate_limiters = stub_set_net_rl,
                                           .swap_drive = stub_swap};

static void make_file(char *path, const char *tmpl)
{
    strcpy(path, tmpl);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "data", 4), 4);
    close(fd);
}

static void init_ctl(struct api_ctl *c, struct vm_config *vc)
{
    config_init(vc);
    memset(c, 0, sizeof(*c));
    c->cfg = vc;
    c->instance_id = "test-vm";
    c->vmm_version = "9.8.7";
    c->ops = &stub_ops;
}

static void setup(void)
{
    init_ctl(&ctl, &cfg);
    memset(&resp, 0, sizeof(resp));
    starts = cads = pauses = resumes = 0;
    start_rc = cad_rc = flush_rc = 0;
    flushes = 0;
    rl_calls = rl_rc = 0;
    rl_index = 99;
    memset(rl_got, 0, sizeof(rl_got));
    swaps = swap_rc = 0;
    swap_index = 99;
    swap_path[0] = '\0';
    make_file(kernel, "/tmp/flint-api-kernel-XXXXXX");
    make_file(disk, "/tmp/flint-api-disk-XXXXXX");
    make_file(disk2, "/tmp/flint-api-disk2-XXXXXX");
}

static void teardown(void)
{
    free(resp.body);
    config_free(&cfg);
    unlink(kernel);
    unlink(disk);
    unlink(disk2);
}

TestSuite(api, .init = setup, .fini = teardown);

static int call_on(struct api_ctl *c, enum api_method m, const char *path, const char *body)
{
    free(resp.body);
    api_handle(c, m, path, body, body ? strlen(body) : 0, &resp);
    return resp.status;
}

static int call(enum api_method m, const char *path, const char *body)
{
    return call_on(&ctl, m, path, body);
}

#define GET(path)         call(API_METHOD_GET, path, NULL)
#define PUT(path, body)   call(API_METHOD_PUT, path, body)
#define PATCH(path, body) call(API_METHOD_PATCH, path, body)

/* The fault_message of the last answer (which must be valid JSON). */
static const char *fault(void)
{
    static char msg[512];
    json_error_t e;
    json_t *j = json_loads(resp.body ? resp.body : "", 0, &e);

    cr_assert_not_null(j, "not JSON: %s", resp.body);
    snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(j, "fault_message")));
    json_decref(j);
    return msg;
}

/* 400 whose fault_message contains `needle`. */
#define EXPECT_400(got, needle)                                                                    \
    do {                                                                                           \
        cr_assert_eq((got), 400, "status %d, body %s", resp.status, resp.body);                    \
        cr_assert(strstr(fault(), (needle)), "fault_message '%s' lacks '%s'", fault(), (needle));  \
    } while (0)

static json_t *body_json(void)
{
    json_error_t e;
    json_t *j = json_loads(resp.body, 0, &e);
    cr_assert_not_null(j, "not JSON: %s", resp.body);
    return j;
}

static char *fmt(const char *f, const char *a)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf), f, a);
    return buf;
}

static void put_boot_source(void)
{
    cr_assert_eq(PUT("/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel)), 204, "%s",
                 resp.body);
}

static void start(void)
{
    put_boot_source();
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), 204, "%s", resp.body);
}

/* ---- GETs ---- */

Test(api, get_instance_info)
{
    cr_assert_eq(GET("/"), 200);
    json_t *j = body_json();
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "test-vm");
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "Not started");
    cr_assert_str_eq(json_string_value(json_object_get(j, "vmm_version")), "9.8.7");
    cr_assert_str_eq(json_string_value(json_object_get(j, "app_name")), "flint");
    json_decref(j);
}

Test(api, get_version)
{
    cr_assert_eq(GET("/version"), 200);
    cr_assert_str_eq(resp.body, "{\"firecracker_version\":\"9.8.7\"}");
}

Test(api, get_machine_config_defaults)
{
    cr_assert_eq(GET("/machine-config"), 200);
    cr_assert_str_eq(resp.body, "{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,"
                                "\"track_dirty_pages\":false,\"huge_pages\":\"None\"}");
}

/* ---- routing ---- */

Test(api, unknown_path_and_method)
{
    EXPECT_400(GET("/nope"), "Invalid request method and/or path: GET /nope");
    EXPECT_400(GET("/actions"), "Invalid request method and/or path: GET /actions");
    EXPECT_400(PUT("/", "{}"), "Invalid request method and/or path: PUT /");
    EXPECT_400(call(API_METHOD_OTHER, "/", NULL), "Invalid request method and/or path");
    EXPECT_400(GET("/machine-config/"), "Invalid request method");
    EXPECT_400(GET(""), "Invalid request method");
    EXPECT_400(GET("/vm/config?x=1"), "query strings are not supported");
}

Test(api, later_endpoints_say_so)
{
    EXPECT_400(PUT("/snapshot/create", "{}"), "not supported before starting");
    EXPECT_400(GET("/snapshot/other"), "Invalid request method");
    EXPECT_400(PUT("/mmds", "{}"), "MMDS is not available");
    EXPECT_400(PUT("/loggers", "{}"), "Invalid request method");
}

Test(api, logger_bodies)
{
    char path[64] = "/tmp/flint-api-log-XXXXXX", buf[4096];
    int fd = mkstemp(path);
    ssize_t n;

    cr_assert_geq(fd, 0);
    EXPECT_400(PUT("/logger", "{\"level\":\"Loud\"}"),
               "level: 'Loud' is not one of Error, Warning, Info, Debug, Trace, Off");
    EXPECT_400(PUT("/logger", "{\"lvl\":\"Info\"}"), "unknown field 'lvl'");
    EXPECT_400(PUT("/logger", "{\"show_level\":1}"), "'show_level' must be true or false");
    EXPECT_400(PUT("/logger", "{\"log_path\":\"/nonexistent-dir/x\"}"),
               "log_path: cannot open '/nonexistent-dir/x'");
    EXPECT_400(PUT("/logger", "{\"log_path\":\"/tmp\"}"), "log_path: cannot open '/tmp'");
    cr_assert_not(log_has_path(), "a refused PUT changes nothing");
    cr_assert_eq(log_get_level(), LOG_WARN, "a refused PUT changes nothing");
    cr_assert_eq(PUT("/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Info\","
                                    "\"show_level\":true,\"show_log_origin\":false}",
                                    path)),
                 204, "%s", resp.body);
    cr_assert(log_has_path());
    cr_assert_eq(log_get_level(), LOG_INFO);
    log_info("hello %d", 42);
    log_debug("not at Info");
    n = read(fd, buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert(strstr(buf, " [test-vm:main:INFO] hello 42\n"), "%s", buf);
    cr_assert_null(strstr(buf, "not at Info"), "%s", buf);
    cr_assert_eq(PUT("/logger", "{\"level\":\"Off\"}"), 204);
    cr_assert_eq(log_get_level(), LOG_OFF);
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), 400);
    ctl.state = API_VM_RUNNING;
    EXPECT_400(PUT("/logger", "{\"level\":\"Info\"}"), "not supported after starting");
    close(fd);
    unlink(path);
}

Test(api, bad_ids_in_the_path)
{
    EXPECT_400(PUT("/drives/", "{}"), "invalid id ''");
    EXPECT_400(PUT("/drives/a-b", "{}"), "invalid id 'a-b'");
    EXPECT_400(PUT("/drives/a/b", "{}"), "invalid id 'a/b'");
    EXPECT_400(PUT("/network-interfaces/x.y", "{}"), "invalid id 'x.y'");
    char longid[128];
    memset(longid, 'a', sizeof(longid));
    memcpy(longid, "/drives/", 8);
    longid[8 + 65] = '\0';
    EXPECT_400(PUT(longid, "{}"), "invalid id");
}

Test(api, fault_message_is_valid_json_whatever_the_path)
{
    EXPECT_400(GET("/\xff\xfe\x01\"\\"), "Invalid request method");
}

Test(api, malformed_bodies)
{
    EXPECT_400(PUT("/machine-config", NULL), "missing JSON body");
    EXPECT_400(PUT("/machine-config", ""), "missing JSON body");
    EXPECT_400(PUT("/machine-config", "{\"vcpu_count\":1,"), "malformed JSON body");
    EXPECT_400(PUT("/machine-config", "\x01\x02garbage"), "malformed JSON body");
    EXPECT_400(PUT("/machine-config", "[1,2]"), "the body must be a JSON object");
    EXPECT_400(PUT("/machine-config", "\"text\""), "malformed JSON body");
    EXPECT_400(PUT("/machine-config", "{\"vcpu_count\":1,\"vcpu_count\":2,\"mem_size_mib\":128}"),
               "duplicate");
    EXPECT_400(PUT("/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":99999999999999999999}"),
               "malformed JSON body");
    EXPECT_400(PUT("/vsock", "{\"guest_cid\":3,\"uds_path\":\"a\\u0000b\"}"),
               "malformed JSON body");
    cr_assert_eq(cfg.vcpus, 1);
    cr_assert_not(cfg.vsock.enabled);
}

Test(api, deeply_nested_body_is_refused)
{
    size_t depth = 20000;
    char *b = malloc(2 * depth + 1);

    memset(b, '[', depth);
    memset(b + depth, ']', depth);
    b[2 * depth] = '\0';
    EXPECT_400(PUT("/machine-config", b), "malformed JSON body");
    free(b);
}

/* ---- machine-config ---- */

Test(api, put_machine_config)
{
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":4,\"mem_size_mib\":512,\"smt\":false,"
                                        "\"track_dirty_pages\":true}"),
                 204, "%s", resp.body);
    cr_assert_null(resp.body);
    cr_assert_eq(cfg.vcpus, 4);
    cr_assert_eq(cfg.mem_mib, 512);
    cr_assert(cfg.track_dirty_pages);
    /* PUT replaces: absent optional fields go back to their defaults. */
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256}"), 204);
    cr_assert_not(cfg.track_dirty_pages);
}

/* Firecracker's rule on x86_64: smt with 1 or an even number of vCPUs. */
Test(api, smt_true_with_one_or_an_even_number_of_vcpus)
{
    for (unsigned n = 1; n <= CONFIG_MAX_VCPUS; n++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"vcpu_count\":%u,\"mem_size_mib\":128,\"smt\":true}", n);
        if (n == 1 || n % 2 == 0) {
            cr_assert_eq(PUT("/machine-config", body), 204, "%u: %s", n, resp.body);
            cr_assert(cfg.smt);
            cr_assert_eq(cfg.vcpus, n);
        } else {
            EXPECT_400(PUT("/machine-config", body), "1 or even");
        }
    }
    cr_assert_eq(GET("/machine-config"), 200);
    cr_assert(strstr(resp.body, "\"smt\":true"), "%s", resp.body);
    /* PATCH keeps smt; a PATCH to an odd count with smt on is refused. */
    cr_assert_eq(PATCH("/machine-config", "{\"vcpu_count\":4}"), 204, "%s", resp.body);
    cr_assert(cfg.smt);
    EXPECT_400(PATCH("/machine-config", "{\"vcpu_count\":5}"), "1 or even");
    cr_assert_eq(cfg.vcpus, 4);
    cr_assert_eq(PATCH("/machine-config", "{\"vcpu_count\":5,\"smt\":false}"), 204);
    cr_assert_not(cfg.smt);
    /* PUT without smt goes back to false. */
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128,\"smt\":true}"),
                 204);
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128}"), 204);
    cr_assert_not(cfg.smt);
}

Test(api, machine_config_errors_name_the_field_and_change_nothing)
{
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"vcpu_count\":0,\"mem_size_mib\":128}", "vcpu_count: 0 is out of range (1 to 32)"},
        {"{\"vcpu_count\":33,\"mem_size_mib\":128}", "vcpu_count: 33 is out of range"},
        {"{\"vcpu_count\":-1,\"mem_size_mib\":128}", "'vcpu_count' must be a non-negative"},
        {"{\"vcpu_count\":\"2\",\"mem_size_mib\":128}", "'vcpu_count' must be a non-negative"},
        {"{\"vcpu_count\":2.5,\"mem_size_mib\":128}", "'vcpu_count' must be a non-negative"},
        {"{\"vcpu_count\":true,\"mem_size_mib\":128}", "'vcpu_count' must be a non-negative"},
        {"{\"vcpu_count\":2}", "missing required field 'mem_size_mib'"},
        {"{\"mem_size_mib\":128}", "missing required field 'vcpu_count'"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":1}", "mem_size_mib: 1 MiB is out of range"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":2000000}", "mem_size_mib: 2000000 MiB is out"},
        {"{\"vcpu_count\":3,\"mem_size_mib\":128,\"smt\":true}",
         "vcpu_count: with smt true the vCPU count must be 1 or even"},
        {"{\"vcpu_count\":31,\"mem_size_mib\":128,\"smt\":true}", "not 31"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"smt\":1}", "'smt' must be true or false"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":\"4M\"}",
         "'4M' is not a valid huge_pages (None, 2M or Transparent)"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":127,\"huge_pages\":\"2M\"}",
         "mem_size_mib: 127 MiB is not a multiple of the 2 MiB huge page size"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"huge_pages\":2}",
         "'huge_pages' must be a string"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"cpu_template\":\"T3\"}",
         "'T3' is not a valid cpu_template"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"cpu_template\":\"t2a\"}",
         "'t2a' is not a valid cpu_template"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"cpu_template\":1}",
         "'cpu_template' must be a string"},
        {"{\"vcpu_count\":2,\"mem_size_mib\":128,\"bogus\":1}", "unknown field 'bogus'"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        EXPECT_400(PUT("/machine-config", cases[i].body), cases[i].needle);
        cr_assert_eq(cfg.vcpus, 1, "case %zu", i);
        cr_assert_eq(cfg.mem_mib, 128, "case %zu", i);
    }
}

Test(api, huge_pages_2m)
{
    cr_assert_eq(
        PUT("/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":256,\"huge_pages\":\"2M\"}"),
        204, "%s", resp.body);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_2M);
    cr_assert_eq(GET("/machine-config"), 200);
    cr_assert(strstr(resp.body, "\"huge_pages\":\"2M\""), "%s", resp.body);
    /* PATCH keeps it unless it names it; memory must stay even. */
    cr_assert_eq(PATCH("/machine-config", "{\"vcpu_count\":2}"), 204, "%s", resp.body);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_2M);
    EXPECT_400(PATCH("/machine-config", "{\"mem_size_mib\":129}"), "not a multiple of the 2 MiB");
    cr_assert_eq(cfg.mem_mib, 256);
    cr_assert_eq(PATCH("/machine-config", "{\"huge_pages\":\"None\"}"), 204, "%s", resp.body);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);
    cr_assert_eq(PATCH("/machine-config", "{\"mem_size_mib\":129}"), 204, "%s", resp.body);
    EXPECT_400(PATCH("/machine-config", "{\"huge_pages\":\"2M\"}"), "129 MiB is not a multiple");
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);
    /* A PUT without it goes back to the default. */
    cr_assert_eq(
        PUT("/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":256,\"huge_pages\":\"2M\"}"),
        204);
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":256}"), 204);
    cr_assert_eq(cfg.huge_pages, CONFIG_DEFAULT_HUGE_PAGES);
}

Test(api, huge_pages_transparent)
{
    cr_assert_eq(PUT("/machine-config",
                     "{\"vcpu_count\":1,\"mem_size_mib\":129,\"huge_pages\":\"Transparent\"}"),
                 204, "%s", resp.body);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_TRANSPARENT);
    cr_assert_eq(GET("/machine-config"), 200);
    cr_assert(strstr(resp.body, "\"huge_pages\":\"Transparent\""), "%s", resp.body);
    /* The API takes Firecracker's spelling only; the CLI any case. */
    EXPECT_400(PATCH("/machine-config", "{\"huge_pages\":\"transparent\"}"),
               "'transparent' is not a valid huge_pages (None, 2M or Transparent)");
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_TRANSPARENT);
    cr_assert_eq(PATCH("/machine-config", "{\"huge_pages\":\"None\"}"), 204, "%s", resp.body);
    cr_assert_eq(cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);
}

Test(api, patch_machine_config)
{
    cr_assert_eq(PATCH("/machine-config", "{\"vcpu_count\":3}"), 204, "%s", resp.body);
    cr_assert_eq(cfg.vcpus, 3);
    cr_assert_eq(cfg.mem_mib, 128);
    cr_assert_eq(PATCH("/machine-config", "{\"mem_size_mib\":64,\"track_dirty_pages\":true}"), 204);
    cr_assert_eq(cfg.vcpus, 3);
    cr_assert_eq(cfg.mem_mib, 64);
    EXPECT_400(PATCH("/machine-config", "{}"), "at least one field");
    EXPECT_400(PATCH("/machine-config", "{\"vcpu_count\":99}"), "vcpu_count: 99");
    cr_assert_eq(cfg.vcpus, 3);
}

/* ---- boot-source ---- */

Test(api, put_boot_source)
{
    cr_assert_eq(PUT("/boot-source",
                     fmt("{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0\"}", kernel)),
                 204, "%s", resp.body);
    cr_assert_str_eq(cfg.kernel_path, kernel);
    cr_assert_str_eq(cfg.cmdline, "console=ttyS0");
    cr_assert_null(cfg.initrd_path);
}

Test(api, boot_source_errors_change_nothing)
{
    char body[4096];

    put_boot_source();
    EXPECT_400(PUT("/boot-source", "{\"kernel_image_path\":\"/no/such/kernel\"}"),
               "kernel_image_path: cannot open '/no/such/kernel': No such file");
    EXPECT_400(PUT("/boot-source",
                   fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"/nope\"}", kernel)),
               "initrd_path: cannot open '/nope'");
    EXPECT_400(PUT("/boot-source", "{\"kernel_image_path\":\"/tmp\"}"),
               "kernel_image_path: '/tmp' is not a regular file");
    EXPECT_400(PUT("/boot-source", "{\"boot_args\":\"x\"}"),
               "missing required field 'kernel_image_path'");
    EXPECT_400(PUT("/boot-source", "{\"kernel_image_path\":7}"),
               "'kernel_image_path' must be a string");
    int n = snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\",\"boot_args\":\"", kernel);
    memset(body + n, 'a', 2100);
    strcpy(body + n + 2100, "\"}");
    EXPECT_400(PUT("/boot-source", body), "boot_args: 2100 bytes is longer than the limit");
    cr_assert_str_eq(cfg.kernel_path, kernel);
    cr_assert_null(cfg.cmdline);
}

/* ---- drives ---- */

static int put_drive(const char *id, const char *path, const char *extra)
{
    char body[512], url[128];

    snprintf(url, sizeof(url), "/drives/%s", id);
    snprintf(body, sizeof(body),
             "{\"drive_id\":\"%s\",\"path_on_host\":\"%s\",\"is_root_device\":false%s}", id, path,
             extra);
    return PUT(url, body);
}

Test(api, put_drives)
{
    cr_assert_eq(put_drive("data", disk, ",\"is_read_only\":true"), 204, "%s", resp.body);
    cr_assert_eq(put_drive("rootfs", disk2,
                           ",\"partuuid\":null,\"cache_type\":\"Writeback\","
                           "\"io_engine\":\"Sync\",\"rate_limiter\":null"),
                 204, "%s", resp.body);
    cr_assert_eq(cfg.ndrives, 2);
    cr_assert_str_eq(cfg.drives[0].id, "data");
    cr_assert(cfg.drives[0].read_only);
    cr_assert(cfg.drives[1].cache_writeback);
    cr_assert(cfg.drives[1].io_engine_sync);
    /* The root device moves to the front: it is /dev/vda. */
    cr_assert_eq(
        PUT("/drives/rootfs",
            fmt("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true}",
                disk2)),
        204, "%s", resp.body);
    cr_assert_eq(cfg.ndrives, 2);
    cr_assert_str_eq(cfg.drives[0].id, "rootfs");
    cr_assert(cfg.drives[0].root_device);
    cr_assert_str_eq(cfg.drives[1].id, "data");
    /* Same id again replaces in place. */
    cr_assert_eq(put_drive("data", disk2, ""), 204);
    cr_assert_eq(cfg.ndrives, 2);
    cr_assert_str_eq(cfg.drives[1].path, disk2);
    cr_assert_not(cfg.drives[1].read_only);
}

Test(api, drive_errors_change_nothing)
{
    cr_assert_eq(
        PUT("/drives/root",
            fmt("{\"drive_id\":\"root\",\"path_on_host\":\"%s\",\"is_root_device\":true}", disk)),
        204);
    EXPECT_400(
        PUT("/drives/other",
            fmt("{\"drive_id\":\"other\",\"path_on_host\":\"%s\",\"is_root_device\":true}", disk2)),
        "is_root_device: drive 'root' is the root device already");
    EXPECT_400(PUT("/drives/a", fmt("{\"drive_id\":\"b\",\"path_on_host\":\"%s\","
                                    "\"is_root_device\":false}",
                                    disk)),
               "drive_id 'b' in the body does not match 'a' in the path");
    EXPECT_400(PUT("/drives/a", fmt("{\"drive_id\":\"a\",\"path_on_host\":\"%s\"}", disk)),
               "missing required field 'is_root_device'");
    EXPECT_400(PUT("/drives/a", "{\"drive_id\":\"a\",\"is_root_device\":false}"),
               "missing required field 'path_on_host'");
    EXPECT_400(put_drive("a", "/no/such/disk", ""),
               "path_on_host: cannot open '/no/such/disk' read-write");
    EXPECT_400(put_drive("a", "/tmp", ",\"is_read_only\":true"),
               "path_on_host: '/tmp' is not a regular file or a block device");
    EXPECT_400(put_drive("a", disk, ",\"rate_limiter\":{\"bandwidth\":{\"size\":1}}"),
               "rate_limiter.bandwidth.refill_time: missing required field");
    EXPECT_400(put_drive("a", disk, ",\"socket\":\"/x\""), "'socket' is not supported");
    EXPECT_400(put_drive("a", disk, ",\"cache_type\":\"Fast\""),
               "'Fast' is not a valid cache_type");
    EXPECT_400(put_drive("a", disk, ",\"io_engine\":\"Magic\""),
               "'Magic' is not a valid io_engine");
    EXPECT_400(put_drive("a", disk, ",\"is_read_only\":\"yes\""), "'is_read_only' must be true");
    EXPECT_400(put_drive("a", disk, ",\"partuuid\":\"has space\""), "partuuid");
    EXPECT_400(put_drive("a", disk, ",\"extra\":1"), "unknown field 'extra'");
    cr_assert_eq(cfg.ndrives, 1);
    cr_assert_str_eq(cfg.drives[0].path, disk);
}

Test(api, read_only_drive_needs_only_read_access)
{
    chmod(disk, 0444);
    if (geteuid() != 0)
        EXPECT_400(put_drive("a", disk, ""), "read-write");
    cr_assert_eq(put_drive("a", disk, ",\"is_read_only\":true"), 204, "%s", resp.body);
}

Test(api, drive_limit)
{
    char id[16];

    for (int i = 0; i < CONFIG_MAX_DRIVES; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        cr_assert_eq(put_drive(id, disk, ""), 204, "%s", resp.body);
    }
    EXPECT_400(put_drive("one_more", disk, ""), "at most 16 drives");
    cr_assert_eq(put_drive("d3", disk2, ""), 204, "replacing still works");
}

/* ---- network interfaces ---- */

static int put_net(const char *id, const char *tap, const char *mac)
{
    char body[256], url[128];

    snprintf(url, sizeof(url), "/network-interfaces/%s", id);
    if (mac)
        snprintf(body, sizeof(body),
                 "{\"iface_id\":\"%s\",\"host_dev_name\":\"%s\",\"guest_mac\":\"%s\"}", id, tap,
                 mac);
    else
        snprintf(body, sizeof(body), "{\"iface_id\":\"%s\",\"host_dev_name\":\"%s\"}", id, tap);
    return PUT(url, body);
}

Test(api, put_network_interfaces)
{
    cr_assert_eq(put_net("eth0", "tap0", "06:00:AC:10:00:02"), 204, "%s", resp.body);
    cr_assert_eq(put_net("eth1", "tap1", NULL), 204, "%s", resp.body);
    cr_assert_eq(cfg.nnets, 2);
    cr_assert_str_eq(cfg.nets[0].tap, "tap0");
    cr_assert(cfg.nets[0].has_mac);
    cr_assert_eq(cfg.nets[0].mac[3], 0x10);
    cr_assert_not(cfg.nets[1].has_mac);
    cr_assert_eq(put_net("eth0", "tap9", NULL), 204, "replace");
    cr_assert_eq(cfg.nnets, 2);
    cr_assert_str_eq(cfg.nets[0].tap, "tap9");
}

Test(api, network_interface_errors_change_nothing)
{
    cr_assert_eq(put_net("eth0", "tap0", "06:00:00:00:00:01"), 204);
    EXPECT_400(put_net("eth1", "tap0", NULL), "host_dev_name: 'tap0' is used by interface 'eth0'");
    EXPECT_400(put_net("eth1", "tap1", "06:00:00:00:00:01"),
               "guest_mac: 06:00:00:00:00:01 is used");
    EXPECT_400(put_net("eth1", "tap1", "01:00:00:00:00:01"), "not multicast");
    EXPECT_400(put_net("eth1", "tap1", "06:00:00:00:00"), "must be six hex bytes");
    EXPECT_400(put_net("eth1", "a_name_far_too_long", NULL), "not a valid interface name");
    EXPECT_400(put_net("eth1", "", NULL), "not a valid interface name");
    EXPECT_400(PUT("/network-interfaces/eth1", "{\"iface_id\":\"eth2\",\"host_dev_name\":\"t\"}"),
               "iface_id 'eth2' in the body does not match 'eth1'");
    EXPECT_400(PUT("/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"host_dev_name\":\"t\","
                                               "\"rx_rate_limiter\":{\"ops\":{\"size\":-1,"
                                               "\"refill_time\":5}}}"),
               "rx_rate_limiter.ops.size: must be a non-negative integer");
    EXPECT_400(PUT("/network-interfaces/eth1", "{\"iface_id\":\"eth1\"}"),
               "missing required field 'host_dev_name'");
    cr_assert_eq(cfg.nnets, 1);
}

Test(api, network_interface_limit)
{
    char id[16], tap[16];

    for (int i = 0; i < CONFIG_MAX_NETS; i++) {
        snprintf(id, sizeof(id), "eth%d", i);
        snprintf(tap, sizeof(tap), "tap%d", i);
        cr_assert_eq(put_net(id, tap, NULL), 204);
    }
    EXPECT_400(put_net("eth99", "tap99", NULL), "at most 8 network interfaces");
}

/* ---- vsock ---- */

Test(api, put_vsock)
{
    cr_assert_eq(PUT("/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}"), 204, "%s",
                 resp.body);
    cr_assert(cfg.vsock.enabled);
    cr_assert_eq(cfg.vsock.guest_cid, 3);
    cr_assert_str_eq(cfg.vsock.uds_path, "/tmp/v.sock");
    EXPECT_400(PUT("/vsock", "{\"guest_cid\":2,\"uds_path\":\"/tmp/w.sock\"}"),
               "guest_cid: 2 is out of range (3 to 4294967294)");
    EXPECT_400(PUT("/vsock", "{\"guest_cid\":4294967295,\"uds_path\":\"/tmp/w.sock\"}"),
               "guest_cid: 4294967295 is out of range");
    EXPECT_400(PUT("/vsock", "{\"guest_cid\":5,\"uds_path\":\"\"}"), "missing Unix socket path");
    EXPECT_400(PUT("/vsock", "{\"guest_cid\":5}"), "missing required field 'uds_path'");
    cr_assert_eq(cfg.vsock.guest_cid, 3);
    cr_assert_str_eq(cfg.vsock.uds_path, "/tmp/v.sock");
    cr_assert_eq(PUT("/vsock", "{\"vsock_id\":\"v\",\"guest_cid\":9,\"uds_path\":\"/tmp/x\"}"),
                 204);
    cr_assert_eq(cfg.vsock.guest_cid, 9);
}

/* ---- actions and phases ---- */

Test(api, instance_start_needs_a_boot_source)
{
    EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), "no boot source");
    cr_assert_eq(starts, 0);
    cr_assert_eq(ctl.state, API_VM_NOT_STARTED);
}

Test(api, instance_start_then_phases)
{
    start();
    cr_assert_eq(starts, 1);
    cr_assert_eq(ctl.state, API_VM_RUNNING);
    cr_assert_eq(GET("/"), 200);
    cr_assert(strstr(resp.body, "\"state\":\"Running\""), "%s", resp.body);
    EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), "already running");
    cr_assert_eq(starts, 1);
    EXPECT_400(PUT("/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":128}"),
               "not supported after starting the microVM");
    EXPECT_400(PATCH("/machine-config", "{\"vcpu_count\":2}"), "after starting");
    EXPECT_400(PUT("/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", kernel)),
               "after starting");
    EXPECT_400(put_drive("a", disk, ""), "after starting");
    EXPECT_400(put_net("eth0", "tap0", NULL), "after starting");
    EXPECT_400(PUT("/vsock", "{\"guest_cid\":3,\"uds_path\":\"/tmp/v\"}"), "after starting");
    EXPECT_400(PATCH("/drives/a", "{\"drive_id\":\"a\"}"), "drive_id: no drive 'a'");
    EXPECT_400(PATCH("/network-interfaces/a", "{\"iface_id\":\"a\"}"),
               "iface_id: no network interface 'a'");
    cr_assert_eq(rl_calls, 0);
    cr_assert_eq(cfg.vcpus, 1);
    cr_assert_eq(cfg.ndrives, 0);
    /* GETs still answer. */
    cr_assert_eq(GET("/machine-config"), 200);
    cr_assert_eq(GET("/vm/config"), 200);
}

/* ---- PATCH /drives after boot ---- */

static const char *drive_path(const char *id)
{
    int i = config_find_drive(&cfg, id);
    cr_assert_geq(i, 0, "drive %s", id);
    return cfg.drives[i].path;
}

Test(api, patch_drive_swaps_the_backing_file)
{
    cr_assert_eq(put_drive("rootfs", kernel, ",\"is_read_only\":true"), 204, "%s", resp.body);
    cr_assert_eq(put_drive("data", disk, ""), 204, "%s", resp.body);
    start();
    cr_assert_eq(
        PATCH("/drives/data", fmt("{\"drive_id\":\"data\",\"path_on_host\":\"%s\"}", disk2)), 204,
        "%s", resp.body);
    cr_assert_eq(swaps, 1);
    cr_assert_eq(swap_index, (unsigned)config_find_drive(&cfg, "data"));
    cr_assert_str_eq(swap_path, disk2);
    cr_assert_str_eq(drive_path("data"), disk2);
    cr_assert_eq(GET("/vm/config"), 200);
    cr_assert(strstr(resp.body, disk2), "GET /vm/config shows the new path: %s", resp.body);
    /* Only drive_id, or a null rate_limiter: nothing to do. */
    cr_assert_eq(PATCH("/drives/data", "{\"drive_id\":\"data\"}"), 204, "%s", resp.body);
    cr_assert_eq(PATCH("/drives/data", "{\"drive_id\":\"data\",\"rate_limiter\":null}"), 204);
    cr_assert_eq(swaps, 1);
    /* Works while paused too. */
    cr_assert_eq(PATCH("/vm", "{\"state\":\"Paused\"}"), 204);
    cr_assert_eq(
        PATCH("/drives/rootfs", fmt("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\"}", disk)),
        204, "%s", resp.body);
    cr_assert_eq(swap_index, (unsigned)config_find_drive(&cfg, "rootfs"));
    cr_assert_str_eq(drive_path("rootfs"), disk);
    cr_assert(cfg.drives[config_find_drive(&cfg, "rootfs")].read_only, "read-only kept");
}

Test(api, patch_drive_refusals_change_nothing)
{
    cr_assert_eq(put_drive("data", disk, ""), 204, "%s", resp.body);
    EXPECT_400(PATCH("/drives/data", fmt("{\"drive_id\":\"data\",\"path_on_host\":\"%s\"}", disk2)),
               "not supported before starting the microVM");
    start();
    EXPECT_400(PATCH("/drives/nope", "{\"drive_id\":\"nope\",\"path_on_host\":\"/tmp\"}"),
               "drive_id: no drive 'nope'");
    EXPECT_400(
        PATCH("/drives/data", fmt("{\"drive_id\":\"other\",\"path_on_host\":\"%s\"}", disk2)),
        "drive_id 'other' in the body does not match 'data' in the path");
    EXPECT_400(PATCH("/drives/data", fmt("{\"path_on_host\":\"%s\"}", disk2)),
               "missing required field 'drive_id'");
    EXPECT_400(PATCH("/drives/data", "{\"drive_id\":\"data\",\"path_on_host\":7}"),
               "'path_on_host' must be a string");
    EXPECT_400(PATCH("/drives/data", "{\"drive_id\":\"data\",\"path_on_host\":\"\"}"),
               "path_on_host: empty path");
    EXPECT_400(PATCH("/drives/data", "{\"drive_id\":\"data\",\"is_read_only\":true}"),
               "unknown field 'is_read_only'");
    EXPECT_400(PATCH("/drives/data", fmt("{\"drive_id\":\"data\",\"path_on_host\":\"%s\","
                                         "\"rate_limiter\":{\"ops\":{\"size\":1}}}",
                                         disk2)),
               "rate_limiter.ops.refill_time: missing required field");
    EXPECT_400(PATCH("/drives/data", "[]"), "must be a JSON object");
    EXPECT_400(PATCH("/drives/data", "{\"drive_id\":"), "malformed JSON");
    cr_assert_eq(swaps, 0, "nothing reached the VM");
    swap_rc = -ENOENT;
    EXPECT_400(PATCH("/drives/data", "{\"drive_id\":\"data\",\"path_on_host\":\"/no/such\"}"),
               "path_on_host: drive /no/such: stub refused");
    cr_assert_eq(swaps, 1);
    cr_assert_str_eq(drive_path("data"), disk, "the configuration keeps the old path");
    cr_assert_eq(GET("/vm/config"), 200);
    cr_assert(strstr(resp.body, disk) && !strstr(resp.body, "/no/such"), "%s", resp.body);
}

Test(api, post_boot_calls_before_boot)
{
    EXPECT_400(PUT("/actions", "{\"action_type\":\"SendCtrlAltDel\"}"),
               "not supported before starting the microVM");
    EXPECT_400(PUT("/actions", "{\"action_type\":\"FlushMetrics\"}"), "before starting");
    EXPECT_400(PATCH("/vm", "{\"state\":\"Paused\"}"), "before starting");
    EXPECT_400(PATCH("/drives/a", "{}"), "before starting");
    cr_assert_eq(cads + pauses, 0);
}

Test(api, action_errors)
{
    EXPECT_400(PUT("/actions", "{\"action_type\":\"Reboot\"}"),
               "action_type: 'Reboot' is not one of InstanceStart, SendCtrlAltDel, FlushMetrics");
    EXPECT_400(PUT("/actions", "{}"), "missing required field 'action_type'");
    EXPECT_400(PUT("/actions", "{\"action_type\":1}"), "'action_type' must be a string");
    EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\",\"x\":1}"), "unknown field 'x'");
    cr_assert_eq(starts, 0);
}

Test(api, send_ctrl_alt_del)
{
    start();
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"SendCtrlAltDel\"}"), 204);
    cr_assert_eq(cads, 1);
    cad_rc = -ENOSPC;
    EXPECT_400(PUT("/actions", "{\"action_type\":\"SendCtrlAltDel\"}"), "not read the previous");
    flush_rc = -ENODEV; /* no destination: Firecracker answers 204, nothing done */
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"FlushMetrics\"}"), 204, "%s", resp.body);
    flush_rc = -EAGAIN;
    EXPECT_400(PUT("/actions", "{\"action_type\":\"FlushMetrics\"}"), "(dropped)");
    flush_rc = 0;
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"FlushMetrics\"}"), 204);
    cr_assert_eq(flushes, 3);
}

Test(api, metrics_bodies_and_counters)
{
    char path[64] = "/tmp/flint-api-metrics-XXXXXX";
    struct metrics m;
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    close(fd);
    EXPECT_400(PUT("/metrics", fmt("{\"metrics_path\":\"%s\"}", path)),
               "metrics are not available");
    metrics_init(&m);
    ctl.metrics = &m;
    EXPECT_400(PUT("/metrics", "{}"), "missing required field 'metrics_path'");
    EXPECT_400(PUT("/metrics", "{\"metrics_path\":\"/x\",\"y\":1}"), "unknown field 'y'");
    EXPECT_400(PUT("/metrics", "{\"metrics_path\":\"\"}"), "metrics_path: empty path");
    EXPECT_400(PUT("/metrics", "{\"metrics_path\":\"/nonexistent-dir/m\"}"),
               "metrics_path: cannot open '/nonexistent-dir/m'");
    cr_assert_eq(m.fd, -1, "a refused PUT changes nothing");
    cr_assert_eq(PUT("/metrics", fmt("{\"metrics_path\":\"%s\"}", path)), 204, "%s", resp.body);
    cr_assert_geq(m.fd, 0);
    GET("/");
    PATCH("/vm", "{}");
    call(API_METHOD_OTHER, "/", NULL);
    /* 5 PUTs before (4 refused), a GET, a PATCH and an other: */
    cr_assert_eq(ctl.counters.put, 6);
    cr_assert_eq(ctl.counters.get, 1);
    cr_assert_eq(ctl.counters.patch, 1);
    cr_assert_eq(ctl.counters.other, 1);
    cr_assert_eq(ctl.counters.ok, 2);
    cr_assert_eq(ctl.counters.failed, 7);
    json_t *c = json_object(), *g = json_object();
    cr_assert_eq(api_add_metrics(&ctl, c, g), 0);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(c, "api_server"), "put_requests")), 6);
    cr_assert_not_null(json_object_get(json_object_get(g, "api_server"), "latency_us_max"));
    cr_assert_eq(ctl.counters.latency_max_us, 0, "the maximum restarts at each line");
    json_decref(c);
    json_decref(g);
    ctl.state = API_VM_RUNNING;
    EXPECT_400(PUT("/metrics", fmt("{\"metrics_path\":\"%s\"}", path)), "after starting");
    metrics_close(&m);
    unlink(path);
}

Test(api, refused_start_changes_nothing)
{
    put_boot_source();
    start_rc = -EINVAL;
    EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"),
               "InstanceStart: stub start failed");
    cr_assert_eq(ctl.state, API_VM_NOT_STARTED);
    cr_assert_eq(ctl.fatal_status, 0);
    start_rc = 0;
    cr_assert_eq(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"), 204);
}

Test(api, failed_start_is_fatal)
{
    put_boot_source();
    start_rc = 152;
    EXPECT_400(PUT("/actions", "{\"action_type\":\"InstanceStart\"}"),
               "InstanceStart: stub start failed; flint exits");
    cr_assert_eq(ctl.fatal_status, 152);
    cr_assert_eq(ctl.state, API_VM_NOT_STARTED);
}

Test(api, pause_and_resume)
{
    start();
    cr_assert_eq(PATCH("/vm", "{\"state\":\"Paused\"}"), 204, "%s", resp.body);
    cr_assert_eq(pauses, 1);
    cr_assert_eq(ctl.state, API_VM_PAUSED);
    cr_assert_eq(GET("/"), 200);
    cr_assert(strstr(resp.body, "\"state\":\"Paused\""), "%s", resp.body);
    cr_assert_eq(PATCH("/vm", "{\"state\":\"Paused\"}"), 204);
    cr_assert_eq(pauses, 1, "pausing a paused VM does nothing");
    cr_assert_eq(PATCH("/vm", "{\"state\":\"Resumed\"}"), 204);
    cr_assert_eq(resumes, 1);
    cr_assert_eq(ctl.state, API_VM_RUNNING);
    EXPECT_400(PATCH("/vm", "{\"state\":\"Stopped\"}"), "'Stopped' is not a valid state");
    EXPECT_400(PATCH("/vm", "{}"), "missing required field 'state'");
    EXPECT_400(PUT("/vm", "{\"state\":\"Paused\"}"), "Invalid request method and/or path: PUT /vm");
}

/* ---- GET /vm/config and config files ---- */

static void configure_everything(void)
{
    cr_assert_eq(PUT("/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256,"
                                        "\"track_dirty_pages\":true}"),
                 204);
    cr_assert_eq(PUT("/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"boot_args\":"
                                         "\"console=ttyS0 quiet\",\"initrd_path\":null}",
                                         kernel)),
                 204, "%s", resp.body);
    cr_assert_eq(PUT("/drives/rootfs", fmt("{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\","
                                           "\"is_root_device\":true,\"is_read_only\":true,"
                                           "\"partuuid\":\"abcd-01\",\"io_engine\":\"Sync\"}",
                                           disk)),
                 204, "%s", resp.body);
    cr_assert_eq(put_drive("scratch", disk2,
                           ",\"cache_type\":\"Writeback\",\"rate_limiter\":{\"bandwidth\":"
                           "{\"size\":1048576,\"one_time_burst\":4096,\"refill_time\":1000},"
                           "\"ops\":{\"size\":100,\"refill_time\":10}}"),
                 204, "%s", resp.body);
    cr_assert_eq(PUT("/network-interfaces/eth0",
                     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":"
                     "\"06:00:ac:10:00:02\",\"tx_rate_limiter\":{\"ops\":{\"size\":9,"
                     "\"refill_time\":1}},\"rx_rate_limiter\":{\"bandwidth\":null}}"),
                 204, "%s", resp.body);
    cr_assert_eq(put_net("eth1", "tap1", NULL), 204);
    cr_assert_eq(PUT("/vsock", "{\"guest_cid\":7,\"uds_path\":\"/tmp/v.sock\"}"), 204);
}

Test(api, vm_config_round_trips_through_a_config_file)
{
    char err[512], *first;
    struct vm_config cfg2;
    struct api_ctl ctl2;

    configure_everything();
    cr_assert_eq(GET("/vm/config"), 200);
    first = strdup(resp.body);
    init_ctl(&ctl2, &cfg2);
    cr_assert_eq(api_load_config(&ctl2, first, strlen(first), err, sizeof(err)), 0, "%s\n%s", err,
                 first);
    cr_assert_eq(call_on(&ctl2, API_METHOD_GET, "/vm/config", NULL), 200);
    cr_assert_str_eq(resp.body, first);
    cr_assert_eq(cfg2.ndrives, 2);
    cr_assert_str_eq(cfg2.drives[0].partuuid, "abcd-01");
    free(first);
    config_free(&cfg2);
}

Test(api, vm_config_sections_round_trip_through_puts)
{
    struct vm_config cfg2;
    struct api_ctl ctl2;
    json_t *all, *v;
    size_t i;
    char *s, url[128], *first;

    configure_everything();
    cr_assert_eq(GET("/vm/config"), 200);
    first = strdup(resp.body);
    all = body_json();
    init_ctl(&ctl2, &cfg2);
#define PUT2(path, j)                                                                              \
    do {                                                                                           \
        s = json_dumps((j), JSON_COMPACT);                                                         \
        cr_assert_eq(call_on(&ctl2, API_METHOD_PUT, (path), s), 204, "%s: %s -> %s", (path), s,    \
                     resp.body);                                                                   \
        free(s);                                                                                   \
    } while (0)
    PUT2("/machine-config", json_object_get(all, "machine-config"));
    PUT2("/boot-source", json_object_get(all, "boot-source"));
    json_array_foreach(json_object_get(all, "drives"), i, v)
    {
        snprintf(url, sizeof(url), "/drives/%s", json_string_value(json_object_get(v, "drive_id")));
        PUT2(url, v);
    }
    json_array_foreach(json_object_get(all, "network-interfaces"), i, v)
    {
        snprintf(url, sizeof(url), "/network-interfaces/%s",
                 json_string_value(json_object_get(v, "iface_id")));
        PUT2(url, v);
    }
    PUT2("/vsock", json_object_get(all, "vsock"));
    cr_assert_eq(call_on(&ctl2, API_METHOD_GET, "/vm/config", NULL), 200);
    cr_assert_str_eq(resp.body, first);
    json_decref(all);
    free(first);
    config_free(&cfg2);
}

Test(api, vm_config_of_a_fresh_process)
{
    cr_assert_eq(GET("/vm/config"), 200);
    json_t *j = body_json();
    cr_assert(json_is_null(json_object_get(j, "boot-source")));
    cr_assert_eq(json_array_size(json_object_get(j, "drives")), 0);
    cr_assert(json_is_null(json_object_get(j, "vsock")));
    cr_assert(json_is_null(json_object_get(j, "logger")));
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(j, "machine-config"), "mem_size_mib")),
        128);
    json_decref(j);
}

static int load(const char *json, char *err, size_t errlen)
{
    return api_load_config(&ctl, json, strlen(json), err, errlen);
}

Test(api, config_file_errors)
{
    char err[512], *b = fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"},", kernel);
    char with_boot[1024];

    strcpy(with_boot, b);
    cr_assert_eq(load("{}", err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "missing required key 'boot-source'"), "%s", err);
    cr_assert_eq(load("[]", err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "one JSON object"), "%s", err);
    cr_assert_eq(load("{", err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "malformed JSON"), "%s", err);
#define LOAD_FAILS(tail, needle)                                                                   \
    do {                                                                                           \
        char j[2048];                                                                              \
        snprintf(j, sizeof(j), "%s%s", with_boot, tail);                                           \
        cr_assert_eq(load(j, err, sizeof(err)), -EINVAL, "%s", j);                                 \
        cr_assert(strstr(err, needle), "'%s' lacks '%s'", err, needle);                            \
    } while (0)
    LOAD_FAILS("\"bogus\":1}", "unknown key 'bogus'");
    LOAD_FAILS("\"logger\":{\"level\":\"Loud\"}}", "logger: level: 'Loud' is not one of");
    LOAD_FAILS("\"metrics\":{\"metrics_path\":\"/x\"}}",
               "metrics: metrics are not available in this process");
    LOAD_FAILS("\"metrics\":{}}", "metrics: missing required field 'metrics_path'");
    LOAD_FAILS("\"drives\":{}}", "drives: must be an array");
    LOAD_FAILS("\"drives\":[{\"drive_id\":\"a\"}]}", "drives[0]: missing required field");
    LOAD_FAILS("\"network-interfaces\":[1]}", "network-interfaces[0]: the body must be");
    LOAD_FAILS("\"machine-config\":{\"vcpu_count\":0,\"mem_size_mib\":128}}",
               "machine-config: vcpu_count: 0");
    LOAD_FAILS("\"vsock\":{\"guest_cid\":1,\"uds_path\":\"/x\"}}", "vsock: guest_cid: 1");
    cr_assert_eq(load(fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[],"
                          "\"logger\":null,\"metrics\":null}",
                          kernel),
                      err, sizeof(err)),
                 0, "%s", err);
    cr_assert_str_eq(cfg.kernel_path, kernel);
}

Test(api, config_file_from_disk)
{
    char err[512], path[] = "/tmp/flint-api-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *j = fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"},"
                        "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64}}",
                        kernel);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, j, strlen(j)), (ssize_t)strlen(j));
    close(fd);
    cr_assert_eq(api_load_config_file(&ctl, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.vcpus, 2);
    unlink(path);
    cr_assert_neq(api_load_config_file(&ctl, path, err, sizeof(err)), 0);
    cr_assert(strstr(err, "No such file"), "%s", err);
    cr_assert_neq(api_load_config_file(&ctl, "/tmp", err, sizeof(err)), 0);
    cr_assert(strstr(err, "not a regular file"), "%s", err);
}

Test(api, instance_ids)
{
    cr_assert(api_valid_instance_id("anonymous-instance"));
    cr_assert(api_valid_instance_id("A1-b2"));
    cr_assert_not(api_valid_instance_id(""));
    cr_assert_not(api_valid_instance_id("a_b"));
    cr_assert_not(api_valid_instance_id("a b"));
    char id[66];
    memset(id, 'a', 65);
    id[65] = '\0';
    cr_assert_not(api_valid_instance_id(id));
    id[64] = '\0';
    cr_assert(api_valid_instance_id(id));
}

/* ---- rate limiters ---- */

static const char *const bad_limiters[][2] = {
    {"[]", "'rate_limiter' must be a JSON object or null"},
    {"{\"bandwidth\":{\"size\":1,\"refill_time\":1},\"speed\":1}",
     "rate_limiter: unknown field 'speed'"},
    {"{\"bandwidth\":5}", "rate_limiter.bandwidth: must be a JSON object or null"},
    {"{\"ops\":{\"size\":1,\"refill_time\":1,\"burst\":2}}",
     "rate_limiter.ops: unknown field 'burst'"},
    {"{\"ops\":{\"refill_time\":1}}", "rate_limiter.ops.size: missing required field"},
    {"{\"bandwidth\":{\"size\":1}}", "rate_limiter.bandwidth.refill_time: missing required field"},
    {"{\"bandwidth\":{\"size\":1,\"refill_time\":-1}}",
     "rate_limiter.bandwidth.refill_time: must be a non-negative integer"},
    {"{\"bandwidth\":{\"size\":1.5,\"refill_time\":1}}",
     "rate_limiter.bandwidth.size: must be a non-negative integer"},
    {"{\"bandwidth\":{\"size\":\"1\",\"refill_time\":1}}",
     "rate_limiter.bandwidth.size: must be a non-negative integer"},
    {"{\"ops\":{\"size\":1,\"refill_time\":1,\"one_time_burst\":true}}",
     "rate_limiter.ops.one_time_burst: must be a non-negative integer"},
};

Test(api, drive_rate_limiter_put)
{
    const struct token_bucket_config *bw, *ops;

    cr_assert_eq(put_drive("d", disk,
                           ",\"rate_limiter\":{\"bandwidth\":{\"size\":9223372036854775807,"
                           "\"one_time_burst\":7,\"refill_time\":1},\"ops\":null}"),
                 204, "%s", resp.body);
    bw = &cfg.drives[0].rate_limiter.bandwidth;
    ops = &cfg.drives[0].rate_limiter.ops;
    cr_assert_eq(bw->size, 9223372036854775807ull);
    cr_assert_eq(bw->one_time_burst, 7);
    cr_assert_eq(bw->refill_time_ms, 1);
    cr_assert_eq(ops->size + ops->refill_time_ms + ops->one_time_burst, 0);
    /* Every hostile body is refused by name and changes nothing. */
    for (size_t i = 0; i < ARRAY_SIZE(bad_limiters); i++) {
        char extra[256];
        snprintf(extra, sizeof(extra), ",\"rate_limiter\":%s", bad_limiters[i][0]);
        EXPECT_400(put_drive("d", disk2, extra), bad_limiters[i][1]);
        cr_assert_str_eq(cfg.drives[0].path, disk);
        cr_assert_eq(bw->one_time_burst, 7);
    }
    EXPECT_400(put_drive("d", disk,
                         ",\"rate_limiter\":{\"bandwidth\":{\"size\":"
                         "18446744073709551616,\"refill_time\":1}}"),
               "malformed JSON");
    /* A PUT without a rate limiter replaces the drive: no limit then. */
    cr_assert_eq(put_drive("d", disk, ""), 204);
    cr_assert_eq(bw->size, 0);
    cr_assert_eq(GET("/vm/config"), 200);
    cr_assert(strstr(resp.body, "\"rate_limiter\":null"), "%s", resp.body);
}

Test(api, patch_drive_rate_limiter)
{
    cr_assert_eq(put_drive("a", disk, ""), 204);
    cr_assert_eq(
        put_drive("b", disk2, ",\"rate_limiter\":{\"ops\":{\"size\":5,\"refill_time\":100}}"), 204);
    EXPECT_400(PATCH("/drives/b", "{\"drive_id\":\"b\",\"rate_limiter\":null}"), "before starting");
    start();
    cr_assert_eq(PATCH("/drives/b", "{\"drive_id\":\"b\",\"rate_limiter\":{\"bandwidth\":"
                                    "{\"size\":1000,\"refill_time\":10}}}"),
                 204, "%s", resp.body);
    cr_assert_eq(rl_calls, 1);
    cr_assert_eq(rl_index, 1);
    /* A bucket the PATCH leaves out keeps its value, as in Firecracker. */
    cr_assert_eq(rl_got[0].bandwidth.size, 1000);
    cr_assert_eq(rl_got[0].ops.size, 5);
    cr_assert_eq(cfg.drives[1].rate_limiter.bandwidth.refill_time_ms, 10);
    cr_assert_eq(cfg.drives[1].rate_limiter.ops.refill_time_ms, 100);
    /* Size 0 turns a bucket off; GET then reports it as null. */
    cr_assert_eq(PATCH("/drives/b", "{\"drive_id\":\"b\",\"rate_limiter\":{\"ops\":"
                                    "{\"size\":0,\"refill_time\":0}}}"),
                 204, "%s", resp.body);
    cr_assert_eq(GET("/vm/config"), 200);
    cr_assert(strstr(resp.body, "\"rate_limiter\":{\"bandwidth\":{\"size\":1000,"
                                "\"one_time_burst\":0,\"refill_time\":10},\"ops\":null}"),
              "%s", resp.body);
    cr_assert_eq(PATCH("/drives/a", "{\"drive_id\":\"a\"}"), 204, "nothing to change is fine");
    cr_assert_eq(rl_index, 1, "without rate_limiter the device's buckets are left alone");
    rl_calls = 0;
    for (size_t i = 0; i < ARRAY_SIZE(bad_limiters); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"drive_id\":\"b\",\"rate_limiter\":%s}",
                 bad_limiters[i][0]);
        EXPECT_400(PATCH("/drives/b", body), bad_limiters[i][1]);
    }
    EXPECT_400(PATCH("/drives/b", "{\"rate_limiter\":null}"), "missing required field 'drive_id'");
    EXPECT_400(PATCH("/drives/b", "{\"drive_id\":\"a\"}"), "does not match 'b'");
    EXPECT_400(PATCH("/drives/zz", "{\"drive_id\":\"zz\"}"), "no drive 'zz'");
    /* A swap alone leaves the buckets alone. */
    cr_assert_eq(PATCH("/drives/b", fmt("{\"drive_id\":\"b\",\"path_on_host\":\"%s\"}", disk)), 204,
                 "%s", resp.body);
    EXPECT_400(PATCH("/drives/b", "{\"drive_id\":\"b\",\"is_read_only\":true}"),
               "unknown field 'is_read_only'");
    cr_assert_eq(rl_calls, 0);
    /* The device refusing leaves the configuration as it was. */
    rl_rc = -ENOMEM;
    EXPECT_400(PATCH("/drives/b", "{\"drive_id\":\"b\",\"rate_limiter\":{\"bandwidth\":"
                                  "{\"size\":1,\"refill_time\":1}}}"),
               "rate_limiter:");
    cr_assert_eq(cfg.drives[1].rate_limiter.bandwidth.size, 1000);
}

Test(api, patch_network_interface_rate_limiters)
{
    cr_assert_eq(put_net("eth0", "tap0", NULL), 204);
    cr_assert_eq(put_net("eth1", "tap1", NULL), 204);
    EXPECT_400(PATCH("/network-interfaces/eth1", "{\"iface_id\":\"eth1\"}"), "before starting");
    start();
    cr_assert_eq(PATCH("/network-interfaces/eth1",
                       "{\"iface_id\":\"eth1\",\"rx_rate_limiter\":{\"bandwidth\":{\"size\":100,"
                       "\"one_time_burst\":50,\"refill_time\":1000}},\"tx_rate_limiter\":"
                       "{\"ops\":{\"size\":3,\"refill_time\":1}}}"),
                 204, "%s", resp.body);
    cr_assert_eq(rl_calls, 1);
    cr_assert_eq(rl_index, 1);
    cr_assert_eq(rl_got[0].bandwidth.one_time_burst, 50);
    cr_assert_eq(rl_got[1].ops.size, 3);
    cr_assert_eq(cfg.nets[1].rx_rate_limiter.bandwidth.size, 100);
    cr_assert_eq(cfg.nets[1].tx_rate_limiter.ops.refill_time_ms, 1);
    cr_assert_eq(cfg.nets[0].rx_rate_limiter.bandwidth.size, 0);
    /* Only tx: rx stays. */
    cr_assert_eq(PATCH("/network-interfaces/eth1",
                       "{\"iface_id\":\"eth1\",\"tx_rate_limiter\":{\"ops\":{\"size\":0,"
                       "\"refill_time\":0}}}"),
                 204, "%s", resp.body);
    cr_assert_eq(cfg.nets[1].rx_rate_limiter.bandwidth.size, 100);
    cr_assert_eq(cfg.nets[1].tx_rate_limiter.ops.size, 0);
    cr_assert_eq(GET("/vm/config"), 200);
    cr_assert(strstr(resp.body, "\"rx_rate_limiter\":{\"bandwidth\":{\"size\":100,"
                                "\"one_time_burst\":50,\"refill_time\":1000},\"ops\":null},"
                                "\"tx_rate_limiter\":null"),
              "%s", resp.body);
    rl_calls = 0;
    EXPECT_400(PATCH("/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"rx_rate_limiter\":"
                                                 "{\"ops\":{\"size\":1}}}"),
               "rx_rate_limiter.ops.refill_time: missing required field");
    EXPECT_400(PATCH("/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"tx_rate_limiter\":"
                                                 "{\"ops\":{\"size\":1,\"refill_time\":1}},"
                                                 "\"rx_rate_limiter\":7}"),
               "'rx_rate_limiter' must be a JSON object");
    EXPECT_400(PATCH("/network-interfaces/eth1", "{\"iface_id\":\"eth1\",\"guest_mac\":"
                                                 "\"06:00:00:00:00:01\"}"),
               "unknown field 'guest_mac'");
    EXPECT_400(PATCH("/network-interfaces/eth1", "{\"tx_rate_limiter\":null}"),
               "missing required field 'iface_id'");
    EXPECT_400(PATCH("/network-interfaces/eth9", "{\"iface_id\":\"eth9\"}"),
               "no network interface 'eth9'");
    EXPECT_400(PATCH("/network-interfaces/eth1", "{\"iface_id\":\"eth0\"}"), "does not match");
    cr_assert_eq(rl_calls, 0);
    cr_assert_eq(cfg.nets[1].rx_rate_limiter.bandwidth.size, 100);
}

Test(api, rate_limiters_in_a_config_file)
{
    char err[512];
    const char *tmpl = "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"network-interfaces\":"
                       "[{\"iface_id\":\"n\",\"host_dev_name\":\"tap5\",\"tx_rate_limiter\":"
                       "{\"bandwidth\":{\"size\":10,\"refill_time\":-3}}}]}";

    cr_assert_neq(load(fmt(tmpl, kernel), err, sizeof(err)), 0);
    cr_assert(strstr(err, "network-interfaces[0]: tx_rate_limiter.bandwidth.refill_time: must be"),
              "%s", err);
    cr_assert_eq(cfg.nnets, 0);
}

/* ---- PUT /serial (Firecracker's SerialDevice) ---- */

Test(api, put_serial_sets_the_output_path)
{
    char dir[] = "/tmp/flint-api-serial-XXXXXX", path[64];

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/out", dir);
    cr_assert_eq(PUT("/serial", fmt("{\"serial_out_path\":\"%s\"}", path)), 204, "%s", resp.body);
    cr_assert_str_eq(ctl.cfg->serial_out_path, path);
    cr_assert_neq(access(path, F_OK), 0, "nothing is created before InstanceStart");
    cr_assert_eq(GET("/vm/config"), 200);
    json_t *j = body_json();
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "serial"), "serial_out_path")), path);
    json_decref(j);
    cr_assert_eq(PUT("/serial", "{\"serial_out_path\":null,\"rate_limiter\":null}"), 204);
    cr_assert_null(ctl.cfg->serial_out_path, "null: back to stdout");
    cr_assert_eq(GET("/vm/config"), 200);
    j = body_json();
    cr_assert_null(json_object_get(j, "serial"), "no key once unset (not in the spec)");
    json_decref(j);
    rmdir(dir);
}

Test(api, put_serial_refuses_bad_bodies_and_changes_nothing)
{
    cr_assert_eq(PUT("/serial", "{\"serial_out_path\":\"/tmp/flint-api-serial-keep\"}"), 204);
    EXPECT_400(PUT("/serial", "{\"serial_out_path\":\"\"}"), "must not be empty");
    EXPECT_400(PUT("/serial", "{\"serial_out_path\":7}"), "must be a string");
    EXPECT_400(PUT("/serial", "{\"serial_out_path\":\"/nonexistent-dir/x\"}"),
               "its directory does not exist");
    EXPECT_400(PUT("/serial", "{\"serial_out_path\":\"/tmp\"}"), "not a regular file");
    EXPECT_400(PUT("/serial", "{\"serial_out_path\":\"/tmp/a\\u0000b\"}"), "malformed JSON");
    EXPECT_400(PUT("/serial", "{\"serial_out_path\":\"/tmp/x\",\"speed\":9600}"),
               "unknown field 'speed'");
    EXPECT_400(PUT("/serial", "{\"rate_limiter\":{\"bandwidth\":null}}"), "rate_limiter");
    EXPECT_400(PUT("/serial", "[]"), "JSON object");
    cr_assert_str_eq(ctl.cfg->serial_out_path, "/tmp/flint-api-serial-keep");
    EXPECT_400(GET("/serial"), "Invalid request method");
}

Test(api, put_serial_is_pre_boot_only)
{
    start();
    cr_assert_eq(PUT("/serial", "{\"serial_out_path\":\"/tmp/x\"}"), 400);
    cr_assert_null(ctl.cfg->serial_out_path);
}

Test(api, config_file_serial_section)
{
    char json[512], err[512];

    snprintf(json, sizeof(json),
             "{\"boot-source\":{\"kernel_image_path\":\"%s\"},"
             "\"serial\":{\"serial_out_path\":\"/tmp/flint-cfg-serial\"}}",
             kernel);
    cr_assert_eq(api_load_config(&ctl, json, strlen(json), err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(ctl.cfg->serial_out_path, "/tmp/flint-cfg-serial");
    snprintf(json, sizeof(json),
             "{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"serial\":{\"serial_out_path\":1}}",
             kernel);
    cr_assert_eq(api_load_config(&ctl, json, strlen(json), err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "serial: 'serial_out_path' must be a string"), "%s", err);
}
