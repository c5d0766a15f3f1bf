/*
 * api_routes.c - the control API's endpoints: routing, phases, and
 * Firecracker's JSON bodies checked field by field (jansson).
 *
 * Every handler checks the whole body before it changes anything, so a
 * refused request leaves the configuration as it was.
 */
#define _GNU_SOURCE
#include "api.h"
#include "api_cpu_config.h"
#include "api_serial.h"
#include "log.h"
#include "metrics.h"
#include "mmds.h"
#include "util.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ERR_LEN 320

bool api_valid_instance_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > API_INSTANCE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            c != '-')
            return false;
    }
    return true;
}

/* ---- body checks ---- */

enum field_type {
    FIELD_STRING,
    FIELD_BOOL,
    FIELD_UINT,
    FIELD_OBJECT,    /* checked further by its own parser */
    FIELD_NULL_ONLY, /* a Firecracker field flint does not support yet: null only */
};

struct field {
    const char *name;
    enum field_type type;
    bool required;
};

/* The body is an object with only known fields, each of the right type;
 * the required ones are there (with `patch`, none is required but one must
 * be there). A null counts as absent. */
static int check_body(json_t *obj, const struct field *fields, size_t n, bool patch, char *err,
                      size_t errlen)
{
    const char *key;
    json_t *v;
    unsigned present = 0;

    if (!json_is_object(obj))
        return fail_einval(err, errlen, "the body must be a JSON object");
    json_object_foreach(obj, key, v)
    {
        size_t i;
        for (i = 0; i < n && strcmp(fields[i].name, key); i++) {
        }
        if (i == n)
            return fail_einval(err, errlen, "unknown field '%s'", key);
    }
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(obj, fields[i].name);
        if (!v || json_is_null(v)) {
            if (fields[i].required && !patch)
                return fail_einval(err, errlen, "missing required field '%s'", fields[i].name);
            continue;
        }
        present++;
        switch (fields[i].type) {
        case FIELD_STRING:
            if (!json_is_string(v))
                return fail_einval(err, errlen, "'%s' must be a string", fields[i].name);
            break;
        case FIELD_BOOL:
            if (!json_is_boolean(v))
                return fail_einval(err, errlen, "'%s' must be true or false", fields[i].name);
            break;
        case FIELD_UINT:
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return fail_einval(err, errlen, "'%s' must be a non-negative integer",
                                   fields[i].name);
            break;
        case FIELD_OBJECT:
            if (!json_is_object(v))
                return fail_einval(err, errlen, "'%s' must be a JSON object or null",
                                   fields[i].name);
            break;
        case FIELD_NULL_ONLY:
            return fail_einval(err, errlen, "'%s' is not supported by flint yet (only null)",
                               fields[i].name);
        }
    }
    if (patch && !present)
        return fail_einval(err, errlen, "a PATCH needs at least one field");
    return 0;
}

static const char *get_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool get_bool(json_t *obj, const char *key, bool dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static uint64_t get_uint(json_t *obj, const char *key, uint64_t dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : dflt;
}

/* One of `choices` (NULL-terminated) or absent: its index, dflt, or -1. */
/* "a", "a or b", "a, b or c". */
static void format_choices(const char *const *choices, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 0; choices[i] && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s",
                              i == 0 ? "" : (choices[i + 1] ? ", " : " or "), choices[i]);
}

static int get_choice(json_t *obj, const char *key, const char *const *choices, int dflt, char *err,
                      size_t errlen)
{
    const char *s = get_str(obj, key);
    char list[128];

    if (!s)
        return dflt;
    for (int i = 0; choices[i]; i++)
        if (!strcmp(s, choices[i]))
            return i;
    format_choices(choices, list, sizeof(list));
    fail_einval(err, errlen, "'%s' is not a valid %s (%s)", s, key, list);
    return -1;
}

/* The file must open the way the VM will open it, and be a regular file
 * (or, with `block_ok`, a block device). */
static int check_open(const char *path, int flags, bool block_ok, const char *field, char *err,
                      size_t errlen)
{
    int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    bool ok;

    if (fd < 0)
        return fail_einval(err, errlen, "%s: cannot open '%s'%s: %s", field, path,
                           (flags & O_ACCMODE) == O_RDWR ? " read-write" : "", strerror(errno));
    ok = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || (block_ok && S_ISBLK(st.st_mode)));
    close(fd);
    if (!ok)
        return fail_einval(err, errlen, "%s: '%s' is not a regular file%s", field, path,
                           block_ok ? " or a block device" : "");
    return 0;
}

/* strdup that keeps NULL. */
static bool dup_opt(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

/* ---- rate limiters ---- */

/* A TokenBucket {"size", "one_time_burst", "refill_time"} named `name`
 * ("rate_limiter.bandwidth") in messages. */
static int parse_token_bucket(json_t *v, const char *name, struct token_bucket_config *out,
                              char *err, size_t errlen)
{
    static const char *const keys[] = {"size", "one_time_burst", "refill_time"};
    uint64_t val[3] = {0};
    const char *key;
    json_t *f;

    if (!json_is_object(v))
        return fail_einval(err, errlen, "%s: must be a JSON object or null", name);
    json_object_foreach(v, key, f)
    {
        size_t i;
        for (i = 0; i < ARRAY_SIZE(keys) && strcmp(keys[i], key); i++) {
        }
        if (i == ARRAY_SIZE(keys))
            return fail_einval(err, errlen, "%s: unknown field '%s'", name, key);
    }
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        f = json_object_get(v, keys[i]);
        if (!f || json_is_null(f)) {
            if (i != 1)
                return fail_einval(err, errlen, "%s.%s: missing required field", name, keys[i]);
            continue;
        }
        if (!json_is_integer(f) || json_integer_value(f) < 0)
            return fail_einval(err, errlen, "%s.%s: must be a non-negative integer", name, keys[i]);
        val[i] = (uint64_t)json_integer_value(f);
    }
    *out = (struct token_bucket_config){
        .size = val[0], .one_time_burst = val[1], .refill_time_ms = val[2]};
    return 0;
}

/* A RateLimiter {"bandwidth", "ops"} over *out: a bucket that is absent or
 * null keeps its value in *out (PUT starts from none, PATCH from the
 * current one, as Firecracker's update does). *out changes only on
 * success. */
static int parse_rate_limiter(json_t *v, const char *name, struct rate_limiter_config *out,
                              char *err, size_t errlen)
{
    struct rate_limiter_config rl = *out;
    char sub[64];
    const char *key;
    json_t *b;

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail_einval(err, errlen, "%s: must be a JSON object or null", name);
    json_object_foreach(v, key, b)
    {
        if (strcmp(key, "bandwidth") && strcmp(key, "ops"))
            return fail_einval(err, errlen, "%s: unknown field '%s'", name, key);
    }
    b = json_object_get(v, "bandwidth");
    snprintf(sub, sizeof(sub), "%s.bandwidth", name);
    if (b && !json_is_null(b) && parse_token_bucket(b, sub, &rl.bandwidth, err, errlen))
        return -EINVAL;
    b = json_object_get(v, "ops");
    snprintf(sub, sizeof(sub), "%s.ops", name);
    if (b && !json_is_null(b) && parse_token_bucket(b, sub, &rl.ops, err, errlen))
        return -EINVAL;
    *out = rl;
    return 0;
}

static bool token_bucket_set(const struct token_bucket_config *c)
{
    return c->size || c->one_time_burst || c->refill_time_ms;
}

/* null when not set, as Firecracker reports it. */
static json_t *token_bucket_json(const struct token_bucket_config *c)
{
    if (!token_bucket_set(c))
        return json_null();
    return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)c->size, "one_time_burst",
                     (json_int_t)c->one_time_burst, "refill_time", (json_int_t)c->refill_time_ms);
}

static json_t *rate_limiter_json(const struct rate_limiter_config *c)
{
    if (!token_bucket_set(&c->bandwidth) && !token_bucket_set(&c->ops))
        return json_null();
    return json_pack("{s:o, s:o}", "bandwidth", token_bucket_json(&c->bandwidth), "ops",
                     token_bucket_json(&c->ops));
}

/* ---- pre-boot bodies ---- */

static int put_machine_config(struct api_ctl *ctl, json_t *body, bool patch, char *err,
                              size_t errlen)
{
    static const struct field fields[] = {
        {"vcpu_count", FIELD_UINT, true},    {"mem_size_mib", FIELD_UINT, true},
        {"smt", FIELD_BOOL, false},          {"track_dirty_pages", FIELD_BOOL, false},
        {"huge_pages", FIELD_STRING, false}, {"cpu_template", FIELD_STRING, false},
    };
    struct vm_config *cfg = ctl->cfg;
    uint64_t vcpus, mem;
    const char *name;
    bool dirty, smt;
    int huge, tmpl;

    if (check_body(body, fields, ARRAY_SIZE(fields), patch, err, errlen))
        return -EINVAL;
    vcpus = get_uint(body, "vcpu_count", cfg->vcpus);
    mem = get_uint(body, "mem_size_mib", cfg->mem_mib);
    dirty = get_bool(body, "track_dirty_pages", patch ? cfg->track_dirty_pages : false);
    smt = get_bool(body, "smt", patch ? cfg->smt : false);
    if (config_check_vcpus(vcpus, "vcpu_count", err, errlen) ||
        config_check_mem_mib(mem, "mem_size_mib", err, errlen) ||
        config_check_smt(vcpus, smt, "vcpu_count", err, errlen))
        return -EINVAL;
    huge = get_choice(body, "huge_pages", config_huge_pages_names,
                      patch ? (int)cfg->huge_pages : CONFIG_DEFAULT_HUGE_PAGES, err, errlen);
    if (huge < 0 || config_check_huge_pages(mem, huge, "mem_size_mib", err, errlen))
        return -EINVAL;
    /* An absent cpu_template keeps the one set (or PUT /cpu-config's), as
     * in Firecracker; a vendor mismatch is refused at InstanceStart. */
    name = get_str(body, "cpu_template");
    tmpl = name ? cpu_template_parse_name(name) : -1;
    if (name && tmpl < 0)
        return fail_einval(
            err, errlen, "'%s' is not a valid cpu_template (None, C3, T2, T2S, T2CL or T2A)", name);
    if (tmpl >= 0) {
        cpu_template_free(cfg->custom_cpu);
        cfg->custom_cpu = NULL;
        cfg->cpu_template = (enum cpu_template_id)tmpl;
    }
    cfg->vcpus = (unsigned)vcpus;
    cfg->mem_mib = mem;
    cfg->track_dirty_pages = dirty;
    cfg->smt = smt;
    cfg->huge_pages = huge;
    return 0;
}

static int put_boot_source(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    static const struct field fields[] = {
        {"kernel_image_path", FIELD_STRING, true},
        {"boot_args", FIELD_STRING, false},
        {"initrd_path", FIELD_STRING, false},
    };
    struct vm_config *cfg = ctl->cfg;
    const char *kernel, *args, *initrd;
    char *k, *a, *i;

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    kernel = get_str(body, "kernel_image_path");
    args = get_str(body, "boot_args");
    initrd = get_str(body, "initrd_path");
    if (config_check_cmdline(args, "boot_args", err, errlen) ||
        check_open(kernel, O_RDONLY, false, "kernel_image_path", err, errlen) ||
        (initrd && check_open(initrd, O_RDONLY, false, "initrd_path", err, errlen)))
        return -EINVAL;
    bool ok = dup_opt(kernel, &k);
    ok = dup_opt(args, &a) && ok;
    ok = dup_opt(initrd, &i) && ok;
    if (!ok) {
        free(k);
        free(a);
        free(i);
        return fail_einval(err, errlen, "out of memory");
    }
    free(cfg->kernel_path);
    free(cfg->cmdline);
    free(cfg->initrd_path);
    cfg->kernel_path = k;
    cfg->cmdline = a;
    cfg->initrd_path = i;
    return 0;
}

/* The id in the body must be valid and, for /drives/{id} and
 * /network-interfaces/{id}, the one in the path. */
static int check_body_id(const char *body_id, const char *path_id, const char *field, char *err,
                         size_t errlen)
{
    if (!config_valid_id(body_id))
        return fail_einval(err, errlen, "%s: '%s' must be 1-%d letters, digits or '_'", field,
                           body_id, CONFIG_ID_MAX);
    if (path_id && strcmp(body_id, path_id))
        return fail_einval(err, errlen, "%s '%s' in the body does not match '%s' in the path",
                           field, body_id, path_id);
    return 0;
}

static int put_drive(struct api_ctl *ctl, const char *path_id, json_t *body, char *err,
                     size_t errlen)
{
    static const struct field fields[] = {
        {"drive_id", FIELD_STRING, true},    {"is_root_device", FIELD_BOOL, true},
        {"is_read_only", FIELD_BOOL, false}, {"path_on_host", FIELD_STRING, true},
        {"partuuid", FIELD_STRING, false},   {"cache_type", FIELD_STRING, false},
        {"io_engine", FIELD_STRING, false},  {"rate_limiter", FIELD_OBJECT, false},
        {"socket", FIELD_NULL_ONLY, false},
    };
    static const char *const caches[] = {"Unsafe", "Writeback", NULL};
    static const char *const engines[] = {"Sync", "Async", NULL};
    struct vm_config *cfg = ctl->cfg;
    struct drive_config d = {0};
    const char *id, *path, *partuuid;
    int idx, cache, engine;

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    id = get_str(body, "drive_id");
    path = get_str(body, "path_on_host");
    partuuid = get_str(body, "partuuid");
    d.root_device = get_bool(body, "is_root_device", false);
    d.read_only = get_bool(body, "is_read_only", false);
    if (check_body_id(id, path_id, "drive_id", err, errlen))
        return -EINVAL;
    if ((cache = get_choice(body, "cache_type", caches, 0, err, errlen)) < 0 ||
        (engine = get_choice(body, "io_engine", engines, 1, err, errlen)) < 0)
        return -EINVAL;
    if (parse_rate_limiter(json_object_get(body, "rate_limiter"), "rate_limiter", &d.rate_limiter,
                           err, errlen))
        return -EINVAL;
    if (partuuid && (!partuuid[0] || strpbrk(partuuid, " \t\n") || strlen(partuuid) > 64))
        return fail_einval(err, errlen, "partuuid: '%s' must be 1-64 characters without spaces",
                           partuuid);
    idx = config_find_drive(cfg, id);
    if (idx < 0 && cfg->ndrives == CONFIG_MAX_DRIVES)
        return fail_einval(err, errlen, "at most %d drives", CONFIG_MAX_DRIVES);
    for (unsigned i = 0; i < cfg->ndrives && d.root_device; i++)
        if (cfg->drives[i].root_device && (int)i != idx)
            return fail_einval(err, errlen, "is_root_device: drive '%s' is the root device already",
                               cfg->drives[i].id);
    if (check_open(path, d.read_only ? O_RDONLY : O_RDWR, true, "path_on_host", err, errlen))
        return -EINVAL;
    d.cache_writeback = cache == 1;
    d.io_engine_sync = engine == 0;
    if (!dup_opt(id, &d.id) || !dup_opt(path, &d.path) || !dup_opt(partuuid, &d.partuuid)) {
        config_drive_free(&d);
        return fail_einval(err, errlen, "out of memory");
    }
    if (d.io_engine_sync)
        log_info("drive %s: io_engine Sync: flint serves every drive with io_uring", id);
    if (idx >= 0) {
        config_drive_free(&cfg->drives[idx]);
    } else {
        idx = (int)cfg->ndrives++;
    }
    /* The root device goes first: it is /dev/vda. */
    if (d.root_device && idx > 0) {
        memmove(&cfg->drives[1], &cfg->drives[0], (size_t)idx * sizeof(cfg->drives[0]));
        idx = 0;
    }
    cfg->drives[idx] = d;
    return 0;
}

static int put_net(struct api_ctl *ctl, const char *path_id, json_t *body, char *err, size_t errlen)
{
    static const struct field fields[] = {
        {"iface_id", FIELD_STRING, true},         {"host_dev_name", FIELD_STRING, true},
        {"guest_mac", FIELD_STRING, false},       {"rx_rate_limiter", FIELD_OBJECT, false},
        {"tx_rate_limiter", FIELD_OBJECT, false}, {"mtu", FIELD_UINT, false},
    };
    struct vm_config *cfg = ctl->cfg;
    struct net_config n = {0};
    uint64_t mtu;
    const char *id, *tap, *mac;
    int idx;

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    id = get_str(body, "iface_id");
    tap = get_str(body, "host_dev_name");
    mac = get_str(body, "guest_mac");
    if (check_body_id(id, path_id, "iface_id", err, errlen) ||
        config_check_tap_name(tap, "host_dev_name", err, errlen))
        return -EINVAL;
    if (mac && config_parse_mac(mac, n.mac))
        return fail_einval(err, errlen,
                           "guest_mac: '%s' must be six hex bytes XX:XX:XX:XX:XX:XX, not multicast",
                           mac);
    n.has_mac = mac != NULL;
    /* The spec's range; the guest learns it through VIRTIO_NET_F_MTU. */
    mtu = get_uint(body, "mtu", 0);
    if (json_is_integer(json_object_get(body, "mtu")) &&
        (mtu < CONFIG_NET_MTU_MIN || mtu > CONFIG_NET_MTU_MAX))
        return fail_einval(err, errlen, "mtu: %llu is out of range (%d to %d)",
                           (unsigned long long)mtu, CONFIG_NET_MTU_MIN, CONFIG_NET_MTU_MAX);
    n.mtu = (uint16_t)mtu;
    if (parse_rate_limiter(json_object_get(body, "rx_rate_limiter"), "rx_rate_limiter",
                           &n.rx_rate_limiter, err, errlen) ||
        parse_rate_limiter(json_object_get(body, "tx_rate_limiter"), "tx_rate_limiter",
                           &n.tx_rate_limiter, err, errlen))
        return -EINVAL;
    idx = config_find_net(cfg, id);
    if (idx < 0 && cfg->nnets == CONFIG_MAX_NETS)
        return fail_einval(err, errlen, "at most %d network interfaces", CONFIG_MAX_NETS);
    for (unsigned i = 0; i < cfg->nnets; i++) {
        const struct net_config *o = &cfg->nets[i];
        if ((int)i == idx)
            continue;
        if (!strcmp(o->tap, tap))
            return fail_einval(err, errlen, "host_dev_name: '%s' is used by interface '%s'", tap,
                               o->id);
        if (n.has_mac && o->has_mac && !memcmp(o->mac, n.mac, 6))
            return fail_einval(err, errlen, "guest_mac: %s is used by interface '%s'", mac, o->id);
    }
    if (!dup_opt(id, &n.id) || !dup_opt(tap, &n.tap)) {
        config_net_free(&n);
        return fail_einval(err, errlen, "out of memory");
    }
    if (idx >= 0)
        config_net_free(&cfg->nets[idx]);
    else
        idx = (int)cfg->nnets++;
    cfg->nets[idx] = n;
    return 0;
}

/* ---- post-boot bodies ---- */

/* PATCH /drives/{id} after boot (Firecracker's PartialDrive): with
 * path_on_host, the running drive gets a new backing file, opened with its
 * read-only mode, and the guest is told the new capacity; rate_limiter
 * changes live. Everything is checked, and the file opened, before
 * anything changes: a refused PATCH changes nothing. */
static int patch_drive(struct api_ctl *ctl, const char *path_id, json_t *body, char *err,
                       size_t errlen)
{
    static const struct field fields[] = {
        {"drive_id", FIELD_STRING, true},
        {"path_on_host", FIELD_STRING, false},
        {"rate_limiter", FIELD_OBJECT, false},
    };
    struct vm_config *cfg = ctl->cfg;
    struct rate_limiter_config rl;
    const char *id, *path;
    char why[ERR_LEN], *copy = NULL;
    int idx, rc;

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    id = get_str(body, "drive_id");
    if (check_body_id(id, path_id, "drive_id", err, errlen))
        return -EINVAL;
    idx = config_find_drive(cfg, id);
    if (idx < 0)
        return fail_einval(err, errlen, "drive_id: no drive '%s'", id);
    rl = cfg->drives[idx].rate_limiter;
    if (parse_rate_limiter(json_object_get(body, "rate_limiter"), "rate_limiter", &rl, err, errlen))
        return -EINVAL;
    path = get_str(body, "path_on_host");
    if (path) {
        if (!path[0])
            return fail_einval(err, errlen, "path_on_host: empty path");
        if (!ctl->ops->swap_drive)
            return fail_einval(err, errlen,
                               "path_on_host: drives cannot be changed in this process");
        copy = strdup(path);
        if (!copy)
            return fail_einval(err, errlen, "out of memory");
        why[0] = '\0';
        rc = ctl->ops->swap_drive(ctl->opaque, (unsigned)idx, path, why, sizeof(why));
        if (rc) {
            free(copy);
            return fail_einval(err, errlen, "path_on_host: %s", why[0] ? why : strerror(-rc));
        }
        free(cfg->drives[idx].path);
        cfg->drives[idx].path = copy;
    }
    if (!json_object_get(body, "rate_limiter"))
        return 0; /* the buckets keep their state */
    /* After a swap this cannot fail: the device exists (the swap found it). */
    rc = ctl->ops->set_drive_rate_limiter
             ? ctl->ops->set_drive_rate_limiter(ctl->opaque, (unsigned)idx, &rl)
             : 0;
    if (rc)
        return fail_einval(err, errlen, "rate_limiter: %s", strerror(-rc));
    cfg->drives[idx].rate_limiter = rl;
    return 0;
}

/* PATCH /network-interfaces/{id}: the rate limiters change live. */
static int patch_net(struct api_ctl *ctl, const char *path_id, json_t *body, char *err,
                     size_t errlen)
{
    static const struct field fields[] = {
        {"iface_id", FIELD_STRING, true},
        {"rx_rate_limiter", FIELD_OBJECT, false},
        {"tx_rate_limiter", FIELD_OBJECT, false},
    };
    struct vm_config *cfg = ctl->cfg;
    struct rate_limiter_config rx, tx;
    const char *id;
    int idx, rc;

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    id = get_str(body, "iface_id");
    if (check_body_id(id, path_id, "iface_id", err, errlen))
        return -EINVAL;
    idx = config_find_net(cfg, id);
    if (idx < 0)
        return fail_einval(err, errlen, "iface_id: no network interface '%s'", id);
    rx = cfg->nets[idx].rx_rate_limiter;
    tx = cfg->nets[idx].tx_rate_limiter;
    if (parse_rate_limiter(json_object_get(body, "rx_rate_limiter"), "rx_rate_limiter", &rx, err,
                           errlen) ||
        parse_rate_limiter(json_object_get(body, "tx_rate_limiter"), "tx_rate_limiter", &tx, err,
                           errlen))
        return -EINVAL;
    rc = ctl->ops->set_net_rate_limiters
             ? ctl->ops->set_net_rate_limiters(ctl->opaque, (unsigned)idx, &rx, &tx)
             : 0;
    if (rc)
        return fail_einval(err, errlen, "rate limiters: %s", strerror(-rc));
    cfg->nets[idx].rx_rate_limiter = rx;
    cfg->nets[idx].tx_rate_limiter = tx;
    return 0;
}

static int put_vsock(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    static const struct field fields[] = {
        {"guest_cid", FIELD_UINT, true},
        {"uds_path", FIELD_STRING, true},
        {"vsock_id", FIELD_STRING, false}, /* older Firecracker clients send it */
    };
    struct vm_config *cfg = ctl->cfg;
    const char *path;
    uint64_t cid;

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    cid = get_uint(body, "guest_cid", 0);
    path = get_str(body, "uds_path");
    if (config_check_vsock_cid(cid, "guest_cid", err, errlen) ||
        config_check_vsock_path(path, "uds_path", err, errlen))
        return -EINVAL;
    if (config_set_str(&cfg->vsock.uds_path, path))
        return fail_einval(err, errlen, "out of memory");
    cfg->vsock.guest_cid = (uint32_t)cid;
    cfg->vsock.enabled = true;
    return 0;
}

/* ---- JSON views ---- */

/* cpu_template as Firecracker shows it: absent when none was set, "None"
 * for a custom template (PUT /cpu-config). */
static const char *cpu_template_view(const struct vm_config *cfg)
{
    if (cfg->cpu_template == CPU_TEMPLATE_NONE)
        return NULL;
    return cpu_template_name(cfg->cpu_template == CPU_TEMPLATE_CUSTOM ? CPU_TEMPLATE_NONE
                                                                      : cfg->cpu_template);
}

static json_t *machine_config_json(const struct vm_config *cfg)
{
    return json_pack("{s:I, s:I, s:b, s:b, s:s, s:s*}", "vcpu_count", (json_int_t)cfg->vcpus,
                     "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", cfg->smt, "track_dirty_pages",
                     cfg->track_dirty_pages, "huge_pages", config_huge_pages_names[cfg->huge_pages],
                     "cpu_template", cpu_template_view(cfg));
}

static json_t *drive_json(const struct drive_config *d)
{
    return json_pack("{s:s, s:s?, s:b, s:s, s:b, s:s, s:s, s:o}", "drive_id", d->id ? d->id : "",
                     "partuuid", d->partuuid, "is_root_device", d->root_device, "cache_type",
                     d->cache_writeback ? "Writeback" : "Unsafe", "is_read_only", d->read_only,
                     "path_on_host", d->path ? d->path : "", "io_engine",
                     d->io_engine_sync ? "Sync" : "Async", "rate_limiter",
                     rate_limiter_json(&d->rate_limiter));
}

static json_t *net_json(const struct net_config *n)
{
    char mac[18];
    json_t *j;

    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
             n->mac[3], n->mac[4], n->mac[5]);
    j = json_pack("{s:s, s:s, s:s?, s:o, s:o}", "iface_id", n->id ? n->id : "", "host_dev_name",
                  n->tap ? n->tap : "", "guest_mac", n->has_mac ? mac : NULL, "rx_rate_limiter",
                  rate_limiter_json(&n->rx_rate_limiter), "tx_rate_limiter",
                  rate_limiter_json(&n->tx_rate_limiter));
    /* Only when set: absent means "not advertised" in the spec. */
    if (j && n->mtu && json_object_set_new(j, "mtu", json_integer(n->mtu))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* PUT /logger: applies at once, with Firecracker's rules: a missing level
 * goes back to Info (the spec's default; level names in any case), a
 * missing show_level, show_log_origin or module keeps its value.
 * Everything is checked, then the destination opened, before anything
 * changes. */
static int put_logger(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    static const struct field fields[] = {
        {"level", FIELD_STRING, false},    {"log_path", FIELD_STRING, false},
        {"show_level", FIELD_BOOL, false}, {"show_log_origin", FIELD_BOOL, false},
        {"module", FIELD_STRING, false},
    };
    const char *path, *level, *module;
    enum log_level lv = LOG_INFO;
    bool show_level, show_origin;
    char why[ERR_LEN];

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    level = get_str(body, "level");
    if (level && log_parse_level(level, &lv))
        return fail_einval(err, errlen,
                           "level: '%s' is not one of Error, Warning, Info, Debug, Trace, Off",
                           level);
    module = get_str(body, "module");
    if (module && strlen(module) > LOG_MODULE_MAX)
        return fail_einval(err, errlen, "module: longer than %d bytes", LOG_MODULE_MAX);
    path = get_str(body, "log_path");
    if (path && !path[0])
        return fail_einval(err, errlen, "log_path: empty path");
    if (path && log_set_path(path, ctl->instance_id, why, sizeof(why)))
        return fail_einval(err, errlen, "log_path: %s", why);
    log_get_format(&show_level, &show_origin);
    log_set_format(get_bool(body, "show_level", show_level),
                   get_bool(body, "show_log_origin", show_origin));
    if (module)
        log_set_module(module);
    log_set_level(lv);
    return 0;
}

/* PUT /metrics: the destination opens now; lines come after boot. */
static int put_metrics(struct api_ctl *ctl, json_t *body, char *err, size_t errlen)
{
    static const struct field fields[] = {{"metrics_path", FIELD_STRING, true}};
    const char *path;
    char why[ERR_LEN];

    if (check_body(body, fields, ARRAY_SIZE(fields), false, err, errlen))
        return -EINVAL;
    if (!ctl->metrics)
        return fail_einval(err, errlen, "metrics are not available in this process");
    /* Firecracker sets its metrics up once (by --metrics-path or here). */
    if (ctl->metrics->fd >= 0)
        return fail_einval(err, errlen,
                           "metrics are already configured: they can be set up only once");
    path = get_str(body, "metrics_path");
    if (!path[0])
        return fail_einval(err, errlen, "metrics_path: empty path");
    if (metrics_open(ctl->metrics, path, why, sizeof(why)))
        return fail_einval(err, errlen, "metrics_path: %s", why);
    return 0;
}

int api_add_metrics(struct api_ctl *ctl, json_t *counters, json_t *gauges)
{
    const struct api_counters *c = &ctl->counters;
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "get_requests", (json_int_t)c->get,
                          "put_requests", (json_int_t)c->put, "patch_requests",
                          (json_int_t)c->patch, "other_requests", (json_int_t)c->other,
                          "ok_responses", (json_int_t)c->ok, "error_responses",
                          (json_int_t)c->failed, "latency_us_total", (json_int_t)c->latency_us);
    json_t *g = json_pack("{s:I}", "latency_us_max", (json_int_t)c->latency_max_us);

    /* Both calls, always: each takes its value's reference, even NULL's. */
    if (json_object_set_new(counters, "api_server", j) |
        json_object_set_new(gauges, "api_server", g))
        return -ENOMEM;
    ctl->counters.latency_max_us = 0;
    return 0;
}

static json_t *vm_config_json(const struct vm_config *cfg)
{
    json_t *root = json_object(), *drives = json_array(), *nets = json_array(), *boot, *vsock;
    bool ok = root && drives && nets;

    boot = cfg->kernel_path ? json_pack("{s:s, s:s?, s:s?}", "kernel_image_path", cfg->kernel_path,
                                        "boot_args", cfg->cmdline, "initrd_path", cfg->initrd_path)
                            : json_null();
    vsock = cfg->vsock.enabled
                ? json_pack("{s:I, s:s}", "guest_cid", (json_int_t)cfg->vsock.guest_cid, "uds_path",
                            cfg->vsock.uds_path ? cfg->vsock.uds_path : "")
                : json_null();
    for (unsigned i = 0; ok && i < cfg->ndrives; i++)
        ok = !json_array_append_new(drives, drive_json(&cfg->drives[i]));
    for (unsigned i = 0; ok && i < cfg->nnets; i++)
        ok = !json_array_append_new(nets, net_json(&cfg->nets[i]));
    ok = ok && !json_object_set_new(root, "boot-source", boot) &&
         !json_object_set_new(root, "drives", drives) &&
         !json_object_set_new(root, "machine-config", machine_config_json(cfg)) &&
         !json_object_set_new(root, "network-interfaces", nets) &&
         !json_object_set_new(root, "vsock", vsock) &&
         /* A config file's cpu-config is a path; the template is not shown. */
         !json_object_set_new(root, "cpu-config", json_null()) &&
         !json_object_set_new(root, "mmds-config",
                              cfg->mmds ? mmds_config_json(cfg->mmds) : json_null()) &&
         /* Not a key of the spec's FullVmConfiguration: shown once set. */
         (!cfg->serial_out_path || !json_object_set_new(root, "serial", api_serial_json(cfg))) &&
         /* The logger and metrics are the process's, not the VM's. */
         !json_object_set_new(root, "logger", json_null()) &&
         !json_object_set_new(root, "metrics", json_null());
    ok = ok && !api_absent_device_json(root);
    if (!ok) {
        /* json_object_set_new took each value whether it failed or not. */
        json_decref(root);
        return NULL;
    }
    return root;
}

char *api_vm_config_json(const struct vm_config *cfg)
{
    json_t *j = vm_config_json(cfg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    return s;
}

/* ---- routing ---- */

enum phase {
    PHASE_ANY,
    PHASE_PRE_BOOT,
    PHASE_POST_BOOT,
};

struct request {
    struct api_ctl *ctl;
    const char *id; /* the {id} of /drives/{id} and /network-interfaces/{id} */
    json_t *body;   /* PUT and PATCH */
    struct api_response *resp;
    char *err;
    size_t errlen;
};

typedef int (*route_fn)(struct request *r);

struct route {
    const char *path; /* ending in '/' when an {id} follows */
    enum api_method method;
    enum phase phase;
    route_fn fn;
};

/* 200 with a JSON body; takes the reference. */
static int answer_json(struct request *r, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    if (!s)
        return fail_einval(r->err, r->errlen, "out of memory");
    r->resp->status = 200;
    r->resp->body = s;
    return 0;
}

static const char *state_name(enum api_vm_state s)
{
    return s == API_VM_RUNNING ? "Running" : s == API_VM_PAUSED ? "Paused" : "Not started";
}

static int get_instance(struct request *r)
{
    struct api_ctl *c = r->ctl;

    return answer_json(r, json_pack("{s:s, s:s, s:s, s:s}", "id", c->instance_id, "state",
                                    state_name(c->state), "vmm_version", c->vmm_version, "app_name",
                                    API_APP_NAME));
}

static int get_version(struct request *r)
{
    return answer_json(r, json_pack("{s:s}", "firecracker_version", r->ctl->vmm_version));
}

static int get_machine_config(struct request *r)
{
    return answer_json(r, machine_config_json(r->ctl->cfg));
}

static int get_vm_config(struct request *r)
{
    return answer_json(r, vm_config_json(r->ctl->cfg));
}

static int route_put_cpu_config(struct request *r)
{
    return api_put_cpu_config(r->ctl->cfg, r->body, r->err, r->errlen);
}

static int route_put_machine_config(struct request *r)
{
    return put_machine_config(r->ctl, r->body, false, r->err, r->errlen);
}

static int route_patch_machine_config(struct request *r)
{
    return put_machine_config(r->ctl, r->body, true, r->err, r->errlen);
}

static int route_put_boot_source(struct request *r)
{
    return put_boot_source(r->ctl, r->body, r->err, r->errlen);
}

static int route_put_drive(struct request *r)
{
    return put_drive(r->ctl, r->id, r->body, r->err, r->errlen);
}

static int route_put_net(struct request *r)
{
    return put_net(r->ctl, r->id, r->body, r->err, r->errlen);
}

static int route_put_vsock(struct request *r)
{
    return put_vsock(r->ctl, r->body, r->err, r->errlen);
}

static int route_put_serial(struct request *r)
{
    return api_put_serial(r->ctl, r->body, r->err, r->errlen);
}

static int route_put_logger(struct request *r)
{
    return put_logger(r->ctl, r->body, r->err, r->errlen);
}

static int route_put_metrics(struct request *r)
{
    return put_metrics(r->ctl, r->body, r->err, r->errlen);
}

static int route_patch_drive(struct request *r)
{
    return patch_drive(r->ctl, r->id, r->body, r->err, r->errlen);
}

static int route_patch_net(struct request *r)
{
    return patch_net(r->ctl, r->id, r->body, r->err, r->errlen);
}

static int phase_error(struct request *r, bool started)
{
    return fail_einval(r->err, r->errlen,
                       started
                           ? "The requested operation is not supported after starting the microVM"
                           : "The requested operation is not supported before starting the "
                             "microVM");
}

static int instance_start(struct request *r)
{
    struct api_ctl *c = r->ctl;
    char why[ERR_LEN];
    int rc;

    if (c->state != API_VM_NOT_STARTED)
        return fail_einval(r->err, r->errlen, "InstanceStart: the microVM is already running");
    if (!c->cfg->kernel_path)
        return fail_einval(r->err, r->errlen,
                           "InstanceStart: no boot source: PUT /boot-source before starting");
    why[0] = '\0';
    rc = c->ops->start(c->opaque, why, sizeof(why));
    if (rc == 0) {
        c->state = API_VM_RUNNING;
        return 0;
    }
    if (rc > 0)
        c->fatal_status = rc;
    return fail_einval(r->err, r->errlen, "InstanceStart: %s%s", why[0] ? why : "failed",
                       rc > 0 ? "; flint exits" : "");
}

static int put_actions(struct request *r)
{
    static const struct field fields[] = {{"action_type", FIELD_STRING, true}};
    static const char *const actions[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics", NULL};
    struct api_ctl *c = r->ctl;
    const char *action;

    if (check_body(r->body, fields, ARRAY_SIZE(fields), false, r->err, r->errlen))
        return -EINVAL;
    action = get_str(r->body, "action_type");
    if (!strcmp(action, actions[0])) {
        /* The API's other 400s log at Info; a refused start at the
         * default level, so a jailed start can be diagnosed from the log. */
        int rc = instance_start(r);
        if (rc)
            log_error("API: PUT /actions: 400: %s", r->err);
        return rc;
    }
    if (strcmp(action, actions[1]) && strcmp(action, actions[2]))
        return fail_einval(r->err, r->errlen,
                           "action_type: '%s' is not one of InstanceStart, SendCtrlAltDel, "
                           "FlushMetrics",
                           action);
    if (c->state == API_VM_NOT_STARTED)
        return phase_error(r, false);
    if (!strcmp(action, actions[2])) {
        int rc = c->ops->flush_metrics ? c->ops->flush_metrics(c->opaque) : -ENODEV;
        /* Firecracker: with no metrics destination there is nothing to
         * flush, and that is no error. */
        if (rc == -ENODEV)
            return 0;
        if (rc == -EAGAIN)
            return fail_einval(r->err, r->errlen,
                               "FlushMetrics: the metrics destination could not take the line now "
                               "(dropped)");
        if (rc)
            return fail_einval(r->err, r->errlen, "FlushMetrics: %s", strerror(-rc));
        return 0;
    }
    if (c->ops->ctrl_alt_del(c->opaque))
        return fail_einval(r->err, r->errlen,
                           "SendCtrlAltDel: the guest has not read the previous keys yet");
    return 0;
}

static int patch_vm(struct request *r)
{
    static const struct field fields[] = {{"state", FIELD_STRING, true}};
    static const char *const states[] = {"Paused", "Resumed", NULL};
    struct api_ctl *c = r->ctl;
    int want, rc;

    if (check_body(r->body, fields, ARRAY_SIZE(fields), false, r->err, r->errlen) ||
        (want = get_choice(r->body, "state", states, -1, r->err, r->errlen)) < 0)
        return -EINVAL;
    if (want == 0 && c->state == API_VM_RUNNING) {
        rc = c->ops->pause(c->opaque);
        if (rc)
            return fail_einval(r->err, r->errlen, "cannot pause the microVM: %s", strerror(-rc));
        c->state = API_VM_PAUSED;
    } else if (want == 1 && c->state == API_VM_PAUSED) {
        c->ops->resume(c->opaque);
        c->state = API_VM_RUNNING;
    }
    return 0;
}

static int route_snapshot_create(struct request *r)
{
    return api_snapshot_create(r->ctl, r->body, r->err, r->errlen);
}

static int route_snapshot_load(struct request *r)
{
    return api_snapshot_load(r->ctl, r->body, r->err, r->errlen);
}

static const struct route routes[] = {
    {"/", API_METHOD_GET, PHASE_ANY, get_instance},
    {"/version", API_METHOD_GET, PHASE_ANY, get_version},
    {"/machine-config", API_METHOD_GET, PHASE_ANY, get_machine_config},
    {"/machine-config", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_machine_config},
    {"/machine-config", API_METHOD_PATCH, PHASE_PRE_BOOT, route_patch_machine_config},
    {"/vm/config", API_METHOD_GET, PHASE_ANY, get_vm_config},
    {"/cpu-config", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_cpu_config},
    {"/boot-source", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_boot_source},
    {"/drives/", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_drive},
    {"/drives/", API_METHOD_PATCH, PHASE_POST_BOOT, route_patch_drive},
    {"/network-interfaces/", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_net},
    {"/network-interfaces/", API_METHOD_PATCH, PHASE_POST_BOOT, route_patch_net},
    {"/vsock", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_vsock},
    {"/logger", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_logger},
    {"/metrics", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_metrics},
    {"/actions", API_METHOD_PUT, PHASE_ANY, put_actions},
    {"/vm", API_METHOD_PATCH, PHASE_POST_BOOT, patch_vm},
    {"/snapshot/create", API_METHOD_PUT, PHASE_POST_BOOT, route_snapshot_create},
    {"/snapshot/load", API_METHOD_PUT, PHASE_PRE_BOOT, route_snapshot_load},
    {"/serial", API_METHOD_PUT, PHASE_PRE_BOOT, route_put_serial},
};

/* Firecracker endpoints flint does not have yet (docs/API.md). */
static const char *const later_paths[] = {
    "/metrics",
};

/* Does `path` match the route's path; *id gets the {id} part. */
static bool path_matches(const char *route, const char *path, const char **id)
{
    size_t n = strlen(route);

    *id = NULL;
    if (route[n - 1] != '/' || n == 1)
        return !strcmp(route, path);
    if (strncmp(route, path, n))
        return false;
    *id = path + n;
    return true;
}

static bool later_path(const char *path)
{
    for (size_t i = 0; i < ARRAY_SIZE(later_paths); i++) {
        size_t n = strlen(later_paths[i]);
        if (!strncmp(path, later_paths[i], n) && (path[n] == '\0' || path[n] == '/'))
            return true;
    }
    return false;
}

static int parse_body(struct request *r, const char *body, size_t len)
{
    json_error_t jerr;

    if (!body || len == 0)
        return fail_einval(r->err, r->errlen, "missing JSON body");
    r->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!r->body)
        return fail_einval(r->err, r->errlen, "malformed JSON body: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
    return 0;
}

static int dispatch(struct request *r, enum api_method method, const char *method_name,
                    const char *path, const char *body, size_t len)
{
    const struct route *rt = NULL;
    bool path_known = false;
    const char *id = NULL;

    if (strchr(path, '?'))
        return fail_einval(r->err, r->errlen, "query strings are not supported: %s", path);
    if (api_absent_device_path(path, r->err, r->errlen))
        return -EINVAL;
    /* As Firecracker's parser: a GET carries no body (its wording too). */
    if (method == API_METHOD_GET && len > 0)
        return fail_einval(r->err, r->errlen, "GET request cannot have a body.");
    if (api_mmds_path(path))
        return api_mmds_dispatch(r->ctl, method, method_name, path, body, len, r->resp, r->err,
                                 r->errlen);
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (!path_matches(routes[i].path, path, &id))
            continue;
        path_known = true;
        if (routes[i].method == method) {
            rt = &routes[i];
            break;
        }
    }
    if (!rt && !path_known && later_path(path))
        return fail_einval(r->err, r->errlen, "%s is not supported by flint yet", path);
    if (!rt)
        return fail_einval(r->err, r->errlen, "Invalid request method and/or path: %s %s",
                           method_name, path);
    if (id && !config_valid_id(id))
        return fail_einval(r->err, r->errlen,
                           "invalid id '%s' in the path: ids are 1-%d letters, digits or '_'", id,
                           CONFIG_ID_MAX);
    r->id = id;
    if (rt->phase == PHASE_PRE_BOOT && r->ctl->state != API_VM_NOT_STARTED)
        return phase_error(r, true);
    if (rt->phase == PHASE_POST_BOOT && r->ctl->state == API_VM_NOT_STARTED)
        return phase_error(r, false);
    if (method != API_METHOD_GET && parse_body(r, body, len))
        return -EINVAL;
    if (rt->fn(r))
        return -EINVAL;
    /* Firecracker loads snapshots only into an unconfigured process; the
     * logger and metrics are the process's, not the VM's. */
    if (rt->phase == PHASE_PRE_BOOT && strcmp(path, "/logger") && strcmp(path, "/metrics") &&
        rt->fn != route_snapshot_load)
        r->ctl->configured = true;
    return 0;
}

/* fault_message must be valid UTF-8 for jansson: anything but printable
 * ASCII (it may echo a path or a key) becomes '?'. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

static char *fault_json(char *msg)
{
    json_t *j;
    char *s;

    sanitize(msg);
    j = json_pack("{s:s}", "fault_message", msg);
    s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

void api_handle(struct api_ctl *ctl, enum api_method method, const char *path, const char *body,
                size_t body_len, struct api_response *resp)
{
    static const char *const names[] = {"GET", "PUT", "PATCH", "?"};
    char err[ERR_LEN] = "";
    struct request r = {.ctl = ctl, .resp = resp, .err = err, .errlen = sizeof(err)};
    struct api_counters *c = &ctl->counters;
    struct timespec t0, t1;
    uint64_t us;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    resp->status = 204;
    resp->body = NULL;
    rc = dispatch(&r, method, names[method], path, body, body_len);
    if (rc) {
        free(resp->body);
        resp->status = rc == -EFBIG ? 413 : 400;
        log_info("API: %s %s: %d: %s", names[method], path, resp->status, err);
        resp->body = fault_json(err);
    }
    json_decref(r.body);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    c->get += method == API_METHOD_GET;
    c->put += method == API_METHOD_PUT;
    c->patch += method == API_METHOD_PATCH;
    c->other += method == API_METHOD_OTHER;
    c->ok += resp->status < 300;
    c->failed += resp->status >= 300;
    c->latency_us += us;
    if (us > c->latency_max_us)
        c->latency_max_us = us;
}

/* ---- config file ---- */

static int load_array(struct api_ctl *ctl, json_t *arr, const char *key,
                      int (*put)(struct api_ctl *, const char *, json_t *, char *, size_t),
                      char *err, size_t errlen)
{
    char why[ERR_LEN];
    size_t i;
    json_t *v;

    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return fail_einval(err, errlen, "%s: must be an array", key);
    json_array_foreach(arr, i, v)
    {
        if (put(ctl, NULL, v, why, sizeof(why)))
            return fail_einval(err, errlen, "%s[%zu]: %s", key, i, why);
    }
    return 0;
}

static bool known_key(const char *key)
{
    static const char *const keys[] = {
        "boot-source", "drives",  "machine-config", "network-interfaces", "vsock",
        "logger",      "metrics", "cpu-config",     "mmds-config",        "serial"};

    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (!strcmp(key, keys[i]))
            return true;
    return api_absent_device_section(key, NULL, NULL, 0) == 0;
}

static int load_config(struct api_ctl *ctl, json_t *root, char *err, size_t errlen)
{
    char why[ERR_LEN];
    const char *key;
    json_t *v;

    if (!json_is_object(root))
        return fail_einval(err, errlen, "the file must hold one JSON object");
    json_object_foreach(root, key, v)
    {
        if (!known_key(key))
            return fail_einval(err, errlen, "unknown key '%s'", key);
        if (api_absent_device_section(key, v, why, sizeof(why)) < 0)
            return fail_einval(err, errlen, "%s: %s", key, why);
    }
    v = json_object_get(root, "logger");
    if (v && !json_is_null(v) && put_logger(ctl, v, why, sizeof(why)))
        return fail_einval(err, errlen, "logger: %s", why);
    v = json_object_get(root, "metrics");
    if (v && !json_is_null(v) && put_metrics(ctl, v, why, sizeof(why)))
        return fail_einval(err, errlen, "metrics: %s", why);
    v = json_object_get(root, "machine-config");
    if (v && !json_is_null(v) && put_machine_config(ctl, v, false, why, sizeof(why)))
        return fail_einval(err, errlen, "machine-config: %s", why);
    /* After machine-config, so a template file wins over its cpu_template,
     * as in Firecracker. */
    v = json_object_get(root, "cpu-config");
    if (v && !json_is_null(v) && !json_is_string(v))
        return fail_einval(err, errlen, "cpu-config: must be the path of a CPU template file");
    if (v && json_is_string(v) &&
        api_load_cpu_config_file(ctl->cfg, json_string_value(v), err, errlen))
        return -EINVAL;
    v = json_object_get(root, "boot-source");
    if (!v || json_is_null(v))
        return fail_einval(err, errlen, "missing required key 'boot-source'");
    if (put_boot_source(ctl, v, why, sizeof(why)))
        return fail_einval(err, errlen, "boot-source: %s", why);
    if (load_array(ctl, json_object_get(root, "drives"), "drives", put_drive, err, errlen) ||
        load_array(ctl, json_object_get(root, "network-interfaces"), "network-interfaces", put_net,
                   err, errlen))
        return -EINVAL;
    v = json_object_get(root, "vsock");
    if (v && !json_is_null(v) && put_vsock(ctl, v, why, sizeof(why)))
        return fail_einval(err, errlen, "vsock: %s", why);
    v = json_object_get(root, "mmds-config");
    if (v && !json_is_null(v) && api_mmds_configure(ctl->cfg, v, why, sizeof(why)))
        return fail_einval(err, errlen, "mmds-config: %s", why);
    v = json_object_get(root, "serial");
    if (v && !json_is_null(v) && api_put_serial(ctl, v, why, sizeof(why)))
        return fail_einval(err, errlen, "serial: %s", why);
    return 0;
}

int api_load_config(struct api_ctl *ctl, const char *json, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    if (!root)
        return fail_einval(err, errlen, "malformed JSON: %s (line %d, column %d)", jerr.text,
                           jerr.line, jerr.column);
    rc = load_config(ctl, root, err, errlen);
    json_decref(root);
    return rc;
}

#define CONFIG_FILE_MAX (1024 * 1024)

int api_load_config_file(struct api_ctl *ctl, const char *path, char *err, size_t errlen)
{
    char why[ERR_LEN];
    struct stat st;
    char *buf;
    ssize_t n;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_einval(err, errlen, "config file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
        close(fd);
        return fail_einval(err, errlen, "config file %s: not a regular file of at most %d bytes",
                           path, CONFIG_FILE_MAX);
    }
    buf = malloc((size_t)st.st_size + 1);
    n = buf ? 0 : -1;
    while (buf && n < st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)(st.st_size - n));
        if (k <= 0) {
            n = k < 0 ? -1 : n;
            break;
        }
        n += k;
    }
    close(fd);
    if (n < 0) {
        free(buf);
        return fail_einval(err, errlen, "config file %s: cannot read it", path);
    }
    rc = api_load_config(ctl, buf, (size_t)n, why, sizeof(why));
    free(buf);
    if (rc)
        return fail_einval(err, errlen, "config file %s: %s", path, why);
    return 0;
}
