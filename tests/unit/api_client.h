/*
 * api_client.h - drive the control API's routes in-process, as a client
 * would, against tests/fake_vm.h: one api_ctl over a fresh vm_config, the
 * last answer in api_resp, and JSON helpers. Header-only, for the API's
 * parity and conformance tests.
 */
#ifndef FLINT_TESTS_API_CLIENT_H
#define FLINT_TESTS_API_CLIENT_H

#include <criterion/criterion.h>

#include "api.h"
#include "fake_vm.h"
#include "metrics.h"

#include "mmds.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct vm_config api_cfg;
static struct api_ctl api_ctl;
static struct api_response api_resp;
static struct metrics api_metrics;
static struct mmds api_mmds;
/* Files the bodies name: a kernel, a drive image, a log and a metrics file. */
static char api_kernel[64], api_disk[64], api_log[64], api_metrics_path[64];

static void api_client_file(char *path, const char *tmpl)
{
    strcpy(path, tmpl);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "data", 4), 4);
    close(fd);
}

static void api_client_setup(void)
{
    config_init(&api_cfg);
    memset(&api_ctl, 0, sizeof(api_ctl));
    memset(&api_resp, 0, sizeof(api_resp));
    metrics_init(&api_metrics);
    cr_assert_eq(mmds_init(&api_mmds, 0), 0);
    api_cfg.mmds = &api_mmds;
    api_ctl.cfg = &api_cfg;
    api_ctl.instance_id = "conformance";
    api_ctl.vmm_version = "1.2.3";
    api_ctl.ops = &fake_vm_ops;
    api_ctl.metrics = &api_metrics;
    fake_vm_start_rc = 0;
    api_client_file(api_kernel, "/tmp/flint-conf-kernel-XXXXXX");
    api_client_file(api_disk, "/tmp/flint-conf-disk-XXXXXX");
    api_client_file(api_log, "/tmp/flint-conf-log-XXXXXX");
    api_client_file(api_metrics_path, "/tmp/flint-conf-metrics-XXXXXX");
}

static void api_client_teardown(void)
{
    free(api_resp.body);
    api_resp.body = NULL;
    metrics_close(&api_metrics);
    api_cfg.mmds = NULL;
    config_free(&api_cfg);
    mmds_fini(&api_mmds);
    unlink(api_kernel);
    unlink(api_disk);
    unlink(api_log);
    unlink(api_metrics_path);
}

static int api_call(enum api_method m, const char *path, const char *body)
{
    free(api_resp.body);
    api_resp.body = NULL;
    api_handle(&api_ctl, m, path, body, body ? strlen(body) : 0, &api_resp);
    return api_resp.status;
}

/* `tmpl` with %K, %D, %L, %M replaced by the kernel, disk, log and metrics
 * paths (static buffer). */
static const char *api_body(const char *tmpl)
{
    static char out[2048];
    size_t o = 0;

    for (const char *p = tmpl; *p && o < sizeof(out) - 80; p++) {
        const char *sub = NULL;
        if (p[0] == '%' && p[1]) {
            sub = p[1] == 'K'   ? api_kernel
                  : p[1] == 'D' ? api_disk
                  : p[1] == 'L' ? api_log
                  : p[1] == 'M' ? api_metrics_path
                                : NULL;
        }
        if (sub) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", sub);
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

/* The last answer's body as JSON (which it must be). */
static json_t *api_json(void)
{
    json_error_t e;
    json_t *j = json_loads(api_resp.body ? api_resp.body : "", 0, &e);
    cr_assert_not_null(j, "not JSON: %s", api_resp.body);
    return j;
}

/* The last answer's fault_message ("" when there is none). */
static const char *api_fault(void)
{
    static char msg[512];
    json_t *j = api_json();
    const char *m = json_string_value(json_object_get(j, "fault_message"));

    cr_assert_eq(json_object_size(j), 1, "an error body is {\"fault_message\"} only: %s",
                 api_resp.body);
    snprintf(msg, sizeof(msg), "%s", m ? m : "");
    json_decref(j);
    return msg;
}

#define API_EXPECT_400(got, needle)                                                                \
    do {                                                                                           \
        cr_assert_eq((got), 400, "status %d, body %s", api_resp.status, api_resp.body);            \
        cr_assert(strstr(api_fault(), (needle)), "fault_message '%s' lacks '%s'", api_fault(),     \
                  (needle));                                                                       \
    } while (0)

#endif /* FLINT_TESTS_API_CLIENT_H */
