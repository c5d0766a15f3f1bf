/*
 * api_absent.c - the Firecracker devices flint does not offer, by design:
 * balloon (virtio-balloon), entropy (virtio-rng), pmem (virtio-pmem) and
 * memory hotplug (virtio-mem). Each device is guest-facing attack surface
 * and work at boot; flint offers block, net and vsock only (docs/API.md,
 * docs/SECURITY.md). Their endpoints answer one 400, the same for every
 * method and phase, and a config file may name them only empty.
 */
#include "api.h"
#include "util.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct absent_device {
    const char *path;       /* the endpoint and everything under it */
    const char *config_key; /* its --config-file / GET /vm/config key */
    const char *name;
    bool is_array; /* "pmem" is a list of devices, the rest one object */
};

static const struct absent_device absent_devices[] = {
    {"/balloon", "balloon", "the balloon device (virtio-balloon)", false},
    {"/entropy", "entropy", "the entropy device (virtio-rng)", false},
    {"/pmem", "pmem", "pmem devices (virtio-pmem)", true},
    {"/hotplug/memory", "memory-hotplug", "memory hotplug (virtio-mem)", false},
};

static int absent_fail(const struct absent_device *d, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "flint does not offer %s, by design: every device is attack surface the guest "
             "can reach and work at boot; flint has block, net and vsock (docs/API.md)",
             d->name);
    return -EINVAL;
}

int api_absent_device_path(const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_SIZE(absent_devices); i++) {
        size_t n = strlen(absent_devices[i].path);
        if (!strncmp(path, absent_devices[i].path, n) && (path[n] == '\0' || path[n] == '/'))
            return absent_fail(&absent_devices[i], err, errlen);
    }
    return 0;
}

int api_absent_device_section(const char *key, const json_t *v, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_SIZE(absent_devices); i++) {
        const struct absent_device *d = &absent_devices[i];
        if (strcmp(key, d->config_key))
            continue;
        if (!v || json_is_null(v) || (d->is_array && json_is_array(v) && !json_array_size(v)))
            return 0;
        return absent_fail(d, err, errlen);
    }
    return 1;
}

int api_absent_device_json(json_t *root)
{
    for (size_t i = 0; i < ARRAY_SIZE(absent_devices); i++) {
        const struct absent_device *d = &absent_devices[i];
        if (json_object_set_new(root, d->config_key, d->is_array ? json_array() : json_null()))
            return -ENOMEM;
    }
    return 0;
}
