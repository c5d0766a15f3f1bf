/*
 * api_snapshot.c - PUT /snapshot/create and PUT /snapshot/load: their
 * bodies (Firecracker's fields, plus flint's drive_overrides) checked in
 * full before anything acts on them.
 */
#include "api.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* An object with no key but these (`where` names it in messages). */
static int only_keys(json_t *obj, const char *where, const char *const *keys, char *err,
                     size_t errlen)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj))
        return fail_einval(err, errlen, "%s must be a JSON object", where);
    json_object_foreach(obj, key, v)
    {
        size_t i;
        for (i = 0; keys[i] && strcmp(keys[i], key); i++) {
        }
        if (!keys[i])
            return fail_einval(err, errlen, "%s: unknown field '%s'", where, key);
    }
    return 0;
}

/* A non-empty string field; NULL (absent or null) is fine unless required. */
static int get_string(json_t *obj, const char *key, bool required, const char **out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return required ? fail_einval(err, errlen, "missing required field '%s'", key) : 0;
    if (!json_is_string(v) || !json_string_length(v))
        return fail_einval(err, errlen, "'%s' must be a non-empty string", key);
    *out = json_string_value(v);
    return 0;
}

static int get_flag(json_t *obj, const char *key, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail_einval(err, errlen, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int api_parse_snapshot_create(json_t *body, enum snapshot_type *type, const char **state_path,
                              const char **mem_path, char *err, size_t errlen)
{
    static const char *const keys[] = {"snapshot_type", "snapshot_path", "mem_file_path", NULL};
    const char *t;

    if (only_keys(body, "the body", keys, err, errlen) ||
        get_string(body, "snapshot_type", false, &t, err, errlen) ||
        get_string(body, "snapshot_path", true, state_path, err, errlen) ||
        get_string(body, "mem_file_path", true, mem_path, err, errlen))
        return -EINVAL;
    if (!t || !strcmp(t, "Full"))
        *type = SNAPSHOT_FULL;
    else if (!strcmp(t, "Diff"))
        *type = SNAPSHOT_DIFF;
    else
        return fail_einval(err, errlen, "snapshot_type: '%s' is not Full or Diff", t);
    if (!strcmp(*state_path, *mem_path))
        return fail_einval(err, errlen, "snapshot_path and mem_file_path must be different files");
    return 0;
}

static int parse_mem_backend(json_t *body, struct snapshot_load_req *req, char *err, size_t errlen)
{
    static const char *const keys[] = {"backend_type", "backend_path", NULL};
    json_t *mb = json_object_get(body, "mem_backend");
    const char *legacy, *type;

    if (get_string(body, "mem_file_path", false, &legacy, err, errlen))
        return -EINVAL;
    if (mb && json_is_null(mb))
        mb = NULL;
    if (!!legacy == !!mb)
        return fail_einval(err, errlen,
                           "give exactly one of mem_backend and mem_file_path (deprecated)");
    if (legacy) {
        req->mem_path = legacy;
        return 0;
    }
    if (only_keys(mb, "mem_backend", keys, err, errlen) ||
        get_string(mb, "backend_type", true, &type, err, errlen) ||
        get_string(mb, "backend_path", true, &req->mem_path, err, errlen))
        return -EINVAL;
    if (!strcmp(type, "Uffd")) {
        req->uffd_path = req->mem_path;
        req->mem_path = NULL;
        return 0;
    }
    if (strcmp(type, "File"))
        return fail_einval(err, errlen, "mem_backend: backend_type '%s' is not File or Uffd", type);
    return 0;
}

/* [{idkey, pathkey}, ...] into out (at most max entries). */
static int parse_overrides(json_t *body, const char *key, const char *idkey, const char *pathkey,
                           struct snapshot_override *out, unsigned max, unsigned *n, char *err,
                           size_t errlen)
{
    const char *keys[] = {idkey, pathkey, NULL};
    json_t *arr = json_object_get(body, key), *v;
    char where[64];
    size_t i;

    *n = 0;
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return fail_einval(err, errlen, "'%s' must be an array", key);
    if (json_array_size(arr) > max)
        return fail_einval(err, errlen, "'%s': more than %u entries", key, max);
    json_array_foreach(arr, i, v)
    {
        snprintf(where, sizeof(where), "%s[%zu]", key, i);
        if (only_keys(v, where, keys, err, errlen) ||
            get_string(v, idkey, true, &out[i].id, err, errlen) ||
            get_string(v, pathkey, true, &out[i].path, err, errlen))
            return fail_einval(err, errlen, "%s: %s", where, err[0] ? err : "malformed");
        if (!config_valid_id(out[i].id))
            return fail_einval(err, errlen, "%s: '%s' is not a valid id", where, out[i].id);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(out[j].id, out[i].id))
                return fail_einval(err, errlen, "%s: '%s' is overridden twice", where, out[i].id);
        (*n)++;
    }
    return 0;
}

int api_parse_snapshot_load(json_t *body, struct snapshot_load_req *req, char *err, size_t errlen)
{
    static const char *const keys[] = {"snapshot_path",
                                       "mem_backend",
                                       "mem_file_path",
                                       "track_dirty_pages",
                                       "enable_diff_snapshots",
                                       "resume_vm",
                                       "network_overrides",
                                       "vsock_override",
                                       "drive_overrides",
                                       "clock_realtime",
                                       "prefetch", /* flint's: snapshot_ws.h */
                                       NULL};
    static const char *const vsock_keys[] = {"uds_path", NULL};
    json_t *vs;
    char why[256] = "";

    memset(req, 0, sizeof(*req));
    if (only_keys(body, "the body", keys, err, errlen) ||
        get_string(body, "snapshot_path", true, &req->state_path, err, errlen) ||
        parse_mem_backend(body, req, err, errlen) ||
        /* enable_diff_snapshots: Firecracker's deprecated name for it. */
        get_flag(body, "enable_diff_snapshots", &req->track_dirty_pages, err, errlen) ||
        get_flag(body, "track_dirty_pages", &req->track_dirty_pages, err, errlen) ||
        get_flag(body, "resume_vm", &req->resume_vm, err, errlen) ||
        get_flag(body, "clock_realtime", &req->clock_realtime, err, errlen) ||
        get_flag(body, "prefetch", &req->prefetch, err, errlen))
        return -EINVAL;
    if (req->prefetch && !req->mem_path)
        return fail_einval(err, errlen,
                           "prefetch: needs mem_backend File (the working set is mapped "
                           "from the memory file)");
    if (parse_overrides(body, "network_overrides", "iface_id", "host_dev_name", req->nets,
                        CONFIG_MAX_NETS, &req->nnets, why, sizeof(why)) ||
        parse_overrides(body, "drive_overrides", "drive_id", "path_on_host", req->drives,
                        CONFIG_MAX_DRIVES, &req->ndrives, why, sizeof(why)))
        return fail_einval(err, errlen, "%s", why);
    for (unsigned i = 0; i < req->nnets; i++)
        if (config_check_tap_name(req->nets[i].path, "host_dev_name", err, errlen))
            return -EINVAL;
    vs = json_object_get(body, "vsock_override");
    if (vs && !json_is_null(vs) &&
        (only_keys(vs, "vsock_override", vsock_keys, err, errlen) ||
         get_string(vs, "uds_path", true, &req->vsock_uds_path, err, errlen) ||
         config_check_vsock_path(req->vsock_uds_path, "vsock_override.uds_path", err, errlen)))
        return -EINVAL;
    return 0;
}

int api_snapshot_create(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    enum snapshot_type type;
    const char *state, *mem;
    char why[512] = "";

    if (api_parse_snapshot_create(body, &type, &state, &mem, err, errlen))
        return -EINVAL;
    if (ctl->state != API_VM_PAUSED)
        return fail_einval(err, errlen,
                           "snapshots are taken of a paused microVM: PATCH /vm "
                           "{\"state\": \"Paused\"} first");
    if (!ctl->ops->create_snapshot)
        return fail_einval(err, errlen, "snapshots are not available");
    if (ctl->ops->create_snapshot(ctl->opaque, type, state, mem, why, sizeof(why)))
        return fail_einval(err, errlen, "cannot create the snapshot: %s", why);
    return 0;
}

int api_snapshot_load(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    struct snapshot_load_req req;
    char why[512] = "";
    int rc;

    if (api_parse_snapshot_load(body, &req, err, errlen))
        return -EINVAL;
    if (ctl->state != API_VM_NOT_STARTED || ctl->configured)
        return fail_einval(err, errlen,
                           "loading a snapshot is allowed only in a fresh flint process, "
                           "before any configuration call");
    if (!ctl->ops->load_snapshot)
        return fail_einval(err, errlen, "snapshots are not available");
    rc = ctl->ops->load_snapshot(ctl->opaque, &req, why, sizeof(why));
    if (rc) {
        /* As Firecracker: a failed load ends the process. */
        ctl->fatal_status = rc > 0 ? rc : FLINT_EXIT_GENERIC;
        return fail_einval(err, errlen, "cannot load the snapshot: %s; flint exits", why);
    }
    ctl->state = req.resume_vm ? API_VM_RUNNING : API_VM_PAUSED;
    return 0;
}
