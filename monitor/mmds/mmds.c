/*
 * mmds.c - the MMDS store: the document, its size limit, lookups in JSON
 * or IMDS text, and the configuration.
 *
 * Output matches Firecracker's: compact JSON with keys in byte order (its
 * serde_json map is ordered), IMDS listings in the same order.
 */
#define _GNU_SOURCE
#include "mmds.h"
#include "util.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DUMP_FLAGS       (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
#define PATH_SEGMENT_MAX 1024

int mmds_init(struct mmds *m, size_t size_limit)
{
    memset(m, 0, sizeof(*m));
    m->size_limit = size_limit ? size_limit : MMDS_DEFAULT_SIZE_LIMIT;
    m->cfg.version = MMDS_V1;
    m->cfg.ipv4 = MMDS_DEFAULT_IPV4;
    if (getrandom(m->rng_key, sizeof(m->rng_key), 0) != (ssize_t)sizeof(m->rng_key))
        return errno ? -errno : -EIO;
    return 0;
}

void mmds_fini(struct mmds *m)
{
    json_decref(m->doc);
    m->doc = NULL;
    explicit_bzero(m->rng_key, sizeof(m->rng_key));
}

/* The bytes of compact JSON `v` takes (serde's to_vec length), or
 * SIZE_MAX when it cannot be encoded. */
static size_t json_size(const json_t *v)
{
    char *s = json_dumps(v, DUMP_FLAGS);
    size_t n = s ? strlen(s) : SIZE_MAX;

    free(s);
    return n;
}

int mmds_put(struct mmds *m, json_t *doc)
{
    size_t n = json_size(doc);

    if (n == SIZE_MAX)
        return -ENOMEM;
    if (n > m->size_limit)
        return -EFBIG;
    json_decref(m->doc);
    m->doc = json_incref(doc);
    return 0;
}

/* RFC 7396 §2: returns the merged value (a new reference), NULL when out
 * of memory. `target` may be NULL (absent). Recursion depth is bounded by
 * the patch's, which jansson's parser bounds (JSON_PARSER_MAX_DEPTH). */
static json_t *merge_patch(json_t *target, json_t *patch)
{
    const char *key;
    json_t *v, *out;

    if (!json_is_object(patch))
        return json_deep_copy(patch);
    out = json_is_object(target) ? json_deep_copy(target) : json_object();
    if (!out)
        return NULL;
    json_object_foreach(patch, key, v)
    {
        json_t *merged;
        if (json_is_null(v)) {
            json_object_del(out, key);
            continue;
        }
        merged = merge_patch(json_object_get(out, key), v);
        if (!merged || json_object_set_new(out, key, merged)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

int mmds_patch(struct mmds *m, json_t *patch)
{
    json_t *next;
    size_t n;

    if (!m->doc)
        return -ENOENT;
    next = merge_patch(m->doc, patch);
    if (!next)
        return -ENOMEM;
    n = json_size(next);
    if (n == SIZE_MAX || n > m->size_limit) {
        json_decref(next);
        return n == SIZE_MAX ? -ENOMEM : -EFBIG;
    }
    json_decref(m->doc);
    m->doc = next;
    return 0;
}

char *mmds_dump(const struct mmds *m)
{
    if (!m->doc || json_is_null(m->doc))
        return strdup("{}");
    return json_dumps(m->doc, DUMP_FLAGS);
}

/* One path segment, RFC 6901 §4 unescaped into out (PATH_SEGMENT_MAX + 1
 * bytes). -ENOENT for a bad escape or an over-long segment. */
static int unescape_segment(const char *s, size_t len, char *out)
{
    size_t o = 0;

    if (len > PATH_SEGMENT_MAX)
        return -ENOENT;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '~') {
            out[o++] = s[i];
            continue;
        }
        if (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1'))
            return -ENOENT;
        out[o++] = s[++i] == '0' ? '~' : '/';
    }
    out[o] = '\0';
    return 0;
}

/* An array index: digits only, no leading zero (RFC 6901 §4). */
static json_t *array_at(json_t *arr, const char *seg)
{
    size_t idx = 0, n = strlen(seg);

    if (n == 0 || n > 9 || (seg[0] == '0' && n > 1))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return NULL;
        idx = idx * 10 + (size_t)(seg[i] - '0');
    }
    return json_array_get(arr, idx);
}

/* The value at `path`; empty segments ("//", a trailing "/") are skipped,
 * as Firecracker folds them. NULL: not found. */
static json_t *walk(json_t *doc, const char *path)
{
    char seg[PATH_SEGMENT_MAX + 1];
    json_t *v = doc;

    while (v && *path) {
        const char *end = strchrnul(path, '/');
        if (end != path) {
            if (unescape_segment(path, (size_t)(end - path), seg))
                return NULL;
            if (json_is_object(v))
                v = json_object_get(v, seg);
            else if (json_is_array(v))
                v = array_at(v, seg);
            else
                v = NULL;
        }
        path = *end ? end + 1 : end;
    }
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object's keys, sorted, one per line; objects end in "/". */
static char *imds_listing(json_t *obj)
{
    size_t n = json_object_size(obj), i = 0, len = 1;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *key;
    char *out, *p;
    json_t *v;

    if (!keys)
        return NULL;
    json_object_foreach(obj, key, v)
    {
        keys[i++] = key;
        len += strlen(key) + 2;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    out = malloc(len);
    for (i = 0, p = out; out && i < n; i++) {
        size_t k = strlen(keys[i]);
        if (i)
            *p++ = '\n';
        memcpy(p, keys[i], k);
        p += k;
        if (json_is_object(json_object_get(obj, keys[i])))
            *p++ = '/';
    }
    if (out)
        *p = '\0';
    free(keys);
    return out;
}

int mmds_lookup(const struct mmds *m, const char *path, enum mmds_format fmt, char **out)
{
    json_t *null = json_null();
    json_t *v = walk(m->doc ? m->doc : null, path);

    *out = NULL;
    if (!v)
        return -ENOENT;
    if (fmt == MMDS_FORMAT_JSON)
        *out = json_dumps(v, DUMP_FLAGS);
    else if (json_is_object(v))
        *out = imds_listing(v);
    else if (json_is_string(v))
        *out = strndup(json_string_value(v), json_string_length(v));
    else
        return -ENOTSUP;
    return *out ? 0 : -ENOMEM;
}

/* ---- configuration ---- */

static bool known_key(const char *key)
{
    static const char *const keys[] = {"version", "network_interfaces", "ipv4_address",
                                       "imds_compat"};

    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (!strcmp(key, keys[i]))
            return true;
    return false;
}

static int parse_ifaces(json_t *arr, const char *const *known, unsigned nknown,
                        struct mmds_config *c, char *err, size_t errlen)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return fail_einval(err, errlen, "network_interfaces: must be an array of interface ids");
    if (json_array_size(arr) == 0)
        return fail_einval(err, errlen,
                           "network_interfaces: the list of network interface ids that "
                           "may reach the MMDS is empty");
    json_array_foreach(arr, i, v)
    {
        const char *id = json_string_value(v);
        unsigned k;
        if (!id)
            return fail_einval(err, errlen, "network_interfaces[%zu]: must be a string", i);
        for (k = 0; k < nknown && strcmp(known[k], id); k++) {
        }
        if (k == nknown)
            return fail_einval(err, errlen,
                               "network_interfaces: '%.64s' is not a configured network "
                               "interface",
                               id);
        if (c->nifaces >= MMDS_MAX_IFACES || strlen(id) > MMDS_ID_MAX)
            return fail_einval(err, errlen, "network_interfaces: too many entries");
        strcpy(c->ifaces[c->nifaces++], id);
    }
    return 0;
}

static int parse_fields(json_t *body, struct mmds_config *c, char *err, size_t errlen)
{
    json_t *ver = json_object_get(body, "version"), *ip = json_object_get(body, "ipv4_address");
    json_t *compat = json_object_get(body, "imds_compat");
    struct in_addr a;

    if (ver && !json_is_null(ver)) {
        const char *s = json_string_value(ver);
        if (!s || (strcmp(s, "V1") && strcmp(s, "V2")))
            return fail_einval(err, errlen, "version: must be \"V1\" or \"V2\"");
        c->version = strcmp(s, "V2") ? MMDS_V1 : MMDS_V2;
    }
    if (ip && !json_is_null(ip)) {
        const char *s = json_string_value(ip);
        if (!s || inet_pton(AF_INET, s, &a) != 1)
            return fail_einval(err, errlen, "ipv4_address: not an IPv4 address");
        c->ipv4 = ntohl(a.s_addr);
        /* RFC 3927 §2.1: 169.254/16, as Firecracker requires. */
        if ((c->ipv4 >> 16) != 0xa9fe)
            return fail_einval(err, errlen, "ipv4_address: %s is not link-local (169.254.0.0/16)",
                               s);
    }
    if (compat && !json_is_null(compat)) {
        if (!json_is_boolean(compat))
            return fail_einval(err, errlen, "imds_compat: must be true or false");
        c->imds_compat = json_is_true(compat);
    }
    return 0;
}

int mmds_configure(struct mmds *m, json_t *body, const char *const *known_ids, unsigned nknown,
                   char *err, size_t errlen)
{
    struct mmds_config c = {.set = true, .version = MMDS_V1, .ipv4 = MMDS_DEFAULT_IPV4};
    const char *key;
    json_t *v;

    if (!json_is_object(body))
        return fail_einval(err, errlen, "the body must be a JSON object");
    json_object_foreach(body, key, v)
    {
        if (!known_key(key))
            return fail_einval(err, errlen, "unknown field '%.64s'", key);
    }
    v = json_object_get(body, "network_interfaces");
    if (!v || json_is_null(v))
        return fail_einval(err, errlen, "missing required field 'network_interfaces'");
    if (parse_ifaces(v, known_ids, nknown, &c, err, errlen) || parse_fields(body, &c, err, errlen))
        return -EINVAL;
    m->cfg = c;
    return 0;
}

json_t *mmds_config_json(const struct mmds *m)
{
    const struct mmds_config *c = &m->cfg;
    struct in_addr a = {.s_addr = htonl(c->ipv4)};
    char ip[INET_ADDRSTRLEN];
    json_t *ids, *out;

    if (!c->set)
        return json_null();
    ids = json_array();
    for (unsigned i = 0; ids && i < c->nifaces; i++)
        if (json_array_append_new(ids, json_string(c->ifaces[i]))) {
            json_decref(ids);
            return NULL;
        }
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    out = ids ? json_pack("{s:s, s:o, s:s, s:b}", "version", c->version == MMDS_V2 ? "V2" : "V1",
                          "network_interfaces", ids, "ipv4_address", ip, "imds_compat",
                          c->imds_compat)
              : NULL;
    return out;
}

bool mmds_serves_iface(const struct mmds *m, const char *id)
{
    for (unsigned i = 0; id && i < m->cfg.nifaces; i++)
        if (!strcmp(m->cfg.ifaces[i], id))
            return true;
    return false;
}
