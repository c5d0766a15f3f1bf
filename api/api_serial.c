/*
 * api_serial.c - Firecracker's SerialDevice ({"serial_out_path": PATH}).
 */
#define _GNU_SOURCE
#include "api_serial.h"
#include "util.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What InstanceStart will open must be there to open: an existing regular
 * file or named pipe, or a new file in an existing directory. Checked
 * without creating anything, so a refused request leaves no trace. */
static int check_out_path(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;

    if (!*path)
        return fail_einval(err, errlen, "serial_out_path: must not be empty");
    if (strlen(path) >= PATH_MAX)
        return fail_einval(err, errlen, "serial_out_path: longer than %d bytes", PATH_MAX - 1);
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
            return fail_einval(err, errlen, "serial_out_path %s: not a regular file or named pipe",
                               path);
        return 0;
    }
    if (errno != ENOENT)
        return fail_einval(err, errlen, "serial_out_path %s: %s", path, strerror(errno));
    snprintf(dir, sizeof(dir), "%s", path);
    if (stat(dirname(dir), &st) < 0 || !S_ISDIR(st.st_mode))
        return fail_einval(err, errlen, "serial_out_path %s: its directory does not exist", path);
    return 0;
}

int api_put_serial(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    json_t *path_j, *rl;
    const char *key, *path = NULL;
    json_t *v;
    char *copy = NULL;

    if (!json_is_object(body))
        return fail_einval(err, errlen, "the body must be a JSON object");
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "serial_out_path") && strcmp(key, "rate_limiter"))
            return fail_einval(err, errlen, "unknown field '%s'", key);
    }
    rl = json_object_get(body, "rate_limiter");
    if (rl && !json_is_null(rl))
        return fail_einval(err, errlen, "'rate_limiter' is not supported by flint yet (only null)");
    path_j = json_object_get(body, "serial_out_path");
    if (path_j && !json_is_null(path_j)) {
        if (!json_is_string(path_j))
            return fail_einval(err, errlen, "'serial_out_path' must be a string");
        path = json_string_value(path_j);
        if (strlen(path) != json_string_length(path_j))
            return fail_einval(err, errlen, "serial_out_path: contains a NUL byte");
        if (check_out_path(path, err, errlen))
            return -EINVAL;
        copy = strdup(path);
        if (!copy)
            return fail_einval(err, errlen, "out of memory");
    }
    free(ctl->cfg->serial_out_path);
    ctl->cfg->serial_out_path = copy;
    return 0;
}

json_t *api_serial_json(const struct vm_config *cfg)
{
    return cfg->serial_out_path ? json_pack("{s:s}", "serial_out_path", cfg->serial_out_path)
                                : json_null();
}
