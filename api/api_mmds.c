/*
 * api_mmds.c - the control API's MMDS endpoints: PUT/PATCH/GET /mmds (any
 * phase) and PUT /mmds/config (before boot), over the store in mmds.h.
 */
#define _GNU_SOURCE
#include "api.h"
#include "mmds.h"
#include "util.h"

#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool api_mmds_path(const char *path)
{
    return !strcmp(path, "/mmds") || !strcmp(path, "/mmds/config");
}

/* Any JSON value (Firecracker's store is untyped). */
static json_t *parse_json(const char *body, size_t len, const char *method, char *err,
                          size_t errlen)
{
    json_error_t jerr;
    json_t *j;

    if (!body || len == 0) {
        fail_einval(err, errlen, "Empty %s request.", method);
        return NULL;
    }
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j)
        fail_einval(err, errlen, "malformed JSON body: %s (line %d, column %d)", jerr.text,
                    jerr.line, jerr.column);
    return j;
}

static int store_error(int rc, const char *what, char *err, size_t errlen)
{
    if (rc == -EFBIG) {
        fail_einval(err, errlen,
                    "%s: the MMDS data store would exceed its limit (--mmds-size-limit)", what);
        return -EFBIG;
    }
    if (rc == -ENOENT)
        return fail_einval(err, errlen,
                           "%s: the MMDS data store is not initialized: PUT /mmds first", what);
    return fail_einval(err, errlen, "%s: %s", what, strerror(-rc));
}

static int mmds_data(struct mmds *m, enum api_method method, const char *body, size_t len,
                     struct api_response *resp, char *err, size_t errlen)
{
    const char *name = method == API_METHOD_PUT ? "PUT" : "PATCH";
    json_t *j;
    int rc;

    if (method == API_METHOD_GET) {
        if (body && len)
            return fail_einval(err, errlen, "GET request cannot have a body.");
        resp->body = mmds_dump(m);
        if (!resp->body)
            return fail_einval(err, errlen, "out of memory");
        resp->status = 200;
        return 0;
    }
    j = parse_json(body, len, name, err, errlen);
    if (!j)
        return -EINVAL;
    rc = method == API_METHOD_PUT ? mmds_put(m, j) : mmds_patch(m, j);
    json_decref(j);
    return rc ? store_error(rc, name, err, errlen) : 0;
}

static int mmds_config(struct api_ctl *ctl, const char *body, size_t len, char *err, size_t errlen)
{
    json_t *j;
    int rc;

    if (ctl->state != API_VM_NOT_STARTED)
        return fail_einval(err, errlen,
                           "The requested operation is not supported after starting the microVM");
    j = parse_json(body, len, "PUT", err, errlen);
    if (!j)
        return -EINVAL;
    rc = api_mmds_configure(ctl->cfg, j, err, errlen);
    json_decref(j);
    return rc;
}

int api_mmds_configure(struct vm_config *cfg, json_t *body, char *err, size_t errlen)
{
    const char *ids[CONFIG_MAX_NETS];
    unsigned n = 0;

    if (!cfg->mmds)
        return fail_einval(err, errlen, "MMDS is not available in this process");
    for (unsigned i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].id)
            ids[n++] = cfg->nets[i].id;
    return mmds_configure(cfg->mmds, body, ids, n, err, errlen);
}

int api_mmds_dispatch(struct api_ctl *ctl, enum api_method method, const char *method_name,
                      const char *path, const char *body, size_t len, struct api_response *resp,
                      char *err, size_t errlen)
{
    struct mmds *m = ctl->cfg->mmds;
    bool config = !strcmp(path, "/mmds/config");

    if (config ? method != API_METHOD_PUT : method == API_METHOD_OTHER)
        return fail_einval(err, errlen, "Invalid request method and/or path: %s %s", method_name,
                           path);
    if (!m)
        return fail_einval(err, errlen, "MMDS is not available in this process");
    if (config)
        return mmds_config(ctl, body, len, err, errlen);
    return mmds_data(m, method, body, len, resp, err, errlen);
}

int api_mmds_load_file(struct mmds *m, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    int rc;

    if (!j)
        return fail_einval(err, errlen, "--metadata %s: %s (line %d, column %d)", path, jerr.text,
                           jerr.line, jerr.column);
    rc = mmds_put(m, j);
    json_decref(j);
    if (rc == -EFBIG)
        return fail_einval(err, errlen,
                           "--metadata %s: larger than the MMDS size limit (%zu bytes)", path,
                           m->size_limit);
    return rc ? fail_einval(err, errlen, "--metadata %s: %s", path, strerror(-rc)) : 0;
}
