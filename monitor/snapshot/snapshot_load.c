/*
 * snapshot_load.c - a fresh process becomes the snapshotted VM: files
 * checked, configuration rebuilt with the user's overrides, VM built
 * around the memory file, state given back. Every check on the files runs
 * before any of the VM is built.
 */
#define _GNU_SOURCE
#include "api.h"
#include "log.h"
#include "snapshot.h"
#include "snapshot_ws.h"
#include "util.h"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int set_field(json_t *arr, const char *idkey, const char *id, const char *key,
                     const char *value)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v)
    {
        json_t *vid = json_object_get(v, idkey);
        if (json_is_string(vid) && !strcmp(json_string_value(vid), id))
            return json_object_set_new(v, key, json_string(value)) ? -ENOMEM : 0;
    }
    return -ENOENT;
}

/* The overrides go into the saved JSON before it is applied, so the
 * configuration's own checks (files opened, names valid) see the new
 * values and never the stale ones. */
static int apply_overrides(json_t *root, const struct snapshot_load_req *req, char *err,
                           size_t errlen)
{
    json_t *vsock = json_object_get(root, "vsock");

    for (unsigned i = 0; i < req->ndrives; i++)
        if (set_field(json_object_get(root, "drives"), "drive_id", req->drives[i].id,
                      "path_on_host", req->drives[i].path)) {
            snprintf(err, errlen, "drive_overrides: the snapshot has no drive '%s'",
                     req->drives[i].id);
            return -EINVAL;
        }
    for (unsigned i = 0; i < req->nnets; i++)
        if (set_field(json_object_get(root, "network-interfaces"), "iface_id", req->nets[i].id,
                      "host_dev_name", req->nets[i].path)) {
            snprintf(err, errlen, "network_overrides: the snapshot has no interface '%s'",
                     req->nets[i].id);
            return -EINVAL;
        }
    if (req->vsock_uds_path) {
        if (!json_is_object(vsock)) {
            snprintf(err, errlen, "vsock_override: the snapshot has no vsock device");
            return -EINVAL;
        }
        json_object_set_new(vsock, "uds_path", json_string(req->vsock_uds_path));
    }
    return 0;
}

/* The saved configuration, applied through the config-file path. A
 * restore loads no kernel and the saved one may be gone: the check of
 * kernel_image_path is given the state file, and the saved path put back
 * for GET /vm/config. */
static int load_config(struct vm_config *cfg, const struct snapshot_image *img,
                       const struct snapshot_load_req *req, char *err, size_t errlen)
{
    struct api_ctl ctl = {.cfg = cfg};
    json_error_t jerr;
    json_t *root = json_loadb(img->config_json, img->config_len, 0, &jerr);
    json_t *boot = root ? json_object_get(root, "boot-source") : NULL;
    char *kernel = NULL, *text = NULL;
    int rc = -EINVAL;

    if (!json_is_object(boot) || !json_is_string(json_object_get(boot, "kernel_image_path"))) {
        snprintf(err, errlen, "the state file's configuration is malformed");
        goto out;
    }
    kernel = strdup(json_string_value(json_object_get(boot, "kernel_image_path")));
    json_object_set_new(boot, "kernel_image_path", json_string(req->state_path));
    json_object_del(boot, "initrd_path");
    if (!kernel || (rc = apply_overrides(root, req, err, errlen)))
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    if (!text || api_load_config(&ctl, text, strlen(text), err, errlen) ||
        config_set_str(&cfg->kernel_path, kernel)) {
        rc = -EINVAL;
        goto out;
    }
    cfg->track_dirty_pages = req->track_dirty_pages;
    cfg->huge_pages = CONFIG_HUGE_PAGES_NONE; /* the memory file is mapped with 4 KiB pages */
    rc = config_validate(cfg, err, errlen);
out:
    free(kernel);
    free(text);
    json_decref(root);
    return rc;
}

static int open_mem_file(const char *path, uint64_t need, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < need) {
        snprintf(err, errlen,
                 "memory file %s: %llu bytes, smaller than the guest's %llu bytes of RAM", path,
                 (unsigned long long)st.st_size, (unsigned long long)need);
        close(fd);
        return -1;
    }
    return fd;
}

int snapshot_load(struct vmm *vmm, struct vm_config *cfg, struct evloop *loop,
                  const struct snapshot_load_req *req, bool *built, char *err, size_t errlen)
{
    struct snapshot_load_opts opts = {.mem_path = req->mem_path,
                                      .clock_realtime = req->clock_realtime};
    struct snapshot_image img;
    char why[400];
    void *buf;
    size_t len = 0;
    int fd, rc;

    *built = false;
    if (snapshot_file_read(req->state_path, &buf, &len, why, sizeof(why))) {
        snprintf(err, errlen, "snapshot_path: %s", why);
        return FLINT_EXIT_BAD_CONFIG;
    }
    if (snapshot_image_parse(buf, len, &img, why, sizeof(why))) {
        snprintf(err, errlen, "snapshot_path %s: %s", req->state_path, why);
        free(buf);
        return FLINT_EXIT_BAD_CONFIG;
    }
    rc = FLINT_EXIT_BAD_CONFIG;
    if (load_config(cfg, &img, req, why, sizeof(why))) {
        snprintf(err, errlen, "snapshot_path %s: configuration: %s", req->state_path, why);
        goto out;
    }
    if (cfg->mem_mib * MIB != img.mem_size) {
        snprintf(err, errlen, "snapshot_path %s: memory size does not match its configuration",
                 req->state_path);
        goto out;
    }
    fd = -1;
    if (req->mem_path && (fd = open_mem_file(req->mem_path, img.mem_size, err, errlen)) < 0)
        goto out;
    log_clear_last_error();
    *built = true;
    if ((rc = vmm_create_restored(vmm, cfg, loop, fd))) {
        snprintf(err, errlen, "%s", log_last_error()[0] ? log_last_error() : "cannot build the VM");
        goto out;
    }
    /* Before any state is set: setting it may touch guest memory. */
    if (req->uffd_path && snapshot_uffd_connect(&vmm->mem, req->uffd_path, why, sizeof(why))) {
        snprintf(err, errlen, "mem_backend Uffd: %s", why);
        rc = FLINT_EXIT_GENERIC;
        goto out;
    }
    if (snapshot_restore_state(vmm, &img, &opts, why, sizeof(why))) {
        snprintf(err, errlen, "snapshot_path %s: restoring: %s", req->state_path, why);
        rc = FLINT_EXIT_GENERIC;
    }
    if (!rc && req->prefetch && req->mem_path &&
        (rc = snapshot_ws_prefetch_file(req->state_path, vmm->mem.map, vmm->mem.size, why,
                                        sizeof(why)))) {
        snprintf(err, errlen, "prefetch: %s", why);
        /* A missing or bad file is the user's input; a failed madvise the host's. */
        rc = rc == -EBADMSG || rc == -ENOENT ? FLINT_EXIT_BAD_CONFIG : FLINT_EXIT_GENERIC;
    }
out:
    snapshot_image_free(&img);
    free(buf);
    return rc;
}
